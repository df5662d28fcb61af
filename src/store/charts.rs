//! What the Overview's charts read: runs counted per hour as they end (kept by the `run_counts`
//! triggers, see the migration), and API calls per day (kept as calls are made). Neither read touches
//! the runs table, so a chart costs the same at a thousand runs as at a million.

use super::{Store, StoreError, on_pool};
use crate::domain::charts::{RunCount, hour_key, parse_hour_key};
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::runs::{FailureCause, RunStatus};
use time::{Date, OffsetDateTime};

impl Store {
    /// Top-level runs that ended from the hour of `since` on, counted by hour, flow, status and cause.
    pub async fn run_counts_since(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<RunCount>, StoreError> {
        let rows: Vec<(String, String, String, String, i64)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT hour, flow, status, cause, runs FROM run_counts WHERE hour >= $1"
        )
        .bind(hour_key(since))
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(hour, flow, status, cause, runs)| {
                let bad = |what: &str, value: &str| {
                    StoreError::Corrupt(format!("run_counts holds an unknown {what} “{value}”"))
                };
                Ok(RunCount {
                    hour: parse_hour_key(&hour).ok_or_else(|| bad("hour", &hour))?,
                    flow: Flow::from_code(&flow).ok_or_else(|| bad("flow", &flow))?,
                    status: RunStatus::from_code(&status).ok_or_else(|| bad("status", &status))?,
                    // '' is a run failed before causes were kept.
                    cause: FailureCause::from_code(&cause),
                    runs,
                })
            })
            .collect()
    }

    /// API calls per connected system and UTC day, from the day of `since` on.
    pub async fn api_calls_per_day(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<(System, Date, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT system, day, CAST(SUM(calls) AS BIGINT) FROM api_calls
              WHERE day >= $1 GROUP BY system, day"
        )
        .bind(super::api_calls::day_of(since))
        .fetch_all(p)
        .await)?;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        rows.into_iter()
            .map(|(system, day, calls)| {
                let bad = |what: &str, value: &str| {
                    StoreError::Corrupt(format!("api_calls holds an unknown {what} “{value}”"))
                };
                let system = System::from_code(&system).ok_or_else(|| bad("system", &system))?;
                let day = Date::parse(&day, format).map_err(|_| bad("day", &day))?;
                Ok((system, day, calls))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::charts::hour_of;
    use crate::store::NewRun;
    use crate::store::test_support::{TestDatabase, claim_and_end, new_run, now};
    use time::Duration;

    fn total(counts: &[RunCount], status: RunStatus, cause: Option<FailureCause>) -> i64 {
        counts
            .iter()
            .filter(|c| c.status == status && c.cause == cause)
            .map(|c| c.runs)
            .sum()
    }

    #[tokio::test]
    async fn runs_are_counted_once_in_the_hour_they_end_and_children_are_not() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let earlier = now - Duration::hours(3);
        assert!(store.run_counts_since(earlier).await.unwrap().is_empty());

        let first = store.enqueue_run(&new_run("r1"), earlier).await.unwrap();
        // Tried again later: back to the queue, not counted.
        let claimed = store
            .claim_run("w", earlier, earlier + Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, first);
        store
            .retry_run_later(first, "w", earlier, "try again")
            .await
            .unwrap();
        assert!(store.run_counts_since(earlier).await.unwrap().is_empty());
        claim_and_end(
            &store,
            first,
            RunStatus::Failed,
            Some(FailureCause::Unavailable),
            earlier,
        )
        .await;

        let second = store.enqueue_run(&new_run("r2"), now).await.unwrap();
        claim_and_end(&store, second, RunStatus::Succeeded, None, now).await;
        // A child inside it is part of its sync, not a sync of its own.
        let child = NewRun {
            parent_run_id: Some(second),
            settled: Some((RunStatus::Succeeded, "done".into())),
            ..new_run("r2")
        };
        store.enqueue_run(&child, now).await.unwrap();
        // Created final (its flow is off): counted as it is made.
        let skipped = NewRun {
            settled: Some((RunStatus::Skipped, "the flow is off".into())),
            ..new_run("r3")
        };
        store.enqueue_run(&skipped, now).await.unwrap();

        let counts = store.run_counts_since(earlier).await.unwrap();
        assert_eq!(
            total(&counts, RunStatus::Failed, Some(FailureCause::Unavailable)),
            1
        );
        assert_eq!(total(&counts, RunStatus::Succeeded, None), 1);
        assert_eq!(total(&counts, RunStatus::Skipped, None), 1);
        assert_eq!(counts.iter().map(|c| c.runs).sum::<i64>(), 3, "{counts:?}");
        let failed = counts
            .iter()
            .find(|c| c.status == RunStatus::Failed)
            .unwrap();
        assert_eq!(failed.hour, hour_of(earlier));
        assert_eq!(failed.flow, Flow::PartnerCenterToCrm);
        // Read from the hour of `since` on.
        let recent = store.run_counts_since(now).await.unwrap();
        assert_eq!(recent.iter().map(|c| c.runs).sum::<i64>(), 2);
    }

    #[tokio::test]
    async fn calls_are_read_per_day_from_the_first_day_asked() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let yesterday = now - Duration::days(1);
        let pc = System::PartnerCenter.as_code();
        store.count_api_calls(pc, None, 3, now).await.unwrap();
        store
            .count_api_calls(pc, Some(Flow::PartnerCenterToCrm), 4, now)
            .await
            .unwrap();
        store.count_api_calls(pc, None, 5, yesterday).await.unwrap();
        store
            .count_api_calls(System::DYNAMICS_365.as_code(), None, 9, now)
            .await
            .unwrap();
        let mut calls = store.api_calls_per_day(yesterday).await.unwrap();
        calls.sort_by_key(|(system, day, _)| (system.as_code(), *day));
        assert_eq!(
            calls,
            vec![
                (System::DYNAMICS_365, now.date(), 9),
                (System::PartnerCenter, yesterday.date(), 5),
                (System::PartnerCenter, now.date(), 7),
            ]
        );
        let mut today = store.api_calls_per_day(now).await.unwrap();
        today.sort_by_key(|(system, ..)| system.as_code());
        assert_eq!(
            today,
            vec![
                (System::DYNAMICS_365, now.date(), 9),
                (System::PartnerCenter, now.date(), 7)
            ]
        );
    }
}
