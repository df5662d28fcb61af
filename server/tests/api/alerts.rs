//! Alerts reach people without their watching the dashboard: an expired credential opens exactly one
//! alert, sent once by email (to an SMTP sink this test starts) and once by webhook (to a receiver it
//! starts, checking the signature), and it resolves, with one more message each, after Reconnect. A
//! receiver that fails is tried again with backoff; settings refuse bad input and keep secrets sealed.

use crate::helpers::*;
use cosell::domain::alerts::AlertKind;
use cosell::domain::runs::RunStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// How long a test waits for a message to arrive before it fails.
const ARRIVES_WITHIN: Duration = Duration::from_secs(30);

/// A local SMTP server that takes every message and hands it to the test.
struct SmtpSink {
    port: u16,
    mail: mpsc::UnboundedReceiver<String>,
}

impl SmtpSink {
    async fn start() -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, mail) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 sink\r\n",
                            "DATA" => {
                                write.write_all(b"354 end with a dot\r\n").await.unwrap();
                                let mut message = String::new();
                                while let Ok(Some(l)) = lines.next_line().await {
                                    if l == "." {
                                        break;
                                    }
                                    message.push_str(&l);
                                    message.push('\n');
                                }
                                let _ = tx.send(message);
                                b"250 queued\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.unwrap();
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        write.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        SmtpSink { port, mail }
    }

    /// The next message, its folded header lines unfolded (RFC 5322 §2.2.3).
    async fn next(&mut self) -> String {
        tokio::time::timeout(ARRIVES_WITHIN, self.mail.recv())
            .await
            .expect("an email within 30 s")
            .expect("the sink runs")
            .replace("\n ", " ")
    }
}

/// What the receiver got: the headers that matter and the body.
#[derive(Debug, Clone)]
struct Hook {
    signature: Option<String>,
    timestamp: String,
    delivery: String,
    body: String,
}

impl Hook {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// The sandbox's webhook receiver, started by the test: answers with `answers` (then 200). The token
/// in its URL stands for Slack's and Teams' secret URLs.
struct Receiver {
    url: String,
    inner: cosell_sandbox::testing::WebhookReceiver,
}

impl Receiver {
    async fn start(answers: &[u16]) -> Receiver {
        let statuses = answers
            .iter()
            .map(|s| axum::http::StatusCode::from_u16(*s).unwrap())
            .collect();
        let inner = cosell_sandbox::testing::WebhookReceiver::start(statuses).await;
        Receiver {
            url: format!("{}?token=t0ken-in-the-url", inner.url),
            inner,
        }
    }

    async fn next(&mut self) -> Hook {
        let (headers, body) = tokio::time::timeout(ARRIVES_WITHIN, self.inner.next())
            .await
            .expect("a webhook within 30 s");
        let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string());
        Hook {
            signature: header("x-cosell-signature"),
            timestamp: header("x-cosell-timestamp").unwrap_or_default(),
            delivery: header("x-cosell-delivery").unwrap_or_default(),
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    /// Whether nothing more arrived.
    fn idle(&mut self) -> bool {
        self.inner.calls.try_recv().is_err()
    }
}

const SECRET: &str = "whsec-alerts-test";

/// Checks the signature as a receiver would: HMAC-SHA256 of `{timestamp}.{body}` (ring, not cosell's
/// own code).
fn signed(hook: &Hook) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{}.{}", hook.timestamp, hook.body).as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    hook.signature.as_deref() == Some(&format!("sha256={hex}"))
}

fn settings_form<'a>(
    receiver: &'a str,
    format: &'a str,
    smtp_port: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("failed_runs", "5"),
        ("window_minutes", "15"),
        ("webhook_on", "on"),
        ("webhook_url", receiver),
        ("webhook_format", format),
        ("webhook_secret", SECRET),
        ("email_on", "on"),
        ("email_host", "127.0.0.1"),
        ("email_port", smtp_port),
        ("email_security", "plain"),
        ("email_username", ""),
        ("email_password", ""),
        ("email_from", "cosell@partner.example"),
        ("email_to", "referrals-admins@partner.example"),
    ]
}

