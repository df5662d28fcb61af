//! The Settings page's Alerts section: the rules' thresholds, and the webhook and the email alerts go
//! out by, with "Send test alert". Secrets are written, never read back: the page shows whether they
//! are set.
// A server function takes one argument per form field.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The alert rules and channels as the page shows them: secrets never, only whether they are set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSettingsView {
    pub failed_runs: u32,
    pub window_minutes: u32,
    pub webhook_hint: Option<String>,
    /// The format's code (`json`, `slack`, `teams`).
    pub webhook_format: String,
    pub webhook_secret_set: bool,
    pub email_on: bool,
    pub email_host: String,
    pub email_port: String,
    pub email_security: String,
    pub email_username: String,
    pub email_password_set: bool,
    pub email_from: String,
    pub email_to: String,
}

#[server(endpoint = "get_alert_settings")]
pub async fn get_alert_settings() -> Result<AlertSettingsView, AppError> {
    use crate::auth::server::{context, internal, require};
    require(cosell::domain::Access::Viewer).await?;
    let engine = &context()?.engine;
    let rules = engine.alert_rules().await.map_err(internal)?;
    let channels = engine.alert_channels().await.map_err(internal)?;
    let email = channels.email.as_ref();
    Ok(AlertSettingsView {
        failed_runs: rules.failed_runs,
        window_minutes: rules.window_minutes,
        webhook_format: channels
            .webhook_format
            .unwrap_or(cosell::domain::alerts::PayloadFormat::Json)
            .as_code()
            .into(),
        webhook_hint: channels.webhook_hint,
        webhook_secret_set: channels.webhook_secret_set,
        email_on: email.is_some(),
        email_host: email.map(|e| e.host.clone()).unwrap_or_default(),
        email_port: email.map(|e| e.port.to_string()).unwrap_or_default(),
        email_security: email
            .map(|e| e.security)
            .unwrap_or(cosell::domain::alerts::SmtpSecurity::StartTls)
            .as_code()
            .into(),
        email_username: email.and_then(|e| e.username.clone()).unwrap_or_default(),
        email_password_set: channels.email_password_set,
        email_from: email.map(|e| e.from.clone()).unwrap_or_default(),
        email_to: email.map(|e| e.to.join(", ")).unwrap_or_default(),
    })
}

