//! Settings: how long history is kept. Runs (with their steps) are kept 90 days unless an admin says
//! otherwise; audit events forever unless an admin sets a time.

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
            }.into_any()
        }/>
    }
}
