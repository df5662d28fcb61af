//! The Diagnostics checks of the accounts' roles, the CRM's currencies and change feed, and the synced
//! records, each broken in the sandbox (a role missing, currencies deleted, a seller without a phone, a
//! rule failed, the sync switch off, an unknown CRM id, the CRM's feed failing): the page says so, the
//! fix is made where it belongs (a reconnect, the CRM, Partner Center), and the page says ok again.

use crate::crm::{Crm, poll_one, shared};
use crate::diagnostics::{row, state_of};
use crate::helpers::*;
use cosell::domain::runs::{RunStatus, RunTrigger};
use cosell::store::RunFilter;
use cosell_sandbox::dataverse::columns as col;
use reqwest::StatusCode;
use serde_json::json;

/// The successful "Partner Center to CRM" runs of a referral (not its child runs).
fn synced_filter(referral_id: &str) -> RunFilter {
    RunFilter {
        flow: Some(cosell::domain::flows::Flow::PartnerCenterToCrm),
        record_id: Some(referral_id.to_string()),
        status: Some(RunStatus::Succeeded),
        ..Default::default()
    }
}

/// The page after "Run checks again" (a kept report would not show what changed in the outside world).
async fn looked(app: &TestApp, admin: &reqwest::Client) -> String {
    let (status, body) = app.call(admin, "run_diagnostics", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, page) = app.page(admin, "/diagnostics").await;
    assert_eq!(status, StatusCode::OK);
    page
}

#[tokio::test]
async fn an_account_without_the_roles_fails_the_role_checks_until_one_with_them_is_connected() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "partner-center-role"), "ok");
    assert_eq!(state_of(&page, "crm-role"), "ok");

    // Lee Gu is a cosell admin but neither a Referrals admin nor a CRM administrator.
    app.connect(&admin, "partner_center", "lacking").await;
    app.connect(&admin, "dynamics365", "lacking").await;
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "partner-center-role"), "failing");
    assert_eq!(state_of(&page, "crm-role"), "failing");
    let pc = row(&page, "partner-center-role");
    assert!(
        pc.contains("Referrals admin") && pc.contains(r#"href="/connections""#),
        "{pc}"
    );
    assert!(
        row(&page, "crm-role").contains("System Administrator or System Customizer"),
        "{page}"
    );

    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "dynamics365", "admin").await;
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "partner-center-role"), "ok");
    assert_eq!(state_of(&page, "crm-role"), "ok");
}

#[tokio::test]
async fn deleted_currencies_fail_the_currency_check_until_they_are_back() {
    let app = Crm::Dynamics365.ready().await;
    let admin = app.signed_in("admin").await;
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "crm-currency"), "ok");
    assert!(row(&page, "crm-currency").contains("USD"));

    let dataverse = app.world.dataverse();
    let currencies = dataverse.rows("transactioncurrencies");
    for c in &currencies {
        assert!(dataverse.delete(
            "transactioncurrencies",
            c["transactioncurrencyid"].as_str().unwrap()
        ));
    }
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "crm-currency"), "failing");
    assert!(
        row(&page, "crm-currency").contains("no currency configured"),
        "{page}"
    );

    dataverse.insert(
        "transactioncurrencies",
        json!({ "isocurrencycode": "USD", "currencyname": "US Dollar", "currencysymbol": "$", "exchangerate": 1.0 }),
    );
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "crm-currency"), "ok");
}

#[tokio::test]
async fn a_seller_without_a_phone_fails_the_sellers_check_until_the_crm_user_has_one() {
    let crm = Crm::Salesforce;
    let mut app = crm.ready().await;
    let admin = app.signed_in("admin").await;
    let id = crm.ready_opportunity(&app);
    let world = app.world.clone();
    let salesforce = world.salesforce();
    let owner = salesforce.row("Opportunity", id).unwrap()["OwnerId"]
        .as_str()
        .unwrap()
        .to_string();
    let user = salesforce.row("User", &owner).unwrap();
    salesforce
        .update(
            "User",
            &owner,
            json!({ "Phone": null, "MobilePhone": null }),
        )
        .unwrap();
    crm.seller_switches_sync_on(&app, id);
    let (_, run) = poll_one(crm, &mut app).await;
    assert_ne!(run.status, RunStatus::Succeeded, "{}", run.outcome);

    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "crm-sellers"), "failing");
    let sellers = row(&page, "crm-sellers");
    assert!(
        sellers.contains("no phone") && sellers.contains(id),
        "{sellers}"
    );
    assert_eq!(state_of(&page, "opportunities-not-ready"), "failing");

    // The CRM user gets a phone back; the admin shares the opportunity again from Opportunities.
    salesforce
        .update(
            "User",
            &owner,
            json!({ "Phone": user["Phone"], "MobilePhone": user["MobilePhone"] }),
        )
        .unwrap();
    let (status, body) = app.call(&admin, "sync_now", &[("crm_id", id)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let filter = RunFilter {
        record_id: Some(id.to_string()),
        ..Default::default()
    };
    let shared = app
        .run_where("the share run finishes", filter, |r| {
            r.trigger == RunTrigger::Manual && r.finished_at.is_some()
        })
        .await;
    assert_eq!(shared.status, RunStatus::Succeeded, "{:?}", shared.outcome);
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "crm-sellers"), "ok");
    assert_eq!(state_of(&page, "opportunities-not-ready"), "ok");
}

