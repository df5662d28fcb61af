//! The identity URL, `GET /id/{orgId}/{userId}` (crm-apis.md §3.11): who a token belongs to. Field names
//! follow Salesforce's identity service (the reference marks them unconfirmed); `urls` carry the
//! `{version}` placeholder clients substitute. An invalid token answers 403 `Bad_OAuth_Token` and an
//! unknown id 404 `Bad_Id`, as plain text (unconfirmed).

use super::{ORG_ID, Salesforce, schema};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The access token of a request: `Authorization: Bearer …` (or `OAuth …`, which Salesforce also takes).
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("OAuth "))
        .map(str::trim)
}

#[derive(Deserialize)]
pub(crate) struct IdentityQuery {
    oauth_token: Option<String>,
}

pub(crate) async fn identity(
    State(sf): State<Salesforce>,
    Path((org_id, user_id)): Path<(String, String)>,
    Query(query): Query<IdentityQuery>,
    headers: HeaderMap,
) -> Response {
    let now = sf.now();
    let base = sf.base_url().to_string();
    let org = sf.org();
    let token = bearer(&headers).map(str::to_string).or(query.oauth_token);
    let Some(session) = token
        .as_deref()
        .and_then(|t| org.grants.session(t, now, org.settings.session_seconds))
    else {
        return (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response();
    };
    let user = super::ids::normalize(&user_id)
        .filter(|_| super::ids::normalize(&org_id).as_deref() == Some(ORG_ID))
        .and_then(|id| org.store.get(&id).filter(|r| r.object == schema::USER.name));
    let Some(user) = user else {
        return (StatusCode::NOT_FOUND, "Bad_Id").into_response();
    };
    let f = |name: &str| user.fields.get(name).cloned().unwrap_or(Value::Null);
    let id = f("Id");
    let id = id.as_str().unwrap_or_default();
    let rest = format!("{base}/services/data/v{{version}}/");
    let org15 = &ORG_ID[..15];
    let urls: HashMap<&str, String> = HashMap::from([
        (
            "enterprise",
            format!("{base}/services/Soap/c/{{version}}/{org15}"),
        ),
        (
            "metadata",
            format!("{base}/services/Soap/m/{{version}}/{org15}"),
        ),
        (
            "partner",
            format!("{base}/services/Soap/u/{{version}}/{org15}"),
        ),
        ("rest", rest.clone()),
        ("sobjects", format!("{rest}sobjects/")),
        ("search", format!("{rest}search/")),
        ("query", format!("{rest}query/")),
        ("recent", format!("{rest}recent/")),
        ("tooling_rest", format!("{rest}tooling/")),
        ("profile", format!("{base}/{id}")),
        ("feeds", format!("{rest}chatter/feeds")),
        ("groups", format!("{rest}chatter/groups")),
        ("users", format!("{rest}chatter/users")),
        ("feed_items", format!("{rest}chatter/feed-items")),
        ("custom_domain", base.clone()),
    ]);
    let name = format!(
        "{} {}",
        f("FirstName").as_str().unwrap_or_default(),
        f("LastName").as_str().unwrap_or_default()
    );
    Json(json!({
        "id": format!("{base}/id/{ORG_ID}/{id}"),
        "asserted_user": session.user_id == id,
        "user_id": id,
        "organization_id": ORG_ID,
        "username": f("Username"),
        "nick_name": f("Username").as_str().and_then(|u| u.split('@').next()).unwrap_or_default(),
        "display_name": name.trim(),
        "email": f("Email"),
        "email_verified": true,
        "first_name": f("FirstName"),
        "last_name": f("LastName"),
        "mobile_phone": f("MobilePhone"),
        "active": f("IsActive"),
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "timezone": "America/Los_Angeles",
        "utcOffset": -28_800_000,
        "last_modified_date": f("LastModifiedDate"),
        "is_app_installed": true,
        "urls": urls,
    }))
    .into_response()
}
