//! Paused, not lost: work that needs a person to act on a connection (an expired password here) waits
//! without failing or spending an attempt, the Overview and Diagnostics say so, and all of it goes on
//! by itself once the connection works again.

use crate::helpers::*;
use cosell::domain::connection::{Diagnosis, System};
use cosell::domain::runs::RunStatus;
use cosell::store::RunFilter;
use serde_json::json;

async fn count(app: &TestApp, status: RunStatus) -> i64 {
    app.store
        .count_runs(&RunFilter {
            status: Some(status),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_expired_password_pauses_the_work_and_a_reconnect_resumes_all_of_it() {
    let mut app = TestApp::spawn_ready().await;
    // Signed in to the dashboard before the password expires (signing in needs it too).
    let admin = app.signed_in("admin").await;
    // An hour later the access token has expired, and meanwhile the connected account's password did too.
    app.control_ok("/entra/users/admin/password", json!({ "expired": true }))
        .await;
    app.control_ok("/clock/advance", json!({ "seconds": 3700 }))
        .await;
    let referrals: Vec<String> = (1..=3)
        .map(|i| {
            app.world.partner_center().seller_creates(
                json!({ "name": format!("Shared while the password was expired {i}") }),
            )["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();

    let mut paused = Vec::new();
    for _ in &referrals {
        let run = app.next_run().await;
        assert_eq!(run.status, RunStatus::Paused, "{}", run.outcome);
        assert!(run.outcome.contains("Reconnect"), "{}", run.outcome);
        paused.push(run.run_id);
    }
    for id in &paused {
        let run = app.store.run(*id).await.unwrap().unwrap();
        assert_eq!(
            (run.status, run.attempts, run.paused_for),
            (RunStatus::Paused, 0, Some(System::PartnerCenter)),
            "paused without spending an attempt"
        );
    }
    assert_eq!(count(&app, RunStatus::Failed).await, 0, "nothing failed");
    assert_eq!(
        app.diagnosis_of(System::PartnerCenter).await,
        Some(Diagnosis::PasswordExpired),
        "the Connections page shows why"
    );

    // The Overview and Diagnostics say what waits and what to do.
    let (_, overview) = app.page(&admin, "/").await;
    assert!(
        checks(&overview).contains(&("paused".to_string(), "bad".to_string())),
        "{:?}",
        checks(&overview)
    );
    assert!(
        overview.contains("3 runs wait for Partner Center to be reconnected"),
        "the Overview says so"
    );
    let (_, diagnostics) = app.page(&admin, "/diagnostics").await;
    assert!(
        diagnostics.contains("3 runs wait for it, paused"),
        "Diagnostics lists the work waiting for the credential"
    );
    let (_, listed) = app.page(&admin, "/runs?status=paused").await;
    assert_eq!(listed.matches("data-status=\"paused\"").count(), 3);

    // The password is renewed and the admin reconnects: every paused run goes on by itself.
    app.control_ok("/entra/users/admin/password", json!({ "expired": false }))
        .await;
    app.connect(&admin, "partner_center", "admin").await;
    for id in &paused {
        let run = app.run_finished(*id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
        let stored = app.store.run(*id).await.unwrap().unwrap();
        assert_eq!(
            stored.attempts, 1,
            "one attempt counted: the one that worked"
        );
    }
    for referral in &referrals {
        assert_eq!(app.opportunities_for(referral), 1, "{referral}");
    }
    assert_eq!(count(&app, RunStatus::Failed).await, 0, "nothing failed");
    assert_eq!(
        count(&app, RunStatus::Paused).await,
        0,
        "nothing left waiting"
    );
    let (_, overview) = app.page(&admin, "/").await;
    assert!(!checks(&overview).iter().any(|(id, _)| id == "paused"));

    // The connection came back: a reconciliation started by itself, to find what else was missed.
    let filter = RunFilter {
        flow: Some(cosell::domain::flows::Flow::Reconciliation),
        ..Default::default()
    };
    let reconciliation = app
        .run_where("a reconciliation is queued", filter, |_| true)
        .await;
    assert_eq!(
        reconciliation.trigger,
        cosell::domain::runs::RunTrigger::Schedule
    );
    let done = app.run_finished(reconciliation.id).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.outcome);
    for referral in &referrals {
        assert_eq!(app.opportunities_for(referral), 1, "still once: {referral}");
    }
}

#[tokio::test]
async fn a_call_refused_for_a_role_pauses_the_run_and_a_passing_test_resumes_it() {
    let mut app = TestApp::spawn_ready().await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "status": 403, "times": 1 }),
    )
    .await;
    let referral = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Denied once" }));
    let run = app.next_run().await;
    assert_eq!(run.status, RunStatus::Paused, "{}", run.outcome);
    assert!(run.outcome.contains("Referrals admin"), "{}", run.outcome);
    assert_eq!(
        app.diagnosis_of(System::PartnerCenter).await,
        Some(Diagnosis::MissingRole)
    );

    // The admin grants the role (here: the refusal was passing) and tests the connection: it passes,
    // and the run goes on by itself.
    let admin = app.signed_in("admin").await;
    let (status, body) = app
        .call(&admin, "test_connection", &[("system", "partner_center")])
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let done = app.run_finished(run.run_id).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.outcome);
    assert_eq!(
        app.store.run(run.run_id).await.unwrap().unwrap().attempts,
        1
    );
    assert_eq!(app.opportunities_for(referral["id"].as_str().unwrap()), 1);
    assert_eq!(count(&app, RunStatus::Failed).await, 0);
}

#[tokio::test]
async fn an_admin_running_a_flow_sees_the_fix_at_once_instead_of_a_paused_run() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    app.control_ok("/entra/users/admin/password", json!({ "expired": true }))
        .await;
    app.engine.tokens().forget(System::PartnerCenter);
    let before = count(&app, RunStatus::Paused).await;
    // Registering the webhook runs at once, for the admin on the page.
    let (status, body) = app.register_webhook_here(&admin).await;
    assert_ne!(status, reqwest::StatusCode::OK, "{body}");
    assert!(body.contains("Reconnect"), "{body}");
    assert_eq!(
        count(&app, RunStatus::Paused).await,
        before,
        "nothing paused"
    );
}
