//! Daily API budgets: how many calls each connection may spend per UTC day, and which work goes ahead
//! when the day's calls run short. Urgent work (a seller's change, a new referral, what an admin waits
//! for) goes first; routine work (reconciliation sweeps and the re-reads they queue, "Check") waits for
//! the next day as soon as the day's projection would pass the budget. Nothing is failed for want of
//! calls: it is deferred, with the reason on the run.

use super::connection::System;
use super::numbers::thousands;
use super::runs::{RunInput, RunTrigger};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// Partner Center's documented daily allocation (partner-center.md), the default budget of its
/// connection, and of a CRM that reports no figure of its own.
pub const DEFAULT_DAILY_BUDGET: i64 = super::connection::DAILY_CALL_QUOTA;

/// How long into the UTC day calls are counted before the day's total is projected from them: the
/// first hour says little about the rest of the day.
pub const PROJECT_AFTER_SECONDS: i64 = 3600;

/// The day's calls at this pace by midnight UTC, once the day is old enough to say.
pub fn projection(used: i64, seconds_into_day: i64) -> Option<i64> {
    (seconds_into_day >= PROJECT_AFTER_SECONDS)
        .then(|| (used * 86_400 + seconds_into_day - 1) / seconds_into_day)
}

/// Whether a run may wait for tomorrow's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    /// Someone's change, or someone waiting: goes first, and as long as there are calls left.
    Urgent,
    /// cosell's own sweeps and checks: only while the day's projection stays within the budget.
    Routine,
}

impl Urgency {
    pub fn of(trigger: RunTrigger, input: &RunInput) -> Urgency {
        match (trigger, input) {
            (RunTrigger::Schedule | RunTrigger::Reconciliation, _) => Urgency::Routine,
            (
                _,
                RunInput::Opportunity {
                    check_only: true, ..
                },
            ) => Urgency::Routine,
            _ => Urgency::Urgent,
        }
    }

    /// As the queue orders it: urgent (0) before routine (1).
    pub fn rank(self) -> i16 {
        match self {
            Urgency::Urgent => 0,
            Urgency::Routine => 1,
        }
    }
}

/// A daily budget of calls: at least 1, at most a million.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct DailyBudget(i64);

impl DailyBudget {
    pub const MAX: i64 = 1_000_000;

    pub fn new(calls: i64) -> Result<DailyBudget, BudgetError> {
        if (1..=Self::MAX).contains(&calls) {
            Ok(DailyBudget(calls))
        } else {
            Err(BudgetError::OutOfRange(calls.to_string()))
        }
    }

    /// From what an admin typed; thousands separators allowed ("10,000").
    pub fn parse(text: &str) -> Result<DailyBudget, BudgetError> {
        let text = text.trim();
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ',' | '_' | ' '))
            .collect();
        match digits.parse::<i64>() {
            Ok(calls) => DailyBudget::new(calls),
            Err(_) => Err(BudgetError::NotANumber(text.to_string())),
        }
    }

    pub fn calls(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for DailyBudget {
    type Error = BudgetError;
    fn try_from(calls: i64) -> Result<DailyBudget, BudgetError> {
        DailyBudget::new(calls)
    }
}

impl From<DailyBudget> for i64 {
    fn from(b: DailyBudget) -> i64 {
        b.0
    }
}

impl fmt::Display for DailyBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} calls a day", thousands(self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("“{0}” is not a number of calls: type a whole number, such as 10000.")]
    NotANumber(String),
    #[error("{0} calls a day is out of range: choose from 1 to 1,000,000.")]
    OutOfRange(String),
}

/// The budgets an admin set; a connection left out has its default (see [`Budgets::of`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budgets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_center: Option<DailyBudget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm: Option<DailyBudget>,
}

impl Budgets {
    /// Where they are kept (the settings table).
    pub const SETTING: &'static str = "budgets";