/// The causes of the open alerts, oldest first. (Every instance judges the rules on a timer too, so
/// tests look at what is open rather than at what one judging changed.)
async fn open_causes(app: &TestApp) -> Vec<String> {
    app.store
        .open_alerts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.cause)
        .collect()
}

/// Sets Partner Center's budget to the calls spent today: its quota alert opens (critical).
async fn spend_the_days_budget(app: &TestApp, admin: &reqwest::Client) {
    let spent = app.partner_center_calls_today().await;
    assert!(spent > 0, "the connection was tested when made");
    let (status, body) = app
        .call(
            admin,
            "save_budgets",
            &[("partner_center", &spent.to_string()), ("crm", "")],
        )
        .await;
    assert!(status.is_success(), "{body}");
    app.engine.check_alerts().await.unwrap();
    assert_eq!(open_causes(app).await, vec!["quota:partner_center"]);
}

/// `form` with `field` set to `value`.
fn with<'a>(
    mut form: Vec<(&'a str, &'a str)>,
    field: &str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    form.iter_mut()
        .find(|(f, _)| *f == field)
        .unwrap_or_else(|| panic!("the form has {field}"))
        .1 = value;
    form
}

/// `form` with email off (its box unticked: absent, as a browser sends it).
fn without_email<'a>(mut form: Vec<(&'a str, &'a str)>) -> Vec<(&'a str, &'a str)> {
    form.retain(|(f, _)| *f != "email_on");
    form
}

