//! Reconciliation: Partner Center and the CRM compared, and a run queued for each record that differs —
//! what a missed webhook, a connector that was down or an edit made while a flow was off left behind.
//! Never the FAQ's "make a minor update to the opportunity".
//!
//! What is compared, at the floor of API calls:
//! - Partner Center: the referrals updated since the last reconciliation began, read newest first, one
//!   call per page, stopping at the first page that reaches older ones. A referral differs when no run
//!   has looked at it (or at its opportunity) since it was last updated, and none is on its way.
//! - The CRM: the synced opportunities as the change feed mirrors them (no call). One differs when what
//!   it last carried was skipped because its flow was off, or when it is ready, unlinked and was never
//!   shared.
//!
//! A difference is queued as a run of the flow that carries it ("Partner Center to CRM", "CRM to Partner
//! Center") when that flow is on; the run itself reads the record again and does what it always does,
//! so a referral queued twice still makes one opportunity. The reconciliation records its progress
//! (records compared of total, differences, runs queued) as it goes, for the progress bar.

use super::Engine;
use super::context::{RunContext, StepError};
use crate::clients::partner_center::referrals::{AUDIENCE as REFERRALS, ListedReferral};
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::opportunity::OpportunityState;
use crate::domain::runs::{Progress, RunInput, RunStatus, RunTrigger, StepOutcome, when};
use crate::store::{MirroredOpportunity, NewRun, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// The record id of every reconciliation: one runs at a time (the queue's one-running-run rule).
pub const RECORD: &str = "reconciliation";

/// Referrals asked for per page (Partner Center's maximum page size is unconfirmed; its samples use 10).
const PAGE_SIZE: u32 = 100;

/// How far before the last reconciliation's start the next one looks again: Partner Center's clock and
/// ours may differ a little.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// How often a reconciliation runs by itself.
pub const EVERY: time::Duration = time::Duration::days(1);

/// The flows whose runs carry an opportunity's changes to Partner Center.
const OPPORTUNITY_FLOWS: &[Flow] = &[Flow::CrmToPartnerCenter, Flow::SolutionsToPartnerCenter];

/// Progress is written every this many records (and at the end).
const PROGRESS_EVERY: i64 = 20;

/// Whether a record differs, and what was done about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Same,
    Queued,
    /// Differs, but its flow is off: nothing queued (the outcome says so).
    FlowOff,
}

impl Engine {
    /// Queues a reconciliation, unless one is waiting already: the id of the one that will run.
    pub async fn queue_reconciliation(
        &self,
        trigger: RunTrigger,
        reason: &str,
    ) -> Result<i64, StoreError> {
        if let Some(waiting) = self.store.queued_run(Flow::Reconciliation, RECORD).await? {
            return Ok(waiting);
        }
        let id = self
            .store
            .enqueue_run(
                &NewRun {
                    flow: Flow::Reconciliation,
                    trigger,
                    input: RunInput::Reconciliation {
                        reason: reason.to_string(),
                    },
                    record_id: Some(RECORD.to_string()),
                    parent_run_id: None,
                    resubmitted_from: None,
                    settled: None,
                },
                OffsetDateTime::now_utc(),
            )
            .await?;
        self.nudge();
        Ok(id)
    }

    /// Queues the daily reconciliation when a day has passed since the last one was queued (before the
    /// first: since Partner Center was connected). Several instances may ask; one waits in the queue.
    pub async fn reconcile_if_due(&self, now: OffsetDateTime) -> Result<Option<i64>, StoreError> {
        let last = match self.store.last_reconciliation_queued().await? {
            Some(last) => last,
            None => match self.store.first_connected(System::PartnerCenter).await? {
                Some(first) => first,
                None => return Ok(None),
            },
        };
        if now - last < EVERY {
            return Ok(None);
        }
        self.queue_reconciliation(RunTrigger::Schedule, "the daily reconciliation")
            .await
            .map(Some)
    }

    /// Asks every `check_every` whether the daily reconciliation is due.
    pub fn spawn_reconciliation_schedule(
        self: &Arc<Self>,
        check_every: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                if *stop.borrow() {
                    break;
                }
                if let Err(e) = engine.reconcile_if_due(OffsetDateTime::now_utc()).await {
                    tracing::warn!(error = %e, "could not queue the daily reconciliation");
                }
                tokio::select! {
                    _ = tokio::time::sleep(check_every) => {}
                    _ = stop.changed() => {}
                }
            }
        });
    }
}

