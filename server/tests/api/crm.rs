//! The CRMs as tests act on them: what differs between Dynamics 365 (Dataverse emulator) and
//! Salesforce (`--crm salesforce`) — how a seller edits a record, what the fields are called, which demo
//! record is ready — so that one test body runs against each (both_crms.rs, fault_matrix.rs).

use crate::helpers::*;
use cosell::domain::flows::Flow;
use cosell::domain::runs::RunStatus;
use cosell_sandbox::dataverse::columns as col;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
pub enum Crm {
    Dynamics365,
    Salesforce,
}

/// A CRM opportunity as these tests read it.
pub struct Seen {
    pub id: String,
    pub name: String,
    pub referral_id: Option<String>,
    pub note: Option<String>,
}

impl Crm {
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Crm::Dynamics365 => &[],
            Crm::Salesforce => &["--crm", "salesforce"],
        }
    }

    /// Connected to both systems, every flow on, webhooks registered, the change feed read once.
    pub async fn ready(self) -> TestApp {
        let app = TestApp::spawn_ready_with(self.flags()).await;
        // The engine's own timer reads at start-up too; under load its first read may come after the
        // connections, and then this one is not the initial read. Either way, nothing is queued.
        let first = app.engine.poll_changes().await.expect("first poll");
        assert!(first.queued.is_empty(), "{first:?}");
        app
    }

    /// A seeded opportunity that passes every rule once a seller switches sync on.
    pub fn ready_opportunity(self, app: &TestApp) -> &'static str {
        match self {
            // Litware's account holds a free-text country: the seller fixes it first.
            Crm::Dynamics365 => with_country_code(
                app,
                cosell_sandbox::dataverse::ACCOUNT_LITWARE,
                cosell_sandbox::dataverse::OPPORTUNITY_LITWARE,
            ),
            Crm::Salesforce => cosell_sandbox::salesforce::OPPORTUNITY_READY,
        }
    }

    /// A seeded opportunity without a solution (and ready otherwise).
    pub fn opportunity_without_solution(self, app: &TestApp) -> &'static str {
        match self {
            Crm::Dynamics365 => with_country_code(
                app,
                cosell_sandbox::dataverse::ACCOUNT_ADATUM,
                cosell_sandbox::dataverse::OPPORTUNITY_ADATUM,
            ),
            Crm::Salesforce => cosell_sandbox::salesforce::OPPORTUNITY_NO_SOLUTION,
        }
    }

    /// The next write of cosell's result on an opportunity fails once with a 503 (the CRM is
    /// briefly down): the write right after the referral is created.
    pub async fn write_back_fails_once(self, app: &TestApp, status: u16) {
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
    pub fn seller_closes_as_won(self, app: &TestApp, id: &str) {
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
    pub fn seller_switches_sync_on(self, app: &TestApp, id: &str) {
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

    /// A seller edits fields of the opportunity in the CRM: its Microsoft solutions (as the co-sell
    /// field lists them) and/or its deal value.
    pub fn seller_edits(
        self,
        app: &TestApp,
        id: &str,
        solutions: Option<&str>,
        value: Option<f64>,
    ) {
        match self {
            Crm::Dynamics365 => {
                let mut edit = json!({});
                if let Some(s) = solutions {
                    edit[col::SOLUTIONS] = json!(s);
                }
                if let Some(v) = value {
                    edit["estimatedvalue"] = json!(v);
                }
                app.world
                    .dataverse()
                    .update("opportunities", id, edit)
                    .unwrap()
            }
            Crm::Salesforce => {
                let mut edit = json!({});
                if let Some(s) = solutions {
                    edit["Microsoft_Solutions__c"] = json!(s);
                }
                if let Some(v) = value {
                    edit["Amount"] = json!(v);
                }
                app.world
                    .salesforce()
                    .update("Opportunity", id, edit)
                    .unwrap()
            }
        }
    }

    pub fn opportunities(self, app: &TestApp) -> Vec<Seen> {
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

    pub fn opportunity(self, app: &TestApp, id: &str) -> Seen {
        self.opportunities(app)
            .into_iter()
            .find(|o| o.id == id)
            .expect("the opportunity exists")
    }
}

/// Shares the ready opportunity and lets the round trip settle (Partner Center's announcement of the
/// new referral, the echo of the write-back); the opportunity and its referral.
pub async fn shared(crm: Crm, app: &mut TestApp) -> (&'static str, String) {
    let id = crm.ready_opportunity(app);
    crm.seller_switches_sync_on(app, id);
    let report = app.engine.poll_changes().await.expect("poll");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{crm:?}: {}", run.outcome);
    let _announced = app.next_run().await;
    let echo = app
        .engine
        .poll_changes()
        .await
        .expect("the write-back's echo");
    assert!(echo.queued.is_empty(), "{crm:?}: {echo:?}");
    let referral_id = crm.opportunity(app, id).referral_id.expect("linked");
    (id, referral_id)
}

/// A poll that queues one run; its flow and how it ended.
pub async fn poll_one(crm: Crm, app: &mut TestApp) -> (Flow, cosell::engine::RunFinished) {
    let report = app.engine.poll_changes().await.expect("poll");
    assert_eq!(report.queued.len(), 1, "{crm:?}: {report:?}");
    let run = app.run_finished(report.queued[0]).await;
    (run.flow, run)
}

/// Gives a seeded Dataverse account an ISO country code; the opportunity of that account.
fn with_country_code(app: &TestApp, account: &str, opportunity: &'static str) -> &'static str {
    app.world
        .dataverse()
        .update("accounts", account, json!({ "address1_country": "US" }))
        .unwrap();
    opportunity
}
