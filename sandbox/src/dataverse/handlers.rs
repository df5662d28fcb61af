//! The table endpoints: collections (query, paging, change tracking), rows by key (read, conditional
//! read, upsert, delete), create, and the `WinOpportunity` / `LoseOpportunity` actions.

use super::paging::{self, Cursor};
use super::query::{self, Filter};
use super::schema::{Kind, OPPORTUNITY, Table};
use super::tables::{self, Actor, Annotations, Via};
use super::{Dataverse, DvError, codes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Dataverse's maximum (and default) page size.
pub(crate) const MAX_PAGE_SIZE: usize = 5000;
/// `Organization.ExpireChangeTrackingInDays`, default 7 (crm-apis.md §2.7).
const CHANGE_TRACKING_DAYS: i64 = 7;

fn bad(code: &'static str, message: impl Into<String>) -> DvError {
    DvError::new(StatusCode::BAD_REQUEST, code, message)
}

/// The `Prefer` header's preferences (crm-apis.md §2.1).
#[derive(Debug, Default)]
pub(crate) struct Prefs {
    pub representation: bool,
    pub maxpagesize: Option<usize>,
    pub track_changes: bool,
    /// The raw value of `odata.include-annotations`, unquoted.
    pub annotations: Option<String>,
}

impl Prefs {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Prefs {
        let mut prefs = Prefs::default();
        for value in headers.get_all("prefer") {
            let Ok(value) = value.to_str() else { continue };
            for item in split_outside_quotes(value) {
                let (name, arg) = match item.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (item.trim(), None),
                };
                match (name.to_ascii_lowercase().as_str(), arg) {
                    ("return", Some("representation")) => prefs.representation = true,
                    ("odata.maxpagesize", Some(n)) => prefs.maxpagesize = n.parse().ok(),
                    ("odata.track-changes", _) => prefs.track_changes = true,
                    ("odata.include-annotations", Some(a)) => {
                        prefs.annotations = Some(a.to_string())
                    }
                    _ => {}
                }
            }
        }
        prefs
    }

    fn annotations(&self) -> Annotations {
        self.annotations
            .as_deref()
            .map(Annotations::from_preference)
            .unwrap_or_default()
    }
}

fn split_outside_quotes(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c)
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The system query options of a request, each at most once.
struct Options {
    pairs: Vec<(String, String)>,
    options: BTreeMap<String, String>,
}

const KNOWN_OPTIONS: &[&str] = &[
    "$select",
    "$filter",
    "$orderby",
    "$top",
    "$count",
    "$skiptoken",
    "$deltatoken",
    "$expand",
];

impl Options {
    fn parse(pairs: &[(String, String)]) -> Result<Options, DvError> {
        let mut options = BTreeMap::new();
        for (key, value) in pairs {
            if !key.starts_with('$') {
                continue; // Parameter aliases and the like; a filter using them is refused there.
            }
            if key == "$skip" {
                // Documented as unsupported; the real message is unconfirmed.
                return Err(bad(
                    codes::ODATA,
                    "The query parameter $skip is not supported. Page with Prefer: odata.maxpagesize and follow @odata.nextLink.",
                ));
            }
            if !KNOWN_OPTIONS.contains(&key.as_str()) {
                return Err(bad(
                    codes::ODATA,
                    format!("The query parameter '{key}' is not supported."),
                ));
            }
            if options.insert(key.clone(), value.clone()).is_some() {
                // The OData layer's message.
                return Err(bad(
                    codes::ODATA,
                    format!(
                        "Query option '{key}' was specified more than once, but it must be specified at most once."
                    ),
                ));
            }
        }
        Ok(Options {
            pairs: pairs.to_vec(),
            options,
        })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    fn only(&self, allowed: &[&str], what: &str) -> Result<(), DvError> {
        match self.options.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(bad(
                codes::ODATA,
                format!("The sandbox does not support the query parameter '{k}' {what}."),
            )),
            None => Ok(()),
        }
    }

    fn select(&self, table: &Table) -> Result<Option<Vec<String>>, DvError> {
        self.get("$select")
            .map(|s| query::parse_select(table, s))
            .transpose()
    }
}

fn respond(
    status: StatusCode,
    body: Option<Value>,
    headers: &[(&'static str, String)],
) -> Response {
    let mut r = match body {
        Some(b) => (status, axum::Json(b)).into_response(),
        None => status.into_response(),
    };
    if r.headers().contains_key(header::CONTENT_TYPE) {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; odata.metadata=minimal"),
        );
    }
    r.headers_mut()
        .insert("OData-Version", HeaderValue::from_static("4.0"));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            r.headers_mut().append(*name, v);
        }
    }
    r
}