/// Runs a reconciliation.
pub(super) async fn run(ctx: &RunContext<'_>) -> Result<(RunStatus, String), StepError> {
    let engine = ctx.engine();
    let store = engine.store();
    let since = since(engine).await.map_err(StepError::store)?;
    let referrals = updated_referrals(ctx, since).await?;
    let opportunities = store
        .synced_opportunities()
        .await
        .map_err(StepError::store)?;
    let active = store
        .active_flows(engine.crm())
        .await
        .map_err(StepError::store)?;
    let mut progress = Progress {
        total: (referrals.len() + opportunities.len()) as i64,
        ..Progress::default()
    };
    let save = |p: Progress| async move {
        store
            .set_progress(ctx.run_id(), &p, OffsetDateTime::now_utc())
            .await
            .map_err(StepError::store)
    };
    save(progress).await?;
    let mut flow_off = BTreeSet::new();
    let mut count = |progress: &mut Progress, found: Found, flow: Flow| {
        progress.compared += 1;
        match found {
            Found::Same => {}
            Found::Queued => {
                progress.differences += 1;
                progress.queued += 1;
            }
            Found::FlowOff => {
                progress.differences += 1;
                flow_off.insert(flow);
            }
        }
    };
    for referral in &referrals {
        let flow = Flow::PartnerCenterToCrm;
        let found = compare_referral(engine, referral, active.contains(&flow))
            .await
            .map_err(StepError::store)?;
        count(&mut progress, found, flow);
        if progress.compared % PROGRESS_EVERY == 0 {
            save(progress).await?;
        }
    }
    for opportunity in &opportunities {
        let flow = Flow::CrmToPartnerCenter;
        let found = compare_opportunity(engine, opportunity, active.contains(&flow))
            .await
            .map_err(StepError::store)?;
        count(&mut progress, found, flow);
        if progress.compared % PROGRESS_EVERY == 0 {
            save(progress).await?;
        }
    }
    save(progress).await?;
    let mut outcome = format!(
        "Compared {} referrals updated since {} and {} synced opportunities: {} differed, {} {} queued.",
        referrals.len(),
        when(since),
        opportunities.len(),
        progress.differences,
        progress.queued,
        if progress.queued == 1 { "run" } else { "runs" },
    );
    for flow in flow_off {
        outcome.push_str(&format!(
            " “{}” is off: what differs for it waits until it is on and the next reconciliation.",
            flow.name(engine.crm())
        ));
    }
    ctx.decide(
        "Compare Partner Center with the CRM",
        StepOutcome::Ok,
        &outcome,
    )
    .await?;
    Ok((RunStatus::Succeeded, outcome))
}

/// From when referrals are compared: a little before the last reconciliation began, or, for the first,
/// since Partner Center was first connected (before that, referrals were someone else's to sync).
async fn since(engine: &Engine) -> Result<OffsetDateTime, StoreError> {
    let store = engine.store();
    if let Some(last) = store.last_reconciliation().await? {
        return Ok(last - CLOCK_SKEW);
    }
    Ok(store
        .first_connected(System::PartnerCenter)
        .await?
        .unwrap_or_else(OffsetDateTime::now_utc))
}

/// The referrals updated at or after `since`, newest first, page by page until one reaches older ones.
async fn updated_referrals(
    ctx: &RunContext<'_>,
    since: OffsetDateTime,
) -> Result<Vec<ListedReferral>, StepError> {
    let engine = ctx.engine();
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let link = next.clone();
        let page = ctx
            .calls()
            .call(
                &format!("List referrals updated since {}", when(since)),
                System::PartnerCenter,
                REFERRALS,
                |t| {
                    let link = link.clone();
                    async move {
                        engine
                            .referrals
                            .updated_page(&t, link.as_deref(), PAGE_SIZE)
                            .await
                    }
                },
            )
            .await
            .map_err(|f| f.into_step_error())?;
        let reached_older = page.referrals.iter().any(|r| r.updated < since);
        found.extend(page.referrals.into_iter().filter(|r| r.updated >= since));
        match page.next {
            Some(link) if !reached_older => next = Some(link),
            _ => return Ok(found),
        }
    }
}

/// A referral differs when no run has looked at it, or at the opportunity it is linked to, since it
/// was last updated, and none is on its way.
async fn compare_referral(
    engine: &Engine,
    referral: &ListedReferral,
    flow_on: bool,
) -> Result<Found, StoreError> {
    let store = engine.store();
    let own = store
        .record_runs(&referral.id, &[Flow::PartnerCenterToCrm])
        .await?;
    let linked = match store.opportunity_for_referral(&referral.id).await? {
        Some(o) => store.record_runs(&o.seen.crm_id, OPPORTUNITY_FLOWS).await?,
        None => Default::default(),
    };
    if own.in_flight || linked.in_flight {
        return Ok(Found::Same);
    }
    let looked = own.last_looked.max(linked.last_looked);
    if looked.is_some_and(|at| at >= referral.updated) {
        return Ok(Found::Same);
    }
    if !flow_on {
        return Ok(Found::FlowOff);
    }
    store
        .enqueue_run(
            &NewRun {
                flow: Flow::PartnerCenterToCrm,
                trigger: RunTrigger::Reconciliation,
                input: RunInput::Referral {
                    referral_id: referral.id.clone(),
                    account_id: None,
                },
                record_id: Some(referral.id.clone()),
                parent_run_id: None,
                resubmitted_from: None,
                settled: None,
            },
            OffsetDateTime::now_utc(),
        )
        .await?;
    engine.nudge();
    Ok(Found::Queued)
}

/// A synced opportunity differs when what it last carried was skipped because its flow was off, or
/// when it is ready, open, linked to no referral and no run ever looked at it.
async fn compare_opportunity(
    engine: &Engine,
    opportunity: &MirroredOpportunity,
    flow_on: bool,
) -> Result<Found, StoreError> {
    let seen = &opportunity.seen;
    let runs = engine
        .store()
        .record_runs(&seen.crm_id, OPPORTUNITY_FLOWS)
        .await?;
    if runs.in_flight {
        return Ok(Found::Same);
    }
    let ready = opportunity.problems.as_ref().is_some_and(Vec::is_empty);
    let never_shared = seen.referral_id.is_none()
        && seen.state == OpportunityState::Open
        && ready
        && runs.last_looked.is_none();
    if !runs.last_skipped_flow_off && !never_shared {
        return Ok(Found::Same);
    }
    if !flow_on {
        return Ok(Found::FlowOff);
    }
    // The flow is known to be on: queued at once (no second read of the flows).
    let flow = Flow::CrmToPartnerCenter;
    Ok(
        match engine
            .queue(&seen.crm_id, RunTrigger::Reconciliation, flow, true, None)
            .await?
        {
            Some(_) => Found::Queued,
            None => Found::Same,
        },
    )
}
