//! Alerts at work (src/domain/alerts.rs): every instance judges the rules on a timer and whenever
//! something may have changed (a connection refused, a reconnect); the database keeps one open alert per
//! cause and writes each message with the change that causes it; whichever instance claims a message
//! sends it, and tries again with backoff until the receiver takes it.
//!
//! The channels are settings an admin saves on the Settings page. The webhook's URL (Slack's and Teams'
//! carry their token in it), its signing secret and the SMTP password are sealed at rest and never
//! shown again; the page shows only whether they are set.

use super::Engine;
use crate::clients::alert_channels::{self, SendError};
use crate::crypto::Secret;
use crate::domain::alerts::{
    AlertEvent, AlertFacts, AlertMessage, AlertRules, Channel, EmailTarget, FeedFacts,
    PayloadFormat, Severity, WebhookTarget, judge,
};
use crate::domain::connection::System;
use crate::domain::runs::AuditAction;
use crate::store::{DeliveryJob, NewAuditEvent, StoreError, StoredAlert};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

pub const RULES_SETTING: &str = "alert_rules";
pub const CHANNELS_SETTING: &str = "alert_channels";

/// A message is given up after this many attempts (with the retry policy's backoff, about an hour).
pub const MAX_DELIVERY_ATTEMPTS: i64 = 10;

/// How long an instance may hold a message it is sending before another takes it over.
const DELIVERY_LEASE: Duration = Duration::from_secs(120);

/// How far back deliveries tell what is usual for Partner Center's webhook, and how many at most.
const USUAL_LOOKBACK: time::Duration = time::Duration::days(14);
const USUAL_SAMPLE: i64 = 500;

/// The webhook as stored: the URL and the secret sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredWebhook {
    url: String,
    format: PayloadFormat,
    secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredEmail {
    #[serde(flatten)]
    target: EmailTarget,
    password: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredChannels {
    webhook: Option<StoredWebhook>,
    email: Option<StoredEmail>,
}

impl StoredChannels {
    /// The channels set up, known without opening a secret: a secret that no longer opens (the key
    /// changed) must not keep alerts from being judged and shown.
    fn configured(&self) -> Vec<Channel> {
        channels_on(self.webhook.is_some(), self.email.is_some())
    }
}

/// What to do when the channels' secrets do not open.
const RESEAL: &str = "the alert channels' secrets do not open with this instance's COSELL_SECRET_KEY (was the key changed?): enter them again on Settings";

/// The channels, opened: what sending needs.
struct Channels {
    webhook: Option<(WebhookTarget, Option<Secret>)>,
    email: Option<(EmailTarget, Option<Secret>)>,
}

impl Channels {
    fn configured(&self) -> Vec<Channel> {
        channels_on(self.webhook.is_some(), self.email.is_some())
    }
}

fn channels_on(webhook: bool, email: bool) -> Vec<Channel> {
    [(Channel::Webhook, webhook), (Channel::Email, email)]
        .into_iter()
        .filter_map(|(channel, on)| on.then_some(channel))
        .collect()
}

/// The channels as the Settings page shows them: never a secret, only whether one is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelsView {
    /// `https://hooks.example.com/…`: scheme and host only, the rest may be a token.
    pub webhook_hint: Option<String>,
    pub webhook_format: Option<PayloadFormat>,
    pub webhook_secret_set: bool,
    pub email: Option<EmailTarget>,
    pub email_password_set: bool,
}

/// What an admin saves. `None` for the URL, a secret or the password keeps what is stored.
#[derive(Debug, Clone)]
pub struct ChannelsInput {
    /// Off, or on with (when given) a new URL, and the format.
    pub webhook: Option<(Option<String>, PayloadFormat)>,
    pub webhook_secret: Option<Secret>,
    pub email: Option<EmailTarget>,
    pub email_password: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// What the admin asked for does not work; says why.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one judging of the rules changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AlertChanges {
    pub opened: usize,
    pub escalated: usize,
    pub resolved: usize,
}

/// Per-instance alerting state.
pub(crate) struct AlertsState {
    /// Judge the rules now (something may have changed).
    judge: Notify,
    /// Messages are waiting.
    send: Notify,
    /// This instance's dashboard, for the links in messages (set when the loops start).
    base_url: OnceLock<String>,
}

