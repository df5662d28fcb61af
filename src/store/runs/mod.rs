//! Runs and their steps: the types every part of the run store shares, and the row they are read from.
//!
//! Split by who asks: workers move runs through the queue ([`queue`]), the dashboard reads them back
//! ([`history`]) and an admin resubmits failed ones ([`resubmission`]).

mod history;
mod notify;
mod progress;
mod queue;
mod resubmission;

pub use history::RunFilter;
pub use progress::RecordRuns;
pub use resubmission::ResubmitRefusal;

use super::StoreError;
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::runs::{RunInput, RunStatus, RunTrigger, StepOutcome};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct NewRun {
    pub flow: Flow,
    pub trigger: RunTrigger,
    pub input: RunInput,
    pub record_id: Option<String>,
    pub parent_run_id: Option<i64>,
    pub resubmitted_from: Option<i64>,
    /// Created final (e.g. skipped because the flow is off), with this outcome.
    pub settled: Option<(RunStatus, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub id: i64,
    pub flow: Flow,
    pub status: RunStatus,
    pub trigger: RunTrigger,
    pub input: RunInput,
    pub record_id: Option<String>,
    pub parent_run_id: Option<i64>,
    pub resubmitted_from: Option<i64>,
    pub attempts: i64,
    pub outcome: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    /// The connection a paused run waits for.
    pub paused_for: Option<System>,
    /// API calls the run made, as of when it last ended or went back to the queue.
    pub calls: RunCalls,
}

/// API calls a run made (its child runs count their own), by the system they went to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCalls {
    pub partner_center: i64,
    pub crm: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewStep {
    pub name: String,
    pub outcome: StepOutcome,
    pub detail: String,
    pub api_calls: i64,
    /// Where the calls went (none for a decision).
    pub system: Option<System>,
    pub duration_ms: i64,
    /// The attempt of the run that made the step (1 for the first claim).
    pub attempt: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub seq: i64,
    pub name: String,
    pub outcome: StepOutcome,
    pub detail: String,
    pub api_calls: i64,
    pub duration_ms: i64,
    pub at: OffsetDateTime,
    pub attempt: i64,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    flow: String,
    status: String,
    trigger_kind: String,
    input: String,
    record_id: Option<String>,
    parent_run_id: Option<i64>,
    resubmitted_from: Option<i64>,
    attempts: i32,
    outcome: Option<String>,
    created_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    paused_for: Option<String>,
    partner_center_calls: i32,
    crm_calls: i32,
}

const COLUMNS: &str = "id, flow, status, trigger_kind, input, record_id, parent_run_id, resubmitted_from, \
                       attempts, outcome, created_at, finished_at, paused_for, partner_center_calls, crm_calls";

/// Sets a run's call totals from its steps, in the UPDATE that ends it or puts it back in the queue:
/// a list reads them from the run's row, and no call costs a write more than its step.
pub(super) const SETTLE_CALLS: &str = "partner_center_calls = (SELECT COALESCE(SUM(s.api_calls), 0) \
     FROM run_steps s WHERE s.run_id = runs.id AND s.system = 'partner_center'), \
     crm_calls = (SELECT COALESCE(SUM(s.api_calls), 0) \
     FROM run_steps s WHERE s.run_id = runs.id AND s.system <> 'partner_center')";

/// How a status is stored: a paused run is a queued one with `paused_for` set (its own column, so the
/// queue's indexes and the one-running-run rule stay as they are).
pub(crate) fn stored_status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Paused => RunStatus::Queued.as_code(),
        other => other.as_code(),
    }
}

impl TryFrom<Row> for Run {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Run, StoreError> {
        let corrupt =
            |what: &str, v: &str| StoreError::Corrupt(format!("run {}: {what} {v:?}", r.id));
        let paused_for = match &r.paused_for {
            Some(code) => Some(System::from_code(code).ok_or_else(|| corrupt("paused_for", code))?),
            None => None,
        };
        let status = match RunStatus::from_code(&r.status) {
            Some(RunStatus::Queued) if paused_for.is_some() => RunStatus::Paused,
            Some(RunStatus::Paused) | None => return Err(corrupt("status", &r.status)),
            Some(status) => status,
        };
        Ok(Run {
            id: r.id,
            flow: Flow::from_code(&r.flow).ok_or_else(|| corrupt("flow", &r.flow))?,
            status,
            trigger: RunTrigger::from_code(&r.trigger_kind)
                .ok_or_else(|| corrupt("trigger", &r.trigger_kind))?,
            input: serde_json::from_str(&r.input).map_err(|_| corrupt("input", &r.input))?,
            record_id: r.record_id,
            parent_run_id: r.parent_run_id,
            resubmitted_from: r.resubmitted_from,
            attempts: i64::from(r.attempts),
            outcome: r.outcome,
            created_at: r.created_at,
            finished_at: r.finished_at,
            paused_for,
            calls: RunCalls {
                partner_center: i64::from(r.partner_center_calls),
                crm: i64::from(r.crm_calls),
            },
        })
    }
}

/// A new run: queued and due at once, or settled (finished) from the start.
pub(super) const INSERT_RUN: &str =
    "INSERT INTO runs (flow, status, trigger_kind, input, record_id, parent_run_id,
                                  resubmitted_from, not_before, outcome, created_at, finished_at, priority)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10, $11) RETURNING id";

/// [`INSERT_RUN`] bound for `run` at `at`, ready for any executor (pool or transaction). Paths are
/// spelled out because the inbox expands it too, outside this module.
macro_rules! insert_run {
    ($run:expr, $at:expr) => {{
        let (run, at): (&$crate::store::NewRun, ::time::OffsetDateTime) = ($run, $at);
        let (status, outcome, finished) = match &run.settled {
            Some((status, outcome)) => (*status, Some(outcome.clone()), Some(at)),
            None => ($crate::domain::runs::RunStatus::Queued, None, None),
        };
        sqlx::query_scalar::<_, i64>($crate::store::runs::INSERT_RUN)
            .bind(run.flow.as_code())
            .bind(status.as_code())
            .bind(run.trigger.as_code())
            .bind(run.input.to_value().to_string())
            .bind(run.record_id.clone())
            .bind(run.parent_run_id)
            .bind(run.resubmitted_from)
            .bind(at)
            .bind(outcome)
            .bind(finished)
            .bind($crate::domain::budget::Urgency::of(run.trigger, &run.input).rank())
    }};
}
pub(super) use insert_run;
