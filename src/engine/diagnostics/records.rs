//! Judgements about the connected accounts' roles, the CRM's change feed and the records cosell syncs,
//! with no I/O: the FAQ's "the account lacks the role", "the currency is not configured", "the owner
//! has no phone", "the opportunity fails validation", "the sync switch is off", "the referral names an
//! opportunity the CRM does not have" and "changes are not picked up".

use super::Probe;
use super::judge::{Finding, and_list};
use crate::clients::partner_center::referrals::ListedReferral;
use crate::domain::codes::CurrencyCode;
use crate::domain::connection::{Diagnosis, System};
use crate::domain::diagnostics::{Check, CheckId, CheckState, Fix, FixAction};
use crate::domain::opportunity::{OpportunityState, Problem};
use crate::domain::referral::Standing;
use crate::domain::runs::when;
use crate::engine::webhook_deliveries::TestEvent;
use crate::store::MirroredOpportunity;
use crate::store::RecordRuns;
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// Records named per group at most (the Opportunities page has them all).
const NAMED: usize = 10;

/// A CRM read a check needed, or why it was not made.
pub(super) enum CrmRead<T> {
    Read(T),
    /// The CRM could not be asked (not connected, not configured, a sign-in to fix): the probe says.
    NotAsked(String),
    Failed(String),
}

impl<T> CrmRead<T> {
    /// What was read, or the finding of a check that could not read it (`failed` says what failed).
    fn or_finding(&self, failed: &str) -> Result<&T, Finding> {
        match self {
            CrmRead::Read(found) => Ok(found),
            CrmRead::NotAsked(why) => Err(Finding::new(CheckState::NotApplicable, why.clone())),
            CrmRead::Failed(why) => Err(Finding::new(
                CheckState::Attention,
                format!("{failed}: {why}."),
            )),
        }
    }
}

/// Why a probe keeps a check from judging, or None when the system answered.
fn not_judged(system: System, probe: &Probe) -> Option<(CheckState, String)> {
    let s = system.label();
    match probe {
        Probe::Works(_) => None,
        Probe::NotConnected => Some((
            CheckState::NotApplicable,
            format!("{s} is not connected, so there is nothing to look at yet."),
        )),
        Probe::NotConfigured(why) => Some((CheckState::NotApplicable, why.clone())),
        Probe::Diagnosed(d) => Some((
            CheckState::NotApplicable,
            format!(
                "{}: the sign-in must be fixed first (see “Passwords and sign-ins current”).",
                d.headline(system)
            ),
        )),
        Probe::Unanswered(why) => Some((
            CheckState::Attention,
            format!("{s} could not be asked: {why}."),
        )),
    }
}

/// `partner-center-role` and `crm-role`: what the connection probe proved of the account's role.
pub(super) fn role(system: System, probe: &Probe, at: OffsetDateTime) -> Check {
    let (id, looked_at) = match system {
        System::PartnerCenter => (
            CheckId::PartnerCenterRole,
            "A referral read as the connected account, as “Test connection” makes it: Partner Center answers a Referrals admin and refuses anyone else (403).",
        ),
        System::Crm(_) => (
            CheckId::CrmRole,
            "The connected CRM account's roles, as “Test connection” reads them: Dynamics 365 needs System Administrator or System Customizer; Salesforce needs “Modify All Data”.",
        ),
    };
    let finding = match probe {
        Probe::Works(summary) => Finding::new(CheckState::Ok, summary.clone()),
        Probe::Diagnosed(d @ (Diagnosis::MissingRole | Diagnosis::NotAMember)) => Finding::new(
            CheckState::Failing,
            format!("{}. {}", d.headline(system), d.fix(system)),
        )
        .fix(Some(Fix::link(
            "/connections",
            "Reconnect or test on the Connections page",
        ))),
        other => {
            let (state, why) = not_judged(system, other).unwrap_or((
                CheckState::Attention,
                "The connection was not proven.".into(),
            ));
            Finding::new(state, why)
        }
    };
    finding.stamp(id, looked_at, at)
}

/// "Name (id)" of each record, the first [`NAMED`] of them, and how many more.
fn named(records: &[&MirroredOpportunity]) -> String {
    let mut names: Vec<String> = records
        .iter()
        .take(NAMED)
        .map(|o| format!("{} ({})", o.seen.name, o.seen.crm_id))
        .collect();
    if records.len() > NAMED {
        names.push(format!("{} more", records.len() - NAMED));
    }
    and_list(&names)
}

