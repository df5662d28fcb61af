//! What keeps work alive between workers and instances: leases renewed while a run works (and a lost one
//! stopping the run before its next call), and the inbox drained while cosell runs, not only at start-up.

use crate::helpers::*;
use cosell::domain::flows::Flow;
use cosell::domain::notification::Notification;
use cosell::domain::runs::{RunInput, RunStatus};
use cosell::store::{Run, RunFilter};
use serde_json::json;
use std::time::Duration;

/// The run of "Partner Center to CRM" in the call the fault rule holds: waits until the emulator has
/// received that call (the rule is used up), then reads the one running run.
async fn run_in_held_call(app: &TestApp) -> Run {
    assert!(
        app.world
            .faults()
            .wait_until_used(Duration::from_secs(20))
            .await,
        "the held call arrives within 20 s"
    );
    let running = app
        .store
        .list_runs(
            &RunFilter {
                flow: Some(Flow::PartnerCenterToCrm),
                status: Some(RunStatus::Running),
                ..Default::default()
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(running.len(), 1, "{running:?}");
    running.into_iter().next().unwrap()
}

/// Another instance takes `run` over, holding its lease for `lease` from now (as it would after this
/// instance stopped renewing); the run then finishes, run again by whoever claims it, and succeeds.
async fn taken_over_and_finished(app: &mut TestApp, run: &Run, lease: time::Duration) {
    let until = time::OffsetDateTime::now_utc() + lease;
    assert!(
        app.store
            .steal_lease(run.id, "other-instance", until)
            .await
            .unwrap()
    );
    let finished = app.run_finished(run.id).await;
    assert_eq!(
        finished.status,
        RunStatus::Succeeded,
        "{}",
        finished.outcome
    );
}

#[tokio::test]
async fn a_run_longer_than_its_lease_keeps_it_and_runs_once() {
    // A 1.5 s lease (renewed every 0.5 s) and a 4 s call: without renewal, the other worker takes the
    // run over mid-way; with it, a loaded machine still has a second to spare at each renewal.
    let mut app = TestApp::spawn_ready_with(&["--run-lease-ms", "1500", "--workers", "2"]).await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "delay_ms": 4000, "times": 1 }),
    )
    .await;
    let referral = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Long call" }));
    let id = referral["id"].as_str().unwrap();

    let (run, _echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let stored = app.store.run(run.run_id).await.unwrap().unwrap();
    assert_eq!(
        stored.attempts, 1,
        "claimed once: the lease was renewed while the call took longer than it"
    );
    assert_eq!(app.opportunities_for(id), 1);
    assert!(
        app.store
            .runs_executed_concurrently()
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_run_whose_lease_was_taken_over_stops_before_its_next_call() {
    let mut app = TestApp::spawn_ready_with(&["--run-lease-ms", "900", "--workers", "2"]).await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "delay_ms": 3000, "times": 1 }),
    )
    .await;
    let referral = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Taken over" }));
    let id = referral["id"].as_str().unwrap().to_string();

    // While the first worker waits on Partner Center, another instance takes the run over (as it would
    // after this one stopped renewing), then itself stops: its lease runs out after the first worker's
    // call has come back, and a worker runs the run again.
    let run = run_in_held_call(&app).await;
    taken_over_and_finished(&mut app, &run, time::Duration::seconds(5)).await;
    let steps = app.store.run_steps(run.id).await.unwrap();
    let names: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.detail.as_str()))
        .collect();
    assert_eq!(
        names[..2],
        [
            ("Get the referral from Partner Center", ""),
            (
                "Find the opportunity by referral id",
                "Not sent: another worker has taken the run over."
            )
        ],
        "the worker that lost the lease sent nothing after the call it was in: {steps:?}"
    );
    assert_eq!(steps[1].api_calls, 0);
    assert_eq!(
        app.store.run(run.id).await.unwrap().unwrap().attempts,
        2,
        "run again by the worker that took it over"
    );
    assert_eq!(app.opportunities_for(&id), 1, "one opportunity");
    assert!(
        app.store
            .runs_executed_concurrently()
            .await
            .unwrap()
            .is_empty(),
        "the worker that lost the lease was done before the new holder began"
    );
}

