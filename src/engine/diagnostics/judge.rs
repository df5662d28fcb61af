//! The checks' judgements: from what was found to a [`Check`], with no I/O, so each rule is tested on
//! its own. What a check could not find arrives as a probe or an error and becomes `Attention` or
//! `NotApplicable` with the reason, never `Ok`.

use super::{CheckError, Credential, Probe, when};
use crate::clients::partner_center::webhook_registration::Registration;
use crate::domain::budget::projection;
use crate::domain::connection::{DAILY_CALL_QUOTA, Diagnosis, QuotaStanding, System};
use crate::domain::diagnostics::{Check, CheckId, CheckState, Fix, FixAction};
use crate::domain::flows::{
    ActivationError, ConnectionKind, Crm, Flow, activation_order, check_activate,
};
use crate::domain::numbers::thousands;
use crate::engine::webhook_registration::REFERRAL_EVENTS;
use crate::store::{FailedSince, StorageReport};
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// The finding of one check, before it is stamped with its id and time.
pub(super) struct Finding {
    state: CheckState,
    why: String,
    details: Vec<String>,
    fix: Option<Fix>,
}

impl Finding {
    pub(super) fn new(state: CheckState, why: impl Into<String>) -> Finding {
        Finding {
            state,
            why: why.into(),
            details: Vec::new(),
            fix: None,
        }
    }

    pub(super) fn state(&self) -> CheckState {
        self.state
    }

    pub(super) fn why(&self) -> &str {
        &self.why
    }

    pub(super) fn details(self, details: Vec<String>) -> Finding {
        Finding { details, ..self }
    }

    pub(super) fn fix(self, fix: Option<Fix>) -> Finding {
        Finding { fix, ..self }
    }

    pub(super) fn stamp(
        self,
        id: CheckId,
        looked_at: impl Into<String>,
        at: OffsetDateTime,
    ) -> Check {
        Check {
            id,
            state: self.state,
            why: self.why,
            details: self.details,
            looked_at: looked_at.into(),
            at,
            fix: self.fix,
        }
    }
}

/// A check whose looking failed (the database, or no answer in time).
pub(super) fn could_not_look(
    id: CheckId,
    error: &CheckError,
    looked_at: &str,
    at: OffsetDateTime,
) -> Check {
    Finding::new(
        CheckState::Attention,
        format!("This check could not be made: {error}."),
    )
    .stamp(id, looked_at, at)
}

/// The worst of several states: failing, then attention, then not applicable, then ok.
fn worst(states: impl IntoIterator<Item = CheckState>) -> CheckState {
    let rank = |s: &CheckState| match s {
        CheckState::Ok => 0,
        CheckState::NotApplicable => 1,
        CheckState::Attention => 2,
        CheckState::Failing => 3,
    };
    states
        .into_iter()
        .max_by_key(rank)
        .unwrap_or(CheckState::Ok)
}

/// "a", "a and b", "a, b and c".
pub(super) fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The Connections page link, worded for what the admin does there.
fn connections_fix(probes: &[(System, &Probe)]) -> Fix {
    let label = if probes.iter().any(|(_, p)| matches!(p, Probe::NotConnected)) {
        "Connect on the Connections page"
    } else if probes
        .iter()
        .any(|(_, p)| matches!(p, Probe::Diagnosed(d) if d.needs_reconnect()))
    {
        "Reconnect on the Connections page"
    } else {
        "Open Connections"
    };
    Fix::link("/connections", label)
}

/// What a probe says is wrong with a connection, if anything: (broken for good, the words).
fn probe_problem(system: System, probe: &Probe) -> Option<(bool, String)> {
    let s = system.label();
    match probe {
        Probe::Works(_) => None,
        Probe::NotConnected => Some((true, format!("{s} is not connected"))),
        Probe::NotConfigured(why) => Some((true, why.trim_end_matches('.').to_string())),
        Probe::Diagnosed(d) => Some((true, d.headline(system))),
        Probe::Unanswered(why) => Some((false, format!("{s} could not be checked: {why}"))),
    }
}

