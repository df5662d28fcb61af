//! Daily API budgets at work: before a run starts, its connections' day so far is weighed against
//! their budgets (src/domain/budget.rs); a run that must wait goes back to the queue until the next
//! UTC day, its attempt given back and the reason on it. Admins set the budgets on the Settings page.

use super::Engine;
use crate::domain::budget::{Admission, Budgets, DayStanding, Urgency, admit, projection};
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::runs::AuditAction;
use crate::store::{NewAuditEvent, Run, StoreError};
use time::{Duration, OffsetDateTime, Time, UtcOffset};

/// Midnight UTC at the start of `now`'s day.
fn midnight(now: OffsetDateTime) -> OffsetDateTime {
    now.to_offset(UtcOffset::UTC).replace_time(Time::MIDNIGHT)
}

impl Engine {
    /// The budgets an admin set (none until they save some: every connection has its default).
    pub async fn budgets(&self) -> Result<Budgets, StoreError> {
        Ok(match self.store.setting(Budgets::SETTING).await? {
            None => Budgets::default(),
            Some(value) => serde_json::from_value(value).map_err(|e| {
                StoreError::Corrupt(format!("the stored API budgets do not read: {e}"))
            })?,
        })
    }

    /// Saves the budgets (audited) and lets the runs deferred for want of calls go at once: the new
    /// budget judges them again. Returns how many were released.
    pub async fn set_budgets(&self, budgets: Budgets, by: &str) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc();
        let value = serde_json::to_value(budgets)
            .map_err(|e| StoreError::Corrupt(format!("the budgets do not serialize: {e}")))?;
        self.store
            .set_setting(Budgets::SETTING, &value, by, now)
            .await?;
        let standings = self.day_standings(now).await?;
        let said = standings
            .iter()
            .map(|s| format!("{}: {} calls a day", s.system.label(), s.budget))
            .collect::<Vec<_>>()
            .join("; ");
        let event = NewAuditEvent::new(
            AuditAction::BudgetsChanged,
            "settings",
            Budgets::SETTING,
            format!("Daily API budgets: {said}."),
        );
        self.audit_by(by, event, now).await?;
        self.charts.invalidate();
        // A day's calls against a new budget: its alert opens or resolves now.
        self.alerts_due();
        let released = self.store.release_deferred(now).await?;
        if released > 0 {
            self.nudge();
        }
        Ok(released)
    }

    /// Each connection's day so far (UTC) against its budget: the calls cosell counted. A CRM that
    /// reports its own allocation (Salesforce) lends it as the default budget, but its own count (the
    /// whole org's, and only as fresh as cosell's last call) is not weighed here: when the org's
    /// allocation runs out, the CRM's refusal pauses the work and asks again hourly (context.rs).
    pub async fn day_standings(&self, now: OffsetDateTime) -> Result<Vec<DayStanding>, StoreError> {
        let start = midnight(now);
        let budgets = self.budgets().await?;
        let calls = self.store.api_calls_per_day(start).await?;
        let holds = self.store.holds(now).await?;
        Ok([System::PartnerCenter, System::Crm(self.crm)]
            .into_iter()
            .map(|system| {
                let counted = calls
                    .iter()
                    .filter(|(s, day, _)| *s == system && *day == start.date())
                    .map(|(.., n)| n)
                    .sum();
                DayStanding {
                    held: holds
                        .iter()
                        .find(|(s, ..)| *s == system)
                        .map(|(_, until, why)| (*until, why.clone())),
                    ..self.day_standing(system, counted, &budgets, now)
                }
            })
            .collect())
    }

    /// `system`'s day so far, from the calls cosell counted today (UTC), as of `now`.
    pub fn day_standing(
        &self,
        system: System,
        counted: i64,
        budgets: &Budgets,
        now: OffsetDateTime,
    ) -> DayStanding {
        let reported = match system {
            System::Crm(_) => self.crm_port().ok().and_then(|p| p.api_usage()),
            System::PartnerCenter => None,
        };
        DayStanding {
            system,
            used: counted,
            budget: budgets.of(system, reported.map(|(_, max)| max)),
            projected: projection(counted, (now - midnight(now)).whole_seconds()),
            held: None,
        }
    }

    /// Whether `run` may start now, by its urgency, its connections' budgets and holds; when it may
    /// not, when it is due again (the hold's end, or the next UTC midnight) and why.
    pub(super) async fn admission(
        &self,
        run: &Run,
        now: OffsetDateTime,
    ) -> Result<Option<(OffsetDateTime, String)>, StoreError> {
        let urgency = Urgency::of(run.trigger, &run.input);
        // Registration touches Partner Center only; every other flow reads or writes both sides.
        let needs = |s: &DayStanding| {
            run.flow != Flow::WebhookRegistration || s.system == System::PartnerCenter
        };
        let standings: Vec<DayStanding> = self
            .day_standings(now)
            .await?
            .into_iter()
            .filter(needs)
            .collect();
        Ok(match admit(urgency, &standings, now) {
            Admission::Go => None,
            Admission::Tomorrow(why) => Some((midnight(now) + Duration::days(1), why)),
            Admission::Until(until, why) => Some((until, why)),
        })
    }

    /// `system` said to slow down (429) or that its allocation is spent: every run that needs it, here
    /// and in other instances, waits until `until` instead of calling to find out. Best effort: the
    /// run that was told retries on its own schedule anyway.
    pub(crate) async fn hold(&self, system: System, until: OffsetDateTime, reason: &str) {
        match self.store.hold_system(system, until, reason).await {
            Ok(()) => tracing::info!(system = system.as_code(), %until, reason, "calls held"),
            Err(e) => tracing::warn!(error = %e, "could not record a hold on a system's calls"),
        }
    }
}
