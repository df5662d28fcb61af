//! cosell trusts the sandbox's own CA in sandbox mode, handed over in process or, from a sandbox that
//! runs on its own, through its control API over plain HTTP; every call it makes goes over HTTPS.

use crate::helpers::*;
use cosell::store::test_support::TestDatabase;
use cosell_sandbox::{Api, JournalFilter, Sandbox};
use cosell_server::startup::Application;
use std::sync::Arc;

#[tokio::test]
async fn a_separate_sandbox_hands_over_its_ca_and_is_called_over_https() {
    let world = Arc::new(
        Sandbox::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap(),
    );
    let db = Arc::new(TestDatabase::new().await);
    // Named by its plain-HTTP address: the same listener, whose APIs cosell calls over HTTPS.
    let app = TestApp::spawn_on_url(world.clone(), db, &world.control_url(), &[]).await;
    assert_eq!(app.sandbox, world.base_url());
    assert!(app.sandbox.starts_with("https://"));
    assert_eq!(app.control, world.control_url());

    // Sign-in (discovery, JWKS, code exchange) and a connection (Entra's token endpoint) both verify
    // the sandbox's certificate with the CA cosell fetched.
    let admin = app.signed_in("admin").await;
    let back = app.connect(&admin, "partner_center", "admin").await;
    assert_eq!(back, "/connections?connected=partner_center");
    let token_calls: Vec<_> = world
        .journal()
        .entries(&JournalFilter::default().api(Api::Entra))
        .into_iter()
        .filter(|e| e.path.ends_with("/oauth2/v2.0/token"))
        .collect();
    assert!(
        token_calls.len() >= 2,
        "sign-in and consent each redeemed a code"
    );
    assert!(
        token_calls.iter().all(|e| e.status == Some(200)),
        "{token_calls:?}"
    );
}

#[tokio::test]
async fn a_separate_sandbox_that_does_not_answer_stops_start_up() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let db = TestDatabase::new().await;
    let url = format!("https://{closed}");
    let err = match Application::build(settings(db.url(), &["--sandbox-url", url.as_str()])).await {
        Ok(_) => panic!("started without its sandbox"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("COSELL_SANDBOX_URL") && err.contains("TLS CA"),
        "{err}"
    );
}
