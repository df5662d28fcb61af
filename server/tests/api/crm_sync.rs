//! Dynamics 365 → Partner Center over HTTP against the sandbox: a seller switches "Sync with Partner
//! Center" on, the change feed sees it, and the opportunity becomes a co-sell referral — or, when it is
//! not ready, costs no Partner Center call and says what is missing.

use crate::helpers::*;
use cosell::domain::runs::RunStatus;
use cosell::store::AuditFilter;
use cosell_sandbox::dataverse::columns as col;
use cosell_sandbox::dataverse::{
    ACCOUNT_FABRIKAM, ACCOUNT_LITWARE, OPPORTUNITY_FABRIKAM, OPPORTUNITY_LITWARE,
};
use serde_json::json;

/// Connected, every flow on, webhooks registered, and the CRM's change feed read once (the first read
/// only mirrors what exists).
async fn ready() -> TestApp {
    let app = TestApp::spawn_ready().await;
    let first = app.engine.poll_changes().await.expect("first poll");
    // Initial here or in the engine's own start-up read (under load it may come after the connections).
    assert!(first.queued.is_empty(), "{first:?}");
    app
}

/// A CRM user's edit, through the sandbox.
fn crm_edit(app: &TestApp, set: &str, id: &str, patch: serde_json::Value) {
    app.world
        .dataverse()
        .update(set, id, patch)
        .unwrap_or_else(|e| panic!("edit {set}({id}): {e}"));
}

/// Partner Center calls a run and its child runs made, by step name.
async fn partner_center_steps(app: &TestApp, run_id: i64) -> Vec<(String, i64)> {
    let mut runs = vec![run_id];
    runs.extend(
        app.store
            .related_runs(run_id)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id),
    );
    let mut steps = Vec::new();
    for id in runs {
        for s in app.store.run_steps(id).await.unwrap() {
            if s.name.contains("Partner Center") && s.api_calls > 0 {
                steps.push((s.name, s.api_calls));
            }
        }
    }
    steps
}

/// The newest audit event `action` about `record`; the test fails when there is none.
async fn audit_event(app: &TestApp, record: &str, action: &str) -> cosell::store::AuditEvent {
    app.store
        .list_audit(&AuditFilter::record(record), None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == action)
        .unwrap_or_else(|| panic!("no {action} event for {record}"))
}

/// Polls the change feed and waits for the one run it queued.
async fn poll_and_run(app: &mut TestApp) -> cosell::engine::RunFinished {
    let report = app.engine.poll_changes().await.expect("poll");
    assert_eq!(report.queued.len(), 1, "{report:?}");
    app.run_finished(report.queued[0]).await
}

/// A seller switches sync on for Fabrikam's opportunity, whose account's country is "United States" (a
/// name, not an ISO code): the run checks it and skips it, sending nothing.
async fn fabrikam_switched_on(app: &mut TestApp) -> cosell::engine::RunFinished {
    crm_edit(
        app,
        "opportunities",
        OPPORTUNITY_FABRIKAM,
        json!({ (col::SYNC): true }),
    );
    let run = poll_and_run(app).await;
    assert_eq!(run.status, RunStatus::Skipped, "{}", run.outcome);
    run
}

/// A seller gives Litware's account an ISO country and switches sync on for its opportunity.
fn make_litware_ready_and_synced(app: &TestApp) {
    crm_edit(
        app,
        "accounts",
        ACCOUNT_LITWARE,
        json!({ "address1_country": "US" }),
    );
    crm_edit(
        app,
        "opportunities",
        OPPORTUNITY_LITWARE,
        json!({ (col::SYNC): true }),
    );
}

/// Shares the Litware opportunity; returns the referral id.
async fn share_litware(app: &mut TestApp) -> String {
    make_litware_ready_and_synced(app);
    let run = poll_and_run(app).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let opportunity = app
        .world
        .dataverse()
        .row("opportunities", OPPORTUNITY_LITWARE)
        .unwrap();
    opportunity[col::REFERRAL_ID]
        .as_str()
        .expect("the referral id on the opportunity")
        .to_string()
}

