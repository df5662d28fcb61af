//! Opportunities: the CRM's opportunities as the change feed keeps them, searchable by name, CRM id and
//! referral id, by name with keyset pages; each with its "Sync with Partner Center" switch (written
//! through to the CRM), its readiness (the first failing rule with its fix; the opportunity's page has
//! them all), its referral, the last result and "Sync now". An opportunity's page tells its whole story (the audit timeline).

use crate::error::AppError;
use crate::layout::Gate;
use crate::pages::audit::{AuditRow, AuditTable};
use crate::pages::{ShortId, query_string};
use cosell::domain::Access;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

/// One failing rule, as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemView {
    pub rule: String,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpportunityRow {
    pub crm_id: String,
    pub name: String,
    pub sync: bool,
    pub state: String,
    pub referral_id: Option<String>,
    pub referral_link: Option<String>,
    /// None: never checked; empty: ready. In a list, only the first failing rule (see `more_problems`).
    pub problems: Option<Vec<ProblemView>>,
    /// Failing rules left out of `problems` (the list sends what a person reads first; the
    /// opportunity's own page has them all).
    pub more_problems: usize,
    pub last_result: Option<String>,
    pub last_run_id: Option<i64>,
    pub last_synced_at: Option<String>,
}

#[cfg(feature = "ssr")]
impl From<cosell::store::MirroredOpportunity> for OpportunityRow {
    fn from(m: cosell::store::MirroredOpportunity) -> Self {
        use cosell::domain::opportunity::OpportunityState;
        OpportunityRow {
            crm_id: m.seen.crm_id,
            name: m.seen.name,
            sync: m.seen.sync,
            state: match m.seen.state {
                OpportunityState::Open => "Open",
                OpportunityState::Won => "Won",
                OpportunityState::Lost => "Lost",
            }
            .into(),
            referral_id: m.seen.referral_id,
            referral_link: m.seen.referral_link,
            problems: m.problems.map(|problems| {
                problems
                    .iter()
                    .map(|p| ProblemView {
                        rule: p.rule().into(),
                        field: p.field().into(),
                        message: p.message(),
                    })
                    .collect()
            }),
            last_result: m.last_result,
            last_run_id: m.last_run_id,
            last_synced_at: m.last_synced_at.map(crate::pages::when),
            more_problems: 0,
        }
    }
}

