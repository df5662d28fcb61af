//! Whether anything a page shows has changed: a small value, read once a second while someone has a
//! live page open (see the server's `/events`), that changes whenever a run is queued, claimed, retried
//! or ends, an audit event is written, the change feed sees an opportunity, or a long run reports progress.
//! Each part is an index lookup, so asking costs the same at a million runs as at ten.

use super::{Store, StoreError, on_pool};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActivityMark {
    newest_run: i64,
    active_runs: i64,
    active_attempts: i64,
    newest_audit: i64,
    opportunity_seen: Option<OffsetDateTime>,
    progress: Option<OffsetDateTime>,
    /// The newest alert, how many are open, how many messages wait to be sent.
    alerts: (i64, i64, i64),
}

/// Compact and opaque: what the event stream sends, so a page (or a test) can tell one state from another.
impl std::fmt::Display for ActivityMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nanos = |t: Option<OffsetDateTime>| t.map_or(0, |t| t.unix_timestamp_nanos());
        write!(
            f,
            "{}.{}.{}.{}.{}.{}.{}.{}.{}",
            self.newest_run,
            self.active_runs,
            self.active_attempts,
            self.newest_audit,
            nanos(self.opportunity_seen),
            nanos(self.progress),
            self.alerts.0,
            self.alerts.1,
            self.alerts.2
        )
    }
}

type MarkRow = (
    i64,
    i64,
    i64,
    i64,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    i64,
    i64,
    i64,
);

impl Store {
    pub async fn activity_mark(&self) -> Result<ActivityMark, StoreError> {
        // Queued and running runs are few and indexed (runs_due); their attempts rise when one is
        // claimed or retried, their count falls when one ends.
        let row: MarkRow = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM runs),
                    (SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')),
                    (SELECT CAST(COALESCE(SUM(attempts), 0) AS BIGINT) FROM runs
                      WHERE status IN ('queued', 'running')),
                    (SELECT COALESCE(MAX(id), 0) FROM audit_events),
                    (SELECT MAX(seen_at) FROM crm_opportunities),
                    (SELECT MAX(updated_at) FROM run_progress),
                    (SELECT COALESCE(MAX(id), 0) FROM alerts),
                    (SELECT COUNT(*) FROM alerts WHERE resolved_at IS NULL),
                    (SELECT COUNT(*) FROM alert_deliveries WHERE sent_at IS NULL AND failed_at IS NULL)"
        )
        .fetch_one(p)
        .await
        })?;
        let (
            newest_run,
            active_runs,
            active_attempts,
            newest_audit,
            opportunity_seen,
            progress,
            newest_alert,
            open_alerts,
            unsent,
        ) = row;
        Ok(ActivityMark {
            newest_run,
            active_runs,
            active_attempts,
            newest_audit,
            opportunity_seen,
            progress,
            alerts: (newest_alert, open_alerts, unsent),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::runs::{AuditAction, Progress, RunStatus};
    use crate::store::NewAuditEvent;
    use crate::store::test_support::{TestDatabase, new_run, now};
    use time::Duration;

    /// The mark moved since `last`, and reading it again gives the same.
    async fn moved(store: &Store, last: &mut ActivityMark, what: &str) {
        let mark = store.activity_mark().await.unwrap();
        assert_ne!(mark, *last, "{what} moves the mark");
        assert_eq!(store.activity_mark().await.unwrap(), mark, "{what}: once");
        *last = mark;
    }

    #[tokio::test]
    async fn every_change_a_page_shows_moves_the_mark() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let t = now();
        let mut last = store.activity_mark().await.unwrap();
        assert_eq!(last, ActivityMark::default());
        let id = store.enqueue_run(&new_run("r"), t).await.unwrap();
        moved(&store, &mut last, "a run queued").await;
        store
            .claim_run("w", t, t + Duration::seconds(60))
            .await
            .unwrap();
        moved(&store, &mut last, "a run claimed").await;
        store
            .set_progress(id, &Progress::default(), t)
            .await
            .unwrap();
        moved(&store, &mut last, "progress").await;
        store
            .finish_run(id, "w", RunStatus::Succeeded, None, "done", t)
            .await
            .unwrap();
        moved(&store, &mut last, "a run ended").await;
        let event = NewAuditEvent::new(AuditAction::OpportunityCreated, "referral", "r", "made");
        store.record_audit(&event, t).await.unwrap();
        moved(&store, &mut last, "an audit event").await;
        let seen = crate::store::SeenOpportunity {
            crm_id: "o".into(),
            name: "O".into(),
            referral_id: None,
            referral_link: None,
            customer_id: None,
            sync: false,
            state: crate::domain::opportunity::OpportunityState::Open,
            version: Some("1".into()),
            solutions: None,
            fingerprint: None,
        };
        store.see_opportunity(&seen, t).await.unwrap();
        moved(&store, &mut last, "an opportunity seen").await;
    }
}
