//! Reconciliation, against the sandbox: referrals whose webhooks never reached cosell, and an edit made
//! while its flow was off, are found by "Reconcile now" and synced exactly once; a second
//! reconciliation finds nothing and costs one call.

use crate::crm::{Crm, poll_one, shared};
use crate::helpers::*;
use cosell::domain::flows::Flow;
use cosell::domain::runs::{Progress, RunStatus, RunTrigger};
use cosell::store::{Run, RunFilter};
use reqwest::StatusCode;

/// The runs of `flow` for `record`.
fn of(flow: Flow, record: &str) -> RunFilter {
    RunFilter {
        flow: Some(flow),
        record_id: Some(record.to_string()),
        ..Default::default()
    }
}

async fn runs_of(app: &TestApp, flow: Flow, record: &str) -> Vec<Run> {
    app.store
        .list_runs(&of(flow, record), None, 50)
        .await
        .unwrap()
}

/// How many reconciliations were ever queued.
async fn reconciliations(app: &TestApp) -> i64 {
    let filter = RunFilter {
        flow: Some(Flow::Reconciliation),
        ..Default::default()
    };
    app.store.count_runs(&filter).await.unwrap()
}

/// A run a reconciliation queued, ended.
fn reconciled_and_finished(run: &Run) -> bool {
    run.trigger == RunTrigger::Reconciliation && run.finished_at.is_some()
}

/// "Reconcile now" from the Diagnostics page, as a browser without JavaScript posts it: the answer
/// opens the reconciliation's run, which is waited for.
async fn reconcile_now(app: &mut TestApp, admin: &reqwest::Client) -> (Run, Progress) {
    let r = app
        .submit(admin, "/diagnostics", "/api/reconcile_now", &[])
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let id: i64 = to
        .strip_prefix("/runs/")
        .unwrap_or_else(|| panic!("opens the run: {to}"))
        .parse()
        .unwrap();
    let done = app.run_finished(id).await;
    assert_eq!(done.flow, Flow::Reconciliation);
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.outcome);
    let run = app.store.run(id).await.unwrap().unwrap();
    let progress = app
        .store
        .progress(id)
        .await
        .unwrap()
        .expect("progress kept");
    (run, progress)
}

/// The Partner Center calls a run made, from its steps.
async fn calls_of(app: &TestApp, run_id: i64) -> i64 {
    app.store
        .run_steps(run_id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.api_calls)
        .sum()
}

#[tokio::test]
async fn referrals_whose_webhooks_never_arrived_are_synced_by_reconcile_now_exactly_once() {
    let mut app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    // Deliveries are refused for a while: three referrals are shared meanwhile.
    let referrals = app
        .shared_while_deliveries_fail(&[
            "Shared while webhooks were refused 1",
            "Shared while webhooks were refused 2",
            "Shared while webhooks were refused 3",
        ])
        .await;
    for referral in &referrals {
        assert!(
            runs_of(&app, Flow::PartnerCenterToCrm, referral)
                .await
                .is_empty()
        );
        assert_eq!(app.opportunities_for(referral), 0, "lost, for now");
    }

    let (reconciliation, progress) = reconcile_now(&mut app, &admin).await;
    assert_eq!(
        (
            progress.compared,
            progress.total,
            progress.differences,
            progress.queued
        ),
        (3, 3, 3, 3),
        "{}",
        reconciliation.outcome.unwrap_or_default()
    );
    assert_eq!(
        calls_of(&app, reconciliation.id).await,
        1,
        "one page of referrals"
    );
    for referral in &referrals {
        let run = app
            .run_where(
                "the queued run finishes",
                of(Flow::PartnerCenterToCrm, referral),
                reconciled_and_finished,
            )
            .await;
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.outcome);
        assert_eq!(app.opportunities_for(referral), 1, "{referral}");
    }

    // Its page shows what it did.
    let (status, page) = app
        .page(&admin, &format!("/runs/{}", reconciliation.id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"data-testid="progress""#)
            && page.contains("3 of 3 records compared · 3 differed · 3 runs queued"),
        "{page}"
    );

    // Nothing differs now: a second reconciliation queues nothing and reads one page.
    let (again, progress) = reconcile_now(&mut app, &admin).await;
    assert_eq!(progress.queued, 0, "{:?}", again.outcome);
    assert_eq!(progress.differences, 0, "{:?}", again.outcome);
    assert_eq!(calls_of(&app, again.id).await, 1);
    for referral in &referrals {
        assert_eq!(
            app.opportunities_for(referral),
            1,
            "exactly once: {referral}"
        );
        let reconciled = runs_of(&app, Flow::PartnerCenterToCrm, referral)
            .await
            .into_iter()
            .filter(|r| r.trigger == RunTrigger::Reconciliation)
            .count();
        assert_eq!(reconciled, 1, "{referral}");
    }
}

#[tokio::test]
async fn an_edit_made_while_its_flow_was_off_is_shared_by_reconciliation() {
    let crm = Crm::Dynamics365;
    let mut app = crm.ready().await;
    let admin = app.signed_in("admin").await;
    let (id, referral_id) = shared(crm, &mut app).await;
    app.engine
        .set_flow(Flow::CrmToPartnerCenter, false, "admin")
        .await
        .unwrap();
    crm.seller_edits(&app, id, None, Some(777_000.0));
    let (flow, skipped) = poll_one(crm, &mut app).await;
    assert_eq!(
        (flow, skipped.status),
        (Flow::CrmToPartnerCenter, RunStatus::Skipped)
    );
    let referral = |app: &TestApp| app.world.partner_center().referral(&referral_id).unwrap();
    assert_ne!(referral(&app)["details"]["dealValue"], 777000.0);

    // The flow goes back on; nobody resubmits. A reconciliation finds the edit that never went.
    app.engine
        .set_flow(Flow::CrmToPartnerCenter, true, "admin")
        .await
        .unwrap();
    let (reconciliation, progress) = reconcile_now(&mut app, &admin).await;
    assert_eq!(progress.queued, 1, "{:?}", reconciliation.outcome);
    let run = app
        .run_where(
            "the queued run finishes",
            of(Flow::CrmToPartnerCenter, id),
            reconciled_and_finished,
        )
        .await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.outcome);
    assert_eq!(referral(&app)["details"]["dealValue"], 777000.0);
}

#[tokio::test]
async fn a_viewer_cannot_reconcile_and_nothing_is_queued() {
    let app = TestApp::spawn_ready().await;
    let viewer = app.signed_in("viewer").await;
    let (status, _) = app.call(&viewer, "reconcile_now", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(reconciliations(&app).await, 0);
}

#[tokio::test]
async fn the_daily_reconciliation_is_queued_once_a_day_after_the_first_connection() {
    let app = TestApp::spawn_ready().await;
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        app.engine.reconcile_if_due(now).await.unwrap(),
        None,
        "Partner Center was connected just now"
    );
    let tomorrow = now + time::Duration::hours(25);
    let queued = app
        .engine
        .reconcile_if_due(tomorrow)
        .await
        .unwrap()
        .expect("due a day after");
    let run = app.store.run(queued).await.unwrap().unwrap();
    assert_eq!(
        (run.flow, run.trigger),
        (Flow::Reconciliation, RunTrigger::Schedule)
    );
    // The day starts again from it: an hour later nothing is due, whichever instance asks.
    assert_eq!(
        app.engine
            .reconcile_if_due(now + time::Duration::hours(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(reconciliations(&app).await, 1);
}