#[tokio::test]
async fn a_synced_opportunity_failing_a_rule_is_listed_under_its_fix_until_the_seller_fixes_it() {
    let crm = Crm::Dynamics365;
    let mut app = crm.ready().await;
    let admin = app.signed_in("admin").await;
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "opportunities-not-ready"), "ok");

    let id = crm.opportunity_without_solution(&app);
    crm.seller_switches_sync_on(&app, id);
    poll_one(crm, &mut app).await;
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "opportunities-not-ready"), "failing");
    let not_ready = row(&page, "opportunities-not-ready");
    assert!(
        not_ready.contains("Microsoft Partner Center Solutions:") && not_ready.contains(id),
        "{not_ready}"
    );
    assert!(not_ready.contains(r#"href="/opportunities""#));

    crm.seller_edits(&app, id, Some("SOL-DATA-PLAT"), None);
    let (_, run) = poll_one(crm, &mut app).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "opportunities-not-ready"), "ok");
}

#[tokio::test]
async fn a_linked_opportunity_with_sync_off_is_listed_until_sync_is_on_again() {
    let crm = Crm::Dynamics365;
    let mut app = crm.ready().await;
    let admin = app.signed_in("admin").await;
    let (id, _referral) = shared(crm, &mut app).await;
    app.world
        .dataverse()
        .update("opportunities", id, json!({ (col::SYNC): false }))
        .unwrap();
    app.engine.poll_changes().await.unwrap();
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "sync-switch"), "attention");
    assert!(row(&page, "sync-switch").contains(id), "{page}");

    crm.seller_switches_sync_on(&app, id);
    app.engine.poll_changes().await.unwrap();
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "sync-switch"), "ok");
}

#[tokio::test]
async fn a_referral_naming_an_unknown_crm_id_is_listed_until_it_is_corrected_and_synced() {
    let mut app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let referral = app.world.partner_center().seller_creates(json!({
        "name": "Typed the wrong CRM id",
        "externalReferenceId": "00000000-0000-0000-0000-00000000abcd"
    }));
    let id = referral["id"].as_str().unwrap().to_string();
    let run = app.next_run().await;
    assert_eq!(run.status, RunStatus::Skipped, "{}", run.outcome);
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "crm-id-unknown"), "attention");
    assert!(row(&page, "crm-id-unknown").contains(&id), "{page}");

    // The seller corrects the CRM id in Partner Center to the opportunity meant: it syncs, and the
    // finding goes.
    app.seller_updates(
        &id,
        json!([{ "op": "replace", "path": "/externalReferenceId",
                 "value": cosell_sandbox::dataverse::OPPORTUNITY_FABRIKAM }]),
    )
    .await;
    let synced = app
        .run_where("the corrected referral syncs", synced_filter(&id), |_| true)
        .await;
    assert!(synced.finished_at.is_some());
    let page = looked(&app, &admin).await;
    assert_eq!(
        state_of(&page, "crm-id-unknown"),
        "ok",
        "{}",
        row(&page, "crm-id-unknown")
    );
}

