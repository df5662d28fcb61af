//! Shared by the emulator tests: a sandbox on a free port, a client trusting its CA, PKCE, and tokens
//! obtained the real way.
#![allow(dead_code)] // each test binary uses its own part

pub mod salesforce;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cosell_sandbox::Sandbox;
use cosell_sandbox::entra::{DASHBOARD_CLIENT_ID, DASHBOARD_CLIENT_SECRET, TENANT_ID};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

pub async fn sandbox() -> Sandbox {
    let sandbox = Sandbox::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    sandbox
        .entra()
        .register_redirect_uri(DASHBOARD_CLIENT_ID, REDIRECT);
    sandbox
}

/// A client that trusts the sandbox's CA and follows no redirect (each hop is inspected).
pub fn client(sb: &Sandbox) -> reqwest::Client {
    cosell_sandbox::testing::client_builder(sb)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn query(location: &str, name: &str) -> Option<String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn authorize_form(scope: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("client_id", DASHBOARD_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "s-123"),
        ("nonce", "n-456"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        p.retain(|(name, _)| name != k);
        p.push((k.to_string(), v.to_string()));
    }
    p
}

/// Picks `user` on the authorize page; returns the redirect back.
pub async fn sign_in(
    sb: &Sandbox,
    user: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = authorize_form(scope, extra);
    form.push(("user".into(), user.into()));
    client(sb)
        .post(format!(
            "{}/{TENANT_ID}/oauth2/v2.0/authorize",
            sb.base_url()
        ))
        .form(&form)
        .send()
        .await
        .unwrap()
}

pub async fn code_for_scope(sb: &Sandbox, user: &str, scope: &str) -> String {
    let r = sign_in(
        sb,
        user,
        scope,
        &[
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(REDIRECT));
    assert_eq!(
        query(&to, "state").as_deref(),
        Some("s-123"),
        "state echoed"
    );
    query(&to, "code").unwrap()
}

pub async fn token(sb: &Sandbox, form: &[(&str, &str)]) -> reqwest::Response {
    client(sb)
        .post(format!("{}/{TENANT_ID}/oauth2/v2.0/token", sb.base_url()))
        .form(form)
        .send()
        .await
        .unwrap()
}

pub async fn redeem(sb: &Sandbox, code: &str, verifier: &str) -> reqwest::Response {
    token(
        sb,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", DASHBOARD_CLIENT_ID),
            ("client_secret", DASHBOARD_CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// An access token for `user` and `scope`, obtained through the authorize page and the token endpoint.
pub async fn access_token(sb: &Sandbox, user: &str, scope: &str) -> String {
    cosell_sandbox::testing::access_token(sb, user, scope).await
}

pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `GET url` over HTTPS with a client trusting the sandbox's CA (redirects followed, as `reqwest::get`).
pub async fn https_get(
    sb: &Sandbox,
    url: impl reqwest::IntoUrl,
) -> reqwest::Result<reqwest::Response> {
    cosell_sandbox::testing::client(sb).get(url).send().await
}
