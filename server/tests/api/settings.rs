//! Settings: how long history is kept. Only an admin changes it; a bad value saves nothing; once saved,
//! what is older goes at once, and what is newer stays.

use crate::helpers::*;
use cosell::domain::runs::{AuditAction, RunStatus, RunTrigger};
use cosell::store::{AuditFilter, NewAuditEvent, NewRun};
use reqwest::StatusCode;
use time::{Duration, OffsetDateTime};

async fn retention(app: &TestApp, client: &reqwest::Client) -> serde_json::Value {
    let (status, body) = app.call(client, "get_retention", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// How many times the retention was changed, as the audit trail says.
async fn changes(app: &TestApp) -> i64 {
    let store = app.engine.store();
    store
        .count_audit("retention", AuditAction::RetentionChanged)
        .await
        .unwrap()
}

/// An ended run of record `record`, made `age` ago.
async fn ended_run(app: &TestApp, record: &str, age: Duration) -> i64 {
    let at = OffsetDateTime::now_utc() - age;
    let run = NewRun {
        flow: cosell::domain::flows::Flow::PartnerCenterToCrm,
        trigger: RunTrigger::Webhook,
        input: cosell::domain::runs::RunInput::referral(record),
        record_id: Some(record.into()),
        parent_run_id: None,
        resubmitted_from: None,
        settled: None,
    };
    let store = app.engine.store();
    let id = store
        .start_run(&run, "test", at + Duration::minutes(1), at)
        .await
        .unwrap()
        .id;
    store
        .finish_run(id, "test", RunStatus::Succeeded, None, "done", at)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn an_admin_sets_how_long_history_is_kept_and_older_history_goes() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;
    let defaults = serde_json::json!({ "runs_days": 90, "audit_days": null });
    assert_eq!(retention(&app, &viewer).await, defaults);

    // A viewer reads it but cannot change it: 403, nothing saved, nothing audited.
    let (status, body) = app
        .call(
            &viewer,
            "save_retention",
            &[("runs_days", "7"), ("audit_days", "")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(retention(&app, &admin).await, defaults);
    assert_eq!(changes(&app).await, 0);

    // Bad values: 400 naming each, nothing saved.
    let (status, body) = app
        .call(
            &admin,
            "save_retention",
            &[("runs_days", "0"), ("audit_days", "a year")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains("Nothing was saved")
            && body.contains("Runs: 0 days is out of range")
            && body.contains("Audit events: “a year” is not a whole number of days"),
        "{body}"
    );
    assert_eq!(retention(&app, &admin).await, defaults);
    assert_eq!(changes(&app).await, 0);

    // History: a run 40 days old and one a day old; audit events 400 and 10 days old.
    let old_run = ended_run(&app, "old", Duration::days(40)).await;
    let new_run = ended_run(&app, "new", Duration::days(1)).await;
    let store = app.engine.store();
    let now = OffsetDateTime::now_utc();
    for (record, age) in [("old-event", 400), ("new-event", 10)] {
        let event = NewAuditEvent::new(AuditAction::OpportunityCreated, "referral", record, "made");
        store
            .record_audit(&event, now - Duration::days(age))
            .await
            .unwrap();
    }

    let (status, body) = app
        .call(
            &admin,
            "save_retention",
            &[("runs_days", " 30 "), ("audit_days", "365")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("runs are kept for 30 days, audit events for 365 days"),
        "{body}"
    );
    assert_eq!(
        retention(&app, &viewer).await,
        serde_json::json!({ "runs_days": 30, "audit_days": 365 })
    );
    assert_eq!(changes(&app).await, 1);

    // Removed in the background, at once.
    eventually("the old run removed", || async {
        store.run(old_run).await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(store.run(new_run).await.unwrap().is_some());
    eventually("the old audit event removed", || async {
        let left = store
            .list_audit(&AuditFilter::record("old-event"), None, 1)
            .await
            .unwrap();
        left.is_empty().then_some(())
    })
    .await;
    assert_eq!(
        store
            .list_audit(&AuditFilter::record("new-event"), None, 1)
            .await
            .unwrap()
            .len(),
        1
    );

    // The page shows it, and a browser without JavaScript saves through the form.
    let (_, page) = app.page(&viewer, "/settings").await;
    assert!(
        page.contains(r#"value="30""#) && page.contains(r#"value="365""#),
        "{page}"
    );
    assert!(!page.contains(">Save<"), "a viewer has no button");
    let r = app
        .submit(
            &admin,
            "/settings",
            "/api/save_retention",
            &[
                ("runs_days".to_string(), "28".to_string()),
                ("audit_days".to_string(), String::new()),
            ],
        )
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    assert_eq!(
        retention(&app, &admin).await,
        serde_json::json!({ "runs_days": 28, "audit_days": null })
    );
}
