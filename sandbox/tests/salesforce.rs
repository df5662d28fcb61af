//! The Salesforce emulator's OAuth, identity, sessions and API limits against the documented behaviour
//! (shared/reference/crm-apis.md §3.1–3.3, §3.8, §3.11; emulator-checklist.md §5), over real HTTP.

mod common;

use common::{challenge, client, query, sandbox};
use cosell_sandbox::Sandbox;
use cosell_sandbox::salesforce::{
    ORG_ID, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, USER_ADMIN, USER_STANDARD,
};
use cosell_sandbox::testing::{salesforce_access_token, salesforce_tokens};
use reqwest::StatusCode;
use serde_json::Value;

const CALLBACK: &str = "http://127.0.0.1:9/sf-callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn authorize_form(user: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form: Vec<(String, String)> = [
        ("client_id", SALESFORCE_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", "api refresh_token id"),
        ("state", "st-1"),
        ("user", user),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        form.retain(|(name, _)| name != k);
        form.push((k.to_string(), v.to_string()));
    }
    form
}

/// Picks `user` on the authorize page (with a PKCE challenge for VERIFIER); the code.
async fn code(sb: &Sandbox, user: &str, extra: &[(&str, &str)]) -> String {
    sb.salesforce().register_redirect_uri(CALLBACK);
    let mut all = vec![
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_string()),
    ];
    all.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let extra: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = client(sb)
        .post(format!("{}/services/oauth2/authorize", sb.base_url()))
        .form(&authorize_form(user, &extra))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(CALLBACK), "{to}");
    assert_eq!(query(&to, "state").as_deref(), Some("st-1"));
    query(&to, "code").unwrap()
}

