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
    "get_retention",
    "get_budgets",
    "get_alert_settings",
    "alert_banner",
    "list_alerts",
    "overview_charts",
    "list_opportunities",
    "opportunity_timeline",
    "list_runs",
    "run_detail",
    "list_users",
    "diagnostics",
    "diagnostics_summary",
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
        ("runs_days", "7"),
        ("audit_days", "7"),
        ("partner_center", "5"),
        ("crm", "5"),
        ("failed_runs", "5"),
        ("window_minutes", "15"),
        ("webhook_url", "https://hooks.example.com/x"),
        ("webhook_format", "slack"),
        ("webhook_secret", ""),
        ("email_host", ""),
        ("email_port", ""),
        ("email_security", "starttls"),
        ("email_username", ""),
        ("email_password", ""),
        ("email_from", ""),
        ("email_to", ""),
    ];
    let mut admin_functions = Vec::new();
    for path in &paths {
        let name = path.trim_start_matches("/api/");
        if VIEWER_MAY_CALL.contains(&name) {
            continue;
        }
        // Each function's own fields, so that only the role can refuse.
        let fields = cosell_app::api_fields::fields_of(name).expect("listed");
        let own: Vec<(&str, &str)> = form
            .iter()
            .copied()
            .filter(|(k, _)| fields.contains(k))
            .collect();
        let r = viewer
            .post(app.url(path))
            .header("Origin", &app.base)
            .form(&own)
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

/// Missing fields and garbage values: `a_malformed_server_function_call_is_a_400_and_changes_nothing`.
#[tokio::test]
async fn every_server_function_refuses_extra_repeated_oversized_and_garbage_named_fields_with_400()
{
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let before = state_of(&app).await;
    let mut paths: Vec<String> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path.to_string())
        .collect();
    paths.sort();
    // The list the server checks calls against is the list of registered functions, neither more nor less.
    let mut listed: Vec<String> = cosell_app::api_fields::FIELDS
        .iter()
        .map(|(name, _)| format!("/api/{name}"))
        .collect();
    listed.sort();
    assert_eq!(
        listed, paths,
        "api_fields::FIELDS lists every server function"
    );

    let big = "x".repeat(cosell_app::api_fields::MAX_FIELD_BYTES + 1);
    for (name, fields) in cosell_app::api_fields::FIELDS {
        let well_formed: Vec<(&str, &str)> = fields.iter().map(|f| (*f, "")).collect();
        let mut cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                "an extra field",
                [well_formed.clone(), vec![("is_admin", "true")]].concat(),
            ),
            (
                "a garbage field name",
                [well_formed.clone(), vec![("%%%\u{0}", "x")]].concat(),
            ),
        ];
        if let Some(first) = fields.first() {
            cases.push(("an oversized field", vec![(*first, big.as_str())]));
            cases.push((
                "a field twice",
                [well_formed.clone(), vec![(*first, "")]].concat(),
            ));
        }
        // server_fn reads the body as a form whatever the Content-Type says: so does the check.
        for content_type in ["text/plain", "APPLICATION/X-WWW-FORM-URLENCODED", ""] {
            let r = admin
                .post(app.url(&format!("/api/{name}")))
                .header("Origin", &app.base)
                .header("Content-Type", content_type)
                .body("is_admin=true")
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::BAD_REQUEST,
                "{name}, {content_type:?}"
            );
        }
        for (case, form) in &cases {
            let (status, body) = app.call(&admin, name, form).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name}, {case}: {body}");
            let error: cosell_app::error::AppError = serde_json::from_str(&body).expect("an error");
            assert!(
                matches!(error, cosell_app::error::AppError::Request(_)),
                "{name}, {case}: {body}"
            );
        }
    }
    assert_eq!(state_of(&app).await, before, "nothing changed");
}

