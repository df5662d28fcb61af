//! The Flows page's server functions: activation order, "Activate all", webhook registration as a run,
//! and what a webhook does while "Partner Center to Dynamics 365" is off.

use crate::helpers::*;
use cosell::domain::runs::RunStatus;
use cosell::store::{AuditFilter, RunFilter};
use cosell_sandbox::dataverse::columns as col;
use reqwest::StatusCode;

#[tokio::test]
async fn flows_switch_on_only_in_order_and_all_at_once_when_connected() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let flow = |code: &'static str, on: &'static str| [("flow", code), ("active", on)];

    // Not connected yet: refused, naming the connection.
    let (status, body) = app
        .call(&admin, "set_flow", &flow("customize", "true"))
        .await;
    assert_ne!(status, StatusCode::OK);
    assert!(body.contains("Connect Dynamics 365 first"), "{body}");

    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "dynamics365", "admin").await;

    // A parent before its children: refused, naming the child to activate first.
    let (status, body) = app
        .call(&admin, "set_flow", &flow("partner_center_to_crm", "true"))
        .await;
    assert_ne!(status, StatusCode::OK);
    assert!(
        body.contains("Activate “Partner Center to Dynamics 365 - Helper” first"),
        "{body}"
    );
    assert!(
        app.store
            .active_flows(app.engine.crm())
            .await
            .unwrap()
            .is_empty()
    );

    // A viewer may look but not touch.
    let viewer = app.signed_in("viewer").await;
    let (status, _) = app.call(&viewer, "activate_all", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.call(&viewer, "list_flows", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("Partner Center Webhook Registration"),
        "{body}"
    );

    let (status, body) = app.call(&admin, "activate_all", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("9 flows switched on"), "{body}");
    assert_eq!(
        app.store
            .active_flows(app.engine.crm())
            .await
            .unwrap()
            .len(),
        9
    );

    // A child cannot be switched off under a parent that is on.
    let (status, body) = app.call(&admin, "set_flow", &flow("helper", "false")).await;
    assert_ne!(status, StatusCode::OK);
    assert!(
        body.contains("Deactivate “Partner Center to Dynamics 365” first"),
        "{body}"
    );
    let (status, _) = app
        .call(&admin, "set_flow", &flow("partner_center_to_crm", "false"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let audit = app
        .store
        .list_audit(&AuditFilter::default(), None, 50)
        .await
        .unwrap();
    assert!(audit.iter().any(|e| e.action == "flow_deactivated"));
}

#[tokio::test]
async fn the_webhook_registration_runs_from_the_page_and_respects_overwrite() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "dynamics365", "admin").await;
    app.call(&admin, "activate_all", &[]).await;
    let ours = app.url("/webhooks/partner-center");
    let all = |url: &str, overwrite: bool| {
        let mut form = vec![
            ("callback_url", url.to_string()),
            ("referral_created", "on".into()),
            ("referral_updated", "on".into()),
            ("related_referral_created", "on".into()),
            ("related_referral_updated", "on".into()),
        ];
        if overwrite {
            form.push(("overwrite", "on".into()));
        }
        form
    };
    let post = |form: Vec<(&'static str, String)>| {
        let (app, admin) = (&app, &admin);
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call(admin, "register_webhook", &form).await
        }
    };
    let (status, body) = post(all(&ours, false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("referral-created, referral-updated"),
        "{body}"
    );

    // Someone else's URL without "overwrite": refused, saying what is registered now.
    let (status, body) = post(all("https://elsewhere.example/hook", false)).await;
    assert_ne!(status, StatusCode::OK);
    assert!(body.contains("Overwrite") && body.contains(&ours), "{body}");
    let (status, body) = post(all("https://elsewhere.example/hook", true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("replacing"), "{body}");

    // Each attempt is a run of the registration flow with its steps.
    let runs = app
        .store
        .list_runs(&RunFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[1].status, RunStatus::Failed);
    assert!(!app.store.run_steps(runs[0].id).await.unwrap().is_empty());

    // Bad input is refused before any call.
    let (status, body) = post(vec![("callback_url", "not a url".into())]).await;
    assert_ne!(status, StatusCode::OK);
    assert!(body.contains("is not a URL"), "{body}");
}

#[tokio::test]
async fn a_webhook_while_the_flow_is_off_is_kept_as_a_skipped_run_to_resubmit() {
    let mut app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "dynamics365", "admin").await;
    cosell_sandbox::testing::register_webhook(
        &app.world,
        &app.url("/webhooks/partner-center"),
        &["referral-created", "referral-updated"],
        false,
    )
    .await;
    let referral = app
        .world
        .partner_center()
        .seller_creates(serde_json::json!({ "name": "While off" }));
    let id = referral["id"].as_str().unwrap().to_string();
    let run = app.next_run().await;
    assert_eq!(run.status, RunStatus::Skipped);
    assert!(run.outcome.contains("is off"), "{}", run.outcome);
    let stored = app.store.run(run.run_id).await.unwrap().unwrap();
    assert_eq!(stored.record_id.as_deref(), Some(id.as_str()));
    let audit = app
        .store
        .list_audit(&AuditFilter::record(id.clone()), None, 10)
        .await
        .unwrap();
    assert_eq!(audit[0].action, "referral_skipped_flow_off");
    assert_eq!(audit[0].run_id, Some(run.run_id));

    // Once the flows are on, resubmitting the skipped run syncs the referral: no edit needed to "wake" it.
    let (status, body) = app.call(&admin, "activate_all", &[]).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app
        .call(&admin, "resubmit_run", &[("id", &run.run_id.to_string())])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (done, _echo) = app.run_and_echo().await;
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.outcome);
    assert!(
        app.world
            .dataverse()
            .rows("opportunities")
            .iter()
            .any(|o| o[col::REFERRAL_ID] == referral["id"])
    );
}