pub(super) fn connections_consented(probes: &[(System, &Probe)], at: OffsetDateTime) -> Check {
    let looked_at = "Each connection's stored consent, then a fresh token and a call as its account: Partner Center reads one referral and gets a token for the webhook API; the CRM answers who the account is and what it may do (the Connections page's “Test connection”).";
    let details = probes
        .iter()
        .map(|(system, probe)| match probe {
            // The summary names the system already ("Partner Center answered: …").
            Probe::Works(summary) => summary.clone(),
            Probe::Diagnosed(d) => format!(
                "{}: {}. {}",
                system.label(),
                d.headline(*system),
                d.fix(*system)
            ),
            _ => format!(
                "{}.",
                probe_problem(*system, probe)
                    .map(|(_, w)| w)
                    .unwrap_or_default()
            ),
        })
        .collect();
    let problems: Vec<(bool, String)> = probes
        .iter()
        .filter_map(|(system, probe)| probe_problem(*system, probe))
        .collect();
    let broken: Vec<String> = problems
        .iter()
        .filter(|(hard, _)| *hard)
        .map(|(_, w)| w.clone())
        .collect();
    let finding = if !broken.is_empty() {
        Finding::new(
            CheckState::Failing,
            format!("{}: nothing that needs it can sync.", and_list(&broken)),
        )
        .fix(Some(connections_fix(probes)))
    } else if !problems.is_empty() {
        let unanswered: Vec<String> = problems.into_iter().map(|(_, w)| w).collect();
        Finding::new(
            CheckState::Attention,
            format!(
                "{}. cosell retries by itself; if it lasts, check the service's status.",
                and_list(&unanswered)
            ),
        )
    } else {
        let names: Vec<String> = probes.iter().map(|(s, _)| s.label().to_string()).collect();
        Finding::new(
            CheckState::Ok,
            format!(
                "{} answered just now, as the accounts connected.",
                and_list(&names)
            ),
        )
    };
    finding
        .details(details)
        .stamp(CheckId::ConnectionsConsented, looked_at, at)
}

/// A refused refresh that only the person can cure: a password, MFA, consent, a revoked grant, or
/// cosell's own client secret.
fn is_credential(d: Diagnosis) -> bool {
    matches!(
        d,
        Diagnosis::PasswordExpired
            | Diagnosis::MfaRequired
            | Diagnosis::ConsentMissing
            | Diagnosis::GrantRevoked
            | Diagnosis::ClientCredentialsInvalid
    )
}

pub(super) fn credentials_current(
    found: &[(System, &Probe, Option<Credential>)],
    at: OffsetDateTime,
) -> Check {
    let looked_at = "The diagnosis each connection's last token refresh left (refreshed just now for this check): an expired password, a sign-in needing MFA, consent missing or withdrawn, a revoked or expired grant, cosell's client secret refused.";
    if found.iter().all(|(_, _, c)| c.is_none()) {
        return Finding::new(
            CheckState::NotApplicable,
            "Nothing is connected yet, so there is no password or sign-in to check (see “Both connections consented and answering”).",
        )
        .stamp(CheckId::CredentialsCurrent, looked_at, at);
    }
    let mut states = Vec::new();
    let mut details = Vec::new();
    let mut expired = Vec::new();
    let mut reconnect = false;
    for (system, probe, credential) in found {
        let s = system.label();
        let Some(c) = credential else {
            details.push(format!("{s}: not connected."));
            continue;
        };
        match c.diagnosis.filter(|d| is_credential(*d)) {
            Some(d) => {
                states.push(CheckState::Failing);
                reconnect |= d.needs_reconnect();
                expired.push(d.headline(*system));
                let waiting = match c.paused {
                    0 => String::new(),
                    1 => " 1 run waits for it, paused (nothing failed or lost); it goes on by itself once the connection works.".into(),
                    n => format!(" {n} runs wait for it, paused (nothing failed or lost); they go on by themselves once the connection works."),
                };
                details.push(format!(
                    "{s}: {}. {}{waiting}",
                    d.headline(*system),
                    d.fix(*system)
                ));
            }
            None => match probe {
                Probe::Unanswered(why) => {
                    states.push(CheckState::Attention);
                    details.push(format!(
                        "{s}: the sign-in of {} could not be renewed just now: {why}.",
                        c.account
                    ));
                }
                _ => {
                    states.push(CheckState::Ok);
                    details.push(format!(
                        "{s}: the sign-in of {} is current (last renewed {}).",
                        c.account,
                        when(c.renewed_at)
                    ));
                }
            },
        }
    }
    let finding = match worst(states) {
        CheckState::Failing => Finding::new(
            CheckState::Failing,
            format!(
                "{}: work that needs it waits, paused, until the person acts.",
                and_list(&expired)
            ),
        )
        .fix(reconnect.then(|| Fix::link("/connections", "Reconnect on the Connections page"))),
        CheckState::Attention => Finding::new(
            CheckState::Attention,
            "A sign-in could not be renewed just now; nothing says it has expired. cosell tries again with the next call.",
        ),
        _ => Finding::new(
            CheckState::Ok,
            "No password, consent or sign-in of a connection has expired or been revoked.",
        ),
    };
    finding
        .details(details)
        .stamp(CheckId::CredentialsCurrent, looked_at, at)
}

