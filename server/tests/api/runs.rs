//! The Runs and Audit pages: filters, keyset pages, a run's story, and resubmission (one run, or every
//! failed run a filter matches), over HTTP as the admin and the viewer use them.

use crate::helpers::*;
use cosell::domain::flows::Flow;
use cosell::domain::runs::{AuditAction, RunInput};
use cosell::domain::runs::{RunStatus, RunTrigger};
use cosell::store::{NewAuditEvent, NewRun};
use reqwest::StatusCode;
use serde_json::json;
use time::OffsetDateTime;

/// A finished run of "Partner Center to CRM" for `record`, stored directly: the list pages read the
/// database, whatever wrote it.
fn settled(record: &str, status: RunStatus) -> NewRun {
    NewRun {
        flow: Flow::PartnerCenterToCrm,
        trigger: RunTrigger::Webhook,
        input: RunInput::Event {
            event: "referral-created".into(),
            referral_id: record.into(),
            inbox_id: 0,
            changed_at: None,
        },
        record_id: Some(record.to_string()),
        parent_run_id: None,
        resubmitted_from: None,
        settled: Some((status, format!("{} {record}", status.as_code()))),
    }
}

/// The run ids a Runs page lists, in order.
fn listed(html: &str) -> Vec<i64> {
    html.split("data-run=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse().ok())
        .collect()
}

/// The href of the "Older …" link, when the page has one.
fn older_link(html: &str) -> Option<String> {
    let at = html.find(">Older ")?;
    let start = html[..at].rfind("href=\"")? + 6;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&"))
}

#[tokio::test]
async fn runs_are_listed_newest_first_filtered_and_paged_by_keyset() {
    let app = TestApp::spawn().await;
    let at = OffsetDateTime::now_utc() - time::Duration::hours(2);
    let mut ids = Vec::new();
    for i in 0..63 {
        let status = if i % 10 == 3 {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        let when = at + time::Duration::minutes(i);
        ids.push(
            app.store
                .enqueue_run(&settled(&format!("ref-{i}"), status), when)
                .await
                .unwrap(),
        );
    }
    let viewer = app.signed_in("viewer").await;

    // Page one: the 50 newest; "Older runs" continues exactly where it stopped.
    let (status, first) = app.page(&viewer, "/runs").await;
    assert_eq!(status, StatusCode::OK);
    let newest: Vec<i64> = ids.iter().rev().take(50).copied().collect();
    assert_eq!(listed(&first), newest);
    let older = older_link(&first).expect("an Older runs link");
    let (_, second) = app.page(&viewer, &older).await;
    let rest: Vec<i64> = ids.iter().rev().skip(50).copied().collect();
    assert_eq!(listed(&second), rest);
    assert!(older_link(&second).is_none(), "the last page");
    assert!(second.contains("Newest runs"));

    // By status, by record, by time.
    let (_, failed) = app.page(&viewer, "/runs?status=failed").await;
    let expected: Vec<i64> = ids
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| i % 10 == 3)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(listed(&failed), expected);
    let (_, one) = app.page(&viewer, "/runs?record=ref-7").await;
    assert_eq!(listed(&one), vec![ids[7]]);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let from = (at + time::Duration::minutes(10)).format(&fmt).unwrap();
    let to = (at + time::Duration::minutes(12)).format(&fmt).unwrap();
    let (_, window) = app
        .page(&viewer, &format!("/runs?from={from}&to={to}"))
        .await;
    assert_eq!(listed(&window), vec![ids[11], ids[10]]);
    let (_, by_flow) = app.page(&viewer, "/runs?flow=webhook_registration").await;
    assert!(listed(&by_flow).is_empty());
    assert!(by_flow.contains("No runs match."));

    // A filter that cannot be read says so, and the form keeps what was typed.
    let (_, bad) = app.page(&viewer, "/runs?from=yesterday").await;
    assert!(bad.contains("is not a date and time"), "{bad}");
    assert!(bad.contains("value=\"yesterday\""));
    let (_, backwards) = app
        .page(&viewer, &format!("/runs?from={to}&to={from}"))
        .await;
    assert!(backwards.contains("must come before"), "{backwards}");
    let (_, unknown) = app.page(&viewer, "/runs?flow=nope").await;
    assert!(unknown.contains("There is no flow"), "{unknown}");

    // A viewer is offered no resubmission.
    assert!(!failed.contains("Resubmit"));
}

#[tokio::test]
async fn a_failed_run_is_resubmitted_once_and_its_page_tells_the_story() {
    let mut app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "status": 400, "times": 1 }),
    )
    .await;
    let referral = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Denied, then fine" }));
    let referral_id = referral["id"].as_str().unwrap().to_string();
    let failed = app.next_run().await;
    assert_eq!(failed.status, RunStatus::Failed);

    let (_, list) = app.page(&admin, "/runs?status=failed").await;
    assert_eq!(listed(&list), vec![failed.run_id]);
    assert!(list.contains(&format!("aria-label=\"Resubmit run {}\"", failed.run_id)));
    let (_, page) = app.page(&admin, &format!("/runs/{}", failed.run_id)).await;
    assert!(
        page.contains("Get the referral from Partner Center"),
        "the failing step"
    );
    assert!(
        page.contains("Correct the record, then resubmit the run"),
        "the fix: {page}"
    );
    assert!(page.contains("run_failed"), "its audit event");

    // A viewer cannot resubmit; the admin can, once.
    let viewer = app.signed_in("viewer").await;
    let id = failed.run_id.to_string();
    let (status, _) = app.call(&viewer, "resubmit_run", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.call(&admin, "resubmit_run", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (done, _echo) = app.run_and_echo().await;
    assert_eq!(done.status, RunStatus::Succeeded, "{}", done.outcome);
    assert!(body.contains(&format!("as run {}", done.run_id)), "{body}");
    let (status, body) = app.call(&admin, "resubmit_run", &[("id", &id)]).await;
    assert_ne!(status, StatusCode::OK);
    assert!(
        body.contains(&format!("already resubmitted, as run {}", done.run_id)),
        "{body}"
    );

    // The new run links back; the old one lists it; the audit trail names who resubmitted.
    let (_, again) = app.page(&admin, &format!("/runs/{}", done.run_id)).await;
    assert!(again.contains("Resubmission of"), "{again}");
    assert!(again.contains(&format!("href=\"/runs/{}\"", failed.run_id)));
    assert!(
        again.contains("Child runs"),
        "helper and updates ran inside it"
    );
    let (_, original) = app.page(&admin, &format!("/runs/{}", failed.run_id)).await;
    assert!(original.contains("Resubmitted as"), "{original}");
    let (_, audit) = app.page(&admin, "/audit").await;
    assert!(audit.contains(&format!(
        "Run {} resubmitted as run {}.",
        failed.run_id, done.run_id
    )));
    let (_, for_referral) = app
        .page(&admin, &format!("/audit?record={referral_id}"))
        .await;
    assert!(
        for_referral.contains("data-action=\"referral_linked\""),
        "{for_referral}"
    );
}

#[tokio::test]
async fn without_javascript_resubmitting_opens_the_new_run() {
    let app = TestApp::spawn().await;
    let failed = app
        .store
        .enqueue_run(
            &settled("r-1", RunStatus::Failed),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let admin = app.signed_in("admin").await;
    let r = admin
        .post(app.url("/api/resubmit_run"))
        .header("accept", "text/html")
        .header("origin", &app.base)
        .header("referer", app.url("/runs"))
        .form(&[("id", failed.to_string())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let new = app
        .store
        .list_runs(&Default::default(), None, 1)
        .await
        .unwrap()[0]
        .id;
    assert!(to.ends_with(&format!("/runs/{new}")), "{to}");
}

#[tokio::test]
async fn resubmit_all_takes_the_failed_runs_the_filter_matches_and_never_twice() {
    let app = TestApp::spawn().await;
    let now = OffsetDateTime::now_utc();
    let a = app
        .store
        .enqueue_run(&settled("a", RunStatus::Failed), now)
        .await
        .unwrap();
    let b = app
        .store
        .enqueue_run(&settled("b", RunStatus::Failed), now)
        .await
        .unwrap();
    app.store
        .enqueue_run(&settled("c", RunStatus::Succeeded), now)
        .await
        .unwrap();
    let admin = app.signed_in("admin").await;
    let filter = |record: &'static str| {
        vec![
            ("flow", ""),
            ("status", ""),
            ("record", record),
            ("from", ""),
            ("to", ""),
        ]
    };
    let (status, body) = app.call(&admin, "resubmit_failed", &filter("a")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("1 failed run resubmitted"), "{body}");
    let (_, body) = app.call(&admin, "resubmit_failed", &filter("")).await;
    assert!(
        body.contains("1 failed run resubmitted"),
        "only b is left: {body}"
    );
    let (_, body) = app.call(&admin, "resubmit_failed", &filter("")).await;
    assert!(body.contains("Nothing to resubmit"), "{body}");
    for original in [a, b] {
        let related = app.store.related_runs(original).await.unwrap();
        assert_eq!(related.len(), 1, "run {original} resubmitted once");
        assert_eq!(related[0].trigger, RunTrigger::Resubmit);
    }

    let mut bad = filter("");
    bad[1] = ("status", "succeeded");
    let (status, body) = app.call(&admin, "resubmit_failed", &bad).await;
    assert_ne!(status, StatusCode::OK);
    assert!(body.contains("shows no failed runs"), "{body}");
    let mut bad = filter("");
    bad[3] = ("from", "30/11/2026");
    let (_, body) = app.call(&admin, "resubmit_failed", &bad).await;
    assert!(body.contains("is not a date and time"), "{body}");
}

#[tokio::test]
async fn the_audit_list_filters_by_record_and_run_and_pages_by_keyset() {
    let app = TestApp::spawn().await;
    let now = OffsetDateTime::now_utc();
    let run = app
        .store
        .enqueue_run(&settled("r-9", RunStatus::Succeeded), now)
        .await
        .unwrap();
    for i in 0..55 {
        app.store
            .record_audit(
                &NewAuditEvent {
                    run_id: (i == 54).then_some(run),
                    ..NewAuditEvent::new(
                        AuditAction::OpportunityUpdated,
                        "opportunity",
                        &format!("opp-{}", i % 2),
                        format!("event number {i}."),
                    )
                },
                now,
            )
            .await
            .unwrap();
    }
    app.store
        .record_audit(
            &NewAuditEvent {
                direction: Some(cosell::domain::runs::Direction::ToPartnerCenter),
                changes: Some(json!([{ "path": "/details/dealValue", "from": 100, "to": 250 }])),
                ..NewAuditEvent::new(
                    AuditAction::ReferralUpdateConflict,
                    "referral",
                    "ref-x",
                    "the odd one out.",
                )
            },
            now - time::Duration::hours(3),
        )
        .await
        .unwrap();
    let viewer = app.signed_in("viewer").await;
    let (_, odd) = app
        .page(
            &viewer,
            "/audit?direction=to_partner_center&outcome=conflict",
        )
        .await;
    assert!(
        odd.contains("the odd one out.") && !odd.contains("event number"),
        "{odd}"
    );
    assert!(
        odd.contains("<del>100</del>") && odd.contains("<ins>250</ins>"),
        "the field diff"
    );
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let cut = (now - time::Duration::hours(1)).format(&fmt).unwrap();
    let (_, early) = app.page(&viewer, &format!("/audit?to={cut}")).await;
    assert!(early.contains("the odd one out.") && !early.contains("event number"));
    let (_, backwards) = app
        .page(&viewer, "/audit?from=2026-11-30T10:00&to=2026-11-30T09:00")
        .await;
    assert!(backwards.contains("must come before"), "{backwards}");
    let (_, bad) = app.page(&viewer, "/audit?outcome=maybe").await;
    assert!(bad.contains("There is no outcome"), "{bad}");
    let (status, first) = app.page(&viewer, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    // 56 events: the odd one (recorded last) and 54..6 on the first page, 5..0 on the second.
    assert!(first.contains("the odd one out.") && first.contains("event number 54."));
    assert!(
        first.contains("event number 6.") && !first.contains("event number 5."),
        "50 per page"
    );
    let (_, second) = app.page(&viewer, &older_link(&first).unwrap()).await;
    assert!(second.contains("event number 5.") && second.contains("event number 0."));
    assert!(!second.contains("event number 6."));

    let (_, odd) = app.page(&viewer, "/audit?record=opp-1").await;
    assert!(odd.contains("event number 53.") && !odd.contains("event number 54."));
    let (_, by_run) = app.page(&viewer, &format!("/audit?run={run}")).await;
    assert!(by_run.contains("event number 54.") && !by_run.contains("event number 53."));
    let (_, bad) = app.page(&viewer, "/audit?run=abc").await;
    assert!(bad.contains("is not a run number"), "{bad}");
}
