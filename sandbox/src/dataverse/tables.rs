//! The organization's rows: one version counter for the whole organization (as Dataverse's
//! `versionnumber` is a database rowversion), rows per entity set, a log of deletions for change
//! tracking, and the rules every write goes through (columns, types, lookups, states).

use super::schema::{
    ACCOUNT, Access, CONTACT, Column, Kind, OPPORTUNITY, TRANSACTION_CURRENCY, Table, Target,
};
use super::{DvError, codes};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::macros::format_description;

/// The seeded currencies (the organization's base currency is USD).
pub const CURRENCY_USD: &str = "c0a1f000-0000-4000-8000-000000000840";
pub const CURRENCY_EUR: &str = "c0a1f000-0000-4000-8000-000000000978";
pub const CURRENCY_GBP: &str = "c0a1f000-0000-4000-8000-000000000826";
/// Seeded demo accounts.
pub const ACCOUNT_FABRIKAM: &str = "a0c0a000-0000-4000-8000-000000000001";
pub const ACCOUNT_CONTOSO_PHARMA: &str = "a0c0a000-0000-4000-8000-000000000002";
pub const ACCOUNT_ADATUM: &str = "a0c0a000-0000-4000-8000-000000000003";
pub const ACCOUNT_LITWARE: &str = "a0c0a000-0000-4000-8000-000000000004";
/// The seeded opportunities, none shared with Partner Center yet ("Sync with Partner Center" off).
pub const OPPORTUNITY_FABRIKAM: &str = "0aa0a000-0000-4000-8000-000000000001";
pub const OPPORTUNITY_ADATUM: &str = "0aa0a000-0000-4000-8000-000000000002";
pub const OPPORTUNITY_LITWARE: &str = "0aa0a000-0000-4000-8000-000000000003";

/// A lookup's value: the row it points at.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub set: &'static str,
    pub logical: &'static str,
    pub id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Non-lookup columns by name (absent = null). The key, times and version live beside.
    pub values: BTreeMap<&'static str, Value>,
    /// Lookup columns by name.
    pub lookups: BTreeMap<&'static str, Link>,
    pub version: u64,
    pub created: OffsetDateTime,
    pub modified: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Deletion {
    pub set: &'static str,
    pub id: String,
    pub version: u64,
}

/// How a write arrives: through the Web API, or from a person in the CRM's own UI (the control API and
/// the in-process API), who may close an opportunity with the "Close as Won/Lost" dialog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Via {
    WebApi,
    CrmUser,
}

/// Who writes, and what exists outside the tables (system users for `ownerid`).
pub(crate) struct Actor<'a> {
    pub user_id: Option<String>,
    pub system_users: &'a [String],
    pub now: OffsetDateTime,
    pub via: Via,
}

#[derive(Debug)]
pub(crate) struct State {
    rows: BTreeMap<&'static str, BTreeMap<String, Row>>,
    version: u64,
    deleted: Vec<Deletion>,
    /// Whether a PATCH of `statecode` to Won/Lost closes the opportunity (default: rejected, the actions
    /// are the documented way; whether the real service accepts it is unconfirmed).
    pub close_by_patch: bool,
}