/// Saves the alert rules and channels; nothing is saved unless every value reads. An empty URL, secret
/// or password keeps the one stored (they are never sent back to the page); a channel's box unticked
/// switches it off.
#[server(endpoint = "save_alert_settings")]
pub async fn save_alert_settings(
    failed_runs: String,
    window_minutes: String,
    webhook_on: Option<String>,
    webhook_url: String,
    webhook_format: String,
    webhook_secret: String,
    email_on: Option<String>,
    email_host: String,
    email_port: String,
    email_security: String,
    email_username: String,
    email_password: String,
    email_from: String,
    email_to: String,
) -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::crypto::Secret;
    use cosell::domain::alerts::{AlertRules, EmailTarget, PayloadFormat, WebhookTarget};
    use cosell::engine::alerts::{AlertsError, ChannelsInput};
    let me = require(cosell::domain::Access::Admin).await?;
    let given = |text: &str| {
        Some(text.trim())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let mut problems = Vec::new();
    let rules = AlertRules::parse(&failed_runs, &window_minutes)
        .map_err(|e| problems.push(e))
        .ok();
    let webhook = match webhook_on {
        None => None,
        Some(_) => match given(&webhook_url) {
            // A URL typed: it must read. None: keep the stored one (the engine says if there is none).
            Some(url) => match WebhookTarget::parse(&url, &webhook_format) {
                Ok(Some(t)) => Some((Some(t.url), t.format)),
                Ok(None) => None,
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
            None => match PayloadFormat::from_code(webhook_format.trim()) {
                Some(format) => Some((None, format)),
                None => {
                    problems.push(format!(
                        "Webhook format “{}” is not one cosell sends.",
                        webhook_format.trim()
                    ));
                    None
                }
            },
        },
    };
    let email = match email_on {
        None => None,
        Some(_) => match EmailTarget::parse(
            &email_host,
            &email_port,
            &email_security,
            &email_username,
            &email_from,
            &email_to,
        ) {
            Ok(Some(t)) => Some(t),
            Ok(None) => {
                problems.push("Give the SMTP host alert emails leave through.".into());
                None
            }
            Err(e) => {
                problems.push(e);
                None
            }
        },
    };
    let Some(rules) = rules.filter(|_| problems.is_empty()) else {
        return Err(AppError::Invalid(format!(
            "Nothing was saved. {}",
            problems.join(" ")
        )));
    };
    let input = ChannelsInput {
        webhook,
        webhook_secret: given(&webhook_secret).map(Secret::new),
        email,
        email_password: given(&email_password).map(Secret::new),
    };
    match context()?.engine.set_alerts(rules, input, &me.name).await {
        Ok(()) => Ok("Saved: the alert rules and channels.".into()),
        Err(AlertsError::Refused(why)) => Err(AppError::Invalid(why)),
        Err(AlertsError::Store(e)) => Err(internal(e)),
    }
}

/// Sends a test alert on every channel now and says how each went.
#[server(endpoint = "send_test_alert")]
pub async fn send_test_alert() -> Result<String, AppError> {
    use crate::auth::server::{context, internal, require};
    use cosell::engine::alerts::AlertsError;
    let me = require(cosell::domain::Access::Admin).await?;
    let results = match context()?.engine.send_test_alert(&me.name).await {
        Ok(results) => results,
        Err(AlertsError::Refused(why)) => return Err(AppError::Invalid(why)),
        Err(AlertsError::Store(e)) => return Err(internal(e)),
    };
    let said: Vec<String> = results
        .iter()
        .map(|(channel, result)| match result {
            Ok(how) => format!("{}: sent ({how}).", channel.label()),
            Err(why) => format!("{}: not sent: {why}", channel.label()),
        })
        .collect();
    if results.iter().all(|(_, r)| r.is_ok()) {
        Ok(format!("Test alert sent. {}", said.join(" ")))
    } else {
        Err(AppError::Invalid(format!(
            "The test alert did not go out everywhere. {}",
            said.join(" ")
        )))
    }
}

#[component]
pub fn AlertSettings(admin: bool) -> impl IntoView {
    use cosell::domain::alerts::{PayloadFormat, SmtpSecurity};
    let save = ServerAction::<SaveAlertSettings>::new();
    let test = ServerAction::<SendTestAlert>::new();
    let settings = Resource::new(move || save.version().get(), |_| get_alert_settings());
    view! {
        {move || crate::pages::action_result(save.value().get())}
        {move || crate::pages::action_result(test.value().get())}
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(s) => {
                        let keep = |set: bool| if set { "set; empty keeps it" } else { "not set" };
                        view! {
                            <section class="card" aria-label="Alerts" id="alerts" data-testid="alert-settings">
                                <h2>"Alerts"</h2>
                                <p>"When something needs a person, cosell opens an alert on the dashboard and sends it by webhook and email; it sends again when the alert resolves. Each cause has one alert at a time. See them on "<a href="/alerts">"Alerts"</a>"."</p>
                                <ActionForm action=save>
                                    <fieldset>
                                        <legend>"Rules"</legend>
                                        <p><label>"Alert when this many runs failed… "
                                            <input type="text" inputmode="numeric" name="failed_runs" size="5"
                                                value=s.failed_runs.to_string() readonly=!admin required=true/>
                                        </label>
                                        " "<label>"…within this many minutes "
                                            <input type="text" inputmode="numeric" name="window_minutes" size="5"
                                                value=s.window_minutes.to_string() readonly=!admin required=true/>
                                        </label></p>
                                        <p class="muted">"Always on: a connection that needs someone to sign in again; a day's API calls at 80 % and 100 % of the budget; Partner Center's deliveries silent for more than twice their usual longest gap (and at least an hour); the CRM's changes not read for three rounds."</p>
                                    </fieldset>
                                    <fieldset>
                                        <legend>"Webhook"</legend>
                                        <p><label><input type="checkbox" name="webhook_on" value="on" checked=s.webhook_hint.is_some() disabled=!admin/>
                                            " Send alerts to a webhook"</label></p>
                                        <p><label>{format!("URL ({})", s.webhook_hint.clone().map(|h| format!("now {h}; empty keeps it")).unwrap_or_else(|| "https://…".into()))}
                                            <input type="url" name="webhook_url" size="50" autocomplete="off" readonly=!admin/>
                                        </label></p>
                                        <p><label>"Format "
                                            <select name="webhook_format" disabled=!admin>
                                                {PayloadFormat::ALL.iter().map(|f| view! {
                                                    <option value=f.as_code() selected=s.webhook_format == f.as_code()>{f.label()}</option>
                                                }).collect_view()}
                                            </select>
                                        </label></p>
                                        <p><label>{format!("Signing secret ({})", keep(s.webhook_secret_set))}
                                            <input type="password" name="webhook_secret" size="30" autocomplete="new-password" readonly=!admin/>
                                        </label></p>
                                        <p class="muted">"JSON messages are signed: X-Cosell-Signature is sha256= and the HMAC-SHA256, under the secret, of X-Cosell-Timestamp, a dot and the body. X-Cosell-Delivery is the same on every retry. A message the receiver does not take is tried again with backoff for about an hour."</p>
                                    </fieldset>
                                    <fieldset>
                                        <legend>"Email"</legend>
                                        <p><label><input type="checkbox" name="email_on" value="on" checked=s.email_on disabled=!admin/>
                                            " Send alerts by email"</label></p>
                                        <p><label>"SMTP host " <input type="text" name="email_host" size="30" value=s.email_host.clone() readonly=!admin/></label>
                                        " "<label>"Port " <input type="text" inputmode="numeric" name="email_port" size="5" value=s.email_port.clone() readonly=!admin placeholder="587"/></label>
                                        " "<label>"Security "
                                            <select name="email_security" disabled=!admin>
                                                {SmtpSecurity::ALL.iter().map(|m| view! {
                                                    <option value=m.as_code() selected=s.email_security == m.as_code()>{m.label()}</option>
                                                }).collect_view()}
                                            </select>
                                        </label></p>
                                        <p><label>"User name (empty: no sign-in) " <input type="text" name="email_username" size="30" autocomplete="off" value=s.email_username.clone() readonly=!admin/></label>
                                        " "<label>{format!("Password ({}) ", keep(s.email_password_set))}
                                            <input type="password" name="email_password" size="20" autocomplete="new-password" readonly=!admin/>
                                        </label></p>
                                        <p><label>"From " <input type="email" name="email_from" size="30" value=s.email_from.clone() readonly=!admin/></label>
                                        " "<label>"To (commas between addresses) " <input type="text" name="email_to" size="40" value=s.email_to.clone() readonly=!admin/></label></p>
                                    </fieldset>
                                    {admin.then(|| view! { <button type="submit" class="primary">"Save alerts"</button> })}
                                </ActionForm>
                                {admin.then(|| view! {
                                    <ActionForm action=test attr:class="inline">
                                        <button type="submit">"Send test alert"</button>
                                    </ActionForm>
                                })}
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