fn applied(prefs: &[String]) -> Vec<(&'static str, String)> {
    if prefs.is_empty() {
        Vec::new()
    } else {
        vec![("Preference-Applied", prefs.join(","))]
    }
}

fn annotations_applied(prefs: &Prefs) -> Option<String> {
    prefs
        .annotations
        .as_ref()
        .map(|a| format!("odata.include-annotations=\"{a}\""))
}

/// Keeps the key, the selected properties (and for money columns the currency), the instance
/// annotations and the annotations of what is kept.
fn project(
    table: &Table,
    row: Map<String, Value>,
    select: Option<&[String]>,
) -> Map<String, Value> {
    let Some(select) = select else { return row };
    let money = select.iter().any(|p| {
        table
            .property(p)
            .is_some_and(|c| c.kind == super::schema::Kind::Money)
    });
    let keep = |property: &str| {
        property == table.key
            || select.iter().any(|s| s == property)
            || (money && property == "_transactioncurrencyid_value")
    };
    row.into_iter()
        .filter(|(k, _)| match k.split_once('@') {
            Some(("", _)) => true,
            Some((property, _)) => keep(property),
            None => keep(k),
        })
        .collect()
}

fn context(dv: &Dataverse, table: &Table, select: Option<&[String]>, suffix: &str) -> String {
    match select {
        Some(cols) if !cols.is_empty() => {
            dv.context(&format!("{}({}){suffix}", table.set, cols.join(",")))
        }
        _ => dv.context(&format!("{}{suffix}", table.set)),
    }
}

pub(crate) fn entity_url(dv: &Dataverse, table: &Table, id: &str) -> String {
    format!("{}/{}({id})", dv.api_url(), table.set)
}

/// One request to a table.
pub(crate) struct Call<'a> {
    pub dv: &'a Dataverse,
    pub table: &'static Table,
    /// The caller's system user id.
    pub caller: String,
    pub pairs: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub prefs: Prefs,
    pub body: &'a [u8],
}

