//! Alerts and the messages that carry them out (src/domain/alerts.rs). An alert's change and its
//! messages are written in one transaction: a crash loses no message, and of two instances judging the
//! same cause at once only one opens (or resolves) it, so only one set of messages goes out.

use super::{Backend, Pool, Store, StoreError, on_pool, sqlite_time_bound};
use crate::domain::alerts::{AlertEvent, AlertKind, Channel, Raised, Severity};
use time::OffsetDateTime;

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    pub id: i64,
    pub cause: String,
    pub kind: AlertKind,
    pub severity: Severity,
    pub title: String,
    pub detail: String,
    pub fix_href: String,
    pub opened_at: OffsetDateTime,
    pub resolved_at: Option<OffsetDateTime>,
    /// When, and by whom.
    pub acknowledged: Option<(OffsetDateTime, String)>,
}

/// A message to send now, claimed by this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryJob {
    pub id: i64,
    pub channel: Channel,
    pub event: AlertEvent,
    /// Including this one.
    pub attempts: i64,
    pub alert: StoredAlert,
}

/// Where one message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    pub alert_id: i64,
    pub channel: Channel,
    pub event: AlertEvent,
    pub attempts: i64,
    pub sent_at: Option<OffsetDateTime>,
    pub failed_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

const ALERT_COLUMNS: &str = "id, cause, kind, severity, title, detail, fix_href, opened_at, resolved_at, acknowledged_at, acknowledged_by";

type AlertRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    OffsetDateTime,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<String>,
);

fn alert(row: AlertRow) -> Result<StoredAlert, StoreError> {
    let (
        id,
        cause,
        kind,
        severity,
        title,
        detail,
        fix_href,
        opened_at,
        resolved_at,
        ack_at,
        ack_by,
    ) = row;
    Ok(StoredAlert {
        id,
        kind: AlertKind::from_code(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("alert {id}: kind {kind:?}")))?,
        severity: Severity::from_code(&severity)
            .ok_or_else(|| StoreError::Corrupt(format!("alert {id}: severity {severity:?}")))?,
        cause,
        title,
        detail,
        fix_href,
        opened_at,
        resolved_at,
        acknowledged: ack_at.map(|at| (at, ack_by.unwrap_or_default())),
    })
}

