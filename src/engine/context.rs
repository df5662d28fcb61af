//! What a run does, recorded: every API call (with its outcome, duration and the calls it spent, counted
//! per connection per UTC day) and every decision, as steps; every effect and skip, as audit events.

use super::Engine;
use super::tokens::TokenProblem;
use crate::clients::http::CallError;
use crate::crypto::Secret;
use crate::domain::connection::{Diagnosis, System};
use crate::domain::flows::Flow;
use crate::domain::runs::{
    AuditAction, Direction, FailureCause, RunInput, RunStatus, RunTrigger, StepOutcome,
};
use crate::store::{NewAuditEvent, NewRun, NewStep, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Why a step stopped the run.
#[derive(Debug, Clone, PartialEq)]
pub enum StepError {
    /// Try the run again later (after at least the duration, if the server said).
    Transient(String, Option<Duration>),
    /// The run fails; the message says what to do.
    Permanent(FailureCause, String),
    /// The system's daily API allocation is spent: the run waits (at least the duration) without
    /// spending an attempt.
    Paused(String, Duration),
    /// A connection needs a person (an expired password, withdrawn consent, a missing role, never
    /// connected): the run waits, paused, without spending an attempt, and goes on by itself once that
    /// connection works again.
    AwaitingPerson {
        system: System,
        diagnosis: Diagnosis,
        message: String,
    },
    /// The worker no longer holds the run's lease (it could not renew it in time, and another worker
    /// has taken the run over): it stops before its next effect and leaves the run to its new holder.
    LeaseLost,
}

/// How long work waits for a spent daily allocation before asking again (Salesforce counts a rolling
/// 24 hours and says nothing of when calls free up; one refused call an hour is cheap).
pub const ALLOCATION_PAUSE: Duration = Duration::from_secs(60 * 60);

/// How long a 429 without `Retry-After` holds its system's calls.
pub const THROTTLE_HOLD: Duration = Duration::from_secs(10);

impl StepError {
    pub fn store(e: StoreError) -> StepError {
        StepError::Transient(format!("the database failed: {e}"), None)
    }

    /// Why, and in what words, a run ends failed with this error where nobody waits for it to be tried
    /// again (a run on the admin's page, a child inside its parent's attempt, the last attempt).
    pub fn ended(&self) -> (FailureCause, String) {
        match self {
            StepError::Permanent(cause, m) => (*cause, m.clone()),
            StepError::Transient(m, _) | StepError::Paused(m, _) => {
                (FailureCause::Unavailable, m.clone())
            }
            StepError::AwaitingPerson { message, .. } => {
                (FailureCause::Connection, message.clone())
            }
            StepError::LeaseLost => (
                FailureCause::Interrupted,
                "Stopped: another worker took the run over".to_string(),
            ),
        }
    }

    /// What went wrong, in the words the run would record.
    pub fn message(&self) -> &str {
        match self {
            StepError::Transient(m, _)
            | StepError::Permanent(_, m)
            | StepError::Paused(m, _)
            | StepError::AwaitingPerson { message: m, .. } => m,
            StepError::LeaseLost => "another worker has taken the run over",
        }
    }
}

pub struct RunContext<'a> {
    engine: &'a Engine,
    run_id: i64,
    flow: Flow,
    owner: String,
    record_id: Option<String>,
    actor: String,
    lease: Arc<LeaseWatch>,
    attempt: i64,
}

/// Whether a run still holds its lease, as its renewal found last (see [`Engine::hold_lease`]).
#[derive(Debug, Default)]
pub struct LeaseWatch {
    lost: AtomicBool,
}

impl LeaseWatch {
    pub(crate) fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl<'a> RunContext<'a> {
    pub(crate) fn new(
        engine: &'a Engine,
        run_id: i64,
        flow: Flow,
        owner: &str,
        record_id: Option<String>,
        actor: &str,
        lease: Arc<LeaseWatch>,
    ) -> RunContext<'a> {
        RunContext {
            engine,
            run_id,
            flow,
            owner: owner.to_string(),
            record_id,
            actor: actor.to_string(),
            lease,
            attempt: 1,
        }
    }

