//! Partner Center Referrals API emulator (partner-center.md §1, emulator-checklist.md §2).
//!
//! - `POST /v1.0/engagements/referrals` — create (201); `MS-RequestId` makes a retried create idempotent
//! - `GET  /v1.0/engagements/referrals` — list with `$filter`, `$orderby`, `$top`, `$select`; pages end with
//!   an opaque `@odata.nextLink` that, as documented, uses `http://` and drops `/engagements/`
//! - `GET  /v1.0/engagements/referrals/{id}`
//! - `PATCH /v1.0/engagements/referrals/{id}` — JSON Patch, `replace` and `add` only; `If-Match` against
//!   the quoted strong `eTag` (412 on mismatch); 204, or 200 with `Prefer: return=representation`
//!
//! Every call needs a bearer token minted by the Entra emulator for `https://api.partner.microsoft.com`
//! (401 otherwise) for a user holding a Partner Center referrals role (403 otherwise).
//! The error body is not documented (unconfirmed): we answer `{"code","message"}` and clients must branch
//! on the status code only.

mod odata;
mod referral;
pub(crate) mod signer;
mod webhooks;

pub use webhooks::{Attempt, DeliverySettings, MAX_ATTEMPTS, REFERRAL_EVENTS};

use crate::clock::Clock;
use crate::entra::{DemoUser, Entra};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use json_patch::PatchOperation;
use referral::{
    SERVER_FIELDS, camel_case_keys, check_state, check_transition, coerce_deal_value, lower_first,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The token audience of the Referrals API (not to be confused with api.partnercenter.microsoft.com).
pub const AUDIENCE: &str = "https://api.partner.microsoft.com";
pub const ORGANIZATION_ID: &str = "7f0a3c1e-5b2d-4e6f-9a8b-1c2d3e4f5a6b";
pub const ORGANIZATION_NAME: &str = "Contoso Sandbox Partner";
/// Largest page; the real maximum is undocumented (unconfirmed).
pub const MAX_PAGE: usize = 100;
/// From this instant, App+User calls need a token whose `amr` includes `mfa`.
const MFA_ENFORCED_FROM: OffsetDateTime = time::macros::datetime!(2026-04-01 00:00 UTC);
/// A referral nobody answers within this many days expires (Closed/Expired).
const EXPIRY_DAYS: i64 = 14;

struct Cursor {
    filter: Option<odata::Filter>,
    order: Option<(String, bool)>,
    select: Option<Vec<String>>,
    top: usize,
    offset: usize,
}

#[derive(Default)]
struct State_ {
    /// In creation order.
    referrals: Vec<Value>,
    /// Where each referral is in `referrals`, by id, and the referrals of each engagement: both fields
    /// are the service's own and never change (a PATCH of them is refused), so a lookup reads one
    /// referral, not all of them, however many a benchmark shares.
    positions: HashMap<String, usize>,
    engagements: HashMap<String, Vec<usize>>,
    skiptokens: HashMap<String, Cursor>,
    request_ids: HashMap<String, String>,
    etag_counter: u64,
    webhooks: webhooks::WebhookState,
}

struct Inner {
    base_url: String,
    entra: Entra,
    clock: Clock,
    state: Mutex<State_>,
    /// Made on first use: most sandboxes never deliver a webhook, and RSA keys take a while to make.
    signer: std::sync::OnceLock<signer::Signer>,
    /// Delivers webhooks; no redirects, a bounded wait.
    http: reqwest::Client,
    /// Each delivery attempt, as it completes.
    attempts: tokio::sync::broadcast::Sender<webhooks::Attempt>,
}

#[derive(Clone)]
pub struct PartnerCenter {
    inner: Arc<Inner>,
}

fn now_text(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "code": code, "message": message.into() })),
    )
        .into_response()
}

impl PartnerCenter {
    pub fn new(base_url: String, entra: Entra, clock: Clock) -> PartnerCenter {
        PartnerCenter {
            inner: Arc::new(Inner {
                base_url,
                entra,
                clock,
                state: Mutex::new(State_::default()),
                signer: std::sync::OnceLock::new(),
                http: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .expect("HTTP client"),
                attempts: tokio::sync::broadcast::channel(1024).0,
            }),
        }
    }

