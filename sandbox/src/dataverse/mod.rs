//! Dataverse Web API emulator (crm-apis.md §2, emulator-checklist.md §4). Served under
//! `/api/data/v9.2/`:
//!
//! - identity: `WhoAmI()` → `{BusinessUnitId, UserId, OrganizationId}`; `systemusers(<id>)`,
//!   `systemusers?$filter=azureactivedirectoryobjectid eq <guid>` (and `$select`);
//!   `systemusers(<id>)/systemuserroles_association` → roles with `_roletemplateid_value`;
//! - tables (columns in `schema.rs`, rows and write rules in `tables.rs`): `opportunities`, `accounts`,
//!   `contacts`, `transactioncurrencies` (USD, EUR, GBP seeded, with demo accounts and contacts): `GET` a
//!   collection or a row, `POST` (204 + `OData-EntityId`, or 201 + body with
//!   `Prefer: return=representation`), `PATCH` (update or upsert, `If-Match`, `If-None-Match: *`),
//!   `DELETE`, conditional `GET` (304);
//! - queries (`query.rs`): `$select`, `$filter`, `$orderby`, `$top`, `$count`; paging with
//!   `Prefer: odata.maxpagesize` and `$skiptoken` cookies (`paging.rs`); `$skip` refused;
//! - change tracking: `Prefer: odata.track-changes` → `@odata.deltaLink`, deltas with `$deletedEntity`;
//! - `Prefer: odata.include-annotations` (formatted values, lookup logical names);
//! - actions `WinOpportunity` and `LoseOpportunity`; Won/Lost opportunities are read-only.
//!
//! Every row carries `versionnumber` from one organization-wide counter and reads back with
//! `@odata.etag: W/"<versionnumber>"`; `createdon`/`modifiedon` come from the emulator clock.
//!
//! Tokens must be minted by the Entra emulator for the organization URL (`https://{org}.crm.dynamics.com`).
//! Role ids and names differ per business unit, as in real organizations; template ids are the real ones,
//! so clients must compare template ids. Errors are `{"error":{"code":"0x…","message":"…"}}` with
//! `Content-Type: application/json; odata.metadata=minimal`. Throttling (429 + `Retry-After`, code
//! `0x80072322`) and outages come from the shared fault rules ([`crate::faults`]).
//!
//! Other tests act as CRM users through [`Dataverse::rows`], [`Dataverse::row`],
//! [`Dataverse::insert`], [`Dataverse::update`] and [`Dataverse::delete`], or over HTTP through
//! `/_control/dataverse/…` ([`crate::control`]).

mod handlers;
pub(crate) mod paging;
pub(crate) mod query;
pub(crate) mod schema;
pub(crate) mod tables;

use crate::clock::Clock;
use crate::entra::{DemoUser, Entra, TENANT_ID};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::any};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

pub use schema::columns;
pub use tables::{
    ACCOUNT_ADATUM, ACCOUNT_CONTOSO_PHARMA, ACCOUNT_FABRIKAM, ACCOUNT_LITWARE, CURRENCY_EUR,
    CURRENCY_GBP, CURRENCY_USD, OPPORTUNITY_ADATUM, OPPORTUNITY_FABRIKAM, OPPORTUNITY_LITWARE,
};

/// The sandbox organization, as its token audience names it.
pub const ORGANIZATION_URL: &str = "https://contoso-sandbox.crm.dynamics.com";
pub const ORGANIZATION_ID: &str = "4faf1f34-f06d-e511-80d0-00155db07cb1";
pub const BUSINESS_UNIT_ID: &str = "ded5a64f-f06d-e511-80d0-00155db07cb1";
/// Role template ids, stable across environments (crm-apis.md §2.8).
pub const SYSTEM_ADMINISTRATOR: &str = "627090ff-40a3-4053-8790-584edc5be201";
pub const SYSTEM_CUSTOMIZER: &str = "119f245c-3cc8-4b62-b31c-d1a046ced15d";
pub const BASIC_USER: &str = "236750cd-45ae-4939-ab12-b24b920ced93";

/// The role as this business unit names it: its own role id, a localized-looking name.
fn role_in_business_unit(template: &str) -> (String, &'static str) {
    let name = match template {
        SYSTEM_ADMINISTRATOR => "System Administrator",
        SYSTEM_CUSTOMIZER => "System Customizer",
        BASIC_USER => "Basic User",
        _ => "Custom role",
    };
    // Derived from the template, but not equal to it: clients that compare role ids or names across
    // business units are wrong, and these make that visible.
    (format!("{}-bu01", &template[..template.len() - 5]), name)
}