/// `GET /<set>`: `$select`, `$filter`, `$orderby`, `$top`, `$count`, paging, change tracking.
pub(crate) fn list(call: &Call) -> Result<Response, DvError> {
    let (dv, table, prefs) = (call.dv, call.table, &call.prefs);
    let options = Options::parse(call.pairs)?;
    let select = options.select(table)?;
    if prefs.track_changes || options.get("$deltatoken").is_some() {
        for option in ["$filter", "$orderby", "$expand", "$top"] {
            if options.get(option).is_some() {
                // Documented message (crm-apis.md §2.7).
                return Err(bad(
                    codes::ODATA,
                    format!(
                        "The \"{option}\" query parameter isn't supported when Change Tracking is enabled."
                    ),
                ));
            }
        }
        return delta(dv, table, &options, select.as_deref(), prefs);
    }
    if options.get("$expand").is_some() {
        return Err(bad(codes::ODATA, "The sandbox does not support $expand."));
    }
    let filter: Option<Filter> = options
        .get("$filter")
        .map(|f| query::parse_filter(table, f))
        .transpose()?;
    let orderby = options
        .get("$orderby")
        .map(|o| query::parse_orderby(table, o))
        .transpose()?
        .unwrap_or_default();
    let top = match options.get("$top") {
        None => None,
        Some(t) => Some(t.parse::<usize>().map_err(|_| {
            bad(
                codes::ODATA,
                format!(
                    "Invalid value '{t}' for $top query option found. The $top query option requires a non-negative integer value."
                ),
            )
        })?),
    };
    let count = match options.get("$count") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad(
                codes::ODATA,
                format!("'{other}' is not a valid count option."),
            ));
        }
    };
    let page_size = prefs
        .maxpagesize
        .filter(|n| *n > 0)
        .map(|n| n.min(MAX_PAGE_SIZE));
    let annotations = prefs.annotations();
    let names: Vec<String> = orderby.iter().map(|(n, _)| n.clone()).collect();
    let mut descending: Vec<bool> = orderby.iter().map(|(_, d)| *d).collect();
    descending.push(false);

    // Text columns are stored as rendered: rows whose stored text cannot match are passed over
    // without rendering them (the filter still decides on the rendered row).
    let required: Vec<(&str, Vec<String>)> = filter
        .as_ref()
        .map(Filter::required_texts)
        .unwrap_or_default()
        .into_iter()
        .filter(|(property, _)| {
            table.columns.iter().any(|c| {
                c.name == *property
                    && matches!(c.kind, Kind::Text(_) | Kind::Memo(_))
                    && !matches!(c.name, "createdon" | "modifiedon")
            })
        })
        .collect();
    let state = dv.state();
    // An equality on a text column reads only its rows, through the text index.
    let candidates: Box<dyn Iterator<Item = _>> = match required.first() {
        Some((property, texts)) => Box::new(state.rows_with_text(table, property, texts)),
        None => Box::new(state.rows(table)),
    };
    let mut rows: Vec<(Vec<Value>, Map<String, Value>)> = candidates
        .filter(|(_, row)| {
            required.iter().all(|(property, texts)| {
                row.values
                    .get(*property)
                    .and_then(Value::as_str)
                    .is_some_and(|v| texts.contains(&v.to_lowercase()))
            })
        })
        .map(|(id, row)| state.render(table, id, row, &annotations))
        .filter(|row| filter.as_ref().is_none_or(|f| f.matches(row)))
        .map(|row| {
            let mut key: Vec<Value> = names
                .iter()
                .map(|n| row.get(n).cloned().unwrap_or(Value::Null))
                .collect();
            key.push(row[table.key].clone());
            (key, row)
        })
        .collect();
    drop(state);
    // Stable paging: the `$orderby` keys, then the primary key.
    rows.sort_by(|a, b| query::compare_keys(&a.0, &b.0, &descending));
    let total = rows.len();

    let previous = match options.get("$skiptoken") {
        None => None,
        Some(token) => Some(paging::read_skiptoken(token, &names, table.key).ok_or_else(|| {
            // Message unconfirmed.
            bad(
                codes::ODATA,
                "The $skiptoken is not valid: follow @odata.nextLink exactly as it was returned.",
            )
        })?),
    };
    let start = match &previous {
        None => 0,
        Some(cursor) => {
            let mut after: Vec<Value> = cursor.sort.iter().map(|(_, v)| v.clone()).collect();
            after.push(json!(cursor.last_key));
            rows.iter()
                .position(|(k, _)| {
                    query::compare_keys(k, &after, &descending) == std::cmp::Ordering::Greater
                })
                .unwrap_or(total)
        }
    };
    // `$top` is ignored when a page size is asked for (crm-apis.md §2.5).
    let (size, pages) = match (page_size, top) {
        (Some(n), _) => (n, true),
        (None, Some(t)) => (t.min(MAX_PAGE_SIZE), false),
        (None, None) => (MAX_PAGE_SIZE, true),
    };
    let page: Vec<&(Vec<Value>, Map<String, Value>)> = rows[start..].iter().take(size).collect();
    let more = pages && start + page.len() < total;

    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(context(dv, table, select.as_deref(), "")),
    );
    if count {
        body.insert("@odata.count".into(), json!(total.min(MAX_PAGE_SIZE)));
    }
    let value: Vec<Value> = page
        .iter()
        .map(|(_, row)| Value::Object(project(table, row.clone(), select.as_deref())))
        .collect();
    body.insert("value".into(), Value::Array(value));
    if more && let (Some(first), Some(last)) = (page.first(), page.last()) {
        let cursor = Cursor {
            page: previous.as_ref().map_or(1, |c| c.page + 1),
            sort: names.iter().cloned().zip(last.0.iter().cloned()).collect(),
            key_name: table.key.to_string(),
            last_key: last.1[table.key].as_str().unwrap_or_default().to_string(),
            first_key: first.1[table.key].as_str().unwrap_or_default().to_string(),
        };
        let mut query: Vec<String> = options
            .pairs
            .iter()
            .filter(|(k, _)| k != "$skiptoken")
            .map(|(k, v)| format!("{}={}", paging::encode_key(k), paging::encode(v)))
            .collect();
        query.push(format!(
            "$skiptoken={}",
            paging::encode(&paging::skiptoken(&cursor))
        ));
        body.insert(
            "@odata.nextLink".into(),
            json!(format!(
                "{}/{}?{}",
                dv.api_url(),
                table.set,
                query.join("&")
            )),
        );
    }
    let mut prefs_applied = Vec::new();
    if let Some(n) = page_size {
        prefs_applied.push(format!("odata.maxpagesize={n}"));
    }
    prefs_applied.extend(annotations_applied(prefs));
    Ok(respond(
        StatusCode::OK,
        Some(Value::Object(body)),
        &applied(&prefs_applied),
    ))
}

