//! How a stored row reads back: every column, lookups as `_x_value`, its etag, and the
//! annotations (formatted values, lookup names) a `Prefer` header asks for.

use super::{Link, Row, State, label};
use crate::dataverse::schema::{self, Column, Kind, TRANSACTION_CURRENCY, Table};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// `2025-09-30T10:00:00Z`, as Dataverse writes date-times.
pub(crate) fn format_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

impl State {
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
        let table = schema::table(link.set)?;
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
    fn money_is_grouped() {
        assert_eq!(grouped(125000.0), "125,000.00");
        assert_eq!(grouped(999.5), "999.50");
        assert_eq!(grouped(-1234567.891), "-1,234,567.89");
    }
}