/// The field list the server checks calls against says what each function's arguments are, as
/// server_fn writes them: every function's argument struct is built here (a new argument does not
/// compile until it is), encoded as the browser's calls are, and its keys compared with the list (a
/// renamed or removed argument fails).
#[test]
fn the_field_list_is_what_each_function_takes() {
    use cosell_app::auth::*;
    use cosell_app::pages::{
        alert_settings::*, alerts::*, audit::*, charts::*, connections::*, diagnostics::*,
        flows::*, mapping::*, opportunities::*, overview::*, runs::*, settings::*, users::*,
    };
    let s = || "x".to_string();
    let encoded: Vec<(&str, String)> = vec![
        ("whoami", serde_qs::to_string(&Whoami {}).unwrap()),
        ("health", serde_qs::to_string(&Health {}).unwrap()),
        (
            "list_opportunities",
            serde_qs::to_string(&ListOpportunities {
                search: s(),
                after_name: s(),
                after_id: s(),
            })
            .unwrap(),
        ),
        (
            "set_sync",
            serde_qs::to_string(&SetSync {
                crm_id: s(),
                on: s(),
            })
            .unwrap(),
        ),
        (
            "sync_now",
            serde_qs::to_string(&SyncNow { crm_id: s() }).unwrap(),
        ),
        (
            "check_opportunity",
            serde_qs::to_string(&CheckOpportunity { crm_id: s() }).unwrap(),
        ),
        (
            "opportunity_timeline",
            serde_qs::to_string(&OpportunityTimeline {
                crm_id: s(),
                before: Some(1),
            })
            .unwrap(),
        ),
        ("list_flows", serde_qs::to_string(&ListFlows {}).unwrap()),
        (
            "set_flow",
            serde_qs::to_string(&SetFlow {
                flow: s(),
                active: s(),
            })
            .unwrap(),
        ),
        (
            "activate_all",
            serde_qs::to_string(&ActivateAll {}).unwrap(),
        ),
        (
            "register_webhook",
            serde_qs::to_string(&RegisterWebhook {
                callback_url: s(),
                referral_created: Some(s()),
                referral_updated: Some(s()),
                related_referral_created: Some(s()),
                related_referral_updated: Some(s()),
                overwrite: Some(s()),
            })
            .unwrap(),
        ),
        (
            "list_runs",
            serde_qs::to_string(&ListRuns {
                query: RunQuery {
                    flow: s(),
                    status: s(),
                    record: s(),
                    from: s(),
                    to: s(),
                },
                before: Some(1),
            })
            .unwrap(),
        ),
        (
            "run_detail",
            serde_qs::to_string(&RunDetail { id: 1 }).unwrap(),
        ),
        (
            "resubmit_run",
            serde_qs::to_string(&ResubmitRun { id: 1 }).unwrap(),
        ),
        (
            "resubmit_failed",
            serde_qs::to_string(&ResubmitFailed {
                flow: s(),
                status: s(),
                record: s(),
                from: s(),
                to: s(),
            })
            .unwrap(),
        ),
        ("list_users", serde_qs::to_string(&ListUsers {}).unwrap()),
        (
            "end_sessions",
            serde_qs::to_string(&EndSessions {
                tenant_id: s(),
                object_id: s(),
            })
            .unwrap(),
        ),
        (
            "list_audit",
            serde_qs::to_string(&ListAudit {
                query: AuditQuery {
                    record: s(),
                    run: s(),
                    direction: s(),
                    outcome: s(),
                    from: s(),
                    to: s(),
                },
                before: Some(1),
            })
            .unwrap(),
        ),
        (
            "list_connections",
            serde_qs::to_string(&ListConnections {}).unwrap(),
        ),
        (
            "test_connection",
            serde_qs::to_string(&TestConnection { system: s() }).unwrap(),
        ),
        (
            "disconnect",
            serde_qs::to_string(&Disconnect { system: s() }).unwrap(),
        ),
        ("get_mapping", serde_qs::to_string(&GetMapping {}).unwrap()),
        (
            "get_retention",
            serde_qs::to_string(&GetRetention {}).unwrap(),
        ),
        (
            "overview_charts",
            serde_qs::to_string(&OverviewCharts {}).unwrap(),
        ),
        ("get_budgets", serde_qs::to_string(&GetBudgets {}).unwrap()),
        (
            "get_alert_settings",
            serde_qs::to_string(&GetAlertSettings {}).unwrap(),
        ),
        (
            "save_alert_settings",
            serde_qs::to_string(&SaveAlertSettings {
                failed_runs: s(),
                window_minutes: s(),
                webhook_on: Some(s()),
                webhook_url: s(),
                webhook_format: s(),
                webhook_secret: s(),
                email_on: Some(s()),
                email_host: s(),
                email_port: s(),
                email_security: s(),
                email_username: s(),
                email_password: s(),
                email_from: s(),
                email_to: s(),
            })
            .unwrap(),
        ),
        (
            "send_test_alert",
            serde_qs::to_string(&SendTestAlert {}).unwrap(),
        ),
        (
            "alert_banner",
            serde_qs::to_string(&AlertBanner {}).unwrap(),
        ),
        ("list_alerts", serde_qs::to_string(&ListAlerts {}).unwrap()),
        (
            "acknowledge_alert",
            serde_qs::to_string(&AcknowledgeAlert { id: 1 }).unwrap(),
        ),
        (
            "save_budgets",
            serde_qs::to_string(&SaveBudgets {
                partner_center: s(),
                crm: s(),
            })
            .unwrap(),
        ),
        (
            "save_retention",
            serde_qs::to_string(&SaveRetention {
                runs_days: s(),
                audit_days: s(),
            })
            .unwrap(),
        ),
        (
            "save_mapping",
            serde_qs::to_string(&SaveMapping {
                stages: s(),
                statuses: s(),
                help: s(),
                currencies: s(),
                solutions: s(),
                sync_leads: Some(s()),
                cosell_fields: Some(s()),
            })
            .unwrap(),
        ),
        ("diagnostics", serde_qs::to_string(&Diagnostics {}).unwrap()),
        (
            "run_diagnostics",
            serde_qs::to_string(&RunDiagnostics {}).unwrap(),
        ),
        (
            "diagnostics_summary",
            serde_qs::to_string(&DiagnosticsSummary {}).unwrap(),
        ),
        (
            "reconcile_now",
            serde_qs::to_string(&ReconcileNow {}).unwrap(),
        ),
        (
            "send_test_event",
            serde_qs::to_string(&SendTestEvent {}).unwrap(),
        ),
    ];
    let mut covered: Vec<&str> = encoded.iter().map(|(name, _)| *name).collect();
    let mut listed: Vec<&str> = cosell_app::api_fields::FIELDS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    covered.sort();
    listed.sort();
    assert_eq!(covered, listed, "every listed function is encoded here");
    for (name, query) in encoded {
        let mut sent: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect();
        let mut fields: Vec<String> = cosell_app::api_fields::fields_of(name)
            .unwrap()
            .iter()
            .map(|f| f.to_string())
            .collect();
        sent.sort();
        fields.sort();
        assert_eq!(sent, fields, "{name}");
    }
}
