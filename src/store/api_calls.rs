//! API calls counted per connected system and UTC day, for the quotas Partner Center and the CRMs set.
//!
//! Kept apart from runs because calls are made outside runs too (connection checks, the change feed).

use super::{Store, StoreError, on_pool};
use time::OffsetDateTime;

impl Store {
    /// Counts API calls made with a connection, by UTC day.
    pub async fn count_api_calls(
        &self,
        system: &str,
        calls: i64,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let day = at.to_offset(time::UtcOffset::UTC).date().to_string();
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO api_calls (system, day, calls) VALUES ($1, $2, $3)
             ON CONFLICT (system, day) DO UPDATE SET calls = api_calls.calls + excluded.calls"
        )
        .bind(system)
        .bind(&day)
        .bind(calls)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// API calls made with a connection on the UTC day of `at`.
    pub async fn api_calls_on(&self, system: &str, at: OffsetDateTime) -> Result<i64, StoreError> {
        let day = at.to_offset(time::UtcOffset::UTC).date().to_string();
        let n: Option<i64> = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT calls FROM api_calls WHERE system = $1 AND day = $2"
        )
        .bind(system)
        .bind(&day)
        .fetch_optional(p)
        .await)?;
        Ok(n.unwrap_or(0))
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
        store
            .count_api_calls("partner_center", 2, day)
            .await
            .unwrap();
        store
            .count_api_calls("partner_center", 1, day)
            .await
            .unwrap();
        store.count_api_calls("dynamics365", 5, day).await.unwrap();
        let next = day + Duration::minutes(2);
        store
            .count_api_calls("partner_center", 1, next)
            .await
            .unwrap();
        assert_eq!(store.api_calls_on("partner_center", day).await.unwrap(), 3);
        assert_eq!(store.api_calls_on("dynamics365", day).await.unwrap(), 5);
        assert_eq!(store.api_calls_on("partner_center", next).await.unwrap(), 1);
    }
}