/// A Dataverse system user id for an Entra user (distinct from the object id, as in real organizations).
fn system_user_id(user: &DemoUser) -> String {
    format!("5e7a0000-{}", &user.object_id[9..])
}

/// Error codes the emulator answers with. The `code` of a Dataverse error is unrelated to the HTTP
/// status and often empty (crm-apis.md §2.2); codes marked unconfirmed are plausible, not documented.
pub mod codes {
    /// `ObjectDoesNotExist` (crm-apis.md §2.2: "usually", unconfirmed).
    pub const OBJECT_DOES_NOT_EXIST: &str = "0x80040217";
    /// Resource not found for the segment (documented in the Web API troubleshooting article).
    pub const RESOURCE_NOT_FOUND: &str = "0x8006088a";
    /// OData-level request errors, e.g. an unknown property (documented as `0x0`).
    pub const ODATA: &str = "0x0";
    /// `ConcurrencyVersionMismatch` (unconfirmed).
    pub const CONCURRENCY_VERSION_MISMATCH: &str = "0x80060882";
    /// `DuplicateRecord` (unconfirmed).
    pub const DUPLICATE_RECORD: &str = "0x80040237";
    /// Validation of a value (range, length) (unconfirmed).
    pub const VALIDATION: &str = "0x8004431a";
    /// `InvalidArgument`: state rules, closed records (unconfirmed).
    pub const INVALID_ARGUMENT: &str = "0x80040203";
    /// Request-count throttling (crm-apis.md §2.6), for fault rules.
    pub const THROTTLED_REQUESTS: &str = "0x80072322";
}

/// An error answer: status, code, message.
#[derive(Debug, Clone, PartialEq)]
pub struct DvError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl DvError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> DvError {
        DvError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for DvError {
    fn into_response(self) -> Response {
        error(self.status, self.code, self.message)
    }
}

/// The Dataverse organization: identity from the Entra emulator, rows in shared memory (clones share
/// them, so the [`crate::Sandbox`] keeps one organization).
#[derive(Clone)]
pub struct Dataverse {
    base_url: String,
    entra: Entra,
    clock: Clock,
    state: Arc<Mutex<tables::State>>,
}

impl Dataverse {
    /// An organization seeded with currencies (USD, EUR, GBP), demo accounts and contacts.
    pub fn new(base_url: String, entra: Entra, clock: Clock) -> Dataverse {
        let dv = Dataverse {
            base_url,
            entra,
            clock,
            state: Arc::new(Mutex::new(tables::State::new())),
        };
        let users = dv.system_user_ids();
        let actor = dv.crm_user(&users);
        dv.state().seed(&actor);
        dv
    }

    /// `[Org URI]/api/data/v9.2` as this emulator serves it.
    pub fn api_url(&self) -> String {
        format!("{}/api/data/v9.2", self.base_url)
    }

    fn context(&self, fragment: &str) -> String {
        format!("{}/$metadata#{fragment}", self.api_url())
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, tables::State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn user_row(&self, user: &DemoUser) -> Value {
        json!({
            "@odata.etag": "W/\"1001\"",
            "systemuserid": system_user_id(user),
            "fullname": user.name,
            "firstname": user.name.split_once(' ').map(|(first, _)| first).unwrap_or(&user.name),
            "lastname": user.name.split_once(' ').map(|(_, last)| last).unwrap_or_default(),
            // A demo number per user (the 555-01xx range is reserved for fiction).
            "address1_telephone1": format!("+1 425 555 01{}", &user.object_id[user.object_id.len() - 2..]),
            "domainname": user.username,
            "internalemailaddress": user.username,
            "azureactivedirectoryobjectid": user.object_id,
            "isdisabled": false,
            "_businessunitid_value": BUSINESS_UNIT_ID,
        })
    }

    fn members(&self) -> Vec<DemoUser> {
        self.entra
            .users()
            .into_iter()
            .filter(|u| u.dataverse_roles.is_some())
            .collect()
    }

    /// The system user ids of the organization's members (`ownerid` may point at them).
    pub(crate) fn system_user_ids(&self) -> Vec<String> {
        self.members().iter().map(system_user_id).collect()
    }

    /// A person using the CRM's own UI: the organization's administrator (Adele Vance) owns what they
    /// create.
    fn crm_user<'a>(&self, users: &'a [String]) -> tables::Actor<'a> {
        let admin = self
            .members()
            .into_iter()
            .find(|u| u.key == "admin")
            .map(|u| system_user_id(&u));
        tables::Actor {
            user_id: admin.or_else(|| users.first().cloned()),
            system_users: users,
            now: self.now(),
            via: tables::Via::CrmUser,
        }
    }