enum Change {
    Set(&'static Column, Value),
    Bind(&'static Column, Option<Link>),
}

impl Change {
    fn column(&self) -> &'static Column {
        match self {
            Change::Set(c, _) | Change::Bind(c, _) => c,
        }
    }
}

/// `2025-09-30T10:00:00Z`, as Dataverse writes date-times.
pub(crate) fn format_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

fn format_date(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

pub(crate) fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn bad(code: &'static str, message: impl Into<String>) -> DvError {
    DvError::new(StatusCode::BAD_REQUEST, code, message)
}

pub(crate) fn not_found(logical: &str, id: &str) -> DvError {
    DvError::new(
        StatusCode::NOT_FOUND,
        codes::OBJECT_DOES_NOT_EXIST,
        format!("{logical} With Id = {id} Does Not Exist"),
    )
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn label(options: &[(i64, &'static str)], value: i64) -> Option<&'static str> {
    options.iter().find(|(v, _)| *v == value).map(|(_, l)| *l)
}

/// The default status of a state: the first listed for it.
fn default_status(statuses: &[(i64, &str, i64)], state: i64) -> Option<i64> {
    statuses.iter().find(|s| s.2 == state).map(|s| s.0)
}

/// A table's states (value, label) and statuses (value, label, state).
type StateModel = (
    &'static [(i64, &'static str)],
    &'static [(i64, &'static str, i64)],
);

fn state_kinds(table: &Table) -> Option<StateModel> {
    let states = match table.column("statecode")?.kind {
        Kind::State(s) => s,
        _ => return None,
    };
    let statuses = match table.column("statuscode")?.kind {
        Kind::Status(s) => s,
        _ => return None,
    };
    Some((states, statuses))
}

/// What `/set(<guid>)`, `set(<guid>)` or `https://…/api/data/v9.x/set(<guid>)` names.
pub(crate) fn parse_reference(reference: &str) -> Option<(String, String)> {
    let mut path = reference.trim();
    if let Some(rest) = path
        .strip_prefix("https://")
        .or_else(|| path.strip_prefix("http://"))
    {
        // The absolute form: [Org URI]/api/data/v9.x/set(<guid>) (any version, any host).
        let (_, after_host) = rest.split_once('/')?;
        let after_api = after_host.strip_prefix("api/data/")?;
        let (version, entity) = after_api.split_once('/')?;
        if !version.starts_with('v') {
            return None;
        }
        path = entity;
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    let (set, rest) = path.split_once('(')?;
    let id = rest.strip_suffix(')')?;
    let id = id
        .strip_prefix('{')
        .and_then(|i| i.strip_suffix('}'))
        .unwrap_or(id);
    if set.is_empty() || !set.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || !is_guid(id)
    {
        return None;
    }
    Some((set.to_string(), id.to_ascii_lowercase()))
}

impl State {
    pub(crate) fn new() -> State {
        let mut rows = BTreeMap::new();
        for table in super::schema::TABLES {
            rows.insert(table.set, BTreeMap::new());
        }
        State {
            rows,
            // Real organizations' row versions are large numbers; start somewhere plausible.
            version: 1_000_000,
            deleted: Vec::new(),
            close_by_patch: false,
        }
    }

    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    pub(crate) fn rows(&self, table: &Table) -> impl Iterator<Item = (&String, &Row)> {
        self.rows.get(table.set).into_iter().flat_map(|r| r.iter())
    }

    pub(crate) fn get(&self, table: &Table, id: &str) -> Option<&Row> {
        self.rows.get(table.set)?.get(&id.to_ascii_lowercase())
    }

    pub(crate) fn deletions_since(&self, table: &Table, version: u64) -> Vec<&Deletion> {
        self.deleted
            .iter()
            .filter(|d| d.set == table.set && d.version > version)
            .collect()
    }

    fn exists(&self, target: &Target, id: &str, actor: &Actor) -> bool {
        match target.set {
            "systemusers" => actor
                .system_users
                .iter()
                .any(|u| u.eq_ignore_ascii_case(id)),
            set => super::schema::table(set)
                .and_then(|t| self.get(t, id))
                .is_some(),
        }
    }

    /// The columns a write body sets, checked: names, types, lengths, choices, lookups.
    fn parse_changes(
        &self,
        table: &'static Table,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> Result<Vec<Change>, DvError> {
        let mut changes = Vec::new();
        for (name, value) in body {
            if let Some(nav) = name.strip_suffix("@odata.bind") {
                changes.push(self.bind(table, nav, value, actor)?);
                continue;
            }
            if name.starts_with('@') || name.contains('@') {
                // Instance and property annotations (`@odata.type`, `@odata.etag`, formatted values
                // read back earlier) carry no data.
                continue;
            }
            if name == table.key {
                continue; // The caller reads the key.
            }
            if name.starts_with('_') && name.ends_with("_value") && table.property(name).is_some() {
                // Real message (code unconfirmed).
                return Err(bad(
                    codes::ODATA,
                    "CRM do not support direct update of Entity Reference properties, Use Navigation properties instead.",
                ));
            }
            let column = match table.column(name) {
                Some(c) if !matches!(c.kind, Kind::Lookup(_)) => c,
                // The message the brief's reference gives for an unknown column; the OData layer may
                // instead answer "The property 'x' does not exist on type '…'" (unconfirmed).
                _ => {
                    return Err(bad(
                        codes::ODATA,
                        format!(
                            "Invalid property '{name}' was found in entity '{}'.",
                            table.type_name()
                        ),
                    ));
                }
            };
            if column.access == Access::System {
                // Read-only columns are ignored on write (unconfirmed: some may be rejected).
                continue;
            }
            changes.push(Change::Set(column, normalize(table, column, value)?));
        }
        Ok(changes)
    }

    fn bind(
        &self,
        table: &'static Table,
        nav: &str,
        value: &Value,
        actor: &Actor,
    ) -> Result<Change, DvError> {
        let Some(column) = table.lookup_by_nav(nav) else {
            // The real OData message, seen for `customerid@odata.bind` and misspelled navigation
            // properties (code often empty).
            return Err(bad(
                "",
                format!(
                    "An undeclared property '{nav}' which only has property annotations in the payload but no property value was found in the payload. In OData, only declared navigation properties and declared named streams can be represented as properties without values."
                ),
            ));
        };
        let Kind::Lookup(targets) = column.kind else {
            unreachable!("lookup_by_nav returns lookups")
        };
        let reference = match value {
            // Clearing a lookup with a null bind (unconfirmed; the documented way is DELETE …/$ref).
            Value::Null => return Ok(Change::Bind(column, None)),
            Value::String(s) => s,
            other => {
                return Err(bad(
                    codes::ODATA,
                    format!("The value {other} of '{nav}@odata.bind' is not an entity reference."),
                ));
            }
        };
        // Malformed references: message unconfirmed.
        let malformed = || {
            bad(
                codes::ODATA,
                format!(
                    "'{reference}' is not a valid entity reference for '{nav}@odata.bind': use \"/<entityset>(<guid>)\"."
                ),
            )
        };
        let (set, id) = parse_reference(reference).ok_or_else(malformed)?;
        let Some(target) = targets.iter().find(|t| t.nav == nav && t.set == set) else {
            let allowed: Vec<&str> = targets
                .iter()
                .filter(|t| t.nav == nav)
                .map(|t| t.set)
                .collect();
            return Err(bad(
                codes::ODATA,
                format!(
                    "'{reference}' cannot be bound to '{nav}': it points at '{set}', expected {}.",
                    allowed.join(" or ")
                ),
            ));
        };
        if !self.exists(target, &id, actor) {
            // A dangling reference: 400 with the not-found message (the real status may be 404;
            // unconfirmed).
            return Err(DvError {
                status: StatusCode::BAD_REQUEST,
                ..not_found(target.logical, &id)
            });
        }
        Ok(Change::Bind(
            column,
            Some(Link {
                set: target.set,
                logical: target.logical,
                id,
            }),
        ))
    }

    /// Creates a row (POST, or PATCH upsert of a missing id); returns its id.
    pub(crate) fn create(
        &mut self,
        table: &'static Table,
        id: Option<&str>,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> Result<String, DvError> {
        let body_id = match body.get(table.key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if is_guid(s) => Some(s.to_ascii_lowercase()),
            Some(other) => {
                return Err(bad(
                    codes::ODATA,
                    format!(
                        "Cannot convert the literal '{other}' to the expected type 'Edm.Guid'."
                    ),
                ));
            }
        };
        let id = match (id, body_id) {
            (Some(url), Some(body)) if !url.eq_ignore_ascii_case(&body) => {
                // Message unconfirmed.
                return Err(bad(
                    codes::ODATA,
                    format!(
                        "The key in the body ({body}) differs from the key in the URL ({url})."
                    ),
                ));
            }
            (Some(url), _) => url.to_ascii_lowercase(),
            (None, Some(body)) => body,
            (None, None) => uuid::Uuid::new_v4().to_string(),
        };
        if self.get(table, &id).is_some() {
            return Err(DvError::new(
                StatusCode::PRECONDITION_FAILED,
                codes::DUPLICATE_RECORD,
                "A record with matching key values already exists.",
            ));
        }
        let changes = self.parse_changes(table, body, actor)?;
        let mut row = Row {
            values: BTreeMap::new(),
            lookups: BTreeMap::new(),
            version: 0,
            created: actor.now,
            modified: actor.now,
        };
        if let Some((_, statuses)) = state_kinds(table) {
            row.values.insert("statecode", json!(0));
            row.values.insert(
                "statuscode",
                json!(default_status(statuses, 0).unwrap_or(1)),
            );
        }
        if table.set == OPPORTUNITY.set {
            row.values.insert("msp_syncwithpartnercenter", json!(false));
        }
        if table.column("ownerid").is_some()
            && let Some(user) = &actor.user_id
        {
            row.lookups.insert(
                "ownerid",
                Link {
                    set: "systemusers",
                    logical: "systemuser",
                    id: user.clone(),
                },
            );
        }
        if let Some(state) = changes.iter().find_map(|c| match c {
            Change::Set(col, v) if col.name == "statecode" => v.as_i64(),
            _ => None,
        }) && state != 0
        {
            // Rows are created active/open; closing is a later step (message unconfirmed).
            return Err(bad(
                codes::INVALID_ARGUMENT,
                format!(
                    "A {} can't be created with statecode {state}: create it, then change its state.",
                    table.logical
                ),
            ));
        }
        self.apply_states(table, &id, &mut row, &changes, actor)?;
        apply(&mut row, changes);
        self.derive(table, &mut row);
        row.version = self.next_version();
        self.rows
            .get_mut(table.set)
            .expect("every table has rows")
            .insert(id.clone(), row);
        Ok(id)
    }

    /// Updates an existing row.
    pub(crate) fn update(
        &mut self,
        table: &'static Table,
        id: &str,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> Result<(), DvError> {
        let id = id.to_ascii_lowercase();
        let mut row = self
            .get(table, &id)
            .cloned()
            .ok_or_else(|| not_found(table.logical, &id))?;
        if let Some(Value::String(key)) = body.get(table.key)
            && !key.eq_ignore_ascii_case(&id)
        {
            // Message unconfirmed.
            return Err(bad(
                codes::ODATA,
                format!("The key in the body ({key}) differs from the key in the URL ({id})."),
            ));
        }
        let changes = self.parse_changes(table, body, actor)?;
        self.apply_states(table, &id, &mut row, &changes, actor)?;
        apply(&mut row, changes);
        self.derive(table, &mut row);
        row.modified = actor.now;
        row.version = self.next_version();
        self.rows
            .get_mut(table.set)
            .expect("every table has rows")
            .insert(id, row);
        Ok(())
    }

    /// State and status rules: valid pairs, closed opportunities read-only, closing by the actions.
    fn apply_states(
        &self,
        table: &Table,
        id: &str,
        row: &mut Row,
        changes: &[Change],
        actor: &Actor,
    ) -> Result<(), DvError> {
        let Some((states, statuses)) = state_kinds(table) else {
            return Ok(());
        };
        let set_int = |name: &str| {
            changes.iter().find_map(|c| match c {
                Change::Set(col, v) if col.name == name => Some(v.as_i64()),
                _ => None,
            })
        };
        let (new_state, new_status) = (set_int("statecode"), set_int("statuscode"));
        if matches!(new_state, Some(None)) || matches!(new_status, Some(None)) {
            return Err(bad(
                codes::INVALID_ARGUMENT,
                "statecode and statuscode can't be null.",
            ));
        }
        let (new_state, new_status) = (new_state.flatten(), new_status.flatten());
        let current_state = row
            .values
            .get("statecode")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let current_status = row.values.get("statuscode").and_then(Value::as_i64);
        let opportunity = table.set == OPPORTUNITY.set;
        if opportunity && current_state != 0 {
            // Won and Lost opportunities are read-only until reopened (crm-apis.md §2.9); reopening is
            // a change of statecode (and statuscode) to Open and nothing else. The status and message
            // of the refusal are unconfirmed.
            let reopening = new_state == Some(0)
                && changes
                    .iter()
                    .all(|c| matches!(c.column().name, "statecode" | "statuscode"));
            if !reopening {
                return Err(bad(
                    codes::INVALID_ARGUMENT,
                    format!(
                        "The opportunity With Id = {id} is closed ({}) and read-only: reopen it (statecode 0) before changing it.",
                        label(states, current_state).unwrap_or("closed")
                    ),
                ));
            }
        }
        let state = new_state.unwrap_or(current_state);
        let status = match (new_status, new_state) {
            (Some(s), _) => s,
            (None, Some(s)) if s != current_state => default_status(statuses, s).unwrap_or(1),
            _ => current_status.unwrap_or(1),
        };
        let belongs = statuses
            .iter()
            .any(|(v, _, st)| *v == status && *st == state);
        if !belongs {
            // Message after the platform's (unconfirmed).
            return Err(bad(
                codes::INVALID_ARGUMENT,
                format!(
                    "{status} is not a valid status code for state code {}State.{} on {} with Id {id}.",
                    capitalized(table.logical),
                    label(states, state).unwrap_or("?"),
                    table.logical
                ),
            ));
        }
        if opportunity && state != 0 && state != current_state {
            if actor.via == Via::WebApi && !self.close_by_patch {
                // Unconfirmed: the reference lists SetState as a PATCH of statecode, but the documented
                // way to close is WinOpportunity / LoseOpportunity. Switch with `close_by_patch`.
                return Err(bad(
                    codes::INVALID_ARGUMENT,
                    "Close an opportunity with the WinOpportunity or LoseOpportunity action, not by changing its statecode.",
                ));
            }
            close_effects(row, state == 1, None, None, actor.now);
        }
        row.values.insert("statecode", json!(state));
        row.values.insert("statuscode", json!(status));
        Ok(())
    }

    /// `WinOpportunity` / `LoseOpportunity`.
    pub(crate) fn close_opportunity(
        &mut self,
        id: &str,
        won: bool,
        status: i64,
        close: &Map<String, Value>,
        now: OffsetDateTime,
    ) -> Result<(), DvError> {
        let table = &OPPORTUNITY;
        let id = id.to_ascii_lowercase();
        let mut row = self
            .get(table, &id)
            .cloned()
            .ok_or_else(|| not_found(table.logical, &id))?;
        let state = if won { 1 } else { 2 };
        if !opportunity_statuses_of(state).contains(&status) {
            return Err(bad(
                codes::INVALID_ARGUMENT,
                format!(
                    "{status} is not a valid status code for state code OpportunityState.{} on opportunity with Id {id}.",
                    if won { "Won" } else { "Lost" }
                ),
            ));
        }
        let current = row
            .values
            .get("statecode")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if current != 0 {
            // Message unconfirmed.
            return Err(bad(
                codes::INVALID_ARGUMENT,
                format!("The opportunity With Id = {id} is already closed."),
            ));
        }
        let revenue = match close.get("actualrevenue") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_f64().ok_or_else(|| {
                bad(
                    codes::ODATA,
                    format!("Cannot convert the literal '{v}' to the expected type 'Edm.Decimal'."),
                )
            })?),
        };
        let end = match close.get("actualend") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.len() >= 10 && valid_date(&s[..10]) => {
                Some(s[..10].to_string())
            }
            Some(v) => {
                return Err(bad(
                    codes::ODATA,
                    format!(
                        "Cannot convert the literal '{v}' to the expected type 'Edm.DateTimeOffset'."
                    ),
                ));
            }
        };
        close_effects(&mut row, won, revenue, end, now);
        row.values.insert("statecode", json!(state));
        row.values.insert("statuscode", json!(status));
        self.derive(table, &mut row);
        row.modified = now;
        row.version = self.next_version();
        self.rows
            .get_mut(table.set)
            .expect("every table has rows")
            .insert(id, row);
        Ok(())
    }

    /// Deletes a row; lookups pointing at it are cleared (those rows change too). Real relationships
    /// may instead cascade the delete or restrict it (simplified; unconfirmed per relationship).
    pub(crate) fn delete(&mut self, table: &Table, id: &str, now: OffsetDateTime) -> bool {
        let id = id.to_ascii_lowercase();
        let removed = self
            .rows
            .get_mut(table.set)
            .and_then(|rows| rows.remove(&id))
            .is_some();
        if !removed {
            return false;
        }
        let version = self.next_version();
        self.deleted.push(Deletion {
            set: table.set,
            id: id.clone(),
            version,
        });
        let mut touched = Vec::new();
        for (set, rows) in &self.rows {
            for (row_id, row) in rows {
                if row
                    .lookups
                    .values()
                    .any(|l| l.set == table.set && l.id == id)
                {
                    touched.push((*set, row_id.clone()));
                }
            }
        }
        for (set, row_id) in touched {
            let version = self.next_version();
            if let Some(row) = self.rows.get_mut(set).and_then(|r| r.get_mut(&row_id)) {
                row.lookups
                    .retain(|_, l| !(l.set == table.set && l.id == id));
                row.version = version;
                row.modified = now;
            }
        }
        true
    }

    /// Columns the platform computes: full name, currency, exchange rate, base amounts.
    fn derive(&self, table: &Table, row: &mut Row) {
        if table.set == CONTACT.set {
            let name = [row.values.get("firstname"), row.values.get("lastname")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            if name.is_empty() {
                row.values.remove("fullname");
            } else {
                row.values.insert("fullname", json!(name));
            }
        }
        if !table.has_money() {
            return;
        }
        let money: Vec<&'static str> = table
            .columns
            .iter()
            .filter(|c| c.kind == Kind::Money && c.access == Access::Write)
            .map(|c| c.name)
            .collect();
        let any_money = money
            .iter()
            .any(|m| row.values.get(m).is_some_and(|v| !v.is_null()));
        if any_money && !row.lookups.contains_key("transactioncurrencyid") {
            // A money value needs a currency: the platform uses the organization's base currency
            // (the user's default currency in real organizations; unconfirmed which applies first).
            row.lookups.insert(
                "transactioncurrencyid",
                Link {
                    set: TRANSACTION_CURRENCY.set,
                    logical: TRANSACTION_CURRENCY.logical,
                    id: CURRENCY_USD.into(),
                },
            );
        }
        let rate = row
            .lookups
            .get("transactioncurrencyid")
            .and_then(|l| self.get(&TRANSACTION_CURRENCY, &l.id))
            .and_then(|c| c.values.get("exchangerate"))
            .and_then(Value::as_f64)
            .filter(|r| *r > 0.0);
        match rate {
            Some(rate) => {
                row.values.insert("exchangerate", number(rate));
                for m in money {
                    let base = row
                        .values
                        .get(m)
                        .and_then(Value::as_f64)
                        .map(|v| number(round2(v / rate)));
                    let name = base_column(table, m);
                    match (base, name) {
                        (Some(b), Some(n)) => {
                            row.values.insert(n, b);
                        }
                        (None, Some(n)) => {
                            row.values.remove(n);
                        }
                        _ => {}
                    }
                }
            }
            None => {
                row.values.remove("exchangerate");
            }
        }
    }

    /// The row as the Web API returns it without `$select`: every column (null when empty), lookups
    /// as `_x_value`, `@odata.etag`, and the annotations asked for.
    pub(crate) fn render(
        &self,
        table: &Table,
        id: &str,
        row: &Row,
        annotations: &Annotations,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("@odata.etag".into(), json!(etag(row.version)));
        for column in table.columns {
            let property = column.property();
            let value = match (column.name, column.kind) {
                (_, Kind::Key) => json!(id),
                ("createdon", _) => json!(format_time(row.created)),
                ("modifiedon", _) => json!(format_time(row.modified)),
                ("versionnumber", _) => json!(row.version),
                (name, Kind::Lookup(targets)) => match row.lookups.get(name) {
                    Some(link) => {
                        if annotations.lookup_logical {
                            out.insert(
                                format!("{property}@Microsoft.Dynamics.CRM.lookuplogicalname"),
                                json!(link.logical),
                            );
                        }
                        if annotations.navigation {
                            let nav = targets
                                .iter()
                                .find(|t| t.set == link.set)
                                .map_or(name, |t| t.nav);
                            out.insert(
                                format!(
                                    "{property}@Microsoft.Dynamics.CRM.associatednavigationproperty"
                                ),
                                json!(nav),
                            );
                        }
                        if annotations.formatted
                            && let Some(name) = self.primary_name(link)
                        {
                            out.insert(format!("{property}@{FORMATTED}"), json!(name));
                        }
                        json!(link.id)
                    }
                    None => Value::Null,
                },
                (name, _) => row.values.get(name).cloned().unwrap_or(Value::Null),
            };
            if annotations.formatted
                && let Some(text) = self.formatted(column, &value, row)
            {
                out.insert(format!("{property}@{FORMATTED}"), json!(text));
            }
            out.insert(property, value);
        }
        out
    }

    fn primary_name(&self, link: &Link) -> Option<String> {
        if link.set == "systemusers" {
            return None; // Owners' names are not formatted by the sandbox (not needed so far).
        }
        let table = super::schema::table(link.set)?;
        let row = self.get(table, &link.id)?;
        row.values
            .get(table.primary_name)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// `OData.Community.Display.V1.FormattedValue` of a column value.
    fn formatted(&self, column: &Column, value: &Value, row: &Row) -> Option<String> {
        match column.kind {
            Kind::Choice(options) | Kind::State(options) => {
                label(options, value.as_i64()?).map(str::to_string)
            }
            Kind::Status(statuses) => {
                let v = value.as_i64()?;
                statuses.iter().find(|s| s.0 == v).map(|s| s.1.to_string())
            }
            Kind::Bool => Some(if value.as_bool()? { "Yes" } else { "No" }.into()),
            Kind::Money => {
                let symbol = row
                    .lookups
                    .get("transactioncurrencyid")
                    .and_then(|l| self.get(&TRANSACTION_CURRENCY, &l.id))
                    .and_then(|c| c.values.get("currencysymbol"))
                    .and_then(Value::as_str)
                    .unwrap_or("$");
                let symbol = if column.name.ends_with("_base") {
                    "$"
                } else {
                    symbol
                };
                Some(format!("{symbol}{}", grouped(value.as_f64()?)))
            }
            _ => None,
        }
    }

    pub(crate) fn seed(&mut self, actor: &Actor) {
        let currencies = [
            (CURRENCY_USD, "US Dollar", "USD", "$", 1.0),
            (CURRENCY_EUR, "Euro", "EUR", "€", 0.92),
            (CURRENCY_GBP, "Pound Sterling", "GBP", "£", 0.79),
        ];
        for (id, name, code, symbol, rate) in currencies {
            let body = json!({
                "currencyname": name, "isocurrencycode": code, "currencysymbol": symbol,
                "exchangerate": rate, "currencyprecision": 2,
            });
            self.seed_row(&TRANSACTION_CURRENCY, id, body, actor);
        }
        let accounts = [
            (
                ACCOUNT_FABRIKAM,
                "Fabrikam, Inc.",
                "1 Microsoft Way",
                "Redmond",
                "WA",
                "98052",
                "United States",
                Some(250_000_000.0),
                CURRENCY_USD,
            ),
            (
                ACCOUNT_CONTOSO_PHARMA,
                "Contoso Pharmaceuticals",
                "2 Kingdom Street",
                "London",
                "",
                "W2 6BD",
                "United Kingdom",
                Some(80_000_000.0),
                CURRENCY_GBP,
            ),
            (
                ACCOUNT_ADATUM,
                "Adatum Corporation",
                "Walter-Gropius-Straße 5",
                "München",
                "Bayern",
                "80807",
                "Deutschland",
                None,
                CURRENCY_EUR,
            ),
            (
                ACCOUNT_LITWARE,
                "Litware, Inc.",
                "233 S Wacker Dr",
                "Chicago",
                "IL",
                "60606",
                "United States of America",
                Some(12_500_000.0),
                CURRENCY_USD,
            ),
        ];
        for (id, name, line1, city, state, postal, country, revenue, currency) in accounts {
            let body = json!({
                "name": name, "address1_line1": line1, "address1_city": city,
                "address1_stateorprovince": state, "address1_postalcode": postal,
                "address1_country": country, "revenue": revenue,
                "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({currency})"),
            });
            self.seed_row(&ACCOUNT, id, body, actor);
        }
        let contacts = [
            (
                "c0c0c000-0000-4000-8000-000000000001",
                "Ray",
                "Tanaka",
                "ray.tanaka@fabrikam.example",
                "CIO",
                ACCOUNT_FABRIKAM,
            ),
            (
                "c0c0c000-0000-4000-8000-000000000002",
                "Mia",
                "Johnson",
                "mia.johnson@fabrikam.example",
                "IT Director",
                ACCOUNT_FABRIKAM,
            ),
            (
                "c0c0c000-0000-4000-8000-000000000003",
                "Oliver",
                "O'Brien",
                "oliver.obrien@contosopharma.example",
                "Head of Infrastructure",
                ACCOUNT_CONTOSO_PHARMA,
            ),
            (
                "c0c0c000-0000-4000-8000-000000000004",
                "Lena",
                "Schmidt",
                "lena.schmidt@adatum.example",
                "CTO",
                ACCOUNT_ADATUM,
            ),
            (
                "c0c0c000-0000-4000-8000-000000000005",
                "Sam",
                "Patel",
                "sam.patel@litware.example",
                "VP Engineering",
                ACCOUNT_LITWARE,
            ),
        ];
        for (id, first, last, email, title, account) in contacts {
            let body = json!({
                "firstname": first, "lastname": last, "emailaddress1": email, "jobtitle": title,
                "parentcustomerid_account@odata.bind": format!("/accounts({account})"),
            });
            self.seed_row(&CONTACT, id, body, actor);
        }
        for (account, contact) in [
            (ACCOUNT_FABRIKAM, "c0c0c000-0000-4000-8000-000000000001"),
            (
                ACCOUNT_CONTOSO_PHARMA,
                "c0c0c000-0000-4000-8000-000000000003",
            ),
            (ACCOUNT_ADATUM, "c0c0c000-0000-4000-8000-000000000004"),
            (ACCOUNT_LITWARE, "c0c0c000-0000-4000-8000-000000000005"),
        ] {
            let body = json!({ "primarycontactid@odata.bind": format!("/contacts({contact})") });
            let body = body.as_object().expect("object");
            self.update(&ACCOUNT, account, body, actor)
                .expect("seed data is valid");
        }
        // Sellers' opportunities as a CRM holds them: free-text countries (so none is ready to share
        // until its account gets an ISO code), one without solutions, one asking Microsoft for help.
        let opportunities = [
            (
                OPPORTUNITY_FABRIKAM,
                json!({
                    "name": "Fabrikam Azure migration", "estimatedvalue": 48000, "estimatedclosedate": "2027-06-30",
                    "salesstage": 1, "msp_microsoftsolutions": "SOL-AZ-MIG",
                    "customerid_account@odata.bind": format!("/accounts({ACCOUNT_FABRIKAM})"),
                    "parentcontactid@odata.bind": "/contacts(c0c0c000-0000-4000-8000-000000000001)",
                    "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({CURRENCY_USD})"),
                }),
            ),
            (
                OPPORTUNITY_ADATUM,
                json!({
                    "name": "Adatum security assessment", "estimatedvalue": 30000, "estimatedclosedate": "2027-03-31",
                    "salesstage": 0, "msp_howcanmicrosofthelp": "Proof of concept or demo",
                    "customerid_account@odata.bind": format!("/accounts({ACCOUNT_ADATUM})"),
                    "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({CURRENCY_EUR})"),
                }),
            ),
            (
                OPPORTUNITY_LITWARE,
                json!({
                    "name": "Litware data platform", "estimatedvalue": 120000, "estimatedclosedate": "2027-09-30",
                    "salesstage": 2, "msp_microsoftsolutions": "SOL-DATA-PLAT",
                    "msp_howcanmicrosofthelp": "Architecture guidance",
                    "customerid_account@odata.bind": format!("/accounts({ACCOUNT_LITWARE})"),
                    "parentcontactid@odata.bind": "/contacts(c0c0c000-0000-4000-8000-000000000005)",
                    "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({CURRENCY_USD})"),
                }),
            ),
        ];
        for (id, body) in opportunities {
            self.seed_row(&OPPORTUNITY, id, body, actor);
        }
    }

