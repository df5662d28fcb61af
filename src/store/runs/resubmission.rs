//! Resubmission: a failed or skipped run's input queued again as a new run linked to it (one, or a filter).
//!
//! A run is resubmitted at most once (a unique index on `resubmitted_from`), so a double click or two
//! instances cannot queue the same work twice.

use super::history::{RunFilter, bind_filter, filter_sql};
use super::{NewRun, is_unique_violation};
use crate::domain::flows::Flow;
use crate::domain::runs::{RunStatus, RunTrigger};
use crate::store::diagnostics::{FailedRuns, FailedSince};
use crate::store::{Store, StoreError, on_pool};
use time::OffsetDateTime;

/// Failed runs nobody resubmitted yet, and not child runs (those are resubmitted through their parent).
const AWAITING_RESUBMISSION: &str = "parent_run_id IS NULL
     AND NOT EXISTS (SELECT 1 FROM runs again WHERE again.resubmitted_from = runs.id)";

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

impl Store {
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

    /// Failed runs created since `since` that were not resubmitted, grouped by flow and outcome,
    /// largest groups first (at most `groups` of them): the runs "Resubmit all failed runs" would queue,
    /// so the count and the fix agree.
    pub async fn failed_runs_since(
        &self,
        since: OffsetDateTime,
        groups: i64,
    ) -> Result<FailedSince, StoreError> {
        let filter = RunFilter {
            status: Some(RunStatus::Failed),
            since: Some(since),
            ..Default::default()
        };
        let count_sql = format!(
            "SELECT COUNT(*) FROM runs WHERE {} AND {AWAITING_RESUBMISSION}",
            filter_sql(&filter, 1)
        );
        let group_sql = format!(
            "SELECT flow, COALESCE(outcome, '') AS outcome, COUNT(*) AS n, MAX(id) AS latest
             FROM runs WHERE {} AND {AWAITING_RESUBMISSION}
             GROUP BY flow, COALESCE(outcome, '') ORDER BY n DESC, latest DESC LIMIT $1",
            filter_sql(&filter, 2)
        );
        let backend = self.backend();
        let (total, rows): (i64, Vec<(String, String, i64, i64)>) = on_pool!(self, |p| {
            let total = bind_filter!(sqlx::query_scalar(&count_sql), &filter, backend)
                .fetch_one(p)
                .await?;
            let rows = bind_filter!(sqlx::query_as(&group_sql).bind(groups), &filter, backend)
                .fetch_all(p)
                .await?;
            Ok::<_, sqlx::Error>((total, rows))
        })?;
        let groups = rows
            .into_iter()
            .map(|(flow, outcome, count, latest_run)| {
                Ok(FailedRuns {
                    flow: Flow::from_code(&flow)
                        .ok_or_else(|| StoreError::Corrupt(format!("run flow {flow:?}")))?,
                    outcome,
                    count,
                    latest_run,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(FailedSince { total, groups })
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
            "SELECT id FROM runs WHERE {clause} AND {AWAITING_RESUBMISSION} ORDER BY id LIMIT $1"
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::flows::Flow;
    use crate::domain::runs::StepOutcome;
    use crate::store::NewStep;
    use crate::store::test_support::{TestDatabase, new_run, now};
    use time::Duration;

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
                    system: Some(crate::domain::connection::System::PartnerCenter),
                    duration_ms: 12,
                    attempt: 1,
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
                    system: Some(crate::domain::connection::System::PartnerCenter),
                    duration_ms: 10,
                    attempt: 2,
                },
                retry_at,
            )
            .await
            .unwrap();
        store
            .finish_run(id, "w", RunStatus::Failed, None, "denied", retry_at)
            .await
            .unwrap();
        let steps = store.run_steps(id).await.unwrap();
        assert_eq!(steps.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![1, 2]);
        let ended = store.run(id).await.unwrap().unwrap();
        assert_eq!(
            ended.calls,
            crate::store::RunCalls {
                partner_center: 2,
                crm: 0
            },
            "both attempts' calls, settled on the run's row"
        );
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
        assert_eq!(again.input, crate::domain::runs::RunInput::referral("r1"));
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
}