#[cfg(feature = "ssr")]
impl OpportunityRow {
    /// The row as a list shows it: the first failing rule, and how many more there are.
    fn first_problem_only(mut self) -> Self {
        if let Some(problems) = &mut self.problems {
            self.more_problems = problems.len().saturating_sub(1);
            problems.truncate(1);
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpportunityList {
    pub rows: Vec<OpportunityRow>,
    /// Where the next page starts (name, id), when there is one.
    pub next: Option<(String, String)>,
}

#[server(endpoint = "list_opportunities")]
pub async fn list_opportunities(
    search: String,
    after_name: String,
    after_id: String,
) -> Result<OpportunityList, AppError> {
    use crate::auth::server::{context, internal, require};
    use crate::pages::PAGE_SIZE;
    require(Access::Viewer).await?;
    let ctx = context()?;
    let after = (!after_id.is_empty()).then_some((after_name, after_id));
    let rows = ctx
        .store
        .list_opportunities(Some(&search), after.as_ref(), PAGE_SIZE + 1)
        .await
        .map_err(internal)?;
    let (rows, next) =
        crate::pages::page_of(rows, |o| (o.seen.name.clone(), o.seen.crm_id.clone()));
    Ok(OpportunityList {
        rows: rows
            .into_iter()
            .map(|o| OpportunityRow::from(o).first_problem_only())
            .collect(),
        next,
    })
}

#[cfg(feature = "ssr")]
fn switch_error(e: cosell::engine::EngineError, crm: &str) -> AppError {
    use cosell::engine::EngineError;
    use cosell::engine::crm::CrmError;
    match e {
        EngineError::Store(e) => crate::auth::server::internal(e),
        EngineError::Crm(CrmError::NotFound(_)) => AppError::Invalid(format!(
            "The opportunity no longer exists in {crm}: it leaves the list at the next read of the CRM's changes."
        )),
        EngineError::Crm(other) => AppError::Invalid(other.to_string()),
    }
}

/// Refuses an id that is not in the list (a typo, or a forged form), before any work.
#[cfg(feature = "ssr")]
async fn known_opportunity(
    ctx: &crate::auth::server::ServerContext,
    crm_id: &str,
) -> Result<(), AppError> {
    match ctx
        .store
        .opportunity(crm_id)
        .await
        .map_err(crate::auth::server::internal)?
    {
        Some(_) => Ok(()),
        None => Err(AppError::Invalid(format!(
            "There is no opportunity {crm_id} in the list."
        ))),
    }
}

/// Switches "Sync with Partner Center" in the CRM, then runs "CRM to Partner Center".
#[server(endpoint = "set_sync")]
pub async fn set_sync(crm_id: String, on: String) -> Result<String, AppError> {
    use crate::auth::server::{context, require};
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    known_opportunity(&ctx, &crm_id).await?;
    let on = on == "true";
    let crm = ctx.engine.crm().label();
    let run = ctx
        .engine
        .set_sync(&crm_id, on, &me.name)
        .await
        .map_err(|e| switch_error(e, crm))?;
    Ok(format!(
        "Sync with Partner Center is {} in {crm}{}.",
        if on { "on" } else { "off" },
        run.map(|id| format!("; run {id} is on its way"))
            .unwrap_or_default()
    ))
}

/// Queues "CRM to Partner Center" for one opportunity now.
#[server(endpoint = "sync_now")]
pub async fn sync_now(crm_id: String) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    require(Access::Admin).await?;
    let ctx = context()?;
    known_opportunity(&ctx, &crm_id).await?;
    Ok(
        match ctx
            .engine
            .queue_opportunity(&crm_id, cosell::domain::runs::RunTrigger::Manual)
            .await
            .map_err(internal)?
        {
            Some(id) => format!("Run {id} is on its way."),
            None => "A run for this opportunity is already waiting.".into(),
        },
    )
}

/// Reads the opportunity from the CRM and checks every rule now, sending nothing to Partner Center.
#[server(endpoint = "check_opportunity")]
pub async fn check_opportunity(crm_id: String) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::runs::RunStatus;
    // A check records a run and the result: a change, however small, so an admin's.
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    known_opportunity(&ctx, &crm_id).await?;
    let done = match ctx.engine.check_opportunity(&crm_id, &me.name).await {
        Ok(done) => done,
        Err(cosell::store::StoreError::Busy(_)) => {
            return Err(AppError::Invalid(
                "A run for this opportunity is in progress: check again in a moment.".into(),
            ));
        }
        Err(e) => return Err(internal(e)),
    };
    match done.status {
        RunStatus::Succeeded => Ok(done.outcome),
        _ => Err(AppError::Invalid(done.outcome)),
    }
}

#[component]
pub fn OpportunitiesPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let switch = ServerAction::<SetSync>::new();
    let now = ServerAction::<SyncNow>::new();
    let checking = ServerAction::<CheckOpportunity>::new();
    let list = Resource::new(
        move || {
            (
                param("q"),
                param("after_name"),
                param("after_id"),
                switch.version().get(),
                now.version().get(),
                checking.version().get(),
                crate::live::changes(),
            )
        },
        |(q, name, id, _, _, _, _)| list_opportunities(q, name, id),
    );
    view! {
        <Gate needed=Access::Viewer title="Opportunities" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            view! {
                <p>"The opportunities in the CRM, kept current from its change feed. Only those with “Sync with Partner Center” on are shared; each one must pass every rule first, and one that does not costs no Partner Center call."</p>
                {move || crate::pages::action_result(switch.value().get())}
                {move || crate::pages::action_result(now.value().get())}
                {move || crate::pages::action_result(checking.value().get())}
                <form method="get" action="/opportunities" class="filters" aria-label="Search opportunities">
                    <label>"Name, CRM id or referral id"
                        <input type="search" name="q" value=param("q")/>
                    </label>
                    <button type="submit">"Search"</button>
                    <a href="/opportunities">"Clear"</a>
                </form>
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match list.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(l) if l.rows.is_empty() => view! {
                                <p class="empty">"No opportunities yet: connect the CRM and switch the flows on; the change feed fills this list."</p>
                            }.into_any(),
                            Ok(l) => {
                                let next = l.next.map(|(name, id)| {
                                    let href = format!("/opportunities{}", query_string(&[
                                        ("q", &param("q")), ("after_name", &name), ("after_id", &id),
                                    ]));
                                    view! { <a class="button" href=href>"Next"</a> }
                                });
                                let first = (!param("after_id").is_empty()).then(|| {
                                    let href = format!("/opportunities{}", query_string(&[("q", &param("q"))]));
                                    view! { <a class="button" href=href>"First"</a> }
                                });
                                view! {
                                    <table class="list" data-testid="opportunities">
                                        <thead><tr>
                                            <th scope="col">"Opportunity"</th><th scope="col">"Sync with Partner Center"</th>
                                            <th scope="col">"Readiness"</th><th scope="col">"Referral"</th><th scope="col">"Last result"</th>
                                        </tr></thead>
                                        <tbody>
                                            {l.rows.into_iter().map(|o| opportunity_row(o, admin, switch, now, checking)).collect_view()}
                                        </tbody>
                                    </table>
                                    <nav class="pager" aria-label="Pages">{first}{next}</nav>
                                }.into_any()
                            }
                        }
                    })}
                </Transition>
            }.into_any()
        }/>
    }
}

