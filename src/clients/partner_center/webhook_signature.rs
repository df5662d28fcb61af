//! Verifying a Partner Center webhook delivery before anything else happens with it
//! (partner-center.md §2.4, crm-apis.md §4).
//!
//! Documented steps: the signature (`Authorization: Signature <b64>` or `x-ms-signature`), the certificate
//! from `X-MS-Certificate-Url`, its chain, an issuer with `O=Microsoft Corporation`, then RSA PKCS#1 v1.5
//! with SHA-256 over the raw body. Hardening, not from Microsoft: the certificate URL must be on an
//! allow-list (so a forged delivery cannot make us fetch an attacker's certificate, or any URL at all), it
//! is fetched without redirects, size-capped and cached, and the trust anchors are configuration, so the
//! sandbox's own root can be trusted in tests.
//!
//! Trust model: the configured PEM bundle holds the roots (self-signed certificates, the trust anchors)
//! and, optionally, intermediates. The signing certificate must chain through intermediates (from the
//! bundle, or fetched from the certificate's Authority Information Access caIssuers URL when that URL is on
//! the same allow-list) to an anchor, every certificate in date. Microsoft issues the notification
//! certificate from an intermediate, so a bundle holding only its root must still find that intermediate.

use crate::clients::tls::TlsTrust;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;
use url::Url;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter, VerifiedPath};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Where Microsoft publishes the notification certificate.
pub const MICROSOFT_CERTIFICATE_PREFIX: &str =
    "https://3psostorageacct.blob.core.windows.net/cert/";
const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("signature algorithm {0:?} is not supported (only rsa-sha256)")]
    UnsupportedAlgorithm(String),
    #[error("the signature is not base64 in the form `Signature <base64>`")]
    Malformed,
    #[error("certificate URL {0:?} is not on the allow-list")]
    CertificateUrlNotAllowed(String),
    #[error("the certificate could not be fetched: {0}")]
    CertificateFetch(String),
    #[error("the certificate is not valid: {0}")]
    CertificateInvalid(String),
    #[error("the certificate was not issued by Microsoft Corporation")]
    NotMicrosoft,
    #[error("a certificate in the chain is expired or not yet valid")]
    Expired,
    #[error("a certificate in the chain may not {0}")]
    NotAllowed(&'static str),
    #[error(
        "the certificate's issuer is neither in the trust bundle nor at an allow-listed issuer URL ({0})"
    )]
    IssuerNotFound(String),
    #[error("the certificate does not chain to a trusted anchor")]
    UntrustedChain,
    #[error("the signature does not match the body")]
    BadSignature,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifierConfigError {
    #[error("allowed certificate URL prefix {0:?} must be an absolute URL ending with /")]
    BadPrefix(String),
    #[error("the trust bundle holds no root (self-signed) certificate")]
    NoAnchors,
    #[error("a certificate in the trust bundle is not valid: {0}")]
    BadAnchor(String),
}

/// What a leaf may sign and an issuer may issue, as `NotAllowed` says it.
const SIGN: &str = "sign webhook deliveries";
const ISSUE: &str = "issue certificates";

pub struct SignatureVerifier {
    allowed: Vec<Url>,
    /// The bundle's self-signed certificates.
    anchors: Vec<TrustAnchor<'static>>,
    /// The bundle's other certificates, offered to path building.
    intermediates: Vec<CertificateDer<'static>>,
    http: reqwest::Client,
    /// Certificates already fetched (signing certificates and their issuers) whose chain verified, by URL.
    cache: Mutex<HashMap<String, Vec<u8>>>,
}

