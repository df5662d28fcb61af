//! The sign-in redirect chain, and each way it must refuse.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn admin_signs_in_sees_the_overview_and_signs_out() {
    let app = TestApp::spawn().await;
    let client = app.client();

    let (status, page) = app.page(&client, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Sign in with Microsoft"),
        "signed-out visitors are invited to sign in"
    );

    let authorize = app.begin(&client, "/").await;
    for (name, expected) in [
        ("response_type", "code"),
        ("code_challenge_method", "S256"),
        ("response_mode", "query"),
    ] {
        assert_eq!(param(&authorize, name).as_deref(), Some(expected), "{name}");
    }
    assert!(param(&authorize, "nonce").is_some() && param(&authorize, "state").is_some());
    let scope = param(&authorize, "scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid"), "{scope}");

    let callback = app.pick(&authorize, "admin").await;
    assert!(
        callback.starts_with(&app.url("/auth/callback?")),
        "{callback}"
    );
    let landing = app.land(&client, &callback).await;
    assert_eq!(landing.status, StatusCode::SEE_OTHER, "{}", landing.body);
    assert_eq!(landing.location.as_deref(), Some("/"));

    let (_, overview) = app.page(&client, "/").await;
    assert!(overview.contains("Adele Vance"), "{overview}");
    assert!(
        overview.contains(r#"data-testid="overview-role">Referrals admin<"#),
        "{overview}"
    );

    let r = client.post(app.url("/auth/sign-out")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, after) = app.page(&client, "/").await;
    assert!(!after.contains("Adele Vance"));
    assert!(after.contains("Sign in with Microsoft"));
}

#[tokio::test]
async fn session_cookie_is_http_only_lax_and_rotated_at_sign_in() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let r = client.get(app.url("/auth/sign-in")).send().await.unwrap();
    let before: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let before_id = session_cookie(&before).expect("pending sign-in lives in a session");
    let authorize = location(&r).unwrap();
    let callback = app.pick(&authorize, "viewer").await;
    let landing = app.land(&client, &callback).await;
    assert_eq!(landing.status, StatusCode::SEE_OTHER, "{}", landing.body);
    let cookie = landing
        .set_cookie
        .iter()
        .find(|c| c.starts_with("cosell.sid="))
        .expect("new session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http in tests: no Secure flag"
    );
    let after_id = session_cookie(&landing.set_cookie).unwrap();
    assert_ne!(before_id, after_id, "session id rotated at sign-in");

    // The pre-sign-in id (a fixation attempt would plant it) grants nothing.
    let planted = app.page_with_session(&before_id, "/").await;
    assert!(!planted.contains("Megan Bowen"));
    assert!(
        planted.contains("Sign in with Microsoft"),
        "the planted id is treated as signed out"
    );
}