fn opportunity_row(
    o: OpportunityRow,
    admin: bool,
    switch: ServerAction<SetSync>,
    now: ServerAction<SyncNow>,
    checking: ServerAction<CheckOpportunity>,
) -> impl IntoView {
    let id = o.crm_id.clone();
    let name = o.name.clone();
    let toggle = admin.then(|| {
        let (id, name) = (id.clone(), name.clone());
        view! {
            <ActionForm action=switch attr:class="inline">
                <input type="hidden" name="crm_id" value=id/>
                <input type="hidden" name="on" value=(!o.sync).to_string()/>
                <button type="submit" aria-label=format!("Turn sync {} for {name}", if o.sync { "off" } else { "on" })>
                    {if o.sync { "Turn off" } else { "Turn on" }}
                </button>
            </ActionForm>
        }
    });
    let sync_now = (admin && o.sync).then(|| {
        let (id, name) = (id.clone(), name.clone());
        view! {
            <ActionForm action=now attr:class="inline">
                <input type="hidden" name="crm_id" value=id/>
                <button type="submit" aria-label=format!("Sync {name} now")>"Sync now"</button>
            </ActionForm>
        }
    });
    let check = admin.then(|| {
        let (id, name) = (id.clone(), name.clone());
        view! {
            <ActionForm action=checking attr:class="inline">
                <input type="hidden" name="crm_id" value=id/>
                <button type="submit" class="link" aria-label=format!("Check {name}")>"Check"</button>
            </ActionForm>
        }
    });
    let readiness = match o.problems {
        None => view! { <span class="muted">"Not checked"</span>" "{check}}.into_any(),
        Some(p) if p.is_empty() => view! { <span class="badge ok">"Ready"</span> }.into_any(),
        Some(p) => view! {
            <ul class="problems" data-testid="problems">
                {p.into_iter().map(|p| view! {
                    <li data-rule=p.rule.clone()><strong>{p.field}</strong>": "{p.message}</li>
                }).collect_view()}
                {(o.more_problems > 0).then(|| view! {
                    <li class="muted" data-more=o.more_problems.to_string()>
                        <a href=format!("/opportunities/{}", o.crm_id)>{match o.more_problems {
                            1 => "and 1 more rule".to_string(),
                            n => format!("and {n} more rules"),
                        }}</a>
                    </li>
                })}
            </ul>
            {check}
        }
        .into_any(),
    };
    view! {
        <tr data-opportunity=o.crm_id.clone() data-sync=o.sync.to_string()>
            <td data-label="Opportunity" class="wrap">
                <a href=format!("/opportunities/{}", o.crm_id)>{o.name.clone()}</a>
                {(o.state != "Open").then(|| view! { " " <span class="badge">{o.state.clone()}</span> })}
            </td>
            <td data-label="Sync with Partner Center">
                <span class=if o.sync { "badge on" } else { "badge off" }>{if o.sync { "On" } else { "Off" }}</span>" "
                {toggle}
            </td>
            <td data-label="Readiness" class="wrap">{readiness}</td>
            <td data-label="Referral">{match (o.referral_id, o.referral_link) {
                (Some(id), Some(link)) => view! { <a href=link rel="external" data-testid="referral-link"><ShortId id/></a> }.into_any(),
                (Some(id), None) => view! { <ShortId id/> }.into_any(),
                _ => view! { <span class="muted">"—"</span> }.into_any(),
            }}</td>
            <td data-label="Last result" class="wrap">
                {o.last_result.clone().unwrap_or_else(|| "—".into())}
                {o.last_run_id.map(|id| view! { " " <a href=format!("/runs/{id}")>{format!("run #{id}")}</a> })}
                {o.last_synced_at.map(|t| view! { <span class="muted">{format!(" ({t})")}</span> })}
                " " {sync_now}
            </td>
        </tr>
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    pub opportunity: OpportunityRow,
    pub events: Vec<AuditRow>,
    pub older: Option<i64>,
    /// Where the record opens in the CRM, and the CRM's name.
    pub crm_link: Option<(String, String)>,
}

/// An opportunity and everything that happened to it (and to its referral), newest first.
#[server(endpoint = "opportunity_timeline")]
pub async fn opportunity_timeline(
    crm_id: String,
    before: Option<i64>,
) -> Result<Timeline, AppError> {
    use crate::auth::server::{context, internal, require};
    use crate::pages::PAGE_SIZE;
    require(Access::Viewer).await?;
    let ctx = context()?;
    let mirrored = ctx
        .store
        .opportunity(&crm_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            AppError::Invalid(format!("There is no opportunity {crm_id} in the list."))
        })?;
    let mut records = vec![crm_id.clone()];
    records.extend(mirrored.seen.referral_id.clone());
    let events = ctx
        .store
        .list_audit(
            &cosell::store::AuditFilter {
                records,
                ..Default::default()
            },
            before,
            PAGE_SIZE + 1,
        )
        .await
        .map_err(internal)?;
    let (events, older) = crate::pages::page_of(events, |e| e.id);
    let crm_link = ctx
        .engine
        .record_link(&crm_id)
        .await
        .map(|(link, crm)| (link, crm.to_string()));
    Ok(Timeline {
        crm_link,
        opportunity: mirrored.into(),
        events: events.into_iter().map(AuditRow::from).collect(),
        older,
    })
}

