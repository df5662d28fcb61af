//! The audit trail: every effect on a record and every skip, with the run that caused it.

use super::{Backend, Store, StoreError, on_pool, sqlite_time_bound};
use crate::domain::runs::{AuditAction, AuditOutcome, Direction};
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub run_id: Option<i64>,
    /// `engine`, or the dashboard user who acted.
    pub actor: String,
    /// What happened; its outcome (effect, skip, failure, conflict) follows from it.
    pub action: AuditAction,
    /// `referral`, `opportunity`, `account`, `contact`, `flow`, `webhook`, `connection`.
    pub record_kind: String,
    pub record_id: String,
    pub direction: Option<Direction>,
    /// In words an admin reads: what, and why.
    pub detail: String,
    /// Field-level changes (`[{"path","from","to"}]`), or the failing rules, when there are any.
    pub changes: Option<serde_json::Value>,
}

impl NewAuditEvent {
    /// An event by the engine, in no run, with no direction and no field changes (set those after).
    pub fn new(
        action: AuditAction,
        record_kind: &str,
        record_id: &str,
        detail: impl Into<String>,
    ) -> NewAuditEvent {
        NewAuditEvent {
            run_id: None,
            actor: "engine".into(),
            action,
            record_kind: record_kind.into(),
            record_id: record_id.into(),
            direction: None,
            detail: detail.into(),
            changes: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
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
    pub outcome: AuditOutcome,
    pub changes: Option<serde_json::Value>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: OffsetDateTime,
    run_id: Option<i64>,
    actor: String,
    action: String,
    record_kind: String,
    record_id: String,
    direction: Option<String>,
    detail: String,
    outcome: String,
    changes: Option<String>,
}

impl TryFrom<Row> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            outcome: AuditOutcome::from_code(&r.outcome).ok_or_else(|| {
                StoreError::Corrupt(format!("audit event {}: outcome {:?}", r.id, r.outcome))
            })?,
            changes: r
                .changes
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("audit event {}: changes {e}", r.id)))?,
            id: r.id,
            at: r.at,
            run_id: r.run_id,
            actor: r.actor,
            action: r.action,
            record_kind: r.record_kind,
            record_id: r.record_id,
            direction: r.direction,
            detail: r.detail,
        })
    }
}

/// Which events a list shows. Every field narrows; none means all.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Events about any of these records (an opportunity and its referral, say).
    pub records: Vec<String>,
    pub run_id: Option<i64>,
    pub direction: Option<Direction>,
    pub outcome: Option<AuditOutcome>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

impl AuditFilter {
    /// Events about one record.
    pub fn record(id: impl Into<String>) -> AuditFilter {
        AuditFilter {
            records: vec![id.into()],
            ..Default::default()
        }
    }
}

