//! The Overview's charts, from the counts the store keeps (never from the runs themselves), kept a few
//! seconds so that a busy Overview draws them once for everyone rather than once a view.

use super::Engine;
use crate::domain::charts::{self, CHART_DAYS, Chart};
use crate::domain::connection::System;
use crate::store::StoreError;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration as StdDuration, Instant};
use time::{Duration, OffsetDateTime};

/// How long drawn charts are kept when nothing here changed (another instance's runs show after it).
const KEEP: StdDuration = StdDuration::from_secs(5);

/// The charts this instance drew last, and whether they still hold.
#[derive(Default)]
pub(crate) struct ChartsCache {
    last: Mutex<Option<(Instant, u64, Vec<Chart>)>>,
    /// Bumped by every run that ends here and every budget saved: charts drawn before are stale.
    generation: AtomicU64,
    /// One drawing at a time: the views waiting meanwhile get its charts.
    drawing: tokio::sync::Mutex<()>,
}

impl ChartsCache {
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn fresh(&self) -> Option<Vec<Chart>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match &*last {
            Some((made, g, charts)) if *g == generation && made.elapsed() < KEEP => {
                Some(charts.clone())
            }
            _ => None,
        }
    }
}

impl Engine {
    /// Syncs per hour (7 days), API calls per day with each connection against its budget (30 days),
    /// failed runs per day by cause (30 days), as of now.
    pub async fn charts(&self) -> Result<Vec<Chart>, StoreError> {
        if let Some(charts) = self.charts.fresh() {
            return Ok(charts);
        }
        let _drawing = self.charts.drawing.lock().await;
        if let Some(charts) = self.charts.fresh() {
            return Ok(charts);
        }
        let generation = self.charts.generation.load(Ordering::SeqCst);
        let charts = self.draw_charts(OffsetDateTime::now_utc()).await?;
        *self.charts.last.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), generation, charts.clone()));
        Ok(charts)
    }

    async fn draw_charts(&self, now: OffsetDateTime) -> Result<Vec<Chart>, StoreError> {
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
