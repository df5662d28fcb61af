//! Settings: how long history is kept (runs with their steps 90 days unless an admin says otherwise;
//! audit events forever unless an admin sets a time), each connection's daily API budget, and alerts
//! (in `alert_settings`).

use crate::error::AppError;
use crate::layout::Gate;
use cosell::domain::Access;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionView {
    pub runs_days: u32,
    /// `None`: kept forever.
    pub audit_days: Option<u32>,
}

/// One connection's daily API budget, and its day so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetRow {
    /// The form field: `partner_center` or `crm`.
    pub field: String,
    pub label: String,
    /// What the admin set (None: the default).
    pub set: Option<i64>,
    /// The budget in force.
    pub budget: i64,
    /// "1,234 of a 10,000 budget used today (UTC)…"
    pub today: String,
}

#[server(endpoint = "get_budgets")]
pub async fn get_budgets() -> Result<Vec<BudgetRow>, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::connection::System;
    require(Access::Viewer).await?;
    let engine = &context()?.engine;
    let budgets = engine.budgets().await.map_err(internal)?;
    let standings = engine
        .day_standings(time::OffsetDateTime::now_utc())
        .await
        .map_err(internal)?;
    Ok(standings
        .into_iter()
        .map(|s| {
            let (field, set) = match s.system {
                System::PartnerCenter => ("partner_center", budgets.partner_center),
                System::Crm(_) => ("crm", budgets.crm),
            };
            BudgetRow {
                field: field.into(),
                label: s.system.label().into(),
                set: set.map(|b| b.calls()),
                budget: s.budget,
                today: s.describe(),
            }
        })
        .collect())
}

/// Saves each connection's daily budget (empty: its default); nothing is saved unless both read. Runs
/// deferred for want of calls are judged again at once.
#[server(endpoint = "save_budgets")]
pub async fn save_budgets(partner_center: String, crm: String) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::budget::{Budgets, DailyBudget};
    let me = require(Access::Admin).await?;
    let read = |text: &str, what: &str| match text.trim() {
        "" => Ok(None),
        text => DailyBudget::parse(text)
            .map(Some)
            .map_err(|e| format!("{what}: {e}")),
    };
    let budgets = match (read(&partner_center, "Partner Center"), read(&crm, "CRM")) {
        (Ok(partner_center), Ok(crm)) => Budgets {
            partner_center,
            crm,
        },
        (a, b) => {
            let problems: Vec<String> = [a.err(), b.err()].into_iter().flatten().collect();
            return Err(AppError::Invalid(format!(
                "Nothing was saved. {}",
                problems.join(" ")
            )));
        }
    };
    let released = context()?
        .engine
        .set_budgets(budgets, &me.name)
        .await
        .map_err(internal)?;
    Ok(match released {
        0 => "Saved: the daily API budgets.".to_string(),
        1 => "Saved: the daily API budgets. 1 deferred run is judged again now.".to_string(),
        n => format!("Saved: the daily API budgets. {n} deferred runs are judged again now."),
    })
}

#[server(endpoint = "get_retention")]
pub async fn get_retention() -> Result<RetentionView, AppError> {
    use crate::auth::server::{context, internal, require};
    require(Access::Viewer).await?;
    let retention = context()?.engine.retention().await.map_err(internal)?;
    Ok(RetentionView {
        runs_days: retention.runs.days(),
        audit_days: retention.audit.map(|d| d.days()),
    })
}

