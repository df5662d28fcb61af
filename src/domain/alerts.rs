//! Alerts: cosell tells people when something needs them, so nobody has to watch the dashboard.
//!
//! Five rules are judged on what the database already holds (judging them costs no call to any outside
//! system): runs failing (N in M minutes), a connection whose sign-in needs a person, a day's API calls at
//! 80 % and 100 % of the budget, Partner Center's deliveries silent for longer than usual, and the CRM's
//! change feed not read. A cause has at most one open alert; it resolves by itself when the cause clears.
//! Alerts reach people on the dashboard (a banner, the Alerts page) and outbound: a signed JSON webhook
//! (or Slack's or Teams' own payload) and email.

use super::connection::{Diagnosis, QuotaStanding, System};
use super::numbers::thousands;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;

super::runs::coded_enum!(
    /// Which rule raised an alert.
    AlertKind as "kebab-case" {
        RunsFailing = "runs-failing",
        Credential = "credential",
        Quota = "quota",
        WebhookSilent = "webhook-silent",
        FeedStalled = "feed-stalled",
    }
);

super::runs::coded_enum!(
    /// How bad: a warning may wait for working hours; critical means syncing has stopped or will.
    Severity as "kebab-case" {
        Warning = "warning",
        Critical = "critical",
    }
);

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Warning => "Warning",
            Severity::Critical => "Critical",
        }
    }
}

/// What a rule found: a cause (the key that keeps one open alert per cause) and its alert's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub cause: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub title: String,
    pub detail: String,
    /// The dashboard page where it is fixed (a path).
    pub fix_href: String,
}

/// The rules' thresholds an admin sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRules {
    /// Alert when at least this many runs failed…
    pub failed_runs: u32,
    /// …within this many minutes.
    pub window_minutes: u32,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            failed_runs: 5,
            window_minutes: 15,
        }
    }
}

impl AlertRules {
    /// From what an admin typed; says which value does not read, and why.
    pub fn parse(failed_runs: &str, window_minutes: &str) -> Result<AlertRules, String> {
        let number = |text: &str, what: &str, max: u32| -> Result<u32, String> {
            match text.trim().parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{what} must be a whole number from 1 to {max} (got “{}”).",
                    text.trim()
                )),
            }
        };
        match (
            number(failed_runs, "Failed runs", 10_000),
            number(window_minutes, "Minutes", 24 * 60),
        ) {
            (Ok(failed_runs), Ok(window_minutes)) => Ok(AlertRules {
                failed_runs,
                window_minutes,
            }),
            (a, b) => Err([a.err(), b.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")),
        }
    }

    pub fn window(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.window_minutes))
    }
}

/// Partner Center's deliveries are judged silent only with this many on record to say what is usual.
pub const USUAL_NEEDS_DELIVERIES: usize = 10;

/// However regular the deliveries, a silence shorter than this is not worth anyone's attention.
pub const SILENCE_FLOOR: Duration = Duration::from_secs(60 * 60);

/// The CRM's change feed, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedFacts {
    /// When any instance last read it; None before the first read.
    pub polled_at: Option<OffsetDateTime>,
    /// How often it is read.
    pub every: Duration,
}

/// Everything the rules are judged on, as of `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertFacts {
    pub now: OffsetDateTime,
    /// Every stored connection and what is wrong with it, if anything.
    pub connections: Vec<(System, Option<Diagnosis>)>,
    /// Runs started within the rules' window that failed.
    pub failed_in_window: i64,
    /// Each connection's day: calls used and its budget.
    pub quota: Vec<(System, i64, i64)>,
    /// When the latest deliveries arrived, newest first (the last 14 days, at most a few hundred).
    pub deliveries: Vec<OffsetDateTime>,
    /// The CRM's change feed, when a CRM is connected.
    pub feed: Option<FeedFacts>,
}

/// A feed not read for this long has stalled: three missed reads, and some slack.
pub fn stale_after(every: Duration) -> Duration {
    every * 3 + Duration::from_secs(5)
}

/// The longest wait between two deliveries on record (newest first), when there are enough to say.
pub fn usual_gap(deliveries: &[OffsetDateTime]) -> Option<Duration> {
    if deliveries.len() < USUAL_NEEDS_DELIVERIES {
        return None;
    }
    deliveries
        .windows(2)
        .map(|pair| Duration::try_from(pair[0] - pair[1]).unwrap_or_default())
        .max()
}

