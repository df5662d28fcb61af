//! Diagnostics: the troubleshooting FAQ, answered by cosell about itself. One row per check with its
//! state, why, what was looked at and when, and the fix: for admins a button (a plain form, so it works
//! without JavaScript) calling the dashboard's existing action, for viewers the fix in words.

use crate::error::AppError;
use crate::layout::Gate;
use crate::pages::flows::{ActivateAll, RegisterWebhook};
use crate::pages::runs::ResubmitFailed;
use cosell::domain::Access;
use cosell::domain::diagnostics::{Check, CheckState, Fix, FixAction, Report};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Every check, from the report kept for a minute (or looked at now when there is none).
#[server(endpoint = "diagnostics")]
pub async fn diagnostics() -> Result<Report, AppError> {
    use crate::auth::server::{context, require};
    use cosell::engine::diagnostics::Freshness;
    require(Access::Viewer).await?;
    let ctx = context()?;
    Ok(ctx
        .engine
        .diagnose(&ctx.callback_url, Freshness::Cached)
        .await)
}

/// "Run checks again": looks now, whatever was kept.
#[server(endpoint = "run_diagnostics")]
pub async fn run_diagnostics() -> Result<String, AppError> {
    use crate::auth::server::{context, require};
    use cosell::engine::diagnostics::Freshness;
    require(Access::Admin).await?;
    let ctx = context()?;
    let report = ctx.engine.diagnose(&ctx.callback_url, Freshness::Now).await;
    Ok(match report.needing_attention().len() {
        0 => format!(
            "All {} checks ran: nothing needs attention.",
            report.checks.len()
        ),
        1 => format!("All {} checks ran: 1 needs attention.", report.checks.len()),
        n => format!(
            "All {} checks ran: {n} need attention.",
            report.checks.len()
        ),
    })
}

/// "Reconcile now": compares Partner Center with the CRM and queues a run for each record that differs.
/// One reconciliation waits at most (asking again opens the waiting one). Opens its run, whose page
/// shows the progress.
#[server(endpoint = "reconcile_now")]
pub async fn reconcile_now() -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::runs::RunTrigger;
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    let id = ctx
        .engine
        .queue_reconciliation(RunTrigger::Manual, &format!("asked by {}", me.name))
        .await
        .map_err(internal)?;
    leptos_axum::redirect(&format!("/runs/{id}"));
    Ok(format!("Reconciliation queued as run {id}."))
}

/// "Send a test event": Partner Center sends a test delivery to the registered URL (adding
/// `test-created` to the registration if it lacks it); `webhook-arriving` says when it arrives.
#[server(endpoint = "send_test_event")]
pub async fn send_test_event() -> Result<String, AppError> {
    use crate::auth::server::{context, require};
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    match ctx.engine.send_test_event(&me.name).await {
        Ok(sent) => Ok(format!(
            "Partner Center was asked for a test delivery ({}); it should arrive within a minute.",
            sent.correlation_id
        )),
        Err(e) => {
            tracing::warn!(error = %e, "could not send a test event");
            Err(AppError::Invalid(e.to_string()))
        }
    }
}

/// What the Overview says of the last report, without looking again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionLine {
    pub checks: usize,
    pub need_attention: usize,
    /// The first check to act on (failing before attention): its id and title.
    pub first: Option<(String, String)>,
    pub at: String,
}

#[server(endpoint = "diagnostics_summary")]
pub async fn diagnostics_summary() -> Result<Option<AttentionLine>, AppError> {
    use crate::auth::server::{context, require};
    require(Access::Viewer).await?;
    let ctx = context()?;
    Ok(ctx.engine.last_diagnosis().map(|report| {
        let need = report.needing_attention();
        AttentionLine {
            checks: report.checks.len(),
            need_attention: need.len(),
            first: need
                .first()
                .map(|c| (c.id.as_code().to_string(), c.id.title().to_string())),
            at: crate::pages::when(report.at),
        }
    }))
}

/// The Overview's line: how many checks need attention, linked to the first one.
#[component]
pub fn DiagnosticsLine() -> impl IntoView {
    let summary = Resource::new(|| (), |_| diagnostics_summary());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let line = match summary.await {
                    Err(_) => None,
                    Ok(None) => Some(view! {
                        "Diagnostics have not run since cosell started: "
                        <a href="/diagnostics">"run them"</a>"."
                    }.into_any()),
                    Ok(Some(s)) => Some(match s.first {
                        Some((id, title)) => view! {
                            {format!("Diagnostics ({}): {} of {} need attention. First: ", s.at, s.need_attention, s.checks)}
                            <a href=format!("/diagnostics#{id}") data-check-link=id>{title}</a>"."
                        }.into_any(),
                        None => view! {
                            {format!("Diagnostics ({}): all {} checks are fine or do not apply. ", s.at, s.checks)}
                            <a href="/diagnostics">"See them"</a>"."
                        }.into_any(),
                    }),
                };
                line.map(|l| view! { <p class="card" data-testid="diagnostics-summary">{l}</p> })
            })}
        </Suspense>
    }
}

/// The actions a fix may call, one of each per page.
#[derive(Clone, Copy)]
struct FixActions {
    activate_all: ServerAction<ActivateAll>,
    register: ServerAction<RegisterWebhook>,
    resubmit: ServerAction<ResubmitFailed>,
    reconcile: ServerAction<ReconcileNow>,
    test_event: ServerAction<SendTestEvent>,
}

