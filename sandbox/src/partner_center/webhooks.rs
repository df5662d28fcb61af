//! Partner Center webhooks (partner-center.md §2): the registration API on the `api.partnercenter` host,
//! and signed deliveries of referral events with up to 10 attempts.
//!
//! - `GET /webhooks/v1/registration/events` — supported events
//! - `POST` / `PUT /webhooks/v1/registration` — register / update; one URL for all events, a new
//!   registration overwrites the old one; `GET` views it (404 when none); `DELETE` removes it (unconfirmed)
//! - `POST /webhooks/v1/registration/validationEvents` — a `test-created` delivery (needs `test-created` in
//!   the registration; 2 per minute), `GET …/validationEvents/{correlationId}` its outcome
//! - `GET /cert/pcnotifications-dispatch.microsoft.com.cer` — the signing certificate (DER)
//! - `GET /cert/cosell-sandbox-microsoft-issuing-ca.crt` — the intermediate that issued it (DER), the
//!   signing certificate's caIssuers URL
//!
//! Registration calls need a token for `https://api.partnercenter.microsoft.com` (app-only or App+User).
//! Keys on the wire are PascalCase, as documented.

use super::{PartnerCenter, error, now_text};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use time::OffsetDateTime;

pub const AUDIENCE: &str = "https://api.partnercenter.microsoft.com";
pub const REFERRAL_EVENTS: [&str; 4] = [
    "referral-created",
    "referral-updated",
    "related-referral-created",
    "related-referral-updated",
];
const OTHER_EVENTS: [&str; 4] = [
    "test-created",
    "subscription-updated",
    "usagerecords-thresholdExceeded",
    "invoice-ready",
];
/// Deliveries are attempted this many times, then dropped (the real service moves them offline).
pub const MAX_ATTEMPTS: u32 = 10;
const TEST_EVENTS_PER_MINUTE: usize = 2;

#[derive(Debug, Clone)]
pub(super) struct Registration {
    subscriber_id: String,
    url: String,
    events: Vec<String>,
    ms_signature_header: bool,
}

/// One delivery attempt, as the control API's journal shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub event: String,
    pub resource_uri: String,
    pub url: String,
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: String,
}

/// Delivery behaviour, set through the control API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliverySettings {
    /// First retry after this long, doubling each time up to 30 s. The real intervals are undocumented.
    pub retry_base_ms: u64,
    /// Deliver every event this many times ("the flow might get invoked multiple times").
    pub copies: u32,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            retry_base_ms: 1000,
            copies: 1,
        }
    }
}

#[derive(Default)]
pub(super) struct WebhookState {
    pub registration: Option<Registration>,
    pub journal: Vec<Attempt>,
    pub validations: std::collections::HashMap<String, Value>,
    pub test_posts: Vec<OffsetDateTime>,
    pub settings: DeliverySettings,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RegistrationBody {
    webhook_url: String,
    webhook_events: Vec<String>,
    #[serde(default)]
    signature_token_to_ms_signature_header: bool,
}

/// `2018-02-17T00:05:39.5485487+00:00`: seven fractional digits and an offset.
fn change_date(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}+00:00",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond() / 100
    )
}

impl PartnerCenter {
    fn host(&self) -> String {
        self.inner
            .base_url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string()
    }

    /// Announces a change of `referral` to the registered webhook, and to the related referrals of the
    /// same engagement (`related-referral-*`; which id those carry is unconfirmed: we send the related one).
    pub(super) fn emit(&self, action: &str, referral: &Value) {
        let id = referral["id"].as_str().unwrap_or_default().to_string();
        let engagement = referral["engagementId"].clone();
        // The change's time is the referral's new `updatedDateTime`. Microsoft documents neither that
        // nor the opposite (partner-center.md §2.3 says only "7 fractional digits plus an offset"); it is
        // what the field's name says, and cosell relies on it only to spare a read: when the two differ,
        // cosell reads the referral as it would for anyone's change.
        let changed = referral["updatedDateTime"]
            .as_str()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or_else(|| self.now());
        let related: Vec<String> = {
            let state = self.state();
            engagement
                .as_str()
                .and_then(|e| state.engagements.get(e))
                .into_iter()
                .flatten()
                .map(|&position| &state.referrals[position])
                .filter(|r| r["id"] != referral["id"])
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect()
        };
        self.notify(
            &format!("referral-{action}"),
            &format!("https://{}/engagements/v1/referrals/{id}", self.host()),
            changed,
        );
        for other in related {
            self.notify(
                &format!("related-referral-{action}"),
                &format!("https://{}/engagements/v1/referrals/{other}", self.host()),
                changed,
            );
        }
    }

