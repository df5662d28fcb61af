//! The Diagnostics page over HTTP, against the sandbox: each check is made to fail in the outside world
//! (or in cosell's own state), the page says so, the fix is applied from the page — its own form,
//! posted as a browser without JavaScript posts it — and the page then says ok.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

const ALL_CHECKS: [&str; 19] = [
    "connections-consented",
    "credentials-current",
    "partner-center-role",
    "crm-role",
    "flows-order",
    "flows-connections",
    "webhook-registered",
    "webhook-arriving",
    "crm-feed-current",
    "crm-currency",
    "crm-sellers",
    "opportunities-not-ready",
    "sync-switch",
    "crm-id-unknown",
    "referral-not-in-crm",
    "referral-closed",
    "runs-failing",
    "api-quota",
    "storage",
];

pub fn state_of(page: &str, id: &str) -> String {
    checks(page)
        .into_iter()
        .find(|(i, _)| i == id)
        .unwrap_or_else(|| panic!("no check {id} on the page"))
        .1
}

/// The markup of one check's row (up to the next row).
pub fn row<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("data-check=\"{id}\""))
        .unwrap_or_else(|| panic!("no check {id} on the page"));
    let rest = &page[start..];
    let end = rest[1..]
        .find("data-check=\"")
        .map(|i| i + 1)
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The value of attribute `name` in a tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[start..].split('"').next()?.replace("&amp;", "&"))
}

/// The fix form in a row: where it posts, and its fields.
fn fix_form(row: &str) -> Option<(String, Vec<(String, String)>)> {
    let form = &row[row.find("<form")?..];
    let form = &form[..form.find("</form>")?];
    let action = attribute(form, "action")?;
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|input| {
            let tag = &input[..input.find('>')?];
            Some((attribute(tag, "name")?, attribute(tag, "value")?))
        })
        .collect();
    Some((action, fields))
}

async fn diagnostics(app: &TestApp, client: &reqwest::Client) -> String {
    let (status, page) = app.page(client, "/diagnostics").await;
    assert_eq!(status, StatusCode::OK);
    page
}

/// Applies the fix of check `id` from the page, as a browser without JavaScript does: the form is
/// posted, the server answers with a redirect back to the page, and no error travels with it.
async fn apply_fix(app: &TestApp, client: &reqwest::Client, id: &str) {
    let page = diagnostics(app, client).await;
    let (action, fields) =
        fix_form(row(&page, id)).unwrap_or_else(|| panic!("{id} has a fix button: {page}"));
    let r = app.submit(client, "/diagnostics", &action, &fields).await;
    assert_eq!(r.status(), StatusCode::FOUND, "{action}");
    let back = location(&r).unwrap();
    assert!(back.starts_with(&app.url("/diagnostics")), "{back}");
    assert!(!back.contains("__err"), "the fix was refused: {back}");
}

#[tokio::test]
async fn nothing_connected_fails_the_connections_and_what_needs_them_does_not_apply() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;

    let (_, overview) = app.page(&admin, "/").await;
    assert!(
        overview.contains("Diagnostics have not run since cosell started"),
        "{overview}"
    );

    let page = diagnostics(&app, &admin).await;
    let ids: Vec<String> = checks(&page).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ALL_CHECKS);
    assert_eq!(state_of(&page, "connections-consented"), "failing");
    let consented = row(&page, "connections-consented");
    assert!(
        consented.contains("Partner Center is not connected")
            && consented.contains(r#"href="/connections""#),
        "{consented}"
    );
    for id in [
        "credentials-current",
        "flows-connections",
        "webhook-registered",
        "api-quota",
    ] {
        assert_eq!(state_of(&page, id), "not-applicable", "{id}");
    }
    assert_eq!(state_of(&page, "flows-order"), "failing");
    assert_eq!(state_of(&page, "runs-failing"), "ok");
    assert_eq!(state_of(&page, "storage"), "ok");
    assert!(row(&page, "storage").contains("No run kept yet"));

    // The Overview links to the first check that fails.
    let (_, overview) = app.page(&admin, "/").await;
    assert!(
        overview.contains(r#"href="/diagnostics#connections-consented""#),
        "{overview}"
    );

    // Connecting tests the connection, which makes the kept report stale: the next load looks again.
    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "dynamics365", "admin").await;
    let page = diagnostics(&app, &admin).await;
    for id in ["connections-consented", "credentials-current", "api-quota"] {
        assert_eq!(state_of(&page, id), "ok", "{id}: {}", row(&page, id));
    }
    assert_eq!(state_of(&page, "webhook-registered"), "failing");
    assert!(row(&page, "webhook-registered").contains("no webhook registration"));

    // Flows switched on only in part: a valid order, but not everything syncs; "Activate all" fixes it.
    let (status, body) = app
        .call(
            &admin,
            "set_flow",
            &[("flow", "customize"), ("active", "true")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "flows-order"), "attention");
    assert_eq!(state_of(&page, "flows-connections"), "ok");
    apply_fix(&app, &admin, "flows-order").await;
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "flows-order"), "ok");
    assert_eq!(state_of(&page, "flows-connections"), "ok");
    assert_eq!(
        app.store
            .active_flows(app.engine.crm())
            .await
            .unwrap()
            .len(),
        9
    );
}

