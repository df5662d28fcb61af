//! The org's daily API allocation (crm-apis.md §3.8): every REST call of any user counts against one
//! org-wide number, reset each sandbox-clock day (the real window is a rolling 24 hours; a calendar day
//! is what the sync engine's own quota uses and is easier to reason about in tests). Once used, calls
//! are refused with 403 `REQUEST_LIMIT_EXCEEDED` and no `Retry-After`.

use super::Org;
use super::errors::SfError;
use axum::http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

pub(crate) struct Usage {
    day: time::Date,
    pub used: u64,
}

impl Usage {
    pub(crate) fn new(now: OffsetDateTime) -> Usage {
        Usage {
            day: now.date(),
            used: 0,
        }
    }

    /// A new day starts from zero.
    pub(crate) fn roll(&mut self, now: OffsetDateTime) {
        if now.date() != self.day {
            self.day = now.date();
            self.used = 0;
        }
    }
}

impl Org {
    /// Counts one call, or refuses it when the allocation is spent.
    pub(crate) fn count_call(&mut self, now: OffsetDateTime) -> Result<(), SfError> {
        self.usage.roll(now);
        if self.usage.used >= self.settings.daily_api_max {
            return Err(SfError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ));
        }
        self.usage.used += 1;
        Ok(())
    }

    /// `Sforce-Limit-Info`.
    pub(crate) fn limit_info(&self) -> String {
        format!(
            "api-usage={}/{}",
            self.usage.used, self.settings.daily_api_max
        )
    }

    /// `GET /limits/`: integers, the daily API requests first (the rest are static).
    pub(crate) fn limits(&self) -> Value {
        let max = self.settings.daily_api_max;
        let static_limit = |n: u64| json!({ "Max": n, "Remaining": n });
        json!({
            "DailyApiRequests": { "Max": max, "Remaining": max.saturating_sub(self.usage.used) },
            "DailyAsyncApexExecutions": static_limit(250_000),
            "DailyBulkApiBatches": static_limit(15_000),
            "DailyBulkV2QueryJobs": static_limit(10_000),
            "DataStorageMB": static_limit(5),
            "FileStorageMB": static_limit(20),
            "SingleEmail": static_limit(15),
        })
    }
}