    fn notify(&self, event: &str, resource_uri: &str, changed: OffsetDateTime) {
        let (registration, settings) = {
            let state = self.state();
            (
                state.webhooks.registration.clone(),
                state.webhooks.settings.clone(),
            )
        };
        let Some(registration) = registration.filter(|r| r.events.iter().any(|e| e == event))
        else {
            return;
        };
        let name = if event == "test-created" {
            "test"
        } else {
            "referral"
        };
        let body = json!({
            "EventName": event,
            "ResourceUri": resource_uri,
            "ResourceName": name,
            "AuditUri": null,
            "ResourceChangeUtcDate": change_date(changed),
        });
        let body = serde_json::to_vec(&body).expect("JSON");
        for _ in 0..settings.copies.max(1) {
            tokio::spawn(self.clone().deliver(
                registration.clone(),
                event.to_string(),
                resource_uri.to_string(),
                body.clone(),
                settings.retry_base_ms,
            ));
        }
    }

    async fn deliver(
        self,
        registration: Registration,
        event: String,
        resource_uri: String,
        body: Vec<u8>,
        retry_base_ms: u64,
    ) {
        let signature = format!("Signature {}", self.signer().sign(&body));
        let certificate_url = format!(
            "{}/cert/{}.cer",
            self.inner.base_url,
            super::signer::CERTIFICATE_NAME
        );
        let mut wait = Duration::from_millis(retry_base_ms);
        for attempt in 1..=MAX_ATTEMPTS {
            let mut request = self
                .inner
                .http
                .post(&registration.url)
                .header(header::CONTENT_TYPE, "application/json")
                .header("X-MS-Certificate-Url", &certificate_url)
                .header("X-MS-Signature-Algorithm", "rsa-sha256")
                .body(body.clone());
            request = if registration.ms_signature_header {
                request.header("x-ms-signature", &signature)
            } else {
                request.header(header::AUTHORIZATION, &signature)
            };
            let outcome = request.send().await;
            let (status, err) = match &outcome {
                Ok(r) => (Some(r.status().as_u16()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            let record = Attempt {
                event: event.clone(),
                resource_uri: resource_uri.clone(),
                url: registration.url.clone(),
                attempt,
                status,
                error: err,
                at: now_text(self.now()),
            };
            self.state().webhooks.journal.push(record.clone());
            let _ = self.inner.attempts.send(record);
            if outcome.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if attempt < MAX_ATTEMPTS {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }

    /// Each delivery attempt from now on, as it completes (after the receiver has answered).
    pub fn subscribe_deliveries(&self) -> tokio::sync::broadcast::Receiver<Attempt> {
        self.inner.attempts.subscribe()
    }

    /// Every delivery attempt so far, oldest first.
    pub fn deliveries(&self) -> Vec<Attempt> {
        self.state().webhooks.journal.clone()
    }

    pub fn set_delivery_settings(&self, settings: DeliverySettings) {
        self.state().webhooks.settings = settings;
    }

    /// The root certificate (PEM) deliveries chain to, through the intermediate at the signing
    /// certificate's caIssuers URL: configure it as the receiver's trust anchor.
    pub fn trust_anchor_pem(&self) -> String {
        self.signer().trust_anchor_pem().to_string()
    }
}

pub(super) fn routes(pc: PartnerCenter) -> Router {
    Router::new()
        .route("/webhooks/v1/registration/events", get(events))
        .route(
            "/webhooks/v1/registration",
            get(view).post(register).put(register).delete(unregister),
        )
        .route(
            "/webhooks/v1/registration/validationEvents",
            axum::routing::post(validation_event),
        )
        .route(
            "/webhooks/v1/registration/validationEvents/{id}",
            get(validation_status),
        )
        .route(
            &format!("/cert/{}.cer", super::signer::CERTIFICATE_NAME),
            get(certificate),
        )
        .route(
            &format!("/cert/{}.crt", super::signer::ISSUER_NAME),
            get(issuer_certificate),
        )
        .with_state(pc)
}

async fn events(State(pc): State<PartnerCenter>, headers: HeaderMap) -> Response {
    if let Err(r) = super::caller_app_or_user(&pc, &headers, AUDIENCE) {
        return r;
    }
    Json(
        REFERRAL_EVENTS
            .iter()
            .chain(OTHER_EVENTS.iter())
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn view(State(pc): State<PartnerCenter>, headers: HeaderMap) -> Response {
    if let Err(r) = super::caller_app_or_user(&pc, &headers, AUDIENCE) {
        return r;
    }
    match pc.state().webhooks.registration.clone() {
        Some(r) => Json(json!({ "WebhookUrl": r.url, "WebhookEvents": r.events })).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no webhook is registered",
        ),
    }
}

async fn register(State(pc): State<PartnerCenter>, headers: HeaderMap, body: String) -> Response {
    if let Err(r) = super::caller_app_or_user(&pc, &headers, AUDIENCE) {
        return r;
    }
    let body: RegistrationBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                format!("expected {{WebhookUrl, WebhookEvents}}: {e}"),
            );
        }
    };
    let url_ok = url::Url::parse(&body.webhook_url)
        .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
    if !url_ok {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            format!("WebhookUrl {:?} is not a valid URL", body.webhook_url),
        );
    }
    let unknown: Vec<&String> = body
        .webhook_events
        .iter()
        .filter(|e| !REFERRAL_EVENTS.contains(&e.as_str()) && !OTHER_EVENTS.contains(&e.as_str()))
        .collect();
    if body.webhook_events.is_empty() || !unknown.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            format!("unsupported or missing events: {unknown:?}"),
        );
    }
    let registration = Registration {
        subscriber_id: uuid::Uuid::new_v4().to_string(),
        url: body.webhook_url,
        events: body.webhook_events,
        ms_signature_header: body.signature_token_to_ms_signature_header,
    };
    let response = json!({
        "SubscriberId": registration.subscriber_id,
        "WebhookUrl": registration.url,
        "WebhookEvents": registration.events,
    });
    pc.state().webhooks.registration = Some(registration);
    Json(response).into_response()
}

