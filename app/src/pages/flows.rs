//! Flows: the catalog in activation order, each flow's dependencies and connections, switching flows on
//! and off in an order that cannot break, "Activate all in order", and the webhook registration run.

use crate::error::AppError;
use crate::layout::Gate;
use cosell::domain::Access;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowView {
    pub code: String,
    pub order: usize,
    pub name: String,
    pub trigger: String,
    pub calls: Vec<String>,
    pub connections: Vec<String>,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowsView {
    pub crm: String,
    pub flows: Vec<FlowView>,
    pub callback_url: String,
    pub events: Vec<String>,
    /// The latest run of the registration flow: whether Partner Center knows where to send events.
    pub last_registration: Option<LastRegistration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRegistration {
    pub run_id: i64,
    pub status: String,
    pub outcome: String,
    pub at: String,
}

#[server(endpoint = "list_flows")]
pub async fn list_flows() -> Result<FlowsView, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::flows::{ConnectionKind, Trigger, activation_order};
    require(Access::Viewer).await?;
    let ctx = context()?;
    let crm = ctx.engine.crm();
    let active = ctx.store.active_flows(crm).await.map_err(internal)?;
    let flows = activation_order(crm)
        .into_iter()
        .enumerate()
        .map(|(i, f)| FlowView {
            code: f.as_code().into(),
            order: i + 1,
            name: f.name(crm),
            trigger: match f.trigger() {
                Trigger::Manual => "Run from this page",
                Trigger::Child => "Called by another flow",
                Trigger::Webhook => "Partner Center webhook",
                Trigger::CrmChange => "Change in the CRM",
            }
            .into(),
            calls: f.children(crm).iter().map(|c| c.name(crm)).collect(),
            connections: f
                .connections()
                .iter()
                .map(|k| match k {
                    ConnectionKind::PartnerCenter => "Partner Center".to_string(),
                    ConnectionKind::Crm => crm.label().to_string(),
                })
                .collect(),
            active: active.contains(&f),
        })
        .collect();
    let last_registration = ctx
        .store
        .list_runs(
            &cosell::store::RunFilter {
                flow: Some(cosell::domain::flows::Flow::WebhookRegistration),
                ..Default::default()
            },
            None,
            1,
        )
        .await
        .map_err(internal)?
        .into_iter()
        .next()
        .map(|r| LastRegistration {
            run_id: r.id,
            status: r.status.as_code().into(),
            outcome: r.outcome.unwrap_or_default(),
            at: crate::pages::when(r.created_at),
        });
    Ok(FlowsView {
        last_registration,
        crm: crm.label().into(),
        flows,
        callback_url: ctx.callback_url.clone(),
        events: cosell::engine::webhook_registration::REFERRAL_EVENTS
            .iter()
            .map(|e| e.to_string())
            .collect(),
    })
}

/// Switches one flow on or off; refuses a step out of order, naming the flow to switch first.
#[server(endpoint = "set_flow")]
pub async fn set_flow(flow: String, active: String) -> Result<String, AppError> {
    use crate::auth::server::{action_error, context, require};
    use cosell::domain::flows::Flow;
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    let crm = ctx.engine.crm();
    let flow = Flow::from_code(&flow)
        .filter(|f| f.exists_for(crm))
        .ok_or_else(|| AppError::Invalid("There is no such flow.".into()))?;
    let on = active == "true";
    ctx.engine
        .set_flow(flow, on, &me.name)
        .await
        .map_err(action_error)?;
    Ok(format!(
        "“{}” is {}.",
        flow.name(crm),
        if on { "on" } else { "off" }
    ))
}

/// Switches on every inactive flow, children first; all or nothing.
#[server(endpoint = "activate_all")]
pub async fn activate_all() -> Result<String, AppError> {
    use crate::auth::server::{action_error, context, require};
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    let plan = ctx
        .engine
        .activate_all(&me.name)
        .await
        .map_err(action_error)?;
    Ok(match plan.len() {
        0 => "Every flow is already on.".into(),
        n => format!("{n} flows switched on, in order."),
    })
}

/// Runs "Partner Center Webhook Registration" now and says what it did.
#[server(endpoint = "register_webhook")]
pub async fn register_webhook(
    callback_url: String,
    referral_created: Option<String>,
    referral_updated: Option<String>,
    related_referral_created: Option<String>,
    related_referral_updated: Option<String>,
    overwrite: Option<String>,
) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::domain::runs::{RegistrationInput, RunStatus};
    let me = require(Access::Admin).await?;
    let ctx = context()?;
    let url = callback_url.trim().to_string();
    let parsed = url::Url::parse(&url).map_err(|_| {
        AppError::Invalid(format!(
            "“{url}” is not a URL. Use the one filled in: this server's webhook receiver."
        ))
    })?;
    if parsed.scheme() != "https" && !matches!(parsed.host_str(), Some("127.0.0.1" | "localhost")) {
        return Err(AppError::Invalid(
            "Partner Center delivers only to https:// addresses.".into(),
        ));
    }
    let events: Vec<String> = [
        ("referral-created", referral_created),
        ("referral-updated", referral_updated),
        ("related-referral-created", related_referral_created),
        ("related-referral-updated", related_referral_updated),
    ]
    .into_iter()
    .filter(|(_, on)| on.is_some())
    .map(|(e, _)| e.to_string())
    .collect();
    if events.is_empty() {
        return Err(AppError::Invalid(
            "Choose at least one event; the co-sell flows need all four.".into(),
        ));
    }
    let input = RegistrationInput {
        callback_url: url,
        events,
        overwrite: overwrite.is_some(),
    };
    let done = ctx
        .engine
        .register_webhook(input, &me.name)
        .await
        .map_err(internal)?;
    match done.status {
        RunStatus::Succeeded => Ok(format!("{} (run {})", done.outcome, done.run_id)),
        _ => Err(AppError::Invalid(format!(
            "{} (run {})",
            done.outcome, done.run_id
        ))),
    }
}

