//! The landing page: is the connector healthy, and if not, the one thing to do next for each part —
//! connections, flows, the webhook, failed runs, opportunities waiting for a fix, the CRM's change feed —
//! then who is signed in.

use crate::error::AppError;
use crate::layout::Gate;
use cosell::domain::Access;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// One part of the connector and how it is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub key: String,
    pub label: String,
    /// `ok`, `warn` or `bad`.
    pub state: String,
    pub detail: String,
    /// Where to act, and what the link says.
    pub href: String,
    pub action: String,
}

#[server(endpoint = "health")]
pub async fn health() -> Result<Vec<HealthCheck>, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::connection::{DAILY_CALL_QUOTA, QuotaStanding, System};
    use cosell::domain::flows::activation_order;
    use cosell::domain::runs::RunStatus;
    require(Access::Viewer).await?;
    let ctx = context()?;
    let now = time::OffsetDateTime::now_utc();
    let since = now - time::Duration::hours(24);
    let crm = ctx.engine.crm();
    let facts = ctx
        .store
        .overview(crm, &ctx.engine.opportunity_feed(), now, since)
        .await
        .map_err(internal)?;
    let check = |key: &str, label: &str, state: &str, detail: String, href: &str, action: &str| {
        HealthCheck {
            key: key.into(),
            label: label.into(),
            state: state.into(),
            detail,
            href: href.into(),
            action: action.into(),
        }
    };
    let mut checks = Vec::new();

    for (system, connection, calls) in [
        (
            System::PartnerCenter,
            &facts.partner_center,
            facts.partner_center_calls,
        ),
        (System::Crm(crm), &facts.crm, facts.crm_calls),
    ] {
        let label = system.label();
        checks.push(match connection {
            None => check(
                system.as_code(),
                label,
                "bad",
                format!("{label} is not connected: nothing can sync."),
                "/connections",
                "Connect",
            ),
            Some(c) => match c.diagnosis {
                Some(d) => check(
                    system.as_code(),
                    label,
                    "bad",
                    format!("{} {}", d.headline(system), d.fix(system)),
                    "/connections",
                    "Open Connections",
                ),
                None => {
                    // A CRM that reports its own allocation (Salesforce's Sforce-Limit-Info) is
                    // judged by it: the count is the whole org's, not only cosell's.
                    let reported = match system {
                        System::Crm(_) => ctx.engine.crm_port().ok().and_then(|p| p.api_usage()),
                        System::PartnerCenter => None,
                    };
                    let (used, max) = reported.unwrap_or((calls, DAILY_CALL_QUOTA));
                    let detail = match reported {
                        Some((used, max)) => format!(
                            "Runs as {}; cosell made {calls} API calls today (UTC); {label} reports {used} of the org's {max} used.",
                            c.account_name
                        ),
                        None => format!(
                            "Runs as {}; {calls} of {DAILY_CALL_QUOTA} API calls used today (UTC).",
                            c.account_name
                        ),
                    };
                    let standing = QuotaStanding::of(used, max);
                    if standing == QuotaStanding::Spent {
                        check(
                            system.as_code(),
                            label,
                            "bad",
                            format!(
                                "{detail} The daily API allocation is spent: {label} work waits until calls free up (no attempt is spent meanwhile)."
                            ),
                            "/runs?status=queued",
                            "See the waiting runs",
                        )
                    } else {
                        check(
                            system.as_code(),
                            label,
                            if standing == QuotaStanding::Near {
                                "warn"
                            } else {
                                "ok"
                            },
                            detail,
                            "/connections",
                            "Open Connections",
                        )
                    }
                }
            },
        });
    }

    // Work waiting for a person: it resumes by itself once the connection works, so the one thing to
    // do is to reconnect.
    for &(system, n) in &facts.paused {
        let label = system.label();
        checks.push(check(
            "paused",
            "Paused work",
            "bad",
            format!(
                "{n} {} for {label} to be reconnected, paused: nothing failed and nothing is lost. {} by {} within seconds of a successful Reconnect.",
                if n == 1 { "run waits" } else { "runs wait" },
                if n == 1 { "It goes on" } else { "They go on" },
                if n == 1 { "itself" } else { "themselves" },
            ),
            "/connections",
            "Reconnect",
        ));
    }

    let catalog = activation_order(crm);
    let on = catalog
        .iter()
        .filter(|f| facts.active_flows.contains(f))
        .count();
    checks.push(check(
        "flows",
        "Flows",
        match on {
            0 => "bad",
            n if n < catalog.len() => "warn",
            _ => "ok",
        },
        format!("{on} of {} flows are on.", catalog.len()),
        "/flows",
        if on < catalog.len() {
            "Activate all in order"
        } else {
            "Open Flows"
        },
    ));

    checks.push(match &facts.last_registration {
        None => check(
            "webhook",
            "Partner Center webhook",
            "bad",
            "Not registered: Partner Center does not tell cosell about new referrals.".into(),
            "/flows",
            "Register the webhook",
        ),
        Some(r) if r.status == RunStatus::Succeeded => check(
            "webhook",
            "Partner Center webhook",
            "ok",
            format!("Registered {}.", crate::pages::when(r.at)),
            "/flows",
            "Open Flows",
        ),
        Some(r)
            if matches!(
                r.status,
                RunStatus::Queued | RunStatus::Running | RunStatus::Paused
            ) =>
        {
            check(
                "webhook",
                "Partner Center webhook",
                "warn",
                "A registration is under way.".into(),
                "/flows",
                "Open Flows",
            )
        }
        Some(r) => check(
            "webhook",
            "Partner Center webhook",
            "bad",
            format!(
                "The last registration failed: {}",
                r.outcome.clone().unwrap_or_default()
            ),
            "/flows",
            "Register again",
        ),
    });

    let failed = facts.failed_since;
    let from = since
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap_or_default();
    checks.push(check(
        "runs",
        "Runs",
        if failed == 0 { "ok" } else { "bad" },
        match failed {
            0 => "No run failed in the last 24 hours.".to_string(),
            1 => "1 run failed in the last 24 hours: it says why.".to_string(),
            n => format!("{n} runs failed in the last 24 hours: each says why."),
        },
        &format!("/runs?status=failed&from={from}"),
        if failed == 0 {
            "Open Runs"
        } else {
            "See the failed runs"
        },
    ));

    let (to_fix, polled) = (facts.opportunities_to_fix, facts.crm_feed_polled_at);
    checks.push(check(
        "opportunities",
        "Opportunities",
        match (to_fix, polled) {
            (_, None) => "warn",
            (0, _) => "ok",
            _ => "warn",
        },
        format!(
            "{}. {}",
            match to_fix {
                0 => "No synced opportunity is waiting for a fix".to_string(),
                1 => "1 synced opportunity needs a fix before it can be shared".to_string(),
                n => format!("{n} synced opportunities need a fix before they can be shared"),
            },
            match polled {
                Some(at) => format!(
                    "The CRM's changes were last read {}.",
                    crate::pages::when(at)
                ),
                None => format!(
                    "The CRM's changes have not been read yet (connect {}).",
                    crm.label()
                ),
            }
        ),
        "/opportunities",
        "Open Opportunities",
    ));
    Ok(checks)
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    view! {
        <Gate needed=Access::Viewer title="Overview" content=move |me: crate::auth::Me| {
            // Asked for only once someone with a role is signed in (a signed-out visit stays a 200 page).
            let checks = Resource::new(crate::live::changes, |_| health());
            let can = match me.user.access {
                Access::Admin => "You may change everything: connections, flows, mappings, and resubmitting runs.",
                _ => "You may read everything here; changes need the referrals admin role.",
            };
            view! {
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match checks.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(checks) => view! {
                                <ul class="health" data-testid="health" aria-label="Health">
                                    {checks.into_iter().map(|c| view! {
                                        <li class=format!("check {}", c.state) data-check=c.key.clone() data-state=c.state.clone()>
                                            <span class=format!("badge {}", c.state)>{match c.state.as_str() {
                                                "ok" => "OK",
                                                "warn" => "Attention",
                                                _ => "Action needed",
                                            }}</span>
                                            <strong>{c.label}</strong>
                                            <span class="detail">{c.detail}</span>
                                            <a href=c.href>{c.action}</a>
                                        </li>
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                        }
                    })}
                </Transition>
                <crate::pages::diagnostics::DiagnosticsLine/>
                <section class="card" data-testid="identity">
                    <h2>"Signed in"</h2>
                    <dl>
                        <dt>"Name"</dt><dd>{me.user.name.clone()}</dd>
                        <dt>"Account"</dt><dd>{me.user.username.clone()}</dd>
                        <dt>"Role"</dt><dd data-testid="overview-role">{me.user.access.label()}</dd>
                        <dt>"Tenant"</dt><dd><code>{me.user.tenant_id.clone()}</code></dd>
                    </dl>
                    <p>{can}</p>
                </section>
            }.into_any()
        }/>
    }
}
