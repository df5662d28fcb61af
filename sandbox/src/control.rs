//! The sandbox control surface, for tests and for people trying the product:
//!
//! - `GET  /_control/entra/users` — the demo users
//! - `GET  /_control/entra/faults`, `POST /_control/entra/faults` — read / replace the Entra faults
//!   (JSON [`crate::entra::Faults`], e.g. `{"next_id_token":"bad_signature"}`)
//! - `POST /_control/entra/rotate-keys` — publish a new signing key and sign with it
//! - `POST /_control/entra/users/{key}/revoke-grants` — revoke a user's refresh tokens (AADSTS50173)
//! - `POST /_control/entra/users/{key}/password` — `{"expired": true}`: the password expires, so sign-ins
//!   and refreshes of that user's tokens fail with AADSTS50055 until `{"expired": false}`
//! - `POST /_control/entra/redirect-uris` — `{"client_id": "…", "redirect_uri": "…"}` adds a redirect URI
//!   to an app registration (204; 404 for an unknown client, 400 for a redirect URI that is no URL)
//! - `POST /_control/clock/advance` — `{"seconds": 700}` moves the emulators' clock forward
//! - `GET`/`POST`/`DELETE /_control/faults` — list / add / clear fault rules on the emulated APIs
//!   ([`crate::faults::FaultRule`]; a POST answers the rules in force, 422 for a rule that makes no sense):
//!   - `{"method":"GET","path_contains":"/referrals","status":429,"retry_after":2,"times":3}` — a status
//!     (with an optional JSON `body`) instead of the emulator's answer;
//!   - `{"path_contains":"/token","delay_ms":5000}` — the emulator's answer, late;
//!   - `{"path_contains":"/referrals","kind":"reset"}` — the connection dropped, no answer;
//!   - `{"path_contains":"/referrals","kind":"malformed_json"}` — the emulator's answer (or `status`), JSON cut short;
//!   - `{"path_contains":"/referrals","kind":"answer_lost","delay_ms":3000}` — done, but no answer arrives;
//!   - `{"path_contains":"/referrals","kind":"html_error_page"}` — a gateway's 502 (or `status`) HTML page;
//!   - `{"path_contains":"/referrals","kind":"slow_body","delay_ms":3000}` — headers at once, the body
//!     stalls `delay_ms` midway;
//!   - `"nth": 2` on any of them — the first matching call goes through, the rule applies from the second.
//! - `GET /_control/journal?api=partner_center&method=POST&path_contains=/referrals&since=41` — the requests
//!   the emulated APIs were sent, oldest first, each filter optional ([`crate::journal::JournalEntry`];
//!   `api` is `entra`, `partner_center`, `dataverse`, `salesforce` or `unknown`; `since` a `seq`)
//! - `DELETE /_control/journal` — forget the journal (numbering goes on)
//! - `POST /_control/partner-center/referrals` — act as a Microsoft seller: create an incoming referral
//! - `GET`/`PATCH /_control/partner-center/referrals/{id}` — read / update one as that seller (JSON Patch)
//! - `GET /_control/partner-center/deliveries` — every webhook delivery attempt, oldest first
//! - `POST /_control/partner-center/delivery-settings` — `{"retry_base_ms":1000,"copies":1}`
//! - `GET /_control/partner-center/trust-anchor` — the root certificate (PEM) deliveries chain to
//! - `GET /_control/tls/ca` — the sandbox's own TLS certificate authority (PEM), which issued the
//!   listener's certificate: what a client trusts to call the emulated APIs over HTTPS (this and every
//!   control call also answer over plain HTTP, on the same port)
//! - `GET /_control/dataverse/{set}` — the rows of `opportunities`, `accounts`, `contacts` or
//!   `transactioncurrencies`, as the Web API returns them (with `@odata.etag`)
//! - `POST /_control/dataverse/{set}` — act as a CRM user: create a row (Web API body shape, lookups as
//!   `x@odata.bind`); 201 `{"id": "…"}`
//! - `GET`/`PATCH`/`DELETE /_control/dataverse/{set}/{id}` — read / edit (a new version) / delete a row as
//!   that CRM user; a PATCH of `statecode` closes an opportunity as the UI's "Close as Won/Lost" does
//! - `/_control/salesforce/…` — the Salesforce org's records, switches and callback URLs, see
//!   [`crate::salesforce::control`]

