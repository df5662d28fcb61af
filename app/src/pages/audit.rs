//! The audit trail: every effect on a record and every skip, newest first, with the run that caused it
//! and who or what acted. Filtered by record or run; paged by keyset ("Older events").

use crate::error::AppError;
use crate::layout::Gate;
use crate::pages::query_string;
use cosell::domain::Access;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

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
}

#[cfg(feature = "ssr")]
impl From<cosell::store::AuditEvent> for AuditRow {
    fn from(e: cosell::store::AuditEvent) -> Self {
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvents {
    pub rows: Vec<AuditRow>,
    /// Where the next page starts, when there is one.
    pub older: Option<i64>,
}

/// A page of audit events, newest first. `record` and `run` narrow it when not empty.
#[server(endpoint = "list_audit")]
pub async fn list_audit(
    record: String,
    run: String,
    before: Option<i64>,
) -> Result<AuditEvents, AppError> {
    use crate::auth::server::{context, internal, require};
    use crate::pages::PAGE_SIZE;
    require(Access::Viewer).await?;
    let ctx = context()?;
    let run = run.trim();
    let filter = cosell::store::AuditFilter {
        record_id: Some(record.trim().to_string()).filter(|r| !r.is_empty()),
        run_id: if run.is_empty() {
            None
        } else {
            Some(run.parse::<i64>().map_err(|_| {
                AppError::Invalid(format!(
                    "“{run}” is not a run number: use the number shown in the Runs list."
                ))
            })?)
        },
    };
    let rows = ctx
        .store
        .list_audit(&filter, before, PAGE_SIZE + 1)
        .await
        .map_err(internal)?;
    let (rows, older) = crate::pages::page_of(rows, |r| r.id);
    Ok(AuditEvents {
        rows: rows.into_iter().map(AuditRow::from).collect(),
        older,
    })
}

/// `opportunity_created` → "Opportunity created".
fn action_label(action: &str) -> String {
    let words = action.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn direction_label(direction: Option<&str>) -> &'static str {
    match direction {
        Some("to_crm") => "→ CRM",
        Some("to_partner_center") => "→ Partner Center",
        _ => "",
    }
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
                    <tr data-action=e.action.clone()>
                        <td>{e.at}</td>
                        <td>{action_label(&e.action)}</td>
                        <td>
                            <span class="kind">{e.record_kind}</span>" "
                            <a href=format!("/audit{}", query_string(&[("record", &e.record_id)]))>{e.record_id.clone()}</a>
                        </td>
                        <td>{direction_label(e.direction.as_deref())}</td>
                        <td class="wrap">{e.detail}</td>
                        <td>{e.run_id.map(|id| view! { <a href=format!("/runs/{id}")>{format!("#{id}")}</a> })}</td>
                        <td>{e.actor}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let events = Resource::new(
        move || (param("record"), param("run"), param("before")),
        |(record, run, before)| list_audit(record, run, before.parse().ok()),
    );
    view! {
        <Gate needed=Access::Viewer title="Audit" content=move |_me| view! {
            <p>"Every effect cosell had on a record, and every time it chose not to act, with the reason and the run that did it."</p>
            <form method="get" action="/audit" class="filters" aria-label="Filter the audit trail">
                <label>"Record (referral, opportunity or account id)"
                    <input type="search" name="record" value=param("record")/>
                </label>
                <label>"Run"
                    <input type="text" name="run" inputmode="numeric" size="8" value=param("run")/>
                </label>
                <button type="submit">"Filter"</button>
                <a href="/audit">"Clear"</a>
            </form>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match events.await {
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(page) if page.rows.is_empty() => view! {
                            <p class="empty">"No audit events match."</p>
                        }.into_any(),
                        Ok(page) => {
                            let older = page.older.map(|before| {
                                let before = before.to_string();
                                let href = format!("/audit{}", query_string(&[
                                    ("record", &param("record")), ("run", &param("run")), ("before", &before),
                                ]));
                                view! { <a class="button" href=href>"Older events"</a> }
                            });
                            let newest = (!param("before").is_empty()).then(|| {
                                let href = format!("/audit{}", query_string(&[("record", &param("record")), ("run", &param("run"))]));
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
        }.into_any()/>
    }
}
