//! The Partner Center Referrals API (partner-center.md §1): read a referral, patch it with JSON Patch
//! under `If-Match`. Audience `https://api.partner.microsoft.com`.

use crate::clients::http::{self, CallError};
use crate::crypto::Secret;
use crate::domain::referral::{Referral, Standing};
use serde_json::Value;

pub const AUDIENCE: &str = "https://api.partner.microsoft.com";

/// A referral as a list names it: enough to know whether it changed since a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedReferral {
    pub id: String,
    pub name: String,
    pub updated: time::OffsetDateTime,
    pub standing: Standing,
    /// `Incoming` (shared with the partner) or `Outgoing` (the partner's own).
    pub direction: String,
}

/// One page of a referral list, and where the next one is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralPage {
    pub referrals: Vec<ListedReferral>,
    pub next: Option<String>,
}

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

    /// One page of referrals, the latest updated first (`$orderby=updatedDateTime desc`), from the
    /// first page or from the `@odata.nextLink` of the one before. What a reconciliation reads until it
    /// reaches referrals it compared before. The reference documents `$filter` with `eq` only (§1.4),
    /// so a range on `updatedDateTime` is not asked for; the documented ordering does the job.
    pub async fn updated_page(
        &self,
        token: &Secret,
        next: Option<&str>,
        page_size: u32,
    ) -> Result<ReferralPage, CallError> {
        let request = match next {
            Some(link) => self.http.get(self.secure(link)),
            None => self
                .http
                .get(format!("{}/v1.0/engagements/referrals", self.base))
                .query(&[
                    ("$orderby", "updatedDateTime desc".to_string()),
                    ("$top", page_size.to_string()),
                ]),
        };
        let body = http::json(http::send(request.bearer_auth(token.expose())).await?).await?;
        let referrals = body["value"]
            .as_array()
            .ok_or_else(|| CallError::Unexpected("a referral list without \"value\"".into()))?
            .iter()
            .map(|r| {
                let id = r["id"].as_str().unwrap_or_default().to_string();
                let updated = r["updatedDateTime"]
                    .as_str()
                    .and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                    .ok_or_else(|| {
                        CallError::Unexpected(format!("referral {id} has no updatedDateTime"))
                    })?;
                let text = |field: &str| r[field].as_str().unwrap_or_default().to_string();
                Ok(ListedReferral {
                    name: text("name"),
                    standing: Standing::of(&text("status"), &text("substatus")),
                    direction: text("direction"),
                    id,
                    updated,
                })
            })
            .collect::<Result<Vec<_>, CallError>>()?;
        Ok(ReferralPage {
            referrals,
            next: body["@odata.nextLink"].as_str().map(str::to_string),
        })
    }

    /// A `nextLink` as it is followed: verbatim (the documented one drops `/engagements/`, so it is
    /// never rebuilt), except that its documented `http://` becomes `https://` when the API is HTTPS,
    /// so the bearer token never travels in clear.
    fn secure(&self, link: &str) -> String {
        match link.strip_prefix("http://") {
            Some(rest) if self.base.starts_with("https://") => format!("https://{rest}"),
            _ => link.to_string(),
        }
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
