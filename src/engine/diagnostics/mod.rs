//! Diagnostics: cosell runs the co-sell troubleshooting FAQ on itself. [`Engine::diagnose`] looks at
//! the connections, the flows, the webhook registration, failed runs, the day's API calls and the
//! database, each look bounded in time, and keeps the report a minute so a page load does not call
//! Partner Center every time. An admin's action that changes what a check looks at (a flow switched,
//! a connection made or dropped, runs resubmitted, the webhook registered) makes the kept report
//! stale, so the page shows the fix's effect at once.
//!
//! Looking (I/O) is here; judging what was found is in [`judge`], with no I/O.

mod judge;
mod records;

use super::Engine;
use crate::clients::partner_center::referrals::AUDIENCE as REFERRALS;
use crate::clients::partner_center::webhook_registration::AUDIENCE as WEBHOOKS;
use crate::domain::codes::CurrencyCode;
use crate::domain::connection::{Diagnosis, System};
use crate::domain::diagnostics::{Check, CheckId, CheckState, Report};
use crate::domain::runs::AuditAction;
use crate::store::StoreError;
use judge::{RegistrationRead, Usage};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long one read of a check may take before it says it got no answer (and the whole look is held
/// to [`LOOK_LIMIT`]).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a report is shown again instead of looking anew.
pub const FRESH_FOR: Duration = Duration::from_secs(60);

/// The window of `runs-failing`.
const FAILED_WINDOW: time::Duration = time::Duration::hours(24);

/// The groups of failed runs a report lists at most.
const FAILED_GROUPS: i64 = 10;

/// How far back `referral-not-in-crm` and `referral-closed` look, and how many pages of referrals
/// (one Partner Center call each) they read at most.
const REFERRAL_WINDOW_DAYS: i64 = 30;
pub(super) const REFERRAL_PAGES: usize = 2;
const REFERRAL_PAGE_SIZE: u32 = 100;

/// The synced opportunities failing a rule that the record checks read at most (the Opportunities page
/// lists them all).
const FAILING_LISTED: i64 = 500;

/// The window of `crm-id-unknown`.
const UNKNOWN_ID_WINDOW_DAYS: i64 = 30;

/// Whether a kept report will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// A report at most [`FRESH_FOR`] old, unless something changed since.
    Cached,
    /// Look now ("Run checks again").
    Now,
}

/// Why a check could not look, in words fit for the page (the detail goes to the log).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no answer within {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("cosell's database did not answer (the error is in the server log)")]
    Store(#[from] StoreError),
    /// What it needed was not read (another check's look failed and says why).
    #[error("what it needs could not be read (see the checks above)")]
    Unread,
}

/// What a connection's probe found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Probe {
    NotConnected,
    /// The CRM is not configured on this instance: what to configure.
    NotConfigured(String),
    /// It answered as the connected account: what was proven.
    Works(String),
    /// It refused, for a reason the admin must act on.
    Diagnosed(Diagnosis),
    /// No answer (in time, or at all): it could not be judged.
    Unanswered(String),
}

/// What `credentials-current` reads of a stored connection (never its token).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Credential {
    pub account: String,
    pub renewed_at: OffsetDateTime,
    pub diagnosis: Option<Diagnosis>,
    /// Runs paused until this connection works again.
    pub paused: i64,
}

/// The last report this instance made, and whether it still holds.
#[derive(Default)]
pub struct Cache {
    last: Mutex<Option<Kept>>,
    /// Bumped by every change a check looks at; a report made under an older one is stale.
    generation: AtomicU64,
    /// One look at a time: a second page load waits and gets the first one's report.
    looking: tokio::sync::Mutex<()>,
}

struct Kept {
    report: Report,
    made: Instant,
    generation: u64,
}

impl Cache {
    /// Something a check looks at changed: the next page load looks again.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Kept>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kept report, if it is recent and nothing changed since it was made.
    fn fresh(&self) -> Option<Report> {
        let generation = self.generation();
        self.lock()
            .as_ref()
            .filter(|k| k.generation == generation && k.made.elapsed() < FRESH_FOR)
            .map(|k| k.report.clone())
    }

    /// The kept report, however old.
    fn last(&self) -> Option<Report> {
        self.lock().as_ref().map(|k| k.report.clone())
    }

    fn keep(&self, report: Report, generation: u64) {
        *self.lock() = Some(Kept {
            report,
            made: Instant::now(),
            generation,
        });
    }
}