#[tokio::test]
async fn switching_sync_on_shares_the_opportunity_with_one_partner_center_call() {
    let mut app = ready().await;
    make_litware_ready_and_synced(&app);
    let run = poll_and_run(&mut app).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert_eq!(
        partner_center_steps(&app, run.run_id).await,
        vec![("Create the referral in Partner Center".to_string(), 1)],
        "exactly one Partner Center call"
    );

    let opportunity = app
        .world
        .dataverse()
        .row("opportunities", OPPORTUNITY_LITWARE)
        .unwrap();
    let id = opportunity[col::REFERRAL_ID].as_str().unwrap();
    assert!(
        opportunity[col::REFERRAL_LINK]
            .as_str()
            .unwrap()
            .ends_with(id)
    );
    assert!(
        opportunity[col::AUDIT].as_str().unwrap().starts_with("✔"),
        "{}",
        opportunity[col::AUDIT]
    );
    let referral = app.world.partner_center().referral(id).unwrap();
    assert_eq!(referral["externalReferenceId"], OPPORTUNITY_LITWARE);
    assert_eq!(referral["name"], "Litware data platform");
    // The opportunity's page opens the record in Dynamics 365.
    let viewer = app.signed_in("viewer").await;
    let (_, page) = app
        .page(&viewer, &format!("/opportunities/{OPPORTUNITY_LITWARE}"))
        .await;
    assert!(
        page.contains(&format!(
            "main.aspx?etn=opportunity&amp;pagetype=entityrecord&amp;id={OPPORTUNITY_LITWARE}"
        )) && page.contains("Open in Dynamics 365"),
        "{page}"
    );
    assert_eq!(referral["customerProfile"]["address"]["country"], "US");
    assert_eq!(referral["customerProfile"]["team"][0]["lastName"], "Patel");
    assert_eq!(referral["details"]["dealValue"], 120000.0);
    assert_eq!(referral["details"]["currency"], "USD");
    assert_eq!(
        referral["details"]["closingDateTime"],
        "2027-09-30T00:00:00Z"
    );
    assert_eq!(
        referral["details"]["requirements"]["solutions"][0]["id"],
        "SOL-DATA-PLAT"
    );
    assert_eq!(
        referral["inviteContext"]["assistanceRequestCode"],
        "CustomerTechnicalArchitecture"
    );
    assert_eq!(referral["team"][0]["lastName"], "Vance");
    assert!(referral["team"][0]["phoneNumber"].is_string());

    let mirrored = app
        .store
        .opportunity(OPPORTUNITY_LITWARE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mirrored.seen.referral_id.as_deref(), Some(id));
    assert_eq!(mirrored.problems, Some(vec![]));
    let created = audit_event(&app, OPPORTUNITY_LITWARE, "referral_created").await;
    assert!(created.changes.as_ref().unwrap().as_array().unwrap().len() > 5);
}

#[tokio::test]
async fn an_opportunity_that_is_not_ready_costs_no_call_and_names_what_is_missing() {
    let mut app = ready().await;
    let run = fabrikam_switched_on(&mut app).await;
    assert!(
        run.outcome.contains("“United States”") && run.outcome.contains("set it to US"),
        "{}",
        run.outcome
    );
    assert!(
        partner_center_steps(&app, run.run_id).await.is_empty(),
        "zero Partner Center calls"
    );
    let invalid = audit_event(&app, OPPORTUNITY_FABRIKAM, "opportunity_invalid").await;
    assert_eq!(
        invalid.changes.as_ref().unwrap()[0]["rule"],
        "country_not_iso"
    );
    let opportunity = app
        .world
        .dataverse()
        .row("opportunities", OPPORTUNITY_FABRIKAM)
        .unwrap();
    assert_eq!(
        opportunity[col::AUDIT],
        "✖ Not sent to Partner Center: Account: Address 1: Country/Region"
    );
    let mirrored = app
        .store
        .opportunity(OPPORTUNITY_FABRIKAM)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mirrored.problems.unwrap()[0].rule(), "country_not_iso");

    // Our own write to the Audit column comes back through the feed: suppressed, nothing queued.
    let report = app.engine.poll_changes().await.unwrap();
    assert_eq!((report.echoes, report.queued.len()), (1, 0), "{report:?}");

    // The seller fixes the account's country: that change alone shares the opportunity.
    crm_edit(
        &app,
        "accounts",
        ACCOUNT_FABRIKAM,
        json!({ "address1_country": "US" }),
    );
    let run = poll_and_run(&mut app).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert!(
        app.world
            .dataverse()
            .row("opportunities", OPPORTUNITY_FABRIKAM)
            .unwrap()[col::REFERRAL_ID]
            .is_string()
    );
}

