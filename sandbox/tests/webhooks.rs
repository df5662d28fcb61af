//! Partner Center webhooks (partner-center.md §2): registration, signed deliveries, retries.

mod common;

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use cosell_sandbox::Sandbox;
use cosell_sandbox::partner_center::{DeliverySettings, MAX_ATTEMPTS};
use cosell_sandbox::testing::WebhookReceiver;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Value, json};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS;

const WEBHOOK_SCOPE: &str = "https://api.partnercenter.microsoft.com/user_impersonation";

async fn register(
    sb: &Sandbox,
    token: &str,
    url: &str,
    events: &[&str],
    ms_header: bool,
) -> reqwest::Response {
    cosell_sandbox::testing::client(sb)
        .post(format!("{}/webhooks/v1/registration", sb.base_url()))
        .bearer_auth(token)
        .json(&json!({ "WebhookUrl": url, "WebhookEvents": events, "SignatureTokenToMsSignatureHeader": ms_header }))
        .send()
        .await
        .unwrap()
}

/// Verifies a delivery the way a receiver must: fetch the certificate, check it is Microsoft's and
/// chains to the trust anchor through the intermediate at its caIssuers URL, then check the RSA-SHA256
/// signature over the raw body.
async fn verify(sb: &Sandbox, headers: &HeaderMap, body: &[u8], ms_header: bool) {
    assert_eq!(headers["x-ms-signature-algorithm"], "rsa-sha256");
    let signature = if ms_header {
        &headers["x-ms-signature"]
    } else {
        &headers["authorization"]
    };
    let signature = signature
        .to_str()
        .unwrap()
        .strip_prefix("Signature ")
        .expect("Signature <b64>");
    let cert_url = headers["x-ms-certificate-url"].to_str().unwrap();
    let der = https_get(sb, cert_url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(
        cert.issuer()
            .to_string()
            .contains("O=Microsoft Corporation"),
        "{}",
        cert.issuer()
    );

    let issuer_url = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                aia.iter()
                    .find_map(|d| match (&d.access_method, &d.access_location) {
                        (m, GeneralName::URI(uri))
                            if *m == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS =>
                        {
                            Some(uri.to_string())
                        }
                        _ => None,
                    })
            }
            _ => None,
        })
        .expect("a caIssuers URL");
    assert!(
        issuer_url.starts_with(&format!("{}/cert/", sb.base_url())),
        "{issuer_url}"
    );
    let issuer_der = https_get(sb, &issuer_url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (_, issuer) = x509_parser::parse_x509_certificate(&issuer_der).unwrap();
    assert_eq!(issuer.subject(), cert.issuer());
    assert!(issuer.is_ca());
    cert.verify_signature(Some(issuer.public_key()))
        .expect("issued by the intermediate");

    let anchor_pem = reqwest::get(format!(
        "{}/_control/partner-center/trust-anchor",
        sb.control_url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let (rest, pem) = x509_parser::pem::parse_x509_pem(anchor_pem.as_bytes()).unwrap();
    assert!(
        x509_parser::pem::parse_x509_pem(rest).is_err(),
        "the control route gives the root alone"
    );
    let anchor = pem.parse_x509().unwrap();
    assert_ne!(
        anchor.subject(),
        cert.issuer(),
        "the root does not sign the leaf"
    );
    issuer
        .verify_signature(Some(anchor.public_key()))
        .expect("the intermediate chains to the trust anchor");

    let key = rsa::RsaPublicKey::from_public_key_der(cert.public_key().raw).unwrap();
    let verifier = VerifyingKey::<sha2::Sha256>::new(key);
    let raw = STANDARD.decode(signature).unwrap();
    verifier
        .verify(body, &Signature::try_from(raw.as_slice()).unwrap())
        .expect("signature over the raw body");
    let mut tampered = body.to_vec();
    tampered.push(b' ');
    assert!(
        verifier
            .verify(&tampered, &Signature::try_from(raw.as_slice()).unwrap())
            .is_err()
    );
}

#[tokio::test]
async fn registration_overwrites_and_needs_the_partnercenter_audience() {
    let sb = sandbox().await;
    let token = access_token(&sb, "admin", WEBHOOK_SCOPE).await;
    let referrals_token = access_token(
        &sb,
        "admin",
        "https://api.partner.microsoft.com/user_impersonation",
    )
    .await;
    let r = register(
        &sb,
        &referrals_token,
        "https://example.invalid/a",
        &["referral-created"],
        false,
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the referrals audience is not the webhook audience"
    );

    let view = || {
        cosell_sandbox::testing::client(&sb)
            .get(format!("{}/webhooks/v1/registration", sb.base_url()))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(view().await.unwrap().status(), StatusCode::NOT_FOUND);
    let r = register(
        &sb,
        &token,
        "https://example.invalid/a",
        &["referral-created", "referral-updated"],
        false,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body["SubscriberId"].is_string());
    register(
        &sb,
        &token,
        "https://example.invalid/b",
        &["referral-updated"],
        false,
    )
    .await;
    let now: Value = view().await.unwrap().json().await.unwrap();
    assert_eq!(
        now,
        json!({ "WebhookUrl": "https://example.invalid/b", "WebhookEvents": ["referral-updated"] })
    );

    let bad = register(
        &sb,
        &token,
        "https://example.invalid/c",
        &["referral-exploded"],
        false,
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let events: Value = cosell_sandbox::testing::client(&sb)
        .get(format!("{}/webhooks/v1/registration/events", sb.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for e in [
        "referral-created",
        "referral-updated",
        "related-referral-created",
        "related-referral-updated",
    ] {
        assert!(events.as_array().unwrap().iter().any(|v| v == e), "{e}");
    }
}

#[tokio::test]
async fn seller_changes_are_delivered_signed_with_the_documented_payload() {
    for ms_header in [false, true] {
        let sb = sandbox().await;
        let token = access_token(&sb, "admin", WEBHOOK_SCOPE).await;
        let mut rx = WebhookReceiver::start(vec![]).await;
        register(
            &sb,
            &token,
            &rx.url,
            &["referral-created", "referral-updated"],
            ms_header,
        )
        .await;

        let referral = sb
            .partner_center()
            .seller_creates(json!({ "name": "Signed" }));
        let id = referral["id"].as_str().unwrap();
        let (headers, body) = rx.next().await;
        verify(&sb, &headers, &body, ms_header).await;
        let payload: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(payload["EventName"], "referral-created");
        assert_eq!(payload["ResourceName"], "referral");
        assert!(payload["AuditUri"].is_null());
        let uri = payload["ResourceUri"].as_str().unwrap();
        assert!(
            uri.ends_with(&format!("/engagements/v1/referrals/{id}")),
            "{uri}"
        );
        let date = payload["ResourceChangeUtcDate"].as_str().unwrap();
        assert!(
            date.ends_with("+00:00") && date.split('.').nth(1).unwrap().len() == 7 + 6,
            "{date}"
        );

        sb.partner_center()
            .seller_updates(
                id,
                serde_json::from_value(
                    json!([{ "op": "replace", "path": "/details/dealValue", "value": 1 }]),
                )
                .unwrap(),
            )
            .unwrap();
        let (_, body) = rx.next().await;
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap()["EventName"],
            "referral-updated"
        );
    }
}

#[tokio::test]
async fn failed_deliveries_are_retried_up_to_ten_times() {
    let sb = sandbox().await;
    let token = access_token(&sb, "admin", WEBHOOK_SCOPE).await;
    sb.partner_center().set_delivery_settings(DeliverySettings {
        retry_base_ms: 5,
        copies: 1,
    });
    // Fails twice, then accepts.
    let mut rx = WebhookReceiver::start(vec![
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
    ])
    .await;
    register(&sb, &token, &rx.url, &["referral-created"], true).await;
    let mut attempts = sb.partner_center().subscribe_deliveries();
    sb.partner_center().seller_creates(json!({}));
    for (n, status) in [(1, 500), (2, 503), (3, 200)] {
        rx.next().await;
        let attempt = attempts.recv().await.unwrap();
        assert_eq!((attempt.attempt, attempt.status), (n, Some(status)));
    }

    // A receiver that never accepts gets exactly MAX_ATTEMPTS tries, each recorded in the journal.
    let mut never = WebhookReceiver::start(vec![StatusCode::INTERNAL_SERVER_ERROR; 20]).await;
    register(&sb, &token, &never.url, &["referral-created"], true).await;
    sb.partner_center().seller_creates(json!({}));
    for n in 1..=MAX_ATTEMPTS {
        never.next().await;
        let attempt = attempts.recv().await.unwrap();
        assert_eq!(
            (attempt.attempt, attempt.status, attempt.url.as_str()),
            (n, Some(500), never.url.as_str())
        );
    }
    let journal: Value = reqwest::get(format!(
        "{}/_control/partner-center/deliveries",
        sb.control_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let to_never = journal
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["url"] == never.url.as_str())
        .count();
    assert_eq!(
        to_never, 10,
        "the control API journal shows all ten attempts"
    );
}

#[tokio::test]
async fn deliveries_can_be_duplicated_and_related_referrals_announced() {
    let sb = sandbox().await;
    let token = access_token(&sb, "admin", WEBHOOK_SCOPE).await;
    let mut rx = WebhookReceiver::start(vec![]).await;
    register(
        &sb,
        &token,
        &rx.url,
        &["referral-created", "related-referral-created"],
        false,
    )
    .await;
    sb.partner_center().set_delivery_settings(DeliverySettings {
        retry_base_ms: 5,
        copies: 2,
    });
    let first = sb
        .partner_center()
        .seller_creates(json!({ "engagementId": "eng-1" }));
    let a = rx.next().await.1;
    let b = rx.next().await.1;
    assert_eq!(a, b, "the same event, twice");
    sb.partner_center().set_delivery_settings(DeliverySettings {
        retry_base_ms: 5,
        copies: 1,
    });
    sb.partner_center()
        .seller_creates(json!({ "engagementId": "eng-1" }));
    let mut names = Vec::new();
    for _ in 0..2 {
        let body: Value = serde_json::from_slice(&rx.next().await.1).unwrap();
        names.push((
            body["EventName"].as_str().unwrap().to_string(),
            body["ResourceUri"].as_str().unwrap().to_string(),
        ));
    }
    names.sort();
    assert_eq!(names[0].0, "referral-created");
    assert_eq!(names[1].0, "related-referral-created");
    assert!(
        names[1].1.ends_with(first["id"].as_str().unwrap()),
        "the related referral is named"
    );
}

#[tokio::test]
async fn validation_events_need_test_created_and_are_throttled() {
    let sb = sandbox().await;
    let token = access_token(&sb, "admin", WEBHOOK_SCOPE).await;
    let mut rx = WebhookReceiver::start(vec![]).await;
    let post = || {
        cosell_sandbox::testing::client(&sb)
            .post(format!(
                "{}/webhooks/v1/registration/validationEvents",
                sb.base_url()
            ))
            .bearer_auth(&token)
            .send()
    };
    register(&sb, &token, &rx.url, &["referral-created"], false).await;
    assert_eq!(post().await.unwrap().status(), StatusCode::BAD_REQUEST);
    register(
        &sb,
        &token,
        &rx.url,
        &["referral-created", "test-created"],
        false,
    )
    .await;
    let r: Value = post().await.unwrap().json().await.unwrap();
    let correlation = r["correlationId"].as_str().unwrap().to_string();
    let body: Value = serde_json::from_slice(&rx.next().await.1).unwrap();
    assert_eq!(body["EventName"], "test-created");
    assert_eq!(body["ResourceName"], "test");
    assert!(body["ResourceUri"].as_str().unwrap().starts_with("http://"));
    assert_eq!(post().await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        post().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS,
        "2 per minute"
    );

    rx.next().await;
    let status: Value = cosell_sandbox::testing::client(&sb)
        .get(format!(
            "{}/webhooks/v1/registration/validationEvents/{correlation}",
            sb.base_url()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "completed");
    assert_eq!(status["results"][0]["responseCode"], "OK");
}

#[tokio::test]
async fn the_resource_uri_reads_the_referral_with_the_webhook_audience() {
    let sb = sandbox().await;
    let token = access_token(&sb, "admin", WEBHOOK_SCOPE).await;
    let referral = sb
        .partner_center()
        .seller_creates(json!({ "name": "Via ResourceUri" }));
    let url = format!(
        "{}/engagements/v1/referrals/{}",
        sb.base_url(),
        referral["id"].as_str().unwrap()
    );
    let body: Value = cosell_sandbox::testing::client(&sb)
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["name"], "Via ResourceUri");
}
