//! Salesforce: OAuth 2.0 web server flow and the REST API of one org (crm-apis.md §3).
//!
//! - `oauth.rs`: the authorize URL (PKCE S256), the code exchange, refresh, and the identity URL.
//! - `rest.rs`: [`SalesforceClient`], one request per call, sObject reads and writes, describe.
//! - `query.rs`: SOQL (`/query`, `/queryAll`, paging), literals and id checks.
//! - `composite.rs`: several writes as one API call (`/composite`, allOrNone).
//! - `errors.rs`: REST error arrays (`[{"message","errorCode","fields"}]`) into [`CallError`].
//! - `limits.rs`: the org's daily API usage from `Sforce-Limit-Info`.
//! - `stub_tests.rs` (tests only): the client over HTTP against a minimal axum stub.
//!
//! The token exchange uses the `oauth2` crate: Salesforce's token answer fits its standard response
//! (`expires_in` is optional there, `token_type` is always sent) once `instance_url`, `id`, `issued_at` and
//! `signature` ride along as extra fields. Two small additions keep it honest: an error type for
//! Salesforce's `{"error","error_description"}`, and an HTTP adapter that turns a 5xx into "unreachable"
//! (the crate would otherwise report an HTML error page as an unreadable answer, and the diagnosis would
//! blame the grant).
//!
//! [`CallError`]: crate::clients::http::CallError

mod composite;
mod errors;
mod limits;
mod oauth;
mod query;
mod rest;

#[cfg(test)]
mod stub_tests;

pub use composite::{Subrequest, Subresponse, sobject_url};
pub use errors::call_error;
pub use limits::{ApiUsage, parse_limit_info};
pub use oauth::{AuthError, AuthorizeRequest, Identity, SalesforceGrant, SalesforceOAuth};
pub use query::{Records, is_api_name, is_id, soql_literal};
pub use rest::SalesforceClient;

/// The REST API version every URL names; Salesforce keeps old versions working for years, so it moves
/// only when we need something newer.
pub const API_VERSION: &str = "v62.0";