/// The flows of the catalog that are on (a flow of another CRM's catalog does not run here).
fn active_in_catalog(crm: Crm, active: &BTreeSet<Flow>) -> Vec<Flow> {
    activation_order(crm)
        .into_iter()
        .filter(|f| active.contains(f))
        .collect()
}

pub(super) fn flows_order(crm: Crm, active: &BTreeSet<Flow>, at: OffsetDateTime) -> Check {
    let looked_at = format!(
        "The flows switched on for {} (the Flows page), against their order: each flow after the flows it calls.",
        crm.label()
    );
    let order = activation_order(crm);
    let on = active_in_catalog(crm, active);
    let on_set: BTreeSet<Flow> = on.iter().copied().collect();
    // Only the order is judged here; connections are "flows-connections".
    let broken: Vec<String> = on
        .iter()
        .filter_map(|f| match check_activate(crm, *f, &on_set, &|_| true) {
            Err(e @ ActivationError::ChildInactive { .. }) => Some(format!("{e}.")),
            _ => None,
        })
        .collect();
    let fix = Some(Fix::Action(FixAction::ActivateAll));
    let finding = if !broken.is_empty() {
        Finding::new(
            CheckState::Failing,
            "A flow is on while a flow it calls is off: its runs fail when they call it.",
        )
        .details(broken)
        .fix(fix)
    } else if on.is_empty() {
        Finding::new(
            CheckState::Failing,
            "No flow is on: nothing syncs, and webhooks become skipped runs.",
        )
        .fix(fix)
    } else if on.len() < order.len() {
        let off: Vec<String> = order
            .iter()
            .filter(|f| !on_set.contains(f))
            .map(|f| format!("Off: “{}”.", f.name(crm)))
            .collect();
        Finding::new(
            CheckState::Attention,
            format!(
                "{} of {} flows are on, in a valid order; what the others do is not synced.",
                on.len(),
                order.len()
            ),
        )
        .details(off)
        .fix(fix)
    } else {
        Finding::new(
            CheckState::Ok,
            format!(
                "All {} flows are on, each after the flows it calls.",
                order.len()
            ),
        )
    };
    finding.stamp(CheckId::FlowsOrder, looked_at, at)
}

pub(super) fn flows_connections(
    crm: Crm,
    active: &BTreeSet<Flow>,
    probes: &[(System, &Probe)],
    at: OffsetDateTime,
) -> Check {
    let looked_at = "The connections each flow that is on runs with (the Flows page's Connections column), as the connection check found them just now.";
    let on = active_in_catalog(crm, active);
    if on.is_empty() {
        return Finding::new(
            CheckState::NotApplicable,
            "No flow is on, so no flow needs a connection yet.",
        )
        .stamp(CheckId::FlowsConnections, looked_at, at);
    }
    let system_of = |k: ConnectionKind| match k {
        ConnectionKind::PartnerCenter => System::PartnerCenter,
        ConnectionKind::Crm => System::Crm(crm),
    };
    let mut states = Vec::new();
    let mut details = Vec::new();
    let mut used = Vec::new();
    for (system, probe) in probes {
        let flows: Vec<String> = on
            .iter()
            .filter(|f| f.connections().iter().any(|k| system_of(*k) == *system))
            .map(|f| format!("“{}”", f.name(crm)))
            .collect();
        if flows.is_empty() {
            continue;
        }
        used.push(system.label().to_string());
        match probe_problem(*system, probe) {
            None => states.push(CheckState::Ok),
            Some((hard, problem)) => {
                states.push(if hard {
                    CheckState::Failing
                } else {
                    CheckState::Attention
                });
                details.push(format!("{problem}: used by {}.", and_list(&flows)));
            }
        }
    }
    let finding = match worst(states) {
        CheckState::Failing => Finding::new(
            CheckState::Failing,
            "Flows are on with a connection that does not work: their runs fail.",
        )
        .fix(Some(connections_fix(probes))),
        CheckState::Attention => Finding::new(
            CheckState::Attention,
            "A connection the flows use could not be checked just now.",
        ),
        _ => Finding::new(
            CheckState::Ok,
            format!(
                "The {} flows on run with {}, which answered just now.",
                on.len(),
                and_list(&used)
            ),
        ),
    };
    finding
        .details(details)
        .stamp(CheckId::FlowsConnections, looked_at, at)
}

