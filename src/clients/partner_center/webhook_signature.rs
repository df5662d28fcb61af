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
//! Trust model: the configured PEM bundle is the set of trusted issuers (roots and, for the real service,
//! the intermediate that issues the notification certificate); the leaf must be signed by one of them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::HeaderMap;
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use sha2::Sha256;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::Mutex;
use url::Url;
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
    #[error("the certificate does not chain to a trusted anchor")]
    UntrustedChain,
    #[error("the signature does not match the body")]
    BadSignature,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifierConfigError {
    #[error("allowed certificate URL prefix {0:?} must be an absolute URL ending with /")]
    BadPrefix(String),
    #[error("the trust anchor bundle holds no certificate")]
    NoAnchors,
    #[error("a trust anchor is not a valid certificate: {0}")]
    BadAnchor(String),
}

pub struct SignatureVerifier {
    allowed: Vec<Url>,
    /// DER of each trusted issuer.
    anchors: Vec<Vec<u8>>,
    http: reqwest::Client,
    /// Certificates already fetched and checked, by URL.
    cache: Mutex<HashMap<String, Vec<u8>>>,
}

impl SignatureVerifier {
    /// `allowed_prefixes`: certificate URL prefixes (e.g. [`MICROSOFT_CERTIFICATE_PREFIX`]);
    /// `trust_anchors_pem`: one or more PEM certificates.
    pub fn new(
        allowed_prefixes: &[String],
        trust_anchors_pem: &str,
    ) -> Result<SignatureVerifier, VerifierConfigError> {
        let allowed = allowed_prefixes
            .iter()
            .map(|p| match Url::parse(p) {
                Ok(u) if p.ends_with('/') && u.host().is_some() && u.query().is_none() => Ok(u),
                _ => Err(VerifierConfigError::BadPrefix(p.clone())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut anchors = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(trust_anchors_pem.as_bytes()) {
            let pem = pem.map_err(|e| VerifierConfigError::BadAnchor(e.to_string()))?;
            pem.parse_x509()
                .map_err(|e| VerifierConfigError::BadAnchor(e.to_string()))?;
            anchors.push(pem.contents);
        }
        if anchors.is_empty() {
            return Err(VerifierConfigError::NoAnchors);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        Ok(SignatureVerifier {
            allowed,
            anchors,
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
        let url = self.allowed_url(url)?;
        let der = self.certificate(&url).await?;
        let (_, leaf) = X509Certificate::from_der(&der)
            .map_err(|e| SignatureError::CertificateInvalid(e.to_string()))?;
        let key = RsaPublicKey::from_public_key_der(leaf.public_key().raw)
            .map_err(|e| SignatureError::CertificateInvalid(format!("not an RSA key: {e}")))?;
        let signature =
            Signature::try_from(signature.as_slice()).map_err(|_| SignatureError::Malformed)?;
        VerifyingKey::<Sha256>::new(key)
            .verify(body, &signature)
            .map_err(|_| SignatureError::BadSignature)
    }

    fn allowed_url(&self, text: &str) -> Result<Url, SignatureError> {
        let refused = || SignatureError::CertificateUrlNotAllowed(text.to_string());
        let url = Url::parse(text).map_err(|_| refused())?;
        let ok = url.query().is_none()
            && url.fragment().is_none()
            && url.path().ends_with(".cer")
            && !url.path().contains("..")
            && self.allowed.iter().any(|prefix| {
                prefix.scheme() == url.scheme()
                    && prefix.host() == url.host()
                    && prefix.port_or_known_default() == url.port_or_known_default()
                    && url.path().starts_with(prefix.path())
            });
        if ok { Ok(url) } else { Err(refused()) }
    }

    /// The certificate at `url`, fetched once, and checked: in date, Microsoft's, signed by an anchor.
    async fn certificate(&self, url: &Url) -> Result<Vec<u8>, SignatureError> {
        if let Some(der) = self.cache.lock().await.get(url.as_str()) {
            check_dates(der)?;
            return Ok(der.clone());
        }
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
        if response
            .content_length()
            .is_some_and(|n| n as usize > MAX_CERTIFICATE_BYTES)
        {
            return Err(SignatureError::CertificateFetch(
                "certificate too large".into(),
            ));
        }
        let der = response
            .bytes()
            .await
            .map_err(|e| SignatureError::CertificateFetch(e.to_string()))?;
        if der.len() > MAX_CERTIFICATE_BYTES {
            return Err(SignatureError::CertificateFetch(
                "certificate too large".into(),
            ));
        }
        let der = der.to_vec();
        self.check_certificate(&der)?;
        self.cache.lock().await.insert(url.to_string(), der.clone());
        Ok(der)
    }

    fn check_certificate(&self, der: &[u8]) -> Result<(), SignatureError> {
        let (_, leaf) = X509Certificate::from_der(der)
            .map_err(|e| SignatureError::CertificateInvalid(e.to_string()))?;
        check_dates(der)?;
        let microsoft = leaf
            .issuer()
            .iter_organization()
            .any(|o| o.as_str().is_ok_and(|o| o == "Microsoft Corporation"));
        if !microsoft {
            return Err(SignatureError::NotMicrosoft);
        }
        let chained = self.anchors.iter().any(|anchor| {
            X509Certificate::from_der(anchor).is_ok_and(|(_, anchor)| {
                anchor.subject() == leaf.issuer()
                    && leaf.verify_signature(Some(anchor.public_key())).is_ok()
            })
        });
        if chained {
            Ok(())
        } else {
            Err(SignatureError::UntrustedChain)
        }
    }
}

fn check_dates(der: &[u8]) -> Result<(), SignatureError> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| SignatureError::CertificateInvalid(e.to_string()))?;
    if cert.validity().is_valid() {
        Ok(())
    } else {
        Err(SignatureError::CertificateInvalid(
            "outside its validity period".into(),
        ))
    }
}
