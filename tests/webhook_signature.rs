//! The webhook signature verifier against real, signed deliveries from the sandbox over HTTP.

use cosell::clients::partner_center::webhook_signature::{
    SignatureError, SignatureVerifier, VerifierConfigError,
};
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

fn verifier_for(sandbox: &Sandbox) -> SignatureVerifier {
    SignatureVerifier::new(
        &[format!("{}/cert/", sandbox.base_url())],
        &sandbox.partner_center().trust_anchor_pem(),
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

#[test]
fn bad_configuration_is_refused() {
    assert!(matches!(
        SignatureVerifier::new(&["not a url".into()], ""),
        Err(VerifierConfigError::BadPrefix(_))
    ));
    assert!(matches!(
        SignatureVerifier::new(
            &["https://3psostorageacct.blob.core.windows.net/cert".into()],
            ""
        ),
        Err(VerifierConfigError::BadPrefix(_))
    ));
    assert_eq!(
        SignatureVerifier::new(
            &["https://3psostorageacct.blob.core.windows.net/cert/".into()],
            "no pem here"
        )
        .err(),
        Some(VerifierConfigError::NoAnchors)
    );
}
