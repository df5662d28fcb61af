//! The sync engine: turns triggers into runs, and runs them.
//!
//! Workers claim due runs from the database with a lease ([`Store::claim_run`]), execute the run's flow
//! step by step ([`context::RunContext`] records every call and decision, and counts API calls per
//! connection per UTC day), then finish the run, or put it back in the queue after a transient failure
//! with backoff (`Retry-After` honoured). Flows are written to be re-run from the top: a retried run
//! finds what its earlier attempt already did and does not do it twice.

pub mod admin;
pub mod alerts;
mod budget;
pub mod change_feed;
mod charts;
pub mod connection_check;
pub mod context;
pub mod crm;
pub mod crm_to_partner_center;
mod currencies;
pub mod diagnostics;
mod echoes;
#[cfg(test)]
mod flow_tests;
mod partner_center_to_crm;
pub mod reconciliation;
pub mod retention;
pub mod retry;
pub mod tokens;
pub mod webhook_deliveries;
pub mod webhook_registration;

use crate::clients::dynamics::DynamicsClient;
use crate::clients::partner_center::referrals::ReferralsClient;
use crate::clients::partner_center::webhook_registration::WebhookRegistrationClient;
use crate::clients::salesforce::SalesforceClient;
use crate::clients::tls::TlsTrust;
use crate::domain::connection::Diagnosis;
use crate::domain::flows::Flow;
use crate::domain::runs::{AuditAction, Direction, FailureCause, RunInput, RunStatus, RunTrigger};
use crate::domain::system::Crm;
use crate::store::{NewAuditEvent, NewRun, Run, Store, StoreError};
use context::{Calls, LeaseWatch, RunContext, StepError};
use crm::{CrmError, CrmPort};
use retry::RetryPolicy;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokens::TokenSource;
use tokio::sync::{Notify, broadcast, watch};

/// Where the outside APIs are (the real ones, or the sandbox).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `https://api.partner.microsoft.com`
    pub partner_center_api: String,
    /// `https://api.partnercenter.microsoft.com`
    pub partner_center_webhooks_api: String,
    /// The Dataverse organization URL, the token audience: `https://{org}.crm.dynamics.com`.
    pub dynamics_resource: Option<String>,
    /// `{organization}/api/data/v9.2`
    pub dynamics_api: Option<String>,
    /// The co-sell solution's column names in the organization.
    pub dynamics_columns: crm::dynamics::Columns,
    /// The CRM this instance syncs with.
    pub crm: Crm,
    /// The co-sell fields' API names on Salesforce's Opportunity.
    pub salesforce_fields: crm::salesforce::Fields,
    /// The CAs the engine's HTTPS client trusts: the public roots, and the sandbox's in sandbox mode.
    pub tls: TlsTrust,
}

/// Why an engine action asked for from outside a run (the dashboard) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Crm(#[from] CrmError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the value mapping is kept among the settings.
pub const MAPPING_SETTING: &str = "mapping";

/// A run reached a final status, or was put back to wait for a spent API allocation (status
/// `Queued`): what the dashboard and tests listen for.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFinished {
    pub run_id: i64,
    pub flow: Flow,
    pub status: RunStatus,
    pub outcome: String,
}

pub struct Engine {
    pub(crate) store: Store,
    pub(crate) tokens: Arc<TokenSource>,
    /// Which CRM the flows are for (their names say it), configured or not.
    pub(crate) crm: Crm,
    /// The CRM behind its port; None until one is configured.
    crm_port: Option<Arc<dyn CrmPort>>,
    pub(crate) endpoints: Endpoints,
    pub(crate) referrals: ReferralsClient,
    pub(crate) webhooks: WebhookRegistrationClient,
    policy: RetryPolicy,
    owner: String,
    wake: Notify,
    finished: broadcast::Sender<RunFinished>,
    /// One change-feed poll at a time in this instance.
    polling: tokio::sync::Mutex<()>,
    /// The last Diagnostics report, kept a minute.
    pub(crate) diagnostics: diagnostics::Cache,
    /// How reading the CRM's change feed goes here.
    pub(crate) feed: change_feed::FeedHealth,
    /// Webhook deliveries this instance refused.
    refusals: webhook_deliveries::Refusals,
    /// The CRM's currency ids, lately read.
    currencies: currencies::Currencies,
    /// Writes to Partner Center under way here (their events wait for them).
    in_flight: echoes::InFlight,
    /// The Overview's charts, lately drawn.
    charts: charts::ChartsCache,
    /// When to judge the alert rules and send their messages.
    alerts: alerts::AlertsState,
    /// Alert webhooks go out with it (no redirects followed, the call time limit).
    alert_http: reqwest::Client,
}