/// A length of time as people say it: "45 s", "12 min", "5 h", "3 days".
pub fn span(d: Duration) -> String {
    match d.as_secs() {
        s if s < 90 => format!("{s} s"),
        s if s < 90 * 60 => format!("{} min", s / 60),
        s if s < 48 * 3600 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

/// Every cause that holds at `facts.now`, one per cause.
pub fn judge(facts: &AlertFacts, rules: &AlertRules) -> Vec<Raised> {
    let mut raised = Vec::new();
    let mut crm_sign_in_broken = false;
    for (system, diagnosis) in &facts.connections {
        // A system that does not answer is retried by itself; every other diagnosis waits for a person.
        if let Some(d) = diagnosis.filter(|d| *d != Diagnosis::Unreachable) {
            crm_sign_in_broken |= matches!(system, System::Crm(_));
            raised.push(Raised {
                cause: format!("credential:{}", system.as_code()),
                kind: AlertKind::Credential,
                severity: Severity::Critical,
                title: d.headline(*system),
                detail: format!(
                    "Runs that need {} are paused (none is lost) until it works again. {}",
                    system.label(),
                    d.fix(*system)
                ),
                fix_href: "/connections".into(),
            });
        }
    }
    if facts.failed_in_window >= i64::from(rules.failed_runs) {
        raised.push(Raised {
            cause: "runs-failing".into(),
            kind: AlertKind::RunsFailing,
            severity: Severity::Warning,
            title: format!(
                "{} runs failed in the last {} minutes",
                facts.failed_in_window, rules.window_minutes
            ),
            detail: format!(
                "At least {} failed runs within {} minutes raise this alert. Each failed run keeps its input and says why it failed: fix the cause, then resubmit them from the Runs page.",
                rules.failed_runs, rules.window_minutes
            ),
            fix_href: "/runs?status=failed".into(),
        });
    }
    for (system, used, budget) in &facts.quota {
        let (severity, share) = match QuotaStanding::of(*used, *budget) {
            QuotaStanding::Fine => continue,
            QuotaStanding::Near => (Severity::Warning, "80 %"),
            QuotaStanding::Spent => (Severity::Critical, "100 %"),
        };
        raised.push(Raised {
            cause: format!("quota:{}", system.as_code()),
            kind: AlertKind::Quota,
            severity,
            title: format!(
                "{}: {share} of the day's API budget used",
                system.label()
            ),
            detail: format!(
                "{} of {} calls used today (UTC). {}",
                thousands(*used),
                thousands(*budget),
                if severity == Severity::Critical {
                    "New work waits for midnight UTC, deferred and not failed; raise the budget on Settings to let it go now."
                } else {
                    "Routine work (reconciliation, “Check”) waits for tomorrow once the day's pace would pass the budget; sellers' changes and new referrals go first."
                }
            ),
            fix_href: "/settings".into(),
        });
    }
    if let (Some(usual), Some(last)) = (usual_gap(&facts.deliveries), facts.deliveries.first()) {
        let silent = Duration::try_from(facts.now - *last).unwrap_or_default();
        if silent > (usual * 2).max(SILENCE_FLOOR) {
            raised.push(Raised {
                cause: "webhook-silent".into(),
                kind: AlertKind::WebhookSilent,
                severity: Severity::Warning,
                title: format!("No delivery from Partner Center for {}", span(silent)),
                detail: format!(
                    "Partner Center's deliveries usually come at most {} apart here. Its webhook may no longer reach this instance (its public URL, a proxy, a firewall) or its registration changed. Diagnostics sends a test event to find out; cosell reconciles every day, so nothing is lost.",
                    span(usual)
                ),
                fix_href: "/diagnostics#webhook-arriving".into(),
            });
        }
    }
    if let Some(FeedFacts {
        polled_at: Some(polled),
        every,
    }) = facts.feed
    {
        let since = Duration::try_from(facts.now - polled).unwrap_or_default();
        // A broken CRM sign-in stalls the feed too: its own alert says what to do.
        if since > stale_after(every) && !crm_sign_in_broken {
            raised.push(Raised {
                cause: "feed-stalled".into(),
                kind: AlertKind::FeedStalled,
                severity: Severity::Critical,
                title: format!("The CRM's changes have not been read for {}", span(since)),
                detail: format!(
                    "The change feed is read every {}; sellers' changes are not reaching Partner Center meanwhile. Check the CRM connection; once it is read again, nothing is missed.",
                    span(every)
                ),
                fix_href: "/diagnostics#crm-feed-current".into(),
            });
        }
    }
    raised
}

super::runs::coded_enum!(
    /// What happened to an alert, as a message about it says.
    AlertEvent as "kebab-case" {
        Opened = "opened",
        /// Still open, and worse (a day's calls from 80 % to 100 %).
        Escalated = "escalated",
        Resolved = "resolved",
        /// Sent from Settings to try the channels.
        Test = "test",
    }
);

/// One message about an alert, whatever carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertMessage {
    pub event: AlertEvent,
    pub alert_id: Option<i64>,
    pub cause: String,
    pub kind: Option<AlertKind>,
    pub severity: Severity,
    pub title: String,
    pub detail: String,
    /// Where to act: an absolute URL of this instance's dashboard.
    pub link: String,
    pub opened_at: OffsetDateTime,
    pub resolved_at: Option<OffsetDateTime>,
}

impl AlertMessage {
    /// The one line a chat message or an email subject leads with.
    pub fn headline(&self) -> String {
        match self.event {
            AlertEvent::Opened => format!("[cosell] {}: {}", self.severity.label(), self.title),
            AlertEvent::Escalated => format!(
                "[cosell] Now {}: {}",
                self.severity.label().to_lowercase(),
                self.title
            ),
            AlertEvent::Resolved => format!("[cosell] Resolved: {}", self.title),
            AlertEvent::Test => format!("[cosell] Test: {}", self.title),
        }
    }

    /// The plain-text body of an email.
    pub fn text(&self) -> String {
        let when = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let mut text = format!("{}\n\n{}\n\n", self.title, self.detail);
        match self.resolved_at {
            Some(at) => text.push_str(&format!(
                "Opened {}, resolved {}: the cause has cleared.\n",
                when(self.opened_at),
                when(at)
            )),
            None => text.push_str(&format!("Opened {}.\n", when(self.opened_at))),
        }
        text.push_str(&format!("\nOpen cosell: {}\n", self.link));
        text
    }

    /// The webhook's JSON body in the format the receiver reads.
    pub fn payload(&self, format: PayloadFormat) -> Value {
        let rfc3339 = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        match format {
            PayloadFormat::Json => json!({
                "event": self.event.as_code(),
                "alert": {
                    "id": self.alert_id,
                    "cause": self.cause,
                    "kind": self.kind.map(AlertKind::as_code),
                    "severity": self.severity.as_code(),
                    "title": self.title,
                    "detail": self.detail,
                    "link": self.link,
                    "opened_at": rfc3339(self.opened_at),
                    "resolved_at": self.resolved_at.map(rfc3339),
                },
            }),
            // Slack incoming webhooks: `text` is required and is what notifications show; the blocks
            // lay it out (Slack's "Sending messages using incoming webhooks").
            PayloadFormat::Slack => json!({
                "text": self.headline(),
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*\n{}", self.headline(), self.detail)}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("<{}|Open cosell>", self.link)}]},
                ],
            }),
            // Teams incoming webhooks (Workflows): a message carrying one Adaptive Card.
            PayloadFormat::Teams => json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": self.headline(), "weight": "Bolder", "size": "Medium", "wrap": true},
                            {"type": "TextBlock", "text": self.detail, "wrap": true},
                        ],
                        "actions": [{"type": "Action.OpenUrl", "title": "Open cosell", "url": self.link}],
                    },
                }],
            }),
        }
    }
}

