//! The CRM's change feed: what changed in the CRM since the last poll, read through the CRM port at an
//! interval (Dynamics 365: change tracking, crm-apis.md §2.6). Every change keeps the Opportunities page
//! current; a change to an opportunity with "Sync with Partner Center" on (or just switched off) queues
//! a run of "CRM to Partner Center" — unless it is the echo of cosell's own write, which is audited and
//! dropped.
//!
//! The first poll only mirrors what exists (sharing every synced opportunity at once on the first start
//! would surprise); the position is saved after the runs are queued, so a crash in between repeats
//! changes rather than losing them, and a change seen twice queues one run.

use super::crm::{Changes, CrmError};
use super::crm_to_partner_center::seen;
use super::{Engine, EngineError};
use crate::domain::flows::Flow;
use crate::domain::runs::{AuditAction, Direction, RunInput, RunStatus, RunTrigger};
use crate::store::{NewAuditEvent, NewRun, StoreError};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// How long an instance may hold the feed (a poll takes seconds; a dead instance's lease runs out).
const FEED_LEASE: time::Duration = time::Duration::minutes(2);

impl Engine {
    /// Where the opportunity feed's position (and its lease) is kept: one per CRM.
    pub fn opportunity_feed(&self) -> String {
        format!("{}/opportunities", self.crm.as_code())
    }

    /// Where the account feed's position is kept.
    pub fn account_feed(&self) -> String {
        format!("{}/accounts", self.crm.as_code())
    }
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PollReport {
    /// The first poll: the mirror was filled, nothing was queued.
    pub initial: bool,
    pub changed: usize,
    pub deleted: usize,
    pub queued: Vec<i64>,
    pub echoes: usize,
}

impl Engine {
    /// Reads what changed in the CRM since the last poll and acts on it (see the module doc).
    pub async fn poll_changes(&self) -> Result<PollReport, EngineError> {
        let _one_at_a_time = self.polling.lock().await;
        // Several instances may share the database: one reads the feed at a time.
        let now = OffsetDateTime::now_utc();
        let feed = self.opportunity_feed();
        if !self
            .store
            .take_feed_lease(&feed, &self.owner, now, now + FEED_LEASE)
            .await?
        {
            return Ok(PollReport::default());
        }
        let result = self.poll_leased(&feed).await;
        self.store
            .release_feed_lease(&feed, &self.owner, OffsetDateTime::now_utc())
            .await?;
        result
    }

    async fn poll_leased(&self, feed: &str) -> Result<PollReport, EngineError> {
        self.load_cosell_fields().await?;
        let position = self.store.change_feed(feed).await?;
        let Some(changes) = self
            .fetch_changes(position.as_deref(), |crm, calls, at| async move {
                crm.opportunity_changes(&calls, at).await
            })
            .await?
        else {
            return Ok(PollReport::default());
        };
        // Read once for the whole poll, not once per change.
        let active = self
            .store
            .active_flows(self.crm)
            .await?
            .contains(&Flow::CrmToPartnerCenter);
        let now = OffsetDateTime::now_utc();
        let mut report = PollReport {
            initial: position.is_none(),
            changed: changes.changed.len(),
            deleted: changes.deleted.len(),
            ..Default::default()
        };
        // Opportunities this poll already acted on (a change to both it and its account is one change).
        let mut acted_on = std::collections::HashSet::new();
        for opportunity in &changes.changed {
            let seen = seen(opportunity);
            let before = self.store.see_opportunity(&seen, now).await?;
            if report.initial {
                continue;
            }
            let before = before.as_ref();
            if seen.version.is_some()
                && before.and_then(|b| b.written_version.as_ref()) == seen.version.as_ref()
            {
                report.echoes += 1;
                self.audit_feed(
                    &seen.crm_id,
                    AuditAction::EchoSuppressed,
                    "The CRM reported cosell's own write back as a change: nothing to share.",
                    now,
                )
                .await?;
                continue;
            }
            // A full read after an expired delta link repeats rows nothing changed.
            if before.is_some_and(|b| b.seen.version == seen.version && seen.version.is_some()) {
                continue;
            }
            let was_synced = before.is_some_and(|b| b.seen.sync);
            if !seen.sync && !was_synced {
                continue;
            }
            if let Some(id) = self
                .queue(&seen.crm_id, RunTrigger::CrmChange, active)
                .await?
            {
                report.queued.push(id);
            }
            acted_on.insert(seen.crm_id.clone());
        }
        for id in &changes.deleted {
            self.store.forget_opportunity(id).await?;
        }
        self.store
            .set_change_feed(feed, &changes.position, now)
            .await?;

        // A fix to a customer account (its country, say) is a change to its synced opportunities.
        let account_feed = self.account_feed();
        let position = self.store.change_feed(&account_feed).await?;
        if let Some(accounts) = self
            .fetch_changes(position.as_deref(), |crm, calls, at| async move {
                crm.account_changes(&calls, at).await
            })
            .await?
        {
            if position.is_some() {
                for id in &accounts.changed {
                    for crm_id in self.store.synced_opportunities_of(id).await? {
                        if !acted_on.insert(crm_id.clone()) {
                            continue;
                        }
                        if let Some(run) =
                            self.queue(&crm_id, RunTrigger::CrmChange, active).await?
                        {
                            report.queued.push(run);
                        }
                    }
                }
            }
            self.store
                .set_change_feed(&account_feed, &accounts.position, now)
                .await?;
        }
        if !report.queued.is_empty() {
            self.nudge();
        }
        Ok(report)
    }

