//! cosell's own writes to Partner Center referrals, kept until the webhook event each one causes
//! arrives: that event is cosell's echo and needs no read of the referral.

use super::{Store, StoreError, on_pool};
use time::OffsetDateTime;

/// How long an own write waits for its event. Partner Center retries a delivery for a while; an event
/// later than this is read like anyone else's change (a call spent, nothing missed).
const KEPT: time::Duration = time::Duration::days(2);

/// The time a change is known by, in microseconds: `ResourceChangeUtcDate` has seven fractional digits,
/// `updatedDateTime` may have fewer; microseconds are what both keep in every sample seen.
fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

impl Store {
    /// Remembers that cosell's write made referral `referral_id` change at `changed` (its new
    /// `updatedDateTime`), and forgets this referral's writes whose event never came.
    pub async fn record_own_write(
        &self,
        referral_id: &str,
        changed: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "DELETE FROM own_writes WHERE referral_id = $1 AND written_at < $2"
        )
        .bind(referral_id)
        .bind(now - KEPT)
        .execute(p)
        .await
        .map(|_| ()))?;
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO own_writes (referral_id, changed_us, written_at) VALUES ($1, $2, $3)
             ON CONFLICT (referral_id, changed_us) DO NOTHING"
        )
        .bind(referral_id)
        .bind(micros(changed))
        .bind(now)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Whether the change of `referral_id` at `changed` was cosell's own write; the first event that
    /// asks takes it (a duplicate delivery of the same event is stopped earlier, by the inbox).
    pub async fn take_own_write(
        &self,
        referral_id: &str,
        changed: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let taken = on_pool!(self, |p| sqlx::query(
            "DELETE FROM own_writes WHERE referral_id = $1 AND changed_us = $2"
        )
        .bind(referral_id)
        .bind(micros(changed))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(taken > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::test_support::TestDatabase;
    use time::macros::datetime;

    #[tokio::test]
    async fn an_own_write_is_known_once_by_its_time() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = datetime!(2026-12-04 10:00 UTC);
        let changed = datetime!(2026-12-04 09:59:59.123_456_7 UTC);
        store.record_own_write("r1", changed, now).await.unwrap();
        assert!(
            !store.take_own_write("r2", changed).await.unwrap(),
            "another referral"
        );
        assert!(
            !store
                .take_own_write("r1", datetime!(2026-12-04 09:59:59.124 UTC))
                .await
                .unwrap(),
            "another time"
        );
        assert!(store.take_own_write("r1", changed).await.unwrap());
        assert!(!store.take_own_write("r1", changed).await.unwrap(), "taken");
    }

    #[tokio::test]
    async fn an_own_write_whose_event_never_came_is_forgotten() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let old = datetime!(2026-12-01 10:00 UTC);
        store.record_own_write("r1", old, old).await.unwrap();
        let now = datetime!(2026-12-04 10:00 UTC);
        store.record_own_write("r1", now, now).await.unwrap();
        assert!(!store.take_own_write("r1", old).await.unwrap());
        assert!(store.take_own_write("r1", now).await.unwrap());
    }
}