    /// The run's attempt (how many times it was claimed), recorded on its steps.
    pub(crate) fn on_attempt(self, attempt: i64) -> RunContext<'a> {
        RunContext { attempt, ..self }
    }

    pub fn engine(&self) -> &Engine {
        self.engine
    }

    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    async fn step(
        &self,
        name: &str,
        outcome: StepOutcome,
        detail: &str,
        api_calls: i64,
        system: Option<System>,
        started: Instant,
    ) -> Result<(), StepError> {
        self.engine
            .store
            .record_step_counted(
                self.run_id,
                Some(self.flow),
                &NewStep {
                    name: name.to_string(),
                    outcome,
                    detail: detail.to_string(),
                    api_calls,
                    system,
                    duration_ms: started.elapsed().as_millis() as i64,
                    attempt: self.attempt,
                },
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(StepError::store)
    }

    /// Records a decision (no API call).
    pub async fn decide(
        &self,
        name: &str,
        outcome: StepOutcome,
        detail: &str,
    ) -> Result<(), StepError> {
        self.step(name, outcome, detail, 0, None, Instant::now())
            .await
    }

    /// Calls made as steps of this run.
    pub fn calls(&self) -> Calls<'_> {
        Calls {
            engine: self.engine,
            run: Some(self),
        }
    }

    /// An audit event, tied to this run.
    pub async fn audit(
        &self,
        action: AuditAction,
        record_kind: &str,
        record_id: &str,
        direction: Option<Direction>,
        detail: String,
    ) -> Result<(), StoreError> {
        self.insert_audit(NewAuditEvent {
            direction,
            ..NewAuditEvent::new(action, record_kind, record_id, detail)
        })
        .await
    }

    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// A request id for the `generation`th time cosell makes `effect` happen to `record`: every
    /// attempt, resubmission or instance that tries the same effect sends the same id, so the API can
    /// tell a retry from a new request (Partner Center's `MS-RequestId`: "reuse it when retrying",
    /// partner-center.md §1.3). GUID-shaped.
    pub fn request_id(&self, effect: &str, record: &str, generation: i64) -> String {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(format!("cosell:{effect}:{record}:{generation}"));
        let h: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// The marker of a create of `what` for `record` (a referral for an opportunity, an opportunity for a
    /// referral): see [`PendingCreate`].
    pub fn pending_create(&self, what: &str, record: &str) -> PendingCreate<'_> {
        PendingCreate {
            store: &self.engine.store,
            key: format!("pending-create/{what}/{record}"),
        }
    }

    /// An audit event with everything said (outcome, field changes), tied to this run and its actor.
    pub async fn record(&self, event: NewAuditEvent) -> Result<(), StepError> {
        self.insert_audit(event).await.map_err(StepError::store)
    }

    async fn insert_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.engine
            .store
            .record_audit(
                &NewAuditEvent {
                    run_id: Some(self.run_id),
                    actor: self.actor.clone(),
                    ..event
                },
                OffsetDateTime::now_utc(),
            )
            .await
            .map(|_| ())
    }

    /// Runs a child flow inside this run, recorded as a run of its own linked to this one.
    pub async fn child<T, F, Fut>(
        &self,
        flow: Flow,
        input: RunInput,
        body: F,
    ) -> Result<T, StepError>
    where
        F: FnOnce(RunContext<'a>) -> Fut,
        Fut: Future<Output = Result<(T, String), StepError>>,
    {
        let now = OffsetDateTime::now_utc();
        let new = NewRun {
            flow,
            trigger: RunTrigger::Child,
            input,
            record_id: self.record_id.clone(),
            parent_run_id: Some(self.run_id),
            resubmitted_from: None,
            settled: None,
        };
        let store = &self.engine.store;
        let child = store
            .start_run(&new, &self.owner, now + Duration::from_secs(600), now)
            .await
            .map_err(StepError::store)?;
        let ctx = RunContext::new(
            self.engine,
            child.id,
            flow,
            &self.owner,
            self.record_id.clone(),
            &self.actor,
            self.lease.clone(),
        )
        // A child runs inside its parent's attempt: its steps say which.
        .on_attempt(self.attempt);
        let result = body(ctx).await;
        let (status, cause, outcome) = match &result {
            Ok((_, outcome)) => (RunStatus::Succeeded, None, outcome.clone()),
            Err(failure) => {
                let (cause, message) = failure.ended();
                let message = match failure {
                    StepError::Permanent(..) | StepError::LeaseLost => message,
                    _ => format!("{message} (the parent run will try again)"),
                };
                (RunStatus::Failed, Some(cause), message)
            }
        };
        store
            .finish_run(
                child.id,
                &self.owner,
                status,
                cause,
                &outcome,
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(StepError::store)?;
        result.map(|(value, _)| value)
    }
}

/// A create under way, remembered in the database from just before the call until it is audited: a
/// create the API made but whose answer was lost (a time-out, a dropped connection, or the write-back
/// after it failing) is found by a later attempt some other way, and the marker tells that attempt the
/// record is cosell's own creation, to audit as created, once.
pub struct PendingCreate<'a> {
    store: &'a crate::store::Store,
    key: String,
}

