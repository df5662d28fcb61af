//! `/_control/salesforce/…` (no auth), for tests and people trying the product:
//!
//! - `GET /_control/salesforce/{Object}` — the live records as the REST API returns them;
//! - `POST /_control/salesforce/{Object}` — create as a Salesforce user (the demo admin, who owns it
//!   unless `OwnerId` is given); 201 `{"id": "…"}`;
//! - `GET`/`PATCH`/`DELETE /_control/salesforce/{Object}/{id}` — read / edit / delete as that user;
//! - `GET`/`POST /_control/salesforce/settings` — the org switches (`multi_currency`,
//!   `state_country_picklists`, `refresh_rotation`, `daily_api_max`, `session_seconds`,
//!   `upsert_update_200`) and `api_used`; a POST changes only the fields it names;
//! - `POST /_control/salesforce/expire-sessions` — every access token expires now;
//! - `POST /_control/salesforce/users/{key}/revoke` — revoke a demo user's refresh tokens;
//! - `POST /_control/salesforce/redirect-uris` — `{"redirect_uri": "…"}` adds a callback URL to the
//!   connected app (204; 400 for one that is no URL).

use super::{Salesforce, Settings};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

type S = State<Salesforce>;

pub fn routes(sf: Salesforce) -> Router {
    Router::new()
        .route("/salesforce/settings", get(settings).post(change_settings))
        .route("/salesforce/expire-sessions", post(expire_sessions))
        .route("/salesforce/users/{key}/revoke", post(revoke))
        .route("/salesforce/redirect-uris", post(register_redirect_uri))
        .route("/salesforce/{object}", get(rows).post(create))
        .route(
            "/salesforce/{object}/{id}",
            get(read).patch(update).delete(delete),
        )
        .with_state(sf)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsPatch {
    multi_currency: Option<bool>,
    state_country_picklists: Option<bool>,
    refresh_rotation: Option<bool>,
    daily_api_max: Option<u64>,
    api_used: Option<u64>,
    session_seconds: Option<i64>,
    upsert_update_200: Option<bool>,
}

async fn settings(State(sf): S) -> Json<Value> {
    let mut body = json!(sf.settings());
    body["api_used"] = json!(sf.api_used());
    Json(body)
}

async fn change_settings(State(sf): S, Json(p): Json<SettingsPatch>) -> Json<Value> {
    let mut s: Settings = sf.settings();
    s.multi_currency = p.multi_currency.unwrap_or(s.multi_currency);
    s.state_country_picklists = p
        .state_country_picklists
        .unwrap_or(s.state_country_picklists);
    s.refresh_rotation = p.refresh_rotation.unwrap_or(s.refresh_rotation);
    s.daily_api_max = p.daily_api_max.unwrap_or(s.daily_api_max);
    s.session_seconds = p.session_seconds.unwrap_or(s.session_seconds);
    s.upsert_update_200 = p.upsert_update_200.unwrap_or(s.upsert_update_200);
    sf.set_settings(s);
    if let Some(used) = p.api_used {
        sf.set_api_used(used);
    }
    settings(State(sf)).await
}

async fn expire_sessions(State(sf): S) -> Json<Value> {
    Json(json!({ "expired": sf.expire_sessions() }))
}

async fn revoke(State(sf): S, Path(key): Path<String>) -> Response {
    if !sf.users().iter().any(|u| u.key == key) {
        return error(StatusCode::NOT_FOUND, format!("no demo user {key:?}"));
    }
    Json(json!({ "revoked": sf.revoke_refresh_tokens(&key) })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedirectUri {
    redirect_uri: String,
}

async fn register_redirect_uri(State(sf): S, Json(r): Json<RedirectUri>) -> Response {
    if url::Url::parse(&r.redirect_uri).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{:?} is not a URL", r.redirect_uri),
        );
    }
    sf.register_redirect_uri(&r.redirect_uri);
    StatusCode::NO_CONTENT.into_response()
}

fn known(sf: &Salesforce, object: &str) -> Option<Response> {
    let org = sf.org();
    match super::schema::find(object, &org.settings) {
        Some(_) => None,
        None => Some(error(
            StatusCode::NOT_FOUND,
            format!("sObject type '{object}' is not supported."),
        )),
    }
}

async fn rows(State(sf): S, Path(object): Path<String>) -> Response {
    known(&sf, &object).unwrap_or_else(|| Json(sf.rows(&object)).into_response())
}

async fn create(State(sf): S, Path(object): Path<String>, Json(record): Json<Value>) -> Response {
    if let Some(r) = known(&sf, &object) {
        return r;
    }
    match sf.try_insert(&object, record) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

async fn read(State(sf): S, Path((object, id)): Path<(String, String)>) -> Response {
    match sf.row(&object, &id) {
        Some(row) => Json(row).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no {object} record {id}")),
    }
}

async fn update(
    State(sf): S,
    Path((object, id)): Path<(String, String)>,
    Json(patch): Json<Value>,
) -> Response {
    if sf.row(&object, &id).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no {object} record {id}"));
    }
    match sf.update(&object, &id, patch) {
        Ok(()) => read(State(sf), Path((object, id))).await,
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

async fn delete(State(sf): S, Path((object, id)): Path<(String, String)>) -> Response {
    if sf.delete(&object, &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            format!("no live {object} record {id}"),
        )
    }
}