#[tokio::test]
async fn an_idle_session_ends() {
    use tower_sessions::SessionStore;
    // Every flow on, so that a refused switch-off would show.
    let app = TestApp::spawn_ready_with(&["--session-idle-minutes", "30"]).await;
    let on = app.store.active_flows(app.engine.crm()).await.unwrap();
    assert!(!on.is_empty());
    let client = app.client();
    let authorize = app.begin(&client, "/").await;
    let callback = app.pick(&authorize, "admin").await;
    let landing = app.land(&client, &callback).await;
    let id = session_cookie(&landing.set_cookie).unwrap();
    let cookie = landing
        .set_cookie
        .iter()
        .find(|c| c.starts_with("cosell.sid="))
        .unwrap();
    assert!(cookie.contains("Max-Age=1800"), "{cookie}");
    let sessions = app.store.session_backend().await.unwrap();
    let session_id: tower_sessions::session::Id = id.parse().unwrap();
    let mut record = sessions.load(&session_id).await.unwrap().expect("stored");
    let idle_limit = record.expiry_date - time::OffsetDateTime::now_utc();
    assert!(
        idle_limit > time::Duration::minutes(29) && idle_limit <= time::Duration::minutes(30),
        "{idle_limit}"
    );
    assert!(
        app.page_with_session(&id, "/")
            .await
            .contains("Adele Vance")
    );

    // Thirty minutes without a request: the session is over, for pages and server functions alike.
    record.expiry_date = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    sessions.save(&record).await.unwrap();
    let page = app.page_with_session(&id, "/").await;
    assert!(!page.contains("Adele Vance"));
    assert!(page.contains("Sign in with Microsoft"));
    let r = plain_client()
        .post(app.url("/api/set_flow"))
        .header("cookie", format!("cosell.sid={id}"))
        .header("Origin", &app.base)
        .form(&[("flow", "partner_center_to_crm"), ("active", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.store.active_flows(app.engine.crm()).await.unwrap(),
        on,
        "nothing changed"
    );
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let authorize = app.begin(&client, "/").await;
    let callback = app.pick(&authorize, "admin").await;
    let landing = app.land(&client, &callback).await;
    let id = session_cookie(&landing.set_cookie).unwrap();
    client.post(app.url("/auth/sign-out")).send().await.unwrap();
    // Replaying the old cookie from elsewhere finds nothing: the session was deleted, not just forgotten.
    let replay = app.page_with_session(&id, "/").await;
    assert!(!replay.contains("Adele Vance"));
    assert!(
        replay.contains("Sign in with Microsoft"),
        "the replayed id is treated as signed out"
    );
}

#[tokio::test]
async fn state_mismatch_is_refused() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let authorize = app.begin(&client, "/").await;
    let callback = app.pick(&authorize, "admin").await;
    let forged = with_param(&callback, "state", "forged-state");
    let landing = app.land(&client, &forged).await;
    assert_eq!(landing.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&landing.body), Some("state_mismatch"));
    assert!(landing.body.contains("state mismatch"));
    let (_, page) = app.page(&client, "/").await;
    assert!(!page.contains("Adele Vance"), "nothing signed in");
}

#[tokio::test]
async fn a_callback_without_a_sign_in_in_progress_is_refused() {
    let app = TestApp::spawn().await;
    let stranger = app.client();
    let starter = app.client();
    let authorize = app.begin(&starter, "/").await;
    let callback = app.pick(&authorize, "admin").await;
    // Delivered to a browser that never started a sign-in (login CSRF).
    let landing = app.land(&stranger, &callback).await;
    assert_eq!(landing.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&landing.body), Some("no_pending_sign_in"));
    // Replayed in the right browser after it was used: refused too.
    assert_eq!(
        app.land(&starter, &callback).await.status,
        StatusCode::SEE_OTHER
    );
    let replay = app.land(&starter, &callback).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn pkce_mismatch_is_refused() {
    let app = TestApp::spawn().await;
    // Two browsers each start a sign-in; the code issued to the first is injected into the second's
    // callback (with the second's own, valid state). Only the PKCE check can catch this.
    let victim = app.client();
    let attacker = app.client();
    let authorize_attacker = app.begin(&attacker, "/").await;
    let attacker_callback = app.pick(&authorize_attacker, "admin").await;
    let authorize_victim = app.begin(&victim, "/").await;
    let victim_state = param(&authorize_victim, "state").unwrap();
    let injected = with_param(&attacker_callback, "state", &victim_state);
    let landing = app.land(&victim, &injected).await;
    assert_eq!(landing.status, StatusCode::UNAUTHORIZED, "{}", landing.body);
    assert_eq!(error_code(&landing.body), Some("pkce_mismatch"));
    assert!(landing.body.contains("AADSTS501481"));
    let (_, page) = app.page(&victim, "/").await;
    assert!(!page.contains("Adele Vance"));
}

#[tokio::test]
async fn tampered_or_wrong_id_tokens_are_refused() {
    let app = TestApp::spawn().await;
    for fault in [
        "bad_signature",
        "unknown_key",
        "wrong_audience",
        "wrong_issuer",
        "expired",
        "wrong_nonce",
    ] {
        app.entra_faults(serde_json::json!({ "next_id_token": fault }))
            .await;
        let client = app.client();
        let authorize = app.begin(&client, "/").await;
        let callback = app.pick(&authorize, "admin").await;
        let landing = app.land(&client, &callback).await;
        assert_eq!(
            landing.status,
            StatusCode::UNAUTHORIZED,
            "{fault}: {}",
            landing.body
        );
        assert_eq!(error_code(&landing.body), Some("token_invalid"), "{fault}");
        let (_, page) = app.page(&client, "/").await;
        assert!(!page.contains("Adele Vance"), "{fault}: nothing signed in");
    }
    // The faults were one-shot: the next sign-in succeeds.
    app.signed_in("admin").await;
}