    // ---- In-process API: other tests act as CRM users and look at the organization's rows. ----

    /// The rows of an entity set as the Web API returns them (every column, lookups as `_x_value`,
    /// `@odata.etag`), in primary-key order; empty for an unknown set.
    pub fn rows(&self, set: &str) -> Vec<Value> {
        let Some(table) = schema::table(set) else {
            return Vec::new();
        };
        let state = self.state();
        state
            .rows(table)
            .map(|(id, row)| {
                Value::Object(state.render(table, id, row, &tables::Annotations::default()))
            })
            .collect()
    }

    /// One row as the Web API returns it.
    pub fn row(&self, set: &str, id: &str) -> Option<Value> {
        let table = schema::table(set)?;
        let state = self.state();
        let row = state.get(table, id)?;
        Some(Value::Object(state.render(
            table,
            &id.to_ascii_lowercase(),
            row,
            &tables::Annotations::default(),
        )))
    }

    /// Creates a row as a CRM user would (Web API body shape: columns and `x@odata.bind`); returns the
    /// new id. Panics when the row is not valid (a test's mistake); see [`Dataverse::try_insert`].
    pub fn insert(&self, set: &str, row: Value) -> String {
        self.try_insert(set, row)
            .unwrap_or_else(|e| panic!("Dataverse insert into {set}: {e}"))
    }

    /// Creates a row as a CRM user would; the error is the Web API's message.
    pub fn try_insert(&self, set: &str, row: Value) -> Result<String, String> {
        let table = schema::table(set).ok_or_else(|| format!("no entity set {set:?}"))?;
        let Value::Object(fields) = row else {
            return Err("a row is a JSON object".into());
        };
        let users = self.system_user_ids();
        let actor = self.crm_user(&users);
        let id = fields
            .get(table.key)
            .and_then(Value::as_str)
            .map(str::to_string);
        self.state()
            .create(table, id.as_deref(), &fields, &actor)
            .map_err(|e| e.message)
    }

    /// Changes a row as a CRM user would (a new version, `modifiedon` now). Setting `statecode` to
    /// Won/Lost closes an opportunity as the UI's "Close as Won/Lost" does; closed opportunities stay
    /// read-only until reopened.
    pub fn update(&self, set: &str, id: &str, patch: Value) -> Result<(), String> {
        let table = schema::table(set).ok_or_else(|| format!("no entity set {set:?}"))?;
        let Value::Object(fields) = patch else {
            return Err("a patch is a JSON object".into());
        };
        let users = self.system_user_ids();
        let actor = self.crm_user(&users);
        self.state()
            .update(table, id, &fields, &actor)
            .map_err(|e| e.message)
    }

    /// Deletes a row as a CRM user would; false when there is none.
    pub fn delete(&self, set: &str, id: &str) -> bool {
        let Some(table) = schema::table(set) else {
            return false;
        };
        let now = self.now();
        self.state().delete(table, id, now)
    }

    /// Whether a Web API `PATCH` of an opportunity's `statecode` to Won/Lost closes it (default: refused
    /// with 400, use the actions; what the real service does is unconfirmed).
    pub fn set_close_by_patch(&self, allowed: bool) {
        self.state().close_by_patch = allowed;
    }
}

/// The standard error body.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let mut r = (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message.into() } })),
    )
        .into_response();
    odata_headers(&mut r);
    r
}

fn odata_headers(r: &mut Response) {
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; odata.metadata=minimal"),
    );
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
}

fn ok(body: Value) -> Response {
    let mut r = axum::Json(body).into_response();
    odata_headers(&mut r);
    r
}

pub fn routes(dv: Dataverse) -> Router {
    Router::new()
        .route("/api/data/v9.2/{*path}", any(dispatch))
        .with_state(dv)
}