#[tokio::test]
async fn a_run_taken_over_in_the_middle_of_a_call_is_counted_as_executed_twice_at_once() {
    // What scripts/chaos counts, broken on purpose: another instance takes the run over at once, while
    // the first worker is still in its call; that call ends after the second attempt began.
    let mut app = TestApp::spawn_ready_with(&["--run-lease-ms", "900", "--workers", "2"]).await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "delay_ms": 3000, "times": 1 }),
    )
    .await;
    app.world
        .partner_center()
        .seller_creates(json!({ "name": "Overlapped" }));
    let run = run_in_held_call(&app).await;
    // Already expired: a worker claims it again at once.
    taken_over_and_finished(&mut app, &run, time::Duration::seconds(-1)).await;
    // The first worker's call comes back after the new holder began; then it sends nothing more.
    let steps = eventually("the first worker's refusal to go on", || async {
        let steps = app.store.run_steps(run.id).await.unwrap();
        steps
            .iter()
            .any(|s| s.detail.contains("another worker has taken the run over"))
            .then_some(steps)
    })
    .await;
    assert!(
        steps.iter().any(|s| s.attempt == 1 && s.api_calls == 1),
        "{steps:?}"
    );
    assert_eq!(
        app.store.runs_executed_concurrently().await.unwrap(),
        vec![run.id]
    );
}

#[tokio::test]
async fn an_event_stored_but_not_queued_becomes_a_run_while_cosell_runs() {
    // Nothing connected, every flow off: the only run is the one the inbox drain makes.
    let mut app = TestApp::spawn().await;
    let body = json!({
        "EventName": "referral-created",
        "ResourceUri": "https://api.partner.microsoft.com/v1.0/engagements/referrals/lost-1",
        "ResourceName": "Referral",
        "AuditUri": null,
        "ResourceChangeUtcDate": "2026-11-30T10:00:00.0000001+00:00"
    })
    .to_string();
    let notification = Notification::parse(body.as_bytes()).unwrap();
    // Stored as the webhook endpoint stores it, by an instance that died before queueing its run.
    let stored = app
        .store
        .record_notification(&notification, &body, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let cosell::store::Recorded::New(inbox_id) = stored else {
        panic!("a new event")
    };

    let run = app.next_run().await;
    let run = app.store.run(run.run_id).await.unwrap().unwrap();
    assert!(
        matches!(&run.input, RunInput::Event { inbox_id: i, referral_id, .. } if *i == inbox_id && referral_id == "lost-1"),
        "{:?}",
        run.input
    );
    assert_eq!(
        run.status,
        RunStatus::Skipped,
        "the flow is off: audited, resubmittable"
    );
    assert!(
        app.store.unprocessed_inbox().await.unwrap().is_empty(),
        "the event is handed over once"
    );
}

#[tokio::test]
async fn a_restarted_cosell_carries_on_against_the_same_outside_world() {
    let world = std::sync::Arc::new(
        cosell_sandbox::Sandbox::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap(),
    );
    // Deliveries to a stopped cosell are retried soon (Partner Center's own intervals are undocumented).
    world.partner_center().set_delivery_settings(
        cosell_sandbox::partner_center::DeliverySettings {
            retry_base_ms: 100,
            ..Default::default()
        },
    );
    let db = std::sync::Arc::new(cosell::store::test_support::TestDatabase::new().await);
    // The same address both times: Partner Center delivers to the URL registered.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let flags = ["--addr", addr.as_str()];

    let mut first = TestApp::spawn_on(world.clone(), db.clone(), &flags)
        .await
        .made_ready()
        .await;
    let before = world
        .partner_center()
        .seller_creates(json!({ "name": "Before the restart" }));
    let (run, _echo) = first.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    first.stop().await.unwrap();

    // Shared while cosell is down: Partner Center keeps trying to deliver it.
    let during = world
        .partner_center()
        .seller_creates(json!({ "name": "While cosell was down" }));

    // Started again on the same database and key: its connections open, its flows are on, and the
    // delivery it missed arrives and syncs, without anyone signing in.
    let mut second = TestApp::spawn_on(world.clone(), db, &flags).await;
    let (run, _echo) = second.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    for referral in [&before, &during] {
        let id = referral["id"].as_str().unwrap();
        assert_eq!(second.opportunities_for(id), 1, "{}", referral["name"]);
        assert!(
            world.partner_center().referral(id).unwrap()["externalReferenceId"].is_string(),
            "the CRM id went back to {}",
            referral["name"]
        );
    }
}