#[tokio::test]
async fn a_sellers_account_fix_read_in_the_same_poll_as_our_own_note_is_shared() {
    let mut app = ready().await;
    fabrikam_switched_on(&mut app).await;
    // Before the feed reads cosell's note on the opportunity back, the seller fixes the account: one
    // poll carries both. The note is an echo; the fix is not, and is shared.
    crm_edit(
        &app,
        "accounts",
        ACCOUNT_FABRIKAM,
        json!({ "address1_country": "US" }),
    );
    let report = app.engine.poll_changes().await.unwrap();
    assert_eq!((report.echoes, report.queued.len()), (1, 1), "{report:?}");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert!(
        app.world
            .dataverse()
            .row("opportunities", OPPORTUNITY_FABRIKAM)
            .unwrap()[col::REFERRAL_ID]
            .is_string()
    );
}

#[tokio::test]
async fn an_edit_is_one_patch_and_our_own_writes_do_not_echo() {
    let mut app = ready().await;
    let id = share_litware(&mut app).await;
    // Partner Center announces the new referral; cosell recognises its own create and reads nothing.
    let echo = app.next_run().await;
    assert_eq!(echo.status, RunStatus::Skipped, "{}", echo.outcome);
    // The feed reports our own write-back (referral id, link, audit line): suppressed.
    let report = app.engine.poll_changes().await.unwrap();
    assert!(report.queued.is_empty(), "no echo: {report:?}");

    crm_edit(
        &app,
        "opportunities",
        OPPORTUNITY_LITWARE,
        json!({ "estimatedvalue": 150000 }),
    );
    let run = poll_and_run(&mut app).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert_eq!(
        partner_center_steps(&app, run.run_id).await,
        vec![("Update the referral in Partner Center".to_string(), 1)],
        "exactly one PATCH, no read before it"
    );
    let referral = app.world.partner_center().referral(&id).unwrap();
    assert_eq!(referral["details"]["dealValue"], 150000.0);
    let updated = audit_event(&app, OPPORTUNITY_LITWARE, "referral_updated").await;
    assert_eq!(
        updated.changes.as_ref().unwrap()[0],
        json!({ "path": "/details/dealValue", "from": 120000.0, "to": 150000.0 })
    );
    // The PATCH's own referral-updated event is recognised: nothing read, and the round trip ends.
    let echo = app.next_run().await;
    assert_eq!(echo.status, RunStatus::Skipped, "{}", echo.outcome);
    let report = app.engine.poll_changes().await.unwrap();
    assert!(report.queued.is_empty(), "no echo loop: {report:?}");
}

#[tokio::test]
async fn a_412_is_read_again_merged_and_audited_as_a_conflict() {
    let mut app = ready().await;
    let id = share_litware(&mut app).await;
    let _echo = app.next_run().await;
    app.engine.poll_changes().await.unwrap();
    // A Microsoft seller edits the referral: the eTag cosell holds is stale now.
    app.seller_updates(
        &id,
        json!([{ "op": "add", "path": "/details/notes", "value": "Microsoft: customer wants a PoC" }]),
    )
    .await;
    let _their_echo = app.next_run().await;
    crm_edit(
        &app,
        "opportunities",
        OPPORTUNITY_LITWARE,
        json!({ "estimatedvalue": 175000 }),
    );
    let report = app.engine.poll_changes().await.unwrap();
    let run = app.run_finished(*report.queued.last().unwrap()).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let referral = app.world.partner_center().referral(&id).unwrap();
    assert_eq!(
        referral["details"]["dealValue"], 175000.0,
        "the CRM's value"
    );
    assert_eq!(
        referral["details"]["notes"], "Microsoft: customer wants a PoC",
        "theirs kept"
    );
    let conflict = audit_event(&app, OPPORTUNITY_LITWARE, "referral_update_conflict").await;
    assert_eq!(
        conflict.outcome,
        cosell::domain::runs::AuditOutcome::Conflict
    );
    let steps = partner_center_steps(&app, run.run_id).await;
    assert_eq!(
        steps.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        vec![
            "Update the referral in Partner Center",
            "Read the referral from Partner Center",
            "Update the referral in Partner Center"
        ]
    );
}