/// Saves how long history is kept (nothing is saved unless both values read), then removes what is
/// now older than that in the background.
#[server(endpoint = "save_retention")]
pub async fn save_retention(runs_days: String, audit_days: String) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::retention::{KeepDays, Retention};
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    let runs = KeepDays::parse(&runs_days).map_err(|e| format!("Runs: {e}"));
    let audit = match audit_days.trim() {
        "" => Ok(None),
        text => KeepDays::parse(text)
            .map(Some)
            .map_err(|e| format!("Audit events: {e}")),
    };
    let retention = match (runs, audit) {
        (Ok(runs), Ok(audit)) => Retention { runs, audit },
        (runs, audit) => {
            let problems: Vec<String> = [runs.err(), audit.err()].into_iter().flatten().collect();
            return Err(AppError::Invalid(format!(
                "Nothing was saved. {}",
                problems.join(" ")
            )));
        }
    };
    ctx.engine
        .set_retention(retention, &me.name)
        .await
        .map_err(internal)?;
    ctx.engine.prune_in_background();
    let audit = match retention.audit {
        Some(days) => format!("audit events for {days}"),
        None => "audit events forever".into(),
    };
    Ok(format!(
        "Saved: runs are kept for {}, {audit}. Older history is being removed now.",
        retention.runs
    ))
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    let save = ServerAction::<SaveRetention>::new();
    let retention = Resource::new(move || save.version().get(), |_| get_retention());
    let save_budgets = ServerAction::<SaveBudgets>::new();
    let budgets = Resource::new(move || save_budgets.version().get(), |_| get_budgets());
    view! {
        <Gate needed=Access::Viewer title="Settings" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            view! {
                {move || crate::pages::action_result(save.value().get())}
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match retention.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(r) => view! {
                                <section class="card" aria-label="History" data-testid="retention">
                                    <h2>"History"</h2>
                                    <p>"How long cosell keeps what it did. Older history is removed every hour, a little at a time, so the pages never wait for it. Runs still queued or running are never removed. (Power Automate keeps run history 28 days.)"</p>
                                    <ActionForm action=save>
                                        <p><label>"Keep runs and their steps for (days)"
                                            <input type="text" inputmode="numeric" name="runs_days" size="6"
                                                value=r.runs_days.to_string() readonly=!admin required=true/>
                                        </label></p>
                                        <p><label>"Keep audit events for (days; empty: forever)"
                                            <input type="text" inputmode="numeric" name="audit_days" size="6"
                                                value=r.audit_days.map(|d| d.to_string()).unwrap_or_default() readonly=!admin/>
                                        </label></p>
                                        <p class="muted">"An audit event outlives its run when kept longer: it keeps what happened and why, without the link to the run."</p>
                                        {admin.then(|| view! { <button type="submit" class="primary">"Save"</button> })}
                                    </ActionForm>
                                </section>
                            }.into_any(),
                        }
                    })}
                </Suspense>
                {move || crate::pages::action_result(save_budgets.value().get())}
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match budgets.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(rows) => view! {
                                <section class="card" aria-label="API budgets" data-testid="budgets">
                                    <h2>"API budgets"</h2>
                                    <p>"How many API calls each connection may spend per UTC day. Sellers' changes and new referrals go first and run while calls are left; routine work (reconciliation, “Check”) waits for the next day as soon as the day's pace would pass the budget. Work that waits is deferred, never failed, and goes by itself at midnight UTC, or at once when a budget is raised. Empty: the default (Partner Center's documented 10,000, or the allocation the CRM reports)."</p>
                                    <ActionForm action=save_budgets>
                                        {rows.into_iter().map(|row| view! {
                                            <p data-budget=row.field.clone()>
                                                <label>{format!("{} (calls a day; in force: {})", row.label, cosell::domain::numbers::thousands(row.budget))}
                                                    <input type="text" inputmode="numeric" name=row.field.clone() size="10"
                                                        value=row.set.map(|b| b.to_string()).unwrap_or_default() readonly=!admin/>
                                                </label>
                                                <br/><span class="muted">{format!("Today: {}.", row.today)}</span>
                                            </p>
                                        }).collect_view()}
                                        {admin.then(|| view! { <button type="submit" class="primary">"Save budgets"</button> })}
                                    </ActionForm>
                                </section>
                            }.into_any(),
                        }
                    })}
                </Suspense>
                <crate::pages::alert_settings::AlertSettings admin/>
            }.into_any()
        }/>
    }
}