#[tokio::test]
async fn an_expired_password_fails_credentials_until_changed_and_reconnected() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    // Both connections run as Adele, whose password expires.
    app.control_ok("/entra/users/admin/password", json!({ "expired": true }))
        .await;
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "credentials-current"), "failing");
    let credentials = row(&page, "credentials-current");
    assert!(
        credentials.contains("The password of the Partner Center account has expired"),
        "{credentials}"
    );
    assert!(
        credentials.contains(r#"href="/connections""#) && credentials.contains("Reconnect"),
        "{credentials}"
    );
    assert_eq!(state_of(&page, "connections-consented"), "failing");
    assert_eq!(state_of(&page, "flows-connections"), "failing");

    // Adele changes her password and reconnects both.
    app.control_ok("/entra/users/admin/password", json!({ "expired": false }))
        .await;
    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "dynamics365", "admin").await;
    let page = diagnostics(&app, &admin).await;
    for id in [
        "credentials-current",
        "connections-consented",
        "flows-connections",
    ] {
        assert_eq!(state_of(&page, id), "ok", "{id}: {}", row(&page, id));
    }
}

#[tokio::test]
async fn a_disconnected_system_fails_the_flows_that_run_with_it() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "flows-connections"), "ok");

    let (status, body) = app
        .call(&admin, "disconnect", &[("system", "partner_center")])
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Disconnecting makes the kept report stale.
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "flows-connections"), "failing");
    let flows = row(&page, "flows-connections");
    assert!(
        flows.contains(
            "Partner Center is not connected: used by “Partner Center Webhook Registration”"
        ),
        "{flows}"
    );
    assert_eq!(state_of(&page, "connections-consented"), "failing");
    assert_eq!(state_of(&page, "webhook-registered"), "not-applicable");
    // Only the CRM is connected now: its credentials are judged, Partner Center's cannot be.
    assert_eq!(state_of(&page, "credentials-current"), "ok");

    app.connect(&admin, "partner_center", "admin").await;
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "flows-connections"), "ok");
    assert_eq!(state_of(&page, "connections-consented"), "ok");
}

#[tokio::test]
async fn a_webhook_registered_elsewhere_fails_until_registered_here_from_the_page() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    cosell_sandbox::testing::register_webhook(
        &app.world,
        "https://elsewhere.example/hook",
        &[
            "referral-created",
            "referral-updated",
            "related-referral-created",
            "related-referral-updated",
        ],
        false,
    )
    .await;
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "webhook-registered"), "failing");
    let webhook = row(&page, "webhook-registered");
    assert!(
        webhook.contains("https://elsewhere.example/hook")
            && webhook.contains(&app.url("/webhooks/partner-center")),
        "{webhook}"
    );
    let (_, overview) = app.page(&admin, "/").await;
    assert!(
        overview.contains(r#"href="/diagnostics#webhook-registered""#),
        "the Overview links to it: {overview}"
    );

    apply_fix(&app, &admin, "webhook-registered").await;
    let page = diagnostics(&app, &admin).await;
    assert_eq!(
        state_of(&page, "webhook-registered"),
        "ok",
        "{}",
        row(&page, "webhook-registered")
    );
    // Partner Center itself now sends every event here.
    let token = cosell_sandbox::testing::access_token(
        &app.world,
        "admin",
        "https://api.partnercenter.microsoft.com/user_impersonation",
    )
    .await;
    let registration: serde_json::Value = cosell_sandbox::testing::client(&app.world)
        .get(format!("{}/webhooks/v1/registration", app.sandbox))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        registration["WebhookUrl"],
        app.url("/webhooks/partner-center")
    );
    assert_eq!(
        registration["WebhookEvents"].as_array().unwrap().len(),
        4,
        "{registration}"
    );
}

