//! Connections: Partner Center and the CRM, connected by OAuth consent in the browser. Shows who each
//! runs as, whether it works (with the fix when it does not), and the API calls spent today.
//! Tokens never reach this page.

use crate::error::AppError;
use crate::layout::Gate;
use cosell::domain::Access;
use cosell::domain::connection::System;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub system: System,
    pub label: String,
    /// None: not connected.
    pub account: Option<String>,
    pub connected_at: Option<String>,
    pub problem: Option<String>,
    pub fix: Option<String>,
    pub reconnect: bool,
    pub calls_today: i64,
}

#[server(endpoint = "list_connections")]
pub async fn list_connections() -> Result<Vec<ConnectionView>, AppError> {
    use crate::auth::server::{context, internal, require};
    require(Access::Viewer).await?;
    let ctx = context()?;
    let now = time::OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for system in [System::PartnerCenter, System::Crm(ctx.engine.crm())] {
        let c = ctx
            .store
            .connection(system, &ctx.sealing_key)
            .await
            .map_err(internal)?;
        let calls_today = ctx
            .store
            .api_calls_on(system.as_code(), now)
            .await
            .map_err(internal)?;
        out.push(ConnectionView {
            system,
            label: system.label().into(),
            account: c
                .as_ref()
                .map(|c| format!("{} ({})", c.account_name, c.account_username)),
            connected_at: c.as_ref().map(|c| crate::pages::when(c.connected_at)),
            problem: c
                .as_ref()
                .and_then(|c| c.diagnosis)
                .map(|d| d.headline(system)),
            fix: c.as_ref().and_then(|c| c.diagnosis).map(|d| d.fix(system)),
            reconnect: c
                .as_ref()
                .and_then(|c| c.diagnosis)
                .is_some_and(|d| d.needs_reconnect()),
            calls_today,
        });
    }
    Ok(out)
}

/// Checks the connection now and says what was found.
#[server(endpoint = "test_connection")]
pub async fn test_connection(system: String) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    require(Access::Admin).await?;
    let system = System::from_code(&system)
        .ok_or_else(|| AppError::Invalid("There is no such connection.".into()))?;
    let ctx = context()?;
    if ctx
        .store
        .connection(system, &ctx.sealing_key)
        .await
        .map_err(internal)?
        .is_none()
    {
        return Err(AppError::Invalid(format!(
            "{} is not connected yet: use Connect first.",
            system.label()
        )));
    }
    ctx.engine.tokens().forget(system);
    match ctx
        .engine
        .check_connection(system)
        .await
        .map_err(internal)?
    {
        Ok(summary) => Ok(summary),
        Err(d) => Err(AppError::Invalid(format!(
            "{}. {}",
            d.headline(system),
            d.fix(system)
        ))),
    }
}

#[server(endpoint = "disconnect")]
pub async fn disconnect(system: String) -> Result<(), AppError> {
    use crate::auth::server::{context, internal, require};
    let me = require(Access::Admin).await?;
    let system = System::from_code(&system)
        .ok_or_else(|| AppError::Invalid("There is no such connection.".into()))?;
    let ctx = context()?;
    ctx.engine.disconnect(system).await.map_err(internal)?;
    tracing::info!(by = %me.object_id, system = system.as_code(), "disconnected");
    Ok(())
}

#[component]
pub fn ConnectionsPage() -> impl IntoView {
    let test = ServerAction::<TestConnection>::new();
    let drop = ServerAction::<Disconnect>::new();
    let list = Resource::new(
        move || (test.version().get(), drop.version().get()),
        |_| list_connections(),
    );
    let query = use_query_map();
    view! {
        <Gate needed=Access::Viewer title="Connections" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            let q = query.get_untracked();
            let connected = q.get("connected").and_then(|c| System::from_code(&c)).map(|s| format!("{} is connected and works.", s.label()));
            let error = q.get("error");
            view! {
                <p>"cosell works as the accounts connected here. Connect each with an account that has the role it needs: a Partner Center Referrals admin, and in the CRM an account allowed to customize it (Dynamics 365: System Administrator or System Customizer)."</p>
                {connected.map(|m| view! { <p class="notice" role="status">{m}</p> })}
                {error.map(|m| view! { <p class="error" role="alert">{m}</p> })}
                {move || crate::pages::action_result(test.value().get())}
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match list.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(items) => view! {
                                <div class="cards">
                                    {items.into_iter().map(|c| connection_card(c, admin, test, drop)).collect_view()}
                                </div>
                            }.into_any(),
                        }
                    })}
                </Suspense>
            }.into_any()
        }/>
    }
}

fn connection_card(
    c: ConnectionView,
    admin: bool,
    test: ServerAction<TestConnection>,
    drop: ServerAction<Disconnect>,
) -> impl IntoView {
    let code = c.system.as_code();
    let status = match (&c.account, &c.problem) {
        (None, _) => "Not connected".to_string(),
        (Some(_), Some(_)) => "Needs attention".to_string(),
        (Some(_), None) => "Connected".to_string(),
    };
    let connect_label = if c.account.is_some() {
        "Reconnect"
    } else {
        "Connect"
    };
    view! {
        <section class="card" data-connection=code aria-label=c.label.clone()>
            <h2>{c.label.clone()}</h2>
            <p class="status" data-status=status.clone()>{status.clone()}</p>
            {c.account.clone().map(|a| view! { <p>"Runs as " <strong>{a}</strong> {c.connected_at.clone().map(|t| format!(", connected {t}"))}</p> })}
            {c.problem.clone().map(|p| view! {
                <div class="diagnosis" role="alert">
                    <p><strong>{p}</strong></p>
                    <p>{c.fix.clone()}</p>
                </div>
            })}
            <p class="muted">{format!("{} API calls today (UTC).", c.calls_today)}</p>
            {admin.then(|| view! {
                <div class="actions">
                    // A plain form: the consent leaves the site, so this is a full navigation either way.
                    <form method="post" action=format!("/connections/{code}/connect")>
                        <button type="submit" class=if c.reconnect || c.account.is_none() { "primary" } else { "" }>{connect_label}</button>
                    </form>
                    {c.account.is_some().then(|| view! {
                        <ActionForm action=test attr:class="inline">
                            <input type="hidden" name="system" value=code/>
                            <button type="submit">"Test connection"</button>
                        </ActionForm>
                        <ActionForm action=drop attr:class="inline">
                            <input type="hidden" name="system" value=code/>
                            <button type="submit">"Disconnect"</button>
                        </ActionForm>
                    })}
                </div>
            })}
        </section>
    }
}
