//! Daily API budgets: when a connection's budget is spent, work is deferred to the next UTC day, with
//! its attempt given back and nothing called, not failed; raising the budget lets it go at once.

use crate::helpers::*;
use cosell::domain::connection::System;
use cosell::domain::runs::RunStatus;
use serde_json::json;
use time::OffsetDateTime;

#[tokio::test]
async fn a_spent_budget_defers_work_to_the_next_day_and_a_larger_one_lets_it_go() {
    let mut app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;

    // The budget is what has been spent so far today: nothing more may be called.
    let spent = app.partner_center_calls_today().await;
    let (status, body) = app
        .call(
            &admin,
            "save_budgets",
            &[("partner_center", &spent.to_string()), ("crm", "")],
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (_, page) = app.page(&viewer, "/settings").await;
    assert!(
        page.contains(&format!("{spent} of a {spent} budget used today (UTC)")),
        "{page}"
    );

    let referral = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Waits for tomorrow's calls" }));
    let id = referral["id"].as_str().unwrap().to_string();
    let deferred = app.next_run().await;
    assert_eq!(deferred.status, RunStatus::Queued, "{}", deferred.outcome);
    assert!(
        deferred
            .outcome
            .contains("Partner Center's daily budget is spent"),
        "{}",
        deferred.outcome
    );
    let run = app.store.run(deferred.run_id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(run.attempts, 0, "no attempt spent");
    let tomorrow =
        (OffsetDateTime::now_utc() + time::Duration::days(1)).replace_time(time::Time::MIDNIGHT);
    let due = app
        .store
        .next_run_due()
        .await
        .unwrap()
        .expect("still queued");
    assert_eq!(due, tomorrow, "due at midnight UTC");
    assert_eq!(
        app.partner_center_calls_today().await,
        spent,
        "nothing called"
    );
    assert_eq!(app.opportunities_for(&id), 0);
    // The Overview says so, in numbers.
    let (_, page) = app.page(&viewer, "/").await;
    assert!(
        page.contains(&format!("{spent} of a {spent} budget used today (UTC)")),
        "{page}"
    );

    // A viewer cannot raise it; an admin can, and the deferred run goes at once.
    let (status, _) = app
        .call(
            &viewer,
            "save_budgets",
            &[("partner_center", ""), ("crm", "")],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            &admin,
            "save_budgets",
            &[("partner_center", "lots"), ("crm", "")],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("Nothing was saved. Partner Center: “lots” is not a number"),
        "{body}"
    );
    assert_eq!(
        app.engine
            .budgets()
            .await
            .unwrap()
            .partner_center
            .unwrap()
            .calls(),
        spent
    );

    let (status, body) = app
        .call(
            &admin,
            "save_budgets",
            &[("partner_center", ""), ("crm", "")],
        )
        .await;
    assert!(status.is_success(), "{body}");
    assert!(
        body.contains("1 deferred run is judged again now"),
        "{body}"
    );
    let done = app.run_finished(deferred.run_id).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.outcome);
    assert_eq!(app.opportunities_for(&id), 1);
}

/// A 429 tells cosell to slow down for Retry-After: the system is held for every run (here and in other
/// instances, through the database), so a run queued meanwhile waits without a call or an attempt.
#[tokio::test]
async fn a_429_holds_the_system_for_every_run_until_its_retry_after() {
    let mut app = TestApp::spawn_ready().await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "status": 429, "retry_after": 2, "times": 1 }),
    )
    .await;
    let first = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Throttled first" }));
    let (until, reason) = eventually("the hold", || async {
        app.store
            .holds(OffsetDateTime::now_utc())
            .await
            .unwrap()
            .into_iter()
            .find(|(s, ..)| *s == System::PartnerCenter)
            .map(|(_, until, reason)| (until, reason))
    })
    .await;
    assert!(reason.contains("HTTP 429"), "{reason}");

    let second = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Queued while held" }));
    let second_id = second["id"].as_str().unwrap().to_string();
    let waiting = app
        .run_where(
            "the second run waits for the hold",
            cosell::store::RunFilter {
                record_id: Some(second_id.clone()),
                ..Default::default()
            },
            |r| {
                r.status == RunStatus::Queued
                    && r.outcome
                        .as_deref()
                        .is_some_and(|o| o.contains("hold its calls"))
            },
        )
        .await;
    assert_eq!(waiting.attempts, 0, "no attempt spent waiting");
    assert!(
        waiting
            .outcome
            .as_deref()
            .unwrap()
            .starts_with("Partner Center asked cosell to hold its calls (throttled (HTTP 429)"),
        "{:?}",
        waiting.outcome
    );
    let due = app.store.next_run_due().await.unwrap().expect("queued");
    assert!(due <= until, "due again when the hold ends, not later");

    // Once the hold ends both sync; the second with one attempt.
    let done = app.run_finished(waiting.id).await;
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.outcome);
    assert_eq!(
        app.store.run(waiting.id).await.unwrap().unwrap().attempts,
        1
    );
    let first_id = first["id"].as_str().unwrap().to_string();
    eventually("the first referral synced", || async {
        (app.opportunities_for(&first_id) == 1).then_some(())
    })
    .await;
    assert_eq!(app.opportunities_for(&second_id), 1);
}