    fn seed_row(&mut self, table: &'static Table, id: &str, body: Value, actor: &Actor) {
        let body = body.as_object().expect("object").clone();
        self.create(table, Some(id), &body, actor)
            .expect("seed data is valid");
    }
}

pub(crate) const FORMATTED: &str = "OData.Community.Display.V1.FormattedValue";

/// Which annotations `Prefer: odata.include-annotations` asked for.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Annotations {
    pub formatted: bool,
    pub lookup_logical: bool,
    pub navigation: bool,
}

impl Annotations {
    /// From the preference's value: `*`, or a comma-separated list of terms or `Namespace.*`.
    pub(crate) fn from_preference(value: &str) -> Annotations {
        let wants = |term: &str| {
            value.split(',').map(str::trim).any(|p| {
                p == "*"
                    || p == term
                    || p.strip_suffix('*')
                        .is_some_and(|prefix| term.starts_with(prefix))
            })
        };
        Annotations {
            formatted: wants(FORMATTED),
            lookup_logical: wants("Microsoft.Dynamics.CRM.lookuplogicalname"),
            navigation: wants("Microsoft.Dynamics.CRM.associatednavigationproperty"),
        }
    }

    pub(crate) fn any(&self) -> bool {
        self.formatted || self.lookup_logical || self.navigation
    }
}

