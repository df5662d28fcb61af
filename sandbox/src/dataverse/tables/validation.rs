//! What a write body may say: known columns of the right type and length, choices among their
//! options, lookups bound to existing rows of an allowed table.

use super::{Actor, Change, Link, State, bad, not_found, number, round2};
use crate::dataverse::schema::{self, Access, Column, Kind, Table, Target};
use crate::dataverse::{DvError, codes};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use time::macros::format_description;

pub(crate) fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub(crate) fn valid_date(s: &str) -> bool {
    s.len() == 10 && time::Date::parse(s, format_description!("[year]-[month]-[day]")).is_ok()
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
    fn exists(&self, target: &Target, id: &str, actor: &Actor) -> bool {
        match target.set {
            "systemusers" => actor
                .system_users
                .iter()
                .any(|u| u.eq_ignore_ascii_case(id)),
            set => schema::table(set).and_then(|t| self.get(t, id)).is_some(),
        }
    }

    /// The columns a write body sets, checked: names, types, lengths, choices, lookups.
    pub(super) fn parse_changes(
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
}