/// The opportunities failing rules that `pick` selects, grouped by what to fix, in field order.
fn grouped(
    failing: &[MirroredOpportunity],
    pick: impl Fn(&Problem) -> bool,
) -> BTreeMap<String, Vec<&MirroredOpportunity>> {
    let mut groups: BTreeMap<String, Vec<&MirroredOpportunity>> = BTreeMap::new();
    for o in failing {
        let mut fields: Vec<String> = o
            .problems
            .iter()
            .flatten()
            .filter(|p| pick(p))
            .map(|p| p.field().to_string())
            .collect();
        fields.dedup();
        for field in fields {
            groups.entry(field).or_default().push(o);
        }
    }
    groups
}

fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `opportunities-not-ready`: synced opportunities whose last check failed a rule, grouped by the
/// field to fix.
/// `failing` are the synced opportunities whose last check failed a rule (as many as are listed);
/// `synced` how many are synced in all.
pub(super) fn opportunities_not_ready(
    failing: &[MirroredOpportunity],
    synced: i64,
    at: OffsetDateTime,
) -> Check {
    let looked_at = "The opportunities with “Sync with Partner Center” on, as the CRM's change feed last read them, and the rules each one failed at its last check (solution, country code, contact when help is asked, value and closing date, currency, owner).";
    let finding = if failing.is_empty() {
        Finding::new(
            CheckState::Ok,
            match synced {
                0 => "No opportunity is synced yet, so none fails a rule.".to_string(),
                n => format!(
                    "None of the {} fails a rule.",
                    count(n as usize, "synced opportunity", "synced opportunities")
                ),
            },
        )
    } else {
        let details = grouped(failing, |_| true)
            .into_iter()
            .map(|(field, records)| format!("{field}: {}", named(&records)))
            .collect();
        Finding::new(
            CheckState::Failing,
            format!(
                "{} cannot be shared until sellers fix them in the CRM; each is shared by itself once fixed.",
                count(
                    failing.len(),
                    "synced opportunity fails a rule and",
                    "synced opportunities fail a rule and"
                )
            ),
        )
        .details(details)
        .fix(Some(Fix::link(
            "/opportunities",
            "See each one's fix on Opportunities",
        )))
    };
    finding.stamp(CheckId::OpportunitiesNotReady, looked_at, at)
}

/// `crm-sellers`: the owners of synced opportunities lacking a name, email or phone (a referral's team).
pub(super) fn crm_sellers(
    failing: &[MirroredOpportunity],
    synced: i64,
    at: OffsetDateTime,
) -> Check {
    let looked_at = "The owner of each synced opportunity, as its last check read the CRM user: a referral's team needs the seller's name, email and phone.";
    let mut owners: BTreeMap<String, (Vec<String>, Vec<&MirroredOpportunity>)> = BTreeMap::new();
    for o in failing {
        for p in o.problems.iter().flatten() {
            if let Problem::OwnerIncomplete { owner, missing } = p {
                let entry = owners.entry(owner.clone()).or_default();
                entry.0.clone_from(missing);
                entry.1.push(o);
            }
        }
    }
    let finding = if owners.is_empty() {
        Finding::new(
            CheckState::Ok,
            if synced == 0 {
                "No opportunity is synced yet.".to_string()
            } else {
                "Every synced opportunity's owner has a name, an email and a phone.".to_string()
            },
        )
    } else {
        let details = owners
            .iter()
            .map(|(owner, (missing, records))| {
                format!("{owner}: no {} — {}", and_list(missing), named(records))
            })
            .collect();
        Finding::new(
            CheckState::Failing,
            format!(
                "{} in the CRM: their opportunities cannot be shared until it is filled in.",
                count(owners.len(), "seller lacks details", "sellers lack details")
            ),
        )
        .details(details)
    };
    finding.stamp(CheckId::CrmSellers, looked_at, at)
}