/// Change tracking: the initial request (all rows and a delta link) or a delta request (what changed
/// since the token: changed rows in full, deleted rows as `$deletedEntity`). Results are not paged
/// (the real service pages them with `odata.maxpagesize`; not needed so far).
fn delta(
    dv: &Dataverse,
    table: &'static Table,
    options: &Options,
    select: Option<&[String]>,
    prefs: &Prefs,
) -> Result<Response, DvError> {
    options.only(
        &["$select", "$deltatoken", "$count"],
        "with change tracking",
    )?;
    let now = dv.now();
    let since = match options.get("$deltatoken") {
        None => None,
        Some(token) => {
            let (version, at) = paging::read_deltatoken(token).ok_or_else(|| {
                // Message unconfirmed.
                bad(
                    codes::ODATA,
                    "The $deltatoken is not valid: follow @odata.deltaLink exactly as it was returned.",
                )
            })?;
            if now - at > time::Duration::days(CHANGE_TRACKING_DAYS) {
                // Tokens expire after 7 days (documented); status, code and message unconfirmed.
                return Err(bad(
                    codes::INVALID_ARGUMENT,
                    format!(
                        "The delta token has expired: changes are kept for {CHANGE_TRACKING_DAYS} days (Organization.ExpireChangeTrackingInDays). Request the collection again with Prefer: odata.track-changes for a full sync."
                    ),
                ));
            }
            Some(version)
        }
    };
    let annotations = prefs.annotations();
    let state = dv.state();
    let mut changed: Vec<(u64, Value)> = state
        .rows(table)
        .filter(|(_, row)| since.is_none_or(|v| row.version > v))
        .map(|(id, row)| {
            let rendered = state.render(table, id, row, &annotations);
            (row.version, Value::Object(project(table, rendered, select)))
        })
        .collect();
    if since.is_some() {
        changed.sort_by_key(|(v, _)| *v);
    }
    let mut value: Vec<Value> = changed.into_iter().map(|(_, v)| v).collect();
    if let Some(version) = since {
        for deletion in state.deletions_since(table, version) {
            if state.get(table, &deletion.id).is_none() {
                value.push(json!({
                    "@odata.context": dv.context(&format!("{}/$deletedEntity", table.set)),
                    "id": deletion.id,
                    "reason": "deleted",
                }));
            }
        }
    }
    let token = paging::deltatoken(state.version(), now);
    drop(state);
    let mut link = format!("{}/{}?", dv.api_url(), table.set);
    if let Some(s) = options.get("$select") {
        link.push_str(&format!("$select={}&", paging::encode(s)));
    }
    link.push_str(&format!("$deltatoken={}", paging::encode(&token)));
    let suffix = if since.is_some() { "/$delta" } else { "" };
    let body = json!({
        "@odata.context": context(dv, table, select, suffix),
        "value": value,
        "@odata.deltaLink": link,
    });
    let mut prefs_applied = vec!["odata.track-changes".to_string()];
    prefs_applied.extend(annotations_applied(prefs));
    Ok(respond(
        StatusCode::OK,
        Some(body),
        &applied(&prefs_applied),
    ))
}

/// A weak ETag's version: `W/"123"` (or `"123"`) → 123.
fn etag_version(value: &str) -> Option<u64> {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    v.trim_matches('"').parse().ok()
}

enum Condition {
    None,
    Any,
    Version(Option<u64>),
}

fn condition(headers: &HeaderMap, name: &str) -> Condition {
    match headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
    {
        None | Some("null") | Some("") => Condition::None,
        Some("*") => Condition::Any,
        Some(tag) => Condition::Version(etag_version(tag)),
    }
}

fn version_mismatch() -> DvError {
    // Documented message; the code is unconfirmed.
    DvError::new(
        StatusCode::PRECONDITION_FAILED,
        codes::CONCURRENCY_VERSION_MISMATCH,
        "The version of the existing record doesn't match the RowVersion property provided.",
    )
}