pub(crate) fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// The opportunity statuses of a state.
fn opportunity_statuses_of(state: i64) -> Vec<i64> {
    super::schema::OPPORTUNITY_STATUSES
        .iter()
        .filter(|s| s.2 == state)
        .map(|s| s.0)
        .collect()
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn base_column(table: &Table, money: &str) -> Option<&'static str> {
    let name = format!("{money}_base");
    table.column(&name).map(|c| c.name)
}

/// What closing does to the row: the actual close date (today, or the given end) and the actual
/// revenue (given, or for a win the estimated revenue; the platform's exact rule is unconfirmed).
fn close_effects(
    row: &mut Row,
    won: bool,
    revenue: Option<f64>,
    end: Option<String>,
    now: OffsetDateTime,
) {
    row.values.insert(
        "actualclosedate",
        json!(end.unwrap_or_else(|| format_date(now))),
    );
    let actual = revenue.or_else(|| {
        won.then(|| row.values.get("estimatedvalue").and_then(Value::as_f64))
            .flatten()
    });
    if let Some(v) = actual {
        row.values.insert("actualvalue", number(round2(v)));
    }
}

fn apply(row: &mut Row, changes: Vec<Change>) {
    for change in changes {
        match change {
            Change::Set(column, Value::Null) => {
                row.values.remove(column.name);
            }
            Change::Set(column, value) => {
                if !matches!(column.name, "statecode" | "statuscode") {
                    row.values.insert(column.name, value);
                }
            }
            Change::Bind(column, None) => {
                row.lookups.remove(column.name);
            }
            Change::Bind(column, Some(link)) => {
                row.lookups.insert(column.name, link);
            }
        }
    }
}

