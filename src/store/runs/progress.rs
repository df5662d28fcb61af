//! What a reconciliation reads and writes of the runs: its progress, when the last one began, and where
//! each record's runs stand.

use crate::domain::flows::Flow;
use crate::domain::runs::{AuditAction, Progress, RunStatus};
use crate::store::{Store, StoreError, on_pool};
use time::OffsetDateTime;

/// Where a record's runs of some flows stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordRuns {
    /// A run is queued, running or paused for it: what differs is on its way already.
    pub in_flight: bool,
    /// The newest run that ended was skipped because its flow was off: what it carried never went.
    pub last_skipped_flow_off: bool,
    /// When the newest run that looked at the record ended (any outcome but a flow-off skip).
    pub last_looked: Option<OffsetDateTime>,
    /// When the newest run that succeeded ended.
    pub last_succeeded: Option<OffsetDateTime>,
}

impl Store {
    pub async fn set_progress(
        &self,
        run_id: i64,
        progress: &Progress,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO run_progress (run_id, compared, total, differences, queued, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (run_id) DO UPDATE SET compared = excluded.compared, total = excluded.total,
                differences = excluded.differences, queued = excluded.queued, updated_at = excluded.updated_at"
        )
        .bind(run_id)
        .bind(progress.compared)
        .bind(progress.total)
        .bind(progress.differences)
        .bind(progress.queued)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    pub async fn progress(&self, run_id: i64) -> Result<Option<Progress>, StoreError> {
        let row: Option<(i64, i64, i64, i64)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT compared, total, differences, queued FROM run_progress WHERE run_id = $1"
        )
        .bind(run_id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(compared, total, differences, queued)| Progress {
            compared,
            total,
            differences,
            queued,
        }))
    }

    /// When the last reconciliation that succeeded began: what it compared was updated before then.
    pub async fn last_reconciliation(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT MAX(created_at) FROM runs WHERE flow = $1 AND status = 'succeeded'"
        )
        .bind(Flow::Reconciliation.as_code())
        .fetch_one(p)
        .await)?)
    }

    /// When the newest reconciliation of any outcome was queued (the schedule's clock).
    pub async fn last_reconciliation_queued(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT MAX(created_at) FROM runs WHERE flow = $1"
        )
        .bind(Flow::Reconciliation.as_code())
        .fetch_one(p)
        .await)?)
    }

    /// When `system` was first connected (its audit trail remembers; a reconnect does not move it).
    pub async fn first_connected(
        &self,
        system: crate::domain::connection::System,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT MIN(at) FROM audit_events WHERE action = $1 AND record_id = $2"
        )
        .bind(AuditAction::ConnectionConnected.as_code())
        .bind(system.as_code())
        .fetch_one(p)
        .await)?)
    }

    /// Where `record_id`'s own runs (not child runs) of `flows` stand.
    pub async fn record_runs(
        &self,
        record_id: &str,
        flows: &[Flow],
    ) -> Result<RecordRuns, StoreError> {
        // Flow codes are the catalog's own constants, never input: inlined as literals.
        let codes = flows
            .iter()
            .map(|f| format!("'{}'", f.as_code()))
            .collect::<Vec<_>>()
            .join(", ");
        let flow_off = [
            AuditAction::ReferralSkippedFlowOff,
            AuditAction::OpportunitySkippedFlowOff,
            AuditAction::RunSkippedFlowOff,
        ]
        .map(|a| format!("'{}'", a.as_code()))
        .join(", ");
        let sql = format!(
            "SELECT status, finished_at,
                    CASE WHEN EXISTS (SELECT 1 FROM audit_events a
                                      WHERE a.run_id = runs.id AND a.action IN ({flow_off}))
                         THEN 1 ELSE 0 END
             FROM runs
             WHERE record_id = $1 AND parent_run_id IS NULL AND flow IN ({codes})
             ORDER BY id DESC LIMIT 50"
        );
        let rows: Vec<(String, Option<OffsetDateTime>, i32)> =
            on_pool!(self, |p| sqlx::query_as(&sql)
                .bind(record_id)
                .fetch_all(p)
                .await)?;
        let mut found = RecordRuns::default();
        let mut newest_ended = true;
        for (status, finished_at, flow_off) in rows {
            let status = RunStatus::from_code(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("run status {status:?}")))?;
            match (status, finished_at) {
                (RunStatus::Queued | RunStatus::Running, _) => found.in_flight = true,
                (_, Some(at)) => {
                    let skipped_flow_off = status == RunStatus::Skipped && flow_off == 1;
                    if newest_ended {
                        found.last_skipped_flow_off = skipped_flow_off;
                        newest_ended = false;
                    }
                    if !skipped_flow_off {
                        found.last_looked = Some(found.last_looked.map_or(at, |l| l.max(at)));
                    }
                    if status == RunStatus::Succeeded {
                        found.last_succeeded = Some(found.last_succeeded.map_or(at, |l| l.max(at)));
                    }
                }
                (_, None) => {}
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runs::RunTrigger;
    use crate::store::NewRun;
    use crate::store::test_support::{TestDatabase, new_run, now};
    use time::Duration;

    #[tokio::test]
    async fn progress_is_kept_and_replaced() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let id = store.enqueue_run(&new_run("r1"), now()).await.unwrap();
        assert_eq!(store.progress(id).await.unwrap(), None);
        let mut p = Progress {
            compared: 0,
            total: 40,
            ..Default::default()
        };
        store.set_progress(id, &p, now()).await.unwrap();
        p.compared = 10;
        p.differences = 2;
        p.queued = 1;
        store.set_progress(id, &p, now()).await.unwrap();
        assert_eq!(store.progress(id).await.unwrap(), Some(p));
        assert_eq!(p.percent(), 25);
    }

    #[tokio::test]
    async fn a_records_runs_say_whether_work_is_on_its_way_and_when_it_last_ended() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let t = now();
        let flows = [Flow::PartnerCenterToCrm];
        assert_eq!(
            store.record_runs("r1", &flows).await.unwrap(),
            RecordRuns::default()
        );
        let settled = |status, outcome: &str| NewRun {
            settled: Some((status, outcome.to_string())),
            ..new_run("r1")
        };
        store
            .enqueue_run(&settled(RunStatus::Succeeded, "done"), t)
            .await
            .unwrap();
        let skipped = store
            .enqueue_run(
                &settled(RunStatus::Skipped, "nothing to do"),
                t + Duration::seconds(5),
            )
            .await
            .unwrap();
        let found = store.record_runs("r1", &flows).await.unwrap();
        assert!(!found.in_flight);
        assert!(!found.last_skipped_flow_off, "skipped for another reason");
        assert_eq!(found.last_looked, Some(t + Duration::seconds(5)));

        // The newest run skipped because its flow was off (so audited): what it carried never went.
        let off = store
            .enqueue_run(
                &settled(RunStatus::Skipped, "off"),
                t + Duration::seconds(9),
            )
            .await
            .unwrap();
        store
            .record_audit(
                &crate::store::NewAuditEvent {
                    run_id: Some(off),
                    ..crate::store::NewAuditEvent::new(
                        AuditAction::ReferralSkippedFlowOff,
                        "referral",
                        "r1",
                        "off",
                    )
                },
                t,
            )
            .await
            .unwrap();
        let found = store.record_runs("r1", &flows).await.unwrap();
        assert!(found.last_skipped_flow_off);
        assert_eq!(
            found.last_looked,
            Some(t + Duration::seconds(5)),
            "a flow-off skip looked at nothing (run {skipped} did)"
        );
        // Another flow's runs, or another record's, do not count.
        assert_eq!(
            store
                .record_runs("r1", &[Flow::CrmToPartnerCenter])
                .await
                .unwrap(),
            RecordRuns::default()
        );
        let mut queued = new_run("r1");
        queued.trigger = RunTrigger::Reconciliation;
        store.enqueue_run(&queued, t).await.unwrap();
        assert!(store.record_runs("r1", &flows).await.unwrap().in_flight);
    }
}