#[tokio::test]
async fn a_failing_change_feed_is_attention_at_once_and_ok_once_it_reads_again() {
    // The feed read every 200 ms by this instance, as in production every minute.
    let app = TestApp::spawn_ready_with(&["--crm-poll-ms", "200"]).await;
    let admin = app.signed_in("admin").await;
    let ok = eventually("the feed is read", || async {
        let page = looked(&app, &admin).await;
        (state_of(&page, "crm-feed-current") == "ok").then_some(page)
    })
    .await;
    assert!(row(&ok, "crm-feed-current").contains("Last read"), "{ok}");

    // Dataverse answers the feed's reads with 503s.
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/api/data/v9.2/opportunities", "status": 503, "times": 1000 }),
    )
    .await;
    let page = eventually("a failed read shows", || async {
        let page = looked(&app, &admin).await;
        (state_of(&page, "crm-feed-current") != "ok").then_some(page)
    })
    .await;
    assert_eq!(state_of(&page, "crm-feed-current"), "attention");
    assert!(
        row(&page, "crm-feed-current").contains("failed"),
        "{}",
        row(&page, "crm-feed-current")
    );

    app.world.faults().clear();
    eventually("the feed reads again", || async {
        let page = looked(&app, &admin).await;
        (state_of(&page, "crm-feed-current") == "ok").then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_referral_whose_webhook_never_arrived_is_listed_until_reconciled_from_the_page() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let id = app
        .shared_while_deliveries_fail(&["Its webhook never came"])
        .await
        .remove(0);

    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "referral-not-in-crm"), "failing");
    let missing = row(&page, "referral-not-in-crm");
    assert!(
        missing.contains(&id) && missing.contains(r#"action="/api/reconcile_now""#),
        "{missing}"
    );

    // The fix, as the page's form posts it: a reconciliation, which brings the referral in.
    let r = app
        .submit(&admin, "/diagnostics", "/api/reconcile_now", &[])
        .await;
    assert!(r.status().is_redirection(), "{}", r.status());
    // Not the echo of its own write-back (a webhook, now that deliveries arrive).
    let synced = app
        .run_where("the referral syncs", synced_filter(&id), |r| {
            r.trigger == RunTrigger::Reconciliation
        })
        .await;
    assert!(synced.finished_at.is_some());
    let page = looked(&app, &admin).await;
    assert_eq!(
        state_of(&page, "referral-not-in-crm"),
        "ok",
        "{}",
        row(&page, "referral-not-in-crm")
    );
}

#[tokio::test]
async fn a_deal_closed_in_the_crm_but_open_in_partner_center_is_listed_until_both_agree() {
    let crm = Crm::Dynamics365;
    let mut app = crm.ready().await;
    let admin = app.signed_in("admin").await;
    let (id, referral_id) = shared(crm, &mut app).await;
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "referral-closed"), "ok");

    // Closed as won in the CRM while "CRM to Partner Center" is off: Partner Center still has it open.
    app.engine
        .set_flow(
            cosell::domain::flows::Flow::CrmToPartnerCenter,
            false,
            "admin",
        )
        .await
        .unwrap();
    crm.seller_closes_as_won(&app, id);
    let (_, skipped) = poll_one(crm, &mut app).await;
    assert_eq!(skipped.status, RunStatus::Skipped);
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "referral-closed"), "attention");
    let closed = row(&page, "referral-closed");
    assert!(
        closed.contains(&referral_id) && closed.contains("is won in the CRM"),
        "{closed}"
    );

    // The flow goes back on and the skipped run is resubmitted: Partner Center closes it too.
    app.engine
        .set_flow(
            cosell::domain::flows::Flow::CrmToPartnerCenter,
            true,
            "admin",
        )
        .await
        .unwrap();
    let again = app.engine.resubmit(skipped.run_id, "admin").await.unwrap();
    let run = app.run_finished(again).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    let page = looked(&app, &admin).await;
    assert_eq!(
        state_of(&page, "referral-closed"),
        "ok",
        "{}",
        row(&page, "referral-closed")
    );
}

#[tokio::test]
async fn a_test_event_proves_deliveries_arrive_and_refused_ones_are_counted() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let callback = app.url("/webhooks/partner-center");
    let (status, body) = app.register_webhook_here(&admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "webhook-registered"), "ok");
    assert_eq!(state_of(&page, "webhook-arriving"), "attention");
    let arriving = row(&page, "webhook-arriving");
    assert!(
        arriving.contains("No delivery has arrived yet")
            && arriving.contains(r#"action="/api/send_test_event""#),
        "{arriving}"
    );

    // "Send a test event", as the page's form posts it: Partner Center delivers it, and the page says so.
    let r = app
        .submit(&admin, "/diagnostics", "/api/send_test_event", &[])
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let back = location(&r).unwrap();
    assert!(!back.contains("__err"), "{back}");
    let page = eventually("the test event arrives", || async {
        let page = looked(&app, &admin).await;
        (state_of(&page, "webhook-arriving") == "ok").then_some(page)
    })
    .await;
    assert!(
        row(&page, "webhook-arriving").contains("The test event Adele Vance asked for"),
        "{page}"
    );
    assert_eq!(
        state_of(&page, "webhook-registered"),
        "ok",
        "test-created added, the four events still there"
    );

    // A forged delivery is refused before anything else, and counted with the reason.
    let forged = plain_client()
        .post(&callback)
        .header("Authorization", "Signature bm90IGEgc2lnbmF0dXJl")
        .body(r#"{"EventName":"referral-created","ResourceUri":"https://api.partner.microsoft.com/v1.0/engagements/referrals/x","ResourceChangeUtcDate":"2026-11-30T00:00:00Z"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let page = looked(&app, &admin).await;
    assert_eq!(state_of(&page, "webhook-arriving"), "attention");
    assert!(
        row(&page, "webhook-arriving")
            .contains("1 delivery refused because its signature did not verify"),
        "{}",
        row(&page, "webhook-arriving")
    );
}
