//! The fault matrix: for every step of both directions and every kind of fault, one run with that fault
//! converges to the end state of a run without it — one opportunity, one referral, the ids written both
//! ways, the audit saying what was created — and the journal of the sandbox shows the fault was met.
//!
//! Dynamics 365 is the CRM here (its steps are separate calls; Salesforce's are fewer, in composite
//! requests). A fault is applied to the first matching call after it is set, once. The kinds:
//! - `ServerError`: 503, the call never reached the API;
//! - `Throttled`: 429 with `Retry-After`;
//! - `Precondition`: 412 (only for the conditional writes, the PATCHes);
//! - `Reset`: the connection dropped without an answer, the call never reached the API;
//! - `Timeout`: the API did the work, its answer came after cosell's time limit (the case where a retry
//!   must not do the work twice);
//! - `Malformed`: the API did the work and its JSON answer was cut short.

use crate::crm::{Crm, poll_one, shared};
use crate::helpers::*;
use cosell::domain::flows::Flow;
use cosell::domain::runs::{AuditAction, RunInput, RunStatus};
use cosell_sandbox::JournalFilter;
use cosell_sandbox::dataverse::columns as col;
use serde_json::{Value, json};

/// The CRM of the matrix.
const DYNAMICS: Crm = Crm::Dynamics365;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    ServerError,
    Throttled,
    Precondition,
    Reset,
    Timeout,
    Malformed,
}

const FAULTS: [Fault; 6] = [
    Fault::ServerError,
    Fault::Throttled,
    Fault::Precondition,
    Fault::Reset,
    Fault::Timeout,
    Fault::Malformed,
];

impl Fault {
    fn rule(self, step: &Step) -> Value {
        let mut rule = match self {
            Fault::ServerError => json!({ "status": 503 }),
            Fault::Throttled => json!({ "status": 429, "retry_after": 1 }),
            Fault::Precondition => json!({ "status": 412 }),
            Fault::Reset => json!({ "kind": "reset" }),
            Fault::Timeout => json!({ "kind": "answer_lost", "delay_ms": 2500 }),
            Fault::Malformed => json!({ "kind": "malformed_json" }),
        };
        rule["method"] = json!(step.method);
        rule["path_contains"] = json!(step.path);
        rule["times"] = json!(1);
        rule
    }

    /// Only a time-out needs a short time limit; every other call keeps the default.
    fn flags(self) -> &'static [&'static str] {
        match self {
            Fault::Timeout => &["--call-timeout-ms", "1500"],
            _ => &[],
        }
    }

    fn applies_to(self, step: &Step) -> bool {
        self != Fault::Precondition || step.method == "PATCH"
    }
}

#[derive(Clone, Copy, Debug)]
enum Scenario {
    /// A Microsoft seller shares a new referral: Partner Center → CRM creates the opportunity, and with
    /// it (one deep insert in Dataverse) the new customer's account and contact.
    ReferralShared,
    /// The same, for a customer whose account the CRM already has: only the contact is new, and it is
    /// created on its own before the opportunity.
    ReferralSharedKnownAccount,
    /// The seller changes the deal value of a synced referral: the opportunity is updated.
    ReferralUpdated,
    /// A CRM user switches "Sync with Partner Center" on: CRM → Partner Center creates the referral.
    SyncSwitchedOn,
    /// A CRM user edits a synced opportunity's value: the referral is patched.
    OpportunityEdited,
}

#[derive(Debug)]
struct Step {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    scenario: Scenario,
}