impl AlertsState {
    pub(crate) fn new() -> AlertsState {
        AlertsState {
            judge: Notify::new(),
            send: Notify::new(),
            base_url: OnceLock::new(),
        }
    }
}

fn webhook_context(field: &str) -> String {
    format!("setting:{CHANNELS_SETTING}:webhook.{field}")
}

const EMAIL_PASSWORD_CONTEXT: &str = "setting:alert_channels:email.password";

/// `https://host/…`: what of a URL the page may show.
fn hint(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}/…")
}

impl Engine {
    /// The rules' thresholds an admin set, or the defaults.
    pub async fn alert_rules(&self) -> Result<AlertRules, StoreError> {
        Ok(match self.store.setting(RULES_SETTING).await? {
            None => AlertRules::default(),
            Some(value) => serde_json::from_value(value).map_err(|e| {
                StoreError::Corrupt(format!("the stored alert rules do not read: {e}"))
            })?,
        })
    }

    async fn stored_channels(&self) -> Result<StoredChannels, StoreError> {
        Ok(match self.store.setting(CHANNELS_SETTING).await? {
            None => StoredChannels::default(),
            Some(value) => serde_json::from_value(value).map_err(|e| {
                StoreError::Corrupt(format!("the stored alert channels do not read: {e}"))
            })?,
        })
    }