#[component]
pub fn DiagnosticsPage() -> impl IntoView {
    let again = ServerAction::<RunDiagnostics>::new();
    let reconcile = ServerAction::<ReconcileNow>::new();
    let actions = FixActions {
        activate_all: ServerAction::<ActivateAll>::new(),
        register: ServerAction::<RegisterWebhook>::new(),
        resubmit: ServerAction::<ResubmitFailed>::new(),
        reconcile,
        test_event: ServerAction::<SendTestEvent>::new(),
    };
    // A fix makes the engine's kept report stale, so reading it again shows the fix's effect.
    let report = Resource::new(
        move || {
            (
                again.version().get(),
                actions.activate_all.version().get(),
                actions.register.version().get(),
                actions.resubmit.version().get(),
                actions.reconcile.version().get(),
                actions.test_event.version().get(),
            )
        },
        |_| diagnostics(),
    );
    view! {
        <Gate needed=Access::Viewer title="Diagnostics" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            view! {
                <p>"The questions of the co-sell troubleshooting FAQ, answered by cosell about itself: each check says what it looked at and when, and what fixes it. Checks are kept for a minute; an admin’s fix makes them look again."</p>
                {move || crate::pages::action_result(again.value().get())}
                {move || crate::pages::action_result(reconcile.value().get())}
                {move || crate::pages::action_result(actions.activate_all.value().get())}
                {move || crate::pages::action_result(actions.register.value().get())}
                {move || crate::pages::action_result(actions.resubmit.value().get())}
                {move || crate::pages::action_result(actions.test_event.value().get())}
                <Suspense fallback=|| view! { <p class="loading">"Running the checks…"</p> }>
                    {move || Suspend::new(async move {
                        match report.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(r) => view! {
                                <p class="muted" data-testid="diagnostics-at">{format!("Checked {}.", crate::pages::when(r.at))}</p>
                                {admin.then(|| view! {
                                    <ActionForm action=again attr:class="inline">
                                        <button type="submit">"Run checks again"</button>
                                    </ActionForm>
                                    <ActionForm action=reconcile attr:class="inline" attr:data-testid="reconcile">
                                        <button type="submit" title="Compare Partner Center with the CRM and queue a run for each record that differs">"Reconcile now"</button>
                                    </ActionForm>
                                })}
                                <ul class="health diagnostics" data-testid="diagnostics" aria-label="Diagnostics">
                                    {r.checks.into_iter().map(|c| check_row(c, admin, actions)).collect_view()}
                                </ul>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            }.into_any()
        }/>
    }
}

/// The Overview's badge classes, so both pages read alike.
fn state_class(state: CheckState) -> &'static str {
    match state {
        CheckState::Ok => "ok",
        CheckState::Attention => "warn",
        CheckState::Failing => "bad",
        CheckState::NotApplicable => "na",
    }
}

fn check_row(c: Check, admin: bool, actions: FixActions) -> impl IntoView {
    let id = c.id.as_code();
    let class = state_class(c.state);
    view! {
        <li id=id class=format!("check {class}") data-check=id data-state=c.state.as_code()>
            <span class=format!("badge {class}")>{c.state.label()}</span>
            <strong>{c.id.title()}</strong>
            <div class="detail">
                <p class="why">{c.why}</p>
                {(!c.details.is_empty()).then(|| view! {
                    <ul class="found">{c.details.into_iter().map(|d| view! { <li>{d}</li> }).collect_view()}</ul>
                })}
                <p class="muted looked">{format!("Looked at {}: {}", crate::pages::when(c.at), c.looked_at)}</p>
            </div>
            <div class="fix">{c.fix.map(|f| fix_view(f, admin, actions))}</div>
        </li>
    }
}

/// An admin gets the button; a viewer the fix in words. Links are for everyone.
fn fix_view(fix: Fix, admin: bool, actions: FixActions) -> AnyView {
    match fix {
        Fix::Link { href, label } => view! { <a href=href>{label}</a> }.into_any(),
        Fix::Action(action) if !admin => {
            view! { <span class="muted" data-fix=action.endpoint()>{action.describe()}</span> }
                .into_any()
        }
        Fix::Action(action) => {
            let label = action.label();
            match action {
                FixAction::ActivateAll => view! {
                    <ActionForm action=actions.activate_all attr:class="inline">
                        <button type="submit" class="primary">{label}</button>
                    </ActionForm>
                }
                .into_any(),
                FixAction::RegisterWebhook { callback_url } => view! {
                    <ActionForm action=actions.register attr:class="inline">
                        <input type="hidden" name="callback_url" value=callback_url/>
                        <input type="hidden" name="referral_created" value="on"/>
                        <input type="hidden" name="referral_updated" value="on"/>
                        <input type="hidden" name="related_referral_created" value="on"/>
                        <input type="hidden" name="related_referral_updated" value="on"/>
                        <input type="hidden" name="overwrite" value="on"/>
                        <button type="submit" class="primary">{label}</button>
                    </ActionForm>
                }
                .into_any(),
                FixAction::SendTestEvent => view! {
                    <ActionForm action=actions.test_event attr:class="inline">
                        <button type="submit" class="primary">{label}</button>
                    </ActionForm>
                }
                .into_any(),
                FixAction::Reconcile => view! {
                    <ActionForm action=actions.reconcile attr:class="inline">
                        <button type="submit" class="primary">{label}</button>
                    </ActionForm>
                }
                .into_any(),
                FixAction::ResubmitFailed { from } => view! {
                    <ActionForm action=actions.resubmit attr:class="inline">
                        <input type="hidden" name="flow" value=""/>
                        <input type="hidden" name="status" value="failed"/>
                        <input type="hidden" name="record" value=""/>
                        <input type="hidden" name="from" value=from/>
                        <input type="hidden" name="to" value=""/>
                        <button type="submit" class="primary">{label}</button>
                    </ActionForm>
                }
                .into_any(),
            }
        }
    }
}
