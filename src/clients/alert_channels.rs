//! The ways out for alerts: an HTTP webhook (cosell's signed JSON, or Slack's or Teams' own payload) and
//! email over SMTP. One attempt per call; whether and when to try again is the engine's business, told
//! by [`SendError`].
//!
//! A webhook is signed like Stripe's or GitHub's: `X-Cosell-Signature: sha256=<hex HMAC-SHA256>` over
//! `{timestamp}.{body}` with the shared secret, the timestamp (Unix seconds) in `X-Cosell-Timestamp`, so
//! a receiver can refuse a replayed message; `X-Cosell-Delivery` names the message, the same on every
//! retry, so a receiver can drop a duplicate.

use crate::crypto::Secret;
use crate::domain::alerts::{AlertMessage, EmailTarget, SmtpSecurity, WebhookTarget};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

pub const SIGNATURE_HEADER: &str = "x-cosell-signature";
pub const TIMESTAMP_HEADER: &str = "x-cosell-timestamp";
pub const DELIVERY_HEADER: &str = "x-cosell-delivery";

/// How long an SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again: no answer, a server error, "slow down" (with how long, when said).
    #[error("{0}")]
    Transient(String, Option<Duration>),
    /// Trying again will not help until someone changes the settings.
    #[error("{0}")]
    Permanent(String),
}

/// `sha256=<hex>`: the HMAC-SHA256 of `{timestamp}.{body}` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Posts `message` to the webhook; what it answered when it took it.
pub async fn send_webhook(
    http: &reqwest::Client,
    target: &WebhookTarget,
    secret: Option<&Secret>,
    message: &AlertMessage,
    delivery_id: &str,
    timestamp: i64,
) -> Result<String, SendError> {
    let body = serde_json::to_vec(&message.payload(target.format))
        .map_err(|e| SendError::Permanent(format!("the message does not serialize: {e}")))?;
    let mut request = http
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "cosell-alerts")
        .header(DELIVERY_HEADER, delivery_id)
        .header(TIMESTAMP_HEADER, timestamp.to_string());
    if let Some(secret) = secret {
        request = request.header(
            SIGNATURE_HEADER,
            signature(secret.expose().as_bytes(), timestamp, &body),
        );
    }
    // The URL may carry a token of its own (Slack's and Teams' do): errors are told without it.
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| SendError::Transient(format!("no answer: {}", e.without_url()), None))?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let said = format!("HTTP {}", status.as_u16());
    match status.as_u16() {
        200..=299 => Ok(said),
        408 | 425 | 429 | 500..=599 => Err(SendError::Transient(said, retry_after)),
        _ => Err(SendError::Permanent(format!(
            "{said}: the receiver refused the message; check the webhook's URL and format"
        ))),
    }
}

/// Sends `message` by email through the SMTP server; what the server said when it took it.
pub async fn send_email(
    target: &EmailTarget,
    password: Option<&Secret>,
    message: &AlertMessage,
) -> Result<String, SendError> {
    use lettre::message::{Mailbox, header::ContentType};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let address = |text: &str, what: &str| {
        text.parse::<Mailbox>()
            .map_err(|e| SendError::Permanent(format!("{what} “{text}” is not an address: {e}")))
    };
    let mut email = lettre::Message::builder()
        .from(address(&target.from, "the sender")?)
        .subject(message.headline());
    for to in &target.to {
        email = email.to(address(to, "the recipient")?);
    }
    let email = email
        .header(ContentType::TEXT_PLAIN)
        .body(message.text())
        .map_err(|e| SendError::Permanent(format!("the email does not build: {e}")))?;

    let host = target.host.as_str();
    let builder = match target.security {
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }
    .map_err(|e| SendError::Permanent(format!("the SMTP host {host} does not work: {e}")))?;
    let mut builder = builder.port(target.port).timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = &target.username {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.map(|p| p.expose().to_string()).unwrap_or_default(),
        ));
    }
    match builder.build().send(email).await {
        Ok(response) => Ok(format!("accepted by {host} ({})", response.code())),
        Err(e) if e.is_permanent() => Err(SendError::Permanent(format!(
            "{host} refused the email: {e}"
        ))),
        Err(e) => Err(SendError::Transient(format!("{host}: {e}"), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently (Python's hmac module) for a receiver to check against.
        assert_eq!(
            signature(b"whsec_test", 1_764_936_000, br#"{"event":"test"}"#),
            "sha256=275620697583d04f4d7b125060826fd6b8d92342a1719fe637ec93bece623783"
        );
        assert_ne!(
            signature(b"whsec_test", 1_764_936_001, br#"{"event":"test"}"#),
            signature(b"whsec_test", 1_764_936_000, br#"{"event":"test"}"#),
            "the timestamp is signed"
        );
    }
}