    fn signer(&self) -> &signer::Signer {
        self.inner
            .signer
            .get_or_init(|| signer::Signer::generate(&self.inner.base_url))
    }

    fn state(&self) -> MutexGuard<'_, State_> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn next_etag(state: &mut State_) -> String {
        state.etag_counter += 1;
        // A quoted strong ETag, as the API shows it: "\"00006d10-0000-0000-0000-5c70aa630000\"".
        format!(
            "\"{:08x}-0000-0000-0000-{:012x}\"",
            state.etag_counter,
            rand::random::<u64>() & 0xffff_ffff_ffff
        )
    }

    /// Applies the 14-day expiry lazily, against the emulator clock.
    fn expire(referral: &mut Value, now: OffsetDateTime) {
        let pending = referral["status"] == "New";
        let due = referral["expirationDateTime"]
            .as_str()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .is_some_and(|at| at <= now);
        if pending && due {
            referral["status"] = "Closed".into();
            referral["substatus"] = "Expired".into();
            referral["closedDateTime"] = now_text(now).into();
            referral["updatedDateTime"] = now_text(now).into();
        }
    }

    /// Stores a new referral with the server-set fields. `incoming`: created by a Microsoft seller.
    fn insert(&self, mut r: Value, incoming: bool) -> Value {
        let now = self.now();
        let id = uuid::Uuid::new_v4().to_string();
        let mut state = self.state();
        if r.get("engagementId").and_then(Value::as_str).is_none() {
            r["engagementId"] = uuid::Uuid::new_v4().to_string().into();
        }
        let (status, substatus) = if incoming {
            ("New", "Pending")
        } else {
            ("Active", "Accepted")
        };
        if r.get("status").and_then(Value::as_str).is_none() {
            r["status"] = status.into();
            r["substatus"] = substatus.into();
        }
        r["id"] = id.clone().into();
        r["organizationId"] = ORGANIZATION_ID.into();
        r["organizationName"] = ORGANIZATION_NAME.into();
        r["direction"] = if incoming { "Incoming" } else { "Outgoing" }.into();
        r["createdDateTime"] = now_text(now).into();
        r["updatedDateTime"] = now_text(now).into();
        r["expirationDateTime"] = now_text(now + time::Duration::days(EXPIRY_DAYS)).into();
        if !incoming {
            // For outgoing referrals acceptance is creation.
            r["acceptedDateTime"] = now_text(now).into();
        }
        r["eTag"] = Self::next_etag(&mut state).into();
        let engagement = r["engagementId"].as_str().unwrap_or_default().to_string();
        r["links"] = json!({
            "self": { "uri": format!("{}/v1.0/engagements/referrals/{id}", self.inner.base_url), "method": "GET" },
            "relatedReferrals": {
                "uri": format!("{}/v1.0/engagements/referrals?$filter=engagementId eq '{engagement}'", self.inner.base_url),
                "method": "GET"
            },
        });
        coerce_deal_value(&mut r);
        let position = state.referrals.len();
        state.positions.insert(id.to_string(), position);
        state
            .engagements
            .entry(engagement)
            .or_default()
            .push(position);
        state.referrals.push(r.clone());
        r
    }

    /// A referral as it is now (for tests and the seller console).
    pub fn referral(&self, id: &str) -> Option<Value> {
        let now = self.now();
        let mut state = self.state();
        let position = *state.positions.get(id)?;
        let r = &mut state.referrals[position];
        Self::expire(r, now);
        Some(r.clone())
    }

    /// Every referral as it is now (for tests: how many a sync created).
    pub fn referrals(&self) -> Vec<Value> {
        let now = self.now();
        let mut state = self.state();
        state
            .referrals
            .iter_mut()
            .map(|r| {
                Self::expire(r, now);
                r.clone()
            })
            .collect()
    }

    /// Acts as a Microsoft seller: creates an incoming co-sell referral (New/Pending) with sensible
    /// defaults for what `fields` leaves out.
    pub fn seller_creates(&self, fields: Value) -> Value {
        let mut r = json!({
            "name": "Co-sell opportunity",
            "type": "Shared",
            "qualification": "SalesQualified",
            "customerProfile": {
                "name": "Fabrikam Inc",
                "address": { "addressLine1": "1 Main Street", "city": "Seattle", "state": "WA",
                             "postalCode": "98101", "country": "US" },
                "team": [{ "firstName": "Ray", "lastName": "Tanaka", "email": "ray@fabrikam.example",
                           "phoneNumber": "+1 206 555 0100" }],
            },
            "consent": { "consentToToShareInfoWithOthers": true, "consentToContact": true,
                         "consentToShareReferralWithMicrosoftSellers": true },
            "details": { "dealValue": 25000, "currency": "USD", "closingDateTime": "2027-03-31T00:00:00Z",
                         "notes": "", "requirements": { "solutions": [] } },
            "team": [],
            "inviteContext": { "invitedBy": { "organizationId": "msft", "organizationName": "Microsoft" },
                               "assistanceRequestCode": "GeneralOrOther" },
        });
        merge(&mut r, camel_case_keys(fields));
        let created = self.insert(r, true);
        self.emit("created", &created);
        created
    }

    /// Acts as a Microsoft seller: applies a JSON Patch (no `If-Match`), with the same status rules.
    pub fn seller_updates(&self, id: &str, ops: Vec<PatchOperation>) -> Result<Value, String> {
        let updated = self.apply(id, ops, None).map_err(|(_, message)| message)?;
        self.emit("updated", &updated);
        Ok(updated)
    }

    fn apply(
        &self,
        id: &str,
        ops: Vec<PatchOperation>,
        if_match: Option<&str>,
    ) -> Result<Value, (StatusCode, String)> {
        let now = self.now();
        let mut state = self.state();
        let position = *state
            .positions
            .get(id)
            .ok_or((StatusCode::NOT_FOUND, format!("referral {id} not found")))?;
        Self::expire(&mut state.referrals[position], now);
        let current = state.referrals[position].clone();
        if let Some(expected) = if_match
            && expected != "*"
            && Some(expected) != current["eTag"].as_str()
        {
            return Err((
                StatusCode::PRECONDITION_FAILED,
                "If-Match does not match the referral's eTag".into(),
            ));
        }
        if current["status"] == "Closed" {
            return Err((
                StatusCode::BAD_REQUEST,
                format!(
                    "the referral is closed ({}) and can no longer be edited",
                    current["substatus"].as_str().unwrap_or("")
                ),
            ));
        }
        let mut ops = ops;
        for op in &mut ops {
            match op {
                PatchOperation::Add(add) => {
                    add.path = normalize_path(add.path.as_str())?;
                    add.value = camel_case_keys(add.value.take());
                }
                PatchOperation::Replace(replace) => {
                    replace.path = normalize_path(replace.path.as_str())?;
                    replace.value = camel_case_keys(replace.value.take());
                }
                _ => {
                    return Err((
                        StatusCode::BAD_REQUEST,
                        "only replace and add operations are supported".into(),
                    ));
                }
            }
        }
        let mut updated = current.clone();
        json_patch::patch(&mut updated, &ops)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("patch failed: {e}")))?;
        for field in SERVER_FIELDS {
            if updated.pointer(field) != current.pointer(field) {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{} is set by the service and cannot be changed",
                        &field[1..]
                    ),
                ));
            }
        }
        if updated.pointer("/customerProfile/address")
            != current.pointer("/customerProfile/address")
        {
            return Err((
                StatusCode::BAD_REQUEST,
                "the customer's location cannot be edited after creation".into(),
            ));
        }
        let from = current["status"].as_str().unwrap_or("").to_string();
        let to = updated["status"].as_str().unwrap_or("").to_string();
        let (from, to) = (from.as_str(), to.as_str());
        check_transition(from, to).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        check_state(to, updated["substatus"].as_str().unwrap_or("None"))
            .map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        coerce_deal_value(&mut updated);
        if to == "Closed" {
            updated["closedDateTime"] = now_text(now).into();
        }
        if from == "New" && to == "Active" {
            updated["acceptedDateTime"] = now_text(now).into();
        }
        updated["updatedDateTime"] = now_text(now).into();
        updated["eTag"] = Self::next_etag(&mut state).into();
        state.referrals[position] = updated.clone();
        Ok(updated)
    }
}

