//! The org's daily API allocation as Salesforce reports it on every REST answer (`Sforce-Limit-Info`,
//! crm-apis.md §3.8), kept where every clone of the client can read it.

use reqwest::header::HeaderMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Calls used in the last 24 hours, and the org's allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: i64,
    pub max: i64,
}

/// `api-usage=10018/100000`; older orgs add `; per-app-api-usage=17/250(appName=x)` or `api-bursts=…`,
/// which say nothing about the org's allocation and are ignored.
pub fn parse_limit_info(header: &str) -> Option<ApiUsage> {
    header
        .split([';', ','])
        .find_map(|part| part.trim().strip_prefix("api-usage="))
        .and_then(|value| {
            let (used, max) = value.trim().split_once('/')?;
            Some(ApiUsage {
                used: used.trim().parse().ok()?,
                max: max.trim().parse().ok()?,
            })
        })
}

/// The last reading, shared by the clones of one client.
#[derive(Clone, Default)]
pub(super) struct UsageCell(Arc<Mutex<Option<ApiUsage>>>);

impl UsageCell {
    pub(super) fn record(&self, headers: &HeaderMap) {
        let Some(usage) = headers
            .get("Sforce-Limit-Info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_limit_info)
        else {
            return;
        };
        // A poisoned lock only means another thread panicked mid-write of a Copy value: still usable.
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(usage);
    }

    pub(super) fn get(&self) -> Option<ApiUsage> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_reads_the_org_usage_and_ignores_the_rest() {
        assert_eq!(
            parse_limit_info("api-usage=10018/100000"),
            Some(ApiUsage {
                used: 10018,
                max: 100000
            })
        );
        assert_eq!(
            parse_limit_info("api-usage=25/5000; per-app-api-usage=17/250(appName=x)"),
            Some(ApiUsage {
                used: 25,
                max: 5000
            })
        );
        // The per-app figure alone is not the org's usage.
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x)"),
            None
        );
        assert_eq!(
            parse_limit_info("api-bursts=1/750, api-usage=3/15000"),
            Some(ApiUsage {
                used: 3,
                max: 15000
            })
        );
        assert_eq!(parse_limit_info("api-usage=lots"), None);
        assert_eq!(parse_limit_info(""), None);
    }

    #[test]
    fn the_cell_keeps_the_last_reading_across_clones() {
        let cell = UsageCell::default();
        let clone = cell.clone();
        assert_eq!(clone.get(), None);
        let mut headers = HeaderMap::new();
        headers.insert("Sforce-Limit-Info", "api-usage=7/15000".parse().unwrap());
        cell.record(&headers);
        // An answer without the header (e.g. `/services/data/`) leaves the last reading alone.
        cell.record(&HeaderMap::new());
        assert_eq!(
            clone.get(),
            Some(ApiUsage {
                used: 7,
                max: 15000
            })
        );
    }
}
