//! State and status codes: which pairs are valid, closed opportunities read-only, and what winning
//! or losing does to an opportunity.

use super::{Actor, Change, Row, State, Via, bad, label, not_found, number, round2, valid_date};
use crate::dataverse::schema::{Kind, OPPORTUNITY, OPPORTUNITY_STATUSES, Table};
use crate::dataverse::{DvError, codes};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

fn format_date(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// The default status of a state: the first listed for it.
pub(super) fn default_status(statuses: &[(i64, &str, i64)], state: i64) -> Option<i64> {
    statuses.iter().find(|s| s.2 == state).map(|s| s.0)
}

/// A table's states (value, label) and statuses (value, label, state).
type StateModel = (
    &'static [(i64, &'static str)],
    &'static [(i64, &'static str, i64)],
);

pub(super) fn state_kinds(table: &Table) -> Option<StateModel> {
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

impl State {
    /// State and status rules: valid pairs, closed opportunities read-only, closing by the actions.
    pub(super) fn apply_states(
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
        self.put(table.set, id, row);
        Ok(())
    }
}

/// The opportunity statuses of a state.
fn opportunity_statuses_of(state: i64) -> Vec<i64> {
    OPPORTUNITY_STATUSES
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
