//! `POST /webhooks/partner-center`: verified before anything else, stored once, answered 200.

use crate::helpers::*;
use cosell::domain::notification::EventName;
use cosell::store::Recorded;
use cosell_sandbox::partner_center::DeliverySettings;
use cosell_sandbox::testing::{WebhookReceiver, register_webhook};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

async fn next_notice(app: &mut TestApp) -> cosell_server::webhooks::InboxNotice {
    app.inbox.recv().await.expect("inbox notice")
}

#[tokio::test]
async fn a_signed_delivery_is_stored_and_answered_200() {
    let mut app = TestApp::spawn().await;
    register_webhook(
        &app.world,
        &app.url("/webhooks/partner-center"),
        &["referral-created", "referral-updated"],
        true,
    )
    .await;
    let mut attempts = app.world.partner_center().subscribe_deliveries();
    let referral = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Webhook deal" }));
    let id = referral["id"].as_str().unwrap();
    let notice = next_notice(&mut app).await;
    assert_eq!(notice.event, EventName::ReferralCreated);
    assert_eq!(notice.resource_id, id);
    assert!(matches!(notice.recorded, Recorded::New(_)));
    assert_eq!(app.store.inbox_len().await.unwrap(), 1);
    let attempt = attempts.recv().await.unwrap();
    assert_eq!(
        (attempt.attempt, attempt.status),
        (1, Some(200)),
        "Partner Center saw a 200 at once"
    );
}

#[tokio::test]
async fn duplicate_deliveries_have_one_effect() {
    let mut app = TestApp::spawn().await;
    register_webhook(
        &app.world,
        &app.url("/webhooks/partner-center"),
        &["referral-created"],
        false,
    )
    .await;
    app.world
        .partner_center()
        .set_delivery_settings(DeliverySettings {
            retry_base_ms: 5,
            copies: 3,
        });
    let mut attempts = app.world.partner_center().subscribe_deliveries();
    app.world.partner_center().seller_creates(json!({}));
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(next_notice(&mut app).await.recorded);
    }
    let new: Vec<_> = outcomes
        .iter()
        .filter(|r| matches!(r, Recorded::New(_)))
        .collect();
    assert_eq!(new.len(), 1, "{outcomes:?}");
    let Recorded::New(id) = new[0] else {
        unreachable!()
    };
    assert_eq!(app.store.inbox_len().await.unwrap(), 1);
    assert_eq!(app.store.inbox_deliveries(*id).await.unwrap(), 3);
    for _ in 0..3 {
        let attempt = attempts.recv().await.unwrap();
        assert_eq!(
            (attempt.attempt, attempt.status),
            (1, Some(200)),
            "every copy answered 200 at once"
        );
    }
}

/// A genuine delivery captured by a bystander receiver, to replay altered against the app.
async fn captured(app: &TestApp) -> (HeaderMap, Vec<u8>) {
    let mut bystander = WebhookReceiver::start(vec![]).await;
    register_webhook(&app.world, &bystander.url, &["referral-created"], false).await;
    app.world.partner_center().seller_creates(json!({}));
    let (headers, body) = bystander.next().await;
    (headers, body.to_vec())
}

async fn post(app: &TestApp, headers: &HeaderMap, body: Vec<u8>) -> StatusCode {
    let mut request = plain_client()
        .post(app.url("/webhooks/partner-center"))
        .body(body);
    for (name, value) in headers {
        if matches!(
            name.as_str(),
            "authorization"
                | "x-ms-signature"
                | "x-ms-certificate-url"
                | "x-ms-signature-algorithm"
                | "content-type"
        ) {
            request = request.header(name, value);
        }
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn forged_unsigned_and_malformed_deliveries_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let (headers, body) = captured(&app).await;
    // The genuine one would pass: the refusals below are about what was changed.
    let unsigned = HeaderMap::new();
    assert_eq!(
        post(&app, &unsigned, body.clone()).await,
        StatusCode::UNAUTHORIZED
    );

    let mut tampered = body.clone();
    let text = String::from_utf8(tampered.clone())
        .unwrap()
        .replace("referral-created", "referral-updated");
    tampered = text.into_bytes();
    assert_eq!(
        post(&app, &headers, tampered).await,
        StatusCode::UNAUTHORIZED,
        "body changed after signing"
    );

    let mut forged = headers.clone();
    forged.insert(
        "authorization",
        HeaderValue::from_static("Signature bm90IGEgc2lnbmF0dXJl"),
    );
    assert_eq!(
        post(&app, &forged, body.clone()).await,
        StatusCode::UNAUTHORIZED
    );

    let mut elsewhere = headers.clone();
    elsewhere.insert(
        "x-ms-certificate-url",
        HeaderValue::from_static("https://evil.example/cert/x.cer"),
    );
    assert_eq!(
        post(&app, &elsewhere, body.clone()).await,
        StatusCode::UNAUTHORIZED
    );

    assert_eq!(
        post(&app, &headers, b"{not json".to_vec()).await,
        StatusCode::UNAUTHORIZED,
        "malformed, and unsigned as such"
    );
    let huge = vec![b' '; cosell_server::webhooks::MAX_BODY_BYTES + 1];
    assert_eq!(
        post(&app, &headers, huge).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    assert_eq!(app.store.inbox_len().await.unwrap(), 0, "nothing stored");
    // And the genuine one, replayed as Partner Center would, is accepted.
    assert_eq!(post(&app, &headers, body).await, StatusCode::OK);
    assert_eq!(app.store.inbox_len().await.unwrap(), 1);
}
