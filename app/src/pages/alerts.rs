//! Alerts on the dashboard: the banner every page shows while an alert is open and nobody acknowledged
//! it, and the Alerts page (open alerts with Acknowledge, the latest resolved ones, and how each message
//! went out). The rules and the channels are on the Settings page.

use crate::error::AppError;
use crate::layout::Gate;
use cosell::domain::Access;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// An alert as the pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub id: i64,
    /// `warning` or `critical`.
    pub severity: String,
    pub severity_label: String,
    pub title: String,
    pub detail: String,
    pub fix_href: String,
    pub opened: String,
    /// When it resolved, if it did.
    pub resolved: Option<String>,
    /// "Ada Lovelace, 2026-12-05 10:02 UTC"
    pub acknowledged: Option<String>,
    /// How its messages went: "Email: opened, sent 2026-12-05 10:02 UTC".
    pub messages: Vec<String>,
}

/// How many alerts the Alerts page lists.
#[cfg(feature = "ssr")]
const LATEST: i64 = 100;

#[cfg(feature = "ssr")]
fn view_of(a: cosell::store::StoredAlert, messages: &[cosell::store::DeliveryState]) -> AlertView {
    use cosell::domain::runs::when;
    AlertView {
        id: a.id,
        severity: a.severity.as_code().into(),
        severity_label: a.severity.label().into(),
        title: a.title,
        detail: a.detail,
        fix_href: a.fix_href,
        opened: when(a.opened_at),
        resolved: a.resolved_at.map(when),
        acknowledged: a.acknowledged.map(|(at, by)| format!("{by}, {}", when(at))),
        messages: messages
            .iter()
            .filter(|m| m.alert_id == a.id)
            .map(|m| {
                let state = match (m.sent_at, m.failed_at, &m.last_error) {
                    (Some(at), ..) => format!("sent {}", when(at)),
                    (None, Some(_), Some(why)) => format!("not sent: {why}"),
                    (None, None, Some(why)) => format!("trying again ({why})"),
                    _ => "sending".into(),
                };
                format!("{}: {}, {state}", m.channel.label(), m.event.as_code())
            })
            .collect(),
    }
}

/// Open alerts nobody acknowledged yet: the banner's.
#[server(endpoint = "alert_banner")]
pub async fn alert_banner() -> Result<Vec<AlertView>, AppError> {
    use crate::auth::server::{context, internal, require};
    require(Access::Viewer).await?;
    let open = context()?.store.open_alerts().await.map_err(internal)?;
    Ok(open
        .into_iter()
        .filter(|a| a.acknowledged.is_none())
        .map(|a| view_of(a, &[]))
        .collect())
}

/// The latest alerts, open ones first, with how their messages went.
#[server(endpoint = "list_alerts")]
pub async fn list_alerts() -> Result<Vec<AlertView>, AppError> {
    use crate::auth::server::{context, internal, require};
    require(Access::Viewer).await?;
    let store = context()?.store;
    let mut alerts = store.recent_alerts(LATEST).await.map_err(internal)?;
    alerts.sort_by_key(|a| (a.resolved_at.is_some(), std::cmp::Reverse(a.id)));
    let ids: Vec<i64> = alerts.iter().map(|a| a.id).collect();
    let messages = store.alert_deliveries(&ids).await.map_err(internal)?;
    Ok(alerts.into_iter().map(|a| view_of(a, &messages)).collect())
}

/// Marks an open alert as seen: it leaves the banner and stays open until its cause clears.
#[server(endpoint = "acknowledge_alert")]
pub async fn acknowledge_alert(id: i64) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    let me = require(Access::Admin).await?;
    match context()?
        .engine
        .acknowledge_alert(id, &me.name)
        .await
        .map_err(internal)?
    {
        true => Ok(format!(
            "Alert {id} acknowledged: it stays open until its cause clears."
        )),
        false => Err(AppError::Invalid(format!(
            "Alert {id} is not open, or was acknowledged already: nothing changed."
        ))),
    }
}