use crate::clock::Clock;
use crate::dataverse::Dataverse;
use crate::entra::{Entra, Faults as EntraFaults};
use crate::faults::{FaultRule, Faults};
use crate::journal::{Journal, JournalEntry, JournalFilter};
use crate::partner_center::PartnerCenter;
use crate::salesforce::Salesforce;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

pub struct ControlState {
    pub base_url: String,
    /// The CA that issued the listener's TLS certificate, PEM.
    pub tls_ca_pem: String,
    pub entra: Entra,
    pub partner_center: PartnerCenter,
    pub dataverse: Dataverse,
    pub salesforce: Salesforce,
    pub faults: Faults,
    pub journal: Journal,
    pub clock: Clock,
}

type S = State<Arc<ControlState>>;

pub fn routes(state: Arc<ControlState>) -> Router {
    Router::new()
        .route("/entra/users", get(users))
        .route("/entra/faults", get(get_faults).post(set_faults))
        .route("/entra/rotate-keys", post(rotate_keys))
        .route("/entra/users/{key}/revoke-grants", post(revoke_grants))
        .route("/entra/users/{key}/password", post(set_password))
        .route("/entra/redirect-uris", post(register_redirect_uri))
        .route("/clock/advance", post(advance_clock))
        .route(
            "/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .route("/journal", get(read_journal).delete(clear_journal))
        .route("/partner-center/referrals", post(seller_creates))
        .route(
            "/partner-center/referrals/{id}",
            get(seller_reads).patch(seller_updates),
        )
        .route("/partner-center/deliveries", get(deliveries))
        .route("/partner-center/delivery-settings", post(delivery_settings))
        .route("/partner-center/trust-anchor", get(trust_anchor))
        .route("/tls/ca", get(tls_ca))
        .route("/dataverse/{set}", get(crm_rows).post(crm_creates))
        .route(
            "/dataverse/{set}/{id}",
            get(crm_reads).patch(crm_updates).delete(crm_deletes),
        )
        .with_state(state)
}

async fn users(State(s): S) -> Json<serde_json::Value> {
    Json(serde_json::json!(s.entra.users()))
}

async fn get_faults(State(s): S) -> Json<EntraFaults> {
    Json(s.entra.faults())
}

async fn set_faults(State(s): S, Json(faults): Json<EntraFaults>) -> Json<EntraFaults> {
    s.entra.set_faults(faults);
    Json(s.entra.faults())
}

async fn rotate_keys(State(s): S) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "kid": s.entra.rotate_signing_key() }))
}

async fn revoke_grants(State(s): S, Path(key): Path<String>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "revoked": s.entra.revoke_user_grants(&key) }))
}

#[derive(Deserialize)]
struct Password {
    expired: bool,
}

async fn set_password(State(s): S, Path(key): Path<String>, Json(p): Json<Password>) -> Response {
    if s.entra.set_password_expired(&key, p.expired) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::NOT_FOUND, format!("no demo user {key:?}")).into_response()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedirectUri {
    client_id: String,
    redirect_uri: String,
}

async fn register_redirect_uri(State(s): S, Json(r): Json<RedirectUri>) -> Response {
    if url::Url::parse(&r.redirect_uri).is_err() {
        return (
            StatusCode::BAD_REQUEST,
            format!("{:?} is not a URL", r.redirect_uri),
        )
            .into_response();
    }
    if s.entra.register_redirect_uri(&r.client_id, &r.redirect_uri) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            format!("no app registration {:?}", r.client_id),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(s): S, Json(a): Json<Advance>) -> Json<serde_json::Value> {
    s.clock.advance(a.seconds);
    Json(serde_json::json!({ "now": s.clock.now().unix_timestamp() }))
}

async fn list_faults(State(s): S) -> Json<Vec<FaultRule>> {
    Json(s.faults.list())
}

async fn add_fault(State(s): S, Json(rule): Json<FaultRule>) -> Json<Vec<FaultRule>> {
    s.faults.add(rule);
    Json(s.faults.list())
}