/// `/Details/DealValue` → `/details/dealValue`; `-` and indexes stay as they are.
fn normalize_path(path: &str) -> Result<json_patch::jsonptr::PointerBuf, (StatusCode, String)> {
    let normalized: String = path
        .split('/')
        .skip(1)
        .map(|seg| format!("/{}", lower_first(seg)))
        .collect();
    json_patch::jsonptr::PointerBuf::parse(normalized)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad path {path}: {e}")))
}

/// Deep-merges `patch` into `base` (objects merge, everything else replaces).
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

pub fn routes(pc: PartnerCenter) -> Router {
    Router::new()
        .route("/v1.0/engagements/referrals", get(list).post(create))
        .route(
            "/v1.0/engagements/referrals/{id}",
            get(get_one).patch(patch),
        )
        // The documented nextLink drops `/engagements/` (and says http://, which the listener redirects
        // to https): it must still work.
        .route("/v1.0/referrals", get(list))
        // Where webhook ResourceUris point (the api.partnercenter host and path, unconfirmed for live
        // events); read with a token for that host's audience.
        .route("/engagements/v1/referrals/{id}", get(get_by_resource_uri))
        .with_state(pc.clone())
        .merge(webhooks::routes(pc))
}

fn unauthorized(why: String) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized", why);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

