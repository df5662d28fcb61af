//! The organization's rows: one version counter for the whole organization (as Dataverse's
//! `versionnumber` is a database rowversion), rows per entity set, a log of deletions for change
//! tracking, and the rules every write goes through (columns, types, lookups, states).

mod computed;
mod deep_insert;
mod rendering;
mod seed;
mod state_machine;
mod text_index;
mod validation;

pub(crate) use rendering::Annotations;
pub use seed::{
    ACCOUNT_ADATUM, ACCOUNT_CONTOSO_PHARMA, ACCOUNT_FABRIKAM, ACCOUNT_LITWARE, CURRENCY_EUR,
    CURRENCY_GBP, CURRENCY_USD, OPPORTUNITY_ADATUM, OPPORTUNITY_FABRIKAM, OPPORTUNITY_LITWARE,
};
pub(crate) use validation::{is_guid, parse_reference, valid_date};

use state_machine::{default_status, state_kinds};

use super::schema::{Column, OPPORTUNITY, Table};
use super::{DvError, codes};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use time::OffsetDateTime;

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
    text_index: text_index::TextIndex,
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

impl State {
    pub(crate) fn new() -> State {
        let mut rows = BTreeMap::new();
        for table in super::schema::TABLES {
            rows.insert(table.set, BTreeMap::new());
        }
        State {
            rows,
            text_index: Default::default(),
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

    /// The rows of `table` whose text `column` is one of `texts` (lowercased), in id order.
    pub(crate) fn rows_with_text<'a>(
        &'a self,
        table: &Table,
        column: &str,
        texts: &[String],
    ) -> impl Iterator<Item = (&'a String, &'a Row)> {
        let rows = self.rows.get(table.set);
        self.text_index
            .ids(table.set, column, texts)
            .into_iter()
            .filter_map(move |id| rows.and_then(|r| r.get_key_value(id)))
    }

    /// Stores a row, new or changed (every write ends here, so the text index stays true).
    fn put(&mut self, set: &'static str, id: String, row: Row) {
        let rows = self.rows.get_mut(set).expect("every table has rows");
        if let Some(old) = rows.get(&id) {
            self.text_index.remove(set, &id, old);
        }
        self.text_index.add(set, &id, &row);
        rows.insert(id, row);
    }

    /// Removes a row; whether it was there.
    fn take(&mut self, set: &'static str, id: &str) -> bool {
        match self.rows.get_mut(set).and_then(|rows| rows.remove(id)) {
            Some(old) => {
                self.text_index.remove(set, id, &old);
                true
            }
            None => false,
        }
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
        self.put(table.set, id.clone(), row);
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
        self.put(table.set, id, row);
        Ok(())
    }

    /// Deletes a row; lookups pointing at it are cleared (those rows change too). Real relationships
    /// may instead cascade the delete or restrict it (simplified; unconfirmed per relationship).
    pub(crate) fn delete(&mut self, table: &Table, id: &str, now: OffsetDateTime) -> bool {
        let id = id.to_ascii_lowercase();
        if !self.take(table.set, &id) {
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
