//! The audit trail: every effect on a record and every skip, with the run that caused it.

use super::{Store, StoreError, on_pool};
use crate::domain::runs::Direction;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub run_id: Option<i64>,
    /// `engine`, or the dashboard user who acted.
    pub actor: String,
    /// What happened, e.g. `opportunity_created`, `referral_skipped`.
    pub action: String,
    /// `referral`, `opportunity`, `account`, `contact`, `flow`, `webhook`, `connection`.
    pub record_kind: String,
    pub record_id: String,
    pub direction: Option<Direction>,
    /// In words an admin reads: what, and why.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub at: OffsetDateTime,
    pub run_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub record_kind: String,
    pub record_id: String,
    pub direction: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub record_id: Option<String>,
    pub run_id: Option<i64>,
}

/// The INSERT of one event, bound, ready for any executor (pool or transaction).
macro_rules! insert_event {
    ($e:expr, $at:expr) => {{
        let (e, at): (&NewAuditEvent, OffsetDateTime) = ($e, $at);
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO audit_events (at, run_id, actor, action, record_kind, record_id, direction, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(at)
        .bind(e.run_id)
        .bind(e.actor.clone())
        .bind(e.action.clone())
        .bind(e.record_kind.clone())
        .bind(e.record_id.clone())
        .bind(e.direction.map(Direction::as_code))
        .bind(e.detail.clone())
    }};
}

impl Store {
    pub async fn record_audit(
        &self,
        e: &NewAuditEvent,
        at: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |p| insert_event!(e, at).fetch_one(p).await)?)
    }

    /// Stores many events in one transaction: volume for benchmarks and tests.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn seed_audit(
        &self,
        events: &[(NewAuditEvent, OffsetDateTime)],
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for (e, at) in events {
                insert_event!(e, *at).fetch_one(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A page of events, newest first, older than `before` (keyset pagination).
    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at, run_id, actor, action, record_kind, record_id, direction, detail
             FROM audit_events WHERE id < $1",
        );
        let mut n = 3;
        if filter.record_id.is_some() {
            sql.push_str(&format!(" AND record_id = ${n}"));
            n += 1;
        }
        if filter.run_id.is_some() {
            sql.push_str(&format!(" AND run_id = ${n}"));
        }
        sql.push_str(" ORDER BY id DESC LIMIT $2");
        Ok(on_pool!(self, |p| {
            let mut q = sqlx::query_as(&sql)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit);
            if let Some(record) = &filter.record_id {
                q = q.bind(record.clone());
            }
            if let Some(run) = filter.run_id {
                q = q.bind(run);
            }
            q.fetch_all(p).await
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;

    #[tokio::test]
    async fn events_are_listed_newest_first_by_record() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let event = |record: &str, action: &str| NewAuditEvent {
            run_id: None,
            actor: "engine".into(),
            action: action.into(),
            record_kind: "referral".into(),
            record_id: record.into(),
            direction: Some(Direction::ToCrm),
            detail: format!("{action} {record}"),
        };
        let a = store
            .record_audit(&event("r1", "created"), now)
            .await
            .unwrap();
        let b = store
            .record_audit(&event("r2", "skipped"), now)
            .await
            .unwrap();
        let c = store
            .record_audit(&event("r1", "updated"), now)
            .await
            .unwrap();
        let all = store
            .list_audit(&AuditFilter::default(), None, 2)
            .await
            .unwrap();
        assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c, b]);
        let older = store
            .list_audit(&AuditFilter::default(), Some(b), 2)
            .await
            .unwrap();
        assert_eq!(older.iter().map(|e| e.id).collect::<Vec<_>>(), vec![a]);
        let r1 = AuditFilter {
            record_id: Some("r1".into()),
            ..Default::default()
        };
        let r1 = store.list_audit(&r1, None, 10).await.unwrap();
        assert_eq!(r1.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c, a]);
        assert_eq!(r1[0].direction.as_deref(), Some("to_crm"));
    }
}