/// `crm-currency`: the CRM has currencies configured, and no synced opportunity fails a currency rule.
pub(super) fn crm_currency(
    configured: CrmRead<Vec<CurrencyCode>>,
    failing: &[MirroredOpportunity],
    at: OffsetDateTime,
) -> Check {
    let looked_at = "The currencies configured in the CRM (Dynamics 365: Currencies; Salesforce: the org's currencies, with multiple currencies on), and the currency rule of each synced opportunity.";
    let currencies = match configured.or_finding("The CRM's currencies could not be read") {
        Ok(currencies) => currencies,
        Err(finding) => return finding.stamp(CheckId::CrmCurrency, looked_at, at),
    };
    let failing = grouped(failing, |p| {
        matches!(
            p,
            Problem::CurrencyMissing
                | Problem::CurrencyUnknown { .. }
                | Problem::CurrencyNotConfigured
        )
    });
    let codes: Vec<String> = currencies.iter().map(|c| c.as_str().to_string()).collect();
    let finding = if currencies.is_empty() {
        Finding::new(
            CheckState::Failing,
            "The CRM has no currency configured: no referral's value can be written. Add the currencies your deals use (Salesforce: turn on multiple currencies).",
        )
    } else if let Some(records) = failing.values().next() {
        Finding::new(
            CheckState::Failing,
            format!(
                "The CRM has {} configured, but {} a currency rule.",
                and_list(&codes),
                count(
                    records.len(),
                    "synced opportunity fails",
                    "synced opportunities fail"
                )
            ),
        )
        .details(vec![named(records)])
        .fix(Some(Fix::link(
            "/opportunities",
            "See each one's fix on Opportunities",
        )))
    } else {
        Finding::new(
            CheckState::Ok,
            format!("The CRM has {} configured.", and_list(&codes)),
        )
    };
    finding.stamp(CheckId::CrmCurrency, looked_at, at)
}

/// `sync-switch`: open opportunities linked to a referral whose "Sync with Partner Center" is off.
pub(super) fn sync_switch(linked_off: &[MirroredOpportunity], at: OffsetDateTime) -> Check {
    let looked_at = "Open opportunities linked to a Partner Center referral, as the change feed last read them, and their “Sync with Partner Center” switch.";
    let finding = if linked_off.is_empty() {
        Finding::new(
            CheckState::Ok,
            "Every open opportunity linked to a referral has “Sync with Partner Center” on.",
        )
    } else {
        let records: Vec<&MirroredOpportunity> = linked_off.iter().collect();
        Finding::new(
            CheckState::Attention,
            format!(
                "{} to a referral with “Sync with Partner Center” off: the seller's changes do not reach Partner Center. Switch it on where the deal is still co-sold.",
                count(
                    linked_off.len(),
                    "open opportunity is linked",
                    "open opportunities are linked"
                )
            ),
        )
        .details(vec![named(&records)])
        .fix(Some(Fix::link(
            "/opportunities",
            "Switch sync on from Opportunities",
        )))
    };
    finding.stamp(CheckId::SyncSwitch, looked_at, at)
}

/// `crm-id-unknown`: referrals that named a CRM id the CRM does not have, in the window.
pub(super) fn crm_id_unknown(
    ignored: &[(String, OffsetDateTime, String)],
    window_days: i64,
    at: OffsetDateTime,
) -> Check {
    let looked_at = format!(
        "The audit of the last {window_days} days: referrals whose CRM id named no opportunity of the CRM (such an id is ignored, as Microsoft documents, and the referral is matched as if it had none)."
    );
    let finding = if ignored.is_empty() {
        Finding::new(
            CheckState::Ok,
            "No referral named a CRM id the CRM does not have.",
        )
    } else {
        Finding::new(
            CheckState::Attention,
            format!(
                "{} a CRM id the CRM does not have; each was ignored, as documented. If a seller typed it, correct it in Partner Center.",
                count(ignored.len(), "referral named", "referrals named")
            ),
        )
        .details(
            ignored
                .iter()
                .map(|(referral, when_, detail)| {
                    format!("Referral {referral} ({}): {detail}", when(*when_))
                })
                .collect(),
        )
    };
    finding.stamp(CheckId::CrmIdUnknown, looked_at, at)
}

/// A referral Partner Center listed, with what cosell knows of it.
pub(super) struct ReferralSeen {
    pub referral: ListedReferral,
    /// Where its own runs ("Partner Center to CRM") stand.
    pub runs: RecordRuns,
    /// The opportunity linked to it, as the mirror last saw it: (id, name, state).
    pub linked: Option<(String, String, OpportunityState)>,
}

