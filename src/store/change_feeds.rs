//! Where each CRM change feed resumes (its delta link) and which instance may read it (a lease).
//!
//! Only one instance reads a feed at a time, so several instances do not queue the same change twice;
//! a dead instance's lease runs out and another takes the feed over.

use super::{Store, StoreError, on_pool};
use time::OffsetDateTime;

impl Store {
    /// Where the change feed `feed` resumes.
    pub async fn change_feed(&self, feed: &str) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT delta_link FROM change_feeds WHERE feed = $1"
        )
        .bind(feed)
        .fetch_optional(p)
        .await)?)
    }

    pub async fn set_change_feed(
        &self,
        feed: &str,
        delta_link: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO change_feeds (feed, delta_link, polled_at) VALUES ($1, $2, $3)
             ON CONFLICT (feed) DO UPDATE SET delta_link = excluded.delta_link, polled_at = excluded.polled_at"
        )
        .bind(feed)
        .bind(delta_link)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    /// Takes (or renews) the right to read `feed` until `until`, unless another owner holds it.
    pub async fn take_feed_lease(
        &self,
        feed: &str,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let taken = on_pool!(self, |p| sqlx::query(
            "INSERT INTO feed_leases (feed, owner, until) VALUES ($1, $2, $3)
             ON CONFLICT (feed) DO UPDATE SET owner = excluded.owner, until = excluded.until
             WHERE feed_leases.until < $4 OR feed_leases.owner = excluded.owner"
        )
        .bind(feed)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(taken == 1)
    }

    /// Gives the right to read `feed` back, for the next instance.
    pub async fn release_feed_lease(
        &self,
        feed: &str,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "UPDATE feed_leases SET until = $3 WHERE feed = $1 AND owner = $2"
        )
        .bind(feed)
        .bind(owner)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// When the change feed `feed` was last read, if ever.
    pub async fn change_feed_polled_at(
        &self,
        feed: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT polled_at FROM change_feeds WHERE feed = $1"
        )
        .bind(feed)
        .fetch_optional(p)
        .await)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;

    #[tokio::test]
    async fn a_feed_resumes_where_it_was_left() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        assert_eq!(store.change_feed("opportunities").await.unwrap(), None);
        assert_eq!(
            store.change_feed_polled_at("opportunities").await.unwrap(),
            None
        );
        store
            .set_change_feed("opportunities", "link-1", now)
            .await
            .unwrap();
        store
            .set_change_feed("opportunities", "link-2", now)
            .await
            .unwrap();
        assert_eq!(
            store.change_feed("opportunities").await.unwrap().as_deref(),
            Some("link-2")
        );
        assert!(
            store
                .change_feed_polled_at("opportunities")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn one_instance_reads_a_feed_at_a_time() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::minutes(2);
        assert!(store.take_feed_lease("f", "a", now, later).await.unwrap());
        assert!(
            !store.take_feed_lease("f", "b", now, later).await.unwrap(),
            "a holds it"
        );
        assert!(
            store.take_feed_lease("f", "a", now, later).await.unwrap(),
            "a renews"
        );
        assert!(
            store.take_feed_lease("g", "b", now, later).await.unwrap(),
            "another feed"
        );
        store.release_feed_lease("f", "a", now).await.unwrap();
        let after = now + time::Duration::seconds(1);
        assert!(
            store.take_feed_lease("f", "b", after, later).await.unwrap(),
            "released"
        );
        let expired = later + time::Duration::seconds(1);
        assert!(
            store
                .take_feed_lease("f", "a", expired, expired + time::Duration::minutes(2))
                .await
                .unwrap(),
            "b's lease ran out"
        );
    }
}
