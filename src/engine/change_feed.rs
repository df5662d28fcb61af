//! The CRM's change feed: what changed in the CRM since the last poll, read through the CRM port at an
//! interval (Dynamics 365: change tracking, crm-apis.md §2.6). Every change keeps the Opportunities page
//! current; a change to an opportunity with "Sync with Partner Center" on (or just switched off) queues
//! a run of "CRM to Partner Center" — unless it is the echo of cosell's own write, which is audited and
//! dropped, or a change to the Microsoft solutions alone of an opportunity already linked to its
//! referral, which queues "Microsoft Solutions to Partner Center". What changed is told by comparing
//! the row with the feed's own previous reading of it in the mirror (its solutions, and a fingerprint of
//! the other fields that reach Partner Center).
//!
//! The first poll only mirrors what exists (sharing every synced opportunity at once on the first start
//! would surprise); the position is saved after the runs are queued, so a crash in between repeats
//! changes rather than losing them, and a change seen twice queues one run.

use super::crm::{Changes, CrmError};
use super::crm_to_partner_center::seen;
use super::{Engine, EngineError};
use crate::domain::flows::Flow;
use crate::domain::opportunity::Opportunity;
use crate::domain::runs::{AuditAction, Direction, RunInput, RunStatus, RunTrigger};
use crate::store::{MirroredOpportunity, NewAuditEvent, NewRun, SeenOpportunity, StoreError};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// How long an instance may hold the feed (a poll takes seconds; a dead instance's lease runs out).
/// How often the feed is read when this instance does not read it itself (the server's default,
/// `--crm-poll-ms`).
pub(crate) const DEFAULT_FEED_EVERY: Duration = Duration::from_secs(60);

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
        let active = self.store.active_flows(self.crm).await?;
        let now = OffsetDateTime::now_utc();
        let mut report = PollReport {
            initial: position.is_none(),
            changed: changes.changed.len(),
            deleted: changes.deleted.len(),
            ..Default::default()
        };
        // Opportunities this poll queued "CRM to Partner Center" for (a change to both it and its
        // account is one change).
        let mut acted_on = std::collections::HashSet::new();
        for opportunity in &changes.changed {
            let seen = as_fed(opportunity);
            // Decide and queue before recording what was seen: if cosell dies in between, the next
            // poll reads the change again (the position moves only after the whole poll) and queues it
            // then, rather than taking it for a change already handled.
            if !report.initial {
                let before = self.store.opportunity(&seen.crm_id).await?;
                match verdict(before.as_ref(), &seen) {
                    Verdict::Echo => {
                        // The first sighting of an opportunity cosell created (the feed never read it
                        // before): its account changing in the same poll is the same write of cosell's
                        // (a customer it created with it), not a seller's fix. An echo of a later
                        // write (the result note) says nothing of the account: a seller's fix to it
                        // in the same poll is shared.
                        if before.as_ref().is_none_or(|b| b.seen.fingerprint.is_none()) {
                            acted_on.insert(seen.crm_id.clone());
                        }
                        report.echoes += 1;
                        self.audit_feed(
                            &seen.crm_id,
                            None,
                            AuditAction::EchoSuppressed,
                            "The CRM reported cosell's own write back as a change: nothing to share.",
                            now,
                        )
                        .await?;
                    }
                    Verdict::Nothing => {}
                    Verdict::Share(flow) => {
                        if let Some(id) = self
                            .queue(
                                &seen.crm_id,
                                RunTrigger::CrmChange,
                                flow,
                                active.contains(&flow),
                                Some(&seen),
                            )
                            .await?
                        {
                            report.queued.push(id);
                        }
                        if flow == Flow::CrmToPartnerCenter {
                            acted_on.insert(seen.crm_id.clone());
                        }
                    }
                }
            }
            // Recorded whatever the verdict: a full read after an expired delta link may carry what
            // the mirror lacks (columns the feed tracks since).
            self.store.record_seen(&seen, now).await?;
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
                let crm = self.crm_port()?;
                for account in &accounts.changed {
                    for crm_id in self.store.synced_opportunities_of(&account.id).await? {
                        if acted_on.contains(&crm_id)
                            || created_with(crm, account, self.store.opportunity(&crm_id).await?)
                        {
                            continue;
                        }
                        acted_on.insert(crm_id.clone());
                        let flow = Flow::CrmToPartnerCenter;
                        if let Some(run) = self
                            .queue(
                                &crm_id,
                                RunTrigger::CrmChange,
                                flow,
                                active.contains(&flow),
                                None,
                            )
                            .await?
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
            Err(CrmError::NotConnected { .. } | CrmError::NotConfigured(_)) => Ok(None),
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
        let flow = Flow::CrmToPartnerCenter;
        let active = self.store.active_flows(self.crm).await?.contains(&flow);
        self.queue(crm_id, trigger, flow, active, None).await
    }

    /// [`Engine::queue_opportunity`] for `flow` ("CRM to Partner Center" or "Microsoft Solutions to
    /// Partner Center"), knowing whether it is on. `fed` is what the change feed read, when the run is
    /// for the opportunity's own change: the run is told its version, to know cosell's own write.
    pub(super) async fn queue(
        &self,
        crm_id: &str,
        trigger: RunTrigger,
        flow: Flow,
        active: bool,
        fed: Option<&SeenOpportunity>,
    ) -> Result<Option<i64>, StoreError> {
        let input = RunInput::Opportunity {
            opportunity_id: crm_id.to_string(),
            referral_id: fed.and_then(|s| s.referral_id.clone()),
            check_only: false,
            fed_version: fed.and_then(|s| s.version.clone()),
        };
        if active && let Some(waiting) = self.waiting(flow, crm_id).await? {
            // The waiting run carries this change too. It may be a seller's, made after the change
            // the run was queued for: the run no longer takes what it reads for cosell's own write.
            if self
                .store
                .replace_queued_input(waiting, &RunInput::opportunity(crm_id))
                .await?
            {
                return Ok(None);
            }
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
                    input,
                    record_id: Some(crm_id.to_string()),
                    parent_run_id: None,
                    resubmitted_from: None,
                    settled: settled.clone(),
                },
                now,
            )
            .await?;
        if let Some((status, why)) = settled {
            // Tied to its run: a reconciliation tells a flow-off skip by it.
            self.audit_feed(
                crm_id,
                Some(id),
                AuditAction::OpportunitySkippedFlowOff,
                &why,
                now,
            )
            .await?;
            self.announce(id, flow, status, why);
        } else {
            self.nudge();
        }
        Ok(Some(id))
    }

    /// Whether a run already waiting for the opportunity will carry this change too: one of the same
    /// flow, or, for a solutions change, one of "CRM to Partner Center" (which reads it whole).
    async fn waiting(&self, flow: Flow, crm_id: &str) -> Result<Option<i64>, StoreError> {
        if let Some(id) = self.store.queued_run(flow, crm_id).await? {
            return Ok(Some(id));
        }
        if flow == Flow::SolutionsToPartnerCenter {
            return self
                .store
                .queued_run(Flow::CrmToPartnerCenter, crm_id)
                .await;
        }
        Ok(None)
    }

    async fn audit_feed(
        &self,
        crm_id: &str,
        run_id: Option<i64>,
        action: AuditAction,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.store
            .record_audit(
                &NewAuditEvent {
                    run_id,
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
        let _ = self.feed.every.set(every);
        tokio::spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                let polled = engine.poll_changes().await;
                engine
                    .feed
                    .record(polled.as_ref().err().map(ToString::to_string));
                let wait = match polled {
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

/// How this instance's reading of the change feed goes, for Diagnostics' `crm-feed-current`.
#[derive(Debug, Default)]
pub struct FeedHealth {
    /// How often it is read (set when the reading starts).
    pub(crate) every: std::sync::OnceLock<Duration>,
    /// The last read's failure, if the last read failed: when, and why.
    last_failure: std::sync::Mutex<Option<(OffsetDateTime, String)>>,
}

impl FeedHealth {
    fn record(&self, failure: Option<String>) {
        *self.lock() = failure.map(|why| (OffsetDateTime::now_utc(), why));
    }

    /// How often it is read (the default until the reading starts).
    pub(crate) fn every(&self) -> Duration {
        self.every.get().copied().unwrap_or(DEFAULT_FEED_EVERY)
    }

    pub(crate) fn last_failure(&self) -> Option<(OffsetDateTime, String)> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(OffsetDateTime, String)>> {
        self.last_failure.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the mirror keeps of a feed row: the feed alone records the solutions and the fingerprint, so
/// that it compares each row with its own previous reading.
pub(crate) fn as_fed(o: &Opportunity) -> SeenOpportunity {
    SeenOpportunity {
        solutions: Some(o.solution_ids()),
        fingerprint: Some(o.fingerprint()),
        ..seen(o)
    }
}

/// What a row of the change feed calls for, judged against what cosell saw of it before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// cosell's own write coming back.
    Echo,
    /// Nothing to share: the row repeats (a full read after an expired delta link), or sync is off
    /// and was off.
    Nothing,
    /// A change to share through this flow.
    Share(Flow),
}

/// Whether an account change is the account cosell created with the opportunity, untouched since: the
/// feed has not read the opportunity yet (its first sighting, an echo, is still to come: the two feeds
/// are read one after the other, and a create can fall between them) and the account was written
/// before cosell's write of the opportunity. A seller's fix to the new account comes after, and is
/// shared.
fn created_with(
    crm: &dyn super::crm::CrmPort,
    account: &super::crm::AccountChange,
    opportunity: Option<MirroredOpportunity>,
) -> bool {
    let Some(opportunity) = opportunity else {
        return false;
    };
    match (&account.version, &opportunity.written_version) {
        (Some(account), Some(written)) => {
            opportunity.seen.fingerprint.is_none() && crm.written_before(account, written)
        }
        _ => false,
    }
}

fn verdict(before: Option<&MirroredOpportunity>, seen: &SeenOpportunity) -> Verdict {
    if seen.version.is_some()
        && before.and_then(|b| b.written_version.as_ref()) == seen.version.as_ref()
    {
        return Verdict::Echo;
    }
    if before.is_some_and(|b| b.seen.version == seen.version && seen.version.is_some()) {
        return Verdict::Nothing;
    }
    if !seen.sync && !before.is_some_and(|b| b.seen.sync) {
        return Verdict::Nothing;
    }
    Verdict::Share(if only_solutions_changed(before, seen) {
        Flow::SolutionsToPartnerCenter
    } else {
        Flow::CrmToPartnerCenter
    })
}

/// Whether `now` differs from the feed's previous reading of a linked opportunity in its solutions
/// alone. Only the feed's own readings are compared (runs record what they read too, from reads that
/// may name other records, such as a contact customer's account); anything unknown (a row the feed
/// never read, or read before cosell kept the solutions) counts as a difference, and the whole
/// opportunity is sent.
fn only_solutions_changed(before: Option<&MirroredOpportunity>, now: &SeenOpportunity) -> bool {
    let Some(before) = before.map(|b| &b.seen) else {
        return false;
    };
    now.referral_id.is_some()
        && before.solutions.is_some()
        && before.solutions != now.solutions
        && before.fingerprint.is_some()
        && before.fingerprint == now.fingerprint
}