    fn open_secret(&self, sealed: &str, context: &str) -> Result<Secret, StoreError> {
        let bytes = self
            .tokens
            .sealing_key()
            .open(sealed, context)
            .map_err(|e| StoreError::Sealed(e.to_string()))?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| StoreError::Sealed("not text".into()))
    }

    async fn channels(&self) -> Result<Channels, StoreError> {
        let stored = self.stored_channels().await?;
        let webhook = match stored.webhook {
            None => None,
            Some(w) => {
                let url = self.open_secret(&w.url, &webhook_context("url"))?;
                let secret = w
                    .secret
                    .map(|s| self.open_secret(&s, &webhook_context("secret")))
                    .transpose()?;
                Some((
                    WebhookTarget {
                        url: url.expose().to_string(),
                        format: w.format,
                    },
                    secret,
                ))
            }
        };
        let email = match stored.email {
            None => None,
            Some(e) => {
                let password = e
                    .password
                    .map(|p| self.open_secret(&p, EMAIL_PASSWORD_CONTEXT))
                    .transpose()?;
                Some((e.target, password))
            }
        };
        Ok(Channels { webhook, email })
    }

    /// The channels as the Settings page may show them.
    pub async fn alert_channels(&self) -> Result<ChannelsView, StoreError> {
        let stored = self.stored_channels().await?;
        let webhook_hint = stored.webhook.as_ref().map(|w| {
            match self.open_secret(&w.url, &webhook_context("url")) {
                Ok(url) => hint(url.expose()),
                Err(_) => "sealed with another key: enter it again".to_string(),
            }
        });
        Ok(ChannelsView {
            webhook_hint,
            webhook_format: stored.webhook.as_ref().map(|w| w.format),
            webhook_secret_set: stored.webhook.as_ref().is_some_and(|w| w.secret.is_some()),
            email_password_set: stored.email.as_ref().is_some_and(|e| e.password.is_some()),
            email: stored.email.map(|e| e.target),
        })
    }

    /// Saves the rules and the channels (audited, without a secret). A webhook needs a URL (the one
    /// given, or the one stored); cosell's own JSON format needs a signing secret.
    pub async fn set_alerts(
        &self,
        rules: AlertRules,
        input: ChannelsInput,
        by: &str,
    ) -> Result<(), AlertsError> {
        let now = OffsetDateTime::now_utc();
        let stored = self.stored_channels().await?;
        let key = self.tokens.sealing_key();
        let webhook = match input.webhook {
            None => None,
            Some((url, format)) => {
                let url = match (url, stored.webhook.as_ref()) {
                    (Some(url), _) => key.seal(url.as_bytes(), &webhook_context("url")),
                    (None, Some(w)) => w.url.clone(),
                    (None, None) => {
                        return Err(AlertsError::Refused(
                            "Nothing was saved. Give the webhook's URL.".into(),
                        ));
                    }
                };
                let secret = match (input.webhook_secret, stored.webhook.as_ref()) {
                    (Some(s), _) => {
                        Some(key.seal(s.expose().as_bytes(), &webhook_context("secret")))
                    }
                    (None, Some(w)) => w.secret.clone(),
                    (None, None) => None,
                };
                if format == PayloadFormat::Json && secret.is_none() {
                    return Err(AlertsError::Refused(
                        "Nothing was saved. The JSON format is signed: give a signing secret (the receiver checks X-Cosell-Signature with it).".into(),
                    ));
                }
                Some(StoredWebhook {
                    url,
                    format,
                    secret,
                })
            }
        };
        let email = input.email.map(|target| {
            let password = match (input.email_password.as_ref(), stored.email.as_ref()) {
                (Some(p), _) => Some(key.seal(p.expose().as_bytes(), EMAIL_PASSWORD_CONTEXT)),
                (None, Some(e)) => e.password.clone(),
                (None, None) => None,
            };
            StoredEmail { target, password }
        });
        let said = format!(
            "Alerts: {} failed runs in {} minutes; webhook {}; email {}.",
            rules.failed_runs,
            rules.window_minutes,
            match &webhook {
                Some(w) => format!("on ({})", w.format.label()),
                None => "off".into(),
            },
            match &email {
                Some(e) => format!("to {} through {}", e.target.to.join(", "), e.target.host),
                None => "off".into(),
            }
        );
        let rules_value = serde_json::to_value(rules)
            .map_err(|e| StoreError::Corrupt(format!("the rules do not serialize: {e}")))?;
        let channels_value = serde_json::to_value(StoredChannels { webhook, email })
            .map_err(|e| StoreError::Corrupt(format!("the channels do not serialize: {e}")))?;
        self.store
            .set_setting(RULES_SETTING, &rules_value, by, now)
            .await?;
        self.store
            .set_setting(CHANNELS_SETTING, &channels_value, by, now)
            .await?;
        self.audit_by(
            by,
            NewAuditEvent::new(
                AuditAction::AlertsChanged,
                "settings",
                CHANNELS_SETTING,
                said,
            ),
            now,
        )
        .await?;
        self.alerts.judge.notify_one();
        Ok(())
    }

    /// Asks for the rules to be judged now (a connection changed, a run paused).
    pub fn alerts_due(&self) {
        self.alerts.judge.notify_one();
    }

    /// What the rules are judged on, from the database (no outside call).
    async fn alert_facts(
        &self,
        rules: &AlertRules,
        now: OffsetDateTime,
    ) -> Result<AlertFacts, StoreError> {
        let feed = self.opportunity_feed();
        let facts = self
            .store
            .overview(self.crm, &feed, now, now - rules.window())
            .await?;
        let budgets = self.budgets().await?;
        let crm = System::Crm(self.crm);
        let mut connections = Vec::new();
        let mut quota = Vec::new();
        for (system, standing, used) in [
            (
                System::PartnerCenter,
                &facts.partner_center,
                facts.partner_center_calls,
            ),
            (crm, &facts.crm, facts.crm_calls),
        ] {
            if let Some(standing) = standing {
                connections.push((system, standing.diagnosis));
                let day = self.day_standing(system, used, &budgets, now);
                quota.push((system, day.used, day.budget));
            }
        }
        let feed = (facts.crm.is_some() && self.crm_port().is_ok()).then(|| FeedFacts {
            polled_at: facts.crm_feed_polled_at,
            every: self.feed.every(),
        });
        Ok(AlertFacts {
            now,
            connections,
            failed_in_window: facts.failed_since,
            quota,
            deliveries: self
                .store
                .delivery_times(now - USUAL_LOOKBACK, USUAL_SAMPLE)
                .await?,
            feed,
        })
    }

    /// Judges the rules now: opens an alert for each new cause, escalates one that got worse, resolves
    /// those whose cause cleared, each with its messages.
    pub async fn check_alerts(&self) -> Result<AlertChanges, StoreError> {
        let now = OffsetDateTime::now_utc();
        // Open alerts first, facts second: an alert another instance opens meanwhile was raised on
        // facts older than ours, so resolving what our facts no longer raise is right.
        let open = self.store.open_alerts().await?;
        let rules = self.alert_rules().await?;
        let raised = judge(&self.alert_facts(&rules, now).await?, &rules);
        let channels = self.stored_channels().await?.configured();
        let mut changes = AlertChanges::default();
        for r in &raised {
            match open.iter().find(|a| a.cause == r.cause) {
                None => {
                    if let Some(id) = self.store.open_alert(r, &channels, now).await? {
                        tracing::warn!(alert_id = id, cause = %r.cause, "alert opened: {}", r.title);
                        changes.opened += 1;
                    }
                }
                Some(a) if a.severity == Severity::Warning && r.severity == Severity::Critical => {
                    if self.store.escalate_alert(a.id, r, &channels, now).await? {
                        tracing::warn!(alert_id = a.id, cause = %r.cause, "alert escalated: {}", r.title);
                        changes.escalated += 1;
                    }
                }
                Some(_) => {}
            }
        }
        for a in open
            .iter()
            .filter(|a| !raised.iter().any(|r| r.cause == a.cause))
        {
            if self.store.resolve_alert(a.id, &channels, now).await? {
                tracing::info!(alert_id = a.id, cause = %a.cause, "alert resolved: {}", a.title);
                changes.resolved += 1;
            }
        }
        if changes != AlertChanges::default() {
            self.alerts.send.notify_one();
        }
        Ok(changes)
    }

    /// The dashboard's links in messages start here.
    fn link(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.alerts.base_url.get().map(String::as_str).unwrap_or("")
        )
    }

    fn message(&self, event: AlertEvent, alert: &StoredAlert) -> AlertMessage {
        AlertMessage {
            event,
            alert_id: Some(alert.id),
            cause: alert.cause.clone(),
            kind: Some(alert.kind),
            severity: alert.severity,
            title: alert.title.clone(),
            detail: alert.detail.clone(),
            link: self.link(&alert.fix_href),
            opened_at: alert.opened_at,
            resolved_at: alert.resolved_at.filter(|_| event == AlertEvent::Resolved),
        }
    }

    async fn send(
        &self,
        channels: &Channels,
        channel: Channel,
        message: &AlertMessage,
        delivery_id: &str,
    ) -> Result<String, SendError> {
        match channel {
            Channel::Webhook => {
                let Some((target, secret)) = &channels.webhook else {
                    return Err(SendError::Permanent("the webhook was switched off".into()));
                };
                alert_channels::send_webhook(
                    &self.alert_http,
                    target,
                    secret.as_ref(),
                    message,
                    delivery_id,
                    OffsetDateTime::now_utc().unix_timestamp(),
                )
                .await
            }
            Channel::Email => {
                let Some((target, password)) = &channels.email else {
                    return Err(SendError::Permanent("email was switched off".into()));
                };
                alert_channels::send_email(target, password.as_ref(), message).await
            }
        }
    }

    /// Sends one message that is due, if any: true when there was one.
    pub async fn deliver_alert_once(&self) -> Result<bool, StoreError> {
        let owner = format!("{}-alerts", self.owner);
        let now = OffsetDateTime::now_utc();
        let Some(job) = self
            .store
            .claim_alert_delivery(&owner, now, now + DELIVERY_LEASE)
            .await?
        else {
            return Ok(false);
        };
        let DeliveryJob {
            id,
            channel,
            event,
            attempts,
            alert,
        } = job;
        let message = self.message(event, &alert);
        let result = match self.channels().await {
            Ok(channels) => {
                self.send(
                    &channels,
                    channel,
                    &message,
                    &format!("alert-{}-{id}", alert.id),
                )
                .await
            }
            Err(StoreError::Sealed(_)) => Err(SendError::Permanent(RESEAL.into())),
            Err(e) => Err(SendError::Transient(e.to_string(), None)),
        };
        let now = OffsetDateTime::now_utc();
        match result {
            Ok(said) => {
                tracing::info!(
                    alert_id = alert.id,
                    channel = channel.as_code(),
                    event = event.as_code(),
                    "alert message sent: {said}"
                );
                self.store
                    .end_alert_delivery(id, &owner, now, None, None)
                    .await?;
            }
            Err(SendError::Transient(why, retry_after)) if attempts < MAX_DELIVERY_ATTEMPTS => {
                let wait = self.policy.delay(attempts as u32, retry_after);
                tracing::warn!(
                    alert_id = alert.id,
                    channel = channel.as_code(),
                    attempts,
                    "alert message not sent, trying again in {} s: {why}",
                    wait.as_secs_f64().ceil()
                );
                let note = format!("Attempt {attempts}: {why}");
                self.store
                    .end_alert_delivery(id, &owner, now, Some(&note), Some(now + wait))
                    .await?;
            }
            Err(e) => {
                tracing::error!(
                    alert_id = alert.id,
                    channel = channel.as_code(),
                    attempts,
                    "alert message given up: {e}"
                );
                let note = format!("Gave up after attempt {attempts}: {e}");
                self.store
                    .end_alert_delivery(id, &owner, now, Some(&note), None)
                    .await?;
            }
        }
        Ok(true)
    }

    /// Sends a test message on every channel now (no retry: the admin is waiting to see how it went).
    pub async fn send_test_alert(
        &self,
        by: &str,
    ) -> Result<Vec<(Channel, Result<String, String>)>, AlertsError> {
        let channels = match self.channels().await {
            Err(StoreError::Sealed(_)) => {
                return Err(AlertsError::Refused(format!("Nothing was sent: {RESEAL}.")));
            }
            other => other?,
        };
        let on = channels.configured();
        if on.is_empty() {
            return Err(AlertsError::Refused(
                "No channel is set up: save a webhook or an email server first.".into(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let message = AlertMessage {
            event: AlertEvent::Test,
            alert_id: None,
            cause: "test".into(),
            kind: None,
            severity: Severity::Warning,
            title: "A test alert from cosell".into(),
            detail: format!(
                "{by} sent this from Settings to try the alert channels. Nothing is wrong."
            ),
            link: self.link("/alerts"),
            opened_at: now,
            resolved_at: None,
        };
        let mut results = Vec::new();
        for channel in on {
            let id = format!("test-{}", now.unix_timestamp_nanos());
            let result = self.send(&channels, channel, &message, &id).await;
            results.push((channel, result.map_err(|e| e.to_string())));
        }
        Ok(results)
    }

    /// Marks open alert `id` as seen by `by` (audited): the banner stops showing it.
    pub async fn acknowledge_alert(&self, id: i64, by: &str) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let done = self.store.acknowledge_alert(id, by, now).await?;
        if done {
            self.audit_by(
                by,
                NewAuditEvent::new(
                    AuditAction::AlertAcknowledged,
                    "alert",
                    &id.to_string(),
                    format!("{by} acknowledged alert {id}."),
                ),
                now,
            )
            .await?;
        }
        Ok(done)
    }

    /// Judges the rules every `every` and whenever asked to ([`Engine::alerts_due`]), and sends the
    /// messages as they come, until `stop` turns true. `base_url` starts the links in messages.
    pub fn spawn_alerts(
        self: &std::sync::Arc<Self>,
        base_url: String,
        every: Duration,
        stop: watch::Receiver<bool>,
    ) {
        let _ = self.alerts.base_url.set(base_url);
        let engine = self.clone();
        let mut judge_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = engine.check_alerts().await {
                    tracing::error!(error = %e, "could not judge the alert rules");
                }
                tokio::select! {
                    _ = engine.alerts.judge.notified() => {}
                    _ = tokio::time::sleep(every) => {}
                    _ = judge_stop.wait_for(|s| *s) => break,
                }
            }
        });
        let engine = self.clone();
        let mut stop = stop;
        tokio::spawn(async move {
            loop {
                let woken = engine.alerts.send.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                match engine.deliver_alert_once().await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "could not send alert messages"),
                }
                let poll = engine.policy.poll_interval;
                let wait = match engine.store.next_alert_delivery_due().await {
                    Ok(Some(due)) => Duration::try_from(due - OffsetDateTime::now_utc())
                        .unwrap_or(Duration::ZERO)
                        .min(poll),
                    _ => poll,
                };
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn a_webhook_url_is_shown_by_its_host_only() {
        assert_eq!(
            hint("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(hint("http://127.0.0.1:9/x?token=1"), "http://127.0.0.1:9/…");
    }
}
