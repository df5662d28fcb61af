//! Forgetting old history: runs (with their steps) and audit events older than the time an admin chose
//! to keep them. Deleted in small batches, each its own short transaction, so that pages and workers
//! never wait long behind a prune, on SQLite's single writer as on PostgreSQL.

use super::{Pool, Store, StoreError, sqlite_time_bound};
use time::OffsetDateTime;

/// Runs that ended (never one still queued or running) created before `$1`, oldest first.
const ENDED_RUNS_BEFORE: &str = "SELECT id FROM runs
     WHERE created_at < $1 AND status IN ('succeeded', 'failed', 'skipped')
     ORDER BY created_at, id LIMIT $2";

const AUDIT_BEFORE: &str = "SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2";

impl Store {
    /// Deletes up to `batch` ended runs created before `before`, with their steps and progress. What
    /// stays keeps no dangling link: a newer child or resubmission forgets its parent, an audit event
    /// (kept for its own time) forgets its run. Returns how many runs went.
    pub async fn prune_runs(&self, before: OffsetDateTime, batch: i64) -> Result<u64, StoreError> {
        // The ids are listed once and bound as a list in every statement (a subquery repeated in each
        // would be read again and could pick other rows once the first statements changed them).
        macro_rules! prune {
            ($pool:expr, $before:expr) => {{
                let mut tx = $pool.begin().await?;
                let ids: Vec<i64> = sqlx::query_scalar(ENDED_RUNS_BEFORE)
                    .bind($before)
                    .bind(batch)
                    .fetch_all(&mut *tx)
                    .await?;
                if ids.is_empty() {
                    return Ok(0);
                }
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                for statement in [
                    format!("UPDATE runs SET parent_run_id = NULL WHERE parent_run_id IN ({list})"),
                    format!(
                        "UPDATE runs SET resubmitted_from = NULL WHERE resubmitted_from IN ({list})"
                    ),
                    format!("UPDATE audit_events SET run_id = NULL WHERE run_id IN ({list})"),
                    format!("DELETE FROM run_steps WHERE run_id IN ({list})"),
                    format!("DELETE FROM run_progress WHERE run_id IN ({list})"),
                    format!("DELETE FROM runs WHERE id IN ({list})"),
                ] {
                    sqlx::query(&statement).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(ids.len() as u64)
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => prune!(p, sqlite_time_bound(before)),
            Pool::Postgres(p) => prune!(p, before),
        }
    }

    /// Deletes up to `batch` audit events recorded before `before`; returns how many went.
    pub async fn prune_audit(&self, before: OffsetDateTime, batch: i64) -> Result<u64, StoreError> {
        let sql = format!("DELETE FROM audit_events WHERE id IN ({AUDIT_BEFORE})");
        let deleted = match &self.pool {
            Pool::Sqlite(p) => sqlx::query(&sql)
                .bind(sqlite_time_bound(before))
                .bind(batch)
                .execute(p)
                .await?
                .rows_affected(),
            Pool::Postgres(p) => sqlx::query(&sql)
                .bind(before)
                .bind(batch)
                .execute(p)
                .await?
                .rows_affected(),
        };
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runs::{AuditAction, Progress, RunStatus};
    use crate::store::test_support::{TestDatabase, new_run, now};
    use crate::store::{AuditFilter, NewAuditEvent, NewRun, NewStep};
    use time::Duration;

    /// A run made at `at`: left queued (`end` `None`), or run at once with one step and ended as `end`.
    async fn run_at(store: &Store, run: NewRun, at: OffsetDateTime, end: Option<RunStatus>) -> i64 {
        let Some(status) = end else {
            return store.enqueue_run(&run, at).await.unwrap();
        };
        let lease = at + Duration::seconds(60);
        let id = store.start_run(&run, "w", lease, at).await.unwrap().id;
        let step = NewStep {
            name: "Call".into(),
            outcome: crate::domain::runs::StepOutcome::Ok,
            detail: String::new(),
            api_calls: 1,
            system: None,
            duration_ms: 1,
            attempt: 1,
        };
        store.record_step(id, &step, at).await.unwrap();
        store
            .finish_run(id, "w", status, None, "done", at)
            .await
            .unwrap();
        id
    }

    #[tokio::test]
    async fn ended_runs_older_than_kept_go_in_batches_and_leave_no_dangling_link() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let (old, recent) = (now - Duration::days(100), now - Duration::days(1));
        let before = now - Duration::days(90);

        let parent = run_at(&store, new_run("a"), old, Some(RunStatus::Succeeded)).await;
        let failed = run_at(&store, new_run("b"), old, Some(RunStatus::Failed)).await;
        let skipped = run_at(&store, new_run("c"), old, Some(RunStatus::Skipped)).await;
        store
            .set_progress(parent, &Progress::default(), old)
            .await
            .unwrap();
        // Newer runs pointing at old ones: a child (made across the boundary) and a resubmission.
        let mut child = new_run("a");
        child.parent_run_id = Some(parent);
        let child = run_at(&store, child, recent, Some(RunStatus::Succeeded)).await;
        let resubmission = store.resubmit_run(failed, recent).await.unwrap().unwrap();
        let kept = run_at(&store, new_run("e"), recent, Some(RunStatus::Succeeded)).await;
        let mut event =
            NewAuditEvent::new(AuditAction::OpportunityCreated, "referral", "a", "made");
        event.run_id = Some(parent);
        let event = store.record_audit(&event, old).await.unwrap();
        // Still to do, however old (queued last: the others are claimed first): never removed.
        let waiting = run_at(&store, new_run("d"), old, None).await;

        assert_eq!(
            store.prune_runs(before, 2).await.unwrap(),
            2,
            "a full batch"
        );
        assert_eq!(store.prune_runs(before, 2).await.unwrap(), 1, "the rest");
        assert_eq!(
            store.prune_runs(before, 2).await.unwrap(),
            0,
            "nothing left"
        );

        for gone in [parent, failed, skipped] {
            assert_eq!(store.run(gone).await.unwrap(), None);
            assert!(store.run_steps(gone).await.unwrap().is_empty());
        }
        assert_eq!(store.progress(parent).await.unwrap(), None);
        assert_eq!(
            store.run(waiting).await.unwrap().unwrap().status,
            RunStatus::Queued
        );
        assert_eq!(store.run(child).await.unwrap().unwrap().parent_run_id, None);
        assert_eq!(
            store
                .run(resubmission)
                .await
                .unwrap()
                .unwrap()
                .resubmitted_from,
            None
        );
        assert_eq!(store.run_steps(kept).await.unwrap().len(), 1);
        let events = store
            .list_audit(&AuditFilter::record("a"), None, 10)
            .await
            .unwrap();
        assert_eq!(
            events.iter().map(|e| (e.id, e.run_id)).collect::<Vec<_>>(),
            [(event, None)],
            "the audit event stays, without its run"
        );
    }

    #[tokio::test]
    async fn audit_events_older_than_kept_go_in_batches() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let event =
            |id: &str| NewAuditEvent::new(AuditAction::OpportunityCreated, "referral", id, "made");
        for id in ["old-1", "old-2"] {
            store
                .record_audit(&event(id), now - Duration::days(400))
                .await
                .unwrap();
        }
        store
            .record_audit(&event("new"), now - Duration::days(300))
            .await
            .unwrap();
        let before = now - Duration::days(365);
        assert_eq!(store.prune_audit(before, 1).await.unwrap(), 1);
        assert_eq!(store.prune_audit(before, 1).await.unwrap(), 1);
        assert_eq!(store.prune_audit(before, 1).await.unwrap(), 0);
        let left = store
            .list_audit(&AuditFilter::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(
            left.iter()
                .map(|e| e.record_id.as_str())
                .collect::<Vec<_>>(),
            ["new"]
        );
    }
}