/// The caller: a token for this organization, of a user who is a member of it.
#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom; one per request"
)]
fn caller(dv: &Dataverse, headers: &HeaderMap) -> Result<DemoUser, Response> {
    let unauthorized = |code: &str, message: String| {
        let mut r = error(StatusCode::UNAUTHORIZED, code, message);
        // Real servers point at the authority and the resource (unconfirmed).
        let challenge = format!(
            "Bearer authorization_uri=https://login.microsoftonline.com/{TENANT_ID}/oauth2/authorize, resource_id={ORGANIZATION_URL}/"
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            unauthorized(
                "RequestIsNotAuthenticated",
                "Bearer token is missing.".into(),
            )
        })?;
    let claims = dv
        .entra
        .verify_access_token(token, ORGANIZATION_URL)
        .map_err(|why| {
            let code = if why.contains("expired") {
                "ExpiredAuthTicket"
            } else {
                "InvalidAuthTicket"
            };
            unauthorized(code, why)
        })?;
    let user = claims["oid"]
        .as_str()
        .and_then(|oid| dv.entra.user_by_object_id(oid));
    match user {
        Some(u) if u.dataverse_roles.is_some() => Ok(u),
        // The message real organizations give a signed-in stranger (code unconfirmed).
        _ => Err(error(
            StatusCode::FORBIDDEN,
            "0x80072560",
            "The user is not a member of the organization.",
        )),
    }
}

async fn dispatch(
    State(dv): State<Dataverse>,
    method: Method,
    headers: HeaderMap,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let me = match caller(&dv, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let no_resource = || {
        // The documented answer to a function or action called with the wrong method.
        error(
            StatusCode::NOT_FOUND,
            "",
            format!(
                "No HTTP resource was found that matches the request URI '{}/{path}'.",
                dv.api_url()
            ),
        )
    };
    let action = path
        .strip_prefix("Microsoft.Dynamics.CRM.")
        .unwrap_or(&path);
    match action {
        "WhoAmI()" | "WhoAmI" => {
            if method != Method::GET {
                return no_resource();
            }
            return ok(json!({
                "@odata.context": dv.context("Microsoft.Dynamics.CRM.WhoAmIResponse"),
                "BusinessUnitId": BUSINESS_UNIT_ID,
                "UserId": system_user_id(&me),
                "OrganizationId": ORGANIZATION_ID,
            }));
        }
        "WinOpportunity" | "LoseOpportunity" => {
            if method != Method::POST {
                return no_resource();
            }
            return handlers::close(&dv, action == "WinOpportunity", &body)
                .unwrap_or_else(IntoResponse::into_response);
        }
        _ => {}
    }
    let resource_not_found = |segment: &str| {
        error(
            StatusCode::NOT_FOUND,
            codes::RESOURCE_NOT_FOUND,
            format!("Resource not found for the segment '{segment}'."),
        )
    };
    let Some((set, key, nav)) = parse_path(&path) else {
        return resource_not_found(&path);
    };
    if let Some(table) = schema::table(&set) {
        if let Some(nav) = nav {
            return error(
                StatusCode::NOT_IMPLEMENTED,
                codes::ODATA,
                format!("The sandbox does not support the segment '{nav}' of {set}."),
            );
        }
        let call = handlers::Call {
            dv: &dv,
            table,
            caller: system_user_id(&me),
            pairs: &pairs,
            headers: &headers,
            prefs: handlers::Prefs::from_headers(&headers),
            body: &body,
        };
        let result = match (key, &method) {
            (None, &Method::GET) => handlers::list(&call),
            (None, &Method::POST) => handlers::create(&call),
            (Some(id), m) if !tables::is_guid(&id) => Err(DvError::new(
                StatusCode::BAD_REQUEST,
                codes::ODATA,
                // Message unconfirmed.
                format!("'{id}' is not a valid key for {set} ({m} needs a GUID)."),
            )),
            (Some(id), &Method::GET) => handlers::get_one(&call, &id),
            (Some(id), &Method::PATCH) => handlers::patch(&call, &id),
            (Some(id), &Method::DELETE) => handlers::delete(&call, &id),
            (_, m) => Err(method_not_allowed(m)),
        };
        return result.unwrap_or_else(IntoResponse::into_response);
    }
    if set != "systemusers" {
        return resource_not_found(&set);
    }
    if method != Method::GET {
        return method_not_allowed(&method).into_response();
    }
    let query: HashMap<String, String> = pairs.into_iter().collect();
    identity(&dv, key, nav, &query)
}

fn method_not_allowed(method: &Method) -> DvError {
    // ASP.NET Web API's message (unconfirmed for Dataverse).
    DvError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "",
        format!("The requested resource does not support http method '{method}'."),
    )
}

