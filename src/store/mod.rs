//! The store: one API over SQLite (embedded default) and PostgreSQL (several instances, one database).
//!
//! Queries are written once with `$n` placeholders, which both SQLite and PostgreSQL accept, and run on
//! whichever pool is configured (see [`on_pool!`]). Callers never see sqlx types: errors are [`StoreError`].

mod activity;
mod alerts;
pub use activity::ActivityMark;
pub use alerts::{DeliveryJob, DeliveryState, StoredAlert};
mod api_calls;
mod charts;
pub use api_calls::FlowCalls;
mod audit;
mod change_feeds;
mod connections;
mod diagnostics;
mod flows;
mod inbox;
mod opportunities;
mod overview;
mod own_writes;
mod retention;
mod runs;
mod sessions;
mod settings;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
mod users;

pub use audit::{AuditEvent, AuditFilter, NewAuditEvent};
pub use connections::{Connection, NewConnection};
pub use diagnostics::{FailedRuns, FailedSince, StorageReport};
pub use inbox::{InboxEvent, Recorded};
pub use opportunities::{MirroredOpportunity, OpportunityCursor, SeenOpportunity};
pub use overview::{ConnectionStanding, LastRegistration, OverviewFacts};
pub use runs::{NewRun, NewStep, RecordRuns, ResubmitRefusal, Run, RunCalls, RunFilter, Step};
pub use sessions::SessionBackend;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// Runs the same code against whichever backend the store holds.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL must start with sqlite: or postgres:// (got {0:?})")]
    UnsupportedUrl(String),
    #[error("database URL is not valid: {0}")]
    BadUrl(String),
    #[error("cannot create the directory for the SQLite file {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("busy: {0}")]
    Busy(String),
    #[error("a sealed secret does not open with COSELL_SECRET_KEY (was the key changed?): {0}")]
    Sealed(String),
}

/// A time to compare stored timestamps with, as SQLite must be given it. SQLite keeps timestamps as the
/// RFC 3339 text sqlx writes (`…:05Z`, `…:05.482Z`) and compares them as text, where "…:05Z" sorts after
/// "…:05.482Z" although it is earlier. A bound written with all nine fraction digits sorts right against
/// every stored form, but for a stored time exactly on a second compared with a bound inside that second
/// (filter bounds are whole minutes, so never in practice).
pub(crate) fn sqlite_time_bound(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Connects, creating the SQLite file (and its directory) if needed, and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            // The migrator takes an advisory lock, so several instances starting together are safe.
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        Ok(Store { pool })
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// A cheap round trip, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The session store living in this same database (tables created on first use).
    pub async fn session_backend(&self) -> Result<SessionBackend, StoreError> {
        SessionBackend::for_pool(&self.pool).await
    }

    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }
}

/// A database URL fit for an error message: the password, if any, replaced.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:hunter2@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[tokio::test]
    async fn rejects_unknown_schemes() {
        let err = Store::connect("mysql://u:pw@localhost/x")
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedUrl(ref u) if !u.contains("pw")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn connects_and_migrates() {
        let db = test_support::TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        store.ping().await.unwrap();
        // Connecting again re-runs the migrator, which must find nothing to do.
        let again = Store::connect(db.url()).await.unwrap();
        again.ping().await.unwrap();
        assert_eq!(store.backend(), db.backend());
    }
}