impl Engine {
    /// The engine with the CRM the endpoints configure: Salesforce (its org comes with the
    /// connection), or Dynamics 365 once its organization is set.
    pub fn new(
        store: Store,
        tokens: Arc<TokenSource>,
        endpoints: Endpoints,
        policy: RetryPolicy,
    ) -> Result<Arc<Engine>, String> {
        let http = http_client(&policy, &endpoints.tls)?;
        let crm = endpoints.crm;
        let port: Option<Arc<dyn CrmPort>> = match crm {
            Crm::Salesforce => Some(Arc::new(crm::salesforce::SalesforceAdapter::new(
                SalesforceClient::new(http.clone()),
                endpoints.salesforce_fields.clone(),
            ))),
            Crm::Dynamics365 => match (&endpoints.dynamics_api, &endpoints.dynamics_resource) {
                (Some(api), Some(resource)) => Some(Arc::new(crm::dynamics::DynamicsAdapter::new(
                    DynamicsClient::new(http.clone(), api),
                    resource,
                    endpoints.dynamics_columns.clone(),
                ))),
                _ => None,
            },
        };
        Engine::with_crm(store, tokens, endpoints, policy, crm, port)
    }

    /// The engine with the given CRM behind its port.
    pub fn with_crm(
        store: Store,
        tokens: Arc<TokenSource>,
        endpoints: Endpoints,
        policy: RetryPolicy,
        crm: Crm,
        port: Option<Arc<dyn CrmPort>>,
    ) -> Result<Arc<Engine>, String> {
        let http = http_client(&policy, &endpoints.tls)?;
        let (finished, _) = broadcast::channel(1024);
        Ok(Arc::new(Engine {
            referrals: ReferralsClient::new(http.clone(), &endpoints.partner_center_api),
            webhooks: WebhookRegistrationClient::new(
                http.clone(),
                &endpoints.partner_center_webhooks_api,
            ),
            store,
            tokens,
            crm,
            crm_port: port,
            endpoints,
            policy,
            owner: format!("worker-{}", uuid_like()),
            wake: Notify::new(),
            finished,
            polling: tokio::sync::Mutex::new(()),
            diagnostics: diagnostics::Cache::default(),
            feed: change_feed::FeedHealth::default(),
            refusals: webhook_deliveries::Refusals::default(),
            currencies: currencies::Currencies::default(),
            in_flight: echoes::InFlight::default(),
            charts: charts::ChartsCache::default(),
            alerts: alerts::AlertsState::new(),
            alert_http: http,
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    pub fn crm(&self) -> Crm {
        self.crm
    }

    /// The CRM behind its port, or why there is none.
    pub fn crm_port(&self) -> Result<&dyn CrmPort, CrmError> {
        self.crm_port
            .as_deref()
            .ok_or_else(|| CrmError::NotConfigured(not_configured(self.crm)))
    }

    /// Where a person opens an opportunity in the CRM, and the CRM's name (None when no CRM is set up).
    pub async fn record_link(&self, crm_id: &str) -> Option<(String, &'static str)> {
        let port = self.crm_port().ok()?;
        let link = port.record_link(&self.calls(), crm_id).await?;
        Some((link, self.crm.label()))
    }

    /// Calls made outside any run (counted against the day's quota).
    pub fn calls(&self) -> Calls<'_> {
        Calls::outside_run(self)
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The value mapping the admin configured, or the defaults.
    pub async fn mapping(&self) -> Result<crate::domain::mapping::Mapping, StoreError> {
        Ok(match self.store.setting(MAPPING_SETTING).await? {
            None => crate::domain::mapping::Mapping::defaults(self.crm),
            Some(value) => serde_json::from_value(value).map_err(|e| {
                StoreError::Corrupt(format!("the stored value mapping does not read: {e}"))
            })?,
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RunFinished> {
        self.finished.subscribe()
    }

    /// Tells whoever listens (the dashboard, tests) that a run reached a final status.
    pub(crate) fn announce(&self, run_id: i64, flow: Flow, status: RunStatus, outcome: String) {
        self.charts.invalidate();
        let _ = self.finished.send(RunFinished {
            run_id,
            flow,
            status,
            outcome,
        });
    }

    /// Tells idle workers there is work.
    pub fn nudge(&self) {
        self.wake.notify_waiters();
    }

    /// A verified webhook event, stored in the inbox as `inbox_id`, becomes a run of "Partner Center to
    /// CRM" — or a skipped run, audited, when that flow is off (resubmit it once the flow is on).
    pub async fn accept_event(
        &self,
        stored: &crate::store::InboxEvent,
    ) -> Result<Option<i64>, StoreError> {
        let (inbox_id, event, referral_id) = (
            stored.id,
            stored.event.as_str(),
            stored.referral_id.as_str(),
        );
        let flow = Flow::PartnerCenterToCrm;
        let active = self.store.active_flows(self.crm).await?.contains(&flow);
        let settled = if event == "test-created" {
            // Partner Center's validation event (sent from the registration API): proof of delivery.
            Some((
                RunStatus::Succeeded,
                "Partner Center's validation event arrived, signed and verified: webhooks reach cosell."
                    .to_string(),
            ))
        } else {
            (!active).then(|| {
            (
                RunStatus::Skipped,
                format!(
                    "“{}” is off: the {event} event was not synced. Activate the flow, then resubmit this run.",
                    flow.name(self.crm)
                ),
            )
            })
        };
        let run = NewRun {
            flow,
            trigger: RunTrigger::Webhook,
            input: RunInput::Event {
                event: event.to_string(),
                referral_id: referral_id.to_string(),
                inbox_id,
                changed_at: Some(stored.changed_at.clone()),
            },
            record_id: Some(referral_id.to_string()),
            parent_run_id: None,
            resubmitted_from: None,
            settled: settled.clone(),
        };
        let now = OffsetDateTime::now_utc();
        let id = self.store.enqueue_from_inbox(inbox_id, &run, now).await?;
        if let (Some(id), Some((RunStatus::Skipped, why))) = (id, &settled) {
            self.store
                .record_audit(
                    &NewAuditEvent {
                        run_id: Some(id),
                        direction: Some(Direction::ToCrm),
                        ..NewAuditEvent::new(
                            AuditAction::ReferralSkippedFlowOff,
                            "referral",
                            referral_id,
                            why.clone(),
                        )
                    },
                    now,
                )
                .await?;
        }
        if let (Some(id), Some((status, outcome))) = (id, settled) {
            self.announce(id, flow, status, outcome);
        }
        self.nudge();
        Ok(id)
    }

    /// Turns inbox events left unprocessed (a crash between storing and queueing, in this instance or
    /// another) into runs. An event another instance is queueing at the same moment is queued once: the
    /// hand-over marks it processed in the run's transaction.
    pub async fn recover_inbox(&self) -> Result<usize, StoreError> {
        let pending = self.store.unprocessed_inbox().await?;
        let mut queued = 0;
        for event in &pending {
            if self.accept_event(event).await?.is_some() {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Drains the inbox every `every` until `stop` turns true, so a stored event never waits for a
    /// restart to become a run (one query on an index of the unprocessed events when there is none).
    pub fn spawn_inbox_drain(self: &Arc<Self>, every: Duration, mut stop: watch::Receiver<bool>) {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                match engine.recover_inbox().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(events = n, "queued runs for inbox events left unprocessed")
                    }
                    Err(e) => tracing::warn!(error = %e, "could not drain the inbox"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    break;
                }
            }
        });
    }

    /// Starts `n` workers; they stop when `stop` turns true.
    pub fn spawn_workers(self: &Arc<Self>, n: usize, stop: watch::Receiver<bool>) {
        // Runs other instances queue (PostgreSQL) wake these workers at once.
        tokio::spawn({
            let engine = self.clone();
            let mut stop = stop.clone();
            async move {
                tokio::select! {
                    _ = engine.store.on_runs_queued(|| engine.nudge()) => {}
                    _ = stop.wait_for(|stopped| *stopped) => {}
                }
            }
        });
        for i in 0..n {
            let engine = self.clone();
            let mut stop = stop.clone();
            let owner = format!("{}-{i}", self.owner);
            tokio::spawn(async move {
                loop {
                    if *stop.borrow() {
                        break;
                    }
                    // Listening before looking: a nudge while this worker reads the queue is not lost.
                    let woken = engine.wake.notified();
                    tokio::pin!(woken);
                    woken.as_mut().enable();
                    match engine.work_once(&owner).await {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => tracing::error!(error = %e, "worker: database error"),
                    }
                    // Idle: runs paused for a connection that works again (reconnected here or on
                    // another instance, or a refresh that worked) go now.
                    match engine.store.resume_paused(OffsetDateTime::now_utc()).await {
                        Ok(0) => {}
                        Ok(n) => {
                            tracing::info!(
                                runs = n,
                                "paused runs resumed: their connection works again"
                            );
                            engine.diagnostics.invalidate();
                            // What else happened while the connection was down is found by comparing.
                            if let Err(e) = engine
                                .queue_reconciliation(
                                    RunTrigger::Schedule,
                                    "a connection came back",
                                )
                                .await
                            {
                                tracing::error!(error = %e, "could not queue a reconciliation");
                            }
                            continue;
                        }
                        Err(e) => tracing::error!(error = %e, "worker: database error"),
                    }
                    let wait = engine.idle_wait().await;
                    tokio::select! {
                        _ = woken => {}
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.changed() => {}
                    }
                }
            });
        }
    }

    /// How long an idle worker may wait before the next queued run is due (at most the poll interval:
    /// another instance's run is announced on PostgreSQL, but a notification lost with a dropped
    /// connection is found by the poll).
    async fn idle_wait(&self) -> Duration {
        let poll = self.policy.poll_interval;
        match self.store.next_run_due().await {
            Ok(Some(due)) => {
                let until = due - OffsetDateTime::now_utc();
                Duration::try_from(until)
                    .unwrap_or(Duration::ZERO)
                    .min(poll)
            }
            _ => poll,
        }
    }

    /// Runs a flow at once, for an admin waiting on the page (e.g. webhook registration); a transient
    /// failure fails the run rather than queueing it, since the admin is there to try again.
    pub async fn run_now(&self, new: &NewRun, by: &str) -> Result<RunFinished, StoreError> {
        let now = OffsetDateTime::now_utc();
        let owner = format!("{}-now", self.owner);
        let run = self
            .store
            .start_run(new, &owner, now + self.policy.lease, now)
            .await?;
        let (lease, _renewal) = self.hold_lease(run.id, &owner);
        let ctx = RunContext::new(
            self,
            run.id,
            run.flow,
            &owner,
            run.record_id.clone(),
            by,
            lease,
        );
        let (status, cause, outcome) = match self.execute(&ctx, &run).await {
            Ok((status, outcome)) => (status, None, outcome),
            Err(failure) => {
                // The admin is there: they see what to fix now rather than a paused run.
                let (cause, message) = failure.ended();
                let message = match failure {
                    StepError::Transient(..) | StepError::Paused(..) => {
                        format!("{message}. Try again in a moment.")
                    }
                    StepError::LeaseLost => format!("{message}."),
                    _ => message,
                };
                (RunStatus::Failed, Some(cause), message)
            }
        };
        self.settle(&ctx, &run, status, cause, outcome).await
    }

    async fn settle(
        &self,
        ctx: &RunContext<'_>,
        run: &Run,
        status: RunStatus,
        cause: Option<FailureCause>,
        outcome: String,
    ) -> Result<RunFinished, StoreError> {
        let now = OffsetDateTime::now_utc();
        let done = RunFinished {
            run_id: run.id,
            flow: run.flow,
            status,
            outcome,
        };
        if self
            .store
            .finish_run(run.id, ctx.owner(), status, cause, &done.outcome, now)
            .await?
        {
            if status == RunStatus::Failed {
                ctx.audit(
                    AuditAction::RunFailed,
                    "run",
                    &run.id.to_string(),
                    None,
                    done.outcome.clone(),
                )
                .await?;
            }
            self.announce(done.run_id, done.flow, done.status, done.outcome.clone());
            // A run of the same record may have been waiting for this one.
            self.nudge();
        }
        Ok(done)
    }

    /// Renews `run_id`'s lease in the background while the returned guard lives: every third of the
    /// lease, so a renewal or two may fail before it runs out. The watch turns lost when another worker
    /// has the run, or when renewals kept failing until the lease ran out (someone else may claim it
    /// now); the run's calls then stop before their next effect.
    fn hold_lease(&self, run_id: i64, owner: &str) -> (Arc<LeaseWatch>, LeaseRenewal) {
        let watch = Arc::new(LeaseWatch::default());
        let lease = self.policy.lease;
        let store = self.store.clone();
        let owner = owner.to_string();
        let lost = watch.clone();
        let task = tokio::spawn(async move {
            let mut renewed = std::time::Instant::now();
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = OffsetDateTime::now_utc() + lease;
                match store.renew_lease(run_id, &owner, until).await {
                    Ok(true) => renewed = std::time::Instant::now(),
                    Ok(false) => {
                        lost.lose();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(run_id, error = %e, "could not renew a run's lease");
                        if renewed.elapsed() >= lease {
                            lost.lose();
                            break;
                        }
                    }
                }
            }
        });
        (watch, LeaseRenewal(task))
    }

    /// Claims and executes one due run. False when none was due.
    pub async fn work_once(&self, owner: &str) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let Some(run) = self
            .store
            .claim_run(owner, now, now + self.policy.lease)
            .await?
        else {
            return Ok(false);
        };
        // Not today, for want of API calls: back to the queue until tomorrow, no attempt spent.
        if let Some((until, why)) = self.admission(&run, now).await? {
            if self.store.defer_run(run.id, owner, until, &why).await? {
                tracing::info!(run_id = run.id, "run deferred to the next day's API budget");
                self.announce(run.id, run.flow, RunStatus::Queued, why);
            }
            return Ok(true);
        }
        let (lease, renewal) = self.hold_lease(run.id, owner);
        let ctx = RunContext::new(
            self,
            run.id,
            run.flow,
            owner,
            run.record_id.clone(),
            "engine",
            lease,
        )
        .on_attempt(run.attempts);
        let result = self.execute(&ctx, &run).await;
        drop(renewal);
        let now = OffsetDateTime::now_utc();
        let (status, cause, outcome) = match result {
            Ok((status, outcome)) => (status, None, outcome),
            Err(StepError::LeaseLost) => {
                // Its new holder runs it; whatever this worker wrote now is refused by the lease check.
                tracing::warn!(
                    run_id = run.id,
                    "lease lost: another worker took the run over"
                );
                return Ok(true);
            }
            Err(StepError::Paused(message, wait)) => {
                let note = match wait.as_secs() {
                    s if s < 60 => format!("{message}. Next try in {} s.", s.max(1)),
                    s => format!("{message}. Next try in {} min.", s.div_ceil(60)),
                };
                if self
                    .store
                    .pause_run(run.id, owner, now + wait, &note)
                    .await?
                {
                    self.announce(run.id, run.flow, RunStatus::Queued, note);
                }
                return Ok(true);
            }
            Err(StepError::AwaitingPerson {
                system,
                diagnosis,
                message,
            }) => {
                // The Connections page, the Overview and Diagnostics show why; the refusal may have
                // come from a call rather than a sign-in, which nothing else would record.
                if diagnosis != Diagnosis::Unreachable {
                    self.store
                        .set_diagnosis(system, Some(diagnosis), now)
                        .await?;
                }
                let note = format!(
                    "Paused: {message} The run goes on by itself once {} works again; no attempt is spent meanwhile.",
                    system.label()
                );
                if self
                    .store
                    .pause_run_for(run.id, owner, system, &note)
                    .await?
                {
                    tracing::warn!(
                        run_id = run.id,
                        system = system.as_code(),
                        "run paused until the connection works again"
                    );
                    self.diagnostics.invalidate();
                    self.alerts_due();
                    self.announce(run.id, run.flow, RunStatus::Paused, note);
                }
                return Ok(true);
            }
            Err(StepError::Transient(message, retry_after))
                if run.attempts < i64::from(self.policy.max_attempts) =>
            {
                let delay = self.policy.delay(run.attempts as u32, retry_after);
                let not_before = now + delay;
                let note = format!(
                    "Attempt {} of {} failed: {message}. Trying again in {} s.",
                    run.attempts,
                    self.policy.max_attempts,
                    delay.as_secs_f64().ceil()
                );
                self.store
                    .retry_run_later(run.id, owner, not_before, &note)
                    .await?;
                return Ok(true);
            }
            Err(StepError::Transient(message, _)) => (
                RunStatus::Failed,
                Some(FailureCause::Unavailable),
                format!(
                    "Gave up after {} attempts: {message}. Resubmit the run once the cause is fixed.",
                    run.attempts
                ),
            ),
            Err(StepError::Permanent(cause, message)) => (RunStatus::Failed, Some(cause), message),
        };
        self.settle(&ctx, &run, status, cause, outcome).await?;
        Ok(true)
    }

    async fn execute(
        &self,
        ctx: &RunContext<'_>,
        run: &Run,
    ) -> Result<(RunStatus, String), StepError> {
        self.load_cosell_fields().await.map_err(StepError::store)?;
        let active = self
            .store
            .active_flows(self.crm)
            .await
            .map_err(StepError::store)?;
        // A reconciliation is cosell's own and always available; the runs it queues obey their flows.
        if run.flow != Flow::Reconciliation && !active.contains(&run.flow) {
            let why = format!(
                "“{}” is off, so nothing was done. Activate the flow, then resubmit this run.",
                run.flow.name(self.crm)
            );
            ctx.audit(
                AuditAction::RunSkippedFlowOff,
                "run",
                &run.id.to_string(),
                None,
                why.clone(),
            )
            .await
            .map_err(StepError::store)?;
            return Ok((RunStatus::Skipped, why));
        }
        if let (
            Flow::CrmToPartnerCenter | Flow::SolutionsToPartnerCenter,
            RunInput::Opportunity {
                opportunity_id,
                referral_id,
                fed_version: Some(fed),
                ..
            },
        ) = (run.flow, &run.input)
            && let Some(echo) = crm_to_partner_center::echo_of_own_write(
                ctx,
                opportunity_id,
                referral_id.as_deref(),
                fed,
            )
            .await?
        {
            return Ok(echo);
        }
        match (run.flow, run.input.clone()) {
            (
                Flow::PartnerCenterToCrm,
                RunInput::Event {
                    referral_id,
                    event,
                    changed_at,
                    ..
                },
            ) => {
                let changed = changed_at.as_deref().map(|at| (event.as_str(), at));
                partner_center_to_crm::run(ctx, self.crm_port()?, &referral_id, changed).await
            }
            (Flow::PartnerCenterToCrm, RunInput::Referral { referral_id, .. }) => {
                partner_center_to_crm::run(ctx, self.crm_port()?, &referral_id, None).await
            }
            (Flow::WebhookRegistration, RunInput::Registration(input)) => {
                webhook_registration::run(ctx, &input).await
            }
            (Flow::Reconciliation, RunInput::Reconciliation { .. }) => {
                reconciliation::run(ctx).await
            }
            (
                Flow::CrmToPartnerCenter,
                RunInput::Opportunity {
                    opportunity_id,
                    check_only,
                    ..
                },
            ) => {
                crm_to_partner_center::run(ctx, self.crm_port()?, &opportunity_id, check_only).await
            }
            (
                Flow::SolutionsToPartnerCenter,
                RunInput::Opportunity {
                    opportunity_id,
                    check_only: false,
                    ..
                },
            ) => crm_to_partner_center::solutions(ctx, self.crm_port()?, &opportunity_id).await,
            (
                flow @ (Flow::PartnerCenterToCrm
                | Flow::Reconciliation
                | Flow::WebhookRegistration
                | Flow::CrmToPartnerCenter
                | Flow::SolutionsToPartnerCenter),
                input,
            ) => Err(StepError::Permanent(
                FailureCause::Other,
                format!(
                    "The run's input does not fit “{}”: {input:?}",
                    flow.name(self.crm)
                ),
            )),
            (other, _) => Err(StepError::Permanent(
                FailureCause::Other,
                format!("“{}” cannot be run on its own.", other.name(self.crm)),
            )),
        }
    }
}

fn http_client(policy: &RetryPolicy, tls: &TlsTrust) -> Result<reqwest::Client, String> {
    tls.client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(policy.call_timeout)
        .build()
        .map_err(|e| e.to_string())
}

/// What to configure when no CRM is.
fn not_configured(crm: Crm) -> String {
    match crm {
        Crm::Dynamics365 => "No Dynamics 365 organization is configured: set COSELL_DYNAMICS_URL and restart cosell.".into(),
        Crm::Salesforce => "No Salesforce org is connected: connect Salesforce on the Connections page.".into(),
    }
}

/// Stops renewing a run's lease when the run is done (dropped).
struct LeaseRenewal(tokio::task::JoinHandle<()>);

impl Drop for LeaseRenewal {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A short random id for this process's workers (leases name their owner).
fn uuid_like() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().r#gen();
    format!("{n:016x}")
}
