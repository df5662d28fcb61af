//! `/services/data/…`: the session and the daily allocation are checked once per HTTP request
//! (`dispatch`); `serve` answers one call, and is what composite subrequests go through too.

use super::errors::SfError;
use super::identity::bearer;
use super::records::{Via, attributes};
use super::schema::{self, Object};
use super::{LATEST_API_VERSION, OLDEST_API_VERSION, Org, Salesforce, composite, describe, query};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// One call's answer, before it becomes HTTP (or a composite subresponse).
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            body: None,
            headers: Vec::new(),
        }
    }
}

impl From<SfError> for Reply {
    fn from(e: SfError) -> Reply {
        Reply::json(e.status, e.body())
    }
}

/// One REST call, as `serve` sees it.
pub(crate) struct Call<'a> {
    pub method: Method,
    /// The path after `/services/data/vXX.X/`.
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub body: Option<Value>,
    pub batch: usize,
    pub user_id: &'a str,
    pub version: u32,
    pub now: OffsetDateTime,
}

/// `GET /services/data/`: not counted, no session needed.
pub(crate) async fn versions() -> Response {
    let list: Vec<Value> = (OLDEST_API_VERSION..=LATEST_API_VERSION)
        .map(|v| {
            // v60 was Spring '24; three releases a year, Winter named after the next year.
            let k = v as i32 - 60;
            let season = ["Spring", "Summer", "Winter"][k.rem_euclid(3) as usize];
            let year = 24 + k.div_euclid(3) + i32::from(season == "Winter");
            json!({ "label": format!("{season} '{year}"), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0") })
        })
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

fn version(segment: &str) -> Option<u32> {
    let v: u32 = segment
        .strip_prefix('v')?
        .strip_suffix(".0")?
        .parse()
        .ok()?;
    (OLDEST_API_VERSION..=LATEST_API_VERSION)
        .contains(&v)
        .then_some(v)
}

pub(crate) async fn dispatch(
    State(sf): State<Salesforce>,
    method: Method,
    headers: HeaderMap,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let now = sf.now();
    let mut org = sf.org();
    let session = bearer(&headers)
        .and_then(|t| org.grants.session(t, now, org.settings.session_seconds))
        .map(|s| (s.user_id.clone(), s.scopes.clone()));
    let Some((user_id, scopes)) = session else {
        return SfError::invalid_session().into_response();
    };
    if !scopes.iter().any(|s| s == "api" || s == "full") {
        return SfError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "This session is not valid for use with the REST API",
        )
        .into_response();
    }
    let reply = match org.count_call(now) {
        Err(e) => e.into(),
        Ok(()) => {
            let (segment, path) = rest.split_once('/').unwrap_or((&rest, ""));
            match version(segment) {
                None => SfError::not_found().into(),
                Some(v) => {
                    let query: Vec<(String, String)> =
                        url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                    call(
                        &mut org, &method, &headers, path, &query, &body, &user_id, v, now,
                    )
                }
            }
        }
    };
    let mut r = match reply.body {
        Some(b) => (reply.status, axum::Json(b)).into_response(),
        None => reply.status.into_response(),
    };
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&org.limit_info()) {
        r.headers_mut().insert("Sforce-Limit-Info", v);
    }
    r
}

#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one HTTP request, unpacked once"
)]
fn call(
    org: &mut Org,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: &[(String, String)],
    body: &[u8],
    user_id: &str,
    version: u32,
    now: OffsetDateTime,
) -> Reply {
    let mut method = method.clone();
    // For clients that cannot send PATCH.
    if method == Method::POST
        && let Some((_, m)) = query.iter().find(|(k, _)| k == "_HttpMethod")
        && let Ok(m) = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
    {
        method = m;
    }
    let body = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => Some(v),
            Err(e) => {
                return SfError::bad("JSON_PARSER_ERROR", format!("Unexpected character: {e}"))
                    .into();
            }
        }
    };
    let batch = headers
        .get("Sforce-Query-Options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|o| o.trim().strip_prefix("batchSize=")?.parse().ok())
        })
        .unwrap_or(query::MAX_BATCH);
    let call = Call {
        method,
        path,
        query,
        body,
        batch,
        user_id,
        version,
        now,
    };
    if path.trim_end_matches('/') == "composite" {
        if call.method != Method::POST {
            return not_allowed(&call.method, "POST");
        }
        return composite::run(org, &call);
    }
    serve(org, &call)
}