/// `referral-not-in-crm`: open referrals shared with the partner that never reached the CRM and have
/// no failed run to say why (a webhook that never arrived, or a flow that was off).
pub(super) fn referral_not_in_crm_of(
    listed: &CrmRead<Vec<ReferralSeen>>,
    window_days: i64,
    at: OffsetDateTime,
) -> Check {
    let looked_at = format!(
        "The referrals Partner Center lists as updated in the last {window_days} days (newest first, up to {} pages), against the opportunities they are linked to and the runs cosell made for them.",
        super::REFERRAL_PAGES
    );
    let listed = match listed.or_finding("Partner Center's referrals could not be listed") {
        Ok(listed) => listed,
        Err(finding) => return finding.stamp(CheckId::ReferralNotInCrm, looked_at, at),
    };
    let missing: Vec<String> = listed
        .iter()
        .filter(|r| {
            r.referral.direction == "Incoming"
                && r.referral.standing == Standing::Open
                && r.linked.is_none()
                && !r.runs.in_flight
                && (r.runs.last_looked.is_none() || r.runs.last_skipped_flow_off)
        })
        .map(|r| format!("{} ({})", r.referral.name, r.referral.id))
        .collect();
    let finding = if missing.is_empty() {
        Finding::new(
            CheckState::Ok,
            format!(
                "Every open referral shared in the last {window_days} days reached the CRM, or its run says why not."
            ),
        )
    } else {
        Finding::new(
            CheckState::Failing,
            format!(
                "{} in Partner Center with no opportunity and no failed run: its webhook never arrived, or its flow was off. A reconciliation brings {} in.",
                count(missing.len(), "open referral is", "open referrals are"),
                if missing.len() == 1 { "it" } else { "them" }
            ),
        )
        .details(missing)
        .fix(Some(Fix::Action(FixAction::Reconcile)))
    };
    finding.stamp(CheckId::ReferralNotInCrm, looked_at, at)
}

/// `referral-closed`: a referral closed in Partner Center while its opportunity is open in the CRM, or
/// the reverse — the FAQ's "deal accidentally closed".
pub(super) fn referral_closed(listed: &CrmRead<Vec<ReferralSeen>>, at: OffsetDateTime) -> Check {
    let looked_at =
        "The status of each listed referral against the state of the CRM opportunity linked to it.";
    let listed = match listed.or_finding("Partner Center's referrals could not be listed") {
        Ok(listed) => listed,
        Err(finding) => return finding.stamp(CheckId::ReferralClosed, looked_at, at),
    };
    let label = |s: Standing| match s {
        Standing::Open => "open",
        Standing::Won => "closed as won",
        Standing::Lost => "closed as lost",
    };
    let crm_label = |s: OpportunityState| match s {
        OpportunityState::Open => "open",
        OpportunityState::Won => "won",
        OpportunityState::Lost => "lost",
    };
    let apart: Vec<String> = listed
        .iter()
        .filter_map(|r| {
            let (id, name, state) = r.linked.as_ref()?;
            let crm_open = *state == OpportunityState::Open;
            let pc_open = r.referral.standing == Standing::Open;
            (crm_open != pc_open).then(|| {
                format!(
                    "Referral {} ({}) is {} in Partner Center; opportunity {name} ({id}) is {} in the CRM.",
                    r.referral.name,
                    r.referral.id,
                    label(r.referral.standing),
                    crm_label(*state)
                )
            })
        })
        .collect();
    let finding = if apart.is_empty() {
        Finding::new(
            CheckState::Ok,
            "Every listed referral is open where its opportunity is open, and closed where it is closed.",
        )
    } else {
        Finding::new(
            CheckState::Attention,
            format!(
                "{} in one system and open in the other: if the deal was closed by mistake, reopen it where it was closed (a closed referral takes no more updates); otherwise close the other side.",
                count(apart.len(), "deal is closed", "deals are closed")
            ),
        )
        .details(apart)
        .fix(Some(Fix::link("/opportunities", "Open Opportunities")))
    };
    finding.stamp(CheckId::ReferralClosed, looked_at, at)
}