/// `GET /<set>(<id>)`, with `$select` and `If-None-Match`.
pub(crate) fn get_one(call: &Call, id: &str) -> Result<Response, DvError> {
    let (dv, table, prefs, headers) = (call.dv, call.table, &call.prefs, call.headers);
    let options = Options::parse(call.pairs)?;
    options.only(&["$select"], "on a single record")?;
    let select = options.select(table)?;
    let annotations = prefs.annotations();
    let state = dv.state();
    let row = state
        .get(table, id)
        .ok_or_else(|| tables::not_found(table.logical, id))?;
    // 304 when the ETag still matches, except when annotations are asked for (crm-apis.md §2.4).
    if let Condition::Version(Some(v)) = condition(headers, "if-none-match")
        && v == row.version
        && !annotations.any()
    {
        return Ok(respond(StatusCode::NOT_MODIFIED, None, &[]));
    }
    let mut body = project(
        table,
        state.render(table, &id.to_ascii_lowercase(), row, &annotations),
        select.as_deref(),
    );
    body.insert(
        "@odata.context".into(),
        json!(context(dv, table, select.as_deref(), "/$entity")),
    );
    drop(state);
    let prefs_applied: Vec<String> = annotations_applied(prefs).into_iter().collect();
    Ok(respond(
        StatusCode::OK,
        Some(Value::Object(body)),
        &applied(&prefs_applied),
    ))
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, DvError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        // Messages unconfirmed.
        Ok(_) => Err(bad(codes::ODATA, "The request body must be a JSON object.")),
        Err(e) => Err(bad(
            codes::ODATA,
            format!("The request body is not valid JSON: {e}"),
        )),
    }
}

fn actor<'a>(dv: &Dataverse, caller: &str, users: &'a [String]) -> Actor<'a> {
    Actor {
        user_id: Some(caller.to_string()),
        system_users: users,
        now: dv.now(),
        via: Via::WebApi,
    }
}

/// The answer to a write: 204 + `OData-EntityId`, or with `return=representation` the row (201 on
/// create, 200 on update) without `OData-EntityId` on create.
fn written(
    dv: &Dataverse,
    table: &'static Table,
    id: &str,
    created: bool,
    select: Option<&[String]>,
    prefs: &Prefs,
) -> Response {
    if !prefs.representation {
        // PATCH answers carry OData-EntityId too (unconfirmed for updates).
        return respond(
            StatusCode::NO_CONTENT,
            None,
            &[("OData-EntityId", entity_url(dv, table, id))],
        );
    }
    let annotations = prefs.annotations();
    let state = dv.state();
    let Some(row) = state.get(table, id) else {
        return tables::not_found(table.logical, id).into_response();
    };
    let mut body = project(table, state.render(table, id, row, &annotations), select);
    drop(state);
    body.insert(
        "@odata.context".into(),
        json!(context(dv, table, select, "/$entity")),
    );
    let mut prefs_applied = vec!["return=representation".to_string()];
    prefs_applied.extend(annotations_applied(prefs));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    respond(status, Some(Value::Object(body)), &applied(&prefs_applied))
}

/// `POST /<set>`.
pub(crate) fn create(call: &Call) -> Result<Response, DvError> {
    let (dv, table, prefs, caller, body) =
        (call.dv, call.table, &call.prefs, &call.caller, call.body);
    let options = Options::parse(call.pairs)?;
    options.only(&["$select", "$expand"], "on create")?;
    let select = options.select(table)?;
    let fields = json_object(body)?;
    let users = dv.system_user_ids();
    let id = dv
        .state()
        .create_deep(table, &fields, &actor(dv, caller, &users))?;
    Ok(written(dv, table, &id, true, select.as_deref(), prefs))
}

/// `PATCH /<set>(<id>)`: update, or upsert; `If-Match` (`*` or an ETag) and `If-None-Match: *`.
pub(crate) fn patch(call: &Call, id: &str) -> Result<Response, DvError> {
    let (dv, table, prefs, headers, caller, body) = (
        call.dv,
        call.table,
        &call.prefs,
        call.headers,
        &call.caller,
        call.body,
    );
    let options = Options::parse(call.pairs)?;
    options.only(&["$select", "$expand"], "on update")?;
    let select = options.select(table)?;
    let fields = json_object(body)?;
    let users = dv.system_user_ids();
    let actor = actor(dv, caller, &users);
    let mut state = dv.state();
    let current = state.get(table, id).map(|r| r.version);
    match (
        condition(headers, "if-match"),
        condition(headers, "if-none-match"),
        current,
    ) {
        (Condition::Any | Condition::Version(_), _, None) => {
            return Err(tables::not_found(table.logical, id));
        }
        (Condition::Version(v), _, Some(current)) if v != Some(current) => {
            return Err(version_mismatch());
        }
        (_, Condition::Any, Some(_)) => {
            // Documented message (code unconfirmed).
            return Err(DvError::new(
                StatusCode::PRECONDITION_FAILED,
                codes::DUPLICATE_RECORD,
                "A record with matching key values already exists.",
            ));
        }
        _ => {}
    }
    let created = current.is_none();
    if created {
        state.create(table, Some(id), &fields, &actor)?;
    } else {
        state.update(table, id, &fields, &actor)?;
    }
    drop(state);
    Ok(written(
        dv,
        table,
        &id.to_ascii_lowercase(),
        created,
        select.as_deref(),
        prefs,
    ))
}

