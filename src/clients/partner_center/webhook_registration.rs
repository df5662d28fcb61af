//! Partner Center webhook registration (partner-center.md §2): one URL for all events per partner; a new
//! registration replaces the old one. Audience `https://api.partnercenter.microsoft.com`.

use crate::clients::http::{self, CallError};
use crate::crypto::Secret;
use serde::{Deserialize, Serialize};

pub const AUDIENCE: &str = "https://api.partnercenter.microsoft.com";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Registration {
    pub webhook_url: String,
    pub webhook_events: Vec<String>,
}

impl Registration {
    /// Whether Partner Center sends to `url` (a trailing `/` aside).
    pub fn sends_to(&self, url: &str) -> bool {
        self.webhook_url.trim_end_matches('/') == url.trim_end_matches('/')
    }

    /// The `events` this registration does not subscribe to.
    pub fn lacks<'e>(&self, events: &[&'e str]) -> Vec<&'e str> {
        events
            .iter()
            .copied()
            .filter(|e| !self.webhook_events.iter().any(|r| r == e))
            .collect()
    }

    /// Whether it is `wanted` already: the same URL and the same events, in any order. The one rule
    /// of "in place", for the registration run and the Diagnostics check alike.
    pub fn is(&self, wanted: &Registration) -> bool {
        let events: Vec<&str> = wanted.webhook_events.iter().map(String::as_str).collect();
        self.sends_to(&wanted.webhook_url)
            && self.lacks(&events).is_empty()
            && self.webhook_events.len() == wanted.webhook_events.len()
    }
}

#[derive(Clone)]
pub struct WebhookRegistrationClient {
    http: reqwest::Client,
    base: String,
}

impl WebhookRegistrationClient {
    pub fn new(http: reqwest::Client, base: &str) -> WebhookRegistrationClient {
        WebhookRegistrationClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn url(&self) -> String {
        format!("{}/webhooks/v1/registration", self.base)
    }

    /// The current registration, or None.
    pub async fn view(&self, token: &Secret) -> Result<Option<Registration>, CallError> {
        match http::send(self.http.get(self.url()).bearer_auth(token.expose())).await {
            Ok(r) => Ok(Some(read(r).await?)),
            Err(CallError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers (POST) or, when one exists, updates (PUT) the registration.
    pub async fn put(
        &self,
        token: &Secret,
        registration: &Registration,
        exists: bool,
    ) -> Result<Registration, CallError> {
        let request = if exists {
            self.http.put(self.url())
        } else {
            self.http.post(self.url())
        };
        read(http::send(request.bearer_auth(token.expose()).json(registration)).await?).await
    }
}

impl WebhookRegistrationClient {
    /// Asks Partner Center to send a `test-created` delivery to the registered URL (§2.1: the
    /// registration must include `test-created`; 2 a minute). Its correlation id.
    pub async fn send_test_event(&self, token: &Secret) -> Result<String, CallError> {
        let response = http::send(
            self.http
                .post(format!("{}/validationEvents", self.url()))
                .bearer_auth(token.expose())
                .json(&serde_json::json!({})),
        )
        .await?;
        http::json(response).await?["correlationId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CallError::Unexpected("a test event without a correlationId".into()))
    }
}

async fn read(response: reqwest::Response) -> Result<Registration, CallError> {
    serde_json::from_value(http::json(response).await?)
        .map_err(|e| CallError::Unexpected(format!("a registration that does not read: {e}")))
}