/// What `webhook-arriving` knows of Partner Center's deliveries.
pub(super) struct Deliveries {
    /// The newest verified delivery: when, and its event.
    pub last: Option<(OffsetDateTime, String)>,
    /// The last test event asked for, and when it arrived (if it did).
    pub test: Option<(TestEvent, Option<OffsetDateTime>)>,
    /// Deliveries this instance refused since it started: (reason, how many, the last one).
    pub refused: Vec<(&'static str, u64, OffsetDateTime)>,
}

/// How long a test event may take before it counts as lost.
pub(super) const TEST_EVENT_WAIT: time::Duration = time::Duration::minutes(1);

/// `webhook-arriving`: Partner Center's deliveries reach this instance, as the last one (or the test
/// event an admin asked for) shows; deliveries refused are counted with the reason.
pub(super) fn webhook_arriving(
    registered: CheckState,
    found: Deliveries,
    now: OffsetDateTime,
) -> Check {
    let looked_at = "The newest delivery cosell verified and stored, the test event last asked of Partner Center (sent through the registration API) and whether it arrived within a minute, and the deliveries this instance refused since it started.";
    let stamp = |f: Finding| f.stamp(CheckId::WebhookArriving, looked_at, now);
    if registered != CheckState::Ok {
        return stamp(Finding::new(
            CheckState::NotApplicable,
            "The registration must be in place first (see “Partner Center webhook registered here”).",
        ));
    }
    let send = Some(Fix::Action(FixAction::SendTestEvent));
    let mut details: Vec<String> = found
        .refused
        .iter()
        .map(|(reason, n, last)| {
            format!(
                "{} refused because {reason} (the last {}).",
                count(*n as usize, "delivery", "deliveries"),
                when(*last)
            )
        })
        .collect();
    let last = found.last.as_ref();
    // The newest evidence decides: the test event (when it is the last delivery, or was asked for
    // after it), or the last delivery.
    let test = found.test.filter(|(t, arrived)| {
        let newest = arrived.unwrap_or(t.sent_at);
        last.is_none_or(|(at, _)| newest >= *at)
    });
    let mut finding = match (test, last) {
        (Some((t, Some(arrived))), _) => Finding::new(
            CheckState::Ok,
            format!(
                "The test event {} asked for {} arrived {}.",
                t.by,
                when(t.sent_at),
                when(arrived)
            ),
        ),
        (Some((t, None)), _) if now - t.sent_at < TEST_EVENT_WAIT => Finding::new(
            CheckState::Attention,
            format!(
                "Waiting for the test event {} asked for {} (Partner Center usually delivers within seconds).",
                t.by,
                when(t.sent_at)
            ),
        ),
        (Some((t, None)), _) => Finding::new(
            CheckState::Failing,
            format!(
                "The test event asked for {} has not arrived within a minute: Partner Center's deliveries do not reach this instance (its public URL, a proxy or a firewall in between).",
                when(t.sent_at)
            ),
        )
        .fix(send.clone()),
        (None, Some((at, event))) => Finding::new(
            CheckState::Ok,
            format!("The last delivery ({event}) arrived {}.", when(*at)),
        ),
        (None, None) => Finding::new(
            CheckState::Attention,
            "No delivery has arrived yet: nothing proves Partner Center reaches this instance. A test event does.",
        )
        .fix(send.clone()),
    };
    if !found.refused.is_empty() && finding.state() == CheckState::Ok {
        finding = Finding::new(
            CheckState::Attention,
            format!(
                "{} Some deliveries were refused, though: see below.",
                finding.why()
            ),
        )
        .fix(send);
    }
    details.truncate(10);
    stamp(finding.details(details))
}

/// What `crm-feed-current` knows of the change feed.
pub(super) struct FeedState {
    /// When any instance last read it (the stored position's time).
    pub polled_at: Option<OffsetDateTime>,
    /// How often it is read.
    pub every: Duration,
    /// This instance's last read, if it failed: when, and why.
    pub failure: Option<(OffsetDateTime, String)>,
}

use crate::domain::alerts::stale_after;

/// `crm-feed-current`: the CRM's changes were read recently.
pub(super) fn crm_feed_current(
    crm_probe: &Probe,
    crm: System,
    feed: FeedState,
    now: OffsetDateTime,
) -> Check {
    let looked_at = format!(
        "When the CRM's change feed (sellers' edits, the sync switch) was last read, by any instance; it is read every {} s. A position the CRM no longer honours is read again from the start, so nothing is missed.",
        feed.every.as_secs_f64()
    );
    if matches!(crm_probe, Probe::NotConnected | Probe::NotConfigured(_)) {
        let (state, why) = not_judged(crm, crm_probe).expect("not connected");
        return Finding::new(state, why).stamp(CheckId::CrmFeedCurrent, looked_at, now);
    }
    let failed = feed
        .failure
        .filter(|(at, _)| feed.polled_at.is_none_or(|p| *at >= p));
    let finding = match feed.polled_at {
        None => Finding::new(
            CheckState::Attention,
            match &failed {
                Some((_, why)) => format!("The change feed has not been read yet: {why}"),
                None => "The change feed has not been read yet.".to_string(),
            },
        ),
        Some(polled) => {
            let age = now - polled;
            let stale = age > time::Duration::try_from(stale_after(feed.every)).unwrap_or(age);
            match (stale, &failed) {
                (true, _) => Finding::new(
                    CheckState::Failing,
                    format!(
                        "Not read since {}: sellers' changes are not reaching Partner Center.{}",
                        when(polled),
                        failed
                            .as_ref()
                            .map(|(_, why)| format!(" The last read failed: {why}"))
                            .unwrap_or_default()
                    ),
                )
                .fix(Some(Fix::link("/connections", "Check the CRM connection"))),
                (false, Some((_, why))) => Finding::new(
                    CheckState::Attention,
                    format!(
                        "Last read {}; the read after it failed: {why}. cosell tries again at the next read.",
                        when(polled)
                    ),
                ),
                (false, None) => {
                    Finding::new(CheckState::Ok, format!("Last read {}.", when(polled)))
                }
            }
        }
    };
    finding.stamp(CheckId::CrmFeedCurrent, looked_at, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SeenOpportunity;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    fn opportunity(id: &str, problems: Vec<Problem>) -> MirroredOpportunity {
        MirroredOpportunity {
            seen: SeenOpportunity {
                crm_id: id.into(),
                name: format!("Deal {id}"),
                referral_id: None,
                referral_link: None,
                customer_id: None,
                sync: true,
                state: OpportunityState::Open,
                version: None,
                solutions: None,
                fingerprint: None,
            },
            problems: Some(problems),
            last_result: None,
            last_run_id: None,
            last_synced_at: None,
            pushed: None,
            written_version: None,
        }
    }

    #[test]
    fn failing_rules_are_grouped_by_what_to_fix() {
        let synced = [
            opportunity("a", vec![Problem::SolutionMissing, Problem::ContactMissing]),
            opportunity("b", vec![Problem::SolutionMissing]),
            opportunity("c", vec![]),
        ];
        let c = opportunities_not_ready(&synced[..2], 3, at());
        assert_eq!(c.state, CheckState::Failing);
        assert!(
            c.why.starts_with("2 synced opportunities fail a rule"),
            "{}",
            c.why
        );
        assert_eq!(
            c.details,
            [
                "Contact: Deal a (a)",
                "Microsoft Partner Center Solutions: Deal a (a) and Deal b (b)"
            ]
        );
        assert_eq!(opportunities_not_ready(&[], 3, at()).state, CheckState::Ok);
    }

    #[test]
    fn an_owner_without_a_phone_and_a_missing_currency_fail_their_checks() {
        let owner = Problem::OwnerIncomplete {
            owner: "Alan Steiner".into(),
            missing: vec!["phone".into()],
        };
        let synced = [
            opportunity("a", vec![owner]),
            opportunity(
                "b",
                vec![Problem::CurrencyUnknown {
                    value: "JPY".into(),
                    configured: vec!["USD".into()],
                }],
            ),
        ];
        let sellers = crm_sellers(&synced, 2, at());
        assert_eq!(sellers.state, CheckState::Failing);
        assert_eq!(sellers.details, ["Alan Steiner: no phone — Deal a (a)"]);
        let usd = CurrencyCode::parse("USD").unwrap();
        let currency = crm_currency(CrmRead::Read(vec![usd]), &synced, at());
        assert_eq!(currency.state, CheckState::Failing);
        assert_eq!(currency.details, ["Deal b (b)"]);
        assert_eq!(
            crm_currency(CrmRead::Read(vec![]), &[], at()).state,
            CheckState::Failing,
            "no currency at all"
        );
        assert_eq!(
            crm_currency(CrmRead::Read(vec![usd]), &synced[..1], at()).state,
            CheckState::Ok
        );
        assert_eq!(
            crm_currency(CrmRead::NotAsked("not connected".into()), &[], at()).state,
            CheckState::NotApplicable
        );
    }

    #[test]
    fn the_feed_is_current_late_or_failing() {
        let every = Duration::from_secs(60);
        let crm = System::DYNAMICS_365;
        let works = Probe::Works("fine".into());
        let feed = |polled: Option<i64>, failure: Option<i64>| FeedState {
            polled_at: polled.map(|s| at() - time::Duration::seconds(s)),
            every,
            failure: failure.map(|s| (at() - time::Duration::seconds(s), "HTTP 503".into())),
        };
        let state = |f| crm_feed_current(&works, crm, f, at()).state;
        assert_eq!(state(feed(Some(30), None)), CheckState::Ok);
        assert_eq!(state(feed(Some(300), None)), CheckState::Failing);
        assert_eq!(state(feed(Some(30), Some(5))), CheckState::Attention);
        assert_eq!(
            state(feed(Some(5), Some(30))),
            CheckState::Ok,
            "a failure before the last read is over"
        );
        assert_eq!(state(feed(None, None)), CheckState::Attention);
        assert_eq!(
            crm_feed_current(&Probe::NotConnected, crm, feed(None, None), at()).state,
            CheckState::NotApplicable
        );
    }

    #[test]
    fn deliveries_arrive_wait_or_are_lost_by_the_newest_evidence() {
        let test = |sent: i64, arrived: Option<i64>| {
            Some((
                TestEvent {
                    correlation_id: "c".into(),
                    sent_at: at() - time::Duration::seconds(sent),
                    by: "Adele".into(),
                },
                arrived.map(|s| at() - time::Duration::seconds(s)),
            ))
        };
        let state = |last: Option<i64>, t, refused: bool| {
            webhook_arriving(
                CheckState::Ok,
                Deliveries {
                    last: last
                        .map(|s| (at() - time::Duration::seconds(s), "referral-created".into())),
                    test: t,
                    refused: if refused {
                        vec![("its signature did not verify", 2, at())]
                    } else {
                        vec![]
                    },
                },
                at(),
            )
            .state
        };
        assert_eq!(
            state(None, None, false),
            CheckState::Attention,
            "nothing proves it"
        );
        assert_eq!(state(Some(3600), None, false), CheckState::Ok);
        assert_eq!(state(Some(3600), None, true), CheckState::Attention);
        assert_eq!(
            state(None, test(10, None), false),
            CheckState::Attention,
            "waiting"
        );
        assert_eq!(
            state(None, test(90, None), false),
            CheckState::Failing,
            "lost"
        );
        assert_eq!(state(None, test(90, Some(85)), false), CheckState::Ok);
        assert_eq!(
            state(Some(30), test(90, None), false),
            CheckState::Ok,
            "a delivery after the test proves more"
        );
        assert_eq!(
            webhook_arriving(
                CheckState::Failing,
                Deliveries {
                    last: None,
                    test: None,
                    refused: vec![]
                },
                at()
            )
            .state,
            CheckState::NotApplicable
        );
    }

    #[test]
    fn a_role_is_failing_only_when_the_account_lacks_it() {
        let pc = System::PartnerCenter;
        assert_eq!(
            role(pc, &Probe::Works("ok".into()), at()).state,
            CheckState::Ok
        );
        let c = role(pc, &Probe::Diagnosed(Diagnosis::MissingRole), at());
        assert_eq!(c.state, CheckState::Failing);
        assert!(c.why.contains("Referrals admin"), "{}", c.why);
        assert_eq!(
            role(pc, &Probe::Diagnosed(Diagnosis::PasswordExpired), at()).state,
            CheckState::NotApplicable,
            "the credential check says it"
        );
        assert_eq!(
            role(pc, &Probe::NotConnected, at()).state,
            CheckState::NotApplicable
        );
    }
}