pub(crate) fn valid_date(s: &str) -> bool {
    s.len() == 10 && time::Date::parse(s, format_description!("[year]-[month]-[day]")).is_ok()
}

/// A value for a column, checked and normalized.
fn normalize(table: &Table, column: &Column, value: &Value) -> Result<Value, DvError> {
    let mismatch = || {
        bad(
            codes::ODATA,
            format!(
                "Cannot convert the literal '{value}' to the expected type '{}'.",
                column.kind.edm()
            ),
        )
    };
    let out_of_range = |v: &dyn std::fmt::Display| {
        // After the platform's validation message (code unconfirmed).
        DvError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION,
            format!(
                "A validation error occurred. The value {v} of '{}' on record of type '{}' is outside the valid range.",
                column.name, table.logical
            ),
        )
    };
    if value.is_null() {
        return Ok(Value::Null);
    }
    match column.kind {
        Kind::Key | Kind::Lookup(_) | Kind::DateTime | Kind::BigInt => Err(mismatch()),
        Kind::Text(max) | Kind::Memo(max) => {
            let s = value.as_str().ok_or_else(mismatch)?;
            if s.chars().count() > max {
                return Err(DvError::new(
                    StatusCode::BAD_REQUEST,
                    codes::VALIDATION,
                    format!(
                        "A validation error occurred. The length of the '{}' attribute of the '{}' entity exceeded the maximum allowed length of '{max}'.",
                        column.name, table.logical
                    ),
                ));
            }
            // Dataverse keeps no empty strings: "" is stored as null (widely observed; unconfirmed).
            Ok(if s.is_empty() { Value::Null } else { json!(s) })
        }
        Kind::Whole(min, max) => {
            let n = value.as_i64().ok_or_else(mismatch)?;
            if n < min || n > max {
                return Err(out_of_range(&n));
            }
            Ok(json!(n))
        }
        Kind::Money => {
            let n = value.as_f64().ok_or_else(mismatch)?;
            if n.abs() > 1e12 {
                return Err(out_of_range(&n));
            }
            Ok(number(round2(n)))
        }
        Kind::Decimal => {
            let n = value.as_f64().ok_or_else(mismatch)?;
            if n <= 0.0 {
                return Err(out_of_range(&n));
            }
            Ok(number(n))
        }
        Kind::Bool => value.as_bool().map(Value::Bool).ok_or_else(mismatch),
        Kind::DateOnly => {
            // Date-only columns take "YYYY-MM-DD" (the real service may also accept a date-time here;
            // unconfirmed, so the emulator is strict).
            let s = value.as_str().ok_or_else(mismatch)?;
            if valid_date(s) {
                Ok(json!(s))
            } else {
                Err(mismatch())
            }
        }
        Kind::Choice(options) | Kind::State(options) => {
            let n = value.as_i64().ok_or_else(mismatch)?;
            let accepted: Vec<i64> = options.iter().map(|(v, _)| *v).collect();
            choice_value(table, column, n, &accepted)
        }
        Kind::Status(statuses) => {
            let n = value.as_i64().ok_or_else(mismatch)?;
            let accepted: Vec<i64> = statuses.iter().map(|s| s.0).collect();
            choice_value(table, column, n, &accepted)
        }
    }
}

