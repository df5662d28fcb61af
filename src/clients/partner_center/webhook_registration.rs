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

async fn read(response: reqwest::Response) -> Result<Registration, CallError> {
    serde_json::from_value(http::json(response).await?)
        .map_err(|e| CallError::Unexpected(format!("a registration that does not read: {e}")))
}