impl PendingCreate<'_> {
    pub async fn begin(&self) -> Result<(), StepError> {
        self.store
            .set_setting(
                &self.key,
                &serde_json::Value::Bool(true),
                "engine",
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(StepError::store)
    }

    /// The create was audited, or refused for good: nothing is under way any more.
    pub async fn end(&self) -> Result<(), StepError> {
        self.store
            .clear_setting(&self.key)
            .await
            .map_err(StepError::store)
    }

    /// Whether a create was under way (and never audited).
    pub async fn was_under_way(&self) -> Result<bool, StepError> {
        Ok(self
            .store
            .setting(&self.key)
            .await
            .map_err(StepError::store)?
            .is_some())
    }
}

/// Who makes API calls: a run (each call recorded as one of its steps) or the engine outside a run (the
/// change feed, the dashboard's switches, connection checks). Either way a call is one path: a token
/// for the connection, the call counted against the day's quota, one refresh on a 401.
#[derive(Clone, Copy)]
pub struct Calls<'a> {
    engine: &'a Engine,
    run: Option<&'a RunContext<'a>>,
}

impl<'a> Calls<'a> {
    /// Calls made outside any run: counted, not recorded as steps.
    pub(crate) fn outside_run(engine: &'a Engine) -> Calls<'a> {
        Calls { engine, run: None }
    }

    async fn step(
        &self,
        name: &str,
        system: System,
        outcome: StepOutcome,
        detail: &str,
        calls: i64,
        started: Instant,
    ) -> Result<(), CallFailure> {
        match self.run {
            Some(run) => run
                .step(name, outcome, detail, calls, Some(system), started)
                .await
                .map_err(CallFailure::Stop),
            None => Ok(()),
        }
    }

    /// Where `system`'s API is for the connected account (Salesforce: the org's instance URL).
    pub async fn instance_url(&self, system: System) -> Result<String, CallFailure> {
        self.engine
            .tokens
            .instance_url(system)
            .await
            .map_err(CallFailure::NoToken)
    }

    /// The connected account's id in `system`.
    pub async fn connected_account(&self, system: System) -> Result<String, CallFailure> {
        self.engine
            .tokens
            .account_id(system)
            .await
            .map_err(CallFailure::NoToken)
    }

    /// Counts calls made beyond the one [`Calls::call`] counted (the further pages of one read): in a
    /// run, as a step of their own, so the run's totals hold them too; outside, against the day's quota.
    pub async fn count_more(&self, system: System, calls: i64) -> Result<(), CallFailure> {
        if calls <= 0 {
            return Ok(());
        }
        if self.run.is_some() {
            return self
                .step(
                    "Read the further pages",
                    system,
                    StepOutcome::Ok,
                    "",
                    calls,
                    Instant::now(),
                )
                .await;
        }
        self.engine
            .store
            .count_api_calls(system.as_code(), None, calls, OffsetDateTime::now_utc())
            .await
            .map_err(CallFailure::store)
    }

    /// One API call with `system`'s connection and a token for `resource`: counted, timed and (in a
    /// run) recorded. A 401 refreshes the token and tries once more.
    pub async fn call<T, F, Fut>(
        &self,
        name: &str,
        system: System,
        resource: &str,
        f: F,
    ) -> Result<T, CallFailure>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let started = Instant::now();
        let mut calls = 0;
        let result = loop {
            let token = match self.engine.tokens.token(system, resource).await {
                Ok(t) => t,
                Err(problem) => {
                    let outcome = if problem.is_transient() {
                        StepOutcome::Retry
                    } else {
                        StepOutcome::Failed
                    };
                    let message = format!("{problem}. {}", problem.fix());
                    self.step(name, system, outcome, &message, calls, started)
                        .await?;
                    return Err(CallFailure::NoToken(problem));
                }
            };
            // Past this point the call may change something: not without the lease.
            if let Some(run) = self.run
                && run.lease.is_lost()
            {
                self.step(
                    name,
                    system,
                    StepOutcome::Failed,
                    "Not sent: another worker has taken the run over.",
                    calls,
                    started,
                )
                .await?;
                return Err(CallFailure::Stop(StepError::LeaseLost));
            }
            calls += 1;
            // In a run, the call is counted with its step (one write); outside, on its own.
            if self.run.is_none() {
                self.count_more(system, 1).await?;
            }
            match f(token).await {
                Err(CallError::Unauthorized(_)) if calls == 1 => {
                    // An access token revoked early: get a fresh one, once.
                    self.engine.tokens.forget(system);
                }
                other => break other,
            }
        };
        match result {
            Ok(value) => {
                self.step(name, system, StepOutcome::Ok, "", calls, started)
                    .await?;
                Ok(value)
            }
            Err(e) if e.is_transient() => {
                self.step(
                    name,
                    system,
                    StepOutcome::Retry,
                    &e.to_string(),
                    calls,
                    started,
                )
                .await?;
                // Told to slow down, or that the allocation is spent: hold the system for everyone.
                let held = match &e {
                    CallError::Throttled { retry_after, .. } => {
                        Some(retry_after.unwrap_or(THROTTLE_HOLD))
                    }
                    CallError::AllocationSpent(_) => Some(ALLOCATION_PAUSE),
                    _ => None,
                };
                if let Some(wait) = held {
                    let until = OffsetDateTime::now_utc() + wait;
                    self.engine.hold(system, until, &e.to_string()).await;
                }
                Err(CallFailure::Transient(system, e))
            }
            Err(e) => {
                self.step(
                    name,
                    system,
                    StepOutcome::Failed,
                    &e.to_string(),
                    calls,
                    started,
                )
                .await?;
                Err(CallFailure::Refused(system, e))
            }
        }
    }
}