/// A choice, state or status value, or the validation error naming the accepted ones.
fn choice_value(
    table: &Table,
    column: &Column,
    n: i64,
    accepted: &[i64],
) -> Result<Value, DvError> {
    if accepted.contains(&n) {
        return Ok(json!(n));
    }
    let accepted: Vec<String> = accepted.iter().map(i64::to_string).collect();
    Err(DvError::new(
        StatusCode::BAD_REQUEST,
        codes::VALIDATION,
        format!(
            "A validation error occurred. The value {n} of '{}' on record of type '{}' is outside the valid range. Accepted Values: {}",
            column.name,
            table.logical,
            accepted.join(",")
        ),
    ))
}

/// `125000` → `125,000.00`.
fn grouped(v: f64) -> String {
    let text = format!("{:.2}", v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}{out}.{frac}", if v < 0.0 { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_relative_absolute_and_malformed() {
        let id = "00000000-0000-0000-0000-0000000000AA";
        assert_eq!(
            parse_reference(&format!("/accounts({id})")),
            Some(("accounts".into(), id.to_ascii_lowercase()))
        );
        assert_eq!(
            parse_reference(&format!(
                "https://contoso.crm.dynamics.com/api/data/v9.2/accounts({id})"
            )),
            Some(("accounts".into(), id.to_ascii_lowercase()))
        );
        assert_eq!(parse_reference("/accounts(42)"), None);
        assert_eq!(parse_reference("accounts"), None);
        assert_eq!(
            parse_reference(&format!("https://x.example/other/accounts({id})")),
            None
        );
    }

    #[test]
    fn money_is_grouped() {
        assert_eq!(grouped(125000.0), "125,000.00");
        assert_eq!(grouped(999.5), "999.50");
        assert_eq!(grouped(-1234567.891), "-1,234,567.89");
    }
}