/// The INSERT of one event, bound, ready for any executor (pool or transaction).
macro_rules! insert_event {
    ($e:expr, $at:expr) => {{
        let (e, at): (&NewAuditEvent, OffsetDateTime) = ($e, $at);
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO audit_events (at, run_id, actor, action, record_kind, record_id, direction, detail,
                                       outcome, changes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(at)
        .bind(e.run_id)
        .bind(e.actor.clone())
        .bind(e.action.as_code())
        .bind(e.record_kind.clone())
        .bind(e.record_id.clone())
        .bind(e.direction.map(Direction::as_code))
        .bind(e.detail.clone())
        .bind(e.action.outcome().as_code())
        .bind(e.changes.as_ref().map(|c| c.to_string()))
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

    /// How many `action` events `record_id` has.
    pub async fn count_audit(
        &self,
        record_id: &str,
        action: AuditAction,
    ) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_events WHERE record_id = $1 AND action = $2"
        )
        .bind(record_id)
        .bind(action.as_code())
        .fetch_one(p)
        .await)?)
    }

    /// A page of events, newest first, older than `before` (keyset pagination).
    /// The newest events of one action since `since`, up to `limit`: (record id, when, detail).
    pub async fn recent_of_action(
        &self,
        action: AuditAction,
        since: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<(String, OffsetDateTime, String)>, StoreError> {
        let sql = "SELECT record_id, at, detail FROM audit_events
                   WHERE action = $1 AND at >= $2 ORDER BY id DESC LIMIT $3";
        let backend = self.backend();
        Ok(on_pool!(self, |p| {
            let q = sqlx::query_as(sql).bind(action.as_code());
            let q = match backend {
                Backend::Sqlite => q.bind(sqlite_time_bound(since)),
                Backend::Postgres => q.bind(since),
            };
            q.bind(limit).fetch_all(p).await
        })?)
    }

    pub async fn list_audit(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut sql = String::from(
            "SELECT id, at, run_id, actor, action, record_kind, record_id, direction, detail, outcome, changes
             FROM audit_events WHERE id < $1",
        );
        let mut n = 2;
        let mut param = || {
            n += 1;
            format!("${n}")
        };
        if !filter.records.is_empty() {
            // One equality per record, so that each can use the index.
            let any: Vec<String> = filter
                .records
                .iter()
                .map(|_| format!("record_id = {}", param()))
                .collect();
            sql.push_str(&format!(" AND ({})", any.join(" OR ")));
        }
        for (on, clause) in [
            (filter.run_id.is_some(), "run_id ="),
            (filter.direction.is_some(), "direction ="),
            (filter.outcome.is_some(), "outcome ="),
            (filter.since.is_some(), "at >="),
            (filter.until.is_some(), "at <"),
        ] {
            if on {
                sql.push_str(&format!(" AND {clause} {}", param()));
            }
        }
        sql.push_str(" ORDER BY id DESC LIMIT $2");
        let sqlite = self.backend() == Backend::Sqlite;
        let rows: Vec<Row> = on_pool!(self, |p| {
            let mut q = sqlx::query_as(&sql)
                .bind(before.unwrap_or(i64::MAX))
                .bind(limit);
            for record in &filter.records {
                q = q.bind(record.clone());
            }
            if let Some(run) = filter.run_id {
                q = q.bind(run);
            }
            if let Some(d) = filter.direction {
                q = q.bind(d.as_code());
            }
            if let Some(o) = filter.outcome {
                q = q.bind(o.as_code());
            }
            for bound in [filter.since, filter.until].into_iter().flatten() {
                q = if sqlite {
                    q.bind(sqlite_time_bound(bound))
                } else {
                    q.bind(bound)
                };
            }
            q.fetch_all(p).await
        })?;
        rows.into_iter().map(AuditEvent::try_from).collect()
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
        let event = |record: &str, action: AuditAction| NewAuditEvent {
            direction: Some(Direction::ToCrm),
            changes: (action == AuditAction::OpportunityUpdated)
                .then(|| serde_json::json!([{ "path": "/name", "from": "a", "to": "b" }])),
            ..NewAuditEvent::new(action, "referral", record, format!("{action:?} {record}"))
        };
        let a = store
            .record_audit(&event("r1", AuditAction::OpportunityCreated), now)
            .await
            .unwrap();
        let b = store
            .record_audit(&event("r2", AuditAction::OpportunityUnchanged), now)
            .await
            .unwrap();
        let c = store
            .record_audit(&event("r1", AuditAction::OpportunityUpdated), now)
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
        let r1 = store
            .list_audit(&AuditFilter::record("r1"), None, 10)
            .await
            .unwrap();
        assert_eq!(r1.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c, a]);
        assert_eq!(r1[0].direction.as_deref(), Some("to_crm"));
        assert_eq!(r1[0].changes.as_ref().unwrap()[0]["to"], "b");
        let both = AuditFilter {
            records: vec!["r1".into(), "r2".into()],
            ..Default::default()
        };
        assert_eq!(store.list_audit(&both, None, 10).await.unwrap().len(), 3);
        let skips = AuditFilter {
            outcome: Some(AuditOutcome::Skip),
            direction: Some(Direction::ToCrm),
            since: Some(now - time::Duration::minutes(1)),
            until: Some(now + time::Duration::minutes(1)),
            ..Default::default()
        };
        let skips = store.list_audit(&skips, None, 10).await.unwrap();
        assert_eq!(skips.iter().map(|e| e.id).collect::<Vec<_>>(), vec![b]);
        let other_way = AuditFilter {
            direction: Some(Direction::ToPartnerCenter),
            ..Default::default()
        };
        assert!(
            store
                .list_audit(&other_way, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