/// What the webhook registration could be read as: the probe of Partner Center first, then the read.
pub(super) enum RegistrationRead<'a> {
    /// Partner Center's connection does not let it be read.
    Unreadable(&'a Probe),
    Failed(String),
    Read(Option<Registration>),
}

pub(super) fn webhook_registered(
    read: RegistrationRead<'_>,
    callback_url: &str,
    at: OffsetDateTime,
) -> Check {
    let looked_at = format!(
        "Partner Center's webhook registration (GET /webhooks/v1/registration, as the connected account): its URL against this instance's callback {callback_url}, and its events against the four the flows need."
    );
    let stamp = |f: Finding| f.stamp(CheckId::WebhookRegistered, looked_at.clone(), at);
    let fix = Some(Fix::Action(FixAction::RegisterWebhook {
        callback_url: callback_url.to_string(),
    }));
    let registration = match read {
        RegistrationRead::Unreadable(Probe::NotConnected) => {
            return stamp(Finding::new(
                CheckState::NotApplicable,
                "Partner Center is not connected, so its webhook registration cannot be read.",
            ));
        }
        RegistrationRead::Unreadable(probe) => {
            let why = probe_problem(System::PartnerCenter, probe)
                .map(|(_, w)| w)
                .unwrap_or_default();
            return stamp(
                Finding::new(
                    CheckState::Attention,
                    format!("The registration could not be read: {why}."),
                )
                .fix(Some(Fix::link("/connections", "Open Connections"))),
            );
        }
        RegistrationRead::Failed(why) => {
            return stamp(Finding::new(
                CheckState::Attention,
                format!("The registration could not be read: {why}."),
            ));
        }
        RegistrationRead::Read(r) => r,
    };
    let Some(registration) = registration else {
        return stamp(
            Finding::new(
                CheckState::Failing,
                "Partner Center has no webhook registration: it tells cosell of no new or changed referral.",
            )
            .fix(fix),
        );
    };
    let details = vec![
        format!("Registered URL: {}.", registration.webhook_url),
        format!(
            "Registered events: {}.",
            if registration.webhook_events.is_empty() {
                "none".to_string()
            } else {
                registration.webhook_events.join(", ")
            }
        ),
    ];
    let missing: Vec<String> = registration
        .lacks(&REFERRAL_EVENTS)
        .into_iter()
        .map(str::to_string)
        .collect();
    let finding = if !registration.sends_to(callback_url) {
        Finding::new(
            CheckState::Failing,
            format!(
                "Partner Center sends referral events to {}, not to this instance ({callback_url}): they never reach cosell.",
                registration.webhook_url
            ),
        )
        .fix(fix)
    } else if !missing.is_empty() {
        Finding::new(
            CheckState::Failing,
            format!(
                "The registration lacks {}: those changes never reach cosell.",
                and_list(&missing)
            ),
        )
        .fix(fix)
    } else {
        Finding::new(
            CheckState::Ok,
            "Partner Center sends the four referral events to this instance.",
        )
    };
    stamp(finding.details(details))
}

