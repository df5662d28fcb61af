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
        let body = self.get_json(token, id).await?;
        serde_json::from_value(body)
            .map_err(|e| CallError::Unexpected(format!("a referral that does not read: {e}")))
    }

    /// The referral as Partner Center holds it, every field (to compare with what cosell would send).
    pub async fn get_json(&self, token: &Secret, id: &str) -> Result<Value, CallError> {
        let response = http::send(self.http.get(self.url(id)).bearer_auth(token.expose())).await?;
        http::json(response).await
    }

    /// Creates a referral (partner-center.md §1.5) and returns it as created (id, eTag, links).
    /// `request_id` (`MS-RequestId`) is the same on every retry of one create, so a retry after a
    /// failure that came after the create answers the referral made the first time.
    pub async fn create(
        &self,
        token: &Secret,
        body: &Value,
        request_id: &str,
    ) -> Result<Value, CallError> {
        let response = http::send(
            self.http
                .post(format!("{}/v1.0/engagements/referrals", self.base))
                .bearer_auth(token.expose())
                .header("MS-RequestId", request_id)
                .json(body),
        )
        .await?;
        http::json(response).await
    }

    /// JSON Patch (`replace`/`add` only) guarded by the referral's `eTag` (a 412 means it changed
    /// since); answers the referral as it now is (`Prefer: return=representation`), so its new eTag
    /// guards the next update without another read.
    pub async fn patch(
        &self,
        token: &Secret,
        id: &str,
        e_tag: &str,
        operations: &Value,
    ) -> Result<Value, CallError> {
        let response = http::send(
            self.http
                .patch(self.url(id))
                .bearer_auth(token.expose())
                .header("If-Match", e_tag)
                .header("Prefer", "return=representation")
                .json(operations),
        )
        .await?;
        http::json(response).await
    }
}
