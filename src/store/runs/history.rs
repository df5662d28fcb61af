//! Runs as the dashboard reads them back: one run with its steps and relatives, and filtered pages.
//!
//! The filter is written once here as SQL and binds, so a list, its count and a bulk resubmission agree
//! on which runs match.

use super::{COLUMNS, Row, Run, Step};
use crate::domain::flows::Flow;
use crate::domain::runs::{RunStatus, StepOutcome};
use crate::store::{Store, StoreError, on_pool};
use time::OffsetDateTime;

/// Which runs a list shows. Every field narrows; none means all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub flow: Option<Flow>,
    pub status: Option<RunStatus>,
    pub record_id: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// The WHERE clause of a filter, with `$n` numbered from `first`.
pub(super) fn filter_sql(f: &RunFilter, first: usize) -> String {
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
    // Queued and paused runs share the stored status (see `stored_status`).
    match f.status {
        Some(RunStatus::Paused) => clauses.push("paused_for IS NOT NULL".into()),
        Some(RunStatus::Queued) => clauses.push("paused_for IS NULL".into()),
        _ => {}
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
        use $crate::store::{Backend, sqlite_time_bound};
        let mut q = $q;
        if let Some(flow) = $f.flow {
            q = q.bind(flow.as_code());
        }
        if let Some(status) = $f.status {
            q = q.bind($crate::store::runs::stored_status(status));
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
pub(super) use bind_filter;

#[derive(sqlx::FromRow)]
struct StepRow {
    seq: i32,
    name: String,
    outcome: String,
    detail: String,
    api_calls: i32,
    duration_ms: i64,
    at: OffsetDateTime,
    attempt: i32,
}

impl Store {
    pub async fn run(&self, id: i64) -> Result<Option<Run>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM runs WHERE id = $1");
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(Run::try_from).transpose()
    }

    pub async fn run_steps(&self, id: i64) -> Result<Vec<Step>, StoreError> {
        let rows: Vec<StepRow> = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT seq, name, outcome, detail, api_calls, duration_ms, at, attempt FROM run_steps
             WHERE run_id = $1 ORDER BY seq"
        )
        .bind(id)
        .fetch_all(p)
        .await
        })?;
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
                    attempt: i64::from(r.attempt),
                })
            })
            .collect()
    }

    /// Runs two of whose attempts overlapped: a call made by an earlier attempt ended after a later attempt
    /// had begun (one run executed twice at once, which leases exist to prevent). For crash tests.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn runs_executed_concurrently(&self) -> Result<Vec<i64>, StoreError> {
        // A run's steps with those of the child runs it ran inside it (where most effects are made),
        // which carry the attempt of their parent.
        let rows: Vec<(i64, i32, i32, OffsetDateTime)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT t.id, s.attempt, s.api_calls, s.at FROM run_steps s
             JOIN runs r ON r.id = s.run_id
             JOIN runs t ON t.id = COALESCE(r.parent_run_id, r.id)
             WHERE t.attempts > 1 ORDER BY t.id"
        )
        .fetch_all(p)
        .await)?;
        let mut overlapped = Vec::new();
        for run in rows.chunk_by(|a, b| a.0 == b.0) {
            let began = |attempt: i32| run.iter().filter(|s| s.1 == attempt).map(|s| s.3).min();
            let twice = run.iter().any(|early| {
                early.2 > 0
                    && run
                        .iter()
                        .filter(|later| later.1 > early.1)
                        .filter_map(|later| began(later.1))
                        .any(|start| early.3 > start)
            });
            if twice {
                overlapped.push(run[0].0);
            }
        }
        Ok(overlapped)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{TestDatabase, new_run, now};
    use time::Duration;

    #[tokio::test]
    async fn a_call_of_an_earlier_attempt_after_a_later_one_began_is_a_concurrent_run() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let t0 = now();
        let step = |attempt: i64, api_calls: i64| crate::store::NewStep {
            name: "Call".into(),
            outcome: crate::domain::runs::StepOutcome::Ok,
            detail: String::new(),
            api_calls,
            system: Some(crate::domain::connection::System::PartnerCenter),
            duration_ms: 1,
            attempt,
        };
        let mut runs = Vec::new();
        for record in ["sequential", "overlapped", "in a child"] {
            let id = store.enqueue_run(&new_run(record), t0).await.unwrap();
            store
                .claim_run("a", t0, t0 + Duration::seconds(1))
                .await
                .unwrap();
            let later = t0 + Duration::seconds(2);
            store
                .claim_run("b", later, later + Duration::seconds(60))
                .await
                .unwrap();
            runs.push(id);
        }
        let at = |s: i64| t0 + Duration::seconds(s);
        // Attempt 1 ends before attempt 2 begins.
        store
            .record_step(runs[0], &step(1, 1), at(0))
            .await
            .unwrap();
        store
            .record_step(runs[0], &step(2, 1), at(3))
            .await
            .unwrap();
        // Attempt 1's call comes back after attempt 2 began.
        store
            .record_step(runs[1], &step(2, 1), at(3))
            .await
            .unwrap();
        store
            .record_step(runs[1], &step(1, 1), at(4))
            .await
            .unwrap();
        // Attempt 1's late call was made inside a child run (where most effects are): it counts for
        // the run it ran in.
        let mut child = new_run("in a child");
        child.flow = crate::domain::flows::Flow::CreateReferral;
        child.parent_run_id = Some(runs[2]);
        let child = store.start_run(&child, "a", at(60), t0).await.unwrap();
        store
            .record_step(runs[2], &step(2, 0), at(3))
            .await
            .unwrap();
        store
            .record_step(child.id, &step(1, 1), at(4))
            .await
            .unwrap();
        assert_eq!(
            store.runs_executed_concurrently().await.unwrap(),
            vec![runs[1], runs[2]]
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
}

#[cfg(test)]
mod plans {
    use super::*;
    use crate::store::Pool;
    use crate::store::test_support::{TestDatabase, now};

    /// SQLite's plan for a query, one detail per line.
    async fn plan(store: &Store, sql: &str, bind: impl FnOnce(String) -> String) -> Option<String> {
        let Pool::Sqlite(p) = &store.pool else {
            // PostgreSQL plans by statistics (a seq scan wins on an empty table); the pages
            // benchmark measures it at volume.
            return None;
        };
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&bind(format!("EXPLAIN QUERY PLAN {sql}")))
                .fetch_all(p)
                .await
                .unwrap();
        Some(rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n"))
    }

    #[tokio::test]
    async fn the_overview_counts_read_only_the_rows_they_count() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let failed_today = RunFilter {
            status: Some(RunStatus::Failed),
            since: Some(now()),
            ..Default::default()
        };
        let sql = format!(
            "SELECT COUNT(*) FROM runs WHERE {}",
            filter_sql(&failed_today, 1)
        );
        let bound = |s: String| {
            s.replacen("$1", "'failed'", 1).replacen(
                "$2",
                &format!("'{}'", crate::store::sqlite_time_bound(now())),
                1,
            )
        };
        if let Some(plan) = plan(&store, &sql, bound).await {
            assert!(
                plan.contains("COVERING INDEX runs_by_status_created"),
                "{plan}"
            );
        }
        if let Some(plan) = plan(&store, crate::store::opportunities::COUNT_TO_FIX, |s| s).await {
            assert!(plan.contains("crm_opportunities_to_fix"), "{plan}");
        }
    }
}