    /// The day's budget of `system`'s connection: the admin's, else the CRM's own reported daily
    /// allocation (Salesforce's), else [`DEFAULT_DAILY_BUDGET`].
    pub fn of(&self, system: System, reported: Option<i64>) -> i64 {
        let set = match system {
            System::PartnerCenter => self.partner_center,
            System::Crm(_) => self.crm,
        };
        match (set, system) {
            (Some(b), _) => b.calls(),
            (None, System::Crm(_)) => reported.unwrap_or(DEFAULT_DAILY_BUDGET),
            (None, System::PartnerCenter) => DEFAULT_DAILY_BUDGET,
        }
    }
}

/// One connection's day so far against its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayStanding {
    pub system: System,
    pub used: i64,
    pub budget: i64,
    /// At this pace by midnight UTC (none early in the day).
    pub projected: Option<i64>,
    /// Until when the system asked cosell to hold its calls (a 429's Retry-After, a spent
    /// allocation), and what it said.
    pub held: Option<(OffsetDateTime, String)>,
}

impl DayStanding {
    pub fn left(&self) -> i64 {
        (self.budget - self.used).max(0)
    }

    /// "1,234 of 10,000 calls used today (UTC), about 3,000 by midnight at this pace, 8,766 left."
    pub fn describe(&self) -> String {
        let pace = match self.projected {
            Some(p) => format!(", about {} by midnight at this pace", thousands(p)),
            None => String::new(),
        };
        format!(
            "{} of a {} budget used today (UTC){pace}; {} left",
            thousands(self.used),
            thousands(self.budget),
            thousands(self.left())
        )
    }
}

/// Whether a run goes ahead now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// Waits for the next UTC day's calls; the reason names the connection and its numbers.
    Tomorrow(String),
    /// Waits until the system's hold ends.
    Until(OffsetDateTime, String),
}