fn not_allowed(method: &Method, allowed: &str) -> Reply {
    SfError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    )
    .into()
}

fn record_body<'a>(o: &Object, body: &'a Option<Value>) -> Result<&'a Map<String, Value>, SfError> {
    match body {
        Some(Value::Object(m)) => Ok(m),
        other => Err(SfError::bad(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {} from {} value",
                o.name,
                if other.is_none() {
                    "empty"
                } else {
                    "non-object"
                }
            ),
        )),
    }
}

/// One call, with the org already locked and the call counted.
pub(crate) fn serve(org: &mut Org, c: &Call) -> Reply {
    let segments: Vec<&str> = c.path.trim_end_matches('/').split('/').collect();
    let result = match segments.as_slice() {
        [""] => Ok(resources(c.version)),
        ["sobjects"] if c.method == Method::GET => Ok(Reply::json(
            StatusCode::OK,
            describe::global(org, c.version),
        )),
        ["sobjects"] => Err(not_allowed(&c.method, "GET,HEAD")),
        ["sobjects", object, rest @ ..] => match schema::find(object, &org.settings) {
            None => Err(SfError::not_found().into()),
            Some(o) => sobject(org, c, o, rest).map_err(Reply::from),
        },
        [kind @ ("query" | "queryAll"), rest @ ..] if c.method == Method::GET => {
            let all = *kind == "queryAll";
            match rest {
                [] => match c.query.iter().find(|(k, _)| k == "q") {
                    Some((_, q)) => query::run(org, q, all, c.batch, c.version),
                    None => Err(SfError::bad(
                        "MALFORMED_QUERY",
                        "A query string has to be specified",
                    )),
                },
                [token] => org.cursors.more(token, all, c.version),
                _ => Err(SfError::not_found()),
            }
            .map(|b| Reply::json(StatusCode::OK, b))
            .map_err(Reply::from)
        }
        ["query" | "queryAll", ..] => Err(not_allowed(&c.method, "GET,HEAD")),
        ["limits"] if c.method == Method::GET => Ok(Reply::json(StatusCode::OK, org.limits())),
        ["composite"] => Err(SfError::bad(
            "INVALID_INPUT",
            "A composite request cannot contain a composite request",
        )
        .into()),
        _ => Err(SfError::not_found().into()),
    };
    result.unwrap_or_else(|r| r)
}

fn resources(version: u32) -> Reply {
    let base = format!("/services/data/v{version}.0");
    Reply::json(
        StatusCode::OK,
        json!({
            "sobjects": format!("{base}/sobjects"), "query": format!("{base}/query"),
            "queryAll": format!("{base}/queryAll"), "limits": format!("{base}/limits"),
            "composite": format!("{base}/composite"),
        }),
    )
}

