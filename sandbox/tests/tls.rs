//! The sandbox speaks HTTPS with a CA of its own, and plain HTTP for its control API only, on one port.

mod common;

use common::*;
use cosell_sandbox::entra::TENANT_ID;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

fn discovery_path() -> String {
    format!("/{TENANT_ID}/v2.0/.well-known/openid-configuration")
}

#[tokio::test]
async fn the_apis_speak_https_with_a_certificate_from_the_sandbox_ca() {
    let sb = sandbox().await;
    assert!(sb.base_url().starts_with("https://127.0.0.1:"));
    let url = format!("{}{}", sb.base_url(), discovery_path());

    // Without the CA, the certificate is refused: it is no public CA's.
    let err = reqwest::get(&url).await.expect_err("an unknown issuer");
    assert!(
        format!("{err:?}").contains("UnknownIssuer"),
        "refused for its issuer: {err:?}"
    );

    // With it, the certificate verifies, for 127.0.0.1 and for localhost alike.
    let doc: Value = https_get(&sb, &url).await.unwrap().json().await.unwrap();
    assert!(doc["issuer"].as_str().unwrap().starts_with("https://"));
    assert!(
        doc["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    let localhost = url.replace("127.0.0.1", "localhost");
    let r = https_get(&sb, &localhost).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_ca_is_handed_out_over_plain_http_on_the_same_port() {
    let sb = sandbox().await;
    assert_eq!(
        sb.control_url(),
        sb.base_url().replacen("https://", "http://", 1)
    );
    let r = reqwest::get(format!("{}/_control/tls/ca", sb.control_url()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pem = r.text().await.unwrap();
    assert_eq!(pem, sb.tls_ca_pem());
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // What a separate process does with it: trust it, and call the APIs.
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = http
        .get(format!("{}{}", sb.base_url(), discovery_path()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The control API answers over HTTPS too.
    let r = client(&sb)
        .get(format!("{}/_control/entra/users", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Each sandbox has a CA of its own.
    let other = sandbox().await;
    assert_ne!(other.tls_ca_pem(), sb.tls_ca_pem());
}

#[tokio::test]
async fn plain_http_to_an_api_is_redirected_to_https_and_reaches_no_emulator() {
    let sb = sandbox().await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let path = format!("/{TENANT_ID}/oauth2/v2.0/token");
    let r = plain
        .post(format!("{}{path}", sb.control_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{}{path}", sb.base_url())
    );
    let r = plain
        .get(format!(
            "{}/v1.0/engagements/referrals?$top=2",
            sb.control_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        format!("{}/v1.0/engagements/referrals?$top=2", sb.base_url())
    );
    assert_eq!(sb.journal().all(), [], "nothing reached the emulators");

    // A client that follows the redirect (method and body kept) gets the emulator's answer, over HTTPS.
    let r = cosell_sandbox::testing::client(&sb)
        .post(format!("{}{path}", sb.control_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.url().as_str().starts_with("https://"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], json!("invalid_request"), "{body}");
    assert_eq!(sb.journal().all().len(), 1);
}

#[tokio::test]
async fn a_silent_connection_holds_up_no_other() {
    let sb = sandbox().await;
    // Connected, never a byte: neither TLS nor HTTP can be told yet.
    let _silent = tokio::net::TcpStream::connect(sb.addr()).await.unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        https_get(&sb, format!("{}{}", sb.base_url(), discovery_path())),
    )
    .await
    .expect("served at once")
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("{}/_control/faults", sb.control_url())),
    )
    .await
    .expect("served at once")
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
