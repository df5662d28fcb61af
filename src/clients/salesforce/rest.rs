//! [`SalesforceClient`]: one REST request per call against an org's instance URL (crm-apis.md §3.5), with
//! sObject reads, writes and describe. Every answer, errors included, updates the usage reading.

use super::API_VERSION;
use super::composite::sobject_url;
use super::errors::call_error;
use super::limits::{ApiUsage, UsageCell};
use super::query::{is_api_name, is_id};
use crate::clients::http::{self, CallError};
use crate::crypto::Secret;
use reqwest::header::ACCEPT;
use serde_json::{Map, Value};

/// The REST API of one org. Every call takes the instance URL from the grant and the access token, so a
/// refreshed token needs no new client. Clones share the usage reading: keep one client (and its clones)
/// per org, or [`SalesforceClient::last_usage`] mixes orgs.
#[derive(Clone)]
pub struct SalesforceClient {
    pub(super) http: reqwest::Client,
    usage: UsageCell,
}

/// `https://x.my.salesforce.com/` and `https://x.my.salesforce.com` alike.
pub(super) fn base(instance: &str) -> &str {
    instance.trim_end_matches('/')
}

impl SalesforceClient {
    pub fn new(http: reqwest::Client) -> SalesforceClient {
        SalesforceClient {
            http,
            usage: UsageCell::default(),
        }
    }

    /// The org's daily API usage as the last answer's `Sforce-Limit-Info` said it (None before any call).
    pub fn last_usage(&self) -> Option<ApiUsage> {
        self.usage.get()
    }

    /// Sends one request; a non-2xx answer becomes a [`CallError`] read from Salesforce's error array.
    pub(super) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CallError> {
        let response = request
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(CallError::from_transport)?;
        self.usage.record(response.headers());
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        Err(call_error(status, &headers, &body))
    }

    /// One record's fields (all of them when `fields` is empty), None when it does not exist.
    pub async fn get(
        &self,
        token: &Secret,
        instance: &str,
        object: &str,
        id: &str,
        fields: &[&str],
    ) -> Result<Option<Value>, CallError> {
        check_object(object)?;
        if !is_id(id) {
            return Ok(None);
        }
        let mut request = self
            .http
            .get(format!(
                "{}{}",
                base(instance),
                sobject_url(object, Some(id))
            ))
            .bearer_auth(token.expose());
        if !fields.is_empty() {
            request = request.query(&[("fields", fields.join(","))]);
        }
        match self.send(request).await {
            Ok(response) => Ok(Some(http::json(response).await?)),
            Err(CallError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a record; its id (201 `{"id","success","errors"}`).
    pub async fn create(
        &self,
        token: &Secret,
        instance: &str,
        object: &str,
        fields: &Map<String, Value>,
    ) -> Result<String, CallError> {
        check_object(object)?;
        let request = self
            .http
            .post(format!("{}{}", base(instance), sobject_url(object, None)))
            .bearer_auth(token.expose())
            .json(fields);
        let body = http::json(self.send(request).await?).await?;
        body["id"]
            .as_str()
            .filter(|id| is_id(id))
            .map(str::to_string)
            .ok_or_else(|| CallError::Unexpected(format!("a create answered {body}")))
    }

    /// Updates a record (204). An id that cannot exist is NotFound without a call.
    pub async fn update(
        &self,
        token: &Secret,
        instance: &str,
        object: &str,
        id: &str,
        fields: &Map<String, Value>,
    ) -> Result<(), CallError> {
        check_object(object)?;
        if !is_id(id) {
            return Err(CallError::NotFound(format!("{object} id {id:?}")));
        }
        let request = self
            .http
            .patch(format!(
                "{}{}",
                base(instance),
                sobject_url(object, Some(id))
            ))
            .bearer_auth(token.expose())
            .json(fields);
        self.send(request).await.map(|_| ())
    }

    /// The API names of an object's fields (`/sobjects/{Object}/describe`): which custom fields exist.
    pub async fn describe_fields(
        &self,
        token: &Secret,
        instance: &str,
        object: &str,
    ) -> Result<Vec<String>, CallError> {
        check_object(object)?;
        let request = self
            .http
            .get(format!(
                "{}/services/data/{API_VERSION}/sobjects/{object}/describe",
                base(instance)
            ))
            .bearer_auth(token.expose());
        let body = http::json(self.send(request).await?).await?;
        let fields = body["fields"].as_array().ok_or_else(|| {
            CallError::Unexpected(format!("a describe of {object} without fields"))
        })?;
        Ok(fields
            .iter()
            .filter_map(|f| f["name"].as_str().map(str::to_string))
            .collect())
    }
}

/// Object names go into URL paths: a bad one is our bug, not Salesforce's answer.
fn check_object(object: &str) -> Result<(), CallError> {
    if is_api_name(object) {
        Ok(())
    } else {
        Err(CallError::Unexpected(format!("object name {object:?}")))
    }
}