/// Verifies the bearer token for `audience`; returns its claims. App-only tokens pass.
#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom; one per request"
)]
fn caller_app_or_user(
    pc: &PartnerCenter,
    headers: &HeaderMap,
    audience: &str,
) -> Result<Value, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("a bearer token is required".into()))?;
    pc.inner
        .entra
        .verify_access_token(token, audience)
        .map_err(unauthorized)
}

/// The caller of the Referrals API: App+User only, holding a Partner Center referrals role.
#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom; one per request"
)]
fn caller(pc: &PartnerCenter, headers: &HeaderMap, audience: &str) -> Result<DemoUser, Response> {
    let claims = caller_app_or_user(pc, headers, audience)?;
    let user = claims["oid"]
        .as_str()
        .and_then(|oid| pc.inner.entra.user_by_object_id(oid))
        .ok_or_else(|| unauthorized("App+User tokens only: this token names no user".into()))?;
    // "Beginning April 1, 2026 all App+User usage of Partner Center APIs will enforce the usage of MFA":
    // the token's amr must include mfa (partner-center.md §1.2). Judged by the emulator's clock.
    let mfa = claims["amr"]
        .as_array()
        .is_some_and(|amr| amr.iter().any(|m| m == "mfa"));
    if !mfa && pc.now() >= MFA_ENFORCED_FROM {
        return Err(unauthorized(
            "Partner Center requires multi-factor authentication for App+User calls: the token's amr has no mfa (AADSTS50076 on sign-in)".into(),
        ));
    }
    if user.partner_center_roles.is_empty() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{} needs the Referrals Admin or Referrals User role in Partner Center",
                user.username
            ),
        ));
    }
    Ok(user)
}

async fn create(State(pc): State<PartnerCenter>, headers: HeaderMap, body: String) -> Response {
    if let Err(r) = caller(&pc, &headers, AUDIENCE) {
        return r;
    }
    let request_id = headers
        .get("ms-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(rid) = &request_id {
        let known = pc.state().request_ids.get(rid).cloned();
        if let Some(existing) = known.and_then(|id| pc.referral(&id)) {
            // A retry of a create that already happened: the same referral, not a second one.
            return (StatusCode::CREATED, Json(existing)).into_response();
        }
    }
    let Ok(parsed) = serde_json::from_str::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "the body is not JSON",
        );
    };
    if !parsed.is_object() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "the body must be a referral object",
        );
    }
    let r = camel_case_keys(parsed);
    let problems = referral::create_problems(&r);
    if !problems.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            problems.join("; "),
        );
    }
    let created = pc.insert(r, false);
    pc.emit("created", &created);
    if let Some(rid) = request_id {
        let id = created["id"].as_str().unwrap_or_default().to_string();
        pc.state().request_ids.insert(rid, id);
    }
    (StatusCode::CREATED, Json(created)).into_response()
}

async fn get_one(
    State(pc): State<PartnerCenter>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = caller(&pc, &headers, AUDIENCE) {
        return r;
    }
    one(&pc, &id)
}

