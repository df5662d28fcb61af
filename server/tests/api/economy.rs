//! API economy, counted where Microsoft counts it: the emulators' journals. A referral arriving costs
//! two Partner Center calls (read it, write the CRM id back) and a few Dataverse calls; a change made in
//! the CRM costs one Partner Center call; the announcements of cosell's own writes cost none.

use crate::helpers::*;
use cosell::domain::runs::RunStatus;
use cosell::store::AuditFilter;
use cosell_sandbox::dataverse::columns as col;
use cosell_sandbox::dataverse::{ACCOUNT_LITWARE, OPPORTUNITY_LITWARE};
use cosell_sandbox::journal::{Api, JournalEntry, JournalFilter};
use serde_json::json;

/// The calls to one API after `since`, without the change feed's reads (a poll costs what it costs
/// whatever happened) and the certificate download (cached, once per process).
fn calls(app: &TestApp, api: Api, since: u64) -> Vec<JournalEntry> {
    app.world
        .journal()
        .entries(&JournalFilter::default().api(api).since(since))
        .into_iter()
        .filter(|e| !e.path.starts_with("/cert/"))
        .filter(|e| {
            !e.prefer
                .as_deref()
                .unwrap_or_default()
                .contains("track-changes")
        })
        .filter(|e| {
            !e.query
                .as_deref()
                .unwrap_or_default()
                .contains("deltatoken")
        })
        .collect()
}

