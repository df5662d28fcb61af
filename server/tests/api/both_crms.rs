//! The CRM-facing behaviours every CRM must show, written once and run against each: Dynamics 365
//! (Dataverse emulator) and Salesforce (`--crm salesforce`). What differs — how a seller edits a
//! record, what the fields are called, which demo record is ready — lives in [`Crm`].

use crate::helpers::*;
use cosell::domain::runs::RunStatus;
use cosell_sandbox::dataverse::columns as col;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
enum Crm {
    Dynamics365,
    Salesforce,
}

/// A CRM opportunity as these tests read it.
struct Seen {
    id: String,
    name: String,
    referral_id: Option<String>,
    note: Option<String>,
}

impl Crm {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Crm::Dynamics365 => &[],
            Crm::Salesforce => &["--crm", "salesforce"],
        }
    }

    /// Connected to both systems, every flow on, webhooks registered, the change feed read once.
    async fn ready(self) -> TestApp {
        let app = TestApp::spawn_ready_with(self.flags()).await;
        let first = app.engine.poll_changes().await.expect("first poll");
        assert!(first.initial && first.queued.is_empty(), "{first:?}");
        app
    }

    /// A seeded opportunity that passes every rule once a seller switches sync on.
    fn ready_opportunity(self, app: &TestApp) -> &'static str {
        match self {
            Crm::Dynamics365 => {
                // Litware's account holds a free-text country: the seller fixes it first.
                app.world
                    .dataverse()
                    .update(
                        "accounts",
                        cosell_sandbox::dataverse::ACCOUNT_LITWARE,
                        json!({ "address1_country": "US" }),
                    )
                    .unwrap();
                cosell_sandbox::dataverse::OPPORTUNITY_LITWARE
            }
            Crm::Salesforce => cosell_sandbox::salesforce::OPPORTUNITY_READY,
        }
    }

    /// A seeded opportunity without a solution (and ready otherwise).
    fn opportunity_without_solution(self, app: &TestApp) -> &'static str {
        match self {
            Crm::Dynamics365 => {
                app.world
                    .dataverse()
                    .update(
                        "accounts",
                        cosell_sandbox::dataverse::ACCOUNT_ADATUM,
                        json!({ "address1_country": "US" }),
                    )
                    .unwrap();
                cosell_sandbox::dataverse::OPPORTUNITY_ADATUM
            }
            Crm::Salesforce => cosell_sandbox::salesforce::OPPORTUNITY_NO_SOLUTION,
        }
    }

    /// The next write of cosell's result on an opportunity fails once with a 503 (the CRM is
    /// briefly down): the write right after the referral is created.
    async fn write_back_fails_once(self, app: &TestApp, status: u16) {
        let (method, path) = match self {
            Crm::Dynamics365 => ("PATCH", "/api/data/v9.2/opportunities("),
            // Salesforce writes and reads the version back in one composite call.
            Crm::Salesforce => ("POST", "/composite"),
        };
        app.control(
            "/faults",
            json!({ "method": method, "path_contains": path, "status": status, "times": 1 }),
        )
        .await;
    }

    /// A seller closes the opportunity as won in the CRM.
    fn seller_closes_as_won(self, app: &TestApp, id: &str) {
        match self {
            // Won (1) with its status reason Won (3), as "Close as Won" leaves it.
            Crm::Dynamics365 => app
                .world
                .dataverse()
                .update(
                    "opportunities",
                    id,
                    json!({ (col::STATE): 1, (col::STATUS): 3 }),
                )
                .unwrap(),
            Crm::Salesforce => app
                .world
                .salesforce()
                .update("Opportunity", id, json!({ "StageName": "Closed Won" }))
                .unwrap(),
        }
    }

    /// A seller switches "Sync with Partner Center" on in the CRM.
    fn seller_switches_sync_on(self, app: &TestApp, id: &str) {
        match self {
            Crm::Dynamics365 => app
                .world
                .dataverse()
                .update("opportunities", id, json!({ (col::SYNC): true }))
                .unwrap(),
            Crm::Salesforce => app
                .world
                .salesforce()
                .update(
                    "Opportunity",
                    id,
                    json!({ "Sync_with_Partner_Center__c": true }),
                )
                .unwrap(),
        }
    }

    fn opportunities(self, app: &TestApp) -> Vec<Seen> {
        let text = |v: &Value, k: &str| v[k].as_str().map(str::to_string);
        match self {
            Crm::Dynamics365 => app
                .world
                .dataverse()
                .rows("opportunities")
                .iter()
                .map(|o| Seen {
                    id: text(o, "opportunityid").unwrap(),
                    name: text(o, "name").unwrap_or_default(),
                    referral_id: text(o, col::REFERRAL_ID),
                    note: text(o, col::AUDIT),
                })
                .collect(),
            Crm::Salesforce => app
                .world
                .salesforce()
                .rows("Opportunity")
                .iter()
                .map(|o| Seen {
                    id: text(o, "Id").unwrap(),
                    name: text(o, "Name").unwrap_or_default(),
                    referral_id: text(o, "Referral_Identifier__c"),
                    note: text(o, "Audit__c"),
                })
                .collect(),
        }
    }

    fn opportunity(self, app: &TestApp, id: &str) -> Seen {
        self.opportunities(app)
            .into_iter()
            .find(|o| o.id == id)
            .expect("the opportunity exists")
    }
}

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
    // The write-back's own referral-updated event changes nothing.
    assert_eq!(
        echo.status,
        RunStatus::Succeeded,
        "{crm:?}: {}",
        echo.outcome
    );
    assert_eq!(
        crm.opportunities(&app)
            .iter()
            .filter(|o| o.referral_id.as_deref() == Some(id))
            .count(),
        1
    );
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
);
