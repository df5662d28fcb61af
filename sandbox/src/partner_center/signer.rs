//! The notification signer, with a chain shaped like Microsoft's: a sandbox root CA, an intermediate
//! ("O=Microsoft Corporation", the issuer receivers check for) and a leaf for
//! `pcnotifications-dispatch.microsoft.com` whose key signs every delivery with RSA PKCS#1 v1.5 / SHA-256
//! over the raw body (partner-center.md §2.4). The leaf names its issuer's URL (Authority Information
//! Access caIssuers), so a receiver that trusts only the root can still build the path.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

pub const CERTIFICATE_NAME: &str = "pcnotifications-dispatch.microsoft.com";
/// The intermediate, served as `/cert/{ISSUER_NAME}.crt` (Microsoft's CAs publish `.crt` files).
pub const ISSUER_NAME: &str = "cosell-sandbox-microsoft-issuing-ca";

/// id-pe-authorityInfoAccess (RFC 5280 §4.2.2.1); rcgen has no builder for it.
const AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
/// id-ad-caIssuers, 1.3.6.1.5.5.7.48.2, as DER.
const CA_ISSUERS_OID_DER: &[u8] = &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];

pub struct Signer {
    /// ring's RSA: a delivery signed in a fraction of the pure-Rust `rsa` crate's time (which took a
    /// sixth of the machine in a burst of deliveries, competing with the cosell it serves).
    key: ring::rsa::KeyPair,
    certificate_der: Vec<u8>,
    issuer_der: Vec<u8>,
    root_pem: String,
}

fn rsa_key() -> (RsaPrivateKey, KeyPair) {
    let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation");
    let pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .expect("PKCS#8 encoding");
    let pair = KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).expect("rcgen key");
    (private, pair)
}

/// DER tag-length-value, definite length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant = &bytes[bytes.iter().take_while(|b| **b == 0).count()..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// AuthorityInfoAccessSyntax with one caIssuers access description pointing at `url`.
pub fn ca_issuers_extension(url: &str) -> CustomExtension {
    // GeneralName uniformResourceIdentifier is [6] IMPLICIT IA5String.
    let description = [CA_ISSUERS_OID_DER, &tlv(0x86, url.as_bytes())].concat();
    let content = tlv(0x30, &tlv(0x30, &description));
    CustomExtension::from_oid_content(AUTHORITY_INFO_ACCESS, content)
}

impl Signer {
    /// `base_url`: where the sandbox serves `/cert/`, for the leaf's caIssuers URL.
    pub fn generate(base_url: &str) -> Signer {
        let (_, root_key) = rsa_key();
        let mut root = CertificateParams::default();
        root.distinguished_name
            .push(DnType::CommonName, "cosell sandbox Microsoft Root");
        root.distinguished_name
            .push(DnType::OrganizationName, "Microsoft Corporation");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root = CertifiedIssuer::self_signed(root, root_key).expect("root certificate");

        let (_, issuer_key) = rsa_key();
        let mut issuer = CertificateParams::default();
        issuer
            .distinguished_name
            .push(DnType::CommonName, "cosell sandbox Microsoft Issuing CA");
        issuer
            .distinguished_name
            .push(DnType::OrganizationName, "Microsoft Corporation");
        issuer.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        issuer.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            CertifiedIssuer::signed_by(issuer, issuer_key, &root).expect("issuer certificate");

        let (leaf_private, leaf_key) = rsa_key();
        let mut leaf =
            CertificateParams::new(vec![CERTIFICATE_NAME.to_string()]).expect("leaf params");
        leaf.distinguished_name
            .push(DnType::CommonName, CERTIFICATE_NAME);
        leaf.distinguished_name
            .push(DnType::OrganizationName, "Microsoft Corporation");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.custom_extensions = vec![ca_issuers_extension(&format!(
            "{base_url}/cert/{ISSUER_NAME}.crt"
        ))];
        let leaf = leaf
            .signed_by(&leaf_key, &issuer)
            .expect("leaf certificate");
        let pkcs8 = leaf_private.to_pkcs8_der().expect("PKCS#8 encoding");
        Signer {
            key: ring::rsa::KeyPair::from_pkcs8(pkcs8.as_bytes()).expect("ring RSA key"),
            certificate_der: leaf.der().to_vec(),
            issuer_der: issuer.der().to_vec(),
            root_pem: root.pem(),
        }
    }

    /// base64 of the signature over `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                body,
                &mut signature,
            )
            .expect("RSA signing");
        STANDARD.encode(signature)
    }

    /// The signing certificate, DER, as served at the certificate URL.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The intermediate that issued the signing certificate, DER, as served at its caIssuers URL.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer_der
    }

    /// The root to trust (PEM), for receivers configured against the sandbox.
    pub fn trust_anchor_pem(&self) -> &str {
        &self.root_pem
    }
}