#[tokio::test]
async fn signing_key_rotation_is_followed() {
    let app = TestApp::spawn().await;
    app.signed_in("admin").await; // discovery and JWKS now cached
    app.control("/entra/rotate-keys", serde_json::json!({}))
        .await;
    let client = app.signed_in("viewer").await;
    let (_, page) = app.page(&client, "/").await;
    assert!(page.contains("Megan Bowen"));
}

#[tokio::test]
async fn expired_password_is_explained() {
    for mode in ["token", "authorize"] {
        let app = TestApp::spawn().await;
        app.entra_faults(serde_json::json!({ "expired_password_at": mode }))
            .await;
        let client = app.client();
        let authorize = app.begin(&client, "/").await;
        let callback = app.pick(&authorize, "expired").await;
        let landing = app.land(&client, &callback).await;
        assert_eq!(landing.status, StatusCode::UNAUTHORIZED, "{mode}");
        assert_eq!(
            error_code(&landing.body),
            Some("password_expired"),
            "{mode}"
        );
        assert!(
            landing
                .body
                .contains("password of this account has expired"),
            "{mode}"
        );
        assert!(landing.body.contains("AADSTS50055"));
    }
}

#[tokio::test]
async fn a_user_without_a_role_sees_what_is_missing() {
    let app = TestApp::spawn().await;
    let client = app.signed_in("norole").await;
    let (_, page) = app.page(&client, "/").await;
    assert!(page.contains(r#"data-testid="no-role""#), "{page}");
    assert!(page.contains("Alex Wilber"));
    assert!(
        page.contains("Cosell.Admin") && page.contains("Cosell.Viewer"),
        "names the roles"
    );
    assert!(
        page.contains("Enterprise applications"),
        "says how to get one"
    );
    assert!(
        !page.contains(r#"data-testid="identity""#),
        "shows no dashboard content"
    );
    let (_, users) = app.page(&client, "/users").await;
    assert!(users.contains(r#"data-testid="no-role""#));
    assert!(!users.contains(r#"data-testid="users""#));
}

#[tokio::test]
async fn configured_role_names_decide_access() {
    let app = TestApp::spawn_with(&[
        "--admin-role",
        "Referrals.Admin",
        "--viewer-role",
        "Cosell.Admin",
    ])
    .await;
    // The sandbox admin holds Cosell.Admin, which this installation calls its viewer role.
    let client = app.signed_in("admin").await;
    let (_, page) = app.page(&client, "/").await;
    assert!(
        page.contains(r#"data-testid="overview-role">Viewer<"#),
        "{page}"
    );
}

#[tokio::test]
async fn return_to_is_kept_but_never_leaves_the_site() {
    let app = TestApp::spawn().await;
    for (asked, expected) in [
        ("/users", "/users"),
        ("//evil.example/x", "/"),
        ("https://evil.example", "/"),
    ] {
        let client = app.client();
        let authorize = app
            .begin(
                &client,
                &url::form_urlencoded::byte_serialize(asked.as_bytes()).collect::<String>(),
            )
            .await;
        let callback = app.pick(&authorize, "admin").await;
        let landing = app.land(&client, &callback).await;
        assert_eq!(landing.location.as_deref(), Some(expected), "{asked}");
    }
}

#[tokio::test]
async fn a_cancelled_sign_in_is_explained() {
    let app = TestApp::spawn().await;
    let client = app.client();
    let authorize = app.begin(&client, "/").await;
    let state = param(&authorize, "state").unwrap();
    let callback = app.url(&format!(
        "/auth/callback?error=access_denied&error_description=the+user+canceled+the+authentication&state={state}"
    ));
    let landing = app.land(&client, &callback).await;
    assert_eq!(landing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&landing.body), Some("provider_refused"));
    assert!(landing.body.contains("cancelled"));
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let app = TestApp::spawn_with(&["--public-url", "https://cosell.example"]).await;
    let r = app
        .client()
        .get(app.url("/auth/sign-in"))
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("cosell.sid="))
        .expect("session cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
    let authorize = location(&r).unwrap();
    assert_eq!(
        param(&authorize, "redirect_uri").as_deref(),
        Some("https://cosell.example/auth/callback"),
        "the redirect URI follows the public URL"
    );
}
