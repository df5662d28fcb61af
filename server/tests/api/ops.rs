//! Health, metrics, compression, start-up errors, graceful shutdown.

use crate::helpers::*;
use cosell_server::startup::Application;
use reqwest::StatusCode;

#[tokio::test]
async fn healthz_checks_the_database() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        reqwest::get(app.url("/healthz")).await.unwrap();
    }
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains(r#"route="/healthz""#)
                && l.contains(r#"status="200""#)
        })
        .unwrap_or_else(|| panic!("no healthz counter in:\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
    assert!(
        text.contains("http_request_duration_seconds_bucket{"),
        "latency histogram present"
    );
}

#[tokio::test]
async fn pages_are_compressed_when_asked() {
    let app = TestApp::spawn().await;
    let r = plain_client()
        .get(app.url("/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
}

#[tokio::test]
async fn unknown_pages_are_404() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(app.url("/no-such-page")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("Page not found"));
}

#[tokio::test]
async fn graceful_shutdown_completes() {
    let app = TestApp::spawn().await;
    let url = app.url("/healthz");
    assert!(reqwest::get(&url).await.unwrap().status().is_success());
    app.stop().await.expect("server stops cleanly");
    assert!(reqwest::get(&url).await.is_err(), "no longer listening");
}

#[tokio::test]
async fn an_unreachable_database_stops_start_up_naming_the_setting() {
    let settings = sandbox_settings("postgres://nobody:secret@127.0.0.1:1/x", &[]);
    let err = Application::build(settings)
        .await
        .err()
        .expect("start-up fails");
    let message = err.to_string();
    assert!(message.starts_with("DATABASE_URL"), "{message}");
    assert!(!message.contains("secret"), "{message}");
}

/// The Overview's checks, as (key, state) pairs.
async fn health(app: &TestApp, client: &reqwest::Client) -> Vec<(String, String)> {
    let (status, page) = app.page(client, "/").await;
    assert_eq!(status, StatusCode::OK);
    checks(&page)
}

#[tokio::test]
async fn the_overview_says_what_needs_doing_until_everything_is_healthy() {
    let mut app = TestApp::spawn().await;
    let viewer = app.signed_in("viewer").await;
    let pairs = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, s)| (k.to_string(), s.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        health(&app, &viewer).await,
        pairs(&[
            ("partner_center", "bad"),
            ("dynamics365", "bad"),
            ("flows", "bad"),
            ("webhook", "bad"),
            ("runs", "ok"),
            ("opportunities", "warn"),
        ])
    );

    let admin = app.signed_in("admin").await;
    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "dynamics365", "admin").await;
    app.call(&admin, "activate_all", &[]).await;
    let callback = app.url("/webhooks/partner-center");
    let (status, body) = app
        .call(
            &admin,
            "register_webhook",
            &[
                ("callback_url", callback.as_str()),
                ("referral_created", "on"),
                ("referral_updated", "on"),
                ("related_referral_created", "on"),
                ("related_referral_updated", "on"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.engine.poll_changes().await.unwrap();
    assert!(
        health(&app, &viewer)
            .await
            .iter()
            .all(|(_, state)| state == "ok"),
        "{:?}",
        health(&app, &viewer).await
    );

    // A run fails: the Overview says so and links to the failed runs.
    app.control(
        "/faults",
        serde_json::json!({ "method": "GET", "path_contains": "/engagements/referrals/", "status": 400, "times": 1 }),
    )
    .await;
    app.world
        .partner_center()
        .seller_creates(serde_json::json!({ "name": "Denied" }));
    let failed = loop {
        // The registration run above announced itself too.
        let run = app.next_run().await;
        if run.flow == cosell::domain::flows::Flow::PartnerCenterToCrm {
            break run;
        }
    };
    assert_eq!(failed.status, cosell::domain::runs::RunStatus::Failed);
    let checks = health(&app, &viewer).await;
    assert!(
        checks.contains(&("runs".to_string(), "bad".to_string())),
        "{checks:?}"
    );
    let (_, page) = app.page(&viewer, "/").await;
    assert!(page.contains("1 run failed in the last 24 hours"));
    assert!(page.contains("/runs?status=failed&amp;from="));
}

#[tokio::test]
async fn healthz_answers_503_when_the_database_does_not() {
    let app = TestApp::spawn().await;
    let ok = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // The database goes away under the running server.
    app.store.close().await;
    let r = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "unavailable");
}

/// The guided setup's steps on the Overview, as (`data-step`, `data-done`) pairs.
fn setup_steps(page: &str) -> Vec<(String, String)> {
    page.split("<li data-step=\"")
        .skip(1)
        .filter_map(|rest| {
            let (step, rest) = rest.split_once('"')?;
            let done = rest.split_once("data-done=\"")?.1.split_once('"')?.0;
            Some((step.to_string(), done.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn the_overview_guides_a_newcomer_through_setup_and_steps_aside_when_done() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;
    let steps = |done: [bool; 4]| {
        ["partner_center", "dynamics365", "flows", "webhook"]
            .iter()
            .zip(done)
            .map(|(s, d)| (s.to_string(), d.to_string()))
            .collect::<Vec<_>>()
    };
    let (_, page) = app.page(&admin, "/").await;
    assert_eq!(setup_steps(&page), steps([false; 4]));
    assert!(page.contains(r#"action="/connections/partner_center/connect?return_to=overview""#));
    // A viewer sees what is missing, and no button.
    let (_, seen) = app.page(&viewer, "/").await;
    assert_eq!(setup_steps(&seen), steps([false; 4]));
    assert!(!seen.contains("return_to=overview") && seen.contains("a referrals admin does this"));

    // Each connection comes back to the Overview, saying so, its step ticked.
    let back = app
        .connect_via(
            &admin,
            "/connections/partner_center/connect?return_to=overview",
            "admin",
        )
        .await;
    assert_eq!(back, "/?connected=partner_center");
    let back = app
        .connect_via(
            &admin,
            "/connections/dynamics365/connect?return_to=overview",
            "admin",
        )
        .await;
    assert_eq!(back, "/?connected=dynamics365");
    let (_, page) = app.page(&admin, &back).await;
    assert!(
        page.contains("Dynamics 365 is connected and works."),
        "{page}"
    );
    assert_eq!(setup_steps(&page), steps([true, true, false, false]));

    // The flows, then the webhook, as the card's forms post them without JavaScript.
    let r = app.submit(&admin, "/", "/api/activate_all", &[]).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let (_, page) = app.page(&admin, "/").await;
    assert_eq!(setup_steps(&page), steps([true, true, true, false]));
    let callback = app.url("/webhooks/partner-center");
    let mut fields = vec![("callback_url".to_string(), callback)];
    for event in [
        "referral_created",
        "referral_updated",
        "related_referral_created",
        "related_referral_updated",
        "overwrite",
    ] {
        fields.push((event.to_string(), "on".to_string()));
    }
    let r = app
        .submit(&admin, "/", "/api/register_webhook", &fields)
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let (_, page) = app.page(&admin, "/").await;
    assert!(
        !page.contains(r#"data-testid="setup""#),
        "all done: no card"
    );
    assert!(checks(&page).contains(&("webhook".to_string(), "ok".to_string())));
}
