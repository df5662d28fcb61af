//! Deep insert: a create whose body nests new related rows — a single-valued navigation property set
//! to an object (`"customerid_account": {…}`), a collection-valued one to an array
//! (`"contact_customer_accounts": […]`). Every row is made in one transaction: when one is refused,
//! none is kept. crm-apis.md does not cover it; Microsoft's Web API documentation ("Create related
//! table rows in one operation") does. Which error a nested row's refusal answers with is unconfirmed:
//! the emulator answers the nested row's own error.

use super::super::schema::{self, Kind, Table};
use super::{Actor, State, bad};
use crate::dataverse::{DvError, codes};
use serde_json::{Map, Value, json};

/// The collection-valued navigation properties the emulator knows: (entity set, property, the related
/// entity set, the related rows' navigation property back to the first).
const COLLECTIONS: &[(&str, &str, &str, &str)] = &[
    (
        "accounts",
        "contact_customer_accounts",
        "contacts",
        "parentcustomerid_account",
    ),
    (
        "accounts",
        "opportunity_customer_accounts",
        "opportunities",
        "customerid_account",
    ),
];

impl State {
    /// Creates a row and the related rows nested in its body; returns the row's id.
    pub(crate) fn create_deep(
        &mut self,
        table: &'static Table,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> Result<String, DvError> {
        let mut made = Vec::new();
        let created = self.create_nested(table, body, actor, &mut made);
        if created.is_err() {
            for (set, id) in made.iter().rev() {
                self.discard(set, id);
            }
        }
        created
    }

    fn create_nested(
        &mut self,
        table: &'static Table,
        body: &Map<String, Value>,
        actor: &Actor,
        made: &mut Vec<(&'static str, String)>,
    ) -> Result<String, DvError> {
        let unknown = |key: &str| {
            bad(
                codes::ODATA,
                format!(
                    "The property '{key}' does not exist on type '{}'. Make sure to only use property names that are defined by the type.",
                    table.type_name()
                ),
            )
        };
        let mut fields = Map::new();
        let mut collections = Vec::new();
        for (key, value) in body {
            match value {
                Value::Object(nested) => {
                    let target = table
                        .lookup_by_nav(key)
                        .and_then(|c| match c.kind {
                            Kind::Lookup(targets) => targets.iter().find(|t| t.nav == key),
                            _ => None,
                        })
                        .ok_or_else(|| unknown(key))?;
                    let related = schema::table(target.set).ok_or_else(|| unknown(key))?;
                    let id = self.create_nested(related, nested, actor, made)?;
                    fields.insert(
                        format!("{key}@odata.bind"),
                        json!(format!("/{}({id})", target.set)),
                    );
                }
                Value::Array(rows) => {
                    let (_, _, set, back) = COLLECTIONS
                        .iter()
                        .find(|(of, nav, ..)| *of == table.set && nav == key)
                        .ok_or_else(|| unknown(key))?;
                    let related = schema::table(set).ok_or_else(|| unknown(key))?;
                    collections.push((related, *back, rows));
                }
                _ => {
                    fields.insert(key.clone(), value.clone());
                }
            }
        }
        let id = self.create(table, None, &fields, actor)?;
        made.push((table.set, id.clone()));
        for (related, back, rows) in collections {
            for row in rows {
                let Value::Object(row) = row else {
                    return Err(bad(
                        codes::ODATA,
                        format!("A collection of {} takes objects.", related.set),
                    ));
                };
                let mut row = row.clone();
                row.insert(
                    format!("{back}@odata.bind"),
                    json!(format!("/{}({id})", table.set)),
                );
                self.create_nested(related, &row, actor, made)?;
            }
        }
        Ok(id)
    }

    /// Takes back a row made earlier in the same transaction (no deletion is logged: it never was).
    fn discard(&mut self, set: &'static str, id: &str) {
        self.take(set, id);
    }
}