#[component]
pub fn OpportunityPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let timeline = Resource::new(
        move || {
            (
                params.with(|p| p.get("id").unwrap_or_default()),
                query.with(|q| q.get("before").and_then(|b| b.parse::<i64>().ok())),
                crate::live::changes(),
            )
        },
        |(id, before, _)| opportunity_timeline(id, before),
    );
    view! {
        <Gate needed=Access::Viewer title="Opportunity" content=move |_me| view! {
            <p><a href="/opportunities">"← All opportunities"</a></p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match timeline.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(t) => {
                            let o = t.opportunity;
                            let older = t.older.map(|before| view! {
                                <a class="button" href=format!("/opportunities/{}?before={before}", o.crm_id)>"Older events"</a>
                            });
                            view! {
                                <section class="card" data-testid="opportunity" data-sync=o.sync.to_string()>
                                    <h2>{o.name.clone()}</h2>
                                    <dl>
                                        <dt>"CRM id"</dt>
                                        <dd>{o.crm_id.clone()}{t.crm_link.clone().map(|(link, crm)| view! {
                                            " " <a href=link rel="external" data-testid="crm-link">{format!("Open in {crm}")}</a>
                                        })}</dd>
                                        <dt>"State"</dt><dd>{o.state.clone()}</dd>
                                        <dt>"Sync with Partner Center"</dt><dd>{if o.sync { "On" } else { "Off" }}</dd>
                                        <dt>"Referral"</dt>
                                        <dd>{match (o.referral_id.clone(), o.referral_link.clone()) {
                                            (Some(id), Some(link)) => view! { <a href=link rel="external" data-testid="referral-link">{id}</a> }.into_any(),
                                            (Some(id), None) => view! { <span>{id}</span> }.into_any(),
                                            _ => view! { <span>"Not shared yet"</span> }.into_any(),
                                        }}</dd>
                                        <dt>"Last result"</dt><dd data-testid="last-result">{o.last_result.clone().unwrap_or_else(|| "—".into())}</dd>
                                    </dl>
                                    {o.problems.clone().filter(|p| !p.is_empty()).map(|p| view! {
                                        <h3>"To fix before it can be shared"</h3>
                                        <ul class="problems" data-testid="problems">
                                            {p.into_iter().map(|p| view! {
                                                <li data-rule=p.rule.clone()><strong>{p.field}</strong>": "{p.message}</li>
                                            }).collect_view()}
                                        </ul>
                                    })}
                                </section>
                                <h2>"Timeline"</h2>
                                {if t.events.is_empty() {
                                    view! { <p class="empty">"Nothing has happened to this opportunity yet."</p> }.into_any()
                                } else {
                                    view! { <AuditTable rows=t.events/> }.into_any()
                                }}
                                <nav class="pager" aria-label="Pages">{older}</nav>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        }.into_any()/>
    }
}
