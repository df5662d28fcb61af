//! Every server function checks the role itself; cross-origin writes are refused.

use crate::helpers::*;
use reqwest::StatusCode;

const ADELE: &str = "a1d4e1e5-0000-4000-8000-000000000001";
const MEGAN: &str = "a1d4e1e5-0000-4000-8000-000000000002";
const TENANT: &str = "4f1a2b3c-5d6e-4f70-8a9b-0c1d2e3f4a5b";

#[tokio::test]
async fn a_viewer_cannot_call_an_admin_server_function() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;

    let (status, body) = app
        .call(
            &viewer,
            "end_sessions",
            &[("tenant_id", TENANT), ("object_id", ADELE)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body.contains("Forbidden") && body.contains("Referrals admin"),
        "says which role is needed: {body}"
    );
    // Nothing happened: the admin is still signed in.
    let (_, page) = app.page(&admin, "/").await;
    assert!(page.contains("Adele Vance"));

    // Reading is allowed.
    let (status, body) = app.call(&viewer, "list_users", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("adele@"));
}

#[tokio::test]
async fn an_admin_ends_someones_sessions() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;
    let (status, body) = app
        .call(
            &admin,
            "end_sessions",
            &[("tenant_id", TENANT), ("object_id", MEGAN)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = app.page(&viewer, "/").await;
    assert!(
        !page.contains("Megan Bowen"),
        "the viewer's session is over"
    );
    assert!(page.contains("Sign in with Microsoft"));
    // Signing in again works.
    let again = app.signed_in("viewer").await;
    assert!(app.page(&again, "/").await.1.contains("Megan Bowen"));

    let (status, body) = app
        .call(
            &admin,
            "end_sessions",
            &[("tenant_id", TENANT), ("object_id", "nobody")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("never signed in"), "{body}");
}

#[tokio::test]
async fn signed_out_and_no_role_callers_are_refused() {
    let app = TestApp::spawn().await;
    let (status, body) = app.call(&app.client(), "list_users", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("NotSignedIn"));
    let norole = app.signed_in("norole").await;
    let (status, body) = app.call(&norole, "list_users", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app
        .call(
            &norole,
            "end_sessions",
            &[("tenant_id", TENANT), ("object_id", ADELE)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_plain_form_post_is_answered_with_a_redirect_back() {
    // JavaScript off: the browser posts the form and expects to be sent back to the page.
    let app = TestApp::spawn().await;
    let viewer = app.signed_in("viewer").await;
    let r = viewer
        .post(app.url("/api/end_sessions"))
        .header("accept", "text/html")
        .header("referer", app.url("/users"))
        .form(&[("tenant_id", TENANT), ("object_id", ADELE)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = location(&r).unwrap();
    assert!(to.starts_with(&app.url("/users")), "{to}");
    assert!(
        to.contains("__err="),
        "the error travels back to the page: {to}"
    );
}

#[tokio::test]
async fn cross_origin_posts_are_refused_before_anything_runs() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;
    // The same host and port over another scheme is another origin (the dashboard is http here).
    let https_twin = app.base.replacen("http://", "https://", 1);
    let attempts: [&[(&str, &str)]; 4] = [
        &[("origin", "http://evil.example")],
        &[("origin", https_twin.as_str())],
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://evil.example"),
        ],
        &[("sec-fetch-site", "same-site")],
    ];
    for headers in attempts {
        let mut request = admin
            .post(app.url("/api/end_sessions"))
            .form(&[("tenant_id", TENANT), ("object_id", MEGAN)]);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(r.text().await.unwrap().contains("another website"));
    }
    let r = admin
        .post(app.url("/auth/sign-out"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a forged sign-out is refused too"
    );
    assert!(app.page(&admin, "/").await.1.contains("Adele Vance"));
    assert!(
        app.page(&viewer, "/").await.1.contains("Megan Bowen"),
        "nothing was ended"
    );

    // The same request from the dashboard's own origin goes through.
    let r = admin
        .post(app.url("/api/end_sessions"))
        .header("origin", app.base.clone())
        .header("sec-fetch-site", "same-origin")
        .form(&[("tenant_id", TENANT), ("object_id", MEGAN)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_server_function_call_is_a_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let before = app.store.active_flows(app.engine.crm()).await.unwrap();
    for form in [
        // A field missing.
        &[("flow", "customize")][..],
        // Garbage where a known value is expected.
        &[("flow", "no such flow"), ("active", "true")][..],
    ] {
        let (status, body) = app.call(&admin, "set_flow", form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {body}");
        assert!(!body.contains("panicked") && !body.is_empty(), "{body}");
    }
    // A run number that is not a number.
    let (status, body) = app.call(&admin, "resubmit_run", &[("id", "seven")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        app.store.active_flows(app.engine.crm()).await.unwrap(),
        before,
        "nothing changed"
    );
    // A refusal for want of a role stays a 403, and a missing session a 401.
    let viewer = app.signed_in("viewer").await;
    let (status, _) = app
        .call(
            &viewer,
            "set_flow",
            &[("flow", "customize"), ("active", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            &app.client(),
            "set_flow",
            &[("flow", "customize"), ("active", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// The server functions a viewer may call: reads, and who am I. Every other registered server function
/// is an admin's and is tested as such below, so a new one cannot slip through untested.
const VIEWER_MAY_CALL: &[&str] = &[
    "whoami",
    "health",
    "list_audit",
    "list_connections",
    "list_flows",
    "get_mapping",
    "list_opportunities",
    "opportunity_timeline",
    "list_runs",
    "run_detail",
    "list_users",
];

/// What an admin function could change, counted.
async fn state_of(app: &TestApp) -> (usize, i64, usize, Option<serde_json::Value>) {
    let audit = app
        .store
        .list_audit(&cosell::store::AuditFilter::default(), None, 10_000)
        .await
        .unwrap()
        .len();
    let runs = app
        .store
        .count_runs(&cosell::store::RunFilter::default())
        .await
        .unwrap();
    let flows = app
        .store
        .active_flows(app.engine.crm())
        .await
        .unwrap()
        .len();
    let mapping = app
        .store
        .setting(cosell::engine::MAPPING_SETTING)
        .await
        .unwrap();
    (audit, runs, flows, mapping)
}

#[tokio::test]
async fn every_admin_server_function_refuses_a_viewer_with_403_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let viewer = app.signed_in("viewer").await;
    let before = state_of(&app).await;
    let mut paths: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect();
    paths.sort();
    // Every argument any admin function takes, well formed, so that only the role can refuse.
    let form = [
        ("flow", "customize"),
        ("active", "true"),
        ("crm_id", "0aa0a000-0000-4000-8000-000000000002"),
        ("on", "true"),
        ("id", "1"),
        ("system", "partner_center"),
        ("tenant_id", TENANT),
        ("object_id", MEGAN),
        ("stages", ""),
        ("statuses", ""),
        ("help", ""),
        ("currencies", ""),
        ("solutions", ""),
        (
            "callback_url",
            "https://cosell.example/webhooks/partner-center",
        ),
        ("referral_created", "on"),
        ("status", ""),
        ("record", ""),
        ("from", ""),
        ("to", ""),
    ];
    let mut admin_functions = Vec::new();
    for path in &paths {
        let name = path.trim_start_matches("/api/");
        if VIEWER_MAY_CALL.contains(&name) {
            continue;
        }
        let r = viewer
            .post(app.url(path))
            .header("Origin", &app.base)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
        admin_functions.push(name.to_string());
    }
    assert_eq!(
        admin_functions.len(),
        paths.len() - VIEWER_MAY_CALL.len(),
        "every viewer-callable function is registered: {paths:?}"
    );
    assert!(admin_functions.len() >= 11, "{admin_functions:?}");
    assert_eq!(state_of(&app).await, before, "nothing changed");
}