/// Waits until no message waits to be sent (each one sent, or given up).
async fn all_sent(app: &TestApp) {
    eventually("every alert message sent", || async {
        app.store
            .next_alert_delivery_due()
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_expired_credential_raises_exactly_one_alert_by_email_and_webhook_and_reconnect_resolves_it()
 {
    let mut app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;
    let mut sink = SmtpSink::start().await;
    let mut receiver = Receiver::start(&[]).await;
    let port = sink.port.to_string();
    let (status, body) = app
        .call(
            &admin,
            "save_alert_settings",
            &settings_form(&receiver.url, "json", &port),
        )
        .await;
    assert!(status.is_success(), "{body}");

    // Secrets are sealed at rest and never shown: the page names the webhook's host only.
    let stored = app
        .store
        .setting("alert_channels")
        .await
        .unwrap()
        .unwrap()
        .to_string();
    assert!(
        !stored.contains(SECRET) && !stored.contains("t0ken"),
        "{stored}"
    );
    let (_, page) = app.page(&admin, "/settings").await;
    assert!(
        !page.contains(SECRET) && !page.contains("t0ken"),
        "no secret on the page"
    );
    assert!(
        page.contains("http://127.0.0.1:"),
        "the webhook's host is shown"
    );

    // The connected account's password expires: the next referral's run pauses.
    app.control_ok("/entra/users/admin/password", json!({ "expired": true }))
        .await;
    app.control_ok("/clock/advance", json!({ "seconds": 3700 }))
        .await;
    for name in ["Shared while the password was expired", "And another"] {
        app.world
            .partner_center()
            .seller_creates(json!({ "name": name }));
        let run = app.next_run().await;
        assert_eq!(run.status, RunStatus::Paused, "{}", run.outcome);
    }

    let opened = receiver.next().await;
    assert!(signed(&opened), "signed with the shared secret: {opened:?}");
    let message = opened.json();
    assert_eq!(message["event"], "opened", "{message}");
    assert_eq!(message["alert"]["kind"], "credential");
    assert_eq!(message["alert"]["severity"], "critical");
    assert_eq!(
        message["alert"]["title"],
        "The password of the Partner Center account has expired"
    );
    assert_eq!(message["alert"]["link"], app.url("/connections"));
    let email = sink.next().await;
    assert!(
        email.contains(
            "Subject: [cosell] Critical: The password of the Partner Center account has expired"
        ),
        "{email}"
    );
    assert!(
        email.contains("To: referrals-admins@partner.example"),
        "{email}"
    );
    assert!(
        email.contains("Reconnect"),
        "the email says what to do: {email}"
    );

    // Judged again (as every instance does, on its timer and on each refusal): still one alert.
    for _ in 0..3 {
        let again = app.engine.check_alerts().await.unwrap();
        assert_eq!(
            again.opened + again.escalated + again.resolved,
            0,
            "{again:?}"
        );
    }
    all_sent(&app).await;
    let open = app.store.open_alerts().await.unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (open[0].kind, open[0].cause.as_str()),
        (AlertKind::Credential, "credential:partner_center")
    );
    assert!(receiver.idle(), "one webhook, not more");
    assert!(sink.mail.try_recv().is_err(), "one email, not more");

    // The dashboard shows it on every page until someone acknowledges it.
    for path in ["/", "/runs"] {
        let (_, page) = app.page(&viewer, path).await;
        assert!(page.contains("data-testid=\"alert-banner\""), "{path}");
        assert!(page.contains("1 open alert: "), "{path}");
    }
    let (_, alerts) = app.page(&viewer, "/alerts").await;
    assert!(alerts.contains("data-state=\"open\""), "{alerts}");
    assert!(alerts.contains("Webhook: opened, sent"), "{alerts}");
    assert!(alerts.contains("Email: opened, sent"), "{alerts}");

    // The password is renewed and the admin reconnects: the alert resolves, said once on each channel.
    app.control_ok("/entra/users/admin/password", json!({ "expired": false }))
        .await;
    app.connect(&admin, "partner_center", "admin").await;
    let resolved = receiver.next().await;
    assert!(signed(&resolved));
    assert_eq!(resolved.json()["event"], "resolved", "{}", resolved.body);
    assert_ne!(resolved.delivery, opened.delivery, "another message");
    assert!(resolved.json()["alert"]["resolved_at"].is_string());
    let email = sink.next().await;
    assert!(
        email.contains(
            "Subject: [cosell] Resolved: The password of the Partner Center account has expired"
        ),
        "{email}"
    );
    all_sent(&app).await;
    assert!(app.store.open_alerts().await.unwrap().is_empty());
    assert!(receiver.idle(), "nothing more");
    assert!(sink.mail.try_recv().is_err(), "nothing more");
    let (_, page) = app.page(&viewer, "/").await;
    assert!(
        !page.contains("data-testid=\"alert-banner\""),
        "the banner is gone"
    );
    let (_, alerts) = app.page(&viewer, "/alerts").await;
    assert!(alerts.contains("data-state=\"resolved\""), "{alerts}");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_and_the_same_delivery_id() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    // Down twice (a 503, then a 429 saying when), then taking it.
    let mut receiver = Receiver::start(&[503, 429]).await;
    let (status, body) = app
        .call(
            &admin,
            "save_alert_settings",
            &without_email(with(
                settings_form(&receiver.url, "slack", ""),
                "webhook_secret",
                "",
            )),
        )
        .await;
    assert!(status.is_success(), "{body}");

    // A day's Partner Center budget spent: a critical quota alert.
    spend_the_days_budget(&app, &admin).await;

    let first = receiver.next().await;
    let second = receiver.next().await;
    let third = receiver.next().await;
    assert_eq!(first.delivery, second.delivery, "the same message, again");
    assert_eq!(second.delivery, third.delivery);
    // Slack's incoming webhook shape: `text` leads.
    assert_eq!(
        third.json()["text"],
        "[cosell] Critical: Partner Center: 100 % of the day's API budget used"
    );
    all_sent(&app).await;
    let alert = &app.store.open_alerts().await.unwrap()[0];
    let sent = &app.store.alert_deliveries(&[alert.id]).await.unwrap()[0];
    assert_eq!(sent.attempts, 3, "{sent:?}");
    assert!(sent.sent_at.is_some());
    assert!(
        sent.last_error
            .as_deref()
            .unwrap_or("")
            .contains("HTTP 429"),
        "the last failure is kept: {sent:?}"
    );
    assert!(receiver.idle(), "taken once, sent no more");
}

#[tokio::test]
async fn settings_refuse_bad_input_and_viewers_and_the_test_alert_says_how_each_channel_went() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;
    let mut receiver = Receiver::start(&[]).await;
    let url = receiver.url.clone();
    let before = app.store.setting("alert_channels").await.unwrap();

    // No channel yet: nothing to test.
    let (status, body) = app.call(&admin, "send_test_alert", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("No channel is set up"), "{body}");

    // A viewer may read the settings but not change them.
    let form = settings_form(&url, "json", "2525");
    let (status, _) = app.call(&viewer, "save_alert_settings", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.call(&viewer, "send_test_alert", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Bad values: every one named, nothing saved.
    let mut bad = form.clone();
    for (field, value) in [
        ("failed_runs", "0"),
        ("webhook_format", "xml"),
        ("email_port", "99999"),
        ("email_to", "not an address"),
    ] {
        bad = with(bad, field, value);
    }
    let (status, body) = app.call(&admin, "save_alert_settings", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for said in [
        "Nothing was saved.",
        "Failed runs must be a whole number",
        "Webhook format “xml”",
        "The SMTP port must be a number",
        "is not an email address",
    ] {
        assert!(body.contains(said), "{said}: {body}");
    }
    // The signed JSON format needs a secret.
    let unsigned = with(form.clone(), "webhook_secret", "");
    let (status, body) = app.call(&admin, "save_alert_settings", &unsigned).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("give a signing secret"), "{body}");
    assert_eq!(app.store.setting("alert_channels").await.unwrap(), before);

    // Saved with an SMTP server nobody answers at: the test alert goes by webhook and says the
    // email did not.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port().to_string()
    };
    let form = settings_form(&url, "teams", &closed);
    let (status, body) = app.call(&admin, "save_alert_settings", &form).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app.call(&admin, "send_test_alert", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("Webhook: sent (HTTP 200)"), "{body}");
    assert!(body.contains("Email: not sent"), "{body}");
    let test = receiver.next().await;
    assert!(
        signed(&test),
        "Teams messages are signed too when a secret is set"
    );
    let card = &test.json()["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(
        card["content"]["body"][0]["text"],
        "[cosell] Test: A test alert from cosell"
    );

    // Saving again with the secret field empty keeps the secret (and the URL).
    let keep = without_email(with(
        with(with(form.clone(), "webhook_secret", ""), "webhook_url", ""),
        "webhook_format",
        "json",
    ));
    let (status, body) = app.call(&admin, "save_alert_settings", &keep).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app.call(&admin, "send_test_alert", &[]).await;
    assert!(status.is_success(), "email is off now: {body}");
    let test = receiver.next().await;
    assert!(signed(&test), "the kept secret signs");
    assert_eq!(test.json()["event"], "test");
    // The instance's key changed since (the secrets were sealed with another one): nothing opens, the
    // page and the test say to enter them again, and the rules are still judged.
    let mut stored = app.store.setting("alert_channels").await.unwrap().unwrap();
    stored["webhook"]["url"] = json!(
        cosell::crypto::SealingKey::generate()
            .seal(url.as_bytes(), "setting:alert_channels:webhook.url")
    );
    app.store
        .set_setting(
            "alert_channels",
            &stored,
            "test",
            time::OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let (_, page) = app.page(&admin, "/settings").await;
    assert!(
        page.contains("sealed with another key: enter it again"),
        "{page}"
    );
    let (status, body) = app.call(&admin, "send_test_alert", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("enter them again on Settings"), "{body}");
    app.engine
        .check_alerts()
        .await
        .expect("the rules are judged although the channels' secrets do not open");
}

#[tokio::test]
async fn acknowledging_hides_an_alert_from_the_banner_and_only_admins_may() {
    let app = TestApp::spawn_ready().await;
    let admin = app.signed_in("admin").await;
    let viewer = app.signed_in("viewer").await;
    spend_the_days_budget(&app, &admin).await;
    let id = app.store.open_alerts().await.unwrap()[0].id.to_string();
    let (_, page) = app.page(&viewer, "/").await;
    assert!(page.contains("data-testid=\"alert-banner\""));

    let (status, _) = app.call(&viewer, "acknowledge_alert", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        app.store.open_alerts().await.unwrap()[0]
            .acknowledged
            .is_none()
    );

    let (status, body) = app.call(&admin, "acknowledge_alert", &[("id", &id)]).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app.call(&admin, "acknowledge_alert", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("nothing changed"), "{body}");
    let (_, page) = app.page(&viewer, "/").await;
    assert!(
        !page.contains("data-testid=\"alert-banner\""),
        "acknowledged"
    );
    let (_, alerts) = app.page(&viewer, "/alerts").await;
    assert!(alerts.contains("acknowledged by"), "{alerts}");
    assert!(
        alerts.contains("data-state=\"open\""),
        "still open until the cause clears"
    );

    // The budget raised: the cause clears and the alert resolves.
    let (status, body) = app
        .call(
            &admin,
            "save_budgets",
            &[("partner_center", ""), ("crm", "")],
        )
        .await;
    assert!(status.is_success(), "{body}");
    app.engine.check_alerts().await.unwrap();
    assert!(open_causes(&app).await.is_empty());
}

#[tokio::test]
async fn failing_runs_a_silent_webhook_and_a_stalled_feed_raise_alerts_that_resolve_when_they_clear()
 {
    use cosell::domain::alerts::AlertRules;
    use cosell::domain::notification::{EventName, Notification};
    use cosell::engine::alerts::ChannelsInput;
    let mut app = TestApp::spawn_ready().await;
    let no_channels = || ChannelsInput {
        webhook: None,
        webhook_secret: None,
        email: None,
        email_password: None,
    };
    let rules = |failed_runs| AlertRules {
        failed_runs,
        window_minutes: 15,
    };
    app.engine
        .set_alerts(rules(2), no_channels(), "test")
        .await
        .unwrap();
    app.engine.check_alerts().await.unwrap();
    assert!(open_causes(&app).await.is_empty());

    // Partner Center delivered every hour for twelve hours, then nothing for four.
    let now = time::OffsetDateTime::now_utc();
    let delivery = |id: String, changed_at: String| Notification {
        event: EventName::TestCreated,
        resource_uri: format!("https://api.partnercenter.microsoft.com/v1/webhooks/test/{id}"),
        resource_id: id,
        changed_at,
    };
    for h in 0..12 {
        let n = delivery(
            format!("usual-{h}"),
            format!("2026-12-05T{h:02}:00:00.0000000+00:00"),
        );
        let at = now - time::Duration::hours(4 + h);
        app.store.record_notification(&n, "{}", at).await.unwrap();
    }
    app.engine.check_alerts().await.unwrap();
    assert_eq!(open_causes(&app).await, vec!["webhook-silent"]);
    let silent = &app.store.open_alerts().await.unwrap()[0];
    assert_eq!(silent.title, "No delivery from Partner Center for 4 h");
    assert!(
        silent.detail.contains("usually come at most 60 min apart"),
        "{}",
        silent.detail
    );
    // A delivery arrives: resolved.
    let n = delivery("now".into(), "2026-12-05T23:00:00.0000000+00:00".into());
    app.store
        .record_notification(&n, "{}", time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    app.engine.check_alerts().await.unwrap();
    assert!(open_causes(&app).await.is_empty());

    // Two referrals that cannot sync (no customer name): two failed runs within the window.
    for i in 0..2 {
        app.world.partner_center().seller_creates(json!({
            "name": format!("No customer {i}"), "customerProfile": { "name": "" }
        }));
        let failed = app.next_run().await;
        assert_eq!(failed.status, RunStatus::Failed, "{}", failed.outcome);
    }
    app.engine.check_alerts().await.unwrap();
    assert_eq!(open_causes(&app).await, vec!["runs-failing"]);
    assert_eq!(
        app.store.open_alerts().await.unwrap()[0].title,
        "2 runs failed in the last 15 minutes"
    );
    // A higher threshold: the cause clears, the alert resolves.
    app.engine
        .set_alerts(rules(3), no_channels(), "test")
        .await
        .unwrap();
    app.engine.check_alerts().await.unwrap();
    assert!(open_causes(&app).await.is_empty());

    // The CRM's change feed, read every hour here, was last read four hours ago.
    app.engine.poll_changes().await.unwrap();
    let feed = app.engine.opportunity_feed();
    let link = app
        .store
        .change_feed(&feed)
        .await
        .unwrap()
        .expect("read once");
    app.store
        .set_change_feed(&feed, &link, now - time::Duration::hours(4))
        .await
        .unwrap();
    app.engine.check_alerts().await.unwrap();
    assert_eq!(open_causes(&app).await, vec!["feed-stalled"]);
    // Read again: resolved.
    app.engine.poll_changes().await.unwrap();
    app.engine.check_alerts().await.unwrap();
    assert!(open_causes(&app).await.is_empty());
    let kinds: Vec<AlertKind> = app
        .store
        .recent_alerts(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert!(kinds.contains(&AlertKind::RunsFailing) && kinds.contains(&AlertKind::FeedStalled));
}

#[tokio::test]
async fn messages_an_instance_wrote_or_was_sending_when_it_died_are_sent_by_the_next_one_once() {
    use cosell::domain::alerts::{Channel, Raised, Severity};
    let world = std::sync::Arc::new(
        cosell_sandbox::Sandbox::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap(),
    );
    let db = std::sync::Arc::new(cosell::store::test_support::TestDatabase::new().await);
    let mut receiver = Receiver::start(&[]).await;
    let first = TestApp::spawn_on(world.clone(), db.clone(), &[]).await;
    let admin = first.signed_in("admin").await;
    let form = without_email(with(
        settings_form(&receiver.url, "json", ""),
        "failed_runs",
        "1",
    ));
    let (status, body) = first.call(&admin, "save_alert_settings", &form).await;
    assert!(status.is_success(), "{body}");
    first.stop().await.unwrap();

    // What the instance left in the database when it died: it had judged a run failing and written the
    // alert with its message, and had claimed that message (its lease has run out since) but not sent it.
    let store = cosell::store::Store::connect(db.url()).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let raised = Raised {
        cause: "runs-failing".into(),
        kind: AlertKind::RunsFailing,
        severity: Severity::Warning,
        title: "1 runs failed in the last 15 minutes".into(),
        detail: "Written before the crash.".into(),
        fix_href: "/runs?status=failed".into(),
    };
    let id = store
        .open_alert(&raised, &[Channel::Webhook], now)
        .await
        .unwrap()
        .expect("opened");
    let claimed = store
        .claim_alert_delivery("the-dead-instance", now, now)
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.attempts, 1);
    store.close().await;

    // The next instance sends it (no run failed in its database, so it then resolves the alert).
    let second = TestApp::spawn_on(world, db, &[]).await;
    let opened = receiver.next().await;
    assert!(signed(&opened));
    assert_eq!(opened.json()["event"], "opened", "{}", opened.body);
    assert_eq!(opened.json()["alert"]["id"], id);
    assert_eq!(
        opened.json()["alert"]["detail"],
        "Written before the crash."
    );
    let resolved = receiver.next().await;
    assert_eq!(resolved.json()["event"], "resolved", "{}", resolved.body);
    all_sent(&second).await;
    assert!(receiver.idle(), "each message once");
    let sent = second.store.alert_deliveries(&[id]).await.unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        (sent[0].attempts, sent[0].sent_at.is_some()),
        (2, true),
        "taken over from the dead instance: its attempt and this one"
    );
}
