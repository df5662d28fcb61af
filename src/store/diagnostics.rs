//! What the Diagnostics page asks of the database itself: failed runs grouped by what they said, and
//! whether the database answers, how big it is and how far back its runs go.

use super::{Backend, Store, StoreError, on_pool};
use crate::domain::flows::Flow;
use time::OffsetDateTime;

/// Failed runs of one flow that ended with the same outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRuns {
    pub flow: Flow,
    pub outcome: String,
    pub count: i64,
    /// The newest of them, to open.
    pub latest_run: i64,
}

/// Failed runs waiting for someone since a moment: how many, and the largest groups.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FailedSince {
    pub total: i64,
    pub groups: Vec<FailedRuns>,
}

/// The database as it answered just now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageReport {
    pub backend: Backend,
    /// Bytes on disk, when the database says cheaply (SQLite pages, PostgreSQL's own count).
    pub size_bytes: Option<i64>,
    /// The oldest run kept: its id and when it was created.
    pub oldest_run: Option<(i64, OffsetDateTime)>,
}

impl Store {
    /// Whether the database answers, its size and its oldest run.
    pub async fn storage_report(&self) -> Result<StorageReport, StoreError> {
        self.ping().await?;
        let size_bytes: Option<i64> = match self.backend() {
            // Pages allocated to the file (free pages included): what the disk holds, the WAL aside.
            Backend::Sqlite => on_pool!(self, |p| sqlx::query_scalar(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"
            )
            .fetch_optional(p)
            .await)?,
            Backend::Postgres => on_pool!(self, |p| sqlx::query_scalar(
                "SELECT pg_database_size(current_database())"
            )
            .fetch_optional(p)
            .await)?,
        };
        // By id, the primary key: as old as by creation time, and one index step.
        let oldest_run: Option<(i64, OffsetDateTime)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT id, created_at FROM runs ORDER BY id LIMIT 1"
        )
        .fetch_optional(p)
        .await)?;
        Ok(StorageReport {
            backend: self.backend(),
            size_bytes,
            oldest_run,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{TestDatabase, new_run, now};
    use super::*;
    use crate::domain::runs::RunStatus;
    use crate::store::RunFilter;
    use time::Duration;

    #[tokio::test]
    async fn failed_runs_are_grouped_by_outcome_until_resubmitted() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let t = now();
        let failed = |record: &str, outcome: &str| {
            let mut run = new_run(record);
            run.settled = Some((RunStatus::Failed, outcome.to_string()));
            run
        };
        // Too old to count, then two of one cause and one of another, and a success.
        store
            .enqueue_run(&failed("old", "denied"), t - Duration::hours(30))
            .await
            .unwrap();
        let a = store.enqueue_run(&failed("a", "denied"), t).await.unwrap();
        let b = store.enqueue_run(&failed("b", "denied"), t).await.unwrap();
        let c = store
            .enqueue_run(&failed("c", "no country"), t)
            .await
            .unwrap();
        store.enqueue_run(&new_run("ok"), t).await.unwrap();
        // A failed child run counts through its parent only.
        let mut child = failed("a", "denied");
        child.parent_run_id = Some(a);
        store.enqueue_run(&child, t).await.unwrap();

        let since = t - Duration::hours(24);
        let found = store.failed_runs_since(since, 10).await.unwrap();
        assert_eq!(found.total, 3);
        assert_eq!(
            found.groups,
            vec![
                FailedRuns {
                    flow: Flow::PartnerCenterToCrm,
                    outcome: "denied".into(),
                    count: 2,
                    latest_run: b
                },
                FailedRuns {
                    flow: Flow::PartnerCenterToCrm,
                    outcome: "no country".into(),
                    count: 1,
                    latest_run: c
                },
            ]
        );
        assert_eq!(
            store
                .failed_runs_since(since, 1)
                .await
                .unwrap()
                .groups
                .len(),
            1
        );

        // Resubmitted runs are dealt with: they leave the count.
        let filter = RunFilter {
            since: Some(since),
            ..Default::default()
        };
        assert_eq!(
            store.resubmit_failed(&filter, 500, t).await.unwrap().len(),
            3
        );
        assert_eq!(
            store.failed_runs_since(since, 10).await.unwrap(),
            FailedSince::default()
        );
    }

    #[tokio::test]
    async fn the_storage_report_says_the_size_and_the_oldest_run() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let empty = store.storage_report().await.unwrap();
        assert_eq!(empty.backend, db.backend());
        assert!(empty.size_bytes.is_some_and(|s| s > 0), "{empty:?}");
        assert_eq!(empty.oldest_run, None);
        let t = now();
        let first = store.enqueue_run(&new_run("r"), t).await.unwrap();
        store.enqueue_run(&new_run("s"), t).await.unwrap();
        let report = store.storage_report().await.unwrap();
        assert_eq!(report.oldest_run.map(|(id, _)| id), Some(first));
        store.close().await;
        assert!(store.storage_report().await.is_err(), "a closed pool fails");
    }
}