/// The banner under the header while any alert is open and unacknowledged.
#[component]
pub fn AlertBanner() -> impl IntoView {
    let alerts = Resource::new(crate::live::changes, |_| alert_banner());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match alerts.await {
                    Ok(open) if !open.is_empty() => {
                        let critical = open.iter().any(|a| a.severity == "critical");
                        let first = open[0].title.clone();
                        let more = open.len() - 1;
                        view! {
                            <div class=if critical { "alert-banner critical" } else { "alert-banner" }
                                role="alert" data-testid="alert-banner">
                                <strong>{if open.len() == 1 { "1 open alert: ".to_string() } else { format!("{} open alerts: ", open.len()) }}</strong>
                                {first}
                                {(more > 0).then(|| format!(" (+{more} more)"))}
                                " " <a href="/alerts">"See alerts"</a>
                            </div>
                        }.into_any()
                    }
                    _ => ().into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    let acknowledge = ServerAction::<AcknowledgeAlert>::new();
    view! {
        <Gate needed=Access::Viewer title="Alerts" content=move |me: crate::auth::Me| {
            let admin = me.user.access == Access::Admin;
            let alerts = Resource::new(
                move || (crate::live::changes(), acknowledge.version().get()),
                |_| list_alerts(),
            );
            view! {
                <p class="muted">"cosell raises an alert when runs keep failing, a connection needs someone to sign in again, a day's API calls reach 80 % or 100 % of the budget, Partner Center's deliveries stay silent longer than usual, or the CRM's changes stop being read. Each cause has one alert; it resolves by itself when the cause clears. Where alerts are sent is set on "
                    <a href="/settings#alerts">"Settings"</a>"."</p>
                {move || crate::pages::action_result(acknowledge.value().get())}
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match alerts.await {
                            Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                            Ok(list) if list.is_empty() => view! {
                                <p class="notice" data-testid="no-alerts">"No alerts so far: nothing has needed anyone."</p>
                            }.into_any(),
                            Ok(list) => view! {
                                <ul class="alerts" data-testid="alerts">
                                    {list.into_iter().map(|a| {
                                        let state = if a.resolved.is_some() { "resolved" } else { "open" };
                                        view! {
                                            <li class=format!("alert {} {state}", a.severity) data-alert=a.id.to_string() data-state=state>
                                                <p>
                                                    <span class=format!("badge {}", a.severity)>{a.severity_label.clone()}</span>
                                                    " " <strong>{a.title.clone()}</strong>
                                                </p>
                                                <p>{a.detail.clone()}</p>
                                                <p class="muted">
                                                    {format!("Opened {}", a.opened)}
                                                    {a.resolved.clone().map(|r| format!(" · resolved {r}"))}
                                                    {a.acknowledged.clone().map(|r| format!(" · acknowledged by {r}"))}
                                                </p>
                                                {(!a.messages.is_empty()).then(|| view! {
                                                    <ul class="messages">
                                                        {a.messages.iter().map(|m| view! { <li>{m.clone()}</li> }).collect_view()}
                                                    </ul>
                                                })}
                                                <p>
                                                    {a.resolved.is_none().then(|| view! { <a href=a.fix_href.clone()>"Fix it"</a> " " })}
                                                    {(admin && a.resolved.is_none() && a.acknowledged.is_none()).then(|| view! {
                                                        <ActionForm action=acknowledge attr:class="inline">
                                                            <input type="hidden" name="id" value=a.id.to_string()/>
                                                            <button type="submit" aria-label=format!("Acknowledge alert {}", a.id)>"Acknowledge"</button>
                                                        </ActionForm>
                                                    })}
                                                </p>
                                            </li>
                                        }
                                    }).collect_view()}
                                </ul>
                            }.into_any(),
                        }
                    })}
                </Transition>
            }.into_any()
        }/>
    }
}
