//! Runs, their steps and leases.
//!
//! Workers claim due runs with a lease. On PostgreSQL the claim is `FOR UPDATE SKIP LOCKED`, so several
//! instances share one queue without taking the same run; on SQLite one statement is atomic. A worker
//! that dies leaves its lease to expire, and the run is claimed again. Every write a worker makes about
//! a run checks that it still holds the lease.

use super::{Store, StoreError, on_pool};
use crate::domain::flows::Flow;
use crate::domain::runs::{RunStatus, RunTrigger, StepOutcome};
use serde_json::Value;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct NewRun {
    pub flow: Flow,
    pub trigger: RunTrigger,
    pub input: Value,
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
    pub input: Value,
    pub record_id: Option<String>,
    pub parent_run_id: Option<i64>,
    pub resubmitted_from: Option<i64>,
    pub attempts: i64,
    pub outcome: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewStep {
    pub name: String,
    pub outcome: StepOutcome,
    pub detail: String,
    pub api_calls: i64,
    pub duration_ms: i64,
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
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// Why a run cannot be resubmitted, in words for the admin who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResubmitRefusal {
    #[error("There is no run {0}.")]
    NotFound(i64),
    #[error("Run {id} is {status}: only failed or skipped runs can be resubmitted.")]
    NotFinishedUnsuccessfully { id: i64, status: &'static str },
    #[error("Run {id} ran inside run {parent}: resubmit run {parent} instead.")]
    ChildRun { id: i64, parent: i64 },
    #[error("Run {id} was already resubmitted, as run {again}.")]
    AlreadyResubmitted { id: i64, again: i64 },
}

/// Which runs a list shows. Every field narrows; none means all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub flow: Option<Flow>,
    pub status: Option<RunStatus>,
    pub record_id: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
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
}

const COLUMNS: &str = "id, flow, status, trigger_kind, input, record_id, parent_run_id, resubmitted_from, \
                       attempts, outcome, created_at, finished_at";

impl TryFrom<Row> for Run {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Run, StoreError> {
        let corrupt =
            |what: &str, v: &str| StoreError::Corrupt(format!("run {}: {what} {v:?}", r.id));
        Ok(Run {
            id: r.id,
            flow: Flow::from_code(&r.flow).ok_or_else(|| corrupt("flow", &r.flow))?,
            status: RunStatus::from_code(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            trigger: RunTrigger::from_code(&r.trigger_kind)
                .ok_or_else(|| corrupt("trigger", &r.trigger_kind))?,
            input: serde_json::from_str(&r.input).map_err(|e| corrupt("input", &e.to_string()))?,
            record_id: r.record_id,
            parent_run_id: r.parent_run_id,
            resubmitted_from: r.resubmitted_from,
            attempts: i64::from(r.attempts),
            outcome: r.outcome,
            created_at: r.created_at,
            finished_at: r.finished_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct StepRow {
    seq: i32,
    name: String,
    outcome: String,
    detail: String,
    api_calls: i32,
    duration_ms: i64,
    at: OffsetDateTime,
}

/// A new run: queued and due at once, or settled (finished) from the start.
const INSERT_RUN: &str =
    "INSERT INTO runs (flow, status, trigger_kind, input, record_id, parent_run_id,
                                  resubmitted_from, not_before, outcome, created_at, finished_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10) RETURNING id";

/// [`INSERT_RUN`] bound for `run` at `at`, ready for any executor (pool or transaction).
macro_rules! insert_run {
    ($run:expr, $at:expr) => {{
        let (run, at): (&NewRun, OffsetDateTime) = ($run, $at);
        let (status, outcome, finished) = match &run.settled {
            Some((status, outcome)) => (*status, Some(outcome.clone()), Some(at)),
            None => (RunStatus::Queued, None, None),
        };
        sqlx::query_scalar::<_, i64>(INSERT_RUN)
            .bind(run.flow.as_code())
            .bind(status.as_code())
            .bind(run.trigger.as_code())
            .bind(run.input.to_string())
            .bind(run.record_id.clone())
            .bind(run.parent_run_id)
            .bind(run.resubmitted_from)
            .bind(at)
            .bind(outcome)
            .bind(finished)
    }};
}

/// The WHERE clause of a filter, with `$n` numbered from `first`.
fn filter_sql(f: &RunFilter, first: usize) -> String {
    let mut clauses = Vec::new();
    let mut n = first;
    let mut next = |column: &str, op: &str| {
        clauses.push(format!("{column} {op} ${n}"));
        n += 1;
    };
    if f.flow.is_some() {
        next("flow", "=");
    }
    if f.status.is_some() {
        next("status", "=");
    }
    if f.record_id.is_some() {
        next("record_id", "=");
    }
    if f.since.is_some() {
        next("created_at", ">=");
    }
    if f.until.is_some() {
        next("created_at", "<");
    }
    if clauses.is_empty() {
        "1 = 1".into()
    } else {
        clauses.join(" AND ")
    }
}

/// Binds a filter's values in the order [`filter_sql`] numbered them.
macro_rules! bind_filter {
    ($q:expr, $f:expr, $backend:expr) => {{
        use super::{Backend, sqlite_time_bound};
        let mut q = $q;
        if let Some(flow) = $f.flow {
            q = q.bind(flow.as_code());
        }
        if let Some(status) = $f.status {
            q = q.bind(status.as_code());
        }
        if let Some(record) = &$f.record_id {
            q = q.bind(record.clone());
        }
        for bound in [$f.since, $f.until].into_iter().flatten() {
            q = match $backend {
                Backend::Sqlite => q.bind(sqlite_time_bound(bound)),
                Backend::Postgres => q.bind(bound),
            };
        }
        q
    }};
}

impl Store {
    /// Queues a run (or records it settled), due now.
    pub async fn enqueue_run(&self, run: &NewRun, at: OffsetDateTime) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |p| insert_run!(run, at).fetch_one(p).await)?)
    }

    /// Records a run that starts at once, held by `owner` (a run an admin waits for, or a child run
    /// executed inside its parent).
    pub async fn start_run(
        &self,
        run: &NewRun,
        owner: &str,
        lease_until: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<Run, StoreError> {
        let sql = format!(
            "INSERT INTO runs (flow, status, trigger_kind, input, record_id, parent_run_id, resubmitted_from,
                               attempts, not_before, lease_owner, lease_until, created_at, started_at)
             VALUES ($1, 'running', $2, $3, $4, $5, $6, 1, $7, $8, $9, $7, $7) RETURNING {COLUMNS}"
        );
        let row: Result<Row, sqlx::Error> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(run.flow.as_code())
            .bind(run.trigger.as_code())
            .bind(run.input.to_string())
            .bind(&run.record_id)
            .bind(run.parent_run_id)
            .bind(run.resubmitted_from)
            .bind(at)
            .bind(owner)
            .bind(lease_until)
            .fetch_one(p)
            .await);
        match row {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Busy(format!(
                "a run of this flow is already working on {}",
                run.record_id.as_deref().unwrap_or("this record")
            ))),
            other => Run::try_from(other?),
        }
    }

    /// Queues the run an inbox event calls for and marks the event processed, together: an event is
    /// turned into a run exactly once, even if the process dies in between.
    pub async fn enqueue_from_inbox(
        &self,
        inbox_id: i64,
        run: &NewRun,
        at: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        macro_rules! body {
            ($p:ident) => {{
                let mut tx = $p.begin().await?;
                let claimed = sqlx::query(
                    "UPDATE inbox SET processed_at = $1 WHERE id = $2 AND processed_at IS NULL",
                )
                .bind(at)
                .bind(inbox_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let id = insert_run!(run, at).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(id))
            }};
        }
        match &self.pool {
            super::Pool::Sqlite(p) => body!(p),
            super::Pool::Postgres(p) => body!(p),
        }
    }

    /// Inbox events not yet turned into runs (after a crash between storing and queueing).
    pub async fn unprocessed_inbox(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT id, event_name, referral_id FROM inbox WHERE processed_at IS NULL ORDER BY id LIMIT 500"
        )
        .fetch_all(p)
        .await
        })?)
    }

    /// Claims the next due run for `owner` until `lease_until`: a queued run whose time has come, or a
    /// running one whose lease expired (its worker died).
    pub async fn claim_run(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Run>, StoreError> {
        let pick = match self.backend() {
            super::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE runs SET status = 'running', lease_owner = $1, lease_until = $2,
                    attempts = attempts + 1, started_at = COALESCE(started_at, $3)
             WHERE id = (SELECT id FROM runs
                         WHERE ((status = 'queued' AND not_before <= $3)
                                OR (status = 'running' AND lease_until < $3))
                           -- Not while another run of the same flow works on the same record.
                           AND NOT EXISTS (SELECT 1 FROM runs busy
                                           WHERE busy.record_id = runs.record_id AND busy.flow = runs.flow
                                             AND busy.status = 'running' AND busy.id <> runs.id
                                             AND busy.parent_run_id IS NULL)
                         ORDER BY not_before, id LIMIT 1 {pick})
             RETURNING {COLUMNS}"
        );
        let row: Result<Option<Row>, sqlx::Error> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(p)
            .await);
        match row {
            // Another instance claimed a run of the same record at the same moment: nothing for us now.
            Err(e) if is_unique_violation(&e) => Ok(None),
            other => other?.map(Run::try_from).transpose(),
        }
    }

    /// When the next queued run is due, if any (so an idle worker knows how long to wait).
    pub async fn next_run_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
            "SELECT MIN(CASE WHEN status = 'queued' THEN not_before ELSE lease_until END)
             FROM runs WHERE status IN ('queued', 'running')
               -- A run waiting for its record's running run is due when that one ends (or its lease does).
               AND NOT (status = 'queued' AND EXISTS (
                   SELECT 1 FROM runs busy
                   WHERE busy.record_id = runs.record_id AND busy.flow = runs.flow
                     AND busy.status = 'running' AND busy.parent_run_id IS NULL))"
        )
        .fetch_one(p)
        .await
        })?)
    }

    pub async fn record_step(
        &self,
        run_id: i64,
        step: &NewStep,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO run_steps (run_id, seq, name, outcome, detail, api_calls, duration_ms, at)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_steps WHERE run_id = $1),
                     $2, $3, $4, $5, $6, $7)"
        )
        .bind(run_id)
        .bind(&step.name)
        .bind(step.outcome.as_code())
        .bind(&step.detail)
        .bind(step.api_calls as i32)
        .bind(step.duration_ms)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Ends a run the worker still holds. False when the lease was lost (another worker took it over).
    pub async fn finish_run(
        &self,
        run_id: i64,
        owner: &str,
        status: RunStatus,
        outcome: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
            "UPDATE runs SET status = $1, outcome = $2, finished_at = $3, lease_owner = NULL, lease_until = NULL
             WHERE id = $4 AND lease_owner = $5 AND status = 'running'"
        )
        .bind(status.as_code())
        .bind(outcome)
        .bind(at)
        .bind(run_id)
        .bind(owner)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Puts a held run back in the queue until `not_before` (a transient failure, to be retried).
    pub async fn retry_run_later(
        &self,
        run_id: i64,
        owner: &str,
        not_before: OffsetDateTime,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
            "UPDATE runs SET status = 'queued', not_before = $1, outcome = $2, lease_owner = NULL, lease_until = NULL
             WHERE id = $3 AND lease_owner = $4 AND status = 'running'"
        )
        .bind(not_before)
        .bind(outcome)
        .bind(run_id)
        .bind(owner)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    pub async fn run(&self, id: i64) -> Result<Option<Run>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM runs WHERE id = $1");
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(Run::try_from).transpose()
    }

    pub async fn run_steps(&self, id: i64) -> Result<Vec<Step>, StoreError> {
        let rows: Vec<StepRow> = on_pool!(self, |p| sqlx::query_as(
            "SELECT seq, name, outcome, detail, api_calls, duration_ms, at FROM run_steps
             WHERE run_id = $1 ORDER BY seq"
        )
        .bind(id)
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|r| {
                Ok(Step {
                    seq: i64::from(r.seq),
                    outcome: StepOutcome::from_code(&r.outcome).ok_or_else(|| {
                        StoreError::Corrupt(format!("step outcome {:?}", r.outcome))
                    })?,
                    name: r.name,
                    detail: r.detail,
                    api_calls: i64::from(r.api_calls),
                    duration_ms: r.duration_ms,
                    at: r.at,
                })
            })
            .collect()
    }

    /// Runs started by `id` (child runs) or made from it (resubmissions).
    pub async fn related_runs(&self, id: i64) -> Result<Vec<Run>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM runs WHERE parent_run_id = $1 OR resubmitted_from = $1 ORDER BY id"
        );
        let rows: Vec<Row> = on_pool!(self, |p| sqlx::query_as(&sql).bind(id).fetch_all(p).await)?;
        rows.into_iter().map(Run::try_from).collect()
    }

    /// A page of runs, newest first, strictly older than `before` (keyset pagination: as fast on the
    /// thousandth page as on the first).
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let clause = filter_sql(filter, 3);
        let sql = format!(
            "SELECT {COLUMNS} FROM runs WHERE id < $1 AND {clause} ORDER BY id DESC LIMIT $2"
        );
        let rows: Vec<Row> = on_pool!(self, |p| bind_filter!(
            sqlx::query_as(&sql)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit),
            filter,
            self.backend()
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(Run::try_from).collect()
    }

    /// Queues a new run from a failed or skipped one's input, linked to it; or says why not.
    pub async fn resubmit_run(
        &self,
        id: i64,
        at: OffsetDateTime,
    ) -> Result<Result<i64, ResubmitRefusal>, StoreError> {
        let Some(run) = self.run(id).await? else {
            return Ok(Err(ResubmitRefusal::NotFound(id)));
        };
        if !matches!(run.status, RunStatus::Failed | RunStatus::Skipped) {
            return Ok(Err(ResubmitRefusal::NotFinishedUnsuccessfully {
                id,
                status: run.status.as_code(),
            }));
        }
        if let Some(parent) = run.parent_run_id {
            return Ok(Err(ResubmitRefusal::ChildRun { id, parent }));
        }
        if let Some(again) = self.resubmission_of(id).await? {
            return Ok(Err(ResubmitRefusal::AlreadyResubmitted { id, again }));
        }
        let new = NewRun {
            flow: run.flow,
            trigger: RunTrigger::Resubmit,
            input: run.input,
            record_id: run.record_id,
            parent_run_id: None,
            resubmitted_from: Some(run.id),
            settled: None,
        };
        match self.enqueue_run(&new, at).await {
            Ok(again) => Ok(Ok(again)),
            // Another click or instance got there first (the unique index on resubmitted_from).
            Err(StoreError::Database(e)) if is_unique_violation(&e) => {
                let again = self.resubmission_of(id).await?.unwrap_or_default();
                Ok(Err(ResubmitRefusal::AlreadyResubmitted { id, again }))
            }
            Err(e) => Err(e),
        }
    }

    /// The run `id` was resubmitted as, if it was.
    async fn resubmission_of(&self, id: i64) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT id FROM runs WHERE resubmitted_from = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?)
    }

    /// Resubmits every failed run matching `filter` that was not resubmitted yet and did not run inside
    /// another (at most `cap`, oldest first); returns (original, resubmission) pairs.
    pub async fn resubmit_failed(
        &self,
        filter: &RunFilter,
        cap: i64,
        at: OffsetDateTime,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let filter = RunFilter {
            status: Some(RunStatus::Failed),
            ..filter.clone()
        };
        let clause = filter_sql(&filter, 2);
        let sql = format!(
            "SELECT id FROM runs WHERE {clause} AND parent_run_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM runs again WHERE again.resubmitted_from = runs.id)
             ORDER BY id LIMIT $1"
        );
        let ids: Vec<i64> = on_pool!(self, |p| bind_filter!(
            sqlx::query_scalar(&sql).bind(cap),
            &filter,
            self.backend()
        )
        .fetch_all(p)
        .await)?;
        let mut new = Vec::with_capacity(ids.len());
        for id in ids {
            if let Ok(n) = self.resubmit_run(id, at).await? {
                new.push((id, n));
            }
        }
        Ok(new)
    }

    /// How many runs match `filter`.
    pub async fn count_runs(&self, filter: &RunFilter) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) FROM runs WHERE {}", filter_sql(filter, 1));
        Ok(on_pool!(self, |p| bind_filter!(
            sqlx::query_scalar(&sql),
            filter,
            self.backend()
        )
        .fetch_one(p)
        .await)?)
    }

    /// A run of `flow` for `record_id` still waiting to start, if any (so a change seen twice queues
    /// one run).
    pub async fn queued_run(&self, flow: Flow, record_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
            "SELECT id FROM runs WHERE record_id = $1 AND flow = $2 AND status = 'queued' ORDER BY id LIMIT 1"
        )
        .bind(record_id)
        .bind(flow.as_code())
        .fetch_optional(p)
        .await
        })?)
    }

    /// Stores many runs in one transaction: volume for benchmarks and tests.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn seed_runs(&self, runs: &[(NewRun, OffsetDateTime)]) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for (run, at) in runs {
                insert_run!(run, *at).fetch_one(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Counts API calls made with a connection, by UTC day.
    pub async fn count_api_calls(
        &self,
        system: &str,
        calls: i64,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let day = at.to_offset(time::UtcOffset::UTC).date().to_string();
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO api_calls (system, day, calls) VALUES ($1, $2, $3)
             ON CONFLICT (system, day) DO UPDATE SET calls = api_calls.calls + excluded.calls"
        )
        .bind(system)
        .bind(&day)
        .bind(calls)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// API calls made with a connection on the UTC day of `at`.
    pub async fn api_calls_on(&self, system: &str, at: OffsetDateTime) -> Result<i64, StoreError> {
        let day = at.to_offset(time::UtcOffset::UTC).date().to_string();
        let n: Option<i64> = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT calls FROM api_calls WHERE system = $1 AND day = $2"
        )
        .bind(system)
        .bind(&day)
        .fetch_optional(p)
        .await)?;
        Ok(n.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;
    use serde_json::json;
    use time::Duration;

    /// Now, to the microsecond PostgreSQL keeps.
    fn now() -> OffsetDateTime {
        let t = OffsetDateTime::now_utc();
        t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
    }

    fn new_run(record: &str) -> NewRun {
        NewRun {
            flow: Flow::PartnerCenterToCrm,
            trigger: RunTrigger::Webhook,
            input: json!({ "referral_id": record }),
            record_id: Some(record.into()),
            parent_run_id: None,
            resubmitted_from: None,
            settled: None,
        }
    }

    #[tokio::test]
    async fn a_run_is_claimed_once_and_a_lost_lease_is_taken_over() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let id = store.enqueue_run(&new_run("r1"), now).await.unwrap();
        let lease = now + Duration::seconds(60);
        let a = store.claim_run("a", now, lease).await.unwrap().unwrap();
        assert_eq!((a.id, a.status, a.attempts), (id, RunStatus::Running, 1));
        assert!(store.claim_run("b", now, lease).await.unwrap().is_none());

        // Worker a dies; after its lease, b takes the run, and a can no longer finish it.
        let later = lease + Duration::seconds(1);
        let b = store
            .claim_run("b", later, later + Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((b.id, b.attempts), (id, 2));
        assert!(
            !store
                .finish_run(id, "a", RunStatus::Succeeded, "", later)
                .await
                .unwrap()
        );
        assert!(
            store
                .finish_run(id, "b", RunStatus::Succeeded, "done", later)
                .await
                .unwrap()
        );
        let done = store.run(id).await.unwrap().unwrap();
        assert_eq!(done.status, RunStatus::Succeeded);
        assert_eq!(done.outcome.as_deref(), Some("done"));
    }

    #[tokio::test]
    async fn retries_wait_their_time_and_failed_runs_resubmit_linked() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let id = store.enqueue_run(&new_run("r1"), now).await.unwrap();
        let lease = now + Duration::seconds(60);
        store.claim_run("w", now, lease).await.unwrap().unwrap();
        store
            .record_step(
                id,
                &NewStep {
                    name: "Get referral".into(),
                    outcome: StepOutcome::Retry,
                    detail: "429".into(),
                    api_calls: 1,
                    duration_ms: 12,
                },
                now,
            )
            .await
            .unwrap();
        let retry_at = now + Duration::seconds(5);
        assert!(
            store
                .retry_run_later(id, "w", retry_at, "throttled")
                .await
                .unwrap()
        );
        assert!(
            store.claim_run("w", now, lease).await.unwrap().is_none(),
            "not before its time"
        );
        assert_eq!(store.next_run_due().await.unwrap(), Some(retry_at));
        store
            .claim_run("w", retry_at, lease + Duration::seconds(5))
            .await
            .unwrap()
            .unwrap();
        store
            .record_step(
                id,
                &NewStep {
                    name: "Get referral".into(),
                    outcome: StepOutcome::Failed,
                    detail: "403".into(),
                    api_calls: 1,
                    duration_ms: 10,
                },
                retry_at,
            )
            .await
            .unwrap();
        store
            .finish_run(id, "w", RunStatus::Failed, "denied", retry_at)
            .await
            .unwrap();
        let steps = store.run_steps(id).await.unwrap();
        assert_eq!(steps.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(steps[1].outcome, StepOutcome::Failed);

        let again = store.resubmit_run(id, retry_at).await.unwrap().unwrap();
        assert_eq!(
            store.resubmit_run(id, retry_at).await.unwrap(),
            Err(ResubmitRefusal::AlreadyResubmitted { id, again }),
            "a second click queues nothing"
        );
        let again = store.run(again).await.unwrap().unwrap();
        assert_eq!(again.resubmitted_from, Some(id));
        assert_eq!(again.trigger, RunTrigger::Resubmit);
        assert_eq!(again.input, json!({ "referral_id": "r1" }));
        assert_eq!(store.related_runs(id).await.unwrap()[0].id, again.id);
        assert_eq!(
            store.resubmit_run(again.id, retry_at).await.unwrap(),
            Err(ResubmitRefusal::NotFinishedUnsuccessfully {
                id: again.id,
                status: "queued"
            }),
            "only failed or skipped runs"
        );
        assert_eq!(
            store.resubmit_run(i64::MAX, retry_at).await.unwrap(),
            Err(ResubmitRefusal::NotFound(i64::MAX))
        );
    }

    #[tokio::test]
    async fn time_filters_hold_to_the_fraction_of_a_second() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let minute = time::macros::datetime!(2026-11-30 14:05:00 UTC);
        let mut ids = Vec::new();
        // Just before, exactly on, inside (with a fraction), at the end (excluded), after.
        for at in [
            minute - Duration::milliseconds(300),
            minute,
            minute + Duration::milliseconds(482),
            minute + Duration::seconds(59) + Duration::milliseconds(900),
            minute + Duration::minutes(1),
            minute + Duration::minutes(1) + Duration::milliseconds(1),
        ] {
            ids.push(store.enqueue_run(&new_run("r"), at).await.unwrap());
        }
        let window = RunFilter {
            since: Some(minute),
            until: Some(minute + Duration::minutes(1)),
            ..Default::default()
        };
        let found: Vec<i64> = store
            .list_runs(&window, None, 10)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(found, vec![ids[3], ids[2], ids[1]]);
    }

    #[tokio::test]
    async fn lists_filter_and_page_by_keyset() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let start = now();
        let mut ids = Vec::new();
        for i in 0..7 {
            let at = start + Duration::seconds(i);
            let mut run = new_run(if i % 2 == 0 { "even" } else { "odd" });
            if i == 3 {
                run.settled = Some((RunStatus::Failed, "boom".into()));
            }
            ids.push(store.enqueue_run(&run, at).await.unwrap());
        }
        let all = RunFilter::default();
        let first = store.list_runs(&all, None, 3).await.unwrap();
        assert_eq!(
            first.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![ids[6], ids[5], ids[4]]
        );
        let second = store.list_runs(&all, Some(first[2].id), 3).await.unwrap();
        assert_eq!(
            second.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![ids[3], ids[2], ids[1]]
        );

        let even = RunFilter {
            record_id: Some("even".into()),
            ..Default::default()
        };
        assert_eq!(store.list_runs(&even, None, 10).await.unwrap().len(), 4);
        let failed = RunFilter {
            status: Some(RunStatus::Failed),
            ..Default::default()
        };
        assert_eq!(
            store.list_runs(&failed, None, 10).await.unwrap()[0].id,
            ids[3]
        );
        let window = RunFilter {
            since: Some(start + Duration::seconds(2)),
            until: Some(start + Duration::seconds(4)),
            flow: Some(Flow::PartnerCenterToCrm),
            ..Default::default()
        };
        assert_eq!(
            store
                .list_runs(&window, None, 10)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            vec![ids[3], ids[2]]
        );
        assert_eq!(store.count_runs(&even).await.unwrap(), 4);
        assert_eq!(store.count_runs(&window).await.unwrap(), 2);
        let resubmitted = store.resubmit_failed(&even, 100, start).await.unwrap();
        assert!(resubmitted.is_empty(), "the failed run is odd");
        let resubmitted = store
            .resubmit_failed(&RunFilter::default(), 100, start)
            .await
            .unwrap();
        assert_eq!(resubmitted.len(), 1);
        assert!(
            store
                .resubmit_failed(&RunFilter::default(), 100, start)
                .await
                .unwrap()
                .is_empty(),
            "a failed run already resubmitted is not queued again"
        );
    }

    #[tokio::test]
    async fn runs_of_one_record_take_turns() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let lease = now + Duration::minutes(5);
        let first = store.enqueue_run(&new_run("r1"), now).await.unwrap();
        let second = store.enqueue_run(&new_run("r1"), now).await.unwrap();
        let other = store.enqueue_run(&new_run("r2"), now).await.unwrap();
        let claim = |owner: &'static str| {
            let store = store.clone();
            async move {
                store
                    .claim_run(owner, now, lease)
                    .await
                    .unwrap()
                    .map(|r| r.id)
            }
        };
        assert_eq!(claim("a").await, Some(first));
        assert_eq!(claim("b").await, Some(other), "r1 waits for its first run");
        assert_eq!(claim("c").await, None);
        assert_eq!(
            store.next_run_due().await.unwrap(),
            Some(lease),
            "the waiting run is not due before the running one's lease ends"
        );
        let mut now_run = new_run("r1");
        now_run.trigger = RunTrigger::Manual;
        assert!(
            matches!(
                store.start_run(&now_run, "d", lease, now).await,
                Err(StoreError::Busy(_))
            ),
            "a run started at once waits its turn too"
        );
        store
            .finish_run(first, "a", RunStatus::Succeeded, "done", now)
            .await
            .unwrap();
        assert_eq!(claim("c").await, Some(second));
    }

    #[tokio::test]
    async fn a_child_run_is_resubmitted_through_its_parent() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let at = now();
        let mut parent = new_run("r1");
        parent.settled = Some((RunStatus::Failed, "the child failed".into()));
        let parent = store.enqueue_run(&parent, at).await.unwrap();
        let mut child = new_run("r1");
        child.flow = Flow::Helper;
        child.trigger = RunTrigger::Child;
        child.parent_run_id = Some(parent);
        child.settled = Some((RunStatus::Failed, "denied".into()));
        let child = store.enqueue_run(&child, at).await.unwrap();
        assert_eq!(
            store.resubmit_run(child, at).await.unwrap(),
            Err(ResubmitRefusal::ChildRun { id: child, parent })
        );
        let again = store
            .resubmit_failed(&RunFilter::default(), 100, at)
            .await
            .unwrap();
        assert_eq!(again.len(), 1, "the parent only");
        assert_eq!(again[0].0, parent);
        assert_eq!(
            store
                .run(again[0].1)
                .await
                .unwrap()
                .unwrap()
                .resubmitted_from,
            Some(parent)
        );
    }

    #[tokio::test]
    async fn api_calls_are_counted_per_system_per_utc_day() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let day = time::macros::datetime!(2026-11-22 23:59:00 UTC);
        store
            .count_api_calls("partner_center", 2, day)
            .await
            .unwrap();
        store
            .count_api_calls("partner_center", 1, day)
            .await
            .unwrap();
        store.count_api_calls("dynamics365", 5, day).await.unwrap();
        let next = day + Duration::minutes(2);
        store
            .count_api_calls("partner_center", 1, next)
            .await
            .unwrap();
        assert_eq!(store.api_calls_on("partner_center", day).await.unwrap(), 3);
        assert_eq!(store.api_calls_on("dynamics365", day).await.unwrap(), 5);
        assert_eq!(store.api_calls_on("partner_center", next).await.unwrap(), 1);
    }
}
