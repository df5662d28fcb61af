//! Isolated databases for tests, on SQLite always and on PostgreSQL when `TEST_DATABASE_URL` is set.
//!
//! With `TEST_DATABASE_URL=postgres://…/test`, each [`TestDatabase`] is a new database on that server,
//! dropped again when the value is dropped. Without it, each is a new SQLite file in the temp directory.

pub mod volume;

use super::Backend;
use sqlx::{Connection, PgConnection};

pub struct TestDatabase {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    File(std::path::PathBuf),
    PgDatabase { admin_url: String, name: String },
}

impl TestDatabase {
    pub async fn new() -> TestDatabase {
        let name = format!("cosell_t_{}", uuid::Uuid::new_v4().simple());
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let mut conn = PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unreachable: {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                TestDatabase {
                    url: url.to_string(),
                    backend: Backend::Postgres,
                    cleanup: Cleanup::PgDatabase { admin_url, name },
                }
            }
            _ => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                TestDatabase {
                    url: format!("sqlite://{}", path.display()),
                    backend: Backend::Sqlite,
                    cleanup: Cleanup::File(path),
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            Cleanup::PgDatabase { admin_url, name } => {
                // Drop runs inside an async test: do the blocking cleanup on a thread of its own.
                let (admin_url, name) = (admin_url.clone(), name.clone());
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    // Bounded: the test's thread waits on this, and a busy server must not hang the
                    // suite (a database left behind is harmless: its name is unique).
                    rt.block_on(async {
                        let drop = async {
                            if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                                let _ = sqlx::query("SET lock_timeout = '10s'")
                                    .execute(&mut conn)
                                    .await;
                                let _ = sqlx::query(&format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                ))
                                .execute(&mut conn)
                                .await;
                            }
                        };
                        let _ =
                            tokio::time::timeout(std::time::Duration::from_secs(30), drop).await;
                    });
                })
                .join();
            }
        }
    }
}

/// Claims run `id` (it must be the next due) as worker "w" and ends it as `status` at `at`.
#[cfg(test)]
pub(crate) async fn claim_and_end(
    store: &super::Store,
    id: i64,
    status: crate::domain::runs::RunStatus,
    cause: Option<crate::domain::runs::FailureCause>,
    at: time::OffsetDateTime,
) {
    let claimed = store
        .claim_run("w", at, at + time::Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, id);
    assert!(
        store
            .finish_run(id, "w", status, cause, "it says why", at)
            .await
            .unwrap()
    );
}

/// Now, to the microsecond PostgreSQL keeps.
#[cfg(test)]
pub(crate) fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000).unwrap()
}

/// A webhook run of the Partner Center flow for `record`, queued (the run tests vary it from here).
#[cfg(test)]
pub(crate) fn new_run(record: &str) -> super::NewRun {
    use crate::domain::flows::Flow;
    use crate::domain::runs::RunTrigger;
    super::NewRun {
        flow: Flow::PartnerCenterToCrm,
        trigger: RunTrigger::Webhook,
        input: crate::domain::runs::RunInput::referral(record),
        record_id: Some(record.into()),
        parent_run_id: None,
        resubmitted_from: None,
        settled: None,
    }
}

/// A connection of `system` as the account "Adele Vance", with refresh token `token`.
pub fn new_connection(
    system: crate::domain::connection::System,
    token: &str,
) -> super::NewConnection {
    super::NewConnection {
        system,
        account_name: "Adele Vance".into(),
        account_username: "adele@contoso.example".into(),
        account_object_id: "oid-1".into(),
        tenant_id: "tid-1".into(),
        instance_url: None,
        refresh_token: crate::crypto::Secret::new(token),
        connected_by: "oid-1".into(),
    }
}