const GET_REFERRAL: Step = Step {
    name: "get referral",
    method: "GET",
    path: "/v1.0/engagements/referrals/",
    scenario: Scenario::ReferralShared,
};
const ACCOUNT_MATCH: Step = Step {
    name: "account match",
    method: "GET",
    path: "/api/data/v9.2/accounts",
    scenario: Scenario::ReferralShared,
};
const CONTACT_CREATE: Step = Step {
    name: "contact create",
    method: "POST",
    path: "/api/data/v9.2/contacts",
    scenario: Scenario::ReferralSharedKnownAccount,
};
const OPPORTUNITY_CREATE: Step = Step {
    name: "opportunity create",
    method: "POST",
    path: "/api/data/v9.2/opportunities",
    scenario: Scenario::ReferralShared,
};
const WRITE_BACK: Step = Step {
    name: "write-back of the CRM id",
    method: "PATCH",
    path: "/v1.0/engagements/referrals/",
    scenario: Scenario::ReferralShared,
};
const OPPORTUNITY_UPDATE: Step = Step {
    name: "opportunity update",
    method: "PATCH",
    path: "/api/data/v9.2/opportunities(",
    scenario: Scenario::ReferralUpdated,
};
const READ_OPPORTUNITY: Step = Step {
    name: "read opportunity",
    method: "GET",
    path: "/api/data/v9.2/opportunities(",
    scenario: Scenario::SyncSwitchedOn,
};
const REFERRAL_CREATE: Step = Step {
    name: "referral create",
    method: "POST",
    path: "/v1.0/engagements/referrals",
    scenario: Scenario::SyncSwitchedOn,
};
const CRM_NOTE: Step = Step {
    name: "CRM note and referral id",
    method: "PATCH",
    path: "/api/data/v9.2/opportunities(",
    scenario: Scenario::SyncSwitchedOn,
};
const REFERRAL_PATCH: Step = Step {
    name: "referral patch",
    method: "PATCH",
    path: "/v1.0/engagements/referrals/",
    scenario: Scenario::OpportunityEdited,
};

/// Every fault that applies to `step`, one fresh server each.
async fn every_fault(step: Step) {
    for fault in FAULTS.into_iter().filter(|f| f.applies_to(&step)) {
        converges(&step, fault).await;
    }
}

async fn converges(step: &Step, fault: Fault) {
    let case = format!("{} × {fault:?}", step.name);
    let mut app = TestApp::spawn_ready_with(fault.flags()).await;
    app.engine.poll_changes().await.expect("first poll");
    match step.scenario {
        Scenario::ReferralShared | Scenario::ReferralSharedKnownAccount => {
            let referral = new_referral(&case);
            if matches!(step.scenario, Scenario::ReferralSharedKnownAccount) {
                let customer = &referral["customerProfile"];
                app.world.dataverse().insert(
                    "accounts",
                    json!({ "name": customer["name"], "address1_postalcode": "98052" }),
                );
            }
            arm(&app, step, fault).await;
            let referral = app.world.partner_center().seller_creates(referral);
            let run = referral_run(&mut app, &referral, "referral-created").await;
            assert_eq!(run.status, RunStatus::Succeeded, "{case}: {}", run.outcome);
            one_opportunity_linked(&app, &referral, &case).await;
        }
        Scenario::ReferralUpdated => {
            let referral = share(&app, &case);
            let first = referral_run(&mut app, &referral, "referral-created").await;
            assert_eq!(
                first.status,
                RunStatus::Succeeded,
                "{case}: {}",
                first.outcome
            );
            // The write-back's own announcement, before the seller's change.
            let _echo = referral_run(&mut app, &referral, "referral-updated").await;
            let id = id_of(&referral);
            arm(&app, step, fault).await;
            app.seller_updates(
                &id,
                json!([{ "op": "replace", "path": "/details/dealValue", "value": 50000 }]),
            )
            .await;
            let run = referral_run(&mut app, &referral, "referral-updated").await;
            assert_eq!(run.status, RunStatus::Succeeded, "{case}: {}", run.outcome);
            let opportunity = one_opportunity_linked(&app, &referral, &case).await;
            assert_eq!(opportunity["estimatedvalue"], 50000.0, "{case}");
        }
        Scenario::SyncSwitchedOn => {
            let opportunity = DYNAMICS.ready_opportunity(&app);
            arm(&app, step, fault).await;
            DYNAMICS.seller_switches_sync_on(&app, opportunity);
            let (_, run) = poll_one(DYNAMICS, &mut app).await;
            assert_eq!(run.status, RunStatus::Succeeded, "{case}: {}", run.outcome);
            one_referral_linked(&app, opportunity, &case).await;
        }
        Scenario::OpportunityEdited => {
            let (opportunity, _) = shared(DYNAMICS, &mut app).await;
            arm(&app, step, fault).await;
            DYNAMICS.seller_edits(&app, opportunity, None, Some(77000.0));
            let (_, run) = poll_one(DYNAMICS, &mut app).await;
            assert_eq!(run.status, RunStatus::Succeeded, "{case}: {}", run.outcome);
            let referral = one_referral_linked(&app, opportunity, &case).await;
            assert_eq!(referral["details"]["dealValue"], 77000.0, "{case}");
        }
    }
    met(&app, step, fault, &case).await;
}

