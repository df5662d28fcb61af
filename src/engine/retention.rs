//! Keeping history as long as the admin chose: a background task prunes runs and audit events older
//! than their retention, in small batches with a pause between them, so that the pages and the workers
//! are never held up behind a long delete.

use super::Engine;
use crate::domain::retention::Retention;
use crate::domain::runs::AuditAction;
use crate::store::{NewAuditEvent, StoreError};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Rows deleted per transaction: a few milliseconds of the database's time.
pub const PRUNE_BATCH: i64 = 500;
/// The breath between two batches, for the pages and workers waiting behind the prune.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// What one prune removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub runs: u64,
    pub audit_events: u64,
}

impl Engine {
    /// How long history is kept (the defaults until an admin saves their own).
    pub async fn retention(&self) -> Result<Retention, StoreError> {
        Ok(match self.store.setting(Retention::SETTING).await? {
            None => Retention::default(),
            Some(value) => serde_json::from_value(value).map_err(|e| {
                StoreError::Corrupt(format!("the stored retention does not read: {e}"))
            })?,
        })
    }

    /// Saves how long history is kept (audited); the next prune applies it.
    pub async fn set_retention(&self, retention: Retention, by: &str) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let value = serde_json::to_value(retention)
            .map_err(|e| StoreError::Corrupt(format!("the retention does not serialize: {e}")))?;
        self.store
            .set_setting(Retention::SETTING, &value, by, now)
            .await?;
        let audit = match retention.audit {
            Some(days) => format!("audit events for {days}"),
            None => "audit events forever".to_string(),
        };
        let event = NewAuditEvent::new(
            AuditAction::RetentionChanged,
            "settings",
            Retention::SETTING,
            format!("History is kept: runs for {}, {audit}.", retention.runs),
        );
        self.audit_by(by, event, now).await
    }

    /// Removes what is older than its retention as of `now`, batch by batch, until nothing is left.
    pub async fn prune_history(&self, now: OffsetDateTime) -> Result<Pruned, StoreError> {
        let retention = self.retention().await?;
        let mut pruned = Pruned::default();
        let runs_before = now - retention.runs.as_duration();
        loop {
            let n = self.store.prune_runs(runs_before, PRUNE_BATCH).await?;
            pruned.runs += n;
            if n < PRUNE_BATCH as u64 {
                break;
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
        if let Some(days) = retention.audit {
            let before = now - days.as_duration();
            loop {
                let n = self.store.prune_audit(before, PRUNE_BATCH).await?;
                pruned.audit_events += n;
                if n < PRUNE_BATCH as u64 {
                    break;
                }
                tokio::time::sleep(BETWEEN_BATCHES).await;
            }
        }
        if pruned != Pruned::default() {
            tracing::info!(
                runs = pruned.runs,
                audit_events = pruned.audit_events,
                "history older than its retention removed"
            );
        }
        Ok(pruned)
    }

    /// Prunes now, without waiting for it (an admin just shortened the time history is kept).
    pub fn prune_in_background(self: &Arc<Self>) {
        let engine = self.clone();
        tokio::spawn(async move { engine.prune_logged().await });
    }

    async fn prune_logged(&self) {
        if let Err(e) = self.prune_history(OffsetDateTime::now_utc()).await {
            tracing::warn!(error = %e, "could not remove old history");
        }
    }

    /// Prunes at start-up, then every `every`, until `stop` turns true.
    pub fn spawn_retention(self: &Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                engine.prune_logged().await;
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => {}
                }
            }
        });
    }
}