async fn unregister(State(pc): State<PartnerCenter>, headers: HeaderMap) -> Response {
    if let Err(r) = super::caller_app_or_user(&pc, &headers, AUDIENCE) {
        return r;
    }
    pc.state().webhooks.registration = None;
    StatusCode::NO_CONTENT.into_response()
}

async fn validation_event(State(pc): State<PartnerCenter>, headers: HeaderMap) -> Response {
    if let Err(r) = super::caller_app_or_user(&pc, &headers, AUDIENCE) {
        return r;
    }
    let now = pc.now();
    let correlation = uuid::Uuid::new_v4().to_string();
    {
        let mut state = pc.state();
        let Some(registration) = state.webhooks.registration.clone() else {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "register a webhook first",
            );
        };
        if !registration.events.iter().any(|e| e == "test-created") {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "the registration must include test-created",
            );
        }
        state
            .webhooks
            .test_posts
            .retain(|t| now - *t < time::Duration::minutes(1));
        if state.webhooks.test_posts.len() >= TEST_EVENTS_PER_MINUTE {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "at most 2 test events per minute",
            );
        }
        state.webhooks.test_posts.push(now);
        state.webhooks.validations.insert(
            correlation.clone(),
            json!({ "callbackUrl": registration.url }),
        );
    }
    // Documented with http://, unlike referral events.
    let resource = format!(
        "http://{}/webhooks/v1/registration/validationEvents/{correlation}",
        pc.host()
    );
    pc.notify("test-created", &resource, pc.now());
    Json(json!({ "correlationId": correlation })).into_response()
}

async fn validation_status(
    State(pc): State<PartnerCenter>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = super::caller_app_or_user(&pc, &headers, AUDIENCE) {
        return r;
    }
    let state = pc.state();
    let Some(record) = state.webhooks.validations.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no validation event {id}"),
        );
    };
    let results: Vec<Value> = state
        .webhooks
        .journal
        .iter()
        .filter(|a| a.resource_uri.ends_with(&id))
        .map(|a| {
            let ok = a.status.is_some_and(|s| (200..300).contains(&s));
            json!({
                "responseCode": if ok { "OK".to_string() } else { a.status.map(|s| s.to_string()).unwrap_or_default() },
                "responseMessage": a.error.clone().unwrap_or_default(),
                "systemError": a.status.is_none(),
                "dateTimeUtc": a.at,
            })
        })
        .collect();
    Json(json!({
        "correlationId": id,
        "partnerId": super::ORGANIZATION_ID,
        "status": if results.is_empty() { "pending" } else { "completed" },
        "callbackUrl": record["callbackUrl"],
        "results": results,
    }))
    .into_response()
}

async fn certificate(State(pc): State<PartnerCenter>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/pkix-cert")],
        pc.signer().certificate_der().to_vec(),
    )
        .into_response()
}

async fn issuer_certificate(State(pc): State<PartnerCenter>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/pkix-cert")],
        pc.signer().issuer_der().to_vec(),
    )
        .into_response()
}