impl SignatureVerifier {
    /// `allowed_prefixes`: URL prefixes certificates may be fetched from (e.g.
    /// [`MICROSOFT_CERTIFICATE_PREFIX`]), for the signing certificate and its caIssuers URL alike;
    /// `trust_bundle_pem`: the roots to trust, and any intermediates; `tls`: the CAs the HTTPS client
    /// fetching certificates trusts (the public roots; in sandbox mode, the sandbox's too).
    pub fn new(
        allowed_prefixes: &[String],
        trust_bundle_pem: &str,
        tls: &TlsTrust,
    ) -> Result<SignatureVerifier, VerifierConfigError> {
        let allowed = allowed_prefixes
            .iter()
            .map(|p| match Url::parse(p) {
                Ok(u) if p.ends_with('/') && u.host().is_some() && u.query().is_none() => Ok(u),
                _ => Err(VerifierConfigError::BadPrefix(p.clone())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bad = |e: &dyn std::fmt::Display| VerifierConfigError::BadAnchor(e.to_string());
        let mut anchors = Vec::new();
        let mut intermediates = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(trust_bundle_pem.as_bytes()) {
            let pem = pem.map_err(|e| bad(&e))?;
            let cert = pem.parse_x509().map_err(|e| bad(&e))?;
            let self_signed =
                cert.subject() == cert.issuer() && cert.verify_signature(None).is_ok();
            let der = CertificateDer::from(pem.contents.clone());
            if self_signed {
                let anchor = webpki::anchor_from_trusted_cert(&der).map_err(|e| bad(&e))?;
                anchors.push(anchor.to_owned());
            } else {
                // Parsed now so that a certificate webpki cannot read is a start-up error, not a
                // silently ignored candidate at every delivery.
                EndEntityCert::try_from(&der).map_err(|e| bad(&e))?;
                intermediates.push(der.into_owned());
            }
        }
        if anchors.is_empty() {
            return Err(VerifierConfigError::NoAnchors);
        }
        let http = tls
            .client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        Ok(SignatureVerifier {
            allowed,
            anchors,
            intermediates,
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Ok only if `body` is exactly what Microsoft signed.
    pub async fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let algorithm = header("x-ms-signature-algorithm")
            .ok_or(SignatureError::MissingHeader("X-MS-Signature-Algorithm"))?;
        if !algorithm.eq_ignore_ascii_case("rsa-sha256") {
            return Err(SignatureError::UnsupportedAlgorithm(algorithm.to_string()));
        }
        let signed = header("x-ms-signature")
            .or_else(|| header("authorization"))
            .ok_or(SignatureError::MissingHeader(
                "Authorization or x-ms-signature",
            ))?;
        let signature = signed
            .strip_prefix("Signature ")
            .and_then(|b64| STANDARD.decode(b64.trim()).ok())
            .ok_or(SignatureError::Malformed)?;
        let url = header("x-ms-certificate-url")
            .ok_or(SignatureError::MissingHeader("X-MS-Certificate-Url"))?;
        let url = self.allowed_url(url, true)?;
        let der = self.certificate(&url).await?;
        let der = CertificateDer::from(der.as_slice());
        let leaf = EndEntityCert::try_from(&der)
            .map_err(|e| SignatureError::CertificateInvalid(e.to_string()))?;
        // ring's RSA, as the chain's: a delivery is verified in microseconds (the pure-Rust `rsa`
        // crate took a tenth of cosell's CPU in a burst of deliveries).
        match leaf.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, body, &signature) {
            Ok(()) => Ok(()),
            Err(webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_)) => Err(
                SignatureError::CertificateInvalid("not an RSA key of 2,048 bits or more".into()),
            ),
            Err(_) => Err(SignatureError::BadSignature),
        }
    }

    /// `certificate`: the signing certificate's URL must name a `.cer`, as Microsoft's does; an issuer's
    /// caIssuers URL is whatever the CA publishes (Microsoft's CAs use `.crt`).
    fn allowed_url(&self, text: &str, certificate: bool) -> Result<Url, SignatureError> {
        let refused = || SignatureError::CertificateUrlNotAllowed(text.to_string());
        let url = Url::parse(text).map_err(|_| refused())?;
        let ok = url.query().is_none()
            && url.fragment().is_none()
            && (!certificate || url.path().ends_with(".cer"))
            && !url.path().contains("..")
            && self.allowed.iter().any(|prefix| {
                prefix.scheme() == url.scheme()
                    && prefix.host() == url.host()
                    && prefix.port_or_known_default() == url.port_or_known_default()
                    && url.path().starts_with(prefix.path())
            });
        if ok { Ok(url) } else { Err(refused()) }
    }

    /// The signing certificate at `url`, its chain verified now (a cached one too: dates move on).
    async fn certificate(&self, url: &Url) -> Result<Vec<u8>, SignatureError> {
        let cached = self.cache.lock().await.get(url.as_str()).cloned();
        if let Some(der) = cached {
            if self.check_chain(&der).await.is_ok() {
                return Ok(der);
            }
            // Microsoft may have replaced an expiring certificate at the same URL: fetch it again.
            self.cache.lock().await.remove(url.as_str());
        }
        let der = self.download(url).await?;
        self.check_chain(&der).await?;
        self.cache.lock().await.insert(url.to_string(), der.clone());
        Ok(der)
    }

    async fn download(&self, url: &Url) -> Result<Vec<u8>, SignatureError> {
        let response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| SignatureError::CertificateFetch(e.to_string()))?;
        if !response.status().is_success() {
            return Err(SignatureError::CertificateFetch(format!(
                "HTTP {}",
                response.status()
            )));
        }
        let too_large = || SignatureError::CertificateFetch("certificate too large".into());
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_CERTIFICATE_BYTES)
        {
            return Err(too_large());
        }
        let der = response
            .bytes()
            .await
            .map_err(|e| SignatureError::CertificateFetch(e.to_string()))?;
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(too_large());
        }
        Ok(der.to_vec())
    }

