//! `POST /webhooks/partner-center`: the Partner Center webhook receiver.
//!
//! Order matters: the signature is verified on the raw bytes before anything else (no parsing, no
//! database); then the notification is parsed and stored in the inbox; only then do we answer 200.
//! A delivery we have already stored is answered 200 again and has no further effect.

use crate::startup::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cosell::domain::notification::{EventName, Notification};
use cosell::store::{InboxEvent, Recorded};
use time::OffsetDateTime;

/// Largest body accepted; notifications are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Announced to the engine (and tests) after each stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxNotice {
    pub recorded: Recorded,
    pub event: EventName,
    pub resource_id: String,
}

fn count(outcome: &'static str) {
    metrics::counter!("webhook_deliveries_total", "outcome" => outcome).increment(1);
}

pub async fn partner_center(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(verifier) = app.webhook_verifier.as_ref() else {
        tracing::error!("a webhook arrived but COSELL_WEBHOOK_TRUST_ANCHORS is not set: refused");
        count("not_configured");
        app.engine
            .webhook_refusals()
            .record("webhook verification is not configured (COSELL_WEBHOOK_TRUST_ANCHORS)");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook verification is not configured",
        )
            .into_response();
    };
    if let Err(reason) = verifier.verify(&headers, &body).await {
        tracing::warn!(%reason, "webhook refused: signature");
        count("refused");
        app.engine
            .webhook_refusals()
            .record("its signature did not verify");
        return (StatusCode::UNAUTHORIZED, "signature verification failed").into_response();
    }
    let notification = match Notification::parse(&body) {
        Ok(n) => n,
        Err(reason) => {
            tracing::warn!(%reason, "webhook refused: not a notification");
            count("invalid");
            app.engine
                .webhook_refusals()
                .record("it was not a Partner Center notification");
            return (StatusCode::BAD_REQUEST, "not a Partner Center notification").into_response();
        }
    };
    let text = String::from_utf8_lossy(&body);
    match app
        .store
        .record_notification(&notification, &text, OffsetDateTime::now_utc())
        .await
    {
        Ok(recorded) => {
            count(match recorded {
                Recorded::New(_) => "stored",
                Recorded::Duplicate(_) => "duplicate",
            });
            tracing::info!(event = notification.event.as_str(), referral = %notification.resource_id, ?recorded, "webhook stored");
            if let Recorded::New(id) = recorded
                && let Err(e) = app
                    .engine
                    .accept_event(&InboxEvent::stored(id, &notification))
                    .await
            {
                // Stored but not queued: the inbox drain queues it within seconds (Engine::spawn_inbox_drain).
                tracing::error!(error = %e, inbox = id, "could not queue a run for a stored event");
            }
            let _ = app.inbox.send(InboxNotice {
                recorded,
                event: notification.event,
                resource_id: notification.resource_id,
            });
            StatusCode::OK.into_response()
        }
        Err(e) => {
            // Not stored: answer an error so that Partner Center delivers it again.
            tracing::error!(error = %e, "webhook could not be stored");
            count("store_failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