super::runs::coded_enum!(
    /// A way out for alerts.
    Channel as "kebab-case" {
        Webhook = "webhook",
        Email = "email",
    }
);

impl Channel {
    pub fn label(self) -> &'static str {
        match self {
            Channel::Webhook => "Webhook",
            Channel::Email => "Email",
        }
    }
}

super::runs::coded_enum!(
    /// The body an alert webhook sends: cosell's own JSON, or what Slack's or Teams' incoming
    /// webhooks read.
    PayloadFormat as "kebab-case" {
        Json = "json",
        Slack = "slack",
        Teams = "teams",
    }
);

impl PayloadFormat {
    pub fn label(self) -> &'static str {
        match self {
            PayloadFormat::Json => "JSON (signed)",
            PayloadFormat::Slack => "Slack",
            PayloadFormat::Teams => "Microsoft Teams",
        }
    }
}

super::runs::coded_enum!(
    /// How the SMTP connection is secured.
    SmtpSecurity as "kebab-case" {
        /// Plain, upgraded with STARTTLS (port 587).
        StartTls = "starttls",
        /// TLS from the first byte (port 465).
        Tls = "tls",
        /// No encryption: a relay on the same host or network only.
        Plain = "plain",
    }
);

impl SmtpSecurity {
    pub fn label(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "STARTTLS",
            SmtpSecurity::Tls => "TLS",
            SmtpSecurity::Plain => "None (local relay only)",
        }
    }
}