async fn get_by_resource_uri(
    State(pc): State<PartnerCenter>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = caller(&pc, &headers, webhooks::AUDIENCE) {
        return r;
    }
    one(&pc, &id)
}

fn one(pc: &PartnerCenter, id: &str) -> Response {
    match pc.referral(id) {
        Some(r) => {
            let mut body = json!({ "@odata.context": format!("{}/v1.0/engagements/$metadata#referrals/$entity", pc.inner.base_url) });
            merge(&mut body, r);
            Json(body).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("referral {id} not found"),
        ),
    }
}

async fn patch(
    State(pc): State<PartnerCenter>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if let Err(r) = caller(&pc, &headers, AUDIENCE) {
        return r;
    }
    let ops: Vec<PatchOperation> = match serde_json::from_str(&body) {
        Ok(ops) => ops,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                format!("the body is not a JSON Patch document: {e}"),
            );
        }
    };
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    match pc.apply(&id, ops, if_match) {
        Ok(updated) => {
            pc.emit("updated", &updated);
            let wants_body = headers
                .get("prefer")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("return=representation"));
            if wants_body {
                // The status with a representation is unconfirmed (probably 200).
                (StatusCode::OK, Json(updated)).into_response()
            } else {
                StatusCode::NO_CONTENT.into_response()
            }
        }
        Err((status, message)) => error(
            status,
            if status == StatusCode::PRECONDITION_FAILED {
                "PreconditionFailed"
            } else {
                "InvalidRequest"
            },
            message,
        ),
    }
}

async fn list(
    State(pc): State<PartnerCenter>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = caller(&pc, &headers, AUDIENCE) {
        return r;
    }
    let cursor = match q.get("$skiptoken") {
        Some(token) => match pc.state().skiptokens.remove(token) {
            Some(cursor) => cursor,
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "unknown or used $skiptoken",
                );
            }
        },
        None => {
            let filter = match q.get("$filter").map(|f| odata::parse_filter(f)).transpose() {
                Ok(f) => f,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequest",
                        format!("$filter: {e}"),
                    );
                }
            };
            let order = match q
                .get("$orderby")
                .map(|o| odata::parse_orderby(o))
                .transpose()
            {
                Ok(o) => o,
                Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidRequest", e),
            };
            let top = match q.get("$top").map(|t| t.parse::<usize>()) {
                None => MAX_PAGE,
                Some(Ok(t)) if t > 0 => t.min(MAX_PAGE),
                Some(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequest",
                        "$top must be a positive integer",
                    );
                }
            };
            let select = q
                .get("$select")
                .map(|s| s.split(',').map(|f| f.trim().to_string()).collect());
            Cursor {
                filter,
                order,
                select,
                top,
                offset: 0,
            }
        }
    };
    let now = pc.now();
    let mut state = pc.state();
    for r in state.referrals.iter_mut() {
        PartnerCenter::expire(r, now);
    }
    let mut matching: Vec<&Value> = state
        .referrals
        .iter()
        .filter(|r| cursor.filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    if let Some((field, descending)) = &cursor.order {
        // RFC 3339 UTC strings of one format sort as text; ties keep creation order.
        matching.sort_by(|a, b| {
            let ord = a[field.as_str()].as_str().cmp(&b[field.as_str()].as_str());
            if *descending { ord.reverse() } else { ord }
        });
    }
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(cursor.offset)
        .take(cursor.top)
        .map(|r| match &cursor.select {
            Some(fields) => Value::Object(
                fields
                    .iter()
                    .filter_map(|f| r.get(f).map(|v| (f.clone(), v.clone())))
                    .collect(),
            ),
            None => (*r).clone(),
        })
        .collect();
    let next_offset = cursor.offset + page.len();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/engagements/$metadata#referrals", pc.inner.base_url),
        "@odata.count": total,
        "value": page,
    });
    if next_offset < total {
        let token = crate::entra::random_token(24);
        let host = pc
            .inner
            .base_url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        state.skiptokens.insert(
            token.clone(),
            Cursor {
                offset: next_offset,
                ..cursor
            },
        );
        body["@odata.nextLink"] = format!("http://{host}/v1.0/referrals?$skiptoken={token}").into();
    }
    Json(body).into_response()
}
