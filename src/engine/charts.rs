//! The Overview's charts, from the counts the store keeps (never from the runs themselves).

use super::Engine;
use crate::domain::charts::{self, CHART_DAYS, Chart};
use crate::domain::connection::System;
use crate::store::StoreError;
use time::{Duration, OffsetDateTime};

impl Engine {
    /// Syncs per hour (7 days), API calls per day with each connection against its quota (30 days),
    /// failed runs per day by cause (30 days), as of `now`.
    pub async fn charts(&self, now: OffsetDateTime) -> Result<Vec<Chart>, StoreError> {
        // From midnight (UTC) of the first day charted, so that day is whole.
        let since = (now - Duration::days(CHART_DAYS as i64 - 1))
            .to_offset(time::UtcOffset::UTC)
            .replace_time(time::Time::MIDNIGHT);
        let counts = self.store.run_counts_since(since).await?;
        let calls = self.store.api_calls_per_day(since).await?;
        let budgets = self.budgets().await?;
        let mut out = vec![charts::syncs_per_hour(&counts, self.crm, now)];
        for system in [System::PartnerCenter, System::Crm(self.crm)] {
            // Against the connection's daily budget (by default the documented 10,000, or the
            // allocation a CRM reports), as the work is scheduled.
            let budget = self.day_standing(system, 0, &budgets, now).budget;
            let days: Vec<_> = calls
                .iter()
                .filter(|(s, ..)| *s == system)
                .map(|(_, day, n)| (*day, *n))
                .collect();
            out.push(charts::calls_per_day(system, &days, Some(budget), now));
        }
        out.push(charts::failures_per_day(&counts, now));
        Ok(out)
    }
}
