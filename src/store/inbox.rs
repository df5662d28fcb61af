//! The webhook inbox: verified notifications, stored once each and turned into runs once each.

use super::runs::insert_run;
use super::{NewRun, Store, StoreError, on_pool};
use crate::domain::notification::Notification;
use time::OffsetDateTime;

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new event, with its inbox id.
    New(i64),
    /// The same event again: counted, nothing else.
    Duplicate(i64),
}

/// A stored event, as the engine turns it into a run.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxEvent {
    pub id: i64,
    pub event: String,
    pub referral_id: String,
    /// Its `ResourceChangeUtcDate`, as sent.
    pub changed_at: String,
}

impl InboxEvent {
    /// The event `n`, stored as `id`.
    pub fn stored(id: i64, n: &Notification) -> InboxEvent {
        InboxEvent {
            id,
            event: n.event.as_str().to_string(),
            referral_id: n.resource_id.clone(),
            changed_at: n.changed_at.clone(),
        }
    }
}

impl Store {
    pub async fn record_notification(
        &self,
        n: &Notification,
        body: &str,
        at: OffsetDateTime,
    ) -> Result<Recorded, StoreError> {
        let key = n.dedupe_key();
        // Insert-or-count in one statement, so concurrent duplicates cannot both be "new".
        let inserted: Option<i64> = on_pool!(self, |p| {
            sqlx::query_scalar(
            "INSERT INTO inbox (event_name, referral_id, resource_uri, resource_change_utc_date, dedupe_key, body, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING id"
        )
        .bind(n.event.as_str())
        .bind(&n.resource_id)
        .bind(&n.resource_uri)
        .bind(&n.changed_at)
        .bind(&key)
        .bind(body)
        .bind(at)
        .fetch_optional(p)
        .await
        })?;
        if let Some(id) = inserted {
            return Ok(Recorded::New(id));
        }
        let id: i64 = on_pool!(self, |p| sqlx::query_scalar(
            "UPDATE inbox SET deliveries = deliveries + 1 WHERE dedupe_key = $1 RETURNING id"
        )
        .bind(&key)
        .fetch_one(p)
        .await)?;
        Ok(Recorded::Duplicate(id))
    }

    /// How many distinct events the inbox holds (for health and tests).
    /// The newest verified delivery: when it arrived, and its event.
    pub async fn last_delivery(&self) -> Result<Option<(OffsetDateTime, String)>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_as(
            "SELECT received_at, event_name FROM inbox ORDER BY id DESC LIMIT 1"
        )
        .fetch_optional(p)
        .await)?)
    }

    /// When the delivery of `event` about `resource_id` arrived, if it did.
    pub async fn delivery_of(
        &self,
        event: &str,
        resource_id: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT MIN(received_at) FROM inbox WHERE event_name = $1 AND referral_id = $2"
        )
        .bind(event)
        .bind(resource_id)
        .fetch_one(p)
        .await)?)
    }

    pub async fn inbox_len(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM inbox"
        )
        .fetch_one(p)
        .await)?)
    }

    /// Deliveries received for one inbox event.
    pub async fn inbox_deliveries(&self, id: i64) -> Result<i64, StoreError> {
        let n: i32 = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT deliveries FROM inbox WHERE id = $1"
        )
        .bind(id)
        .fetch_one(p)
        .await)?;
        Ok(i64::from(n))
    }

    /// Queues the run an inbox event calls for and marks the event processed, together: an event is
    /// turned into a run exactly once, even if the process dies in between.
    pub async fn enqueue_from_inbox(
        &self,
        inbox_id: i64,
        run: &NewRun,
        at: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        macro_rules! body {
            ($p:ident) => {{
                let mut tx = $p.begin().await?;
                let claimed = sqlx::query(
                    "UPDATE inbox SET processed_at = $1 WHERE id = $2 AND processed_at IS NULL",
                )
                .bind(at)
                .bind(inbox_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let id = insert_run!(run, at).fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(id))
            }};
        }
        match &self.pool {
            super::Pool::Sqlite(p) => body!(p),
            super::Pool::Postgres(p) => body!(p),
        }
    }

    /// Inbox events not yet turned into runs (after a crash between storing and queueing).
    pub async fn unprocessed_inbox(&self) -> Result<Vec<InboxEvent>, StoreError> {
        Ok(on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT id, event_name AS event, referral_id, resource_change_utc_date AS changed_at
             FROM inbox WHERE processed_at IS NULL ORDER BY id LIMIT 500"
        )
        .fetch_all(p)
        .await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;
    use crate::domain::notification::Notification;

    fn notification(id: &str, at: &str) -> Notification {
        Notification::parse(
            format!(r#"{{"EventName":"referral-updated","ResourceUri":"https://h/engagements/v1/referrals/{id}","ResourceChangeUtcDate":"{at}"}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn the_same_event_is_stored_once_and_counted() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let a = notification("r-1", "2026-11-22T10:00:00.0000001+00:00");
        let first = store.record_notification(&a, "{}", now).await.unwrap();
        let Recorded::New(id) = first else {
            panic!("new: {first:?}")
        };
        assert_eq!(
            store.record_notification(&a, "{}", now).await.unwrap(),
            Recorded::Duplicate(id)
        );
        assert_eq!(
            store.record_notification(&a, "{}", now).await.unwrap(),
            Recorded::Duplicate(id)
        );
        assert_eq!(store.inbox_deliveries(id).await.unwrap(), 3);
        // Another change of the same referral is another event.
        let b = notification("r-1", "2026-11-22T10:00:01.0000001+00:00");
        assert!(matches!(
            store.record_notification(&b, "{}", now).await.unwrap(),
            Recorded::New(_)
        ));
        assert_eq!(store.inbox_len().await.unwrap(), 2);
    }
}
