//! Partner Center → Dynamics 365 end to end: a Microsoft seller's referral arrives by signed webhook and
//! becomes an opportunity, with the CRM id written back; failures retry or fail with a message.

use crate::helpers::*;
use cosell::domain::runs::RunStatus;
use cosell::store::{AuditFilter, RunFilter};
use cosell_sandbox::dataverse::columns as col;
use serde_json::json;

/// A seller creates referral `name` while a fault is set: its run succeeds on attempt `attempts`.
async fn synced_after(
    app: &mut TestApp,
    name: &str,
    attempts: i64,
) -> (cosell::engine::RunFinished, serde_json::Value) {
    let referral = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": name }));
    let (run, _echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let stored = app.store.run(run.run_id).await.unwrap().unwrap();
    assert_eq!(stored.attempts, attempts, "{name}");
    (run, referral)
}

#[tokio::test]
async fn a_sellers_referral_becomes_an_opportunity_and_the_crm_id_goes_back() {
    let mut app = TestApp::spawn_ready().await;
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Azure migration",
        "customerProfile": { "name": "Northwind Traders", "address": { "postalCode": "98052", "country": "US" } },
        "details": { "dealValue": 48000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let id = referral["id"].as_str().unwrap().to_string();

    let (run, echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let opportunities = app.world.dataverse().rows("opportunities");
    let opp = opportunities
        .iter()
        .find(|o| o[col::REFERRAL_ID] == id.as_str())
        .expect("an opportunity for the referral");
    assert_eq!(opp["name"], "Azure migration");
    assert_eq!(opp["estimatedvalue"], 48000.0);
    assert_eq!(opp["estimatedclosedate"], "2027-06-30");
    assert_eq!(opp[col::SYNC], true);
    let opp_id = opp["opportunityid"].as_str().unwrap();
    let accounts = app.world.dataverse().rows("accounts");
    assert!(
        accounts
            .iter()
            .any(|a| a["name"] == "Northwind Traders" && a["address1_postalcode"] == "98052")
    );

    // The CRM id is written back, and that write's own referral-updated event changes nothing.
    let back = app.world.partner_center().referral(&id).unwrap();
    assert_eq!(back["externalReferenceId"], opp_id);
    assert_eq!(echo.status, RunStatus::Skipped, "{}", echo.outcome);
    assert_eq!(
        app.world.dataverse().rows("opportunities").len(),
        opportunities.len()
    );

    // Steps, child runs and audit events tell the story.
    let steps = app.store.run_steps(run.run_id).await.unwrap();
    assert!(
        steps
            .iter()
            .any(|s| s.name == "Get the referral from Partner Center")
    );
    let children = app.store.related_runs(run.run_id).await.unwrap();
    assert_eq!(children.len(), 2, "Helper and Updates");
    let audit = app
        .store
        .list_audit(&AuditFilter::default(), None, 50)
        .await
        .unwrap();
    for action in [
        "account_created",
        "opportunity_created",
        "referral_linked",
        "echo_suppressed",
    ] {
        assert!(audit.iter().any(|e| e.action == action), "{action}");
    }
    assert!(
        app.store
            .api_calls_on("dynamics365", time::OffsetDateTime::now_utc())
            .await
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn a_customer_without_a_postal_code_is_matched_not_duplicated() {
    let mut app = TestApp::spawn_ready().await;
    for name in ["First deal", "Second deal"] {
        app.world.partner_center().seller_creates(json!({
            "name": name,
            "customerProfile": { "name": "Tailspin Toys", "address": { "postalCode": "", "country": "US" } }
        }));
        let (run, echo) = app.run_and_echo().await;
        assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
        assert_eq!(echo.status, RunStatus::Skipped, "the write-back's echo");
    }
    let tailspin = app
        .world
        .dataverse()
        .rows("accounts")
        .into_iter()
        .filter(|a| a["name"] == "Tailspin Toys")
        .count();
    assert_eq!(tailspin, 1);
}

#[tokio::test]
async fn an_unknown_crm_id_is_ignored_and_audited() {
    let mut app = TestApp::spawn_ready().await;
    let referral = app.world.partner_center().seller_creates(json!({
        "externalReferenceId": "00000000-0000-0000-0000-00000000abcd"
    }));
    let run = app.next_run().await;
    assert_eq!(run.status, RunStatus::Skipped);
    assert!(run.outcome.contains("does not exist"), "{}", run.outcome);
    assert!(
        !app.world
            .dataverse()
            .rows("opportunities")
            .iter()
            .any(|o| o[col::REFERRAL_ID] == referral["id"]),
        "no opportunity made for it"
    );
    let audit = app
        .store
        .list_audit(
            &AuditFilter::record(referral["id"].as_str().unwrap()),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(audit[0].action, "referral_ignored_unknown_crm_id");
}

#[tokio::test]
async fn throttling_is_retried_and_a_denial_fails_then_resubmits() {
    let mut app = TestApp::spawn_ready().await;
    // Two 429s with Retry-After 1 s, then the call goes through.
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "status": 429, "retry_after": 1, "times": 2 }),
    )
    .await;
    synced_after(&mut app, "Throttled", 3).await;

    // A refusal of the data fails the run with the fix; resubmitting after the fault passes works.
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "status": 400, "times": 1 }),
    )
    .await;
    app.world
        .partner_center()
        .seller_creates(json!({ "name": "Denied once" }));
    let failed = app.next_run().await;
    assert_eq!(failed.status, RunStatus::Failed);
    assert!(
        failed.outcome.contains("refused the data (HTTP 400)"),
        "{}",
        failed.outcome
    );
    let again = app
        .store
        .resubmit_run(failed.run_id, time::OffsetDateTime::now_utc())
        .await
        .unwrap()
        .expect("a failed run can be resubmitted");
    app.engine.nudge();
    let (done, _echo) = app.run_and_echo().await;
    assert_eq!(done.run_id, again);
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.outcome);
    let failed_list = app
        .store
        .list_runs(
            &RunFilter {
                status: Some(RunStatus::Failed),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(failed_list.len(), 1);
}

#[tokio::test]
async fn a_412_on_the_write_back_is_read_again_and_written_on_the_next_attempt() {
    let mut app = TestApp::spawn_ready().await;
    // Partner Center says the referral changed between our read and our write (stale If-Match).
    app.control(
        "/faults",
        json!({ "method": "PATCH", "path_contains": "/engagements/referrals/", "status": 412, "times": 1,
                "body": { "code": "PreconditionFailed", "message": "The eTag does not match." } }),
    )
    .await;
    let (run, referral) = synced_after(&mut app, "Raced", 2).await;
    let id = referral["id"].as_str().unwrap().to_string();
    let steps = app.store.run_steps(run.run_id).await.unwrap();
    assert!(
        steps.iter().any(|s| s.detail.contains("412")),
        "the conflict is on record: {steps:?}"
    );
    // One opportunity, found again on the second attempt rather than created twice.
    let opportunities = app.world.dataverse().rows("opportunities");
    let ours: Vec<_> = opportunities
        .iter()
        .filter(|o| o[col::REFERRAL_ID] == id.as_str())
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(
        app.world.partner_center().referral(&id).unwrap()["externalReferenceId"],
        ours[0]["opportunityid"]
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_the_crm_answers() {
    let mut app = TestApp::spawn_ready().await;
    app.control(
        "/faults",
        json!({ "path_contains": "/api/data/v9.2/accounts", "status": 503, "times": 2 }),
    )
    .await;
    synced_after(&mut app, "Flaky CRM", 3).await;
}

#[tokio::test]
async fn a_call_that_times_out_is_tried_again() {
    let mut app = TestApp::spawn_ready_with(&["--call-timeout-ms", "1000"]).await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "delay_ms": 3000, "times": 1 }),
    )
    .await;
    let (run, _) = synced_after(&mut app, "Slow Partner Center", 2).await;
    let steps = app.store.run_steps(run.run_id).await.unwrap();
    assert!(
        steps.iter().any(|s| s.detail.contains("timed out")),
        "{steps:?}"
    );
}
