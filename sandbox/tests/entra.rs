//! The Entra ID emulator against the documented behaviour (shared/reference/crm-apis.md §1,
//! emulator-checklist.md §1), over real HTTP.

mod common;

use common::*;
use cosell_sandbox::Sandbox;
use cosell_sandbox::entra::{DASHBOARD_CLIENT_ID, DASHBOARD_CLIENT_SECRET, TENANT_ID};
use reqwest::StatusCode;
use serde_json::Value;

const SCOPE: &str = "openid profile offline_access";

fn authorize_params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    authorize_form(SCOPE, extra)
}

async fn code_redirect(sb: &Sandbox, user: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    sign_in(sb, user, SCOPE, extra).await
}

async fn code_for(sb: &Sandbox, user: &str) -> String {
    code_for_scope(sb, user, SCOPE).await
}

/// Asserts Entra's token error shape and returns the AADSTS code.
async fn entra_error(r: reqwest::Response, status: StatusCode, error: &str) -> u64 {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    let code = body["error_codes"][0].as_u64().unwrap();
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(description.contains("\r\nTrace ID: ") && description.contains("\r\nCorrelation ID: "));
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field} in {body}");
    }
    code
}

/// The AADSTS code of an `invalid_grant` answer (HTTP 400, Entra's error shape).
async fn invalid_grant(r: reqwest::Response) -> u64 {
    entra_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await
}

#[tokio::test]
async fn discovery_and_keys_are_served_as_entra_does() {
    let sb = sandbox().await;
    let r = https_get(
        &sb,
        format!(
            "{}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
            sb.base_url()
        ),
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["cache-control"], "max-age=86400, private");
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["issuer"], sb.entra().issuer());
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let jwks: Value = https_get(&sb, doc["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(jwks["keys"][0]["kid"].is_string());

    // Multi-tenant authorities publish the templated issuer.
    let common: Value = https_get(
        &sb,
        format!(
            "{}/common/v2.0/.well-known/openid-configuration",
            sb.base_url()
        ),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(
        common["issuer"]
            .as_str()
            .unwrap()
            .ends_with("/{tenantid}/v2.0")
    );

    let unknown = https_get(
        &sb,
        format!(
            "{}/no-such-tenant/v2.0/.well-known/openid-configuration",
            sb.base_url()
        ),
    )
    .await
    .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);

    // Rotation keeps the old key published alongside the new one.
    sb.entra().rotate_signing_key();
    let jwks: Value = https_get(&sb, doc["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn authorize_refuses_unknown_clients_and_foreign_redirects_without_redirecting() {
    let sb = sandbox().await;
    for (extra, code) in [
        (
            vec![("client_id", "11111111-0000-0000-0000-000000000000")],
            "AADSTS700016",
        ),
        (
            vec![("redirect_uri", "http://evil.example/cb")],
            "AADSTS50011",
        ),
    ] {
        let mut url = url::Url::parse(&format!(
            "{}/{TENANT_ID}/oauth2/v2.0/authorize",
            sb.base_url()
        ))
        .unwrap();
        url.query_pairs_mut().extend_pairs(authorize_params(&extra));
        let r = client(&sb).get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(
            r.headers().get("location").is_none(),
            "never redirects to an unverified URI"
        );
        assert!(r.text().await.unwrap().contains(code));
    }
}

#[tokio::test]
async fn authorize_errors_go_back_to_the_client_with_state() {
    let sb = sandbox().await;
    let r = code_redirect(&sb, "admin", &[("response_type", "token")]).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        query(&to, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert!(
        query(&to, "error_description")
            .unwrap()
            .starts_with("AADSTS")
    );
    assert_eq!(query(&to, "state").as_deref(), Some("s-123"));
}

#[tokio::test]
async fn a_code_with_pkce_is_redeemed_once() {
    let sb = sandbox().await;
    let code = code_for(&sb, "admin").await;
    let r = redeem(&sb, &code, VERIFIER).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store, no-cache");
    assert_eq!(r.headers()["pragma"], "no-cache");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].is_u64(), "v2 sends a number");
    assert!(body["refresh_token"].is_string(), "offline_access asked");
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], DASHBOARD_CLIENT_ID);
    assert_eq!(id["tid"], TENANT_ID);
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["ver"], "2.0");
    assert_eq!(id["roles"], serde_json::json!(["Cosell.Admin"]));
    assert_eq!(id["iss"], sb.entra().issuer());

    assert_eq!(
        invalid_grant(redeem(&sb, &code, VERIFIER).await).await,
        54005
    );
}