/// Why a call did not give its answer (already recorded, in a run).
#[derive(Debug)]
pub enum CallFailure {
    /// No token: not connected, a refused refresh (diagnosed), or the database failed.
    NoToken(TokenProblem),
    /// A passing failure (429, 5xx, no answer): try again later.
    Transient(System, CallError),
    /// The API refused this call for a reason the caller may handle (404, 412, 403, 400…).
    Refused(System, CallError),
    /// The run must stop (the database failed while recording).
    Stop(StepError),
}

impl From<StepError> for CallFailure {
    fn from(e: StepError) -> Self {
        CallFailure::Stop(e)
    }
}

impl CallFailure {
    fn store(e: StoreError) -> CallFailure {
        CallFailure::Stop(StepError::store(e))
    }

    /// What the failure says of the connection (for its check on the Connections page).
    pub fn diagnosis(&self) -> Diagnosis {
        match self {
            CallFailure::NoToken(TokenProblem::NotConnected(_)) => Diagnosis::ConsentMissing,
            CallFailure::NoToken(TokenProblem::Diagnosed(_, d)) => *d,
            CallFailure::Refused(_, CallError::Forbidden(_)) => Diagnosis::MissingRole,
            // A token Entra just issued and the API refuses: MFA or consent no longer satisfied.
            CallFailure::Refused(_, CallError::Unauthorized(_)) => Diagnosis::MfaRequired,
            _ => Diagnosis::Unreachable,
        }
    }

    /// Turns an unhandled failure into the run's, in words an admin can act on.
    pub fn into_step_error(self) -> StepError {
        match self {
            CallFailure::Stop(e) => e,
            CallFailure::NoToken(problem) => {
                let message = format!("{problem}. {}", problem.fix());
                match problem {
                    p if p.is_transient() => StepError::Transient(message, None),
                    TokenProblem::NotConnected(system) => StepError::AwaitingPerson {
                        system,
                        diagnosis: Diagnosis::ConsentMissing,
                        message,
                    },
                    TokenProblem::Diagnosed(system, diagnosis) => StepError::AwaitingPerson {
                        system,
                        diagnosis,
                        message,
                    },
                    TokenProblem::Store(_) => StepError::Transient(message, None),
                }
            }
            CallFailure::Transient(system, CallError::AllocationSpent(m)) => StepError::Paused(
                format!(
                    "{} says the organization's daily API allocation is spent ({m}); this work waits until calls free up, without spending an attempt",
                    system.label()
                ),
                ALLOCATION_PAUSE,
            ),
            CallFailure::Transient(system, e) => {
                StepError::Transient(format!("{}: {e}", system.label()), e.retry_after())
            }
            // Signed in, yet refused: the account lacks a role, or its sign-in no longer satisfies
            // the API (MFA, consent). A person fixes the account; the work waits for them.
            failure @ CallFailure::Refused(
                _,
                CallError::Forbidden(_) | CallError::Unauthorized(_),
            ) => {
                let diagnosis = failure.diagnosis();
                let CallFailure::Refused(system, e) = failure else {
                    unreachable!("matched above")
                };
                StepError::AwaitingPerson {
                    system,
                    diagnosis,
                    message: refusal_message(system, &e),
                }
            }
            CallFailure::Refused(system, e) => {
                StepError::Permanent(FailureCause::Refused, refusal_message(system, &e))
            }
        }
    }
}

/// A refused call, explained with its fix.
pub fn refusal_message(system: System, e: &CallError) -> String {
    let s = system.label();
    match e {
        CallError::Forbidden(m) => format!(
            "{s} denied access ({m}). {}",
            Diagnosis::MissingRole.fix(system)
        ),
        CallError::Unauthorized(m) => format!(
            "{s} did not accept the connection's sign-in ({m}). Reconnect {s} on the Connections page."
        ),
        CallError::PreconditionFailed(m) => format!(
            "The record changed in {s} while cosell was updating it ({m}). Resubmit the run to apply the change to the latest version."
        ),
        CallError::Rejected { status, message } => format!(
            "{s} refused the data (HTTP {status}): {message}. Correct the record, then resubmit the run."
        ),
        other => format!("{s}: {other}. Resubmit the run once the cause is fixed."),
    }
}
