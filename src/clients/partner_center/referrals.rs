//! The Partner Center Referrals API (partner-center.md §1): read a referral, patch it with JSON Patch
//! under `If-Match`. Audience `https://api.partner.microsoft.com`.

use crate::clients::http::{self, CallError};
use crate::crypto::Secret;
use crate::domain::referral::Referral;
use serde_json::Value;

pub const AUDIENCE: &str = "https://api.partner.microsoft.com";

#[derive(Clone)]
pub struct ReferralsClient {
    http: reqwest::Client,
    /// `https://api.partner.microsoft.com` (or the sandbox).
    base: String,
}

impl ReferralsClient {
    pub fn new(http: reqwest::Client, base: &str) -> ReferralsClient {
        ReferralsClient {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    fn url(&self, id: &str) -> String {
        format!("{}/v1.0/engagements/referrals/{id}", self.base)
    }

    /// The cheapest call that proves access: one referral at most.
    pub async fn probe(&self, token: &Secret) -> Result<(), CallError> {
        http::send(
            self.http
                .get(format!("{}/v1.0/engagements/referrals", self.base))
                .query(&[("$top", "1")])
                .bearer_auth(token.expose()),
        )
        .await
        .map(|_| ())
    }

    pub async fn get(&self, token: &Secret, id: &str) -> Result<Referral, CallError> {
        let response = http::send(self.http.get(self.url(id)).bearer_auth(token.expose())).await?;
        let body = http::json(response).await?;
        serde_json::from_value(body)
            .map_err(|e| CallError::Unexpected(format!("a referral that does not read: {e}")))
    }

    /// JSON Patch (`replace`/`add` only) guarded by the referral's `eTag`; a 412 means it changed since.
    pub async fn patch(
        &self,
        token: &Secret,
        id: &str,
        e_tag: &str,
        operations: &Value,
    ) -> Result<(), CallError> {
        http::send(
            self.http
                .patch(self.url(id))
                .bearer_auth(token.expose())
                .header("If-Match", e_tag)
                .json(operations),
        )
        .await
        .map(|_| ())
    }
}
