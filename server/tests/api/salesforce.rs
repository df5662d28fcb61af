//! Salesforce as the CRM (`--crm salesforce`), over HTTP against the sandbox's Salesforce org: the
//! connection (its own OAuth with PKCE, the permission check), Partner Center → Salesforce, and
//! Salesforce → Partner Center through the change feed (SystemModstamp polling, echoes dropped).

use crate::helpers::*;
use cosell::domain::runs::RunStatus;
use cosell_sandbox::salesforce::{OPPORTUNITY_NO_SOLUTION, OPPORTUNITY_READY};
use serde_json::json;

const SALESFORCE: &[&str] = &["--crm", "salesforce"];

/// Connected to Partner Center and Salesforce, every flow on, webhooks registered, the change feed read
/// once (the first read only mirrors what exists).
async fn ready() -> TestApp {
    let app = TestApp::spawn_ready_with(SALESFORCE).await;
    let first = app.engine.poll_changes().await.expect("first poll");
    // Initial here or in the engine's own start-up read (under load it may come after the connections).
    assert!(first.queued.is_empty(), "{first:?}");
    app
}

/// The Salesforce connection as cosell stored it.
async fn stored_connection(app: &TestApp) -> cosell::store::Connection {
    app.store
        .connection(
            cosell::domain::connection::System::SALESFORCE,
            &app.engine_key(),
        )
        .await
        .unwrap()
        .expect("a stored Salesforce connection")
}

/// A Salesforce user's edit, through the sandbox.
fn sf_edit(app: &TestApp, object: &str, id: &str, patch: serde_json::Value) {
    app.world
        .salesforce()
        .update(object, id, patch)
        .unwrap_or_else(|e| panic!("edit {object}/{id}: {e}"));
}

#[tokio::test]
async fn salesforce_is_connected_by_its_own_consent_and_its_permission_is_checked() {
    let app = TestApp::spawn_with(SALESFORCE).await;
    let admin = app.signed_in("admin").await;
    let back = app.connect(&admin, "salesforce", "admin").await;
    assert_eq!(back, "/connections?connected=salesforce");
    let connection = stored_connection(&app).await;
    assert_eq!(
        connection.instance_url.as_deref(),
        Some(app.sandbox.as_str())
    );
    assert_eq!(
        connection.account_object_id,
        cosell_sandbox::salesforce::USER_ADMIN
    );
    assert_eq!(connection.diagnosis, None);

    // A user without Modify All Data is told which permission is missing and how to grant it.
    let back = app.connect(&admin, "salesforce", "standard").await;
    let error = param(&format!("http://x{back}"), "error").expect("an error");
    assert!(error.contains("Modify All Data"), "{error}");
    let connection = stored_connection(&app).await;
    assert_eq!(
        connection.diagnosis,
        Some(cosell::domain::connection::Diagnosis::MissingRole)
    );

    // Dynamics 365 cannot be connected to a Salesforce instance.
    let r = admin
        .post(app.url("/connections/dynamics365/connect"))
        .header("Origin", &app.base)
        .send()
        .await
        .unwrap();
    let to = location(&r).unwrap();
    assert!(
        to.contains("--crm+dynamics365") || to.contains("--crm%20dynamics365"),
        "{to}"
    );
}

