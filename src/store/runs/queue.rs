//! The run queue: what workers do with runs, from queueing to the end (or a later retry).
//!
//! Workers claim due runs with a lease. On PostgreSQL the claim is `FOR UPDATE SKIP LOCKED`, so several
//! instances share one queue without taking the same run; on SQLite one statement is atomic. A worker
//! that dies leaves its lease to expire, and the run is claimed again. Every write a worker makes about
//! a run checks that it still holds the lease.

use super::{COLUMNS, NewRun, NewStep, Row, Run, SETTLE_CALLS, insert_run, is_unique_violation};
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::runs::{FailureCause, RunStatus};
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
                         WHERE ((status = 'queued' AND not_before <= $3 AND paused_for IS NULL)
                                OR (status = 'running' AND lease_until < $3))
                           -- A child runs inside its parent: taking the parent over runs it again.
                           AND parent_run_id IS NULL
                           -- Not while another run of the same flow works on the same record.
                           AND NOT EXISTS (SELECT 1 FROM runs busy
                                           WHERE busy.record_id = runs.record_id AND busy.flow = runs.flow
                                             AND busy.status = 'running' AND busy.id <> runs.id
                                             AND busy.parent_run_id IS NULL)
                         -- Urgent work first (src/domain/budget.rs), then the oldest due.
                         ORDER BY priority, not_before, id LIMIT 1 {pick})
             RETURNING {COLUMNS}"
        );
        let row: Result<Option<Row>, sqlx::Error> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(p)
            .await);
        let run = match row {
            // Another instance claimed a run of the same record at the same moment: nothing for us now.
            Err(e) if is_unique_violation(&e) => return Ok(None),
            other => other?.map(Run::try_from).transpose()?,
        };
        if let Some(run) = &run {
            self.end_orphaned_children(run.id, now).await?;
        }
        Ok(run)
    }

    /// Children a dead worker left running inside `parent_id`: the parent, taken over, runs them again.
    async fn end_orphaned_children(
        &self,
        parent_id: i64,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE runs SET status = 'failed', finished_at = $1, lease_owner = NULL, lease_until = NULL,
                    outcome = 'The worker running it stopped before it ended; the parent run tries again.',
                    failure_cause = 'interrupted',
                    {SETTLE_CALLS}
             WHERE parent_run_id = $2 AND status = 'running'"
        );
        on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(now)
                .bind(parent_id)
                .execute(p)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// When the next queued run is due, if any (so an idle worker knows how long to wait).
    pub async fn next_run_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_scalar(
            "SELECT MIN(CASE WHEN status = 'queued' THEN not_before ELSE lease_until END)
             FROM runs WHERE status IN ('queued', 'running') AND parent_run_id IS NULL
               -- A paused run is due when its connection works again (resume_paused says so).
               AND paused_for IS NULL
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
        self.record_step_counted(run_id, None, step, at).await
    }

    /// Records a step of `flow`'s run and counts its calls against the day's quota, in one
    /// transaction: a call costs one write, not two.
    pub async fn record_step_counted(
        &self,
        run_id: i64,
        flow: Option<Flow>,
        step: &NewStep,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let count = step.system.filter(|_| step.api_calls > 0);
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            if let Some(system) = count {
                sqlx::query(crate::store::api_calls::COUNT_CALLS)
                    .bind(system.as_code())
                    .bind(crate::store::api_calls::day_of(at))
                    .bind(flow.map(Flow::as_code).unwrap_or(""))
                    .bind(step.api_calls)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
            "INSERT INTO run_steps (run_id, seq, name, outcome, detail, api_calls, duration_ms, at, attempt, system)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM run_steps WHERE run_id = $1),
                     $2, $3, $4, $5, $6, $7, $8, $9)"
        )
        .bind(run_id)
        .bind(&step.name)
        .bind(step.outcome.as_code())
        .bind(&step.detail)
        .bind(step.api_calls as i32)
        .bind(step.duration_ms)
        .bind(at)
        .bind(step.attempt as i32)
        .bind(step.system.map(System::as_code))
        .execute(&mut *tx)
        .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Ends a run the worker still holds (a failed one with its cause). False when the lease was lost
    /// (another worker took it over). The database counts the run for the Overview's charts as it ends
    /// (the `run_counts` triggers).
    pub async fn finish_run(
        &self,
        run_id: i64,
        owner: &str,
        status: RunStatus,
        cause: Option<FailureCause>,
        outcome: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE runs SET status = $1, outcome = $2, finished_at = $3, lease_owner = NULL, lease_until = NULL,
                    failure_cause = $6, {SETTLE_CALLS}
             WHERE id = $4 AND lease_owner = $5 AND status = 'running'"
        );
        let n = on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(status.as_code())
                .bind(outcome)
                .bind(at)
                .bind(run_id)
                .bind(owner)
                .bind(cause.map(FailureCause::as_code))
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Extends the lease of a run the worker still holds, and of the child runs it is running inside
    /// it. False when the lease was lost: another worker took the run over, so this one must stop before
    /// its next effect.
    pub async fn renew_lease(
        &self,
        run_id: i64,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
                "UPDATE runs SET lease_until = $1
                 WHERE (id = $2 OR parent_run_id = $2) AND lease_owner = $3 AND status = 'running'",
            )
            .bind(until)
            .bind(run_id)
            .bind(owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })?;
        // A child is only running while its parent is, so any row renewed means the parent was.
        Ok(n >= 1)
    }

    /// Puts a held run back in the queue until `not_before` (a transient failure, to be retried).
    pub async fn retry_run_later(
        &self,
        run_id: i64,
        owner: &str,
        not_before: OffsetDateTime,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        self.requeue(run_id, owner, not_before, outcome, 0, None, false)
            .await
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
        self.requeue(run_id, owner, not_before, outcome, 1, None, false)
            .await
    }

    /// Puts a held run back in the queue until `not_before` (the next UTC day) for want of API calls,
    /// marked so that a larger budget lets it go at once, and gives back the attempt its claim counted.
    pub async fn defer_run(
        &self,
        run_id: i64,
        owner: &str,
        not_before: OffsetDateTime,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        self.requeue(run_id, owner, not_before, outcome, 1, None, true)
            .await
    }

    /// Lets every run deferred for want of calls go, due `now` (an admin raised a budget). How many.
    pub async fn release_deferred(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query(
                "UPDATE runs SET budget_deferred = $2, not_before = $1,
                        outcome = 'Released: the daily API budget was changed.'
                 WHERE status = 'queued' AND budget_deferred = $3",
            )
            .bind(now)
            .bind(false)
            .bind(true)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })?)
    }

    #[allow(clippy::too_many_arguments)]
    async fn requeue(
        &self,
        run_id: i64,
        owner: &str,
        not_before: OffsetDateTime,
        outcome: &str,
        given_back: i64,
        paused_for: Option<System>,
        deferred: bool,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE runs SET status = 'queued', not_before = $1, outcome = $2, lease_owner = NULL, lease_until = NULL,
                    attempts = attempts - $5, paused_for = $6, budget_deferred = $7, {SETTLE_CALLS}
             WHERE id = $3 AND lease_owner = $4 AND status = 'running'"
        );
        let n = on_pool!(self, |p| {
            sqlx::query(&sql)
                .bind(not_before)
                .bind(outcome)
                .bind(run_id)
                .bind(owner)
                .bind(given_back)
                .bind(paused_for.map(System::as_code))
                .bind(deferred)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Puts a held run back in the queue, paused until `system`'s connection works again, and gives
    /// back the attempt its claim counted: waiting for a person to reconnect is not a failed try.
    pub async fn pause_run_for(
        &self,
        run_id: i64,
        owner: &str,
        system: System,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        self.requeue(run_id, owner, now, outcome, 1, Some(system), false)
            .await
    }

    /// Lets every paused run whose connection works again go, due `now`: the connection is there and
    /// carries no diagnosis (a reconnect, a passing test or a refresh that worked cleared it). Asked by
    /// idle workers, so it holds whichever instance saw the connection come back. How many went.
    pub async fn resume_paused(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query(
                "UPDATE runs SET paused_for = NULL, not_before = $1,
                        outcome = 'Resumed: the connection works again.'
                 WHERE status = 'queued'
                   AND paused_for IN (SELECT system FROM connections WHERE diagnosis IS NULL)",
            )
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })?)
    }

    /// How many runs wait for each system's connection (systems with none are left out).
    pub async fn paused_runs(&self) -> Result<Vec<(System, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = on_pool!(self, |p| {
            sqlx::query_as(
                "SELECT paused_for, COUNT(*) FROM runs
                 WHERE paused_for IS NOT NULL AND status = 'queued' GROUP BY paused_for ORDER BY paused_for",
            )
            .fetch_all(p)
            .await
        })?;
        rows.into_iter()
            .map(|(code, n)| {
                System::from_code(&code)
                    .map(|s| (s, n))
                    .ok_or_else(|| StoreError::Corrupt(format!("runs paused for {code:?}")))
            })
            .collect()
    }

    /// Whether a run of `flow` is working on `record_id` right now.
    pub async fn run_in_progress(&self, flow: Flow, record_id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar(
                "SELECT id FROM runs WHERE record_id = $1 AND flow = $2 AND status = 'running' LIMIT 1",
            )
            .bind(record_id)
            .bind(flow.as_code())
            .fetch_optional(p)
            .await
        })?;
        Ok(found.is_some())
    }

    /// Gives a run still waiting to start a new input (a waiting run that now carries a further
    /// change); false when it has started meanwhile.
    pub async fn replace_queued_input(
        &self,
        id: i64,
        input: &crate::domain::runs::RunInput,
    ) -> Result<bool, StoreError> {
        let done = on_pool!(self, |p| {
            sqlx::query("UPDATE runs SET input = $2 WHERE id = $1 AND status = 'queued'")
                .bind(id)
                .bind(input.to_value().to_string())
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(done == 1)
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

    /// Hands a running run's lease to `owner` as another instance taking it over would (tests).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn steal_lease(
        &self,
        run_id: i64,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| {
            sqlx::query(
            "UPDATE runs SET lease_owner = $1, lease_until = $2 WHERE id = $3 AND status = 'running'"
        )
        .bind(owner)
        .bind(until)
        .bind(run_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
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
    use crate::domain::connection::Diagnosis;
    use crate::domain::runs::RunTrigger;
    use crate::store::RunFilter;
    use crate::store::test_support::{TestDatabase, new_connection, new_run, now};
    use time::Duration;

    #[tokio::test]
    async fn a_waiting_runs_input_is_replaced_until_it_starts() {
        use crate::domain::runs::RunInput;
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let id = store.enqueue_run(&new_run("r1"), now).await.unwrap();
        assert!(
            !store
                .run_in_progress(Flow::PartnerCenterToCrm, "r1")
                .await
                .unwrap()
        );
        let plain = RunInput::opportunity("o1");
        assert!(store.replace_queued_input(id, &plain).await.unwrap());
        assert_eq!(store.run(id).await.unwrap().unwrap().input, plain);

        store
            .claim_run("a", now, now + Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .run_in_progress(Flow::PartnerCenterToCrm, "r1")
                .await
                .unwrap()
        );
        assert!(
            !store
                .run_in_progress(Flow::CrmToPartnerCenter, "r1")
                .await
                .unwrap()
        );
        assert!(
            !store
                .run_in_progress(Flow::PartnerCenterToCrm, "r2")
                .await
                .unwrap()
        );
        let started = RunInput::opportunity("o2");
        assert!(
            !store.replace_queued_input(id, &started).await.unwrap(),
            "a started run keeps the input it started from"
        );
        assert_eq!(store.run(id).await.unwrap().unwrap().input, plain);
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
                .finish_run(id, "a", RunStatus::Succeeded, None, "", later)
                .await
                .unwrap()
        );
        assert!(
            store
                .finish_run(id, "b", RunStatus::Succeeded, None, "done", later)
                .await
                .unwrap()
        );
        let done = store.run(id).await.unwrap().unwrap();
        assert_eq!(done.status, RunStatus::Succeeded);
        assert_eq!(done.outcome.as_deref(), Some("done"));
    }

    #[tokio::test]
    async fn a_renewed_lease_keeps_the_run_and_a_lost_one_is_reported() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let id = store.enqueue_run(&new_run("r1"), now).await.unwrap();
        let lease = now + Duration::seconds(60);
        store.claim_run("a", now, lease).await.unwrap().unwrap();
        let mut child = new_run("r1");
        child.flow = crate::domain::flows::Flow::CreateReferral;
        child.parent_run_id = Some(id);
        let child = store.start_run(&child, "a", lease, now).await.unwrap();

        // Past the first lease, but renewed in time: nobody else may claim the run or its child.
        let renewed = lease + Duration::seconds(60);
        assert!(store.renew_lease(id, "a", renewed).await.unwrap());
        let later = lease + Duration::seconds(1);
        assert!(
            store
                .claim_run("b", later, later + Duration::seconds(60))
                .await
                .unwrap()
                .is_none(),
            "a renewed lease keeps the run (and its child) with its worker"
        );

        // Once b has taken the run over after all (not its child: the parent runs it again), a's
        // renewal says so, and the child a left behind is ended.
        let past = renewed + Duration::seconds(1);
        let taken = store
            .claim_run("b", past, past + Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.id, id);
        assert!(
            store
                .claim_run("c", past, past + Duration::seconds(60))
                .await
                .unwrap()
                .is_none()
        );
        let orphan = store.run(child.id).await.unwrap().unwrap();
        assert_eq!(orphan.status, RunStatus::Failed);
        assert!(
            !store
                .renew_lease(id, "a", past + Duration::seconds(60))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_paused_run_waits_for_its_connection_without_spending_an_attempt() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let lease = now + Duration::seconds(60);
        let id = store.enqueue_run(&new_run("r1"), now).await.unwrap();
        let other = store.enqueue_run(&new_run("r2"), now).await.unwrap();
        store.claim_run("a", now, lease).await.unwrap().unwrap();
        assert!(
            !store
                .pause_run_for(id, "b", System::PartnerCenter, "not b's")
                .await
                .unwrap(),
            "only the lease holder pauses a run"
        );
        assert!(
            store
                .pause_run_for(id, "a", System::PartnerCenter, "Reconnect")
                .await
                .unwrap()
        );
        let paused = store.run(id).await.unwrap().unwrap();
        assert_eq!(
            (paused.status, paused.attempts, paused.paused_for),
            (RunStatus::Paused, 0, Some(System::PartnerCenter))
        );
        let by_status = |status| {
            let store = store.clone();
            async move {
                let filter = RunFilter {
                    status: Some(status),
                    ..Default::default()
                };
                let runs = store.list_runs(&filter, None, 10).await.unwrap();
                (
                    runs.iter().map(|r| r.id).collect::<Vec<_>>(),
                    store.count_runs(&filter).await.unwrap(),
                )
            }
        };
        assert_eq!(by_status(RunStatus::Paused).await, (vec![id], 1));
        assert_eq!(by_status(RunStatus::Queued).await, (vec![other], 1));
        assert_eq!(
            store.paused_runs().await.unwrap(),
            [(System::PartnerCenter, 1)]
        );

        // Not claimed, not due, whatever the time; the other run goes on.
        let much_later = now + Duration::days(2);
        let claimed = store
            .claim_run("a", much_later, much_later + Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, other);
        store
            .finish_run(other, "a", RunStatus::Succeeded, None, "done", much_later)
            .await
            .unwrap();
        assert!(
            store
                .claim_run("a", much_later, much_later + Duration::seconds(60))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.next_run_due().await.unwrap(), None);

        // Not while Partner Center is not connected, nor while its connection carries a diagnosis;
        // another system's connection working changes nothing.
        let key = crate::crypto::SealingKey::generate();
        assert_eq!(store.resume_paused(now).await.unwrap(), 0);
        for system in [System::DYNAMICS_365, System::PartnerCenter] {
            store
                .save_connection(&new_connection(system, "0.token"), &key, now)
                .await
                .unwrap();
        }
        store
            .set_diagnosis(System::PartnerCenter, Some(Diagnosis::PasswordExpired), now)
            .await
            .unwrap();
        assert_eq!(store.resume_paused(now).await.unwrap(), 0);
        store
            .set_diagnosis(System::PartnerCenter, None, now)
            .await
            .unwrap();
        assert_eq!(store.resume_paused(now).await.unwrap(), 1);
        assert_eq!(store.paused_runs().await.unwrap(), []);
        let resumed = store.claim_run("a", now, lease).await.unwrap().unwrap();
        assert_eq!((resumed.id, resumed.attempts), (id, 1));
    }

    #[tokio::test]
    async fn urgent_runs_are_claimed_before_routine_ones_and_deferred_ones_wait_for_a_release() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let lease = now + Duration::minutes(5);
        let sweep = NewRun {
            trigger: RunTrigger::Reconciliation,
            ..new_run("r1")
        };
        let routine = store
            .enqueue_run(&sweep, now - Duration::minutes(1))
            .await
            .unwrap();
        let urgent = store.enqueue_run(&new_run("r2"), now).await.unwrap();
        let claimed = store.claim_run("a", now, lease).await.unwrap().unwrap();
        assert_eq!(
            claimed.id, urgent,
            "the seller's change first, though queued later"
        );

        // Deferred to tomorrow, its attempt given back; a larger budget releases it at once.
        let claimed = store.claim_run("a", now, lease).await.unwrap().unwrap();
        assert_eq!((claimed.id, claimed.attempts), (routine, 1));
        let tomorrow = now + Duration::days(1);
        assert!(
            store
                .defer_run(routine, "a", tomorrow, "budget")
                .await
                .unwrap()
        );
        assert!(store.claim_run("a", now, lease).await.unwrap().is_none());
        assert_eq!(store.release_deferred(now).await.unwrap(), 1);
        let again = store.claim_run("a", now, lease).await.unwrap().unwrap();
        assert_eq!((again.id, again.attempts), (routine, 1));
        assert_eq!(
            store.release_deferred(now).await.unwrap(),
            0,
            "released once"
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
            .finish_run(first, "a", RunStatus::Succeeded, None, "done", now)
            .await
            .unwrap();
        assert_eq!(claim("c").await, Some(second));
    }
}
