//! Runs queued by any instance, heard at once. On PostgreSQL several instances share the queue: a
//! trigger (migration 20270104000014) sends a notification on the channel below whenever a run is
//! queued or queued again, and each instance listens, so its idle workers start at once rather than at
//! their next poll. SQLite is one instance per file, whose workers the engine wakes itself.

use crate::store::{Pool, Store};
use std::time::Duration;

/// The channel the trigger notifies.
const RUNS_QUEUED: &str = "cosell_runs_queued";

/// How long to wait before listening again after the connection failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(2);

impl Store {
    /// Calls `wake` whenever any instance queues a run, until dropped; returns at once on SQLite.
    /// `wake` is also called each time listening starts or the connection is made again: what was
    /// queued while nobody listened is found by the look it causes.
    pub async fn on_runs_queued(&self, wake: impl Fn()) {
        let Pool::Postgres(pool) = &self.pool else {
            return;
        };
        loop {
            let listener = async {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen(RUNS_QUEUED).await?;
                Ok::<_, sqlx::Error>(listener)
            };
            match listener.await {
                Ok(mut listener) => {
                    wake();
                    loop {
                        // Ok(None): the connection was lost and is made again (notifications sent
                        // meanwhile are gone, so look); an error is a failed reconnection.
                        match listener.try_recv().await {
                            Ok(_) => wake(),
                            Err(e) => {
                                tracing::warn!(error = %e, "lost the notifications of queued runs");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not listen for queued runs"),
            }
            tokio::time::sleep(RELISTEN_AFTER).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{TestDatabase, new_run, now};
    use crate::store::{Pool, Store};
    use std::time::Duration;

    #[tokio::test]
    async fn a_run_queued_by_another_instance_is_heard_at_once() {
        let db = TestDatabase::new().await;
        let here = Store::connect(db.url()).await.unwrap();
        if here.backend() == crate::store::Backend::Sqlite {
            // One instance per SQLite file: there is nobody else to hear.
            here.on_runs_queued(|| panic!("nothing to listen to on SQLite"))
                .await;
            return;
        }
        let elsewhere = Store::connect(db.url()).await.unwrap();
        let (woken, mut wakes) = tokio::sync::mpsc::unbounded_channel();
        let listening = tokio::spawn({
            let here = here.clone();
            async move { here.on_runs_queued(|| woken.send(()).unwrap()).await }
        });
        let next = async |wakes: &mut tokio::sync::mpsc::UnboundedReceiver<()>| {
            tokio::time::timeout(Duration::from_secs(30), wakes.recv())
                .await
                .expect("woken within 30 s")
        };
        next(&mut wakes).await; // listening
        elsewhere.enqueue_run(&new_run("r1"), now()).await.unwrap();
        next(&mut wakes).await;
        // A run queued again (a retry) is heard too; one that settles is not.
        let claimed = elsewhere
            .claim_run("b", now(), now() + time::Duration::seconds(60))
            .await
            .unwrap()
            .unwrap();
        elsewhere
            .finish_run(
                claimed.id,
                "b",
                crate::domain::runs::RunStatus::Succeeded,
                None,
                "",
                now(),
            )
            .await
            .unwrap();
        elsewhere.enqueue_run(&new_run("r2"), now()).await.unwrap();
        next(&mut wakes).await;
        assert!(wakes.try_recv().is_err(), "a settled run wakes nobody");

        // The listening connection is cut (a restarted server, a reaped connection): what was queued
        // meanwhile is looked for, and runs queued afterwards are heard again.
        let Pool::Postgres(pool) = &elsewhere.pool else {
            unreachable!("PostgreSQL here")
        };
        let cut: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(cut, [true], "one listening connection");
        next(&mut wakes).await;
        elsewhere.enqueue_run(&new_run("r3"), now()).await.unwrap();
        next(&mut wakes).await;
        listening.abort();
    }
}