fn created(o: &Object, id: &str, version: u32, upsert: bool) -> Reply {
    let mut body = json!({ "id": id, "success": true, "errors": [] });
    if upsert {
        body["created"] = json!(true);
    }
    let mut r = Reply::json(StatusCode::CREATED, body);
    r.headers.push((
        "Location",
        attributes(o.name, id, version)["url"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ));
    r
}

fn read(org: &Org, c: &Call, o: &'static Object, id: &str) -> Result<Reply, SfError> {
    let id = org.live_id(o, id).map_err(|_| SfError::not_found())?;
    let only = match c.query.iter().find(|(k, _)| k == "fields") {
        None => None,
        Some((_, list)) => Some(
            list.split(',')
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(|f| {
                    o.field(f, &org.settings).ok_or_else(|| {
                        SfError::bad("INVALID_FIELD", format!(
                            "No such column '{f}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                            o.name
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Reply::json(
        StatusCode::OK,
        org.render(o, &id, only.as_deref(), c.version),
    ))
}

fn sobject(org: &mut Org, c: &Call, o: &'static Object, rest: &[&str]) -> Result<Reply, SfError> {
    match (rest, &c.method) {
        ([], &Method::GET) => Ok(Reply::json(StatusCode::OK, describe::basic(o, c.version))),
        ([], &Method::POST) => {
            let id = org.create(o, record_body(o, &c.body)?, c.user_id, c.now, Via::Api)?;
            Ok(created(o, &id, c.version, false))
        }
        ([], m) => Ok(not_allowed(m, "GET,HEAD,POST")),
        (["describe"], &Method::GET) => Ok(Reply::json(
            StatusCode::OK,
            describe::describe(org, o, c.version),
        )),
        ([id], &Method::GET) => read(org, c, o, id),
        ([id], &Method::PATCH) => {
            org.update(o, id, record_body(o, &c.body)?, c.user_id, c.now, Via::Api)?;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        ([id], &Method::DELETE) => {
            org.delete(o, id, c.user_id, c.now)?;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        ([_], m) => Ok(not_allowed(m, "GET,HEAD,PATCH,DELETE")),
        ([field, value], _) => by_external_id(org, c, o, field, value),
        _ => Err(SfError::not_found()),
    }
}

/// `sobjects/{Object}/{externalIdField}/{value}`: read, upsert or delete by an external id (or `Id`).
fn by_external_id(
    org: &mut Org,
    c: &Call,
    o: &'static Object,
    field: &str,
    value: &str,
) -> Result<Reply, SfError> {
    let field = o
        .field(field, &org.settings)
        .filter(|f| f.external_id || f.name == "Id")
        .ok_or_else(|| {
            SfError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
            )
        })?;
    // External ids of text fields match case-insensitively unless marked case-sensitive.
    let matching: Vec<String> = org
        .store
        .live(o)
        .filter(|(_, r)| {
            r.fields
                .get(field.name)
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
        .map(|(id, _)| id.clone())
        .collect();
    if matching.len() > 1 {
        let urls: Vec<Value> = matching
            .iter()
            .map(|id| attributes(o.name, id, c.version)["url"].clone())
            .collect();
        return Ok(Reply::json(
            StatusCode::MULTIPLE_CHOICES,
            Value::Array(urls),
        ));
    }
    let found = matching.into_iter().next();
    match (&c.method, found) {
        (&Method::GET, Some(id)) => read(org, c, o, &id),
        (&Method::DELETE, Some(id)) => {
            org.delete(o, &id, c.user_id, c.now)?;
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET | &Method::DELETE, None) => Err(SfError::not_found()),
        (&Method::PATCH, Some(id)) => {
            org.update(o, &id, record_body(o, &c.body)?, c.user_id, c.now, Via::Api)?;
            if org.settings.upsert_update_200 {
                Ok(Reply::json(
                    StatusCode::OK,
                    json!({ "id": id, "success": true, "errors": [], "created": false }),
                ))
            } else {
                Ok(Reply::empty(StatusCode::NO_CONTENT))
            }
        }
        (&Method::PATCH, None) if field.name == "Id" => Err(SfError::not_found()),
        (&Method::PATCH, None) => {
            let mut body = record_body(o, &c.body)?.clone();
            body.insert(field.name.to_string(), json!(value));
            let id = org.create(o, &body, c.user_id, c.now, Via::Api)?;
            Ok(created(o, &id, c.version, true))
        }
        (m, _) => Ok(not_allowed(m, "GET,HEAD,PATCH,DELETE")),
    }
}