    /// One feed's changes since `position`; None when no CRM is configured or connected.
    async fn fetch_changes<'a, T, F, Fut>(
        &'a self,
        position: Option<&'a str>,
        read: F,
    ) -> Result<Option<Changes<T>>, EngineError>
    where
        F: FnOnce(&'a dyn super::crm::CrmPort, super::context::Calls<'a>, Option<&'a str>) -> Fut,
        Fut: std::future::Future<Output = Result<Changes<T>, CrmError>>,
    {
        let crm = match self.crm_port() {
            Ok(crm) => crm,
            Err(_) => return Ok(None),
        };
        match read(crm, self.calls(), position).await {
            Ok(changes) => Ok(Some(changes)),
            Err(CrmError::NotConnected(_) | CrmError::NotConfigured(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Queues "CRM to Partner Center" for an opportunity (one waiting run at most), or, when the
    /// flow is off, records a skipped run to resubmit once it is on. The run's id, None when one was
    /// already waiting.
    pub async fn queue_opportunity(
        &self,
        crm_id: &str,
        trigger: RunTrigger,
    ) -> Result<Option<i64>, StoreError> {
        let active = self
            .store
            .active_flows(self.crm)
            .await?
            .contains(&Flow::CrmToPartnerCenter);
        self.queue(crm_id, trigger, active).await
    }

    /// [`Engine::queue_opportunity`], knowing whether the flow is on.
    async fn queue(
        &self,
        crm_id: &str,
        trigger: RunTrigger,
        active: bool,
    ) -> Result<Option<i64>, StoreError> {
        let flow = Flow::CrmToPartnerCenter;
        if active && self.store.queued_run(flow, crm_id).await?.is_some() {
            return Ok(None);
        }
        let settled = (!active).then(|| {
            (
                RunStatus::Skipped,
                format!(
                    "“{}” is off: the change to opportunity {crm_id} was not shared. Activate the flow, then resubmit this run.",
                    flow.name(self.crm)
                ),
            )
        });
        let now = OffsetDateTime::now_utc();
        let id = self
            .store
            .enqueue_run(
                &NewRun {
                    flow,
                    trigger,
                    input: RunInput::opportunity(crm_id),
                    record_id: Some(crm_id.to_string()),
                    parent_run_id: None,
                    resubmitted_from: None,
                    settled: settled.clone(),
                },
                now,
            )
            .await?;
        if let Some((status, why)) = settled {
            self.audit_feed(crm_id, AuditAction::OpportunitySkippedFlowOff, &why, now)
                .await?;
            self.announce(id, flow, status, why);
        } else {
            self.nudge();
        }
        Ok(Some(id))
    }

    async fn audit_feed(
        &self,
        crm_id: &str,
        action: AuditAction,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.store
            .record_audit(
                &NewAuditEvent {
                    actor: "change feed".into(),
                    direction: Some(Direction::ToPartnerCenter),
                    ..NewAuditEvent::new(action, "opportunity", crm_id, detail)
                },
                at,
            )
            .await
            .map(|_| ())
    }

    /// Polls the change feed every `every` until `stop` turns true. Failures are logged and retried at
    /// the next tick (an expired connection shows on the Connections page).
    pub fn spawn_change_feed(self: &Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                let wait = match engine.poll_changes().await {
                    Ok(_) => every,
                    // Each refused call still costs one: ask again once the allocation may be free.
                    Err(EngineError::Crm(CrmError::AllocationSpent { wait, .. })) => {
                        tracing::warn!(
                            "CRM change feed: the daily API allocation is spent; waiting"
                        );
                        wait.max(every)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "CRM change feed: poll failed");
                        every
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        });
    }
}