async fn clear_faults(State(s): S) -> StatusCode {
    s.faults.clear();
    StatusCode::NO_CONTENT
}

async fn read_journal(State(s): S, Query(filter): Query<JournalFilter>) -> Json<Vec<JournalEntry>> {
    Json(s.journal.entries(&filter))
}

async fn clear_journal(State(s): S) -> StatusCode {
    s.journal.clear();
    StatusCode::NO_CONTENT
}

async fn seller_creates(State(s): S, Json(fields): Json<serde_json::Value>) -> Response {
    (
        StatusCode::CREATED,
        Json(s.partner_center.seller_creates(fields)),
    )
        .into_response()
}

async fn seller_reads(State(s): S, Path(id): Path<String>) -> Response {
    match s.partner_center.referral(&id) {
        Some(r) => Json(r).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn seller_updates(
    State(s): S,
    Path(id): Path<String>,
    Json(ops): Json<Vec<json_patch::PatchOperation>>,
) -> Response {
    match s.partner_center.seller_updates(&id, ops) {
        Ok(r) => Json(r).into_response(),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "message": message })),
        )
            .into_response(),
    }
}

async fn deliveries(State(s): S) -> Json<Vec<crate::partner_center::Attempt>> {
    Json(s.partner_center.deliveries())
}

async fn delivery_settings(
    State(s): S,
    Json(settings): Json<crate::partner_center::DeliverySettings>,
) -> StatusCode {
    s.partner_center.set_delivery_settings(settings);
    StatusCode::NO_CONTENT
}

async fn trust_anchor(State(s): S) -> String {
    s.partner_center.trust_anchor_pem()
}

async fn tls_ca(State(s): S) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
        s.tls_ca_pem.clone(),
    )
}

fn crm_error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "message": message }))).into_response()
}

/// Every table set answers (a possibly empty list); an unknown set is a 404.
fn unknown_set(set: &str) -> Option<Response> {
    if crate::dataverse::schema::table(set).is_some() {
        None
    } else {
        Some(crm_error(
            StatusCode::NOT_FOUND,
            format!("no Dataverse entity set {set:?}"),
        ))
    }
}

async fn crm_rows(State(s): S, Path(set): Path<String>) -> Response {
    if let Some(r) = unknown_set(&set) {
        return r;
    }
    Json(s.dataverse.rows(&set)).into_response()
}

async fn crm_creates(
    State(s): S,
    Path(set): Path<String>,
    Json(row): Json<serde_json::Value>,
) -> Response {
    if let Some(r) = unknown_set(&set) {
        return r;
    }
    match s.dataverse.try_insert(&set, row) {
        Ok(id) => (StatusCode::CREATED, Json(serde_json::json!({ "id": id }))).into_response(),
        Err(message) => crm_error(StatusCode::BAD_REQUEST, message),
    }
}

async fn crm_reads(State(s): S, Path((set, id)): Path<(String, String)>) -> Response {
    match s.dataverse.row(&set, &id) {
        Some(row) => Json(row).into_response(),
        None => crm_error(StatusCode::NOT_FOUND, format!("no {set} row {id}")),
    }
}

async fn crm_updates(
    State(s): S,
    Path((set, id)): Path<(String, String)>,
    Json(patch): Json<serde_json::Value>,
) -> Response {
    if s.dataverse.row(&set, &id).is_none() {
        return crm_error(StatusCode::NOT_FOUND, format!("no {set} row {id}"));
    }
    match s.dataverse.update(&set, &id, patch) {
        Ok(()) => match s.dataverse.row(&set, &id) {
            Some(row) => Json(row).into_response(),
            None => crm_error(StatusCode::NOT_FOUND, format!("no {set} row {id}")),
        },
        Err(message) => crm_error(StatusCode::BAD_REQUEST, message),
    }
}

async fn crm_deletes(State(s): S, Path((set, id)): Path<(String, String)>) -> Response {
    if s.dataverse.delete(&set, &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        crm_error(StatusCode::NOT_FOUND, format!("no {set} row {id}"))
    }
}