#[tokio::test]
async fn a_sellers_referral_becomes_a_salesforce_opportunity_with_its_id_written_back() {
    let mut app = ready().await;
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Azure migration",
        "customerProfile": { "name": "Contoso Retail", "address": { "postalCode": "98052", "country": "US" },
                             "team": [{ "firstName": "Ray", "lastName": "Tanaka", "email": "ray@contoso-retail.example" }] },
        "details": { "dealValue": 48000, "currency": "EUR", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    let id = referral["id"].as_str().unwrap().to_string();
    let (run, echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let sf = app.world.salesforce();
    let opportunity = sf
        .rows("Opportunity")
        .into_iter()
        .find(|o| o["Referral_Identifier__c"] == id.as_str())
        .expect("an opportunity for the referral");
    assert_eq!(opportunity["Name"], "Azure migration");
    assert_eq!(opportunity["Amount"], 48000.0);
    assert_eq!(opportunity["CloseDate"], "2027-06-30");
    assert_eq!(opportunity["CurrencyIsoCode"], "EUR");
    assert_eq!(opportunity["Sync_with_Partner_Center__c"], true);
    let account_id = opportunity["AccountId"].as_str().unwrap();
    let account = sf.row("Account", account_id).unwrap();
    assert_eq!(account["Name"], "Contoso Retail");
    assert_eq!(account["BillingPostalCode"], "98052");
    assert_eq!(account["BillingCountryCode"], "US");
    assert!(
        sf.rows("Contact")
            .iter()
            .any(|c| c["Email"] == "ray@contoso-retail.example" && c["AccountId"] == account_id)
    );
    // The Salesforce id goes back to Partner Center; that write's echo changes nothing.
    let back = app.world.partner_center().referral(&id).unwrap();
    assert_eq!(back["externalReferenceId"], opportunity["Id"]);
    assert_eq!(echo.status, RunStatus::Skipped, "{}", echo.outcome);
    assert_eq!(
        sf.rows("Opportunity")
            .iter()
            .filter(|o| o["Referral_Identifier__c"] == id.as_str())
            .count(),
        1
    );
    // No Helper flow in Salesforce's catalog: the updates flow matched the account itself.
    let children = app.store.related_runs(run.run_id).await.unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
}

#[tokio::test]
async fn the_opportunity_page_opens_the_record_in_salesforce() {
    let app = ready().await;
    let viewer = app.signed_in("viewer").await;
    let (_, page) = app
        .page(&viewer, &format!("/opportunities/{OPPORTUNITY_READY}"))
        .await;
    assert!(
        page.contains(&format!(
            "{}/lightning/r/Opportunity/{OPPORTUNITY_READY}/view",
            app.sandbox
        )) && page.contains("Open in Salesforce"),
        "{page}"
    );
}

/// (That a not-ready opportunity costs no call is tested for both CRMs in `both_crms`.)
#[tokio::test]
async fn a_solution_added_in_salesforce_shares_the_opportunity_at_the_next_poll() {
    let mut app = ready().await;
    sf_edit(
        &app,
        "Opportunity",
        OPPORTUNITY_NO_SOLUTION,
        json!({ "Sync_with_Partner_Center__c": true }),
    );
    let report = app.engine.poll_changes().await.expect("poll");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Skipped, "{}", run.outcome);
    // The fix in Salesforce makes the next poll share it.
    sf_edit(
        &app,
        "Opportunity",
        OPPORTUNITY_NO_SOLUTION,
        json!({ "Microsoft_Solutions__c": "SOL-AZ-MIG" }),
    );
    let report = app.engine.poll_changes().await.expect("poll");
    assert_eq!(report.queued.len(), 1, "{report:?}");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let referrals = app.world.partner_center().referrals();
    assert_eq!(referrals.len(), 1);
    assert_eq!(referrals[0]["externalReferenceId"], OPPORTUNITY_NO_SOLUTION);
    assert_eq!(
        referrals[0]["details"]["requirements"]["solutions"][0]["id"],
        "SOL-AZ-MIG"
    );
}

#[tokio::test]
async fn a_spent_salesforce_allocation_pauses_the_run_without_spending_an_attempt() {
    let mut app = ready().await;
    // The org has spent its daily allocation (every REST call now answers 403 REQUEST_LIMIT_EXCEEDED).
    let max = app.world.salesforce().settings().daily_api_max;
    app.world.salesforce().set_api_used(max);
    let referral = app
        .world
        .partner_center()
        .seller_creates(json!({ "name": "Waits for the allocation" }));
    let id = referral["id"].as_str().unwrap();
    // The run is put back to wait, and says so.
    let announced = app.next_run().await;
    assert_eq!(announced.status, RunStatus::Queued, "{}", announced.outcome);
    let paused = app.store.run(announced.run_id).await.unwrap().unwrap();
    assert_eq!(paused.record_id.as_deref(), Some(id));
    assert_eq!(paused.status, RunStatus::Queued);
    assert_eq!(paused.attempts, 0, "waiting is not a failed attempt");
    assert!(
        paused
            .outcome
            .as_deref()
            .unwrap()
            .contains("Salesforce says"),
        "{:?}",
        paused.outcome
    );
    // Nothing was written in Salesforce, and the Overview says why work waits.
    assert!(
        app.world
            .salesforce()
            .rows("Opportunity")
            .iter()
            .all(|o| o["Name"] != "Waits for the allocation")
    );
    let admin = app.signed_in("admin").await;
    let (_, health) = app.call(&admin, "health", &[]).await;
    assert!(
        health.contains("allocation is spent"),
        "the Overview says so: {health}"
    );
}

#[tokio::test]
async fn an_expired_session_is_refreshed_once_and_a_rotated_refresh_token_is_kept() {
    let mut app = ready().await;
    let before = stored_connection(&app).await;
    app.world.salesforce().set_refresh_rotation(true);
    // Every session ends (an admin's "expire all sessions", or the timeout): the next call answers
    // 401 INVALID_SESSION_ID, cosell refreshes once and calls again.
    assert!(app.world.salesforce().expire_sessions() > 0);
    sf_edit(
        &app,
        "Opportunity",
        OPPORTUNITY_READY,
        json!({ "Sync_with_Partner_Center__c": true }),
    );
    let report = app
        .engine
        .poll_changes()
        .await
        .expect("the poll refreshes and goes on");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let after = stored_connection(&app).await;
    assert!(
        after.token_version > before.token_version,
        "the rotated refresh token replaced the old one"
    );
    assert_ne!(after.refresh_token.expose(), before.refresh_token.expose());
    assert_eq!(after.diagnosis, None);
}

#[tokio::test]
async fn a_revoked_grant_is_a_diagnosis_that_says_reconnect() {
    let app = TestApp::spawn_with(SALESFORCE).await;
    let admin = app.signed_in("admin").await;
    let back = app.connect(&admin, "salesforce", "revoked").await;
    let error = param(&format!("http://x{back}"), "error").expect("an error");
    assert!(error.contains("Reconnect"), "{error}");
    let connection = stored_connection(&app).await;
    assert_eq!(
        connection.diagnosis,
        Some(cosell::domain::connection::Diagnosis::GrantRevoked)
    );
}

#[tokio::test]
async fn an_org_without_the_co_sell_fields_is_told_so_when_connected() {
    // This org names the sync field differently than the settings say.
    let app = TestApp::spawn_with(&[
        "--crm",
        "salesforce",
        "--salesforce-fields",
        "sync=Share_With_Microsoft__c",
    ])
    .await;
    let admin = app.signed_in("admin").await;
    let back = app.connect(&admin, "salesforce", "admin").await;
    let error = param(&format!("http://x{back}"), "error").expect("an error");
    assert!(error.contains("co-sell fields"), "{error}");
    let connection = stored_connection(&app).await;
    assert_eq!(
        connection.diagnosis,
        Some(cosell::domain::connection::Diagnosis::FieldsMissing)
    );
}

#[tokio::test]
async fn an_org_without_multiple_currencies_or_country_picklists_still_syncs_what_it_can() {
    let mut app = TestApp::spawn_with(SALESFORCE).await;
    app.world.salesforce().set_multi_currency(false);
    app.world.salesforce().set_state_country_picklists(false);
    let admin = app.signed_in("admin").await;
    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "salesforce", "admin").await;
    let (status, body) = app.call(&admin, "activate_all", &[]).await;
    assert!(status.is_success(), "{body}");
    cosell_sandbox::testing::register_webhook(
        &app.world,
        &app.url("/webhooks/partner-center"),
        &["referral-created", "referral-updated"],
        false,
    )
    .await;
    app.engine.poll_changes().await.expect("first poll");

    // Partner Center → Salesforce: the account gets the free-text country, no currency is written.
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Single-currency deal",
        "customerProfile": { "name": "Adventure Works", "address": { "postalCode": "10115", "country": "DE" } },
        "details": { "dealValue": 1000, "currency": "USD" }
    }));
    let (run, _) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let sf = app.world.salesforce();
    let opportunity = sf
        .rows("Opportunity")
        .into_iter()
        .find(|o| o["Referral_Identifier__c"] == referral["id"])
        .expect("created");
    assert!(
        opportunity.get("CurrencyIsoCode").is_none(),
        "{opportunity}"
    );
    let account = sf
        .row("Account", opportunity["AccountId"].as_str().unwrap())
        .unwrap();
    assert_eq!(account["BillingCountry"], "DE");
    assert!(account.get("BillingCountryCode").is_none());

    // Salesforce → Partner Center: amounts are in the org's one currency; the account's free-text
    // country is not an ISO code, so the rule says what to set, and no Partner Center call is made.
    sf_edit(
        &app,
        "Opportunity",
        OPPORTUNITY_READY,
        json!({ "Sync_with_Partner_Center__c": true }),
    );
    let report = app.engine.poll_changes().await.expect("poll");
    let run = app.run_finished(report.queued[0]).await;
    assert_eq!(run.status, RunStatus::Skipped, "{}", run.outcome);
    assert!(run.outcome.contains("“United States”"), "{}", run.outcome);
    assert!(!run.outcome.contains("currency"), "{}", run.outcome);
    assert_eq!(app.partner_center_calls(run.run_id).await, 0);
}