/// How long a whole look may take: the checks' reads run side by side, some one after another, and
/// each stops at [`CHECK_TIMEOUT`] or at this deadline, whichever comes first.
pub const LOOK_LIMIT: Duration = Duration::from_secs(25);

tokio::task_local! {
    /// When the look under way must be done.
    static DEADLINE: tokio::time::Instant;
}

/// What a read may take now: [`CHECK_TIMEOUT`], or less when the look's deadline is nearer.
fn limit() -> Duration {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(tokio::time::Instant::now()))
        .map_or(CHECK_TIMEOUT, |left| left.min(CHECK_TIMEOUT))
}

/// `fut`, or [`CheckError::TimedOut`] after [`limit`].
async fn bounded<T, E>(fut: impl Future<Output = Result<T, E>>) -> Result<T, CheckError>
where
    CheckError: From<E>,
{
    within(limit(), fut).await
}

async fn within<T, E>(
    limit: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Result<T, CheckError>
where
    CheckError: From<E>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result.map_err(|e| {
            let e = CheckError::from(e);
            if let CheckError::Store(detail) = &e {
                tracing::warn!(error = %detail, "a diagnostics check could not read the database");
            }
            e
        }),
        Err(_) => Err(CheckError::TimedOut(limit)),
    }
}

use crate::domain::runs::{filter_moment, when};

impl Engine {
    /// Every check, from the kept report when `freshness` allows and it still holds, else looked at
    /// now. `callback_url` is where this instance receives Partner Center's webhooks. Never fails:
    /// a check that could not look says why.
    pub async fn diagnose(&self, callback_url: &str, freshness: Freshness) -> Report {
        if freshness == Freshness::Cached
            && let Some(report) = self.diagnostics.fresh()
        {
            return report;
        }
        // One look at a time; one that takes too long to make way leaves this page the last report.
        let _one = match tokio::time::timeout(LOOK_LIMIT, self.diagnostics.looking.lock()).await {
            Ok(guard) => Some(guard),
            Err(_) => match self.diagnostics.last() {
                Some(report) => return report,
                None => None,
            },
        };
        // Another page load may have looked while this one waited.
        if freshness == Freshness::Cached
            && let Some(report) = self.diagnostics.fresh()
        {
            return report;
        }
        let generation = self.diagnostics.generation();
        let deadline = tokio::time::Instant::now() + LOOK_LIMIT;
        let report = DEADLINE.scope(deadline, self.look(callback_url)).await;
        self.diagnostics.keep(report.clone(), generation);
        report
    }