/// `systemusers`, `systemusers(<id>)` and `systemusers(<id>)/systemuserroles_association`.
fn identity(
    dv: &Dataverse,
    key: Option<String>,
    nav: Option<String>,
    query: &HashMap<String, String>,
) -> Response {
    let select = query.get("$select").map(|s| {
        s.split(',')
            .map(|f| f.trim().to_string())
            .collect::<Vec<_>>()
    });
    let project = |row: Value| -> Value {
        match &select {
            None => row,
            Some(fields) => Value::Object(
                row.as_object()
                    .expect("rows are objects")
                    .iter()
                    // The primary key and annotations always come back.
                    .filter(|(k, _)| {
                        k.starts_with('@') || k.as_str() == "systemuserid" || fields.contains(k)
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
        }
    };
    match (key, nav) {
        (None, None) => {
            let members = dv.members();
            let rows: Vec<Value> = match query.get("$filter") {
                None => members.iter().map(|u| project(dv.user_row(u))).collect(),
                Some(filter) => match parse_user_filter(filter) {
                    Some((column, value)) => members
                        .iter()
                        .map(|u| dv.user_row(u))
                        .filter(|row| {
                            row[column.as_str()]
                                .as_str()
                                .is_some_and(|v| v.eq_ignore_ascii_case(&value))
                        })
                        .map(project)
                        .collect(),
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            codes::ODATA,
                            format!(
                                "The $filter {filter:?} is not supported by the sandbox (only <column> eq <value> on systemusers)."
                            ),
                        );
                    }
                },
            };
            ok(json!({ "@odata.context": dv.context("systemusers"), "value": rows }))
        }
        (Some(id), nav) => {
            let Some(user) = dv
                .members()
                .into_iter()
                .find(|u| system_user_id(u).eq_ignore_ascii_case(&id))
            else {
                return error(
                    StatusCode::NOT_FOUND,
                    codes::OBJECT_DOES_NOT_EXIST,
                    format!("systemuser With Id = {id} Does Not Exist"),
                );
            };
            match nav.as_deref() {
                None => {
                    let mut row = project(dv.user_row(&user));
                    row["@odata.context"] = dv.context("systemusers/$entity").into();
                    ok(row)
                }
                Some("systemuserroles_association") => {
                    let rows: Vec<Value> = user
                        .dataverse_roles
                        .unwrap_or_default()
                        .iter()
                        .map(|template| {
                            let (roleid, name) = role_in_business_unit(template);
                            json!({
                                "@odata.etag": "W/\"2002\"",
                                "roleid": roleid,
                                "name": name,
                                "_roletemplateid_value": template,
                                "_businessunitid_value": BUSINESS_UNIT_ID,
                            })
                        })
                        .collect();
                    ok(json!({ "@odata.context": dv.context("roles"), "value": rows }))
                }
                Some(other) => error(
                    StatusCode::NOT_FOUND,
                    codes::RESOURCE_NOT_FOUND,
                    format!("Resource not found for the segment '{other}'."),
                ),
            }
        }
        (None, Some(_)) => error(
            StatusCode::BAD_REQUEST,
            codes::ODATA,
            "a navigation property needs a key",
        ),
    }
}

/// `systemusers`, `systemusers(<id>)`, `systemusers(<id>)/nav` → (set, key, navigation).
fn parse_path(path: &str) -> Option<(String, Option<String>, Option<String>)> {
    let (head, nav) = match path.split_once('/') {
        Some((h, n)) => (h, Some(n.to_string())),
        None => (path, None),
    };
    match head.split_once('(') {
        Some((set, rest)) => {
            let key = rest.strip_suffix(')')?.trim_matches('\'').to_string();
            Some((set.to_string(), Some(key), nav))
        }
        None => Some((head.to_string(), None, nav)),
    }
}

/// `azureactivedirectoryobjectid eq <guid>` (unquoted) or `domainname eq '<upn>'`.
fn parse_user_filter(filter: &str) -> Option<(String, String)> {
    let (column, value) = filter.split_once(" eq ")?;
    let column = column.trim();
    if !matches!(
        column,
        "azureactivedirectoryobjectid" | "domainname" | "internalemailaddress" | "systemuserid"
    ) {
        return None;
    }
    let value = value.trim();
    let value = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .unwrap_or(value);
    Some((column.to_string(), value.replace("''", "'")))
}