#[tokio::test]
async fn a_wrong_or_missing_verifier_is_refused() {
    let sb = sandbox().await;
    let code = code_for(&sb, "admin").await;
    let wrong = redeem(&sb, &code, "another-verifier-another-verifier-another-ver").await;
    assert_eq!(
        entra_error(wrong, StatusCode::BAD_REQUEST, "invalid_grant").await,
        501481
    );
    let code = code_for(&sb, "admin").await;
    assert_eq!(invalid_grant(redeem(&sb, &code, "").await).await, 501481);
}

#[tokio::test]
async fn a_challenge_without_a_method_is_plain() {
    let sb = sandbox().await;
    let r = code_redirect(&sb, "viewer", &[("code_challenge", VERIFIER)]).await;
    let code = query(r.headers()["location"].to_str().unwrap(), "code").unwrap();
    assert_eq!(redeem(&sb, &code, VERIFIER).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn codes_expire_after_ten_minutes() {
    let sb = sandbox().await;
    let code = code_for(&sb, "admin").await;
    sb.clock().advance(601);
    assert_eq!(
        invalid_grant(redeem(&sb, &code, VERIFIER).await).await,
        70008
    );
}

#[tokio::test]
async fn users_without_roles_get_no_roles_claim() {
    let sb = sandbox().await;
    let code = code_for(&sb, "norole").await;
    let body: Value = redeem(&sb, &code, VERIFIER).await.json().await.unwrap();
    assert!(
        claims(body["id_token"].as_str().unwrap())
            .get("roles")
            .is_none()
    );
}

#[tokio::test]
async fn an_expired_password_is_reported_at_the_token_endpoint() {
    let sb = sandbox().await;
    let code = code_for(&sb, "expired").await;
    assert_eq!(
        invalid_grant(redeem(&sb, &code, VERIFIER).await).await,
        50055
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_can_be_revoked() {
    let sb = sandbox().await;
    let code = code_for(&sb, "admin").await;
    let first: Value = redeem(&sb, &code, VERIFIER).await.json().await.unwrap();
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let sb = &sb;
        async move {
            token(
                sb,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", DASHBOARD_CLIENT_ID),
                    ("client_secret", DASHBOARD_CLIENT_SECRET),
                    ("refresh_token", &rt),
                ],
            )
            .await
        }
    };
    let second: Value = refresh(rt1.clone()).await.json().await.unwrap();
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "a new refresh token every time");
    assert_eq!(
        refresh(rt1.clone()).await.status(),
        StatusCode::OK,
        "the old one is not revoked by use"
    );

    sb.entra().revoke_user_grants("admin");
    assert_eq!(invalid_grant(refresh(rt2).await).await, 50173);
}

/// One consent may name several resources (crm-apis.md §1.3): the code redeems for the first, and the
/// refresh token for each of them, one resource per request, and keeps the whole consent as it rotates.
#[tokio::test]
async fn one_consent_spans_resources_and_refreshes_for_each() {
    let sb = sandbox().await;
    let referrals = "https://api.partner.microsoft.com/user_impersonation";
    let webhooks = "https://api.partnercenter.microsoft.com/user_impersonation";
    let scope = format!("openid profile offline_access {referrals} {webhooks}");
    let code = code_for_scope(&sb, "admin", &scope).await;
    let first: Value = redeem(&sb, &code, VERIFIER).await.json().await.unwrap();
    let at = claims(first["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], "https://api.partner.microsoft.com");
    assert_eq!(at["scp"], "user_impersonation");
    assert!(!first["scope"].as_str().unwrap().contains(webhooks));

    let refresh = |rt: String, scope: &'static str| {
        let sb = &sb;
        async move {
            token(
                sb,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", DASHBOARD_CLIENT_ID),
                    ("client_secret", DASHBOARD_CLIENT_SECRET),
                    ("refresh_token", &rt),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let second: Value = refresh(
        first["refresh_token"].as_str().unwrap().into(),
        "https://api.partnercenter.microsoft.com/user_impersonation offline_access",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        claims(second["access_token"].as_str().unwrap())["aud"],
        "https://api.partnercenter.microsoft.com"
    );
    // The rotated token still redeems for the other resource of the consent…
    let third = refresh(
        second["refresh_token"].as_str().unwrap().into(),
        "https://api.partner.microsoft.com/user_impersonation offline_access",
    )
    .await;
    assert_eq!(third.status(), StatusCode::OK);
    // …but not for a resource nobody consented to.
    let other = refresh(
        second["refresh_token"].as_str().unwrap().into(),
        "https://contoso-sandbox.crm.dynamics.com/user_impersonation",
    )
    .await;
    assert_eq!(invalid_grant(other).await, 65001);
}

#[tokio::test]
async fn a_password_that_expires_stops_refreshes_until_renewed() {
    let sb = sandbox().await;
    let code = code_for(&sb, "admin").await;
    let first: Value = redeem(&sb, &code, VERIFIER).await.json().await.unwrap();
    let rt = first["refresh_token"].as_str().unwrap().to_string();
    let refresh = || async {
        token(
            &sb,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", DASHBOARD_CLIENT_ID),
                ("client_secret", DASHBOARD_CLIENT_SECRET),
                ("refresh_token", &rt),
            ],
        )
        .await
    };
    let expire = |expired: bool| {
        client(&sb)
            .post(format!(
                "{}/_control/entra/users/admin/password",
                sb.control_url()
            ))
            .json(&serde_json::json!({ "expired": expired }))
            .send()
    };
    assert_eq!(expire(true).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(invalid_grant(refresh().await).await, 50055);
    assert_eq!(
        expire(false).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(refresh().await.status(), StatusCode::OK);
    let nobody = client(&sb)
        .post(format!(
            "{}/_control/entra/users/nobody/password",
            sb.control_url()
        ))
        .json(&serde_json::json!({ "expired": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn client_credentials_need_dot_default_and_get_no_refresh_token() {
    let sb = sandbox().await;
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", DASHBOARD_CLIENT_ID),
        ("client_secret", DASHBOARD_CLIENT_SECRET),
    ];
    let mut ok = base.to_vec();
    ok.push(("scope", "https://api.partner.microsoft.com/.default"));
    let body: Value = token(&sb, &ok).await.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        "https://api.partner.microsoft.com"
    );
    let mut bad = base.to_vec();
    bad.push((
        "scope",
        "https://api.partner.microsoft.com/user_impersonation",
    ));
    entra_error(
        token(&sb, &bad).await,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    )
    .await;
}

#[tokio::test]
async fn client_authentication_by_body_or_basic_and_bad_secrets() {
    let sb = sandbox().await;
    let code = code_for(&sb, "admin").await;
    // client_secret_basic: form-urlencoded parts, then base64.
    let r = client(&sb)
        .post(format!("{}/{TENANT_ID}/oauth2/v2.0/token", sb.base_url()))
        .basic_auth(DASHBOARD_CLIENT_ID, Some(DASHBOARD_CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let bad = [
        ("grant_type", "client_credentials"),
        ("client_id", DASHBOARD_CLIENT_ID),
        ("client_secret", "wrong"),
        ("scope", "https://x.example/.default"),
    ];
    assert_eq!(
        entra_error(
            token(&sb, &bad).await,
            StatusCode::BAD_REQUEST,
            "invalid_client"
        )
        .await,
        7000215
    );
    // The unconfirmed 401 variant, switched on.
    let mut faults = sb.entra().faults();
    faults.invalid_client_status_401 = true;
    sb.entra().set_faults(faults);
    assert_eq!(
        entra_error(
            token(&sb, &bad).await,
            StatusCode::UNAUTHORIZED,
            "invalid_client"
        )
        .await,
        7000215
    );
}

#[tokio::test]
async fn the_control_api_sets_faults_and_moves_the_clock() {
    let sb = sandbox().await;
    let http = reqwest::Client::new();
    let set: Value = http
        .post(format!("{}/_control/entra/faults", sb.control_url()))
        .json(&serde_json::json!({ "next_id_token": "wrong_nonce" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["next_id_token"], "wrong_nonce");
    assert_eq!(
        set["expired_password_at"], "token",
        "unset fields keep their defaults"
    );
    let code = code_for(&sb, "admin").await;
    let body: Value = redeem(&sb, &code, VERIFIER).await.json().await.unwrap();
    assert_ne!(claims(body["id_token"].as_str().unwrap())["nonce"], "n-456");

    let before = sb.clock().now();
    http.post(format!("{}/_control/clock/advance", sb.control_url()))
        .json(&serde_json::json!({ "seconds": 3600 }))
        .send()
        .await
        .unwrap();
    assert!(sb.clock().now() - before >= time::Duration::seconds(3600));
    let users: Value = http
        .get(format!("{}/_control/entra/users", sb.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn the_end_session_endpoint_returns_only_to_registered_uris() {
    let sb = sandbox().await;
    let doc: Value = https_get(
        &sb,
        format!(
            "{}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
            sb.base_url()
        ),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let logout = doc["end_session_endpoint"].as_str().unwrap().to_string();
    let r = client(&sb)
        .get(format!(
            "{logout}?post_logout_redirect_uri={REDIRECT}&state=bye"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(REDIRECT) && to.contains("state=bye"), "{to}");

    let r = client(&sb)
        .get(format!(
            "{logout}?post_logout_redirect_uri=https://evil.example/"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "an unregistered URI gets a page, not a redirect"
    );
    assert!(r.text().await.unwrap().contains("You signed out"));
}

async fn token_v1(sb: &Sandbox, form: &[(&str, &str)]) -> reqwest::Response {
    let mut all = vec![
        ("client_id", DASHBOARD_CLIENT_ID),
        ("client_secret", DASHBOARD_CLIENT_SECRET),
    ];
    all.extend_from_slice(form);
    client(sb)
        .post(format!("{}/{TENANT_ID}/oauth2/token", sb.base_url()))
        .form(&all)
        .send()
        .await
        .unwrap()
}

async fn password_grant(
    sb: &Sandbox,
    resource: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    token_v1(
        sb,
        &[
            ("grant_type", "password"),
            ("resource", resource),
            ("username", user),
            ("password", password),
        ],
    )
    .await
}

#[tokio::test]
async fn the_v1_endpoint_takes_resource_and_answers_numbers_as_strings() {
    let sb = sandbox().await;
    let resource = "https://api.partner.microsoft.com";
    let password = cosell_sandbox::entra::SANDBOX_PASSWORD;
    let user = "adele@contoso-sandbox.onmicrosoft.com";
    let r = password_grant(&sb, resource, user, password).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    for field in ["expires_in", "ext_expires_in", "expires_on", "not_before"] {
        assert!(body[field].is_string(), "{field} is a string in v1: {body}");
    }
    assert_eq!(body["resource"], resource);
    let token = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        token["iss"],
        format!("https://sts.windows.net/{TENANT_ID}/")
    );
    assert_eq!(token["ver"], "1.0");
    assert_eq!(token["amr"], serde_json::json!(["pwd"]));

    // The refresh grant works for the same resource, and rotates.
    let rt = body["refresh_token"].as_str().unwrap();
    let again: Value = token_v1(
        &sb,
        &[
            ("grant_type", "refresh_token"),
            ("resource", resource),
            ("refresh_token", rt),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(again["refresh_token"], body["refresh_token"]);
    let other = token_v1(
        &sb,
        &[
            ("grant_type", "refresh_token"),
            ("resource", "https://other.example"),
            ("refresh_token", rt),
        ],
    )
    .await;
    assert_eq!(invalid_grant(other).await, 65001);

    let wrong = password_grant(&sb, resource, user, "nope").await;
    assert_eq!(invalid_grant(wrong).await, 50126);
    let expired = password_grant(
        &sb,
        resource,
        "diego@contoso-sandbox.onmicrosoft.com",
        password,
    )
    .await;
    assert_eq!(invalid_grant(expired).await, 50055);
    let no_resource = token_v1(
        &sb,
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(
        entra_error(no_resource, StatusCode::BAD_REQUEST, "invalid_request").await,
        900144
    );
}

#[tokio::test]
async fn redirect_uris_are_registered_through_the_control_api() {
    let sb = sandbox().await;
    let callback = "http://127.0.0.1:9/registered-over-http";
    let pkce = [
        ("redirect_uri", callback),
        ("code_challenge", &challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
    ];
    let before = sign_in(&sb, "admin", SCOPE, &pkce).await;
    assert_eq!(before.status(), StatusCode::BAD_REQUEST);
    assert!(before.text().await.unwrap().contains("AADSTS50011"));

    let control = format!("{}/_control/entra/redirect-uris", sb.control_url());
    let r = client(&sb)
        .post(&control)
        .json(&serde_json::json!({ "client_id": DASHBOARD_CLIENT_ID, "redirect_uri": callback }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = sign_in(&sb, "admin", SCOPE, &pkce).await;
    assert_eq!(after.status(), StatusCode::FOUND);
    let to = after.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(callback), "{to}");
    assert!(query(to, "code").is_some(), "{to}");

    for (body, status) in [
        (
            serde_json::json!({ "client_id": "11111111-0000-0000-0000-000000000000", "redirect_uri": callback }),
            StatusCode::NOT_FOUND,
        ),
        (
            serde_json::json!({ "client_id": DASHBOARD_CLIENT_ID, "redirect_uri": "not a url" }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = client(&sb).post(&control).json(&body).send().await.unwrap();
        assert_eq!(r.status(), status, "{body}");
    }
}
