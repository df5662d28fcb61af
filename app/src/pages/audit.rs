//! The audit trail: every effect on a record and every skip, newest first, with the run that caused it,
//! who or what acted and, for updates, the fields that changed. Filtered by record, run, direction,
//! outcome and time; paged by keyset ("Older events").

use crate::error::AppError;
use crate::layout::Gate;
use crate::pages::{ShortId, query_string};
use cosell::domain::Access;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

/// One changed field, as the timeline shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub run_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub record_kind: String,
    pub record_id: String,
    pub direction: Option<String>,
    pub detail: String,
    pub outcome: String,
    pub changes: Vec<FieldChange>,
}

#[cfg(feature = "ssr")]
impl From<cosell::store::AuditEvent> for AuditRow {
    fn from(e: cosell::store::AuditEvent) -> Self {
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "—".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let changes = e
            .changes
            .as_ref()
            .and_then(|c| c.as_array())
            .map(|changes| {
                changes
                    .iter()
                    .filter(|c| c.get("path").is_some())
                    .map(|c| FieldChange {
                        field: c["path"].as_str().unwrap_or_default().to_string(),
                        from: show(&c["from"]),
                        to: show(&c["to"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        AuditRow {
            id: e.id,
            at: crate::pages::when(e.at),
            run_id: e.run_id,
            actor: e.actor,
            action: e.action,
            record_kind: e.record_kind,
            record_id: e.record_id,
            direction: e.direction,
            detail: e.detail,
            outcome: e.outcome.as_code().into(),
            changes,
        }
    }
}

/// The filter as typed: empty fields mean "any".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    pub record: String,
    pub run: String,
    pub direction: String,
    pub outcome: String,
    pub from: String,
    pub to: String,
}

impl AuditQuery {
    fn pairs(&self) -> [(&'static str, &str); 6] {
        [
            ("record", &self.record),
            ("run", &self.run),
            ("direction", &self.direction),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ]
    }

    #[cfg(feature = "ssr")]
    fn filter(&self) -> Result<cosell::store::AuditFilter, AppError> {
        use cosell::domain::runs::{AuditOutcome, Direction};
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let (since, until) = crate::pages::filter_window(&self.from, &self.to)?;
        Ok(cosell::store::AuditFilter {
            records: text(&self.record).into_iter().collect(),
            run_id: text(&self.run)
                .map(|run| {
                    run.parse::<i64>().map_err(|_| {
                        AppError::Invalid(format!(
                            "“{run}” is not a run number: use the number shown in the Runs list."
                        ))
                    })
                })
                .transpose()?,
            direction: text(&self.direction)
                .map(|d| {
                    Direction::from_code(&d)
                        .ok_or_else(|| AppError::Invalid(format!("There is no direction “{d}”.")))
                })
                .transpose()?,
            outcome: text(&self.outcome)
                .map(|o| {
                    AuditOutcome::from_code(&o)
                        .ok_or_else(|| AppError::Invalid(format!("There is no outcome “{o}”.")))
                })
                .transpose()?,
            since,
            until,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvents {
    pub rows: Vec<AuditRow>,
    /// Where the next page starts, when there is one.
    pub older: Option<i64>,
}

/// A page of audit events, newest first, narrowed by the filter.
#[server(endpoint = "list_audit")]
pub async fn list_audit(query: AuditQuery, before: Option<i64>) -> Result<AuditEvents, AppError> {
    use crate::auth::server::{context, internal, require};
    use crate::pages::PAGE_SIZE;
    require(Access::Viewer).await?;
    let ctx = context()?;
    let rows = ctx
        .store
        .list_audit(&query.filter()?, before, PAGE_SIZE + 1)
        .await
        .map_err(internal)?;
    let (rows, older) = crate::pages::page_of(rows, |r| r.id);
    Ok(AuditEvents {
        rows: rows.into_iter().map(AuditRow::from).collect(),
        older,
    })
}

/// `opportunity_created` → "Opportunity created".
pub fn action_label(action: &str) -> String {
    let words = action.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub fn direction_label(direction: Option<&str>) -> &'static str {
    match direction {
        Some("to_crm") => "→ CRM",
        Some("to_partner_center") => "→ Partner Center",
        _ => "",
    }
}

const OUTCOMES: [(&str, &str); 4] = [
    ("effect", "Change"),
    ("skip", "Skipped"),
    ("failure", "Failure"),
    ("conflict", "Conflict"),
];

pub fn outcome_label(code: &str) -> &'static str {
    OUTCOMES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
        .unwrap_or("")
}

/// The fields an update changed: field, before, after.
#[component]
pub fn Changes(changes: Vec<FieldChange>) -> impl IntoView {
    (!changes.is_empty()).then(|| {
        view! {
            <ul class="changes">
                {changes.into_iter().map(|c| view! {
                    <li><code>{c.field}</code>": " <del>{c.from}</del>" → " <ins>{c.to}</ins></li>
                }).collect_view()}
            </ul>
        }
    })
}

/// Audit events as a table; shared by this page and a run's page.
#[component]
pub fn AuditTable(rows: Vec<AuditRow>) -> impl IntoView {
    view! {
        <table class="list" data-testid="audit">
            <thead><tr>
                <th scope="col">"When"</th><th scope="col">"What"</th><th scope="col">"Record"</th>
                <th scope="col">"Direction"</th><th scope="col">"Detail"</th><th scope="col">"Run"</th><th scope="col">"By"</th>
            </tr></thead>
            <tbody>
                {rows.into_iter().map(|e| view! {
                    <tr data-action=e.action.clone() data-outcome=e.outcome.clone()>
                        <td data-label="When">{e.at}</td>
                        <td data-label="What">
                            <span class=format!("badge {}", e.outcome)>{outcome_label(&e.outcome)}</span>" "
                            {action_label(&e.action)}
                        </td>
                        <td data-label="Record">
                            <span class="kind">{e.record_kind}</span>" "
                            <a href=format!("/audit{}", query_string(&[("record", &e.record_id)]))><ShortId id=e.record_id.clone()/></a>
                        </td>
                        <td data-label="Direction">{direction_label(e.direction.as_deref())}</td>
                        <td data-label="Detail" class="wrap">{e.detail}<Changes changes=e.changes/></td>
                        <td data-label="Run">{e.run_id.map(|id| view! { <a href=format!("/runs/{id}")>{format!("#{id}")}</a> })}</td>
                        <td data-label="By">{e.actor}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query_map = use_query_map();
    let param = move |name: &str| query_map.with(|q| q.get(name).unwrap_or_default());
    let query = move || AuditQuery {
        record: param("record"),
        run: param("run"),
        direction: param("direction"),
        outcome: param("outcome"),
        from: param("from"),
        to: param("to"),
    };
    let events = Resource::new(
        move || (query(), param("before").parse::<i64>().ok()),
        |(q, before)| list_audit(q, before),
    );
    view! {
        <Gate needed=Access::Viewer title="Audit" content=move |_me| {
            let q = query();
            view! {
                <p>"Every effect cosell had on a record, and every time it chose not to act, with the reason and the run that did it."</p>
                <form method="get" action="/audit" class="filters" aria-label="Filter the audit trail">
                    <label>"Record (opportunity, referral or account id)"
                        <input type="search" name="record" value=q.record.clone()/>
                    </label>
                    <label>"Run"
                        <input type="text" name="run" inputmode="numeric" size="8" value=q.run.clone()/>
                    </label>
                    <label>"Direction"
                        <select name="direction">
                            <option value="" selected=q.direction.is_empty()>"Any"</option>
                            <option value="to_crm" selected=q.direction == "to_crm">"Partner Center → CRM"</option>
                            <option value="to_partner_center" selected=q.direction == "to_partner_center">"CRM → Partner Center"</option>
                        </select>
                    </label>
                    <label>"Result"
                        <select name="outcome">
                            <option value="" selected=q.outcome.is_empty()>"Any"</option>
                            {OUTCOMES.iter().map(|(code, label)| view! {
                                <option value=*code selected=*code == q.outcome>{*label}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"From (UTC)"
                        <input type="datetime-local" name="from" value=q.from.clone()/>
                    </label>
                    <label>"Before (UTC)"
                        <input type="datetime-local" name="to" value=q.to.clone()/>
                    </label>
                    <button type="submit">"Filter"</button>
                    <a href="/audit">"Clear"</a>
                </form>
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        let q = query();
                        match events.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(page) if page.rows.is_empty() => view! {
                                <p class="empty">"No audit events match."</p>
                            }.into_any(),
                            Ok(page) => {
                                let older = page.older.map(|before| {
                                    let before = before.to_string();
                                    let mut pairs = q.pairs().to_vec();
                                    pairs.push(("before", &before));
                                    let href = format!("/audit{}", query_string(&pairs));
                                    view! { <a class="button" href=href>"Older events"</a> }
                                });
                                let newest = (!param("before").is_empty()).then(|| {
                                    let href = format!("/audit{}", query_string(&q.pairs()));
                                    view! { <a class="button" href=href>"Newest events"</a> }
                                });
                                view! {
                                    <AuditTable rows=page.rows/>
                                    <nav class="pager" aria-label="Pages">{newest}{older}</nav>
                                }.into_any()
                            }
                        }
                    })}
                </Suspense>
            }.into_any()
        }/>
    }
}