#[tokio::test]
async fn leads_stay_out_of_salesforce_unless_the_admin_syncs_them_too() {
    let mut app = ready().await;
    let lead = json!({
        "name": "A Microsoft lead",
        "type": "Independent",
        "qualification": "SalesQualified",
        "customerProfile": { "name": "Lead Co", "address": { "postalCode": "98052", "country": "US" } },
    });
    let first = app.world.partner_center().seller_creates(lead.clone());
    let run = app.next_run().await;
    assert_eq!(run.status, RunStatus::Skipped, "{}", run.outcome);
    assert!(run.outcome.contains("is a lead"), "{}", run.outcome);
    let events = app
        .store
        .list_audit(
            &cosell::store::AuditFilter::record(first["id"].as_str().unwrap()),
            None,
            10,
        )
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.action == "referral_skipped_lead"));
    assert!(
        app.world
            .salesforce()
            .rows("Opportunity")
            .iter()
            .all(|o| o["Name"] != "A Microsoft lead")
    );

    // The admin turns "Sync leads too" on: the next lead becomes an opportunity.
    let admin = app.signed_in("admin").await;
    let (_, page) = app.page(&admin, "/mapping").await;
    assert!(
        page.contains(r#"data-setting="sync_leads""#),
        "the setting is offered"
    );
    let (status, body) = app
        .call(
            &admin,
            "save_mapping",
            &[
                ("stages", ""),
                ("statuses", ""),
                ("help", ""),
                ("currencies", ""),
                ("solutions", ""),
                ("sync_leads", "on"),
            ],
        )
        .await;
    assert!(status.is_success(), "{body}");
    let second = app.world.partner_center().seller_creates(lead);
    let (run, _echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    assert!(
        app.world
            .salesforce()
            .rows("Opportunity")
            .iter()
            .any(|o| o["Referral_Identifier__c"] == second["id"])
    );
}

#[tokio::test]
async fn the_co_sell_fields_are_renamed_on_the_mapping_page_and_checked() {
    let app = ready().await;
    let admin = app.signed_in("admin").await;
    let (_, page) = app.page(&admin, "/mapping").await;
    assert!(page.contains("Co-sell fields in Salesforce"), "{page}");
    assert!(page.contains("sync = Sync_with_Partner_Center__c"));
    let save = |fields: &'static str| {
        let admin = admin.clone();
        let app = &app;
        async move {
            app.call(
                &admin,
                "save_mapping",
                &[
                    ("stages", ""),
                    ("statuses", ""),
                    ("help", ""),
                    ("currencies", ""),
                    ("solutions", ""),
                    ("cosell_fields", fields),
                ],
            )
            .await
        }
    };
    // A name Salesforce could not have is refused, and nothing is saved.
    let (status, body) = save("sync = Not a name").await;
    assert!(!status.is_success() && body.contains("API name"), "{body}");
    let (_, page) = app.page(&admin, "/mapping").await;
    assert!(page.contains("sync = Sync_with_Partner_Center__c"));

    // A field this org does not have: saved, and the connection test names the problem.
    let (status, body) = save("sync = Share_With_Microsoft__c").await;
    assert!(status.is_success(), "{body}");
    let (_, tested) = app
        .call(&admin, "test_connection", &[("system", "salesforce")])
        .await;
    assert!(tested.contains("co-sell fields"), "{tested}");
    let audit = app
        .store
        .list_audit(
            &cosell::store::AuditFilter::record("cosell_fields"),
            None,
            5,
        )
        .await
        .unwrap();
    assert_eq!(audit[0].action, "cosell_fields_renamed");

    // Back to the package's names: the connection works again.
    let (status, body) = save("sync = Sync_with_Partner_Center__c").await;
    assert!(status.is_success(), "{body}");
    let (status, tested) = app
        .call(&admin, "test_connection", &[("system", "salesforce")])
        .await;
    assert!(status.is_success(), "{tested}");
}