#[tokio::test]
async fn a_failed_run_is_listed_by_cause_and_resubmitted_from_the_page() {
    let mut app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    app.control(
        "/faults",
        json!({ "method": "GET", "path_contains": "/engagements/referrals/", "status": 400, "times": 1 }),
    )
    .await;
    app.world
        .partner_center()
        .seller_creates(json!({ "name": "Denied once" }));
    let failed = app.next_run().await;
    assert_eq!(failed.status, cosell::domain::runs::RunStatus::Failed);

    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "runs-failing"), "failing");
    let runs = row(&page, "runs-failing");
    assert!(
        runs.contains("1 run failed in the last 24 hours")
            && runs.contains("1 × “Partner Center to Dynamics 365”")
            && runs.contains("refused the data (HTTP 400)")
            && runs.contains(&format!("run #{}", failed.run_id)),
        "{runs}"
    );

    apply_fix(&app, &admin, "runs-failing").await;
    let (done, _echo) = app.run_and_echo().await;
    assert_eq!(
        app.store
            .run(done.run_id)
            .await
            .unwrap()
            .unwrap()
            .resubmitted_from,
        Some(failed.run_id)
    );
    assert_eq!(done.status, cosell::domain::runs::RunStatus::Succeeded);
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "runs-failing"), "ok");
    // Storage answers with its size and the oldest run it keeps: the one that failed.
    assert_eq!(state_of(&page, "storage"), "ok");
    let storage = row(&page, "storage");
    assert!(
        storage.contains("Size: ")
            && storage.contains(&format!("Oldest run kept: #{},", failed.run_id)),
        "{storage}"
    );
}

/// The number before " of 10,000 calls today" in the Partner Center line.
fn partner_center_calls(row: &str) -> i64 {
    let line = row
        .split("Partner Center: ")
        .nth(1)
        .expect("a Partner Center line");
    line.split(" of ")
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("a count: {line}"))
}

#[tokio::test]
async fn api_quota_shows_the_days_calls_and_warns_before_they_run_out() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let now = || time::OffsetDateTime::now_utc();
    let before = app
        .store
        .api_calls_on("partner_center", now())
        .await
        .unwrap();
    let page = diagnostics(&app, &admin).await;
    let after = app
        .store
        .api_calls_on("partner_center", now())
        .await
        .unwrap();
    assert_eq!(state_of(&page, "api-quota"), "ok");
    let quota = row(&page, "api-quota");
    let shown = partner_center_calls(quota);
    // The checks themselves call Partner Center, so the count read lies between the two.
    assert!(
        before > 0 && (before..=after).contains(&shown),
        "{before} ≤ {shown} ≤ {after}: {quota}"
    );
    assert!(quota.contains("of 10,000 calls today (UTC)"), "{quota}");

    // A busy day: 80% of the quota is a warning, all of it a failure with the waiting runs.
    app.store
        .count_api_calls("partner_center", None, 8_000, now())
        .await
        .unwrap();
    let (status, body) = app.call(&admin, "run_diagnostics", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "api-quota"), "attention");
    app.store
        .count_api_calls("partner_center", None, 2_000, now())
        .await
        .unwrap();
    let (status, body) = app.call(&admin, "run_diagnostics", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = diagnostics(&app, &admin).await;
    assert_eq!(state_of(&page, "api-quota"), "failing");
    assert!(row(&page, "api-quota").contains(r#"href="/runs?status=queued""#));
}

#[tokio::test]
async fn a_viewer_reads_the_checks_and_their_fixes_but_has_no_buttons() {
    let app = TestApp::spawn_ready().await;
    let viewer = app.signed_in("viewer").await;
    // Something to fix: the flows partly off.
    app.store
        .set_flows_active(
            app.engine.crm(),
            &[cosell::domain::flows::Flow::SolutionsToPartnerCenter],
            false,
            "test",
            time::OffsetDateTime::now_utc(),
            |_, _| Ok::<(), ()>(()),
        )
        .await
        .unwrap()
        .unwrap();
    let page = diagnostics(&app, &viewer).await;
    assert_eq!(checks(&page).len(), ALL_CHECKS.len());
    assert_eq!(state_of(&page, "flows-order"), "attention");
    let list = &page[page.find(r#"data-testid="diagnostics""#).unwrap()..];
    assert!(!list.contains("<form"), "no button for a viewer: {list}");
    assert!(!page.contains("Run checks again"));
    let order = row(&page, "flows-order");
    assert!(
        order.contains(r#"data-fix="activate_all""#) && order.contains("A referrals admin"),
        "the fix in words: {order}"
    );

    // Neither looking again nor the fix itself is a viewer's to do.
    let (status, _) = app.call(&viewer, "run_diagnostics", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.call(&viewer, "activate_all", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app.call(&viewer, "diagnostics", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("flows-order"), "{body}");
}
