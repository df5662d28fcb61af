//! The org's records and the writes every path goes through (REST, composite, control, seed): field
//! checks, derived fields, audit stamps (`CreatedDate`, `LastModifiedDate`, `SystemModstamp` from the
//! sandbox clock, second precision as Salesforce stores them), soft deletes.

use super::errors::SfError;
use super::schema::{self, Object};
use super::{Org, ids, rules};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use time::macros::format_description;

/// Who writes: the REST API, or a person in Salesforce's own UI (control API, tests), who may also
/// maintain the objects the API only reads (users, stages, currencies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Api,
    Ui,
}

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub object: &'static str,
    pub fields: Map<String, Value>,
    pub deleted: bool,
}

/// Every record of the org by id. Ids of one object sort in creation order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    rows: BTreeMap<String, Row>,
    next: u64,
}

/// Ids below this are the seed's.
const FIRST_GENERATED: u64 = 1000;

impl Store {
    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        self.next += 1;
        ids::make(prefix, FIRST_GENERATED + self.next)
    }

    pub(crate) fn put(&mut self, id: String, row: Row) {
        self.rows.insert(id, row);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Row> {
        self.rows.get(id)
    }

    /// Every record of an object, deleted ones too.
    pub(crate) fn all(&self, o: &Object) -> impl Iterator<Item = (&String, &Row)> {
        let name = o.name;
        self.rows.iter().filter(move |(_, r)| r.object == name)
    }

    pub(crate) fn live(&self, o: &Object) -> impl Iterator<Item = (&String, &Row)> {
        self.all(o).filter(|(_, r)| !r.deleted)
    }
}

/// `2026-11-30T14:05:09.000+0000`, as the REST API writes datetimes.
pub(crate) fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].000+0000"
        ))
        .unwrap_or_default()
}

fn stamp(
    fields: &mut Map<String, Value>,
    o: &Object,
    actor: &str,
    now: OffsetDateTime,
    create: bool,
) {
    let now = timestamp(now);
    let mut set = |name: &str, value: Value| {
        if o.has(name) {
            fields.insert(name.to_string(), value);
        }
    };
    if create {
        set("CreatedDate", json!(now));
        set("CreatedById", json!(actor));
    }
    set("LastModifiedDate", json!(now));
    set("LastModifiedById", json!(actor));
    set("SystemModstamp", json!(now));
}

impl Org {
    /// Creates a record; the new id.
    pub(crate) fn create(
        &mut self,
        o: &'static Object,
        body: &Map<String, Value>,
        actor: &str,
        now: OffsetDateTime,
        via: Via,
    ) -> Result<String, SfError> {
        if via == Via::Api && !o.writable {
            return Err(SfError::bad(
                "INVALID_TYPE_FOR_OPERATION",
                format!("entity type cannot be inserted: {}", o.label),
            ));
        }
        let changes = rules::check_fields(o, body, &self.settings)?;
        let mut fields = Map::new();
        for (name, value) in [
            ("IsDeleted", json!(false)),
            ("HasOpportunityLineItem", json!(false)),
            (schema::fields::SYNC, json!(false)),
            ("IsActive", json!(true)),
            ("IsClosed", json!(false)),
            ("IsWon", json!(false)),
            ("OwnerId", json!(actor)),
            // New records take the creating user's currency, the corporate one here.
            ("CurrencyIsoCode", json!(self.corporate_currency())),
        ] {
            if o.has(name) {
                fields.insert(name.to_string(), value);
            }
        }
        fields.extend(changes.clone());
        rules::required(o, &fields, &self.settings)?;
        rules::apply(self, o, &mut fields, &changes)?;
        let id = self.store.new_id(o.prefix);
        fields.insert("Id".into(), json!(id));
        stamp(&mut fields, o, actor, now, true);
        self.store.put(
            id.clone(),
            Row {
                object: o.name,
                fields,
                deleted: false,
            },
        );
        Ok(id)
    }

