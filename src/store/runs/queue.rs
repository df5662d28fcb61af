//! The run queue: what workers do with runs, from queueing to the end (or a later retry).
//!
//! Workers claim due runs with a lease. On PostgreSQL the claim is `FOR UPDATE SKIP LOCKED`, so several
//! instances share one queue without taking the same run; on SQLite one statement is atomic. A worker
//! that dies leaves its lease to expire, and the run is claimed again. Every write a worker makes about
//! a run checks that it still holds the lease.

use super::{COLUMNS, NewRun, NewStep, Row, Run, insert_run, is_unique_violation};
use crate::domain::flows::Flow;
use crate::domain::runs::RunStatus;
use crate::store::{Backend, Store, StoreError, on_pool};
use time::OffsetDateTime;

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
            .bind(run.input.to_value().to_string())
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

    /// Claims the next due run for `owner` until `lease_until`: a queued run whose time has come, or a
    /// running one whose lease expired (its worker died).
    pub async fn claim_run(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Run>, StoreError> {
        let pick = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
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
        self.requeue(run_id, owner, not_before, outcome, 0).await
    }

    /// Puts a run back in the queue until `not_before` and gives back the attempt its claim counted:
    /// waiting for an API allocation to free up is not a failed try.
    pub async fn pause_run(
        &self,
        run_id: i64,
        owner: &str,
        not_before: OffsetDateTime,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        self.requeue(run_id, owner, not_before, outcome, 1).await
    }

    async fn requeue(
        &self,
        run_id: i64,
        owner: &str,
        not_before: OffsetDateTime,
        outcome: &str,
        given_back: i64,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
            "UPDATE runs SET status = 'queued', not_before = $1, outcome = $2, lease_owner = NULL, lease_until = NULL,
                    attempts = attempts - $5
             WHERE id = $3 AND lease_owner = $4 AND status = 'running'"
        )
        .bind(not_before)
        .bind(outcome)
        .bind(run_id)
        .bind(owner)
        .bind(given_back)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runs::RunTrigger;
    use crate::store::test_support::{TestDatabase, new_run, now};
    use time::Duration;

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
}