/// Admits a run of `urgency` needing the connections `standings` describe at `now`: none while a
/// system holds its calls; urgent work while calls are left, routine work while the day's projection
/// stays within the budget too.
pub fn admit(urgency: Urgency, standings: &[DayStanding], now: OffsetDateTime) -> Admission {
    if let Some((until, label, why)) = standings
        .iter()
        .filter_map(|s| {
            s.held
                .as_ref()
                .map(|(until, why)| (*until, s.system.label(), why))
        })
        .filter(|(until, ..)| *until > now)
        .max_by_key(|(until, ..)| *until)
    {
        return Admission::Until(
            until,
            format!(
                "{label} asked cosell to hold its calls ({why}); the run waits until then, with no attempt spent."
            ),
        );
    }
    for s in standings {
        let label = s.system.label();
        if s.used >= s.budget {
            return Admission::Tomorrow(format!(
                "{label}'s daily budget is spent ({}). The run waits for tomorrow's calls (midnight UTC), or for a larger budget on the Settings page; no attempt is spent meanwhile.",
                s.describe()
            ));
        }
        let over = s.projected.is_some_and(|p| p > s.budget);
        if urgency == Urgency::Routine && over {
            return Admission::Tomorrow(format!(
                "{label} is on course to pass its daily budget ({}), so routine work waits for tomorrow's calls (midnight UTC) and sellers' changes go first.",
                s.describe()
            ));
        }
    }
    Admission::Go
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::system::Crm;

    fn standing(used: i64, budget: i64, projected: Option<i64>) -> DayStanding {
        DayStanding {
            system: System::PartnerCenter,
            used,
            budget,
            projected,
            held: None,
        }
    }

    const NOW: OffsetDateTime = time::macros::datetime!(2026-12-05 12:00 UTC);

    #[test]
    fn a_held_system_holds_all_work_until_its_hold_ends() {
        let until = NOW + time::Duration::seconds(30);
        let held = DayStanding {
            held: Some((until, "HTTP 429, retry after 30 s".into())),
            ..standing(1, 10_000, None)
        };
        let Admission::Until(when, why) = admit(Urgency::Urgent, std::slice::from_ref(&held), NOW)
        else {
            panic!("held");
        };
        assert_eq!(when, until);
        assert!(
            why.starts_with("Partner Center asked cosell to hold its calls (HTTP 429"),
            "{why}"
        );
        // Once it has ended, nothing holds.
        assert_eq!(admit(Urgency::Urgent, &[held], until), Admission::Go);
    }

    #[test]
    fn urgent_work_goes_while_calls_are_left_routine_only_within_the_projection() {
        let fine = standing(100, 10_000, Some(2_400));
        let on_course_over = standing(6_000, 10_000, Some(12_000));
        let spent = standing(10_000, 10_000, Some(12_000));
        assert_eq!(
            admit(Urgency::Routine, std::slice::from_ref(&fine), NOW),
            Admission::Go
        );
        assert_eq!(
            admit(Urgency::Urgent, std::slice::from_ref(&on_course_over), NOW),
            Admission::Go
        );
        let Admission::Tomorrow(why) = admit(Urgency::Routine, &[fine, on_course_over], NOW) else {
            panic!("routine work waits");
        };
        assert!(
            why.contains("6,000 of a 10,000 budget used today (UTC), about 12,000 by midnight"),
            "{why}"
        );
        assert!(
            matches!(admit(Urgency::Urgent, &[spent], NOW), Admission::Tomorrow(w) if w.contains("budget is spent"))
        );
        // Early in the day nothing is projected: only what is spent counts.
        assert_eq!(
            admit(Urgency::Routine, &[standing(10, 20, None)], NOW),
            Admission::Go
        );
    }

    #[test]
    fn sweeps_and_checks_are_routine_changes_are_urgent() {
        let opportunity = |check_only| RunInput::Opportunity {
            opportunity_id: "o".into(),
            referral_id: None,
            check_only,
            fed_version: None,
        };
        assert_eq!(
            Urgency::of(RunTrigger::Schedule, &opportunity(false)),
            Urgency::Routine
        );
        assert_eq!(
            Urgency::of(RunTrigger::Reconciliation, &opportunity(false)),
            Urgency::Routine
        );
        assert_eq!(
            Urgency::of(RunTrigger::Manual, &opportunity(true)),
            Urgency::Routine
        );
        assert_eq!(
            Urgency::of(RunTrigger::CrmChange, &opportunity(false)),
            Urgency::Urgent
        );
        assert_eq!(
            Urgency::of(RunTrigger::Webhook, &opportunity(false)),
            Urgency::Urgent
        );
        assert_eq!(
            Urgency::of(RunTrigger::Resubmit, &opportunity(false)),
            Urgency::Urgent
        );
    }

    #[test]
    fn budgets_default_to_the_documented_allocation_or_the_crms_own() {
        let none = Budgets::default();
        assert_eq!(none.of(System::PartnerCenter, None), 10_000);
        assert_eq!(none.of(System::Crm(Crm::Salesforce), Some(15_000)), 15_000);
        assert_eq!(none.of(System::Crm(Crm::Dynamics365), None), 10_000);
        let set = Budgets {
            partner_center: Some(DailyBudget::new(2_000).unwrap()),
            crm: Some(DailyBudget::new(500).unwrap()),
        };
        assert_eq!(set.of(System::PartnerCenter, None), 2_000);
        assert_eq!(set.of(System::Crm(Crm::Salesforce), Some(15_000)), 500);
        assert_eq!(DailyBudget::parse(" 10,000 ").unwrap().calls(), 10_000);
        assert!(matches!(
            DailyBudget::parse("lots"),
            Err(BudgetError::NotANumber(_))
        ));
        assert!(matches!(
            DailyBudget::parse("0"),
            Err(BudgetError::OutOfRange(_))
        ));
        assert!(serde_json::from_value::<Budgets>(serde_json::json!({ "crm": 0 })).is_err());
    }

    #[test]
    fn the_day_is_projected_once_an_hour_has_passed() {
        assert_eq!(projection(100, 600), None);
        assert_eq!(projection(100, 3600), Some(2400));
        assert_eq!(projection(1, 86_399), Some(2));
        assert_eq!(projection(0, 7200), Some(0));
    }
}
