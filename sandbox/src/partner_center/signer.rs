//! The notification signer: a sandbox root CA ("O=Microsoft Corporation", like the real chain's issuer)
//! and a leaf certificate for `pcnotifications-dispatch.microsoft.com` whose key signs every delivery
//! with RSA PKCS#1 v1.5 / SHA-256 over the raw body (partner-center.md §2.4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer as _};
use sha2::Sha256;

pub const CERTIFICATE_NAME: &str = "pcnotifications-dispatch.microsoft.com";

pub struct Signer {
    key: SigningKey<Sha256>,
    certificate_der: Vec<u8>,
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

impl Signer {
    pub fn generate() -> Signer {
        let (_, root_key) = rsa_key();
        let mut root = CertificateParams::default();
        root.distinguished_name
            .push(DnType::CommonName, "cosell sandbox Microsoft Root");
        root.distinguished_name
            .push(DnType::OrganizationName, "Microsoft Corporation");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let root = CertifiedIssuer::self_signed(root, root_key).expect("root certificate");

        let (leaf_private, leaf_key) = rsa_key();
        let mut leaf =
            CertificateParams::new(vec![CERTIFICATE_NAME.to_string()]).expect("leaf params");
        leaf.distinguished_name
            .push(DnType::CommonName, CERTIFICATE_NAME);
        leaf.distinguished_name
            .push(DnType::OrganizationName, "Microsoft Corporation");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let leaf = leaf.signed_by(&leaf_key, &root).expect("leaf certificate");
        Signer {
            key: SigningKey::<Sha256>::new(leaf_private),
            certificate_der: leaf.der().to_vec(),
            root_pem: root.pem(),
        }
    }

    /// base64 of the signature over `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        STANDARD.encode(self.key.sign(body).to_bytes())
    }

    /// The signing certificate, DER, as served at the certificate URL.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The root to trust (PEM), for receivers configured against the sandbox.
    pub fn trust_anchor_pem(&self) -> &str {
        &self.root_pem
    }
}
