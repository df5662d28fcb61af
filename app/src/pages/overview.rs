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

/// One step of the guided setup, in the order it must be done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupStep {
    /// `partner_center`, the CRM's code, `flows` or `webhook`.
    pub key: String,
    pub label: String,
    pub done: bool,
}

/// The Overview: its checks, and while anything is missing, the setup steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewView {
    pub checks: Vec<HealthCheck>,
    /// Empty once everything is set up.
    pub setup: Vec<SetupStep>,
    /// Where Partner Center must send this instance's webhooks.
    pub callback_url: String,
}

#[server(endpoint = "health")]
pub async fn health() -> Result<OverviewView, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::connection::{QuotaStanding, System};
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
    let budgets = ctx.engine.budgets().await.map_err(internal)?;
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
    let setup = setup_steps(&facts, crm);

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
                    // cosell's calls against the connection's daily budget; a CRM that reports its
                    // own allocation (Salesforce's Sforce-Limit-Info) is judged by it too: its count
                    // is the whole org's, not only cosell's.
                    let day = ctx.engine.day_standing(system, calls, &budgets, now);
                    let reported = match system {
                        System::Crm(_) => ctx.engine.crm_port().ok().and_then(|p| p.api_usage()),
                        System::PartnerCenter => None,
                    };
                    let detail = match reported {
                        Some((used, max)) => format!(
                            "Runs as {}; {}. {label} reports {used} of the org's {max} used.",
                            c.account_name,
                            day.describe()
                        ),
                        None => format!("Runs as {}; {}.", c.account_name, day.describe()),
                    };
                    let standing = QuotaStanding::of(day.used, day.budget).max(
                        reported.map_or(QuotaStanding::Fine, |(used, max)| QuotaStanding::of(used, max)),
                    );
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
    Ok(OverviewView {
        checks,
        setup,
        callback_url: ctx.callback_url.clone(),
    })
}

/// The four steps from nothing to the first synced referral, each done or not; none once all are.
#[cfg(feature = "ssr")]
fn setup_steps(
    facts: &cosell::store::OverviewFacts,
    crm: cosell::domain::system::Crm,
) -> Vec<SetupStep> {
    use cosell::domain::connection::System;
    use cosell::domain::flows::activation_order;
    use cosell::domain::runs::RunStatus;
    let works = |c: &Option<cosell::store::ConnectionStanding>| {
        c.as_ref().is_some_and(|c| c.diagnosis.is_none())
    };
    let catalog = activation_order(crm);
    let steps = vec![
        SetupStep {
            key: System::PartnerCenter.as_code().into(),
            label: "Connect Partner Center".into(),
            done: works(&facts.partner_center),
        },
        SetupStep {
            key: System::Crm(crm).as_code().into(),
            label: format!("Connect {}", crm.label()),
            done: works(&facts.crm),
        },
        SetupStep {
            key: "flows".into(),
            label: format!("Switch the {} flows on, in order", catalog.len()),
            done: catalog.iter().all(|f| facts.active_flows.contains(f)),
        },
        SetupStep {
            key: "webhook".into(),
            label: "Register this server for Partner Center's four referral events".into(),
            done: facts
                .last_registration
                .as_ref()
                .is_some_and(|r| r.status == RunStatus::Succeeded),
        },
    ];
    if steps.iter().all(|s| s.done) {
        Vec::new()
    } else {
        steps
    }
}