async fn arm(app: &TestApp, step: &Step, fault: Fault) {
    app.world.journal().clear();
    app.control("/faults", fault.rule(step)).await;
}

/// The fault was met: the journal shows it on the step's call, and the rule is used up. A lost answer
/// is journaled when the emulator gives up on it, after the run may have finished: waited for.
async fn met(app: &TestApp, step: &Step, fault: Fault, case: &str) {
    let faulted = app
        .world
        .journal()
        .wait_for(
            &JournalFilter::default()
                .method(step.method)
                .path_contains(step.path)
                .faulted(true),
            std::time::Duration::from_secs(10),
        )
        .await;
    assert_eq!(faulted.len(), 1, "{case}: the fault was applied once");
    if fault == Fault::Precondition {
        assert!(
            faulted[0].if_match.is_some(),
            "{case}: a 412 only answers a conditional write"
        );
    }
    assert!(app.world.faults().list().is_empty(), "{case}: rule used up");
}

fn id_of(referral: &Value) -> String {
    referral["id"].as_str().unwrap().to_string()
}

/// A seller shares a referral with a new customer and a contact, named after the case.
fn share(app: &TestApp, case: &str) -> Value {
    app.world
        .partner_center()
        .seller_creates(new_referral(case))
}

/// A referral with a new customer and a contact, named after the case.
fn new_referral(case: &str) -> Value {
    let n = uuid::Uuid::new_v4().simple().to_string();
    json!({
        "name": format!("Fault matrix: {case}"),
        "customerProfile": {
            "name": format!("Fabrikam {}", &n[..8]), "address": { "postalCode": "98052", "country": "US" },
            "team": [{ "firstName": "Ray", "lastName": "Tanaka", "email": format!("ray.{}@fabrikam.example", &n[..8]) }]
        },
        "details": { "dealValue": 48000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    })
}

/// The run of "Partner Center to CRM" for `event` about `referral` (first of its kind), once finished.
async fn referral_run(
    app: &mut TestApp,
    referral: &Value,
    event: &str,
) -> cosell::engine::RunFinished {
    let id = id_of(referral);
    loop {
        let run = app.next_run().await;
        let stored = app.store.run(run.run_id).await.unwrap().unwrap();
        let about = matches!(&stored.input, RunInput::Event { event: e, referral_id, .. } if e == event && *referral_id == id);
        if stored.flow == Flow::PartnerCenterToCrm && about {
            return run;
        }
    }
}

/// Exactly one opportunity carries the referral's id, the referral carries its id, one account and one
/// contact were made for the customer, and the audit says the opportunity was created, once.
async fn one_opportunity_linked(app: &TestApp, referral: &Value, case: &str) -> Value {
    let id = id_of(referral);
    let opportunities: Vec<Value> = app
        .world
        .dataverse()
        .rows("opportunities")
        .into_iter()
        .filter(|o| o[col::REFERRAL_ID] == id.as_str())
        .collect();
    assert_eq!(opportunities.len(), 1, "{case}: one opportunity");
    let opportunity = opportunities.into_iter().next().unwrap();
    let opportunity_id = opportunity["opportunityid"].as_str().unwrap();
    let back = app.world.partner_center().referral(&id).unwrap();
    assert_eq!(
        back["externalReferenceId"], opportunity_id,
        "{case}: id written back"
    );
    let customer = &referral["customerProfile"];
    let accounts = app.world.dataverse().rows("accounts");
    assert_eq!(
        accounts
            .iter()
            .filter(|a| a["name"] == customer["name"])
            .count(),
        1,
        "{case}: one account"
    );
    let email = &customer["team"][0]["email"];
    let contacts = app.world.dataverse().rows("contacts");
    assert_eq!(
        contacts
            .iter()
            .filter(|c| c["emailaddress1"] == *email)
            .count(),
        1,
        "{case}: one contact"
    );
    assert_eq!(
        app.store
            .count_audit(opportunity_id, AuditAction::OpportunityCreated)
            .await
            .unwrap(),
        1,
        "{case}: the audit says the opportunity was created, once"
    );
    opportunity
}

/// Exactly one referral names the opportunity, the opportunity names it, and the audit says it was
/// created, once.
async fn one_referral_linked(app: &TestApp, opportunity: &str, case: &str) -> Value {
    let referrals: Vec<Value> = app
        .world
        .partner_center()
        .referrals()
        .into_iter()
        .filter(|r| r["externalReferenceId"] == opportunity)
        .collect();
    assert_eq!(referrals.len(), 1, "{case}: one referral");
    let referral = referrals.into_iter().next().unwrap();
    let row = app
        .world
        .dataverse()
        .rows("opportunities")
        .into_iter()
        .find(|o| o["opportunityid"] == opportunity)
        .unwrap();
    assert_eq!(
        row[col::REFERRAL_ID],
        referral["id"],
        "{case}: id written back"
    );
    assert_eq!(
        app.store
            .count_audit(opportunity, AuditAction::ReferralCreated)
            .await
            .unwrap(),
        1,
        "{case}: the audit says the referral was created, once"
    );
    referral
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    // Retries come after 50 ms in tests; Partner Center asks for 2 s.
    let mut app = TestApp::spawn_ready().await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/v1.0/engagements/referrals/", "status": 429, "retry_after": 2, "times": 1 }),
    )
    .await;
    let referral = share(&app, "Retry-After");
    let run = referral_run(&mut app, &referral, "referral-created").await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let gets = app.world.journal().entries(
        &JournalFilter::default()
            .method("GET")
            .path_contains(format!("/v1.0/engagements/referrals/{}", id_of(&referral))),
    );
    assert_eq!(gets[0].status, Some(429));
    assert_eq!(gets[1].status, Some(200));
    let waited = gets[1].at - gets[0].at;
    assert!(
        waited >= time::Duration::seconds(2),
        "the next attempt came {waited} after a Retry-After of 2 s"
    );
}

macro_rules! matrix {
    ($($test:ident => $step:expr),+ $(,)?) => {
        $(#[tokio::test] async fn $test() { every_fault($step).await })+
    };
}

matrix!(
    partner_center_to_crm_get_referral => GET_REFERRAL,
    partner_center_to_crm_account_match => ACCOUNT_MATCH,
    partner_center_to_crm_contact_create => CONTACT_CREATE,
    partner_center_to_crm_opportunity_create => OPPORTUNITY_CREATE,
    partner_center_to_crm_write_back => WRITE_BACK,
    partner_center_to_crm_opportunity_update => OPPORTUNITY_UPDATE,
    crm_to_partner_center_read_opportunity => READ_OPPORTUNITY,
    crm_to_partner_center_referral_create => REFERRAL_CREATE,
    crm_to_partner_center_crm_note => CRM_NOTE,
    crm_to_partner_center_referral_patch => REFERRAL_PATCH,
);