/// Where alert webhooks go, and in what shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    pub url: String,
    pub format: PayloadFormat,
}

/// The SMTP server alert emails leave through, and who gets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailTarget {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// Signs in with this user (and the sealed password) when set.
    pub username: Option<String>,
    pub from: String,
    pub to: Vec<String>,
}

/// An address as far as a form can tell: one `@`, something on both sides, no spaces or brackets.
fn looks_like_address(text: &str) -> bool {
    let mut parts = text.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None)
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(|c: char| c.is_whitespace() || "<>,;\"".contains(c))
    )
}

impl WebhookTarget {
    /// From the form: an `http(s)://` URL (empty: no webhook) and a format code.
    pub fn parse(url: &str, format: &str) -> Result<Option<WebhookTarget>, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let format = PayloadFormat::from_code(format.trim()).ok_or_else(|| {
            format!(
                "Webhook format “{}” is not one cosell sends.",
                format.trim()
            )
        })?;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| {
                format!("The webhook URL must start with https:// or http:// (got “{url}”).")
            })?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || url.contains(char::is_whitespace) {
            return Err(format!("The webhook URL “{url}” names no host."));
        }
        Ok(Some(WebhookTarget {
            url: url.to_string(),
            format,
        }))
    }
}

impl EmailTarget {
    /// From the form (empty host: no email). Recipients are separated by commas, semicolons or spaces.
    pub fn parse(
        host: &str,
        port: &str,
        security: &str,
        username: &str,
        from: &str,
        to: &str,
    ) -> Result<Option<EmailTarget>, String> {
        let host = host.trim();
        if host.is_empty() {
            return Ok(None);
        }
        let mut problems = Vec::new();
        if host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
            problems.push(format!("The SMTP host “{host}” is not a host name."));
        }
        let chosen = SmtpSecurity::from_code(security.trim());
        if chosen.is_none() {
            problems.push(format!(
                "SMTP security “{}” is not one cosell knows.",
                security.trim()
            ));
        }
        let port = match port.trim() {
            "" => Some(match chosen {
                Some(SmtpSecurity::Tls) => 465,
                _ => 587,
            }),
            text => match text.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    problems.push(format!(
                        "The SMTP port must be a number from 1 to 65535 (got “{text}”)."
                    ));
                    None
                }
            },
        };
        let from = from.trim();
        if !looks_like_address(from) {
            problems.push(format!("The sender “{from}” is not an email address."));
        }
        let to: Vec<String> = to
            .split([',', ';', ' ', '\n', '\r', '\t'])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        if to.is_empty() {
            problems.push("Name at least one recipient.".to_string());
        }
        for bad in to.iter().filter(|a| !looks_like_address(a)) {
            problems.push(format!("The recipient “{bad}” is not an email address."));
        }
        match (problems.is_empty(), port, chosen) {
            (true, Some(port), Some(security)) => Ok(Some(EmailTarget {
                host: host.to_string(),
                port,
                security,
                username: Some(username.trim())
                    .filter(|u| !u.is_empty())
                    .map(str::to_string),
                from: from.to_string(),
                to,
            })),
            _ => Err(problems.join(" ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-05 12:00 UTC);
    const PC: System = System::PartnerCenter;
    const D365: System = System::DYNAMICS_365;

    fn facts() -> AlertFacts {
        AlertFacts {
            now: NOW,
            connections: vec![(PC, None), (D365, None)],
            failed_in_window: 0,
            quota: vec![(PC, 10, 10_000), (D365, 10, 10_000)],
            deliveries: vec![],
            feed: Some(FeedFacts {
                polled_at: Some(NOW - time::Duration::seconds(30)),
                every: Duration::from_secs(60),
            }),
        }
    }

    fn causes(facts: &AlertFacts) -> Vec<String> {
        judge(facts, &AlertRules::default())
            .into_iter()
            .map(|r| r.cause)
            .collect()
    }

    #[test]
    fn all_well_raises_nothing() {
        assert!(causes(&facts()).is_empty());
    }

    #[test]
    fn a_credential_needing_a_person_raises_one_alert_per_system_but_an_outage_does_not() {
        let mut f = facts();
        f.connections = vec![
            (PC, Some(Diagnosis::PasswordExpired)),
            (D365, Some(Diagnosis::Unreachable)),
        ];
        let raised = judge(&f, &AlertRules::default());
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].cause, "credential:partner_center");
        assert_eq!(raised[0].severity, Severity::Critical);
        assert_eq!(raised[0].fix_href, "/connections");
        assert!(
            raised[0].detail.contains("Reconnect"),
            "{}",
            raised[0].detail
        );
    }

    #[test]
    fn failed_runs_raise_at_the_threshold_within_the_window() {
        let rules = AlertRules {
            failed_runs: 3,
            window_minutes: 10,
        };
        let mut f = facts();
        f.failed_in_window = 2;
        assert!(judge(&f, &rules).is_empty());
        f.failed_in_window = 3;
        let raised = judge(&f, &rules);
        assert_eq!(raised[0].cause, "runs-failing");
        assert_eq!(raised[0].title, "3 runs failed in the last 10 minutes");
    }

    #[test]
    fn quota_warns_at_80_and_is_critical_at_100_percent_under_one_cause() {
        let mut f = facts();
        f.quota = vec![(PC, 7_999, 10_000)];
        assert!(causes(&f).is_empty());
        f.quota = vec![(PC, 8_000, 10_000)];
        let near = judge(&f, &AlertRules::default());
        assert_eq!(
            (near[0].cause.as_str(), near[0].severity),
            ("quota:partner_center", Severity::Warning)
        );
        assert!(near[0].title.contains("80 %"), "{}", near[0].title);
        f.quota = vec![(PC, 10_000, 10_000)];
        let spent = judge(&f, &AlertRules::default());
        assert_eq!(
            (spent[0].cause.as_str(), spent[0].severity),
            ("quota:partner_center", Severity::Critical)
        );
    }

    #[test]
    fn deliveries_are_silent_after_twice_the_usual_gap_and_never_under_an_hour() {
        let hourly: Vec<OffsetDateTime> = (0..12)
            .map(|h| NOW - time::Duration::hours(3) - time::Duration::hours(h))
            .collect();
        let mut f = facts();
        f.feed = None;
        f.deliveries = hourly.clone();
        // 3 h since the last, usually 1 h apart: twice that has passed.
        assert_eq!(causes(&f), vec!["webhook-silent"]);
        f.now = NOW - time::Duration::hours(1);
        assert!(causes(&f).is_empty(), "2 h is not longer than twice 1 h");

        // Deliveries a minute apart: still an hour's grace.
        let minutely: Vec<OffsetDateTime> = (0..12)
            .map(|m| NOW - time::Duration::minutes(50) - time::Duration::minutes(m))
            .collect();
        f.now = NOW;
        f.deliveries = minutely.clone();
        assert!(causes(&f).is_empty());
        f.now = NOW + time::Duration::minutes(11);
        assert_eq!(causes(&f), vec!["webhook-silent"]);

        // Too few on record to say what is usual.
        f.deliveries = minutely[..USUAL_NEEDS_DELIVERIES - 1].to_vec();
        assert!(causes(&f).is_empty());
    }

    #[test]
    fn a_stale_feed_raises_unless_the_crm_sign_in_explains_it() {
        let mut f = facts();
        f.feed = Some(FeedFacts {
            polled_at: Some(NOW - time::Duration::seconds(186)),
            every: Duration::from_secs(60),
        });
        assert_eq!(causes(&f), vec!["feed-stalled"]);
        f.connections = vec![(D365, Some(Diagnosis::GrantRevoked))];
        assert_eq!(causes(&f), vec!["credential:dynamics365"]);
        // Never read yet (just connected): nothing to judge.
        f.connections.clear();
        f.feed = Some(FeedFacts {
            polled_at: None,
            every: Duration::from_secs(60),
        });
        assert!(causes(&f).is_empty());
    }

    #[test]
    fn rules_parse_or_say_what_is_wrong() {
        assert_eq!(
            AlertRules::parse(" 3 ", "20"),
            Ok(AlertRules {
                failed_runs: 3,
                window_minutes: 20
            })
        );
        let e = AlertRules::parse("0", "lots").unwrap_err();
        assert!(e.contains("Failed runs") && e.contains("Minutes"), "{e}");
    }

    #[test]
    fn targets_parse_from_the_form() {
        assert_eq!(WebhookTarget::parse(" ", "json"), Ok(None));
        assert_eq!(
            WebhookTarget::parse("https://hooks.example.com/x", "slack"),
            Ok(Some(WebhookTarget {
                url: "https://hooks.example.com/x".into(),
                format: PayloadFormat::Slack
            }))
        );
        assert!(WebhookTarget::parse("ftp://x", "json").is_err());
        assert!(WebhookTarget::parse("https://", "json").is_err());
        assert!(WebhookTarget::parse("https://x", "xml").is_err());

        let email = EmailTarget::parse(
            "smtp.example.com",
            "",
            "tls",
            "",
            "cosell@example.com",
            "a@example.com; b@example.com",
        )
        .unwrap()
        .unwrap();
        assert_eq!(email.port, 465);
        assert_eq!(email.username, None);
        assert_eq!(email.to, vec!["a@example.com", "b@example.com"]);
        let e = EmailTarget::parse("smtp.example.com", "99999", "starttls", "", "nobody", "")
            .unwrap_err();
        assert!(
            e.contains("port") && e.contains("sender") && e.contains("recipient"),
            "{e}"
        );
        let e = EmailTarget::parse(
            "smtp.example.com",
            "",
            "ssl3",
            "",
            "a@example.com",
            "b@example.com",
        )
        .unwrap_err();
        assert_eq!(e, "SMTP security “ssl3” is not one cosell knows.");
        assert_eq!(EmailTarget::parse("", "", "", "", "", ""), Ok(None));
    }

    #[test]
    fn payloads_fit_each_receiver() {
        let message = AlertMessage {
            event: AlertEvent::Opened,
            alert_id: Some(7),
            cause: "credential:partner_center".into(),
            kind: Some(AlertKind::Credential),
            severity: Severity::Critical,
            title: "The password of the Partner Center account has expired".into(),
            detail: "Change it, then Reconnect.".into(),
            link: "https://cosell.example.com/connections".into(),
            opened_at: NOW,
            resolved_at: None,
        };
        let json = message.payload(PayloadFormat::Json);
        assert_eq!(json["event"], "opened");
        assert_eq!(json["alert"]["id"], 7);
        assert_eq!(json["alert"]["kind"], "credential");
        assert_eq!(json["alert"]["opened_at"], "2026-12-05T12:00:00Z");
        let slack = message.payload(PayloadFormat::Slack);
        assert_eq!(
            slack["text"],
            "[cosell] Critical: The password of the Partner Center account has expired"
        );
        let teams = message.payload(PayloadFormat::Teams);
        assert_eq!(teams["type"], "message");
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(
            card["content"]["actions"][0]["url"],
            "https://cosell.example.com/connections"
        );
        assert!(
            message
                .text()
                .contains("Open cosell: https://cosell.example.com/connections")
        );
    }

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span(Duration::from_secs(45)), "45 s");
        assert_eq!(span(Duration::from_secs(12 * 60)), "12 min");
        assert_eq!(span(Duration::from_secs(5 * 3600)), "5 h");
        assert_eq!(span(Duration::from_secs(3 * 86_400)), "3 days");
    }
}