/// `DELETE /<set>(<id>)`, with an optional `If-Match`.
pub(crate) fn delete(call: &Call, id: &str) -> Result<Response, DvError> {
    let (dv, table, headers) = (call.dv, call.table, call.headers);
    let now = dv.now();
    let mut state = dv.state();
    let current = state
        .get(table, id)
        .map(|r| r.version)
        .ok_or_else(|| tables::not_found(table.logical, id))?;
    if let Condition::Version(v) = condition(headers, "if-match")
        && v != Some(current)
    {
        return Err(version_mismatch());
    }
    state.delete(table, id, now);
    Ok(respond(StatusCode::NO_CONTENT, None, &[]))
}

/// `POST /WinOpportunity` or `/LoseOpportunity` (crm-apis.md §2.9):
/// `{"Status": 3, "OpportunityClose": {"subject": "…", "opportunityid@odata.bind": "/opportunities(<id>)"}}`.
pub(crate) fn close(dv: &Dataverse, won: bool, body: &[u8]) -> Result<Response, DvError> {
    let action = if won {
        "WinOpportunity"
    } else {
        "LoseOpportunity"
    };
    let params = json_object(body)?;
    if let Some(unknown) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "Status" | "OpportunityClose"))
    {
        // Message unconfirmed.
        return Err(bad(
            codes::ODATA,
            format!(
                "The parameter '{unknown}' in the request payload is not a valid parameter for the operation '{action}'."
            ),
        ));
    }
    let status = params
        .get("Status")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            bad(
                codes::ODATA,
                format!("{action} needs the parameter 'Status' (an integer status code)."),
            )
        })?;
    let Some(Value::Object(close)) = params.get("OpportunityClose") else {
        return Err(bad(
            codes::ODATA,
            format!(
                "{action} needs the parameter 'OpportunityClose' (an opportunityclose entity)."
            ),
        ));
    };
    if let Some(unknown) = close.keys().find(|k| {
        !k.contains('@')
            && !matches!(
                k.as_str(),
                "subject" | "description" | "actualrevenue" | "actualend"
            )
    }) {
        // Unknown-column message, as for other entities (unconfirmed).
        return Err(bad(
            codes::ODATA,
            format!(
                "Invalid property '{unknown}' was found in entity 'Microsoft.Dynamics.CRM.opportunityclose'."
            ),
        ));
    }
    let reference = close
        .get("opportunityid@odata.bind")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                codes::ODATA,
                "OpportunityClose needs 'opportunityid@odata.bind': \"/opportunities(<guid>)\".",
            )
        })?;
    let (set, id) = tables::parse_reference(reference)
        .filter(|(set, _)| set == OPPORTUNITY.set)
        .ok_or_else(|| {
            bad(
                codes::ODATA,
                format!(
                    "'{reference}' is not a valid entity reference for 'opportunityid@odata.bind': use \"/opportunities(<guid>)\"."
                ),
            )
        })?;
    debug_assert_eq!(set, OPPORTUNITY.set);
    let now = dv.now();
    dv.state().close_opportunity(&id, won, status, close, now)?;
    Ok(respond(StatusCode::NO_CONTENT, None, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_values_split_outside_quotes() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "prefer",
            HeaderValue::from_static(
                "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.lookuplogicalname\", odata.maxpagesize=2",
            ),
        );
        headers.append("prefer", HeaderValue::from_static("return=representation"));
        let p = Prefs::from_headers(&headers);
        assert_eq!(p.maxpagesize, Some(2));
        assert!(p.representation);
        assert!(!p.track_changes);
        let a = p.annotations();
        assert!(a.formatted && a.lookup_logical && !a.navigation);
    }

    #[test]
    fn etags_parse_weak_and_strong() {
        assert_eq!(etag_version("W/\"468026\""), Some(468026));
        assert_eq!(etag_version("\"7\""), Some(7));
        assert_eq!(etag_version("W/\"x\""), None);
    }
}