#[component]
pub fn OverviewPage() -> impl IntoView {
    use crate::pages::flows::{ActivateAll, RegisterWebhook};
    let activate = ServerAction::<ActivateAll>::new();
    let register = ServerAction::<RegisterWebhook>::new();
    let query = leptos_router::hooks::use_query_map();
    view! {
        <Gate needed=Access::Viewer title="Overview" content=move |me: crate::auth::Me| {
            // Asked for only once someone with a role is signed in (a signed-out visit stays a 200 page).
            let overview = Resource::new(
                move || (crate::live::changes(), activate.version().get(), register.version().get()),
                |_| health(),
            );
            let charts = Resource::new(crate::live::changes, |_| crate::pages::charts::overview_charts());
            let admin = me.user.access == Access::Admin;
            let can = match me.user.access {
                Access::Admin => "You may change everything: connections, flows, mappings, and resubmitting runs.",
                _ => "You may read everything here; changes need the referrals admin role.",
            };
            // What a connection just made (or refused) says, back from the consent page.
            let connected = query.with_untracked(|q| q.get("connected"))
                .and_then(|c| cosell::domain::connection::System::from_code(&c))
                .map(|s| format!("{} is connected and works.", s.label()));
            let refused = query.with_untracked(|q| q.get("error"));
            view! {
                {connected.map(|m| view! { <p class="notice" role="status">{m}</p> })}
                {refused.map(|m| view! { <p class="error" role="alert">{m}</p> })}
                {move || crate::pages::action_result(activate.value().get())}
                {move || crate::pages::action_result(register.value().get())}
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match overview.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(OverviewView { checks, setup, callback_url }) => view! {
                                {(!setup.is_empty()).then(|| view! {
                                    <Setup steps=setup callback_url admin activate register/>
                                })}
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
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match charts.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(charts) => view! { <crate::pages::charts::Charts charts/> }.into_any(),
                        }
                    })}
                </Transition>
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

/// The guided setup: the steps from nothing to the first synced referral, in order, each done in place
/// (a plain form each, so it works without JavaScript) and ticked once done.
#[component]
fn Setup(
    steps: Vec<SetupStep>,
    callback_url: String,
    admin: bool,
    activate: ServerAction<crate::pages::flows::ActivateAll>,
    register: ServerAction<crate::pages::flows::RegisterWebhook>,
) -> impl IntoView {
    let next = steps.iter().position(|s| !s.done);
    let destination =
        admin.then(|| format!("Partner Center will send referral events to {callback_url}."));
    view! {
        <section class="card setup" aria-label="Set up cosell" data-testid="setup">
            <h2>"Set up cosell"</h2>
            <p>"Four steps, in this order, and Partner Center's referrals start arriving as opportunities."</p>
            <ol class="steps">
                {steps.into_iter().enumerate().map(|(i, s)| {
                    let callback_url = callback_url.clone();
                    let label = s.label.clone();
                    let key = s.key.clone();
                    let action = (admin && !s.done).then(move || {
                        // Only the next step is the primary button: the order matters.
                        let class = if Some(i) == next { "primary" } else { "" };
                        match key.as_str() {
                            "flows" => view! {
                                <ActionForm action=activate attr:class="inline">
                                    <button type="submit" class=class>{label.clone()}</button>
                                </ActionForm>
                            }.into_any(),
                            "webhook" => view! {
                                <ActionForm action=register attr:class="inline">
                                    <input type="hidden" name="callback_url" value=callback_url/>
                                    {["referral_created", "referral_updated", "related_referral_created", "related_referral_updated"]
                                        .into_iter()
                                        .map(|event| view! { <input type="hidden" name=event value="on"/> })
                                        .collect_view()}
                                    <input type="hidden" name="overwrite" value="on"/>
                                    <button type="submit" class=class>{label.clone()}</button>
                                </ActionForm>
                            }.into_any(),
                            system => view! {
                                <form method="post" class="inline"
                                    action=format!("/connections/{system}/connect?return_to=overview")>
                                    <button type="submit" class=class>{label.clone()}</button>
                                </form>
                            }.into_any(),
                        }
                    });
                    view! {
                        <li data-step=s.key.clone() data-done=s.done.to_string()>
                            {if s.done {
                                view! { <span class="badge ok">"Done"</span>" "{s.label.clone()} }.into_any()
                            } else if admin {
                                action.into_any()
                            } else {
                                view! { {s.label.clone()}<span class="muted">" (a referrals admin does this)"</span> }.into_any()
                            }}
                        </li>
                    }
                }).collect_view()}
            </ol>
            {destination.map(|d| view! { <p class="muted">{d}</p> })}
        </section>
    }
}
