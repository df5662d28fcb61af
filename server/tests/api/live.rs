//! Live pages: `/events` tells a signed-in page each time something it shows changed (a seller's referral
//! arriving and its run, a seller's update and its run), refuses anyone without a role, and ends when the
//! server shuts down so a shutdown is never held up by an open page.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

/// Reads "changed" events until one announces the store's state as it is now (changes a second apart
/// are announced as one; each event carries the state it announces).
async fn told_of_now(app: &TestApp, stream: &mut reqwest::Response) {
    let read = async {
        let mut text = String::new();
        while let Some(chunk) = stream.chunk().await.expect("the stream") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                let Some(data) = event.strip_prefix("event: changed\ndata: ") else {
                    continue;
                };
                let now = app.engine.store().activity_mark().await.unwrap();
                if data.trim_end() == now.to_string() {
                    return;
                }
            }
        }
        panic!("the stream ended");
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("the latest state announced within 20 s");
}

#[tokio::test]
async fn an_open_page_hears_each_change_and_nobody_else_listens() {
    let mut app = TestApp::spawn_ready().await;

    // Not signed in, or signed in without a role: refused, nothing streamed.
    let r = plain_client().get(app.url("/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let norole = app.signed_in("norole").await;
    let r = norole.get(app.url("/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let viewer = app.signed_in("viewer").await;
    let mut stream = viewer.get(app.url("/events")).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.headers()["content-type"],
        "text/event-stream",
        "not compressed, not buffered"
    );
    let before = app.engine.store().activity_mark().await.unwrap();

    // A seller shares a referral: once its run has ended the page has been told of that state.
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Live pages",
        "customerProfile": { "name": "Live pages customer", "address": { "postalCode": "98052", "country": "US" } },
    }));
    let run = app.next_run().await;
    assert_eq!(run.flow, cosell::domain::flows::Flow::PartnerCenterToCrm);
    told_of_now(&app, &mut stream).await;
    assert_ne!(app.engine.store().activity_mark().await.unwrap(), before);

    // Then the seller changes it: told again.
    let id = referral["id"].as_str().unwrap();
    app.seller_updates(
        id,
        json!([{ "op": "replace", "path": "/details/dealValue", "value": 99000 }]),
    )
    .await;
    told_of_now(&app, &mut stream).await;

    // Shutting down with the page still open completes, and the stream ends.
    app.stop().await.expect("a graceful stop");
    let rest = tokio::time::timeout(Duration::from_secs(20), async {
        while stream.chunk().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(rest.is_ok(), "the stream ended with the server");
}
