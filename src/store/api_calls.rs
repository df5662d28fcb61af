//! API calls counted per connected system and UTC day, for the quotas Partner Center and the CRMs set,
//! and per flow within the day, for the Runs page.
//!
//! Kept apart from runs because calls are made outside runs too (connection checks, the change feed):
//! those are counted under no flow.

use super::{Store, StoreError, on_pool};
use crate::domain::flows::Flow;
use time::OffsetDateTime;

/// A day's calls of one flow (or of none: calls made outside runs) to one system.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowCalls {
    pub flow: Option<Flow>,
    pub system: String,
    pub calls: i64,
}

pub(super) fn day_of(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC).date().to_string()
}

/// Adds `$4` calls to `$1` (system) on `$2` (day) by `$3` (flow code, '' for none).
pub(super) const COUNT_CALLS: &str =
    "INSERT INTO api_calls (system, day, flow, calls) VALUES ($1, $2, $3, $4)
     ON CONFLICT (system, day, flow) DO UPDATE SET calls = api_calls.calls + excluded.calls";

impl Store {
    /// Counts API calls made with a connection, by UTC day and by the flow that made them.
    pub async fn count_api_calls(
        &self,
        system: &str,
        flow: Option<Flow>,
        calls: i64,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let day = day_of(at);
        let flow = flow.map(Flow::as_code).unwrap_or("");
        on_pool!(self, |p| {
            sqlx::query(COUNT_CALLS)
                .bind(system)
                .bind(&day)
                .bind(flow)
                .bind(calls)
                .execute(p)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// API calls made with a connection on the UTC day of `at`, by every flow and outside them.
    pub async fn api_calls_on(&self, system: &str, at: OffsetDateTime) -> Result<i64, StoreError> {
        let day = day_of(at);
        let n: Option<i64> = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT CAST(SUM(calls) AS BIGINT) FROM api_calls WHERE system = $1 AND day = $2"
        )
        .bind(system)
        .bind(&day)
        .fetch_one(p)
        .await)?;
        Ok(n.unwrap_or(0))
    }

    /// The UTC day of `at`, call counts by flow and system, most calls first.
    pub async fn api_calls_by_flow(
        &self,
        at: OffsetDateTime,
    ) -> Result<Vec<FlowCalls>, StoreError> {
        let day = day_of(at);
        let rows: Vec<(String, String, i64)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT flow, system, calls FROM api_calls WHERE day = $1
             ORDER BY calls DESC, flow, system"
        )
        .bind(&day)
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(flow, system, calls)| {
                let flow =
                    match flow.as_str() {
                        "" => None,
                        code => Some(Flow::from_code(code).ok_or_else(|| {
                            StoreError::Corrupt(format!("api_calls: flow {code:?}"))
                        })?),
                    };
                Ok(FlowCalls {
                    flow,
                    system,
                    calls,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;
    use time::Duration;

    #[tokio::test]
    async fn api_calls_are_counted_per_system_per_utc_day() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let day = time::macros::datetime!(2026-11-22 23:59:00 UTC);
        let pc = "partner_center";
        let flow = Some(Flow::PartnerCenterToCrm);
        store.count_api_calls(pc, flow, 2, day).await.unwrap();
        store.count_api_calls(pc, None, 1, day).await.unwrap();
        store
            .count_api_calls("dynamics365", flow, 5, day)
            .await
            .unwrap();
        let next = day + Duration::minutes(2);
        store.count_api_calls(pc, flow, 1, next).await.unwrap();
        assert_eq!(store.api_calls_on(pc, day).await.unwrap(), 3);
        assert_eq!(store.api_calls_on("dynamics365", day).await.unwrap(), 5);
        assert_eq!(store.api_calls_on(pc, next).await.unwrap(), 1);
        assert_eq!(
            store
                .api_calls_on("dynamics365", next + Duration::days(1))
                .await
                .unwrap(),
            0
        );
    }

    #[tokio::test]
    async fn a_days_calls_are_listed_by_flow_and_system_most_first() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let day = time::macros::datetime!(2026-11-22 12:00:00 UTC);
        let pc = "partner_center";
        let to_crm = Some(Flow::PartnerCenterToCrm);
        store.count_api_calls(pc, to_crm, 2, day).await.unwrap();
        store.count_api_calls(pc, to_crm, 2, day).await.unwrap();
        store
            .count_api_calls("dynamics365", to_crm, 3, day)
            .await
            .unwrap();
        store.count_api_calls(pc, None, 1, day).await.unwrap();
        store
            .count_api_calls(pc, to_crm, 9, day + Duration::days(1))
            .await
            .unwrap();
        let calls = store.api_calls_by_flow(day).await.unwrap();
        let seen: Vec<(Option<Flow>, &str, i64)> = calls
            .iter()
            .map(|c| (c.flow, c.system.as_str(), c.calls))
            .collect();
        assert_eq!(
            seen,
            vec![(to_crm, pc, 4), (to_crm, "dynamics365", 3), (None, pc, 1)]
        );
    }
}