    /// Looks every `every` (after the first wait), so the Overview's line and the kept report stay
    /// current without anyone opening the page. Each look costs a few calls (the probes, the webhook
    /// registration, a page or two of referrals, the CRM's currencies): hourly is a small share of the
    /// day's quota.
    pub fn spawn_diagnostics_schedule(
        self: &std::sync::Arc<Self>,
        callback_url: String,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    break;
                }
                let report = engine.diagnose(&callback_url, Freshness::Now).await;
                let need = report.needing_attention().len();
                if need > 0 {
                    tracing::warn!(checks = need, "diagnostics: checks need attention");
                }
            }
        });
    }

    /// The last report made, however old, without looking (the Overview's line).
    pub fn last_diagnosis(&self) -> Option<Report> {
        self.diagnostics.last()
    }

    async fn look(&self, callback_url: &str) -> Report {
        let crm = System::Crm(self.crm);
        // The probes refresh tokens and call each system; several checks judge from them.
        let (pc, crm_probe) = tokio::join!(self.probe(System::PartnerCenter), self.probe(crm));
        let probes = [(System::PartnerCenter, &pc), (crm, &crm_probe)];
        let (
            credentials,
            flows,
            webhook,
            failing,
            quota,
            storage,
            records,
            feed,
            currencies,
            referrals,
        ) = tokio::join!(
            self.credentials_current(&probes),
            self.flows_checks(&probes),
            self.webhook_registered(&pc, callback_url),
            self.runs_failing(),
            self.api_quota(&probes),
            self.storage(),
            self.record_checks(),
            self.crm_feed_current(&crm_probe),
            self.crm_currencies(&crm_probe),
            self.referrals_seen(&pc),
        );
        let now = OffsetDateTime::now_utc();
        let (order, bound) = flows;
        let (failing_rules, [sellers, not_ready, switch, unknown]) = records;
        let arriving = self.webhook_arriving(webhook.state).await;
        let currency = match failing_rules {
            Some(failing_rules) => records::crm_currency(currencies, &failing_rules, now),
            None => judge::could_not_look(
                CheckId::CrmCurrency,
                &CheckError::Unread,
                "The synced opportunities.",
                now,
            ),
        };
        Report {
            at: now,
            checks: vec![
                judge::connections_consented(&probes, now),
                credentials,
                records::role(System::PartnerCenter, &pc, now),
                records::role(crm, &crm_probe, now),
                order,
                bound,
                webhook,
                arriving,
                feed,
                currency,
                sellers,
                not_ready,
                switch,
                unknown,
                records::referral_not_in_crm_of(&referrals, REFERRAL_WINDOW_DAYS, now),
                records::referral_closed(&referrals, now),
                failing,
                quota,
                storage,
            ],
        }
    }

    /// `crm-sellers`, `opportunities-not-ready`, `sync-switch` and `crm-id-unknown`, from cosell's own
    /// records (the mirror and the audit): no call, and only the rows with something to say (not every
    /// synced opportunity). The failing opportunities too, when they were read.
    async fn record_checks(&self) -> (Option<Vec<crate::store::MirroredOpportunity>>, [Check; 4]) {
        let now = OffsetDateTime::now_utc();
        let looked = async {
            let failing = bounded(self.store.opportunities_failing_rules(FAILING_LISTED)).await?;
            let synced = bounded(self.store.synced_count()).await?;
            let linked_off = bounded(self.store.linked_unsynced(50)).await?;
            let ignored = bounded(self.store.recent_of_action(
                AuditAction::ReferralIgnoredUnknownCrmId,
                now - time::Duration::days(UNKNOWN_ID_WINDOW_DAYS),
                20,
            ))
            .await?;
            // A referral synced since it was ignored (its CRM id corrected) is no longer a finding.
            let mut still = Vec::new();
            for (referral, at, detail) in ignored {
                let runs = bounded(
                    self.store
                        .record_runs(&referral, &[crate::domain::flows::Flow::PartnerCenterToCrm]),
                )
                .await?;
                if runs.last_succeeded.is_none_or(|s| s < at) {
                    still.push((referral, at, detail));
                }
            }
            Ok::<_, CheckError>((failing, synced, linked_off, still))
        };
        match looked.await {
            Ok((failing, synced, linked_off, ignored)) => {
                let checks = [
                    records::crm_sellers(&failing, synced, now),
                    records::opportunities_not_ready(&failing, synced, now),
                    records::sync_switch(&linked_off, now),
                    records::crm_id_unknown(&ignored, UNKNOWN_ID_WINDOW_DAYS, now),
                ];
                (Some(failing), checks)
            }
            Err(e) => (
                None,
                [
                    CheckId::CrmSellers,
                    CheckId::OpportunitiesNotReady,
                    CheckId::SyncSwitch,
                    CheckId::CrmIdUnknown,
                ]
                .map(|id| {
                    judge::could_not_look(id, &e, "cosell's mirror of the CRM and its audit.", now)
                }),
            ),
        }
    }

    /// The currencies the CRM has configured (one call), when the CRM answers.
    async fn crm_currencies(&self, crm_probe: &Probe) -> records::CrmRead<Vec<CurrencyCode>> {
        if !matches!(crm_probe, Probe::Works(_)) {
            let why = match crm_probe {
                Probe::NotConnected => format!("{} is not connected.", self.crm.label()),
                Probe::NotConfigured(why) => why.clone(),
                Probe::Diagnosed(d) => format!(
                    "{}: the sign-in must be fixed first.",
                    d.headline(System::Crm(self.crm))
                ),
                Probe::Unanswered(why) => why.clone(),
                Probe::Works(_) => unreachable!("matched above"),
            };
            return records::CrmRead::NotAsked(why);
        }
        let Ok(port) = self.crm_port() else {
            return records::CrmRead::NotAsked(super::not_configured(self.crm));
        };
        let wait = limit();
        match tokio::time::timeout(wait, port.currencies(&self.calls())).await {
            Ok(Ok(codes)) => records::CrmRead::Read(codes),
            Ok(Err(e)) => records::CrmRead::Failed(e.to_string()),
            Err(_) => records::CrmRead::Failed(CheckError::TimedOut(wait).to_string()),
        }
    }

    /// Partner Center's referrals updated in the last [`REFERRAL_WINDOW_DAYS`], newest first, at most
    /// [`REFERRAL_PAGES`] pages (one call each), with what cosell knows of each.
    async fn referrals_seen(
        &self,
        partner_center: &Probe,
    ) -> records::CrmRead<Vec<records::ReferralSeen>> {
        if !matches!(partner_center, Probe::Works(_)) {
            return records::CrmRead::NotAsked(match partner_center {
                Probe::NotConnected => "Partner Center is not connected.".into(),
                Probe::Diagnosed(d) => format!(
                    "{}: the sign-in must be fixed first.",
                    d.headline(System::PartnerCenter)
                ),
                Probe::NotConfigured(why) | Probe::Unanswered(why) => why.clone(),
                Probe::Works(_) => unreachable!("matched above"),
            });
        }
        // Not before Partner Center was first connected: what was shared before belonged to whatever
        // synced referrals then (and a reconciliation, which this check's fix runs, starts there too).
        let window = OffsetDateTime::now_utc() - time::Duration::days(REFERRAL_WINDOW_DAYS);
        let since = match bounded(self.store.first_connected(System::PartnerCenter)).await {
            Ok(first) => first.map_or(window, |f| f.max(window)),
            Err(e) => return records::CrmRead::Failed(e.to_string()),
        };
        let calls = self.calls();
        let mut listed = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..REFERRAL_PAGES {
            let link = next.clone();
            let page = calls.call(
                "List referrals (Diagnostics)",
                System::PartnerCenter,
                REFERRALS,
                |t| {
                    let link = link.clone();
                    async move {
                        self.referrals
                            .updated_page(&t, link.as_deref(), REFERRAL_PAGE_SIZE)
                            .await
                    }
                },
            );
            let wait = limit();
            let page = match tokio::time::timeout(wait, page).await {
                Ok(Ok(page)) => page,
                Ok(Err(failure)) => {
                    return records::CrmRead::Failed(
                        failure.diagnosis().headline(System::PartnerCenter),
                    );
                }
                Err(_) => {
                    return records::CrmRead::Failed(CheckError::TimedOut(wait).to_string());
                }
            };
            let older = page.referrals.iter().any(|r| r.updated < since);
            listed.extend(page.referrals.into_iter().filter(|r| r.updated >= since));
            match page.next {
                Some(link) if !older => next = Some(link),
                _ => break,
            }
        }
        let mut seen = Vec::with_capacity(listed.len());
        for referral in listed {
            let looked = async {
                let runs = self
                    .store
                    .record_runs(
                        &referral.id,
                        &[crate::domain::flows::Flow::PartnerCenterToCrm],
                    )
                    .await?;
                let linked = self
                    .store
                    .opportunity_for_referral(&referral.id)
                    .await?
                    .map(|o| (o.seen.crm_id, o.seen.name, o.seen.state));
                Ok::<_, StoreError>((runs, linked))
            };
            match bounded(looked).await {
                Ok((runs, linked)) => seen.push(records::ReferralSeen {
                    referral,
                    runs,
                    linked,
                }),
                Err(e) => return records::CrmRead::Failed(e.to_string()),
            }
        }
        records::CrmRead::Read(seen)
    }

    async fn webhook_arriving(&self, registered: CheckState) -> Check {
        let now = OffsetDateTime::now_utc();
        let looked = async {
            let last = bounded(self.store.last_delivery()).await?;
            let test = match bounded(self.last_test_event()).await? {
                Some(t) => {
                    let arrived = bounded(self.store.delivery_of(
                        crate::engine::webhook_deliveries::TEST_EVENT,
                        &t.correlation_id,
                    ))
                    .await?;
                    Some((t, arrived))
                }
                None => None,
            };
            Ok::<_, CheckError>((last, test))
        };
        match looked.await {
            Ok((last, test)) => records::webhook_arriving(
                registered,
                records::Deliveries {
                    last,
                    test,
                    refused: self.webhook_refusals().list(),
                },
                now,
            ),
            Err(e) => {
                judge::could_not_look(CheckId::WebhookArriving, &e, "The deliveries stored.", now)
            }
        }
    }

    async fn crm_feed_current(&self, crm_probe: &Probe) -> Check {
        let now = OffsetDateTime::now_utc();
        match bounded(self.store.change_feed_polled_at(&self.opportunity_feed())).await {
            Ok(polled_at) => records::crm_feed_current(
                crm_probe,
                System::Crm(self.crm),
                records::FeedState {
                    polled_at,
                    every: self.feed.every(),
                    failure: self.feed.last_failure(),
                },
                now,
            ),
            Err(e) => judge::could_not_look(
                CheckId::CrmFeedCurrent,
                &e,
                "When the change feed was last read.",
                now,
            ),
        }
    }

    /// Whether `system` is connected and answers now, with a fresh token as "Test connection" gets:
    /// a password that expired since the last refresh shows at once.
    async fn probe(&self, system: System) -> Probe {
        match bounded(self.tokens.connected(system)).await {
            Ok(true) => {}
            Ok(false) => return Probe::NotConnected,
            Err(e) => return Probe::Unanswered(e.to_string()),
        }
        if let System::Crm(crm) = system
            && self.crm_port().is_err()
        {
            return Probe::NotConfigured(super::not_configured(crm));
        }
        self.tokens.forget(system);
        match bounded(self.probe_connection(system)).await {
            Ok(Ok(summary)) => Probe::Works(summary),
            Ok(Err(Diagnosis::Unreachable)) => {
                Probe::Unanswered(format!("{} did not answer", system.label()))
            }
            Ok(Err(d)) => Probe::Diagnosed(d),
            Err(e) => Probe::Unanswered(e.to_string()),
        }
    }

    async fn credentials_current(&self, probes: &[(System, &Probe)]) -> Check {
        let paused = match bounded(self.store.paused_runs()).await {
            Ok(paused) => paused,
            Err(e) => {
                return judge::could_not_look(
                    CheckId::CredentialsCurrent,
                    &e,
                    "The runs paused for a connection.",
                    OffsetDateTime::now_utc(),
                );
            }
        };
        let mut found = Vec::new();
        for (system, probe) in probes {
            let connection = match bounded(self.tokens.stored(*system)).await {
                Ok(c) => c,
                Err(e) => {
                    return judge::could_not_look(
                        CheckId::CredentialsCurrent,
                        &e,
                        "The stored connections.",
                        OffsetDateTime::now_utc(),
                    );
                }
            };
            let credential = connection.map(|c| Credential {
                account: c.account_username,
                renewed_at: c.refreshed_at.unwrap_or(c.connected_at),
                diagnosis: c.diagnosis,
                paused: paused
                    .iter()
                    .find(|(s, _)| s == system)
                    .map_or(0, |(_, n)| *n),
            });
            found.push((*system, *probe, credential));
        }
        judge::credentials_current(&found, OffsetDateTime::now_utc())
    }

    /// `flows-order` and `flows-connections`, from one read of the flows that are on.
    async fn flows_checks(&self, probes: &[(System, &Probe)]) -> (Check, Check) {
        let now = OffsetDateTime::now_utc();
        match bounded(self.store.active_flows(self.crm)).await {
            Ok(active) => (
                judge::flows_order(self.crm, &active, now),
                judge::flows_connections(self.crm, &active, probes, now),
            ),
            Err(e) => (
                judge::could_not_look(CheckId::FlowsOrder, &e, "The flows switched on.", now),
                judge::could_not_look(CheckId::FlowsConnections, &e, "The flows switched on.", now),
            ),
        }
    }

    async fn webhook_registered(&self, partner_center: &Probe, callback_url: &str) -> Check {
        let read = match partner_center {
            Probe::Works(_) => {
                let calls = self.calls();
                let view = calls.call(
                    "View the webhook registration",
                    System::PartnerCenter,
                    WEBHOOKS,
                    |t| async move { self.webhooks.view(&t).await },
                );
                let wait = limit();
                match tokio::time::timeout(wait, view).await {
                    Ok(Ok(registration)) => RegistrationRead::Read(registration),
                    // The diagnosis' words, never the API's raw answer.
                    Ok(Err(failure)) => RegistrationRead::Failed(
                        failure.diagnosis().headline(System::PartnerCenter),
                    ),
                    Err(_) => RegistrationRead::Failed(CheckError::TimedOut(wait).to_string()),
                }
            }
            other => RegistrationRead::Unreadable(other),
        };
        judge::webhook_registered(read, callback_url, OffsetDateTime::now_utc())
    }

    async fn runs_failing(&self) -> Check {
        let now = OffsetDateTime::now_utc();
        // To the minute, as the Runs filter (and so "Resubmit these") reads it: both mean the same runs.
        let since = now - FAILED_WINDOW;
        let since = since
            .replace_second(0)
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap_or(since);
        let from = filter_moment(since);
        match bounded(self.store.failed_runs_since(since, FAILED_GROUPS)).await {
            Ok(found) => judge::runs_failing(self.crm, &found, &from, OffsetDateTime::now_utc()),
            Err(e) => judge::could_not_look(
                CheckId::RunsFailing,
                &e,
                "The failed runs of the last 24 hours.",
                now,
            ),
        }
    }

    /// Calls counted today for each connected system (the probes already know which are).
    async fn api_quota(&self, probes: &[(System, &Probe)]) -> Check {
        let now = OffsetDateTime::now_utc();
        let budgets = match bounded(self.budgets()).await {
            Ok(budgets) => budgets,
            Err(e) => {
                return judge::could_not_look(
                    CheckId::ApiQuota,
                    &e,
                    "The daily API budgets an admin set.",
                    now,
                );
            }
        };
        let mut usage = Vec::new();
        for &(system, probe) in probes {
            if matches!(probe, Probe::NotConnected) {
                continue;
            }
            match bounded(self.store.api_calls_on(system.as_code(), now)).await {
                Ok(counted) => usage.push(Usage {
                    system,
                    counted,
                    budget: self.day_standing(system, counted, &budgets, now).budget,
                    // Salesforce's own count (`Sforce-Limit-Info`), the whole org's, as last seen.
                    reported: match system {
                        System::Crm(_) => self.crm_port().ok().and_then(|p| p.api_usage()),
                        System::PartnerCenter => None,
                    },
                }),
                Err(e) => {
                    return judge::could_not_look(
                        CheckId::ApiQuota,
                        &e,
                        "The API calls counted today.",
                        now,
                    );
                }
            }
        }
        let midnight = now.replace_time(time::Time::MIDNIGHT);
        let seconds_into_day = (now - midnight).whole_seconds();
        judge::api_quota(&usage, seconds_into_day, OffsetDateTime::now_utc())
    }

    async fn storage(&self) -> Check {
        let found = bounded(self.store.storage_report()).await;
        judge::storage(found, OffsetDateTime::now_utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_look_that_takes_too_long_says_so() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, StoreError>(())
        };
        let e = within(Duration::from_millis(20), slow).await.unwrap_err();
        assert_eq!(e.to_string(), "no answer within 0 s");
        assert!(matches!(e, CheckError::TimedOut(_)));
    }

    #[tokio::test]
    async fn a_read_gets_what_is_left_of_the_looks_time() {
        assert_eq!(
            limit(),
            CHECK_TIMEOUT,
            "outside a look: the check's own limit"
        );
        let soon = tokio::time::Instant::now() + Duration::from_secs(2);
        let inside = DEADLINE.scope(soon, async { limit() }).await;
        assert!(inside <= Duration::from_secs(2), "{inside:?}");
        let late = tokio::time::Instant::now() + Duration::from_secs(60);
        let capped = DEADLINE.scope(late, async { limit() }).await;
        assert_eq!(capped, CHECK_TIMEOUT, "never more than a check may take");
        let past = tokio::time::Instant::now();
        let e = DEADLINE
            .scope(
                past,
                bounded(async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok::<_, StoreError>(())
                }),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, CheckError::TimedOut(_)),
            "a look past its deadline reads nothing more"
        );
    }

    fn report(secs: i64) -> Report {
        Report {
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs),
            checks: vec![],
        }
    }

    #[test]
    fn a_kept_report_holds_a_minute_until_something_changes() {
        let cache = Cache::default();
        assert_eq!(cache.fresh(), None);
        cache.keep(report(1), cache.generation());
        assert_eq!(cache.fresh(), Some(report(1)));
        // A report made before a change is stale even if it is young, but still the last one.
        cache.invalidate();
        assert_eq!(cache.fresh(), None);
        assert_eq!(cache.last(), Some(report(1)));
        // A look that began before the change stays stale when it is kept.
        let began = cache.generation();
        cache.invalidate();
        cache.keep(report(2), began);
        assert_eq!(cache.fresh(), None);
        cache.keep(report(3), cache.generation());
        assert_eq!(cache.fresh(), Some(report(3)));
        // An old report is stale.
        cache.lock().as_mut().unwrap().made = Instant::now() - FRESH_FOR;
        assert_eq!(cache.fresh(), None);
    }
}
