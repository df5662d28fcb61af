//! The Overview's charts, as a signed-in page carries them (drawn on the server, so JavaScript is not
//! needed): what ran and what was spent, counted from the outside world's side and from the runs.

use crate::helpers::*;
use cosell::domain::runs::RunStatus;
use serde_json::json;

/// The figure `key` of the Overview, whole.
fn figure<'a>(page: &'a str, key: &str) -> &'a str {
    let start = page
        .find(&format!(r#"data-chart="{key}""#))
        .unwrap_or_else(|| panic!("no chart {key} in {page}"));
    let rest = &page[start..];
    &rest[..rest.find("</figure>").expect("a whole figure")]
}

/// The chart's one-sentence description (the SVG's `<desc>`).
fn summary(figure: &str) -> &str {
    let open = figure.find("<desc id=").expect("a description");
    let start = open + figure[open..].find('>').unwrap() + 1;
    &figure[start..start + figure[start..].find("</desc>").unwrap()]
}

#[tokio::test]
async fn the_overview_charts_syncs_calls_against_the_quota_and_failures_by_cause() {
    let mut app = TestApp::spawn_ready().await;
    let viewer = app.signed_in("viewer").await;
    let (_, page) = app.page(&viewer, "/").await;
    assert_eq!(
        summary(figure(&page, "failures")),
        "No run failed in the last 30 days."
    );

    // One referral syncs; one cannot (no customer name: the data needs fixing).
    app.world
        .partner_center()
        .seller_creates(json!({ "name": "Charted" }));
    let (run, _echo) = app.run_and_echo().await;
    assert_eq!(run.status, RunStatus::Succeeded, "{}", run.outcome);
    app.world.partner_center().seller_creates(json!({
        "name": "No customer", "customerProfile": { "name": "" }
    }));
    let failed = app.next_run().await;
    assert_eq!(failed.status, RunStatus::Failed, "{}", failed.outcome);
    assert!(
        failed.outcome.contains("no customer name"),
        "{}",
        failed.outcome
    );

    let (status, page) = app.page(&viewer, "/").await;
    assert!(status.is_success());
    for key in [
        "syncs",
        "calls-partner_center",
        "calls-dynamics365",
        "failures",
    ] {
        let f = figure(&page, key);
        assert!(
            f.contains(r#"<svg viewBox="0 0 720 200" role="img""#),
            "{key}: {f}"
        );
        assert!(
            f.contains(&format!(r#"<title id="chart-{key}-title">"#)),
            "{key}"
        );
        assert!(
            f.contains("<table class=\"list numbers\">"),
            "{key}: a table of its numbers"
        );
    }
    let failures = figure(&page, "failures");
    assert_eq!(
        summary(failures),
        "1 run failed in the last 30 days; the commonest cause, data to fix: 1."
    );
    assert!(
        failures.contains(r#"<td data-label="Data to fix">1</td>"#),
        "{failures}"
    );
    let syncs = figure(&page, "syncs");
    assert!(
        syncs.contains("<th scope=\"col\">To Dynamics 365 · succeeded</th>"),
        "{syncs}"
    );
    assert!(
        summary(syncs).ends_with(", 1 of them failed."),
        "{}",
        summary(syncs)
    );

    // Calls as Partner Center's own counter has them, against its documented daily quota.
    let calls = app.partner_center_calls_today().await;
    assert!(calls > 0);
    let pc = figure(&page, "calls-partner_center");
    assert_eq!(
        summary(pc),
        format!(
            "{calls} calls to Partner Center in the last 30 days; the busiest day used {calls} of its daily budget of 10,000."
        )
    );
    // A few dozen calls against 10,000: the quota is named above the bars rather than drawn.
    assert!(
        pc.contains(">Daily budget: 10,000, far above this scale</text>"),
        "{pc}"
    );
}
