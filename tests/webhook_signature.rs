//! The webhook signature verifier against real, signed deliveries from the sandbox (certificates
//! fetched over HTTPS, trusting the sandbox's CA as cosell does in sandbox mode).

use cosell::clients::partner_center::webhook_signature::{
    SignatureError, SignatureVerifier, VerifierConfigError,
};
use cosell::clients::tls::TlsTrust;
use cosell_sandbox::Sandbox;
use cosell_sandbox::testing::{WebhookReceiver, register_webhook};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

struct Delivery {
    sandbox: Sandbox,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A genuine delivery: register a receiver, have a Microsoft seller create a referral, capture the call.
async fn delivery(ms_signature_header: bool) -> Delivery {
    let sandbox = Sandbox::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut receiver = WebhookReceiver::start(vec![]).await;
    register_webhook(
        &sandbox,
        &receiver.url,
        &["referral-created"],
        ms_signature_header,
    )
    .await;
    sandbox
        .partner_center()
        .seller_creates(json!({ "name": "Signed deal" }));
    let (headers, body) = receiver.next().await;
    Delivery {
        sandbox,
        headers,
        body: body.to_vec(),
    }
}

/// The CAs cosell trusts in sandbox mode.
fn sandbox_trust(sandbox: &Sandbox) -> TlsTrust {
    TlsTrust::with_sandbox_ca(sandbox.tls_ca_pem()).unwrap()
}

fn verifier_for(sandbox: &Sandbox) -> SignatureVerifier {
    SignatureVerifier::new(
        &[format!("{}/cert/", sandbox.base_url())],
        &sandbox.partner_center().trust_anchor_pem(),
        &sandbox_trust(sandbox),
    )
    .unwrap()
}

#[tokio::test]
async fn genuine_deliveries_verify_in_either_signature_header() {
    for ms_header in [false, true] {
        let d = delivery(ms_header).await;
        let verifier = verifier_for(&d.sandbox);
        assert_eq!(
            verifier.verify(&d.headers, &d.body).await,
            Ok(()),
            "ms header: {ms_header}"
        );
        // Again, from the certificate cache.
        assert_eq!(verifier.verify(&d.headers, &d.body).await, Ok(()));
    }
}

#[tokio::test]
async fn a_changed_body_or_signature_is_refused() {
    let d = delivery(false).await;
    let verifier = verifier_for(&d.sandbox);
    let mut body = d.body.clone();
    body[10] ^= 1;
    assert_eq!(
        verifier.verify(&d.headers, &body).await,
        Err(SignatureError::BadSignature)
    );
    let mut reformatted: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
    reformatted["EventName"] = "referral-updated".into();
    assert_eq!(
        verifier
            .verify(&d.headers, &serde_json::to_vec(&reformatted).unwrap())
            .await,
        Err(SignatureError::BadSignature)
    );
    // A signature made for another body.
    let other = delivery(false).await;
    let mut headers = d.headers.clone();
    headers.insert("authorization", other.headers["authorization"].clone());
    assert_eq!(
        verifier.verify(&headers, &d.body).await,
        Err(SignatureError::BadSignature)
    );
}

#[tokio::test]
async fn missing_malformed_and_unsupported_headers_are_refused() {
    let d = delivery(false).await;
    let verifier = verifier_for(&d.sandbox);
    let without = |name: &str| {
        let mut h = d.headers.clone();
        h.remove(name);
        h
    };
    let with = |name: &'static str, value: &'static str| {
        let mut h = d.headers.clone();
        h.insert(name, HeaderValue::from_static(value));
        h
    };
    assert!(matches!(
        verifier.verify(&without("authorization"), &d.body).await,
        Err(SignatureError::MissingHeader(_))
    ));
    assert!(matches!(
        verifier
            .verify(&without("x-ms-certificate-url"), &d.body)
            .await,
        Err(SignatureError::MissingHeader(_))
    ));
    assert!(matches!(
        verifier
            .verify(&without("x-ms-signature-algorithm"), &d.body)
            .await,
        Err(SignatureError::MissingHeader(_))
    ));
    assert_eq!(
        verifier
            .verify(&with("x-ms-signature-algorithm", "hmac-sha256"), &d.body)
            .await,
        Err(SignatureError::UnsupportedAlgorithm("hmac-sha256".into()))
    );
    assert_eq!(
        verifier
            .verify(&with("authorization", "Bearer abc"), &d.body)
            .await,
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        verifier
            .verify(&with("authorization", "Signature !!!"), &d.body)
            .await,
        Err(SignatureError::Malformed)
    );
}

#[tokio::test]
async fn certificate_urls_off_the_allow_list_are_never_fetched() {
    let d = delivery(false).await;
    let verifier = verifier_for(&d.sandbox);
    let cert_url = d.headers["x-ms-certificate-url"]
        .to_str()
        .unwrap()
        .to_string();
    for forged in [
        "https://evil.example/cert/pcnotifications-dispatch.microsoft.com.cer".to_string(),
        cert_url.replace("/cert/", "/elsewhere/"),
        format!("{cert_url}?x=1"),
        cert_url.replace(".cer", ".pem"),
        cert_url.replace("/cert/", "/cert/../v1.0/"),
    ] {
        let mut headers = d.headers.clone();
        headers.insert(
            "x-ms-certificate-url",
            HeaderValue::from_str(&forged).unwrap(),
        );
        assert!(
            matches!(
                verifier.verify(&headers, &d.body).await,
                Err(SignatureError::CertificateUrlNotAllowed(_))
            ),
            "{forged}"
        );
    }
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_root_is_refused() {
    let d = delivery(false).await;
    // Another sandbox has another root: its anchor must not vouch for this delivery.
    let stranger = Sandbox::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let verifier = SignatureVerifier::new(
        &[format!("{}/cert/", d.sandbox.base_url())],
        &stranger.partner_center().trust_anchor_pem(),
        &sandbox_trust(&d.sandbox),
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&d.headers, &d.body).await,
        Err(SignatureError::UntrustedChain)
    );
}

#[tokio::test]
async fn an_unreachable_certificate_is_a_fetch_error() {
    let d = delivery(false).await;
    let verifier = verifier_for(&d.sandbox);
    let mut headers = d.headers.clone();
    let missing = format!("{}/cert/no-such.cer", d.sandbox.base_url());
    headers.insert(
        "x-ms-certificate-url",
        HeaderValue::from_str(&missing).unwrap(),
    );
    assert!(matches!(
        verifier.verify(&headers, &d.body).await,
        Err(SignatureError::CertificateFetch(_))
    ));
}

#[tokio::test]
async fn without_the_sandbox_ca_its_certificates_cannot_be_fetched() {
    // Production trust (the public roots) does not reach the sandbox's HTTPS: nothing is verified.
    let d = delivery(false).await;
    let verifier = SignatureVerifier::new(
        &[format!("{}/cert/", d.sandbox.base_url())],
        &d.sandbox.partner_center().trust_anchor_pem(),
        &TlsTrust::public_roots(),
    )
    .unwrap();
    assert!(matches!(
        verifier.verify(&d.headers, &d.body).await,
        Err(SignatureError::CertificateFetch(_))
    ));
}

#[test]
fn bad_configuration_is_refused() {
    assert!(matches!(
        SignatureVerifier::new(&["not a url".into()], "", &TlsTrust::public_roots()),
        Err(VerifierConfigError::BadPrefix(_))
    ));
    assert!(matches!(
        SignatureVerifier::new(
            &["https://3psostorageacct.blob.core.windows.net/cert".into()],
            "",
            &TlsTrust::public_roots()
        ),
        Err(VerifierConfigError::BadPrefix(_))
    ));
    assert_eq!(
        SignatureVerifier::new(
            &["https://3psostorageacct.blob.core.windows.net/cert/".into()],
            "no pem here",
            &TlsTrust::public_roots()
        )
        .err(),
        Some(VerifierConfigError::NoAnchors)
    );
}

// Certificate chains made here with rcgen, served by a stub in place of Microsoft's storage account, so
// each way a chain can be wrong is one certificate away from a valid one.
mod chains {
    use super::*;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use cosell_sandbox::testing::ca_issuers_extension;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use rsa::RsaPrivateKey;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    use rsa::signature::{SignatureEncoding, Signer as _};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    use time::{Duration, OffsetDateTime};

