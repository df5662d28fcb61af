//! Dataverse Web API emulator (crm-apis.md §2, emulator-checklist.md §4), identity part: the pieces a
//! connection test needs. Served under `/api/data/v9.2/`:
//!
//! - `WhoAmI()` → `{BusinessUnitId, UserId, OrganizationId}`
//! - `systemusers(<id>)`, `systemusers?$filter=azureactivedirectoryobjectid eq <guid>` (and `$select`)
//! - `systemusers(<id>)/systemuserroles_association` → roles with `_roletemplateid_value`
//!
//! Tokens must be minted by the Entra emulator for the organization URL (`https://{org}.crm.dynamics.com`).
//! Role ids and names differ per business unit, as in real organizations; template ids are the real ones,
//! so clients must compare template ids. Errors are `{"error":{"code":"0x…","message":"…"}}` with
//! `Content-Type: application/json; odata.metadata=minimal`.

use crate::entra::{DemoUser, Entra, TENANT_ID};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use serde_json::{Value, json};
use std::collections::HashMap;

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

#[derive(Clone)]
pub struct Dataverse {
    base_url: String,
    entra: Entra,
}

impl Dataverse {
    pub fn new(base_url: String, entra: Entra) -> Dataverse {
        Dataverse { base_url, entra }
    }

    /// `[Org URI]/api/data/v9.2` as this emulator serves it.
    pub fn api_url(&self) -> String {
        format!("{}/api/data/v9.2", self.base_url)
    }

    fn context(&self, fragment: &str) -> String {
        format!("{}/$metadata#{fragment}", self.api_url())
    }

    fn user_row(&self, user: &DemoUser) -> Value {
        json!({
            "@odata.etag": "W/\"1001\"",
            "systemuserid": system_user_id(user),
            "fullname": user.name,
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
        .route("/api/data/v9.2/{*path}", get(dispatch))
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
    headers: HeaderMap,
    Path(path): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let me = match caller(&dv, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if path == "WhoAmI()" || path == "WhoAmI" {
        return ok(json!({
            "@odata.context": dv.context("Microsoft.Dynamics.CRM.WhoAmIResponse"),
            "BusinessUnitId": BUSINESS_UNIT_ID,
            "UserId": system_user_id(&me),
            "OrganizationId": ORGANIZATION_ID,
        }));
    }
    let (set, key, nav) = match parse_path(&path) {
        Some(parts) => parts,
        None => {
            return error(
                StatusCode::NOT_FOUND,
                "0x80060888",
                format!("Resource not found for the segment '{path}'."),
            );
        }
    };
    if set != "systemusers" {
        return error(
            StatusCode::NOT_FOUND,
            "0x80060888",
            format!("Resource not found for the segment '{set}'."),
        );
    }
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
                            "0x80060888",
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
                    "0x80040217",
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
                    "0x80060888",
                    format!("Resource not found for the segment '{other}'."),
                ),
            }
        }
        (None, Some(_)) => error(
            StatusCode::BAD_REQUEST,
            "0x80060888",
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