#[component]
pub fn FlowsPage() -> impl IntoView {
    let toggle = ServerAction::<SetFlow>::new();
    let all = ServerAction::<ActivateAll>::new();
    let register = ServerAction::<RegisterWebhook>::new();
    let flows = Resource::new(
        move || {
            (
                toggle.version().get(),
                all.version().get(),
                register.version().get(),
            )
        },
        |_| list_flows(),
    );
    view! {
        <Gate needed=Access::Viewer title="Flows" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            view! {
                <p>"The flows of the co-sell solution, in the order they must be switched on: a flow can only run once the flows it calls are on. cosell refuses any other order and says which flow comes first."</p>
                {move || crate::pages::action_result(toggle.value().get())}
                {move || crate::pages::action_result(all.value().get())}
                <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match flows.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(v) => view! {
                                {admin.then(|| view! {
                                    <ActionForm action=all attr:class="inline">
                                        <button type="submit" class="primary">"Activate all in order"</button>
                                    </ActionForm>
                                })}
                                <table class="list" data-testid="flows" aria-label=format!("Flows for {}", v.crm)>
                                    <thead><tr>
                                        <th scope="col">"#"</th><th scope="col">"Flow"</th><th scope="col">"Trigger"</th>
                                        <th scope="col">"Calls"</th><th scope="col">"Connections"</th><th scope="col">"State"</th>
                                    </tr></thead>
                                    <tbody>
                                        {v.flows.into_iter().map(|f| {
                                            let form = admin.then(|| {
                                                let (code, name, active) = (f.code.clone(), f.name.clone(), f.active);
                                                view! {
                                                    <ActionForm action=toggle attr:class="inline">
                                                        <input type="hidden" name="flow" value=code/>
                                                        <input type="hidden" name="active" value=(!active).to_string()/>
                                                        <button type="submit" aria-label=format!("{} {}", if active { "Deactivate" } else { "Activate" }, name)>
                                                            {if active { "Deactivate" } else { "Activate" }}
                                                        </button>
                                                    </ActionForm>
                                                }
                                            });
                                            view! {
                                            <tr data-flow=f.code.clone() data-active=f.active.to_string()>
                                                <td data-label="#">{f.order}</td>
                                                <td data-label="Flow">{f.name.clone()}</td>
                                                <td data-label="Trigger">{f.trigger.clone()}</td>
                                                <td data-label="Calls">{if f.calls.is_empty() { "—".to_string() } else { f.calls.join("; ") }}</td>
                                                <td data-label="Connections">{f.connections.join(", ")}</td>
                                                <td data-label="State" class="nowrap">
                                                    <span class=if f.active { "badge on" } else { "badge off" }>{if f.active { "On" } else { "Off" }}</span>
                                                    {form}
                                                </td>
                                            </tr>
                                        }}).collect_view()}
                                    </tbody>
                                </table>
                                {admin.then(|| view! {
                                    <section class="card" aria-label="Partner Center Webhook Registration">
                                        <h2>"Partner Center Webhook Registration"</h2>
                                        <p>"Tells Partner Center where to send referral events: this server's receiver, the trigger of “Partner Center to " {v.crm.clone()} "”."</p>
                                        {move || crate::pages::action_result(register.value().get())}
                                        {v.last_registration.clone().map(|l| view! {
                                            <p data-testid="last-registration" data-status=l.status.clone()>
                                                "Last run: " <a href=format!("/runs/{}", l.run_id)>{format!("#{}", l.run_id)}</a>
                                                ", " {l.at} ": " {l.outcome}
                                            </p>
                                        })}
                                        <ActionForm action=register>
                                            <label>"Callback URL"
                                                <input type="url" name="callback_url" value=v.callback_url.clone() required=true/>
                                            </label>
                                            <fieldset>
                                                <legend>"Events to register"</legend>
                                                {v.events.iter().map(|e| {
                                                    let name = e.replace('-', "_");
                                                    view! { <label><input type="checkbox" name=name value="on" checked=true/>{e.clone()}</label> }
                                                }).collect_view()}
                                            </fieldset>
                                            <label><input type="checkbox" name="overwrite" value="on"/>"Overwrite an existing registration"</label>
                                            <button type="submit" class="primary">"Run registration"</button>
                                        </ActionForm>
                                    </section>
                                })}
                            }.into_any(),
                        }
                    })}
                </Suspense>
            }.into_any()
        }/>
    }
}
