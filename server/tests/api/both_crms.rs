//! The CRM-facing behaviours every CRM must show, written once and run against each: Dynamics 365
//! (Dataverse emulator) and Salesforce (`--crm salesforce`). What differs lives in [`Crm`] (crm.rs).

use crate::crm::*;
use crate::helpers::*;
use cosell::domain::flows::Flow;
use cosell::domain::runs::RunStatus;
use cosell_sandbox::{Api, JournalFilter};
use serde_json::json;

async fn a_sellers_referral_becomes_one_opportunity_with_its_id_written_back(crm: Crm) {
    let mut app = crm.ready().await;
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Azure migration",
        "customerProfile": { "name": "Northwind Retail", "address": { "postalCode": "98052", "country": "US" },
                             "team": [{ "firstName": "Ray", "lastName": "Tanaka", "email": "ray@northwind-retail.example" }] },
        "details": { "dealValue": 48000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let id = referral["id"].as_str().unwrap();
    let (run, echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    let made: Vec<Seen> = crm
        .opportunities(&app)
        .into_iter()
        .filter(|o| o.referral_id.as_deref() == Some(id))
        .collect();
    assert_eq!(made.len(), 1, "{crm:?}: one opportunity");
    assert_eq!(made[0].name, "Azure migration");
    let back = app.world.partner_center().referral(id).unwrap();
    assert_eq!(back["externalReferenceId"], made[0].id.as_str(), "{crm:?}");
    // The write-back's own referral-updated event is recognised as cosell's: nothing read, nothing changed.
    assert_eq!(echo.status, RunStatus::Skipped, "{crm:?}: {}", echo.outcome);
    assert_eq!(
        crm.opportunities(&app)
            .iter()
            .filter(|o| o.referral_id.as_deref() == Some(id))
            .count(),
        1
    );
    // The opportunity cosell made comes back through the CRM's change feed as cosell's own write: no
    // run for it, no call to Partner Center, no "not sent" note.
    let report = app.engine.poll_changes().await.expect("poll");
    assert!(report.queued.is_empty(), "{crm:?}: {report:?}");
    assert!(report.echoes >= 1, "{crm:?}: {report:?}");
    assert_eq!(crm.opportunity(&app, &made[0].id).note, None, "{crm:?}");
}

async fn switching_sync_on_shares_once_and_the_write_back_is_no_change(crm: Crm) {
    let mut app = crm.ready().await;
    let id = crm.ready_opportunity(&app);
    crm.seller_switches_sync_on(&app, id);
    let report = app.engine.poll_changes().await.expect("poll");
    assert_eq!(report.queued.len(), 1, "{crm:?}: {report:?}");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    assert_eq!(
        app.partner_center_calls(run.run_id).await,
        1,
        "{crm:?}: one create"
    );
    let opportunity = crm.opportunity(&app, id);
    let referral_id = opportunity.referral_id.expect("linked");
    assert!(opportunity.note.unwrap().starts_with('✔'));
    let referral = app.world.partner_center().referral(&referral_id).unwrap();
    assert_eq!(referral["externalReferenceId"], id);
    // cosell's own write-back comes back from the CRM as an echo: no run, no call.
    let again = app.engine.poll_changes().await.expect("poll");
    assert!(again.queued.is_empty(), "{crm:?}: {again:?}");
    assert_eq!(again.echoes, 1, "{crm:?}: {again:?}");
    assert_eq!(app.world.partner_center().referrals().len(), 1);
}

async fn a_not_ready_opportunity_costs_no_partner_center_call(crm: Crm) {
    let mut app = crm.ready().await;
    let id = crm.opportunity_without_solution(&app);
    crm.seller_switches_sync_on(&app, id);
    let report = app.engine.poll_changes().await.expect("poll");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Skipped, "{crm:?}: {}", run.outcome);
    assert!(run.outcome.contains("Solution"), "{crm:?}: {}", run.outcome);
    assert_eq!(app.partner_center_calls(run.run_id).await, 0);
    assert!(app.world.partner_center().referrals().is_empty());
    let note = crm.opportunity(&app, id).note.unwrap_or_default();
    assert!(
        note.starts_with("✖ Not sent to Partner Center"),
        "{crm:?}: {note}"
    );
}

async fn closing_as_won_closes_the_referral(crm: Crm) {
    let mut app = crm.ready().await;
    let id = crm.ready_opportunity(&app);
    crm.seller_switches_sync_on(&app, id);
    let report = app.engine.poll_changes().await.expect("poll");
    let shared = app.run_finished(report.queued[0]).await;
    assert_eq!(
        shared.status,
        RunStatus::Succeeded,
        "{crm:?}: {}",
        shared.outcome
    );
    // Partner Center announces the new referral; that run changes nothing.
    let _announced = app.next_run().await;
    app.engine
        .poll_changes()
        .await
        .expect("the write-back's echo");
    let referral_id = crm.opportunity(&app, id).referral_id.expect("linked");

    crm.seller_closes_as_won(&app, id);
    let report = app.engine.poll_changes().await.expect("poll");
    assert_eq!(report.queued.len(), 1, "{crm:?}: {report:?}");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    let referral = app.world.partner_center().referral(&referral_id).unwrap();
    assert_eq!(
        (referral["status"].as_str(), referral["substatus"].as_str()),
        (Some("Closed"), Some("Won")),
        "{crm:?}"
    );
}

async fn a_write_back_failing_after_the_create_still_makes_one_referral(crm: Crm) {
    let mut app = crm.ready().await;
    let id = crm.ready_opportunity(&app);
    // Partner Center's announcement of the new referral would otherwise write its id on the
    // opportunity before the retry (hiding the duplicate): no webhook work meanwhile.
    app.engine
        .set_flow(
            cosell::domain::flows::Flow::PartnerCenterToCrm,
            false,
            "test",
        )
        .await
        .unwrap();
    crm.write_back_fails_once(&app, 503).await;
    crm.seller_switches_sync_on(&app, id);
    let report = app.engine.poll_changes().await.expect("poll");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    let stored = app.store.run(run.run_id).await.unwrap().unwrap();
    assert_eq!(
        stored.attempts, 2,
        "{crm:?}: the first attempt failed after its create"
    );
    // The second attempt sent the create again with the same MS-RequestId: the same referral.
    let referrals = app.world.partner_center().referrals();
    assert_eq!(referrals.len(), 1, "{crm:?}: one referral, not two");
    let linked = crm.opportunity(&app, id).referral_id.expect("written back");
    assert_eq!(referrals[0]["id"], linked.as_str());
    assert_eq!(referrals[0]["externalReferenceId"], id);
}

async fn a_resubmitted_run_finds_the_referral_its_failed_run_made(crm: Crm) {
    let mut app = crm.ready().await;
    let id = crm.ready_opportunity(&app);
    app.engine
        .set_flow(
            cosell::domain::flows::Flow::PartnerCenterToCrm,
            false,
            "test",
        )
        .await
        .unwrap();
    // The CRM refuses the write-back for good: the run fails after its create.
    crm.write_back_fails_once(&app, 400).await;
    crm.seller_switches_sync_on(&app, id);
    let report = app.engine.poll_changes().await.expect("poll");
    let failed = app.run_finished(report.queued[0]).await;
    assert_eq!(
        failed.status,
        RunStatus::Failed,
        "{crm:?}: {}",
        failed.outcome
    );
    assert_eq!(app.world.partner_center().referrals().len(), 1);
    assert_eq!(crm.opportunity(&app, id).referral_id, None);

    // The admin resubmits it: a new run, which finds the referral rather than making a second one.
    let again = app.engine.resubmit(failed.run_id, "admin").await.unwrap();
    let run = app.run_finished(again).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    let referrals = app.world.partner_center().referrals();
    assert_eq!(referrals.len(), 1, "{crm:?}: one referral, not two");
    assert_eq!(
        crm.opportunity(&app, id).referral_id.as_deref(),
        referrals[0]["id"].as_str()
    );
}

/// The solution ids the referral lists.
fn referral_solutions(app: &TestApp, referral_id: &str) -> Vec<String> {
    let referral = app.world.partner_center().referral(referral_id).unwrap();
    referral["details"]["requirements"]["solutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

async fn a_solutions_change_alone_is_one_patch_through_the_solutions_flow(crm: Crm) {
    let mut app = crm.ready().await;
    let (id, referral_id) = shared(crm, &mut app).await;
    let before = app.world.journal().last_seq();
    crm.seller_edits(&app, id, Some("SOL-AZ-MIG; SOL-DATA-PLAT"), None);
    let (flow, run) = poll_one(crm, &mut app).await;
    assert_eq!(flow, Flow::SolutionsToPartnerCenter, "{crm:?}");
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    assert_eq!(
        referral_solutions(&app, &referral_id),
        ["SOL-AZ-MIG", "SOL-DATA-PLAT"],
        "{crm:?}"
    );
    assert_eq!(app.partner_center_calls(run.run_id).await, 1, "{crm:?}");
    let patches = app.world.journal().entries(
        &JournalFilter::default()
            .api(Api::PartnerCenter)
            .method("PATCH")
            .since(before),
    );
    assert_eq!(patches.len(), 1, "{crm:?}: {patches:?}");
    assert!(patches[0].path.ends_with(&referral_id) && patches[0].if_match.is_some());
    // Every call the run made: the opportunity read, the PATCH, the note on the opportunity.
    let mut calls = Vec::new();
    let mut runs = vec![run.run_id];
    runs.extend(
        app.store
            .related_runs(run.run_id)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id),
    );
    for r in runs {
        for step in app.store.run_steps(r).await.unwrap() {
            if step.api_calls > 0 {
                calls.push((step.name, step.api_calls));
            }
        }
    }
    assert_eq!(
        calls,
        [
            ("Find the opportunity by CRM id".to_string(), 1),
            ("Update the referral in Partner Center".to_string(), 1),
            ("Write the result on the opportunity".to_string(), 1),
        ],
        "{crm:?}"
    );
    // The run's own audit (the echo of its PATCH may be audited on the same record meanwhile).
    let audit = app
        .store
        .list_audit(&cosell::store::AuditFilter::record(id), None, 5)
        .await
        .unwrap();
    let updated: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "referral_updated")
        .collect();
    assert_eq!(updated.len(), 1, "{crm:?}: {audit:?}");
    assert_eq!(
        updated[0].changes.as_ref().unwrap()[0]["path"],
        "/details/requirements/solutions"
    );
    // The PATCH's referral-updated event changes nothing in the CRM (Salesforce skips it: the
    // referral is the partner's own lead); the note's echo is dropped.
    let echo = app.next_run().await;
    assert_ne!(echo.status, RunStatus::Failed, "{crm:?}: {}", echo.outcome);
    let report = app.engine.poll_changes().await.expect("poll");
    assert!(report.queued.is_empty(), "{crm:?}: {report:?}");
}

async fn an_edit_of_another_field_goes_through_crm_to_partner_center_and_only_solutions_alone_do_not(
    crm: Crm,
) {
    let mut app = crm.ready().await;
    let (id, referral_id) = shared(crm, &mut app).await;
    crm.seller_edits(&app, id, None, Some(310000.0));
    let (flow, run) = poll_one(crm, &mut app).await;
    assert_eq!(flow, Flow::CrmToPartnerCenter, "{crm:?}");
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    let referral = app.world.partner_center().referral(&referral_id).unwrap();
    assert_eq!(referral["details"]["dealValue"], 310000.0, "{crm:?}");
    let _echo = app.next_run().await;
    app.engine.poll_changes().await.expect("the note's echo");

    // The solutions and the deal value in one edit: the whole opportunity, both sent.
    crm.seller_edits(&app, id, Some("SOL-AZ-MIG"), Some(320000.0));
    let (flow, run) = poll_one(crm, &mut app).await;
    assert_eq!(flow, Flow::CrmToPartnerCenter, "{crm:?}");
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    let referral = app.world.partner_center().referral(&referral_id).unwrap();
    assert_eq!(referral["details"]["dealValue"], 320000.0, "{crm:?}");
    assert_eq!(
        referral_solutions(&app, &referral_id),
        ["SOL-AZ-MIG"],
        "{crm:?}"
    );
    let _echo = app.next_run().await;
    app.engine.poll_changes().await.expect("the note's echo");

    // And the solutions alone, once more: the solutions flow.
    crm.seller_edits(&app, id, Some("SOL-SEC"), None);
    let (flow, run) = poll_one(crm, &mut app).await;
    assert_eq!(flow, Flow::SolutionsToPartnerCenter, "{crm:?}");
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    assert_eq!(
        referral_solutions(&app, &referral_id),
        ["SOL-SEC"],
        "{crm:?}"
    );
}

async fn a_solutions_change_while_its_flow_is_off_waits_and_is_resubmitted(crm: Crm) {
    let mut app = crm.ready().await;
    let (id, referral_id) = shared(crm, &mut app).await;
    let sent = referral_solutions(&app, &referral_id);
    // Nothing calls it: it is switched off alone.
    app.engine
        .set_flow(Flow::SolutionsToPartnerCenter, false, "admin")
        .await
        .unwrap();
    crm.seller_edits(&app, id, Some("SOL-AZ-MIG; SOL-SEC"), None);
    let (flow, skipped) = poll_one(crm, &mut app).await;
    assert_eq!(flow, Flow::SolutionsToPartnerCenter, "{crm:?}");
    assert_eq!(skipped.status, RunStatus::Skipped, "{crm:?}");
    assert!(
        skipped
            .outcome
            .contains("Microsoft Solutions to Partner Center” is off")
            && skipped.outcome.contains("resubmit"),
        "{crm:?}: {}",
        skipped.outcome
    );
    assert_eq!(
        referral_solutions(&app, &referral_id),
        sent,
        "{crm:?}: unchanged"
    );
    let audit = app
        .store
        .list_audit(&cosell::store::AuditFilter::record(id), None, 5)
        .await
        .unwrap();
    assert_eq!(audit[0].action, "opportunity_skipped_flow_off", "{crm:?}");

    app.engine
        .set_flow(Flow::SolutionsToPartnerCenter, true, "admin")
        .await
        .unwrap();
    let again = app.engine.resubmit(skipped.run_id, "admin").await.unwrap();
    let run = app.run_finished(again).await;
    assert_eq!(run.flow, Flow::SolutionsToPartnerCenter, "{crm:?}");
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    assert_eq!(
        referral_solutions(&app, &referral_id),
        ["SOL-AZ-MIG", "SOL-SEC"],
        "{crm:?}"
    );
    assert_eq!(app.partner_center_calls(run.run_id).await, 1, "{crm:?}");
}

/// Each body once per CRM.
macro_rules! for_both_crms {
    ($($body:ident),+ $(,)?) => {
        mod dynamics365 { $(#[tokio::test] async fn $body() { super::$body(super::Crm::Dynamics365).await })+ }
        mod salesforce { $(#[tokio::test] async fn $body() { super::$body(super::Crm::Salesforce).await })+ }
    };
}

for_both_crms!(
    a_sellers_referral_becomes_one_opportunity_with_its_id_written_back,
    switching_sync_on_shares_once_and_the_write_back_is_no_change,
    a_not_ready_opportunity_costs_no_partner_center_call,
    closing_as_won_closes_the_referral,
    a_write_back_failing_after_the_create_still_makes_one_referral,
    a_resubmitted_run_finds_the_referral_its_failed_run_made,
    a_solutions_change_alone_is_one_patch_through_the_solutions_flow,
    an_edit_of_another_field_goes_through_crm_to_partner_center_and_only_solutions_alone_do_not,
    a_solutions_change_while_its_flow_is_off_waits_and_is_resubmitted,
);