pub(super) fn runs_failing(crm: Crm, found: &FailedSince, from: &str, at: OffsetDateTime) -> Check {
    let looked_at = format!(
        "Runs created since {from} UTC that failed and were not resubmitted (a child run counts through the run it ran in), grouped by flow and outcome."
    );
    if found.total == 0 {
        return Finding::new(
            CheckState::Ok,
            "No run failed in the last 24 hours, or every one that did was resubmitted.",
        )
        .stamp(CheckId::RunsFailing, looked_at, at);
    }
    let mut details: Vec<String> = found
        .groups
        .iter()
        .map(|g| {
            format!(
                "{} × “{}”: {} (latest: run #{}).",
                g.count,
                g.flow.name(crm),
                g.outcome.trim_end_matches('.'),
                g.latest_run
            )
        })
        .collect();
    let shown: i64 = found.groups.iter().map(|g| g.count).sum();
    if found.total > shown {
        details.push(format!(
            "{} more in smaller groups (see the Runs page, status Failed).",
            found.total - shown
        ));
    }
    Finding::new(
        CheckState::Failing,
        match found.total {
            1 => "1 run failed in the last 24 hours and was not resubmitted.".to_string(),
            n => format!("{n} runs failed in the last 24 hours and were not resubmitted."),
        },
    )
    .details(details)
    .fix(Some(Fix::Action(FixAction::ResubmitFailed {
        from: from.to_string(),
    })))
    .stamp(CheckId::RunsFailing, looked_at, at)
}

/// One connection's calls today: what cosell counted and, when the CRM reports it, its own count
/// and allocation (Salesforce's `Sforce-Limit-Info`, the whole org's).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Usage {
    pub system: System,
    pub counted: i64,
    pub reported: Option<(i64, i64)>,
    /// The connection's daily budget (src/domain/budget.rs).
    pub budget: i64,
}

pub(super) fn api_quota(usage: &[Usage], seconds_into_day: i64, at: OffsetDateTime) -> Check {
    let looked_at = format!(
        "The API calls cosell counted per connection since midnight UTC (every call, in runs or not) against its daily budget (the Settings page; by default the documented {}; a CRM that reports its own allocation is judged by it), and the day's total at this pace.",
        thousands(DAILY_CALL_QUOTA)
    );
    if usage.is_empty() {
        return Finding::new(
            CheckState::NotApplicable,
            "Nothing is connected, so no API call is made.",
        )
        .stamp(CheckId::ApiQuota, looked_at, at);
    }
    let mut states = Vec::new();
    let mut details = Vec::new();
    let mut spent = Vec::new();
    for u in usage {
        let s = u.system.label();
        let (used, max) = u.reported.unwrap_or((u.counted, u.budget));
        let projected = projection(used, seconds_into_day);
        let pace = match projected {
            Some(p) => format!("at this pace about {} by midnight UTC", thousands(p)),
            None => "too early in the UTC day to project".to_string(),
        };
        details.push(match u.reported {
            Some((used, max)) => format!(
                "{s}: cosell made {} calls today (UTC); {s} reports {} of the org's {} used; {pace}.",
                thousands(u.counted),
                thousands(used),
                thousands(max)
            ),
            None => format!(
                "{s}: {} of {} calls today (UTC); {pace}.",
                thousands(used),
                thousands(max)
            ),
        });
        states.push(match QuotaStanding::of(used, max) {
            QuotaStanding::Spent => {
                spent.push(s.to_string());
                CheckState::Failing
            }
            QuotaStanding::Near => CheckState::Attention,
            QuotaStanding::Fine if projected.is_some_and(|p| p >= max) => CheckState::Attention,
            QuotaStanding::Fine => CheckState::Ok,
        });
    }
    let finding = match worst(states) {
        CheckState::Failing => Finding::new(
            CheckState::Failing,
            format!(
                "The daily API allocation of {} is spent: work that needs it waits until calls free up (no attempt is spent meanwhile).",
                and_list(&spent)
            ),
        )
        .fix(Some(Fix::link("/runs?status=queued", "See the waiting runs"))),
        CheckState::Attention => Finding::new(
            CheckState::Attention,
            "A connection has used 80% of its daily calls, or will use them all at this pace.",
        ),
        _ => Finding::new(
            CheckState::Ok,
            "Every connection is well within its daily calls.",
        ),
    };
    finding
        .details(details)
        .stamp(CheckId::ApiQuota, looked_at, at)
}