async fn token(sb: &Sandbox, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = client(sb)
        .post(format!("{}/services/oauth2/token", sb.base_url()))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn redeem(sb: &Sandbox, code: &str, verifier: &str) -> (StatusCode, Value) {
    token(
        sb,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", SALESFORCE_CLIENT_ID),
            ("client_secret", SALESFORCE_CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh(sb: &Sandbox, refresh_token: &str) -> (StatusCode, Value) {
    token(
        sb,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", SALESFORCE_CLIENT_ID),
            ("client_secret", SALESFORCE_CLIENT_SECRET),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

fn oauth_error(body: &Value, error: &str, description: &str) {
    assert!(
        body.is_object(),
        "OAuth errors are objects, not arrays: {body}"
    );
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
}

async fn rest(sb: &Sandbox, token: &str, path: &str) -> reqwest::Response {
    client(sb)
        .get(format!("{}/services/data/v62.0/{path}", sb.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn authorize_page_lists_demo_users_and_refuses_strangers() {
    let sb = sandbox().await;
    sb.salesforce().register_redirect_uri(CALLBACK);
    let page = client(&sb)
        .get(format!("{}/services/oauth2/authorize", sb.base_url()))
        .query(&[
            ("client_id", SALESFORCE_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for key in ["admin", "standard", "revoked"] {
        assert!(
            html.contains(&format!(r#"name="user" value="{key}""#)),
            "{key}"
        );
    }
    // An unknown redirect URI is shown, never redirected to.
    let foreign = client(&sb)
        .get(format!("{}/services/oauth2/authorize", sb.base_url()))
        .query(&[
            ("client_id", SALESFORCE_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "http://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
    assert!(
        foreign
            .text()
            .await
            .unwrap()
            .contains("redirect_uri_mismatch")
    );
    // Denying comes back with access_denied.
    let denied = client(&sb)
        .post(format!("{}/services/oauth2/authorize", sb.base_url()))
        .form(&authorize_form("admin", &[("deny", "1")]))
        .send()
        .await
        .unwrap();
    let to = denied.headers()["location"].to_str().unwrap();
    assert_eq!(query(to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(to, "state").as_deref(), Some("st-1"));
}

#[tokio::test]
async fn code_with_pkce_is_single_use_and_the_answer_has_salesforce_shape() {
    let sb = sandbox().await;
    let c = code(&sb, "admin", &[]).await;
    let (status, body) = redeem(&sb, &c, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("expires_in").is_none(),
        "Salesforce sends no expires_in"
    );
    let issued_at = body["issued_at"].as_str().expect("issued_at is a string");
    let ms: i64 = issued_at.parse().unwrap();
    assert!((ms / 1000 - time::OffsetDateTime::now_utc().unix_timestamp()).abs() < 60);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], sb.base_url());
    assert_eq!(
        body["id"],
        format!("{}/id/{ORG_ID}/{USER_ADMIN}", sb.base_url())
    );
    assert_eq!(body["scope"], "api refresh_token id");
    assert!(body["signature"].as_str().unwrap().ends_with('='));
    let access = body["access_token"].as_str().unwrap();
    assert!(
        access.starts_with(&format!("{}!AQ", &ORG_ID[..15])),
        "{access}"
    );
    assert!(body["refresh_token"].is_string());

    let (status, again) = redeem(&sb, &c, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");

    // The wrong verifier is refused, and spends the code.
    let c = code(&sb, "admin", &[]).await;
    let (status, body) = redeem(
        &sb,
        &c,
        "another-verifier-another-verifier-another-verifier",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(redeem(&sb, &c, VERIFIER).await.0, StatusCode::BAD_REQUEST);

    // Codes live 15 minutes.
    let c = code(&sb, "admin", &[]).await;
    sb.clock().advance(16 * 60);
    let (_, body) = redeem(&sb, &c, VERIFIER).await;
    oauth_error(&body, "invalid_grant", "authorization code expired");

    // No refresh_token scope, no refresh token.
    let c = code(&sb, "admin", &[("scope", "api")]).await;
    let (_, body) = redeem(&sb, &c, VERIFIER).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn token_endpoint_errors_are_oauth_objects() {
    let sb = sandbox().await;
    let (status, body) = token(&sb, &[("client_id", SALESFORCE_CLIENT_ID)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    oauth_error(&body, "invalid_request", "grant type is missing");
    let (_, body) = token(&sb, &[("grant_type", "password")]).await;
    oauth_error(&body, "unsupported_grant_type", "grant type not supported");
    let c = code(&sb, "admin", &[]).await;
    let (status, body) = token(
        &sb,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", SALESFORCE_CLIENT_ID),
            ("client_secret", "wrong"),
            ("code", &c),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    oauth_error(&body, "invalid_client", "invalid client credentials");
    // HTTP Basic client authentication works too.
    let r = client(&sb)
        .post(format!("{}/services/oauth2/token", sb.base_url()))
        .basic_auth(SALESFORCE_CLIENT_ID, Some(SALESFORCE_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", c.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_without_and_with_rotation() {
    let sb = sandbox().await;
    let first = salesforce_tokens(&sb, "standard", "api refresh_token").await;
    let rt = first["refresh_token"].as_str().unwrap();

    let (status, body) = refresh(&sb, rt).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("refresh_token").is_none(),
        "no rotation: no new refresh token"
    );
    assert_ne!(body["access_token"], first["access_token"]);
    assert_eq!(refresh(&sb, rt).await.0, StatusCode::OK, "still usable");

    sb.salesforce().set_refresh_rotation(true);
    let (_, rotated) = refresh(&sb, rt).await;
    let new_rt = rotated["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_string();
    assert_ne!(new_rt, rt);
    let (status, body) = refresh(&sb, rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    oauth_error(&body, "invalid_grant", "expired access/refresh token");
    assert_eq!(refresh(&sb, &new_rt).await.0, StatusCode::OK);

    // Revocation takes the refresh token and its sessions.
    let access = rotated["access_token"].as_str().unwrap();
    let r = client(&sb)
        .post(format!("{}/services/oauth2/revoke", sb.base_url()))
        .form(&[("token", new_rt.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(refresh(&sb, &new_rt).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        rest(&sb, access, "limits/").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_revoked_user_signs_in_but_cannot_refresh() {
    let sb = sandbox().await;
    let tokens = salesforce_tokens(&sb, "revoked", "api refresh_token").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(rest(&sb, access, "limits/").await.status(), StatusCode::OK);
    let (status, body) = refresh(&sb, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    oauth_error(&body, "invalid_grant", "expired access/refresh token");
}

#[tokio::test]
async fn identity_url_names_the_user() {
    let sb = sandbox().await;
    let tokens = salesforce_tokens(&sb, "standard", "api id").await;
    let id_url = tokens["id"].as_str().unwrap();
    let me: Value = client(&sb)
        .get(id_url)
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user_id"], USER_STANDARD);
    assert_eq!(me["organization_id"], ORG_ID);
    assert_eq!(me["first_name"], "Jordan");
    assert_eq!(me["display_name"], "Jordan Lee");
    assert!(me["username"].as_str().unwrap().contains('@'));
    assert!(me["email"].as_str().unwrap().contains('@'));
    assert_eq!(
        me["urls"]["rest"],
        format!("{}/services/data/v{{version}}/", sb.base_url())
    );
    let r = client(&sb)
        .get(id_url)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sessions_expire_on_the_sandbox_clock_and_on_demand() {
    let sb = sandbox().await;
    let token = salesforce_access_token(&sb, "admin").await;
    let r = rest(&sb, &token, "limits/").await;
    assert_eq!(r.status(), StatusCode::OK);
    sb.clock().advance(2 * 3600);
    let r = rest(&sb, &token, "limits/").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])
    );

    let token = salesforce_access_token(&sb, "admin").await;
    let expired: Value = client(&sb)
        .post(format!(
            "{}/_control/salesforce/expire-sessions",
            sb.control_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(expired["expired"].as_u64().unwrap() >= 1);
    assert_eq!(
        rest(&sb, &token, "limits/").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        rest(&sb, "garbage", "limits/").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn every_call_counts_against_the_org_and_the_limit_refuses_with_403() {
    let sb = sandbox().await;
    let admin = salesforce_access_token(&sb, "admin").await;
    let standard = salesforce_access_token(&sb, "standard").await;
    let versions = client(&sb)
        .get(format!("{}/services/data/", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert!(versions.headers().get("sforce-limit-info").is_none());
    let list: Value = versions.json().await.unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"] == "62.0")
    );

    let r = rest(&sb, &admin, "limits/").await;
    assert_eq!(r.headers()["sforce-limit-info"], "api-usage=1/15000");
    let limits: Value = r.json().await.unwrap();
    assert_eq!(limits["DailyApiRequests"]["Max"], 15000);
    assert_eq!(limits["DailyApiRequests"]["Remaining"], 14999);
    // Another user's call counts against the same org-wide number.
    let r = rest(&sb, &standard, "sobjects/Account/describe").await;
    assert_eq!(r.headers()["sforce-limit-info"], "api-usage=2/15000");

    let settings: Value = client(&sb)
        .post(format!("{}/_control/salesforce/settings", sb.control_url()))
        .json(&serde_json::json!({"daily_api_max": 10, "api_used": 9}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["api_used"], 9);
    assert_eq!(rest(&sb, &admin, "limits/").await.status(), StatusCode::OK);
    let r = rest(&sb, &admin, "limits/").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(r.headers()["sforce-limit-info"], "api-usage=10/10");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!([{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}])
    );
    // A new day, a new allocation.
    sb.clock().advance(24 * 3600);
    let fresh = salesforce_access_token(&sb, "admin").await;
    assert_eq!(rest(&sb, &fresh, "limits/").await.status(), StatusCode::OK);
    assert_eq!(sb.salesforce().api_used(), 1);
}

#[tokio::test]
async fn shared_fault_rules_apply_to_salesforce_paths() {
    let sb = sandbox().await;
    let token = salesforce_access_token(&sb, "admin").await;
    sb.faults().add(cosell_sandbox::FaultRule::new(
        "/services/data/",
        cosell_sandbox::FaultKind::Status {
            status: StatusCode::UNAUTHORIZED,
            body: Some(serde_json::json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])),
            retry_after: None,
        },
    ));
    let r = rest(&sb, &token, "limits/").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(rest(&sb, &token, "limits/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn callback_urls_are_registered_through_the_control_api() {
    let sb = sandbox().await;
    let callback = "http://127.0.0.1:9/sf-registered-over-http";
    let authorize = || async {
        client(&sb)
            .post(format!("{}/services/oauth2/authorize", sb.base_url()))
            .form(&authorize_form(
                "admin",
                &[
                    ("redirect_uri", callback),
                    ("code_challenge", &challenge(VERIFIER)),
                    ("code_challenge_method", "S256"),
                ],
            ))
            .send()
            .await
            .unwrap()
    };
    let before = authorize().await;
    assert_eq!(before.status(), StatusCode::BAD_REQUEST);
    assert!(
        before
            .text()
            .await
            .unwrap()
            .contains("redirect_uri_mismatch")
    );

    let control = format!("{}/_control/salesforce/redirect-uris", sb.control_url());
    let r = client(&sb)
        .post(&control)
        .json(&serde_json::json!({ "redirect_uri": callback }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = authorize().await;
    assert_eq!(after.status(), StatusCode::FOUND);
    let to = after.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(callback), "{to}");
    assert!(query(to, "code").is_some(), "{to}");

    let r = client(&sb)
        .post(&control)
        .json(&serde_json::json!({ "redirect_uri": "not a url" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
