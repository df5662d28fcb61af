//! Runs: every run of every flow, newest first, filtered by flow, status, time and record; a run's input,
//! steps, child runs, resubmissions and audit events; resubmitting one failed run, or every failed run a
//! filter matches. A resubmission is a new run linked to the one it repeats.

use crate::error::AppError;
use crate::layout::Gate;
use crate::pages::audit::{AuditRow, AuditTable};
use crate::pages::{ShortId, query_string};
use cosell::domain::Access;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

/// At most this many runs are queued by one "Resubmit all failed"; the rest stay failed for the next.
#[cfg(feature = "ssr")]
const RESUBMIT_CAP: i64 = 500;

/// The filter as typed: empty fields mean "any".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunQuery {
    pub flow: String,
    pub status: String,
    pub record: String,
    pub from: String,
    pub to: String,
}

impl RunQuery {
    fn pairs(&self) -> [(&'static str, &str); 5] {
        [
            ("flow", &self.flow),
            ("status", &self.status),
            ("record", &self.record),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }

    /// The store's filter, or what is wrong with the one typed.
    #[cfg(feature = "ssr")]
    fn filter(
        &self,
        crm: cosell::domain::flows::Crm,
    ) -> Result<cosell::store::RunFilter, AppError> {
        use cosell::domain::flows::Flow;
        use cosell::domain::runs::RunStatus;
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let (since, until) = crate::pages::filter_window(&self.from, &self.to)?;
        Ok(cosell::store::RunFilter {
            flow: text(&self.flow)
                .map(|code| {
                    Flow::from_code(&code)
                        .filter(|f| f.exists_for(crm) || *f == Flow::Reconciliation)
                        .ok_or_else(|| AppError::Invalid(format!("There is no flow “{code}”.")))
                })
                .transpose()?,
            status: text(&self.status)
                .map(|code| {
                    RunStatus::from_code(&code)
                        .ok_or_else(|| AppError::Invalid(format!("There is no status “{code}”.")))
                })
                .transpose()?,
            record_id: text(&self.record),
            since,
            until,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub id: i64,
    pub flow: String,
    pub status: String,
    pub trigger: String,
    pub record_id: Option<String>,
    pub attempts: i64,
    pub created: String,
    pub finished: Option<String>,
    pub outcome: String,
    pub parent_run_id: Option<i64>,
    pub resubmitted_from: Option<i64>,
    /// Failed or skipped, and not a child run: the dashboard offers "Resubmit".
    pub resubmittable: bool,
    /// API calls the run made (as of its last end), to Partner Center and to the CRM.
    pub partner_center_calls: i64,
    pub crm_calls: i64,
}

/// One line of "API calls today": a flow (or cosell outside runs) and what it spent with one system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowCallsRow {
    pub flow: String,
    pub system: String,
    pub calls: i64,
}

#[cfg(feature = "ssr")]
impl RunRow {
    fn new(run: cosell::store::Run, crm: cosell::domain::flows::Crm) -> Self {
        use cosell::domain::runs::{RunStatus, RunTrigger};
        RunRow {
            id: run.id,
            flow: run.flow.name(crm),
            status: run.status.as_code().into(),
            trigger: match run.trigger {
                RunTrigger::Webhook => "Partner Center webhook",
                RunTrigger::Manual => "Started from the dashboard",
                RunTrigger::Child => "Called by its parent run",
                RunTrigger::Resubmit => "Resubmission",
                RunTrigger::CrmChange => "Change in the CRM",
                RunTrigger::Schedule => "cosell's schedule",
                RunTrigger::Reconciliation => "Found by a reconciliation",
            }
            .into(),
            record_id: run.record_id,
            attempts: run.attempts,
            created: crate::pages::when(run.created_at),
            finished: run.finished_at.map(crate::pages::when),
            outcome: run.outcome.unwrap_or_default(),
            resubmittable: matches!(run.status, RunStatus::Failed | RunStatus::Skipped)
                && run.parent_run_id.is_none(),
            parent_run_id: run.parent_run_id,
            resubmitted_from: run.resubmitted_from,
            partner_center_calls: run.calls.partner_center,
            crm_calls: run.calls.crm,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunList {
    pub rows: Vec<RunRow>,
    /// Where the next page starts, when there is one.
    pub older: Option<i64>,
    /// The flows of this installation's CRM: (code, name), for the filter.
    pub flows: Vec<(String, String)>,
    /// Today's (UTC) API calls by flow and system, most first.
    pub calls_today: Vec<FlowCallsRow>,
}

#[server(endpoint = "list_runs")]
pub async fn list_runs(query: RunQuery, before: Option<i64>) -> Result<RunList, AppError> {
    use crate::auth::server::{context, internal, require};
    use crate::pages::PAGE_SIZE;
    use cosell::domain::flows::activation_order;
    require(Access::Viewer).await?;
    let ctx = context()?;
    let crm = ctx.engine.crm();
    let filter = query.filter(crm)?;
    let runs = ctx
        .store
        .list_runs(&filter, before, PAGE_SIZE + 1)
        .await
        .map_err(internal)?;
    let (runs, older) = crate::pages::page_of(runs, |r| r.id);
    let calls_today = ctx
        .store
        .api_calls_by_flow(time::OffsetDateTime::now_utc())
        .await
        .map_err(internal)?
        .into_iter()
        .map(|c| FlowCallsRow {
            flow: c.flow.map_or_else(
                || "Outside runs (change feed, checks)".into(),
                |f| f.name(crm),
            ),
            system: cosell::domain::connection::System::from_code(&c.system)
                .map_or(c.system, |s| s.label().to_string()),
            calls: c.calls,
        })
        .collect();
    Ok(RunList {
        rows: runs.into_iter().map(|r| RunRow::new(r, crm)).collect(),
        older,
        calls_today,
        flows: activation_order(crm)
            .into_iter()
            .chain([cosell::domain::flows::Flow::Reconciliation])
            .map(|f| (f.as_code().to_string(), f.name(crm)))
            .collect(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    pub seq: i64,
    pub name: String,
    pub outcome: String,
    pub detail: String,
    pub api_calls: i64,
    pub duration_ms: i64,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    pub run: RunRow,
    /// The input the run started from (what a resubmission repeats), pretty-printed.
    pub input: String,
    pub steps: Vec<StepRow>,
    /// Child runs and resubmissions of this run.
    pub related: Vec<RunRow>,
    pub audit: Vec<AuditRow>,
    /// How far a reconciliation has come.
    pub progress: Option<cosell::domain::runs::Progress>,
}

#[server(endpoint = "run_detail")]
pub async fn run_detail(id: i64) -> Result<RunView, AppError> {
    use crate::auth::server::{context, internal, require};
    require(Access::Viewer).await?;
    let ctx = context()?;
    let crm = ctx.engine.crm();
    let run = ctx
        .store
        .run(id)
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::Invalid(format!("There is no run {id}.")))?;
    let input = serde_json::to_string_pretty(&run.input).map_err(internal)?;
    let steps = ctx
        .store
        .run_steps(id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|s| StepRow {
            seq: s.seq,
            name: s.name,
            outcome: s.outcome.as_code().into(),
            detail: s.detail,
            api_calls: s.api_calls,
            duration_ms: s.duration_ms,
            at: crate::pages::when(s.at),
        })
        .collect();
    let related = ctx
        .store
        .related_runs(id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|r| RunRow::new(r, crm))
        .collect();
    let audit = ctx
        .store
        .list_audit(
            &cosell::store::AuditFilter {
                run_id: Some(id),
                ..Default::default()
            },
            None,
            200,
        )
        .await
        .map_err(internal)?
        .into_iter()
        .map(AuditRow::from)
        .collect();
    let progress = ctx.store.progress(id).await.map_err(internal)?;
    Ok(RunView {
        run: RunRow::new(run, crm),
        input,
        steps,
        related,
        audit,
        progress,
    })
}

/// Queues a failed (or skipped) run again, as a new run linked to it, and opens the new run's page.
#[server(endpoint = "resubmit_run")]
pub async fn resubmit_run(id: i64) -> Result<String, AppError> {
    use crate::auth::server::{action_error, context, require};
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    let again = ctx
        .engine
        .resubmit(id, &me.name)
        .await
        .map_err(action_error)?;
    leptos_axum::redirect(&format!("/runs/{again}"));
    Ok(format!("Run {id} resubmitted as run {again}."))
}

/// Queues again every failed run the filter matches (not child runs, not runs already resubmitted).
#[server(endpoint = "resubmit_failed")]
pub async fn resubmit_failed(
    flow: String,
    status: String,
    record: String,
    from: String,
    to: String,
) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    let query = RunQuery {
        flow,
        status,
        record,
        from,
        to,
    };
    let filter = query.filter(ctx.engine.crm())?;
    if filter
        .status
        .is_some_and(|s| s != cosell::domain::runs::RunStatus::Failed)
    {
        return Err(AppError::Invalid(
            "The filter shows no failed runs: set Status to “Failed” or “Any”.".into(),
        ));
    }
    let again = ctx
        .engine
        .resubmit_failed(&filter, RESUBMIT_CAP, &me.name)
        .await
        .map_err(internal)?;
    Ok(match again.len() {
        0 => "Nothing to resubmit: no failed run matching the filter is waiting (runs resubmitted before are not queued twice).".into(),
        1 => "1 failed run resubmitted.".into(),
        n if n as i64 == RESUBMIT_CAP => format!(
            "{n} failed runs resubmitted (at most {RESUBMIT_CAP} at a time: resubmit again for the rest)."
        ),
        n => format!("{n} failed runs resubmitted."),
    })
}

fn status_label(code: &str) -> &'static str {
    cosell::domain::runs::RunStatus::from_code(code).map_or("Unknown", |s| s.label())
}

/// The "Resubmit" button of one run.
#[component]
fn ResubmitButton(action: ServerAction<ResubmitRun>, id: i64) -> impl IntoView {
    view! {
        <ActionForm action attr:class="inline">
            <input type="hidden" name="id" value=id.to_string()/>
            <button type="submit" aria-label=format!("Resubmit run {id}")>"Resubmit"</button>
        </ActionForm>
    }
}

/// A run's calls in a few characters: "PC 1 · CRM 3", or "—" for none.
fn calls_label(partner_center: i64, crm: i64) -> String {
    match (partner_center, crm) {
        (0, 0) => "—".into(),
        (pc, 0) => format!("PC {pc}"),
        (0, crm) => format!("CRM {crm}"),
        (pc, crm) => format!("PC {pc} · CRM {crm}"),
    }
}

/// Today's calls by flow: where the day's allocation went.
#[component]
fn CallsToday(rows: Vec<FlowCallsRow>) -> impl IntoView {
    (!rows.is_empty()).then(|| {
        view! {
            <details class="card" data-testid="calls-today">
                <summary>"API calls today (UTC), by flow"</summary>
                <table class="list">
                    <thead><tr>
                        <th scope="col">"Flow"</th><th scope="col">"System"</th><th scope="col">"Calls"</th>
                    </tr></thead>
                    <tbody>
                        {rows.into_iter().map(|c| view! {
                            <tr><td data-label="Flow">{c.flow}</td><td data-label="System">{c.system}</td><td data-label="Calls" class="num">{c.calls}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </details>
        }
    })
}

/// Runs as a table; shared by the list and a run's related runs.
#[component]
fn RunTable(rows: Vec<RunRow>, resubmit: Option<ServerAction<ResubmitRun>>) -> impl IntoView {
    view! {
        <table class="list" data-testid="runs">
            <thead><tr>
                <th scope="col">"Run"</th><th scope="col">"Flow"</th><th scope="col">"Status"</th>
                <th scope="col">"Record"</th><th scope="col">"Started"</th><th scope="col">"Trigger"</th>
                <th scope="col">"Attempts"</th><th scope="col">"API calls"</th><th scope="col">"Outcome"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|r| {
                    let button = resubmit
                        .filter(|_| r.resubmittable)
                        .map(|action| view! { <ResubmitButton action id=r.id/> });
                    view! {
                        <tr data-run=r.id.to_string() data-status=r.status.clone()>
                            <td data-label="Run"><a href=format!("/runs/{}", r.id)>{format!("#{}", r.id)}</a></td>
                            <td data-label="Flow">{r.flow}</td>
                            <td data-label="Status"><span class=format!("badge {}", r.status)>{status_label(&r.status)}</span></td>
                            <td data-label="Record">{r.record_id.map(|id| view! {
                                <a href=format!("/runs{}", query_string(&[("record", &id)]))><ShortId id=id.clone()/></a>
                            })}</td>
                            <td data-label="Started">{r.created}</td>
                            <td data-label="Trigger">{r.trigger}</td>
                            <td data-label="Attempts" class="num">{r.attempts}</td>
                            <td data-label="API calls" data-partner-center-calls=r.partner_center_calls.to_string()
                                data-crm-calls=r.crm_calls.to_string()>
                                {calls_label(r.partner_center_calls, r.crm_calls)}
                            </td>
                            <td data-label="Outcome" class="wrap">{r.outcome}" "{button}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn RunsPage() -> impl IntoView {
    let query_map = use_query_map();
    let param = move |name: &str| query_map.with(|q| q.get(name).unwrap_or_default());
    let query = move || RunQuery {
        flow: param("flow"),
        status: param("status"),
        record: param("record"),
        from: param("from"),
        to: param("to"),
    };
    let resubmit = ServerAction::<ResubmitRun>::new();
    let resubmit_all = ServerAction::<ResubmitFailed>::new();
    let runs = Resource::new(
        move || {
            (
                query(),
                param("before").parse::<i64>().ok(),
                resubmit.version().get(),
                resubmit_all.version().get(),
                crate::live::changes(),
            )
        },
        |(q, before, _, _, _)| list_runs(q, before),
    );
    view! {
        <Gate needed=Access::Viewer title="Runs" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            view! {
                <p>"Every run of every flow, newest first. A failed run says why; once the cause is fixed, resubmit it."</p>
                {move || crate::pages::action_result(resubmit.value().get())}
                {move || crate::pages::action_result(resubmit_all.value().get())}
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        let q = query();
                        match runs.await {
                            Err(e) => view! {
                                <FilterForm q flows=Vec::new()/>
                                <p class="error" role="alert">{e.to_string()}</p>
                            }.into_any(),
                            Ok(list) => {
                                let older = list.older.map(|before| {
                                    let before = before.to_string();
                                    let mut pairs = q.pairs().to_vec();
                                    pairs.push(("before", &before));
                                    let href = format!("/runs{}", query_string(&pairs));
                                    view! { <a class="button" href=href>"Older runs"</a> }
                                });
                                let newest = (!param("before").is_empty()).then(|| {
                                    let href = format!("/runs{}", query_string(&q.pairs()));
                                    view! { <a class="button" href=href>"Newest runs"</a> }
                                });
                                let all = admin.then(|| {
                                    let q = q.clone();
                                    view! {
                                        <ActionForm action=resubmit_all attr:class="inline">
                                            {q.pairs().into_iter().map(|(k, v)| view! {
                                                <input type="hidden" name=k value=v.to_string()/>
                                            }).collect_view()}
                                            <button type="submit">"Resubmit all failed runs matching the filter"</button>
                                        </ActionForm>
                                    }
                                });
                                let table = if list.rows.is_empty() {
                                    view! { <p class="empty">"No runs match."</p> }.into_any()
                                } else {
                                    view! { <RunTable rows=list.rows resubmit=admin.then_some(resubmit)/> }.into_any()
                                };
                                view! {
                                    <FilterForm q flows=list.flows/>
                                    <CallsToday rows=list.calls_today/>
                                    {all}
                                    {table}
                                    <nav class="pager" aria-label="Pages">{newest}{older}</nav>
                                }.into_any()
                            }
                        }
                    })}
                </Transition>
            }.into_any()
        }/>
    }
}

/// The filter, as a plain GET form: the filtered list has an address to bookmark or share.
#[component]
fn FilterForm(q: RunQuery, flows: Vec<(String, String)>) -> impl IntoView {
    view! {
        <form method="get" action="/runs" class="filters" aria-label="Filter runs">
            <label>"Flow"
                <select name="flow">
                    <option value="" selected=q.flow.is_empty()>"Any"</option>
                    {flows.into_iter().map(|(code, name)| {
                        let selected = code == q.flow;
                        view! { <option value=code selected=selected>{name}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Status"
                <select name="status">
                    <option value="" selected=q.status.is_empty()>"Any"</option>
                    {cosell::domain::runs::RunStatus::ALL.iter().map(|s| {
                        let code = s.as_code();
                        view! { <option value=code selected=code == q.status>{s.label()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Record (referral or opportunity id)"
                <input type="search" name="record" value=q.record/>
            </label>
            <label>"From (UTC)"
                <input type="datetime-local" name="from" value=q.from/>
            </label>
            <label>"Before (UTC)"
                <input type="datetime-local" name="to" value=q.to/>
            </label>
            <button type="submit">"Filter"</button>
            <a href="/runs">"Clear"</a>
        </form>
    }
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let resubmit = ServerAction::<ResubmitRun>::new();
    let detail = Resource::new(
        move || {
            (
                params.with(|p| p.get("id").unwrap_or_default()),
                resubmit.version().get(),
                crate::live::changes(),
            )
        },
        |(id, _, _)| async move {
            match id.parse::<i64>() {
                Ok(id) => run_detail(id).await,
                Err(_) => Err(AppError::Invalid(format!("“{id}” is not a run number."))),
            }
        },
    );
    // While a run with progress is still working, its page reads it again every second (without
    // JavaScript, reloading the page shows the same).
    Effect::new(move |_| {
        if let Some(Ok(d)) = detail.get()
            && d.progress.is_some()
            && matches!(d.run.status.as_str(), "queued" | "running")
        {
            set_timeout(move || detail.refetch(), std::time::Duration::from_secs(1));
        }
    });
    view! {
        <Gate needed=Access::Viewer title="Run" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            view! {
                <p><a href="/runs">"← All runs"</a></p>
                {move || crate::pages::action_result(resubmit.value().get())}
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match detail.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(d) => run_detail_view(d, admin.then_some(resubmit)).into_any(),
                        }
                    })}
                </Transition>
            }.into_any()
        }/>
    }
}

fn run_detail_view(d: RunView, resubmit: Option<ServerAction<ResubmitRun>>) -> impl IntoView {
    let r = d.run;
    let button = resubmit
        .filter(|_| r.resubmittable)
        .map(|action| view! { <ResubmitButton action id=r.id/> });
    let children: Vec<RunRow> = d
        .related
        .iter()
        .filter(|c| c.parent_run_id == Some(r.id))
        .cloned()
        .collect();
    let resubmissions: Vec<RunRow> = d
        .related
        .into_iter()
        .filter(|c| c.resubmitted_from == Some(r.id))
        .collect();
    view! {
        <section class="card" data-testid="run" data-run=r.id.to_string() data-status=r.status.clone()>
            <h2>{format!("Run #{} · {}", r.id, r.flow)}</h2>
            <dl>
                <dt>"Status"</dt>
                <dd><span class=format!("badge {}", r.status)>{status_label(&r.status)}</span></dd>
                <dt>"Outcome"</dt><dd data-testid="outcome">{r.outcome.clone()}</dd>
                <dt>"Trigger"</dt><dd>{r.trigger.clone()}</dd>
                <dt>"Record"</dt><dd>{r.record_id.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Started"</dt><dd>{r.created.clone()}</dd>
                <dt>"Finished"</dt><dd>{r.finished.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>"Attempts"</dt><dd>{r.attempts}</dd>
                {r.parent_run_id.map(|p| view! {
                    <dt>"Called by"</dt><dd><a href=format!("/runs/{p}")>{format!("Run #{p}")}</a></dd>
                })}
                {r.resubmitted_from.map(|p| view! {
                    <dt>"Resubmission of"</dt><dd><a href=format!("/runs/{p}")>{format!("Run #{p}")}</a></dd>
                })}
            </dl>
            {button}
        </section>
        {d.progress.map(|p| {
            let working = matches!(r.status.as_str(), "queued" | "running");
            view! {
                <section class="card" data-testid="progress" data-compared=p.compared.to_string()
                    data-total=p.total.to_string() data-differences=p.differences.to_string()
                    data-queued=p.queued.to_string()>
                    <h2>"Progress"</h2>
                    <progress max=p.total.max(1).to_string() value=p.compared.to_string()
                        aria-label="Records compared">{format!("{} %", p.percent())}</progress>
                    <p>{format!(
                        "{} of {} records compared · {} differed · {} {} queued",
                        p.compared, p.total, p.differences, p.queued,
                        if p.queued == 1 { "run" } else { "runs" },
                    )}</p>
                    {working.then(|| view! {
                        <p class="muted">"Still working: this updates by itself, or "<a href=format!("/runs/{}", r.id)>"reload"</a>"."</p>
                    })}
                </section>
            }
        })}
        <h2>"Steps"</h2>
        {if d.steps.is_empty() {
            view! { <p class="empty">"No steps recorded."</p> }.into_any()
        } else {
            view! {
                <table class="list" data-testid="steps">
                    <thead><tr>
                        <th scope="col">"#"</th><th scope="col">"Step"</th><th scope="col">"Result"</th>
                        <th scope="col">"Detail"</th><th scope="col">"API calls"</th><th scope="col">"Took"</th><th scope="col">"At"</th>
                    </tr></thead>
                    <tbody>
                        {d.steps.into_iter().map(|s| view! {
                            <tr data-outcome=s.outcome.clone()>
                                <td data-label="#">{s.seq}</td><td data-label="Step">{s.name}</td>
                                <td data-label="Result"><span class=format!("badge {}", s.outcome)>{s.outcome.clone()}</span></td>
                                <td data-label="Detail" class="wrap">{s.detail}</td><td data-label="API calls" class="num">{s.api_calls}</td>
                                <td data-label="Took" class="nowrap">{format!("{} ms", s.duration_ms)}</td><td data-label="At">{s.at}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        {(!children.is_empty()).then(|| view! {
            <h2>"Child runs"</h2>
            <RunTable rows=children resubmit=None/>
        })}
        {(!resubmissions.is_empty()).then(|| view! {
            <h2>"Resubmitted as"</h2>
            <RunTable rows=resubmissions resubmit=None/>
        })}
        <h2>"Audit events"</h2>
        {if d.audit.is_empty() {
            view! { <p class="empty">"This run changed nothing."</p> }.into_any()
        } else {
            view! { <AuditTable rows=d.audit/> }.into_any()
        }}
        <details>
            <summary>"Input"</summary>
            <pre>{d.input}</pre>
        </details>
    }
}