#[tokio::test]
async fn the_opportunities_page_lists_searches_switches_sync_and_tells_the_story() {
    let mut app = ready().await;
    let viewer = app.signed_in("viewer").await;
    let admin = app.signed_in("admin").await;
    let (status, page) = app.page(&viewer, "/opportunities").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    for name in [
        "Adatum security assessment",
        "Fabrikam Azure migration",
        "Litware data platform",
    ] {
        assert!(page.contains(name), "{name}");
    }
    assert!(!page.contains("Turn on"), "a viewer switches nothing");
    let (_, found) = app.page(&viewer, "/opportunities?q=fabri").await;
    assert!(found.contains("Fabrikam Azure migration") && !found.contains("Litware data platform"));
    let (_, by_id) = app
        .page(&viewer, &format!("/opportunities?q={OPPORTUNITY_LITWARE}"))
        .await;
    assert!(by_id.contains("Litware data platform") && !by_id.contains("Fabrikam Azure"));

    // "Check" reads and judges without sending: Adatum has a country name and no solution.
    let (status, _) = app
        .call(
            &viewer,
            "check_opportunity",
            &[("crm_id", cosell_sandbox::dataverse::OPPORTUNITY_ADATUM)],
        )
        .await;
    assert_eq!(
        status,
        reqwest::StatusCode::FORBIDDEN,
        "a check records a run: admins only"
    );
    let (status, body) = app
        .call(
            &admin,
            "check_opportunity",
            &[("crm_id", cosell_sandbox::dataverse::OPPORTUNITY_ADATUM)],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert!(
        body.contains("“Deutschland”") && body.contains("Solution ID is required"),
        "{body}"
    );
    // The list says the first failing rule and how many more; the opportunity's page says them all.
    let (_, page) = app.page(&viewer, "/opportunities?q=adatum").await;
    assert!(page.contains("data-rule=\"solution_missing\""), "{page}");
    assert!(!page.contains("data-rule=\"country_not_iso\""), "{page}");
    assert!(page.contains("and 1 more rule"), "{page}");
    let (_, page) = app
        .page(
            &viewer,
            &format!(
                "/opportunities/{}",
                cosell_sandbox::dataverse::OPPORTUNITY_ADATUM
            ),
        )
        .await;
    assert!(
        page.contains("data-rule=\"country_not_iso\"")
            && page.contains("data-rule=\"solution_missing\""),
        "{page}"
    );

    // The admin switches sync on from the dashboard: written to the CRM, and the run follows.
    let (status, _) = app
        .call(
            &viewer,
            "set_sync",
            &[("crm_id", OPPORTUNITY_LITWARE), ("on", "true")],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    crm_edit(
        &app,
        "accounts",
        ACCOUNT_LITWARE,
        json!({ "address1_country": "US" }),
    );
    let report = app.engine.poll_changes().await.unwrap();
    assert!(
        report.queued.is_empty(),
        "Litware is not synced yet: {report:?}"
    );
    let (status, body) = app
        .call(
            &admin,
            "set_sync",
            &[("crm_id", OPPORTUNITY_LITWARE), ("on", "true")],
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(
        app.world
            .dataverse()
            .row("opportunities", OPPORTUNITY_LITWARE)
            .unwrap()[col::SYNC],
        true,
        "the CRM stays the record of truth"
    );
    let run_id = app
        .store
        .list_runs(&Default::default(), None, 1)
        .await
        .unwrap()[0]
        .id;
    let run = app.run_finished(run_id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let report = app.engine.poll_changes().await.unwrap();
    assert!(
        report.queued.is_empty(),
        "the switch's own write is not a second change: {report:?}"
    );

    let (_, page) = app.page(&viewer, "/opportunities?q=litware").await;
    assert!(page.contains("data-testid=\"referral-link\""), "{page}");
    let (_, story) = app
        .page(&viewer, &format!("/opportunities/{OPPORTUNITY_LITWARE}"))
        .await;
    for action in ["sync_switched_on", "referral_created"] {
        assert!(
            story.contains(&format!("data-action=\"{action}\"")),
            "{action}"
        );
    }
    assert!(
        story.contains("<code>/details/dealValue</code>"),
        "the field diff"
    );

    let (status, body) = app
        .call(&admin, "sync_now", &[("crm_id", OPPORTUNITY_LITWARE)])
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let (_, bad) = app
        .call(&admin, "sync_now", &[("crm_id", "not-an-opportunity")])
        .await;
    assert!(bad.contains("There is no opportunity"), "{bad}");
}

#[tokio::test]
async fn the_mapping_is_edited_in_the_dashboard_and_applied_on_the_next_run() {
    let mut app = ready().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;
    let (_, page) = app.page(&viewer, "/mapping").await;
    assert!(page.contains("Propose = Propose"), "the defaults");
    let form = |stages: &'static str| {
        vec![
            ("stages", stages),
            (
                "statuses",
                "In Progress = Active/Accepted\nWon = Closed/Won\nCanceled = Closed/Lost",
            ),
            ("help", "Architecture guidance = ProofOfConceptOrDemo"),
            ("currencies", ""),
            ("solutions", "SOL-DATA-PLAT = SOL-12345-ABC"),
        ]
    };
    let (status, _) = app
        .call(&viewer, "save_mapping", &form("Propose = Close"))
        .await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    let (status, body) = app
        .call(
            &admin,
            "save_mapping",
            &form("Propose = Won\nQualify Qualify"),
        )
        .await;
    assert_ne!(status, reqwest::StatusCode::OK);
    assert!(
        body.contains("Nothing was saved") && body.contains("line 1") && body.contains("line 2"),
        "{body}"
    );
    let (status, body) = app
        .call(&admin, "save_mapping", &form("Propose = Close"))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");

    let id = share_litware(&mut app).await;
    let referral = app.world.partner_center().referral(&id).unwrap();
    assert_eq!(referral["salesStage"], "Close", "Litware is at Propose");
    assert_eq!(
        referral["inviteContext"]["assistanceRequestCode"],
        "ProofOfConceptOrDemo"
    );
    assert_eq!(
        referral["details"]["requirements"]["solutions"][0]["id"],
        "SOL-12345-ABC"
    );
}

/// A shared opportunity closed in the CRM closes its referral with the matching status.
async fn closing_closes_the_referral(state: i64, status_reason: i64, substatus: &str) {
    let mut app = ready().await;
    let id = share_litware(&mut app).await;
    let _echo = app.next_run().await;
    app.engine.poll_changes().await.unwrap();
    crm_edit(
        &app,
        "opportunities",
        OPPORTUNITY_LITWARE,
        json!({ (col::STATE): state, (col::STATUS): status_reason }),
    );
    let run = poll_and_run(&mut app).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let referral = app.world.partner_center().referral(&id).unwrap();
    assert_eq!(
        (referral["status"].as_str(), referral["substatus"].as_str()),
        (Some("Closed"), Some(substatus))
    );
    audit_event(&app, OPPORTUNITY_LITWARE, "referral_closed").await;
}

#[tokio::test]
async fn closing_the_opportunity_as_won_closes_the_referral() {
    closing_closes_the_referral(1, 3, "Won").await;
}

#[tokio::test]
async fn closing_as_lost_closes_the_referral_as_lost() {
    // Out-Sold, a Lost status reason.
    closing_closes_the_referral(2, 5, "Lost").await;
}

#[tokio::test]
async fn a_referral_that_no_longer_exists_fails_the_run_with_the_fix() {
    let mut app = ready().await;
    crm_edit(
        &app,
        "accounts",
        ACCOUNT_LITWARE,
        json!({ "address1_country": "US" }),
    );
    app.engine.poll_changes().await.unwrap();
    crm_edit(
        &app,
        "opportunities",
        OPPORTUNITY_LITWARE,
        json!({ (col::REFERRAL_ID): "00000000-0000-0000-0000-00000000dead", (col::SYNC): true }),
    );
    let run = poll_and_run(&mut app).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.outcome.contains("no longer exists in Partner Center")
            && run
                .outcome
                .contains("Clear the opportunity's Referral Identifier"),
        "{}",
        run.outcome
    );
}

#[tokio::test]
async fn a_referral_closed_by_microsoft_takes_no_more_updates() {
    let mut app = ready().await;
    let id = share_litware(&mut app).await;
    let _echo = app.next_run().await;
    app.engine.poll_changes().await.unwrap();
    // Microsoft declines the deal; "Partner Center to Dynamics 365" closes the opportunity as lost.
    app.seller_updates(
        &id,
        json!([
            { "op": "replace", "path": "/status", "value": "Closed" },
            { "op": "replace", "path": "/substatus", "value": "Declined" }
        ]),
    )
    .await;
    let theirs = app.next_run().await;
    assert_eq!(theirs.status, RunStatus::Succeeded, "{}", theirs.outcome);
    let opportunity = app
        .world
        .dataverse()
        .row("opportunities", OPPORTUNITY_LITWARE)
        .unwrap();
    assert_eq!(opportunity[col::STATE], 2, "closed as lost in the CRM");

    // That change comes back through the feed; the referral is final, so nothing more is sent.
    let run = poll_and_run(&mut app).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert!(
        run.outcome.contains("closed referrals are final"),
        "{}",
        run.outcome
    );
    let referral = app.world.partner_center().referral(&id).unwrap();
    assert_eq!(
        referral["substatus"], "Declined",
        "Microsoft's decision stands"
    );
}

#[tokio::test]
async fn an_expired_delta_link_reads_everything_again_and_misses_nothing() {
    let mut app = ready().await;
    make_litware_ready_and_synced(&app);
    // cosell was down for eight days: the CRM keeps changes for seven.
    app.control_ok("/clock/advance", json!({ "seconds": 8 * 24 * 3600 }))
        .await;
    let run = poll_and_run(&mut app).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert!(
        app.world
            .dataverse()
            .row("opportunities", OPPORTUNITY_LITWARE)
            .unwrap()[col::REFERRAL_ID]
            .is_string(),
        "the change made while the link expired was not lost"
    );
    let _echo = app.next_run().await;
    let report = app.engine.poll_changes().await.unwrap();
    assert!(
        report.queued.is_empty(),
        "back on a fresh delta link: {report:?}"
    );
}

#[tokio::test]
async fn a_sync_switch_whose_browser_went_away_mid_call_still_queues_its_run() {
    let app = ready().await;
    let admin = app.signed_in("admin").await;
    // The CRM takes a while to take the switch; the browser gives up (navigates away) before.
    app.control(
        "/faults",
        json!({ "method": "PATCH", "path_contains": "/opportunities(", "delay_ms": 1500, "times": 1 }),
    )
    .await;
    let gone = admin
        .post(app.url("/api/set_sync"))
        .header("Origin", &app.base)
        .timeout(std::time::Duration::from_millis(300))
        .form(&[("crm_id", OPPORTUNITY_LITWARE), ("on", "true")])
        .send()
        .await;
    assert!(
        gone.is_err_and(|e| e.is_timeout()),
        "the browser left first"
    );

    // The call ran to its end all the same: the switch is audited and its run queued.
    let filter = cosell::store::RunFilter {
        record_id: Some(OPPORTUNITY_LITWARE.to_string()),
        ..Default::default()
    };
    let run = app
        .run_where("the switch's run", filter, |r| {
            r.trigger == cosell::domain::runs::RunTrigger::Manual
        })
        .await;
    assert_eq!(run.flow, cosell::domain::flows::Flow::CrmToPartnerCenter);
    audit_event(&app, OPPORTUNITY_LITWARE, "sync_switched_on").await;
}