/// Bytes as a person reads them.
pub(super) fn size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub(super) fn storage(found: Result<StorageReport, CheckError>, at: OffsetDateTime) -> Check {
    let looked_at = "A round trip to the database, its size (SQLite: pages × page size; PostgreSQL: pg_database_size) and the oldest run it keeps.";
    let finding = match found {
        Err(e) => Finding::new(
            CheckState::Failing,
            format!(
                "The database did not answer: {e}. Nothing can be queued or recorded until it does."
            ),
        ),
        Ok(report) => {
            let name = match report.backend {
                crate::store::Backend::Sqlite => "SQLite",
                crate::store::Backend::Postgres => "PostgreSQL",
            };
            let mut details = Vec::new();
            if let Some(bytes) = report.size_bytes {
                details.push(format!("Size: {}.", size(bytes)));
            }
            details.push(match report.oldest_run {
                Some((id, created)) => {
                    format!("Oldest run kept: #{id}, created {}.", when(created))
                }
                None => "No run kept yet.".to_string(),
            });
            Finding::new(CheckState::Ok, format!("The {name} database answered.")).details(details)
        }
    };
    finding.stamp(CheckId::Storage, looked_at, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FailedRuns;
    use std::time::Duration;

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-12-01 12:00 UTC)
    }

    const PC: System = System::PartnerCenter;
    const D365: System = System::DYNAMICS_365;

    #[test]
    fn connections_fail_when_missing_or_diagnosed_and_need_attention_when_unanswered() {
        let works = Probe::Works("fine".into());
        let missing = Probe::NotConnected;
        let expired = Probe::Diagnosed(Diagnosis::PasswordExpired);
        let silent = Probe::Unanswered("no answer within 10 s".into());

        let ok = connections_consented(&[(PC, &works), (D365, &works)], at());
        assert_eq!(ok.state, CheckState::Ok);
        assert_eq!(ok.fix, None);

        let c = connections_consented(&[(PC, &missing), (D365, &works)], at());
        assert_eq!(c.state, CheckState::Failing);
        assert!(
            c.why.contains("Partner Center is not connected"),
            "{}",
            c.why
        );
        assert_eq!(
            c.fix,
            Some(Fix::link("/connections", "Connect on the Connections page"))
        );

        let c = connections_consented(&[(PC, &expired), (D365, &silent)], at());
        assert_eq!(c.state, CheckState::Failing);
        assert_eq!(
            c.fix,
            Some(Fix::link(
                "/connections",
                "Reconnect on the Connections page"
            ))
        );

        let c = connections_consented(&[(PC, &works), (D365, &silent)], at());
        assert_eq!(c.state, CheckState::Attention, "never ok without an answer");
        assert_eq!(c.details.len(), 2);
    }

    #[test]
    fn credentials_fail_on_a_refusal_only_the_person_can_cure() {
        let works = Probe::Works("fine".into());
        let credential = |d: Option<Diagnosis>| {
            Some(Credential {
                account: "adele@contoso".into(),
                renewed_at: at(),
                diagnosis: d,
                paused: 3,
            })
        };
        let none = credentials_current(&[(PC, &Probe::NotConnected, None)], at());
        assert_eq!(none.state, CheckState::NotApplicable);

        let ok = credentials_current(
            &[
                (PC, &works, credential(None)),
                // A missing role is not a credential: the role checks say it.
                (D365, &works, credential(Some(Diagnosis::MissingRole))),
            ],
            at(),
        );
        assert_eq!(ok.state, CheckState::Ok, "{}", ok.why);

        let expired = Probe::Diagnosed(Diagnosis::PasswordExpired);
        let c = credentials_current(
            &[
                (PC, &expired, credential(Some(Diagnosis::PasswordExpired))),
                (D365, &works, credential(None)),
            ],
            at(),
        );
        assert_eq!(c.state, CheckState::Failing);
        assert!(c.why.contains("password"), "{}", c.why);
        assert!(
            c.details[0].contains("3 runs wait for it, paused"),
            "the work waiting for it: {:?}",
            c.details
        );
        assert_eq!(
            c.fix,
            Some(Fix::link(
                "/connections",
                "Reconnect on the Connections page"
            ))
        );

        // cosell's own secret: no Reconnect cures it; the words say what does.
        let c = credentials_current(
            &[(
                PC,
                &works,
                credential(Some(Diagnosis::ClientCredentialsInvalid)),
            )],
            at(),
        );
        assert_eq!(c.state, CheckState::Failing);
        assert_eq!(c.fix, None);
        assert!(c.details[0].contains("client secret"), "{:?}", c.details);

        let c = credentials_current(
            &[(PC, &Probe::Unanswered("no answer".into()), credential(None))],
            at(),
        );
        assert_eq!(c.state, CheckState::Attention);
    }

    #[test]
    fn the_flow_order_is_valid_partial_or_broken() {
        let crm = Crm::Dynamics365;
        let all: BTreeSet<Flow> = activation_order(crm).into_iter().collect();
        assert_eq!(flows_order(crm, &all, at()).state, CheckState::Ok);

        let none = flows_order(crm, &BTreeSet::new(), at());
        assert_eq!(none.state, CheckState::Failing);
        assert_eq!(none.fix, Some(Fix::Action(FixAction::ActivateAll)));

        let partial: BTreeSet<Flow> = [Flow::WebhookRegistration, Flow::Customize].into();
        let c = flows_order(crm, &partial, at());
        assert_eq!(c.state, CheckState::Attention);
        assert_eq!(c.details.len(), 7, "{:?}", c.details);

        // A parent on under a child that is off: only a database edit (or an old bug) gets here.
        let mut broken = all.clone();
        broken.remove(&Flow::Helper);
        let c = flows_order(crm, &broken, at());
        assert_eq!(c.state, CheckState::Failing);
        assert_eq!(
            c.details,
            vec![
                "Activate “Partner Center to Dynamics 365 - Helper” first: “Partner Center to Dynamics 365” calls it."
            ]
        );
        assert_eq!(c.fix, Some(Fix::Action(FixAction::ActivateAll)));

        // Another CRM's flow left on does not count for this one.
        let sf: BTreeSet<Flow> = activation_order(Crm::Salesforce)
            .into_iter()
            .chain([Flow::Helper])
            .collect();
        assert_eq!(
            flows_order(Crm::Salesforce, &sf, at()).state,
            CheckState::Ok
        );
    }

    #[test]
    fn every_flow_on_needs_its_connections_working() {
        let crm = Crm::Dynamics365;
        let works = Probe::Works("fine".into());
        let missing = Probe::NotConnected;
        let none = flows_connections(crm, &BTreeSet::new(), &[(PC, &works), (D365, &works)], at());
        assert_eq!(none.state, CheckState::NotApplicable);

        // Only "[Customize]" is on: it needs the CRM alone, so Partner Center's absence is no matter.
        let customize: BTreeSet<Flow> = [Flow::Customize].into();
        let c = flows_connections(crm, &customize, &[(PC, &missing), (D365, &works)], at());
        assert_eq!(c.state, CheckState::Ok, "{}", c.why);

        let all: BTreeSet<Flow> = activation_order(crm).into_iter().collect();
        let c = flows_connections(crm, &all, &[(PC, &missing), (D365, &works)], at());
        assert_eq!(c.state, CheckState::Failing);
        assert_eq!(c.details.len(), 1);
        assert!(
            c.details[0].starts_with(
                "Partner Center is not connected: used by “Partner Center Webhook Registration”"
            ),
            "{:?}",
            c.details
        );
        assert_eq!(
            c.fix,
            Some(Fix::link("/connections", "Connect on the Connections page"))
        );
    }

    #[test]
    fn the_webhook_must_point_here_with_all_four_events() {
        let here = "https://cosell.example/webhooks/partner-center";
        let registration = |url: &str, events: &[&str]| Registration {
            webhook_url: url.into(),
            webhook_events: events.iter().map(|e| e.to_string()).collect(),
        };
        let ok = webhook_registered(
            RegistrationRead::Read(Some(registration(here, &REFERRAL_EVENTS))),
            here,
            at(),
        );
        assert_eq!(ok.state, CheckState::Ok);
        let fix = Some(Fix::Action(FixAction::RegisterWebhook {
            callback_url: here.into(),
        }));
        for read in [
            RegistrationRead::Read(None),
            RegistrationRead::Read(Some(registration(
                "https://elsewhere.example/hook",
                &REFERRAL_EVENTS,
            ))),
            RegistrationRead::Read(Some(registration(
                here,
                &["referral-created", "referral-updated"],
            ))),
        ] {
            let c = webhook_registered(read, here, at());
            assert_eq!(c.state, CheckState::Failing, "{}", c.why);
            assert_eq!(c.fix, fix);
        }
        let c = webhook_registered(
            RegistrationRead::Read(Some(registration(here, &["referral-created"]))),
            here,
            at(),
        );
        assert!(
            c.why.contains(
                "referral-updated, related-referral-created and related-referral-updated"
            ),
            "{}",
            c.why
        );
        let c = webhook_registered(
            RegistrationRead::Unreadable(&Probe::NotConnected),
            here,
            at(),
        );
        assert_eq!(c.state, CheckState::NotApplicable);
        let c = webhook_registered(RegistrationRead::Failed("no answer".into()), here, at());
        assert_eq!(c.state, CheckState::Attention);
    }

    #[test]
    fn failed_runs_are_listed_by_group_with_resubmit() {
        let crm = Crm::Dynamics365;
        assert_eq!(
            runs_failing(crm, &FailedSince::default(), "2026-11-30T12:00", at()).state,
            CheckState::Ok
        );
        let found = FailedSince {
            total: 5,
            groups: vec![FailedRuns {
                flow: Flow::PartnerCenterToCrm,
                outcome: "Access denied.".into(),
                count: 3,
                latest_run: 42,
            }],
        };
        let c = runs_failing(crm, &found, "2026-11-30T12:00", at());
        assert_eq!(c.state, CheckState::Failing);
        assert_eq!(
            c.details,
            vec![
                "3 × “Partner Center to Dynamics 365”: Access denied (latest: run #42).",
                "2 more in smaller groups (see the Runs page, status Failed)."
            ]
        );
        assert_eq!(
            c.fix,
            Some(Fix::Action(FixAction::ResubmitFailed {
                from: "2026-11-30T12:00".into()
            }))
        );
    }

    #[test]
    fn the_days_calls_are_projected_once_the_day_is_an_hour_old() {
        let usage = |counted, reported| Usage {
            system: PC,
            counted,
            reported,
            budget: DAILY_CALL_QUOTA,
        };
        let noon = 12 * 3600;
        let c = api_quota(&[usage(120, None)], noon, at());
        assert_eq!(c.state, CheckState::Ok);
        assert_eq!(
            c.details,
            vec![
                "Partner Center: 120 of 10,000 calls today (UTC); at this pace about 240 by midnight UTC."
            ]
        );
        // Half the quota by noon: all of it by midnight.
        assert_eq!(
            api_quota(&[usage(5_000, None)], noon, at()).state,
            CheckState::Attention
        );
        assert_eq!(
            api_quota(&[usage(8_000, None)], 600, at()).state,
            CheckState::Attention
        );
        let spent = api_quota(&[usage(10_000, None)], noon, at());
        assert_eq!(spent.state, CheckState::Failing);
        assert!(spent.fix.is_some());
        // A smaller budget set by an admin is what the day is judged by.
        let budgeted = Usage {
            budget: 200,
            ..usage(120, None)
        };
        let c = api_quota(&[budgeted], noon, at());
        assert_eq!(
            c.state,
            CheckState::Attention,
            "240 by midnight is over 200"
        );
        assert!(
            c.details[0].contains("120 of 200 calls today"),
            "{:?}",
            c.details
        );
        // A CRM that reports its allocation is judged by it.
        let sf = Usage {
            system: System::SALESFORCE,
            counted: 10,
            reported: Some((14_900, 15_000)),
            budget: 15_000,
        };
        assert_eq!(api_quota(&[sf], noon, at()).state, CheckState::Attention);
        assert_eq!(api_quota(&[], noon, at()).state, CheckState::NotApplicable);
    }

    #[test]
    fn storage_says_size_and_oldest_run_or_fails() {
        let c = storage(
            Ok(StorageReport {
                backend: crate::store::Backend::Sqlite,
                size_bytes: Some(3 * 1024 * 1024 / 2),
                oldest_run: Some((7, at())),
            }),
            at(),
        );
        assert_eq!(c.state, CheckState::Ok);
        assert_eq!(
            c.details,
            vec![
                "Size: 1.5 MB.",
                "Oldest run kept: #7, created 2026-12-01 12:00 UTC."
            ]
        );
        let c = storage(Err(CheckError::TimedOut(Duration::from_secs(10))), at());
        assert_eq!(c.state, CheckState::Failing);
        assert!(c.why.contains("within 10 s"), "{}", c.why);
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(2048), "2.0 KB");
    }
}
