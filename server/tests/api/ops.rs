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
    let r = reqwest::Client::new()
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