    /// Changes a live record (`PATCH`).
    pub(crate) fn update(
        &mut self,
        o: &'static Object,
        id: &str,
        body: &Map<String, Value>,
        actor: &str,
        now: OffsetDateTime,
        via: Via,
    ) -> Result<(), SfError> {
        if via == Via::Api && !o.writable {
            return Err(SfError::bad(
                "INVALID_TYPE_FOR_OPERATION",
                format!("entity type cannot be updated: {}", o.label),
            ));
        }
        let id = self.live_id(o, id)?;
        let mut changes = rules::check_fields(o, body, &self.settings)?;
        let row = self.store.get(&id).expect("live_id found it");
        if row.fields.get("HasOpportunityLineItem") == Some(&json!(true)) {
            // With products the amount is their sum: Salesforce ignores the write without an error.
            changes.remove("Amount");
        }
        let mut fields = row.fields.clone();
        fields.extend(changes.clone());
        rules::required(o, &fields, &self.settings)?;
        rules::apply(self, o, &mut fields, &changes)?;
        stamp(&mut fields, o, actor, now, false);
        self.store.rows.get_mut(&id).expect("found above").fields = fields;
        Ok(())
    }

    /// Soft-deletes a record (and, as Salesforce cascades, an account's contacts and opportunities).
    pub(crate) fn delete(
        &mut self,
        o: &'static Object,
        id: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(), SfError> {
        if !o.has("IsDeleted") {
            return Err(SfError::bad(
                "INVALID_TYPE_FOR_OPERATION",
                format!("entity type cannot be deleted: {}", o.label),
            ));
        }
        let id = self.live_id(o, id)?;
        let mut doomed = vec![id.clone()];
        if o.name == "Account" {
            doomed.extend(
                self.store
                    .rows
                    .iter()
                    .filter(|(_, r)| {
                        !r.deleted
                            && matches!(r.object, "Contact" | "Opportunity")
                            && r.fields.get("AccountId").and_then(Value::as_str) == Some(&id)
                    })
                    .map(|(id, _)| id.clone()),
            );
        }
        for id in doomed {
            let row = self.store.rows.get_mut(&id).expect("collected above");
            let o = schema::object(row.object).expect("rows have known objects");
            row.deleted = true;
            row.fields.insert("IsDeleted".into(), json!(true));
            // Deletes move SystemModstamp, so a poller reading queryAll sees them.
            stamp(&mut row.fields, o, actor, now, false);
        }
        Ok(())
    }

    /// The 18-character id of a live record of `o`, or the REST API's error.
    pub(crate) fn live_id(&self, o: &Object, id: &str) -> Result<String, SfError> {
        let id = ids::normalize(id).ok_or_else(SfError::not_found)?;
        match self.store.get(&id) {
            Some(row) if row.object == o.name && row.deleted => Err(SfError::new(
                StatusCode::NOT_FOUND,
                "ENTITY_IS_DELETED",
                "entity is deleted",
            )),
            Some(row) if row.object == o.name => Ok(id),
            _ => Err(SfError::not_found()),
        }
    }

    pub(crate) fn corporate_currency(&self) -> String {
        self.store
            .live(&schema::CURRENCY_TYPE)
            .find(|(_, r)| r.fields.get("IsCorporate") == Some(&json!(true)))
            .and_then(|(_, r)| r.fields.get("IsoCode").and_then(Value::as_str))
            .unwrap_or("USD")
            .to_string()
    }

    /// A record as the REST API returns it: `attributes`, then the fields asked for (all the org has
    /// when `None`), missing values as `null`.
    pub(crate) fn render(
        &self,
        o: &'static Object,
        id: &str,
        only: Option<&[&'static schema::Field]>,
        version: u32,
    ) -> Value {
        let row = self.store.get(id);
        let mut out = Map::new();
        out.insert("attributes".into(), attributes(o.name, id, version));
        let all: Vec<_> = o.fields_in(&self.settings).collect();
        for field in only.unwrap_or(&all) {
            let value = row
                .and_then(|r| r.fields.get(field.name))
                .cloned()
                .unwrap_or(Value::Null);
            out.insert(field.name.to_string(), value);
        }
        Value::Object(out)
    }
}

pub(crate) fn attributes(object: &str, id: &str, version: u32) -> Value {
    json!({ "type": object, "url": format!("/services/data/v{version}.0/sobjects/{object}/{id}") })
}

/// Whether a value counts as absent for a required field.
pub(crate) fn blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}