    /// Issued by Microsoft Corporation, allowed to sign, and a valid path to an anchor: through the
    /// bundle's intermediates, or else with the issuer from the caIssuers URL.
    async fn check_chain(&self, der: &[u8]) -> Result<(), SignatureError> {
        let (_, leaf) = X509Certificate::from_der(der)
            .map_err(|e| SignatureError::CertificateInvalid(e.to_string()))?;
        let microsoft = leaf
            .issuer()
            .iter_organization()
            .any(|o| o.as_str().is_ok_and(|o| o == "Microsoft Corporation"));
        if !microsoft {
            return Err(SignatureError::NotMicrosoft);
        }
        // webpki ignores keyUsage (as browsers do); for a key that signs bodies it is the one
        // extension that says whether it may.
        match leaf.key_usage() {
            Ok(Some(usage)) if !usage.value.digital_signature() => {
                return Err(SignatureError::NotAllowed(SIGN));
            }
            Ok(_) => {}
            Err(e) => return Err(SignatureError::CertificateInvalid(e.to_string())),
        }
        let without_aia = match self.path(der, None) {
            Err(e @ (SignatureError::IssuerNotFound(_) | SignatureError::UntrustedChain)) => e,
            done => return done,
        };
        let Some(issuer_url) = ca_issuers_url(&leaf) else {
            return Err(match without_aia {
                SignatureError::IssuerNotFound(_) => {
                    SignatureError::IssuerNotFound("the certificate names no issuer URL".into())
                }
                other => other,
            });
        };
        // Never fetched off the allow-list: the URL is in a certificate anyone can make. The refusal
        // names it, since adding the issuer to the bundle (or its prefix to the list) is the fix.
        let Ok(issuer_url) = self.allowed_url(&issuer_url, false) else {
            return Err(match without_aia {
                SignatureError::IssuerNotFound(_) => SignatureError::IssuerNotFound(format!(
                    "issuer URL {issuer_url} is not on the allow-list"
                )),
                other => other,
            });
        };
        let cached = self.cache.lock().await.get(issuer_url.as_str()).cloned();
        let issuer = match cached {
            Some(issuer) => issuer,
            None => self.download(&issuer_url).await.map_err(|e| match e {
                SignatureError::CertificateFetch(why) => {
                    SignatureError::CertificateFetch(format!("issuer certificate: {why}"))
                }
                other => other,
            })?,
        };
        let verified = self.path(der, Some(&issuer));
        let mut cache = self.cache.lock().await;
        if verified.is_ok() {
            cache.insert(issuer_url.to_string(), issuer);
        } else {
            cache.remove(issuer_url.as_str());
        }
        verified
    }