fn listed(entries: &[JournalEntry]) -> String {
    entries
        .iter()
        .map(|e| {
            format!(
                "{} {}?{}",
                e.method,
                e.path,
                e.query.as_deref().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_referral_arriving_costs_two_partner_center_calls_and_its_echo_none() {
    let mut app = TestApp::spawn_ready().await;
    // The first referral of a process also reads the CRM's currency (remembered for minutes after).
    app.world.partner_center().seller_creates(json!({
        "name": "Warm-up",
        "customerProfile": { "name": "Tailspin Toys", "address": { "postalCode": "10001", "country": "US" } },
        "details": { "dealValue": 1000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let (run, _) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);

    let since = app.world.journal().last_seq();
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Azure migration",
        "customerProfile": {
            "name": "Northwind Traders",
            "address": { "postalCode": "98052", "country": "US" },
            "team": [
                { "firstName": "Ada", "lastName": "Ng", "email": "ada@northwind.example", "phoneNumber": "1" },
                { "firstName": "Bo", "lastName": "Li", "email": "bo@northwind.example", "phoneNumber": "2" }
            ]
        },
        "details": { "dealValue": 48000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let id = referral["id"].as_str().unwrap().to_string();
    let (run, echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert_eq!(echo.status, RunStatus::Skipped, "{}", echo.outcome);
    assert!(echo.outcome.contains("cosell's own"), "{}", echo.outcome);

    let partner_center = calls(&app, Api::PartnerCenter, since);
    assert_eq!(
        partner_center
            .iter()
            .map(|e| e.method.as_str())
            .collect::<Vec<_>>(),
        ["GET", "PATCH"],
        "{}",
        listed(&partner_center)
    );
    let dataverse = calls(&app, Api::Dataverse, since);
    assert!(dataverse.len() <= 4, "{}", listed(&dataverse));

    // What it made: the account, both contacts, the opportunity, linked both ways.
    let world = app.world.clone();
    let crm = world.dataverse();
    let opportunity = crm
        .rows("opportunities")
        .into_iter()
        .find(|o| o[col::REFERRAL_ID] == id.as_str())
        .expect("an opportunity for the referral");
    let account = opportunity["_customerid_value"].as_str().unwrap();
    let contacts = crm.rows("contacts");
    for email in ["ada@northwind.example", "bo@northwind.example"] {
        let contact = contacts
            .iter()
            .find(|c| c["emailaddress1"] == email)
            .unwrap_or_else(|| panic!("a contact for {email}"));
        assert_eq!(contact["_parentcustomerid_value"], account);
    }
    assert_eq!(
        app.world.partner_center().referral(&id).unwrap()["externalReferenceId"],
        opportunity["opportunityid"]
    );
    // The echo is on the referral's timeline, said for what it is.
    let echoes = app
        .store
        .list_audit(&AuditFilter::record(&id), None, 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "echo_suppressed")
        .count();
    assert_eq!(echoes, 1);
}

#[tokio::test]
async fn a_change_in_the_crm_costs_one_partner_center_call_and_its_echo_none() {
    let mut app = TestApp::spawn_ready().await;
    app.engine.poll_changes().await.expect("first poll");
    let world = app.world.clone();
    let crm = world.dataverse();
    crm.update(
        "accounts",
        ACCOUNT_LITWARE,
        json!({ "address1_country": "US" }),
    )
    .unwrap();
    // Switched on: one create, and the referral-created announcement it causes costs nothing.
    let partner_center = crm_change(&mut app, json!({ (col::SYNC): true })).await;
    assert_eq!(
        partner_center
            .iter()
            .map(|e| e.method.as_str())
            .collect::<Vec<_>>(),
        ["POST"],
        "{}",
        listed(&partner_center)
    );

    // An edit: one PATCH, guarded by the eTag of the create, and its announcement costs nothing.
    let partner_center = crm_change(&mut app, json!({ "estimatedvalue": 150000 })).await;
    assert_eq!(
        partner_center
            .iter()
            .map(|e| (e.method.as_str(), e.if_match.is_some()))
            .collect::<Vec<_>>(),
        [("PATCH", true)],
        "{}",
        listed(&partner_center)
    );
    let id = crm.row("opportunities", OPPORTUNITY_LITWARE).unwrap()[col::REFERRAL_ID]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.world.partner_center().referral(&id).unwrap()["details"]["dealValue"],
        150000.0
    );
}

/// A CRM user changes Litware's opportunity: the change feed queues one run, which succeeds, and the
/// Partner Center announcement of its write is recognised as cosell's own. The Partner Center calls made.
async fn crm_change(app: &mut TestApp, change: serde_json::Value) -> Vec<JournalEntry> {
    app.world
        .dataverse()
        .update("opportunities", OPPORTUNITY_LITWARE, change)
        .unwrap();
    let since = app.world.journal().last_seq();
    let report = app.engine.poll_changes().await.expect("poll");
    assert_eq!(report.queued.len(), 1, "{report:?}");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let echo = app.next_run().await;
    assert_eq!(echo.status, RunStatus::Skipped, "{}", echo.outcome);
    calls(app, Api::PartnerCenter, since)
}

#[tokio::test]
async fn a_change_by_someone_else_after_cosells_write_is_read() {
    // The echo is recognised by the change's time, not by the referral: a Microsoft seller's edit after
    // cosell's write-back is read and synced.
    let mut app = TestApp::spawn_ready().await;
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Azure migration",
        "customerProfile": { "name": "Northwind Traders", "address": { "postalCode": "98052", "country": "US" } },
        "details": { "dealValue": 48000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let id = referral["id"].as_str().unwrap().to_string();
    let (run, _echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    app.seller_updates(
        &id,
        json!([{ "op": "replace", "path": "/details/dealValue", "value": 52000 }]),
    )
    .await;
    let run = app.next_run().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let opportunity = app
        .world
        .dataverse()
        .rows("opportunities")
        .into_iter()
        .find(|o| o[col::REFERRAL_ID] == id.as_str())
        .unwrap();
    assert_eq!(opportunity["estimatedvalue"], 52000.0);
}

/// Every call is counted once, where it is made: the runs' own totals (shown on the Runs page) and the
/// day's totals by flow add up to what the emulators saw.
#[tokio::test]
async fn calls_are_counted_per_run_and_per_flow_as_the_apis_saw_them() {
    let mut app = TestApp::spawn_ready().await;
    let since = app.world.journal().last_seq();
    let before = app
        .store
        .api_calls_by_flow(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    app.world.partner_center().seller_creates(json!({
        "name": "Counted",
        "customerProfile": {
            "name": "Wide World Importers",
            "address": { "postalCode": "98101", "country": "US" },
            "team": [{ "firstName": "Ada", "lastName": "Ng", "email": "ada@wideworld.example" }]
        },
        "details": { "dealValue": 5000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let (run, echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert_eq!(echo.status, RunStatus::Skipped, "{}", echo.outcome);

    let runs = app
        .store
        .list_runs(&Default::default(), None, 50)
        .await
        .unwrap();
    let partner_center: i64 = runs.iter().map(|r| r.calls.partner_center).sum();
    let crm: i64 = runs.iter().map(|r| r.calls.crm).sum();
    assert_eq!(
        partner_center,
        calls(&app, Api::PartnerCenter, since).len() as i64
    );
    assert_eq!(crm, calls(&app, Api::Dataverse, since).len() as i64);
    assert_eq!(app.partner_center_calls(run.run_id).await, 2);

    // The day's totals by flow grew by exactly what the runs made.
    let after = app
        .store
        .api_calls_by_flow(time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    let in_flows = |rows: &[cosell::store::FlowCalls], system: &str| -> i64 {
        rows.iter()
            .filter(|c| c.flow.is_some() && c.system == system)
            .map(|c| c.calls)
            .sum()
    };
    assert_eq!(
        in_flows(&after, "partner_center") - in_flows(&before, "partner_center"),
        partner_center
    );
    assert_eq!(
        in_flows(&after, "dynamics365") - in_flows(&before, "dynamics365"),
        crm
    );

    // The Runs page shows both: each run's calls, and today's by flow.
    let admin = app.signed_in("admin").await;
    let (status, page) = app.page(&admin, "/runs").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let parent = runs.iter().find(|r| r.id == run.run_id).unwrap();
    let cell = format!(
        "data-partner-center-calls=\"{}\" data-crm-calls=\"{}\"",
        parent.calls.partner_center, parent.calls.crm
    );
    assert!(page.contains(&cell), "{cell} in the page");
    let today = page
        .split_once("data-testid=\"calls-today\"")
        .and_then(|(_, rest)| rest.split_once("</details>"))
        .map(|(section, _)| section)
        .expect("today's calls by flow");
    assert!(today.contains("API calls today (UTC), by flow"), "{today}");
    assert!(today.contains("Partner Center to Dynamics 365"), "{today}");
}

/// The change feed reads opportunities, then accounts. A referral's opportunity and new account made
/// between the two reads show up as an account change first: that is cosell's own create, not a
/// seller's fix, and costs no run. A seller's fix to the new account afterwards is shared.
#[tokio::test]
async fn an_account_created_with_an_opportunity_between_the_feeds_reads_is_no_change() {
    let mut app = TestApp::spawn_ready().await;
    app.engine.poll_changes().await.expect("first poll");
    // The account feed's read waits 3 s; the opportunity feed's read before it does not.
    let since = app.world.journal().last_seq();
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/api/data/v9.2/accounts", "delay_ms": 3000, "times": 1 }),
    )
    .await;
    let engine = app.engine.clone();
    let poll = tokio::spawn(async move { engine.poll_changes().await });
    app.world
        .journal()
        .wait_for(
            &JournalFilter::default()
                .path_contains("/api/data/v9.2/opportunities")
                .since(since),
            std::time::Duration::from_secs(10),
        )
        .await;
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Between the reads",
        "customerProfile": {
            "name": "Proseware",
            "address": { "postalCode": "98004", "country": "US" },
            "team": [{ "firstName": "Ada", "lastName": "Ng", "email": "ada@proseware.example" }]
        },
        "details": { "dealValue": 9000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let (run, _) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let report = poll.await.unwrap().expect("poll");
    // The delay fell on the account feed's read, after the create: the case this test is about.
    let delayed = app.world.journal().entries(
        &JournalFilter::default()
            .path_contains("/api/data/v9.2/accounts")
            .faulted(true)
            .since(since),
    );
    assert_eq!(delayed.len(), 1);
    assert!(
        delayed[0]
            .query
            .as_deref()
            .unwrap_or_default()
            .contains("deltatoken"),
        "{delayed:?}"
    );
    assert!(report.queued.is_empty(), "{report:?}");
    // The next poll reads the opportunity: cosell's own create, an echo.
    let report = app.engine.poll_changes().await.expect("poll");
    assert!(report.queued.is_empty(), "{report:?}");
    assert_eq!(report.echoes, 1, "{report:?}");

    // A seller then fixes the new account: that is news, and it is shared.
    let id = referral["id"].as_str().unwrap();
    let world = app.world.clone();
    let opportunity = world
        .dataverse()
        .rows("opportunities")
        .into_iter()
        .find(|o| o[col::REFERRAL_ID] == id)
        .expect("the opportunity");
    let account = opportunity["_customerid_value"].as_str().unwrap();
    world
        .dataverse()
        .update("accounts", account, json!({ "address1_city": "Bellevue" }))
        .unwrap();
    let report = app.engine.poll_changes().await.expect("poll");
    assert_eq!(report.queued.len(), 1, "{report:?}");
}

/// Dataverse answers cosell's create before cosell can note the opportunity as its own, and the change
/// feed may read it in between. The run the feed queues for it is told the version the feed read: it
/// waits while cosell's run for the referral works, then settles as an echo without a call.
#[tokio::test]
async fn an_opportunity_the_feed_reads_before_cosell_noted_its_create_costs_no_call() {
    let (mut app, opportunity, queued) = feed_reads_a_create_in_flight().await;
    let shared = app.run_finished(queued).await;
    assert_eq!(shared.status, RunStatus::Skipped, "{}", shared.outcome);
    assert!(
        shared.outcome.contains("cosell's own write"),
        "{}",
        shared.outcome
    );
    let run = app.store.run(queued).await.unwrap().unwrap();
    assert_eq!(run.calls.partner_center + run.calls.crm, 0, "{run:?}");
    assert_eq!(run.attempts, 1, "waiting spends no attempt: {run:?}");
    let read = app.world.journal().entries(
        &JournalFilter::default()
            .method("GET")
            .path_contains(opportunity.as_str()),
    );
    assert!(read.is_empty(), "{}", listed(&read));
}

/// A seller's change read while that run waits is read and judged: the waiting run carries it, and no
/// longer takes what it reads for cosell's own write.
#[tokio::test]
async fn a_sellers_change_read_while_the_run_waits_is_not_taken_for_cosells() {
    let (mut app, opportunity, queued) = feed_reads_a_create_in_flight().await;
    app.world
        .dataverse()
        .update(
            "opportunities",
            &opportunity,
            json!({ "estimatedvalue": 77000 }),
        )
        .unwrap();
    let since = app.world.journal().last_seq();
    let report = app.engine.poll_changes().await.expect("poll");
    // Carried by the waiting run, or (had it started meanwhile) by a run of its own.
    let last = report.queued.last().copied().unwrap_or(queued);
    let judged = app.run_finished(last).await;
    assert!(!judged.outcome.contains("own write"), "{}", judged.outcome);
    // The opportunity has no Microsoft solution yet: read, judged, and not sent for that reason.
    assert!(
        judged.outcome.contains("Solution ID is required"),
        "{}",
        judged.outcome
    );
    let read = app.world.journal().entries(
        &JournalFilter::default()
            .method("GET")
            .path_contains(opportunity.as_str())
            .since(since),
    );
    assert!(!read.is_empty(), "the seller's change was read");
}

/// A referral arrives and its create's answer stalls mid-body for 4 s: Dataverse made the opportunity,
/// cosell does not know it yet. The change feed reads it then, and queues a run for it. The app, the
/// opportunity and that run.
async fn feed_reads_a_create_in_flight() -> (TestApp, String, i64) {
    let app = TestApp::spawn_ready().await;
    app.engine.poll_changes().await.expect("first poll");
    app.control(
        "/faults",
        json!({ "method": "POST", "path_contains": "/api/data/v9.2/opportunities", "kind": "slow_body", "delay_ms": 4000, "times": 1 }),
    )
    .await;
    let since = app.world.journal().last_seq();
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Read in flight",
        "customerProfile": { "name": "Fabrikam", "address": { "postalCode": "60601", "country": "US" } },
        "details": { "dealValue": 30000, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let create = JournalFilter::default()
        .method("POST")
        .path_contains("/api/data/v9.2/opportunities")
        .since(since);
    let posted = app
        .world
        .journal()
        .wait_for(&create, std::time::Duration::from_secs(20))
        .await;
    assert_eq!(posted.len(), 1, "the create is under way");
    let id = referral["id"].as_str().unwrap();
    let opportunity = app
        .world
        .dataverse()
        .rows("opportunities")
        .into_iter()
        .find(|o| o[col::REFERRAL_ID] == id)
        .expect("made before its answer arrives");
    let opportunity = opportunity["opportunityid"].as_str().unwrap().to_string();
    assert!(
        app.store.opportunity(&opportunity).await.unwrap().is_none(),
        "cosell has not noted it yet"
    );
    let report = app.engine.poll_changes().await.expect("poll");
    assert_eq!(report.queued.len(), 1, "{report:?}");
    (app, opportunity, report.queued[0])
}