/// Writes the messages of `event` about alert `$id` on every channel, inside the transaction `$tx`.
macro_rules! queue_messages {
    ($tx:expr, $id:expr, $event:expr, $channels:expr, $now:expr) => {
        for channel in $channels {
            sqlx::query(
                "INSERT INTO alert_deliveries (alert_id, channel, event, not_before, created_at)
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind($id)
            .bind(channel.as_code())
            .bind($event.as_code())
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

impl Store {
    /// Opens an alert for `raised`'s cause unless one is open, with a message on each of `channels`;
    /// its id when this call opened it.
    pub async fn open_alert(
        &self,
        raised: &Raised,
        channels: &[Channel],
        now: OffsetDateTime,
    ) -> Result<Option<i64>, StoreError> {
        macro_rules! body {
            ($p:ident) => {{
                let mut tx = $p.begin().await?;
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO alerts (cause, kind, severity, title, detail, fix_href, opened_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT DO NOTHING RETURNING id",
                )
                .bind(&raised.cause)
                .bind(raised.kind.as_code())
                .bind(raised.severity.as_code())
                .bind(&raised.title)
                .bind(&raised.detail)
                .bind(&raised.fix_href)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(id) = id {
                    queue_messages!(tx, id, AlertEvent::Opened, channels, now);
                }
                tx.commit().await?;
                Ok(id)
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => body!(p),
            Pool::Postgres(p) => body!(p),
        }
    }

    /// Raises open alert `id` to `raised`'s (higher) severity and words, with a message on each channel;
    /// false when it is resolved or already that severity.
    pub async fn escalate_alert(
        &self,
        id: i64,
        raised: &Raised,
        channels: &[Channel],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        macro_rules! body {
            ($p:ident) => {{
                let mut tx = $p.begin().await?;
                let changed = sqlx::query(
                    "UPDATE alerts SET severity = $1, title = $2, detail = $3,
                            acknowledged_at = NULL, acknowledged_by = NULL
                     WHERE id = $4 AND resolved_at IS NULL AND severity <> $1",
                )
                .bind(raised.severity.as_code())
                .bind(&raised.title)
                .bind(&raised.detail)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    queue_messages!(tx, id, AlertEvent::Escalated, channels, now);
                }
                tx.commit().await?;
                Ok(changed == 1)
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => body!(p),
            Pool::Postgres(p) => body!(p),
        }
    }

    /// Resolves open alert `id`, with a message on each channel; false when it was resolved already.
    pub async fn resolve_alert(
        &self,
        id: i64,
        channels: &[Channel],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        macro_rules! body {
            ($p:ident) => {{
                let mut tx = $p.begin().await?;
                let changed = sqlx::query(
                    "UPDATE alerts SET resolved_at = $1 WHERE id = $2 AND resolved_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    queue_messages!(tx, id, AlertEvent::Resolved, channels, now);
                }
                tx.commit().await?;
                Ok(changed == 1)
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => body!(p),
            Pool::Postgres(p) => body!(p),
        }
    }

    /// Every open alert, the oldest first.
    pub async fn open_alerts(&self) -> Result<Vec<StoredAlert>, StoreError> {
        let sql =
            format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE resolved_at IS NULL ORDER BY id");
        let rows: Vec<AlertRow> = on_pool!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
        rows.into_iter().map(alert).collect()
    }

    /// The newest `limit` alerts, open or resolved.
    pub async fn recent_alerts(&self, limit: i64) -> Result<Vec<StoredAlert>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts ORDER BY id DESC LIMIT $1");
        let rows: Vec<AlertRow> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(alert).collect()
    }

    /// Marks open alert `id` as seen by `by` (the banner stops showing it; it stays open until its
    /// cause clears). False when it is not open or was acknowledged already.
    pub async fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query(
            "UPDATE alerts SET acknowledged_at = $1, acknowledged_by = $2
             WHERE id = $3 AND resolved_at IS NULL AND acknowledged_at IS NULL"
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?
            == 1)
    }

    /// Claims the oldest message due, for `owner` until `lease_until` (another instance takes it over
    /// after that), counting the attempt.
    pub async fn claim_alert_delivery(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<DeliveryJob>, StoreError> {
        let pick = match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE alert_deliveries SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
             WHERE id = (SELECT id FROM alert_deliveries
                         WHERE sent_at IS NULL AND failed_at IS NULL AND not_before <= $3
                           AND (lease_until IS NULL OR lease_until < $3)
                         ORDER BY not_before, id LIMIT 1 {pick})
             RETURNING id, alert_id, channel, event, attempts"
        );
        let claimed: Option<(i64, i64, String, String, i64)> = on_pool!(self, |p| {
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(p)
                .await
        })?;
        let Some((id, alert_id, channel, event, attempts)) = claimed else {
            return Ok(None);
        };
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1");
        let row: AlertRow = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(alert_id)
            .fetch_one(p)
            .await)?;
        Ok(Some(DeliveryJob {
            id,
            channel: Channel::from_code(&channel).ok_or_else(|| {
                StoreError::Corrupt(format!("delivery {id}: channel {channel:?}"))
            })?,
            event: AlertEvent::from_code(&event)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery {id}: event {event:?}")))?,
            attempts,
            alert: alert(row)?,
        }))
    }

    /// When the next message is due, if any is waiting.
    pub async fn next_alert_delivery_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT MIN(COALESCE(lease_until, not_before)) FROM alert_deliveries
             WHERE sent_at IS NULL AND failed_at IS NULL"
        )
        .fetch_one(p)
        .await)?)
    }

    /// Ends claimed message `id`: sent (`error` None), given up (`retry_at` None), or to try again at
    /// `retry_at`. False when `owner` no longer holds it.
    pub async fn end_alert_delivery(
        &self,
        id: i64,
        owner: &str,
        now: OffsetDateTime,
        error: Option<&str>,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<bool, StoreError> {
        let sql = match (error, retry_at) {
            (None, _) => {
                // The failure before it stays: "sent at the third attempt; before, HTTP 429".
                "UPDATE alert_deliveries SET sent_at = $1, lease_owner = NULL, lease_until = NULL,
                        last_error = COALESCE($2, last_error)
                 WHERE id = $3 AND lease_owner = $4 AND sent_at IS NULL"
            }
            (Some(_), None) => {
                "UPDATE alert_deliveries SET failed_at = $1, lease_owner = NULL, lease_until = NULL, last_error = $2
                 WHERE id = $3 AND lease_owner = $4 AND sent_at IS NULL"
            }
            (Some(_), Some(_)) => {
                "UPDATE alert_deliveries SET not_before = $1, lease_owner = NULL, lease_until = NULL, last_error = $2
                 WHERE id = $3 AND lease_owner = $4 AND sent_at IS NULL"
            }
        };
        let at = retry_at.unwrap_or(now);
        Ok(on_pool!(self, |p| sqlx::query(sql)
            .bind(at)
            .bind(error)
            .bind(id)
            .bind(owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?
            == 1)
    }

    /// The messages about the alerts `ids`, oldest first.
    pub async fn alert_deliveries(&self, ids: &[i64]) -> Result<Vec<DeliveryState>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql = format!(
            "SELECT alert_id, channel, event, attempts, sent_at, failed_at, last_error
             FROM alert_deliveries WHERE alert_id IN ({list}) ORDER BY id"
        );
        type Row = (
            i64,
            String,
            String,
            i64,
            Option<OffsetDateTime>,
            Option<OffsetDateTime>,
            Option<String>,
        );
        let rows: Vec<Row> = on_pool!(self, |p| sqlx::query_as(&sql).fetch_all(p).await)?;
        rows.into_iter()
            .map(
                |(alert_id, channel, event, attempts, sent_at, failed_at, last_error)| {
                    Ok(DeliveryState {
                        alert_id,
                        channel: Channel::from_code(&channel).ok_or_else(|| {
                            StoreError::Corrupt(format!("delivery: channel {channel:?}"))
                        })?,
                        event: AlertEvent::from_code(&event).ok_or_else(|| {
                            StoreError::Corrupt(format!("delivery: event {event:?}"))
                        })?,
                        attempts,
                        sent_at,
                        failed_at,
                        last_error,
                    })
                },
            )
            .collect()
    }

    /// When the newest webhook deliveries arrived (at most `limit`, since `since`), newest first.
    pub async fn delivery_times(
        &self,
        since: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<OffsetDateTime>, StoreError> {
        let sql = "SELECT received_at FROM inbox WHERE received_at >= $1
                   ORDER BY received_at DESC LIMIT $2";
        Ok(match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(sql)
                    .bind(sqlite_time_bound(since))
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(sql)
                    .bind(since)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{TestDatabase, now};
    use time::Duration;

    fn raised(cause: &str, severity: Severity) -> Raised {
        Raised {
            cause: cause.into(),
            kind: AlertKind::Quota,
            severity,
            title: format!("{cause} is {}", severity.as_code()),
            detail: "detail".into(),
            fix_href: "/settings".into(),
        }
    }

    const BOTH: [Channel; 2] = [Channel::Webhook, Channel::Email];

    #[tokio::test]
    async fn one_open_alert_per_cause_and_one_message_per_change_and_channel() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let quota = raised("quota:partner_center", Severity::Warning);
        let id = store.open_alert(&quota, &BOTH, now).await.unwrap().unwrap();
        assert_eq!(store.open_alert(&quota, &BOTH, now).await.unwrap(), None);
        // Escalated once; again at the same severity does nothing.
        let spent = raised("quota:partner_center", Severity::Critical);
        assert!(store.escalate_alert(id, &spent, &BOTH, now).await.unwrap());
        assert!(!store.escalate_alert(id, &spent, &BOTH, now).await.unwrap());
        assert!(store.acknowledge_alert(id, "Ada", now).await.unwrap());
        assert!(!store.acknowledge_alert(id, "Ada", now).await.unwrap());
        assert!(store.resolve_alert(id, &BOTH, now).await.unwrap());
        assert!(!store.resolve_alert(id, &BOTH, now).await.unwrap());
        assert!(!store.acknowledge_alert(id, "Ada", now).await.unwrap());
        assert!(store.open_alerts().await.unwrap().is_empty());
        // The cause again: a new alert.
        let again = store.open_alert(&quota, &[], now).await.unwrap().unwrap();
        assert_ne!(again, id);

        let messages = store.alert_deliveries(&[id, again]).await.unwrap();
        let events: Vec<(AlertEvent, Channel)> =
            messages.iter().map(|m| (m.event, m.channel)).collect();
        assert_eq!(
            events,
            vec![
                (AlertEvent::Opened, Channel::Webhook),
                (AlertEvent::Opened, Channel::Email),
                (AlertEvent::Escalated, Channel::Webhook),
                (AlertEvent::Escalated, Channel::Email),
                (AlertEvent::Resolved, Channel::Webhook),
                (AlertEvent::Resolved, Channel::Email),
            ]
        );
        let recent = store.recent_alerts(10).await.unwrap();
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[1].severity, Severity::Critical);
        assert_eq!(recent[1].resolved_at, Some(now));
    }

    #[tokio::test]
    async fn instances_judging_the_same_cause_at_once_open_one_alert_and_resolve_it_once() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let cause = raised("credential:partner_center", Severity::Critical);
        let opened = futures_join((0..4).map(|_| {
            let store = store.clone();
            let cause = cause.clone();
            async move { store.open_alert(&cause, &BOTH, now).await.unwrap() }
        }))
        .await;
        let ids: Vec<i64> = opened.into_iter().flatten().collect();
        assert_eq!(ids.len(), 1, "one instance opened it");
        let id = ids[0];
        let resolved = futures_join((0..4).map(|_| {
            let store = store.clone();
            async move { store.resolve_alert(id, &BOTH, now).await.unwrap() }
        }))
        .await;
        assert_eq!(
            resolved.iter().filter(|r| **r).count(),
            1,
            "one resolved it"
        );
        assert_eq!(
            store.alert_deliveries(&ids).await.unwrap().len(),
            4,
            "opened and resolved, once each per channel"
        );
    }

    /// Runs the futures at the same time (as instances would), each on a task of its own.
    async fn futures_join<T: Send + 'static>(
        futures: impl Iterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
    ) -> Vec<T> {
        let tasks: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_message_is_claimed_once_retried_when_due_and_taken_over_after_its_lease() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let id = store
            .open_alert(
                &raised("runs-failing", Severity::Warning),
                &[Channel::Webhook],
                now,
            )
            .await
            .unwrap()
            .unwrap();
        let lease = now + Duration::minutes(1);
        let job = store
            .claim_alert_delivery("a", now, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((job.alert.id, job.attempts), (id, 1));
        assert_eq!(
            store.claim_alert_delivery("b", now, lease).await.unwrap(),
            None
        );
        // Failed: due again later, not before.
        let later = now + Duration::seconds(30);
        assert!(
            store
                .end_alert_delivery(job.id, "a", now, Some("503"), Some(later))
                .await
                .unwrap()
        );
        assert_eq!(
            store.claim_alert_delivery("b", now, lease).await.unwrap(),
            None
        );
        assert_eq!(store.next_alert_delivery_due().await.unwrap(), Some(later));
        let job = store
            .claim_alert_delivery("b", later, later + Duration::minutes(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.attempts, 2);
        // "b" stopped: after its lease "c" takes it over; "b" can no longer end it.
        let after = later + Duration::minutes(2);
        let taken = store
            .claim_alert_delivery("c", after, after + Duration::minutes(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.attempts, 3);
        assert!(
            !store
                .end_alert_delivery(job.id, "b", after, None, None)
                .await
                .unwrap()
        );
        assert!(
            store
                .end_alert_delivery(job.id, "c", after, None, None)
                .await
                .unwrap()
        );
        assert_eq!(store.next_alert_delivery_due().await.unwrap(), None);
        let state = &store.alert_deliveries(&[id]).await.unwrap()[0];
        assert_eq!((state.sent_at, state.attempts), (Some(after), 3));
    }
}