    /// Path validation by webpki at the current time, `extra` being an issuer fetched for this leaf.
    fn path(&self, leaf_der: &[u8], extra: Option<&[u8]>) -> Result<(), SignatureError> {
        let leaf_der = CertificateDer::from(leaf_der);
        let leaf = EndEntityCert::try_from(&leaf_der)
            .map_err(|e| SignatureError::CertificateInvalid(e.to_string()))?;
        let mut intermediates: Vec<CertificateDer<'_>> = self
            .intermediates
            .iter()
            .map(|c| CertificateDer::from(c.as_ref()))
            .collect();
        intermediates.extend(extra.map(CertificateDer::from));
        // webpki checks basicConstraints but not keyUsage on issuers; RFC 5280 requires keyCertSign
        // when the extension is there. The callback cannot return our error, so it leaves it here.
        let refusal = RefCell::new(None);
        let issuers_may_sign = |path: &VerifiedPath<'_>| {
            for cert in path.intermediate_certificates() {
                if let Err(e) = may_issue(cert.der().as_ref()) {
                    *refusal.borrow_mut() = Some(e);
                    return Err(webpki::Error::EndEntityUsedAsCa);
                }
            }
            Ok(())
        };
        let verified = leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            &intermediates,
            UnixTime::now(),
            AnyPurpose,
            None,
            Some(&issuers_may_sign),
        );
        match verified {
            Ok(_) => Ok(()),
            Err(e) => Err(refusal
                .take()
                .unwrap_or_else(|| self.refusal(e, &leaf, &intermediates))),
        }
    }

    fn refusal(
        &self,
        error: webpki::Error,
        leaf: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> SignatureError {
        use webpki::Error as E;
        match error {
            E::CertExpired { .. } | E::CertNotValidYet { .. } | E::InvalidCertValidity => {
                SignatureError::Expired
            }
            E::CaUsedAsEndEntity => SignatureError::NotAllowed(SIGN),
            E::EndEntityUsedAsCa | E::PathLenConstraintViolated => {
                SignatureError::NotAllowed(ISSUE)
            }
            // The same error whether the issuer is nowhere or its own issuer is not trusted; only the
            // first says what to configure.
            E::UnknownIssuer => {
                let known = self
                    .anchors
                    .iter()
                    .map(|a| a.subject.as_ref().to_vec())
                    .chain(
                        intermediates
                            .iter()
                            .filter_map(|c| EndEntityCert::try_from(c).ok())
                            .map(|c| c.subject().to_vec()),
                    )
                    .any(|subject| subject == leaf.issuer());
                if known {
                    SignatureError::UntrustedChain
                } else {
                    SignatureError::IssuerNotFound("no certificate at hand is its issuer".into())
                }
            }
            E::BadDer
            | E::BadDerTime
            | E::TrailingData(_)
            | E::UnsupportedCertVersion
            | E::UnsupportedCriticalExtension
            | E::MalformedExtensions
            | E::ExtensionValueInvalid
            | E::EmptyEkuExtension => SignatureError::CertificateInvalid(format!("{error:?}")),
            _ => SignatureError::UntrustedChain,
        }
    }
}

/// Any extended key usage, or none. webpki's `KeyUsage` can only require one purpose when the extension
/// is present (`required_if_present`), and there is no purpose for "signs webhook bodies": which EKU
/// Microsoft's notification certificate carries is undocumented (partner-center.md §2.4 lists no EKU check,
/// and the C# sample's `X509Chain.Build` checks none), so requiring e.g. serverAuth could refuse every real
/// delivery. The checks that do bind the certificate to this use are keyUsage digitalSignature (above),
/// the issuer organization, the allow-listed URL and trust anchors configured for this alone.
struct AnyPurpose;

impl ExtendedKeyUsageValidator for AnyPurpose {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// An intermediate must be a CA (webpki checks) and, when it has keyUsage, have keyCertSign.
fn may_issue(der: &[u8]) -> Result<(), SignatureError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| SignatureError::CertificateInvalid(e.to_string()))?;
    match cert.key_usage() {
        Ok(Some(usage)) if !usage.value.key_cert_sign() => Err(SignatureError::NotAllowed(ISSUE)),
        Ok(_) => Ok(()),
        Err(e) => Err(SignatureError::CertificateInvalid(e.to_string())),
    }
}

/// The first caIssuers URI of the Authority Information Access extension.
fn ca_issuers_url(cert: &X509Certificate<'_>) -> Option<String> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                aia.iter()
                    .find_map(|d| match (&d.access_method, &d.access_location) {
                        (method, GeneralName::URI(uri))
                            if *method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS =>
                        {
                            Some(uri.to_string())
                        }
                        _ => None,
                    })
            }
            _ => None,
        })
}