    const BODY: &[u8] = br#"{"EventName":"referral-created","ResourceUri":"https://api.partnercenter.microsoft.com/engagements/v1/referrals/1","ResourceName":"referral","AuditUri":null,"ResourceChangeUtcDate":"2018-02-17T00:05:39.5485487+00:00"}"#;

    type Ca = CertifiedIssuer<'static, KeyPair>;

    /// One RSA key for every leaf: making one takes a while, and the chains differ in their CAs.
    fn leaf_key() -> &'static (SigningKey<sha2::Sha256>, String) {
        static KEY: OnceLock<(SigningKey<sha2::Sha256>, String)> = OnceLock::new();
        KEY.get_or_init(|| {
            let private =
                RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation");
            let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
            (SigningKey::new(private), pem)
        })
    }

    fn name(params: &mut CertificateParams, common: &str, organization: &str) {
        params.distinguished_name.push(DnType::CommonName, common);
        params
            .distinguished_name
            .push(DnType::OrganizationName, organization);
    }

    fn root(common: &str) -> Ca {
        let mut params = CertificateParams::default();
        name(&mut params, common, "Microsoft Corporation");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    fn intermediate_with(root: &Ca, change: impl FnOnce(&mut CertificateParams)) -> Ca {
        let mut params = CertificateParams::default();
        name(&mut params, "Test Issuing CA", "Microsoft Corporation");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        change(&mut params);
        CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), root).unwrap()
    }

    fn intermediate(root: &Ca) -> Ca {
        intermediate_with(root, |_| {})
    }

    fn leaf_with(issuer: &Ca, change: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
        let key = KeyPair::from_pem_and_sign_algo(&leaf_key().1, &rcgen::PKCS_RSA_SHA256).unwrap();
        let mut params =
            CertificateParams::new(vec!["pcnotifications-dispatch.microsoft.com".into()]).unwrap();
        name(
            &mut params,
            "pcnotifications-dispatch.microsoft.com",
            "Microsoft Corporation",
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        change(&mut params);
        params.signed_by(&key, issuer).unwrap().der().to_vec()
    }

    fn leaf(issuer: &Ca) -> Vec<u8> {
        leaf_with(issuer, |_| {})
    }

    fn bundle(cas: &[&Ca]) -> String {
        cas.iter().map(|ca| ca.pem()).collect()
    }

    /// Serves certificates by path, and remembers which paths were asked for.
    #[derive(Clone, Default)]
    struct Storage {
        files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        requests: Arc<Mutex<Vec<String>>>,
        base_url: String,
    }

    impl Storage {
        async fn start() -> Storage {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let storage = Storage {
                base_url: format!("http://{}", listener.local_addr().unwrap()),
                ..Storage::default()
            };
            let app = axum::Router::new()
                .route("/{*path}", axum::routing::get(serve))
                .with_state(storage.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
            storage
        }

        /// `path` under the root, e.g. `cert/leaf.cer`; returns its URL.
        fn put(&self, path: &str, der: &[u8]) -> String {
            self.files
                .lock()
                .unwrap()
                .insert(path.to_string(), der.to_vec());
            format!("{}/{path}", self.base_url)
        }

        fn remove(&self, path: &str) {
            self.files.lock().unwrap().remove(path);
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }

        fn verifier(&self, bundle: &str) -> SignatureVerifier {
            SignatureVerifier::new(
                &[format!("{}/cert/", self.base_url)],
                bundle,
                &TlsTrust::public_roots(),
            )
            .unwrap()
        }

        /// A delivery of [`BODY`] signed with the leaf key, naming `leaf` (served now) as its certificate.
        fn delivery(&self, leaf: &[u8]) -> HeaderMap {
            let url = self.put("cert/pcnotifications-dispatch.microsoft.com.cer", leaf);
            let signature = STANDARD.encode(leaf_key().0.sign(BODY).to_bytes());
            let mut headers = HeaderMap::new();
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Signature {signature}")).unwrap(),
            );
            headers.insert("x-ms-certificate-url", HeaderValue::from_str(&url).unwrap());
            headers.insert(
                "x-ms-signature-algorithm",
                HeaderValue::from_static("rsa-sha256"),
            );
            headers
        }
    }

    async fn serve(State(storage): State<Storage>, Path(path): Path<String>) -> Response {
        storage.requests.lock().unwrap().push(path.clone());
        match storage.files.lock().unwrap().get(&path) {
            Some(der) => der.clone().into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }

    #[tokio::test]
    async fn a_leaf_issued_by_an_intermediate_in_the_bundle_verifies() {
        let storage = Storage::start().await;
        let root = root("Test Root");
        let issuing = intermediate(&root);
        let headers = storage.delivery(&leaf(&issuing));
        let verifier = storage.verifier(&bundle(&[&root, &issuing]));
        assert_eq!(verifier.verify(&headers, BODY).await, Ok(()));
        // From the cache, path validation again.
        assert_eq!(verifier.verify(&headers, BODY).await, Ok(()));
        assert_eq!(
            storage.requests(),
            ["cert/pcnotifications-dispatch.microsoft.com.cer"]
        );
        // The order of the bundle does not matter: self-signed certificates are the anchors.
        let verifier = storage.verifier(&bundle(&[&issuing, &root]));
        assert_eq!(verifier.verify(&headers, BODY).await, Ok(()));
    }

    #[tokio::test]
    async fn an_intermediate_is_fetched_from_an_allow_listed_ca_issuers_url() {
        let storage = Storage::start().await;
        let root = root("Test Root");
        let issuing = intermediate(&root);
        let issuer_url = storage.put("cert/test-issuing-ca.crt", issuing.der());
        let headers = storage.delivery(&leaf_with(&issuing, |p| {
            p.custom_extensions = vec![ca_issuers_extension(&issuer_url)];
        }));
        let verifier = storage.verifier(&root.pem());
        assert_eq!(verifier.verify(&headers, BODY).await, Ok(()));
        // Cached like the leaf: gone from the server, still known.
        storage.remove("cert/test-issuing-ca.crt");
        assert_eq!(verifier.verify(&headers, BODY).await, Ok(()));
        assert_eq!(
            storage.requests(),
            [
                "cert/pcnotifications-dispatch.microsoft.com.cer",
                "cert/test-issuing-ca.crt"
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_intermediate_is_refused() {
        let storage = Storage::start().await;
        let root = root("Test Root");
        let issuing = intermediate(&root);
        let verifier = storage.verifier(&root.pem());

        // No caIssuers URL, and not in the bundle.
        let headers = storage.delivery(&leaf(&issuing));
        assert!(matches!(
            verifier.verify(&headers, BODY).await,
            Err(SignatureError::IssuerNotFound(_))
        ));

        // A caIssuers URL off the allow-list is never fetched, even where the issuer is served.
        let outside = storage.put("elsewhere/test-issuing-ca.crt", issuing.der());
        let other_host = outside
            .replace("127.0.0.1", "localhost")
            .replace("elsewhere", "cert");
        storage.put("cert/test-issuing-ca.crt", issuing.der());
        for url in [outside, other_host] {
            let verifier = storage.verifier(&root.pem());
            let headers = storage.delivery(&leaf_with(&issuing, |p| {
                p.custom_extensions = vec![ca_issuers_extension(&url)];
            }));
            assert!(
                matches!(
                    verifier.verify(&headers, BODY).await,
                    Err(SignatureError::IssuerNotFound(_))
                ),
                "{url}"
            );
        }
        assert!(
            storage.requests().iter().all(|p| !p.ends_with(".crt")),
            "{:?}",
            storage.requests()
        );

        // An allow-listed caIssuers URL with nothing there.
        let headers = storage.delivery(&leaf_with(&issuing, |p| {
            p.custom_extensions = vec![ca_issuers_extension(&format!(
                "{}/cert/no-such.crt",
                storage.base_url
            ))];
        }));
        assert!(matches!(
            verifier.verify(&headers, BODY).await,
            Err(SignatureError::CertificateFetch(_))
        ));
    }

    #[tokio::test]
    async fn an_expired_certificate_is_refused() {
        let storage = Storage::start().await;
        let root = root("Test Root");
        let issuing = intermediate(&root);
        let now = OffsetDateTime::now_utc();
        let expired = leaf_with(&issuing, |p| {
            p.not_before = now - Duration::days(30);
            p.not_after = now - Duration::days(1);
        });
        let verifier = storage.verifier(&bundle(&[&root, &issuing]));
        assert_eq!(
            verifier.verify(&storage.delivery(&expired), BODY).await,
            Err(SignatureError::Expired)
        );
        let not_yet = leaf_with(&issuing, |p| {
            p.not_before = now + Duration::days(1);
            p.not_after = now + Duration::days(30);
        });
        assert_eq!(
            verifier.verify(&storage.delivery(&not_yet), BODY).await,
            Err(SignatureError::Expired)
        );
        // An expired intermediate under a valid leaf.
        let old_issuing = intermediate_with(&root, |p| {
            p.not_before = now - Duration::days(30);
            p.not_after = now - Duration::days(1);
        });
        let verifier = storage.verifier(&bundle(&[&root, &old_issuing]));
        assert_eq!(
            verifier
                .verify(&storage.delivery(&leaf(&old_issuing)), BODY)
                .await,
            Err(SignatureError::Expired)
        );
    }

    #[tokio::test]
    async fn a_leaf_not_issued_by_microsoft_corporation_is_refused() {
        let storage = Storage::start().await;
        let root = root("Test Root");
        let contoso = intermediate_with(&root, |p| {
            p.distinguished_name = rcgen::DistinguishedName::new();
            name(p, "Contoso Issuing CA", "Contoso Ltd");
        });
        let verifier = storage.verifier(&bundle(&[&root, &contoso]));
        assert_eq!(
            verifier
                .verify(&storage.delivery(&leaf(&contoso)), BODY)
                .await,
            Err(SignatureError::NotMicrosoft)
        );
    }

    #[tokio::test]
    async fn a_leaf_from_another_root_is_refused() {
        let storage = Storage::start().await;
        let trusted = root("Test Root");
        // Same names as the trusted chain, other keys: only signatures tell them apart.
        let stranger = root("Test Root");
        let stranger_issuing = intermediate(&stranger);
        let headers = storage.delivery(&leaf(&stranger_issuing));
        // The stranger's intermediate in the bundle.
        let verifier = storage.verifier(&bundle(&[&trusted, &stranger_issuing]));
        assert_eq!(
            verifier.verify(&headers, BODY).await,
            Err(SignatureError::UntrustedChain)
        );
        // Or served at its caIssuers URL.
        let issuer_url = storage.put("cert/stranger-issuing-ca.crt", stranger_issuing.der());
        let headers = storage.delivery(&leaf_with(&stranger_issuing, |p| {
            p.custom_extensions = vec![ca_issuers_extension(&issuer_url)];
        }));
        let verifier = storage.verifier(&trusted.pem());
        assert_eq!(
            verifier.verify(&headers, BODY).await,
            Err(SignatureError::UntrustedChain)
        );
        // A stranger root by another name is no better.
        let other = root("Other Root");
        let other_issuing = intermediate(&other);
        let verifier = storage.verifier(&bundle(&[&trusted, &other_issuing]));
        assert_eq!(
            verifier
                .verify(&storage.delivery(&leaf(&other_issuing)), BODY)
                .await,
            Err(SignatureError::UntrustedChain)
        );
    }

    #[tokio::test]
    async fn key_usage_must_allow_signing_and_issuing() {
        let storage = Storage::start().await;
        let root = root("Test Root");
        let issuing = intermediate(&root);
        let verifier = storage.verifier(&bundle(&[&root, &issuing]));
        let no_signing = leaf_with(&issuing, |p| {
            p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        });
        assert_eq!(
            verifier.verify(&storage.delivery(&no_signing), BODY).await,
            Err(SignatureError::NotAllowed("sign webhook deliveries"))
        );
        // No keyUsage at all is no restriction.
        let unrestricted = leaf_with(&issuing, |p| p.key_usages = vec![]);
        assert_eq!(
            verifier
                .verify(&storage.delivery(&unrestricted), BODY)
                .await,
            Ok(())
        );

        for not_an_issuer in [
            intermediate_with(&root, |p| p.is_ca = IsCa::ExplicitNoCa),
            intermediate_with(&root, |p| {
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            }),
        ] {
            let verifier = storage.verifier(&bundle(&[&root, &not_an_issuer]));
            assert_eq!(
                verifier
                    .verify(&storage.delivery(&leaf(&not_an_issuer)), BODY)
                    .await,
                Err(SignatureError::NotAllowed("issue certificates"))
            );
        }
    }

    #[test]
    fn a_bundle_without_a_root_is_refused() {
        let root = root("Test Root");
        let issuing = intermediate(&root);
        assert_eq!(
            SignatureVerifier::new(
                &["https://3psostorageacct.blob.core.windows.net/cert/".into()],
                &issuing.pem(),
                &TlsTrust::public_roots()
            )
            .err(),
            Some(VerifierConfigError::NoAnchors)
        );
    }
}
