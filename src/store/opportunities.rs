//! The CRM's opportunities as cosell last saw them (the change feed keeps them current), with the last
//! readiness check and sync result.
//!
//! The CRM stays the record of truth: this is a mirror for listing and searching, never a source for
//! what is sent to Partner Center (a run reads the opportunity from the CRM again).

use super::{Store, StoreError, on_pool};
use crate::domain::opportunity::{OpportunityState, Problem};
use serde_json::Value;
use time::OffsetDateTime;

/// What the change feed (or a run) saw of an opportunity.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenOpportunity {
    pub crm_id: String,
    pub name: String,
    pub referral_id: Option<String>,
    pub referral_link: Option<String>,
    /// The customer account.
    pub customer_id: Option<String>,
    pub sync: bool,
    pub state: OpportunityState,
    pub version: Option<String>,
    /// The Microsoft solution ids as the change feed last saw them. Only the feed sets them (None from
    /// anyone else keeps what it saw), so it compares each row with its own previous reading.
    pub solutions: Option<Vec<String>>,
    /// [`Opportunity::fingerprint`](crate::domain::opportunity::Opportunity::fingerprint) as the
    /// change feed last saw it, kept like `solutions`.
    pub fingerprint: Option<String>,
}

/// An opportunity as the Opportunities page lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct MirroredOpportunity {
    pub seen: SeenOpportunity,
    /// The failing rules at the last check (empty: ready), None when never checked.
    pub problems: Option<Vec<Problem>>,
    pub last_result: Option<String>,
    pub last_run_id: Option<i64>,
    pub last_synced_at: Option<OffsetDateTime>,
    /// The Partner Center fields cosell last sent for it (JSON Pointer → value).
    pub pushed: Option<Value>,
    /// The CRM row version cosell's own last write produced (a change at this version is our echo).
    pub written_version: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    crm_id: String,
    name: String,
    referral_id: Option<String>,
    referral_link: Option<String>,
    customer_id: Option<String>,
    sync: bool,
    state: String,
    version: Option<String>,
    problems: Option<String>,
    last_result: Option<String>,
    last_run_id: Option<i64>,
    last_synced_at: Option<OffsetDateTime>,
    pushed: Option<String>,
    written_version: Option<String>,
    solutions: Option<String>,
    fingerprint: Option<String>,
}

const COLUMNS: &str = "crm_id, name, referral_id, referral_link, customer_id, sync, state, version, problems, \
                       last_result, last_run_id, last_synced_at, pushed, written_version, solutions, fingerprint";

fn state_code(s: OpportunityState) -> &'static str {
    match s {
        OpportunityState::Open => "open",
        OpportunityState::Won => "won",
        OpportunityState::Lost => "lost",
    }
}

impl TryFrom<Row> for MirroredOpportunity {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("opportunity {}: {what}", r.crm_id));
        let state = match r.state.as_str() {
            "open" => OpportunityState::Open,
            "won" => OpportunityState::Won,
            "lost" => OpportunityState::Lost,
            _ => return Err(corrupt("state")),
        };
        let json = |s: &Option<String>| {
            s.as_deref()
                .map(serde_json::from_str::<Value>)
                .transpose()
                .map_err(|_| corrupt("JSON"))
        };
        let problems = json(&r.problems)?
            .map(serde_json::from_value::<Vec<Problem>>)
            .transpose()
            .map_err(|_| corrupt("problems"))?;
        let pushed = json(&r.pushed)?;
        let solutions = json(&r.solutions)?
            .map(serde_json::from_value::<Vec<String>>)
            .transpose()
            .map_err(|_| corrupt("solutions"))?;
        Ok(MirroredOpportunity {
            seen: SeenOpportunity {
                crm_id: r.crm_id,
                name: r.name,
                referral_id: r.referral_id,
                referral_link: r.referral_link,
                customer_id: r.customer_id,
                sync: r.sync,
                state,
                version: r.version,
                solutions,
                fingerprint: r.fingerprint,
            },
            problems,
            last_result: r.last_result,
            last_run_id: r.last_run_id,
            last_synced_at: r.last_synced_at,
            pushed,
            written_version: r.written_version,
        })
    }
}

/// The upsert of what was seen of one opportunity, bound, ready for any executor (pool or transaction).
/// What cosell knows of it (last check, result, pushed fields) is kept.
macro_rules! upsert {
    ($o:expr, $at:expr) => {{
        let (o, at): (&SeenOpportunity, OffsetDateTime) = ($o, $at);
        sqlx::query(
            "INSERT INTO crm_opportunities (crm_id, name, name_key, referral_id, referral_link, sync, state,
                                            version, seen_at, customer_id, solutions, fingerprint)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (crm_id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key,
                 referral_id = excluded.referral_id, referral_link = excluded.referral_link,
                 sync = excluded.sync, state = excluded.state, version = excluded.version,
                 seen_at = excluded.seen_at, customer_id = excluded.customer_id,
                 solutions = COALESCE(excluded.solutions, crm_opportunities.solutions),
                 fingerprint = COALESCE(excluded.fingerprint, crm_opportunities.fingerprint)",
        )
        .bind(o.crm_id.clone())
        .bind(o.name.clone())
        .bind(o.name.to_lowercase())
        .bind(o.referral_id.clone())
        .bind(o.referral_link.clone())
        .bind(o.sync)
        .bind(state_code(o.state))
        .bind(o.version.clone())
        .bind(at)
        .bind(o.customer_id.clone())
        .bind(
            o.solutions
                .as_ref()
                .map(|s| serde_json::Value::from(s.clone()).to_string()),
        )
        .bind(o.fingerprint.clone())
    }};
}

/// Where a page of the opportunity list starts: after this (name, id).
pub type OpportunityCursor = (String, String);

/// The condition of the partial index `crm_opportunities_to_fix`, word for word: a planner uses a
/// partial index only when the query's condition visibly implies the index's.
pub(crate) const COUNT_TO_FIX: &str = "SELECT COUNT(*) FROM crm_opportunities
     WHERE sync AND problems IS NOT NULL AND problems <> '[]'";

impl Store {
    /// Records what was seen of an opportunity; returns what was known before, to tell what changed.
    pub async fn see_opportunity(
        &self,
        o: &SeenOpportunity,
        at: OffsetDateTime,
    ) -> Result<Option<MirroredOpportunity>, StoreError> {
        let before = self.opportunity(&o.crm_id).await?;
        self.record_seen(o, at).await?;
        Ok(before)
    }

    /// Records what was seen of an opportunity (for a caller that read what was known already).
    pub async fn record_seen(
        &self,
        o: &SeenOpportunity,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| upsert!(o, at).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Records an opportunity cosell has just written, and that its version is cosell's own, in one
    /// transaction: the change feed, reading the mirror meanwhile, sees both or neither (a row without
    /// its written version would pass for a seller's change).
    pub async fn record_own_opportunity_write(
        &self,
        o: &SeenOpportunity,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            upsert!(o, at).execute(&mut *tx).await?;
            sqlx::query("UPDATE crm_opportunities SET written_version = version WHERE crm_id = $1")
                .bind(&o.crm_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores many opportunities in one transaction: volume for benchmarks and tests.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn seed_opportunities(
        &self,
        rows: &[SeenOpportunity],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            let mut tx = p.begin().await?;
            for o in rows {
                upsert!(o, at).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// An opportunity deleted in the CRM leaves the list.
    pub async fn forget_opportunity(&self, crm_id: &str) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "DELETE FROM crm_opportunities WHERE crm_id = $1"
        )
        .bind(crm_id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    pub async fn opportunity(
        &self,
        crm_id: &str,
    ) -> Result<Option<MirroredOpportunity>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM crm_opportunities WHERE crm_id = $1");
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(crm_id)
            .fetch_optional(p)
            .await)?;
        row.map(MirroredOpportunity::try_from).transpose()
    }

    /// The open opportunities of a customer with "Sync with Partner Center" on.
    pub async fn synced_opportunities_of(
        &self,
        customer_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT crm_id FROM crm_opportunities
             WHERE customer_id = $1 AND sync = $2 AND state = 'open' ORDER BY crm_id"
        )
        .bind(customer_id)
        .bind(true)
        .fetch_all(p)
        .await)?)
    }

    /// Open opportunities linked to a referral whose "Sync with Partner Center" is off, up to `limit`:
    /// their changes no longer reach Partner Center.
    pub async fn linked_unsynced(
        &self,
        limit: i64,
    ) -> Result<Vec<MirroredOpportunity>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM crm_opportunities
             WHERE referral_id IS NOT NULL AND sync = $1 AND state = 'open'
             ORDER BY name_key, crm_id LIMIT $2"
        );
        let rows: Vec<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(false)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(MirroredOpportunity::try_from)
            .collect()
    }

    /// The opportunity linked to `referral_id`, if the mirror knows one.
    pub async fn opportunity_for_referral(
        &self,
        referral_id: &str,
    ) -> Result<Option<MirroredOpportunity>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM crm_opportunities WHERE referral_id = $1 ORDER BY crm_id LIMIT 1"
        );
        let row: Option<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(referral_id)
            .fetch_optional(p)
            .await)?;
        row.map(MirroredOpportunity::try_from).transpose()
    }

    /// How many opportunities have "Sync with Partner Center" on.
    pub async fn synced_count(&self) -> Result<i64, StoreError> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM crm_opportunities WHERE sync = $1"
        )
        .bind(true)
        .fetch_one(p)
        .await)?)
    }

    /// The synced opportunities whose last check failed a rule, up to `limit` (the Diagnostics lists).
    pub async fn opportunities_failing_rules(
        &self,
        limit: i64,
    ) -> Result<Vec<MirroredOpportunity>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM crm_opportunities
             WHERE sync = $1 AND problems IS NOT NULL AND problems <> '[]'
             ORDER BY name_key, crm_id LIMIT $2"
        );
        let rows: Vec<Row> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(true)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(MirroredOpportunity::try_from)
            .collect()
    }

    /// Every opportunity with "Sync with Partner Center" on, as last seen (what a reconciliation compares).
    pub async fn synced_opportunities(&self) -> Result<Vec<MirroredOpportunity>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM crm_opportunities WHERE sync = $1 ORDER BY crm_id");
        let rows: Vec<Row> =
            on_pool!(self, |p| sqlx::query_as(&sql).bind(true).fetch_all(p).await)?;
        rows.into_iter()
            .map(MirroredOpportunity::try_from)
            .collect()
    }

    /// A page of opportunities by name, after `after` (keyset). `search` matches a CRM id or a referral
    /// id exactly, or any part of the name, case-insensitively.
    pub async fn list_opportunities(
        &self,
        search: Option<&str>,
        after: Option<&OpportunityCursor>,
        limit: i64,
    ) -> Result<Vec<MirroredOpportunity>, StoreError> {
        let search = search.map(str::trim).filter(|s| !s.is_empty());
        // An id is looked up exactly, through its index; only when nothing has that id is it a name.
        if let Some(id) = search.filter(|s| after.is_none() && !s.contains(char::is_whitespace)) {
            let sql = format!(
                "SELECT {COLUMNS} FROM crm_opportunities WHERE crm_id = $1
                 UNION SELECT {COLUMNS} FROM crm_opportunities WHERE referral_id = $1"
            );
            let rows: Vec<Row> =
                on_pool!(self, |p| sqlx::query_as(&sql).bind(id).fetch_all(p).await)?;
            if !rows.is_empty() {
                return rows
                    .into_iter()
                    .map(MirroredOpportunity::try_from)
                    .collect();
            }
        }
        let mut sql =
            format!("SELECT {COLUMNS} FROM crm_opportunities WHERE (name_key, crm_id) > ($1, $2)");
        if search.is_some() {
            sql.push_str(" AND name_key LIKE $4 ESCAPE '\\'");
        }
        sql.push_str(" ORDER BY name_key, crm_id LIMIT $3");
        let (name, id) = after.cloned().unwrap_or_default();
        let rows: Vec<Row> = on_pool!(self, |p| {
            let mut q = sqlx::query_as(&sql)
                .bind(name.to_lowercase())
                .bind(id)
                .bind(limit);
            if let Some(s) = search {
                let like = format!(
                    "%{}%",
                    s.to_lowercase()
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                q = q.bind(like);
            }
            q.fetch_all(p).await
        })?;
        rows.into_iter()
            .map(MirroredOpportunity::try_from)
            .collect()
    }

    /// The outcome of a readiness check or a sync: the failing rules (empty: ready), a one-line result,
    /// the run, and, when Partner Center was brought in step, what it now holds.
    pub async fn record_sync_result(
        &self,
        crm_id: &str,
        problems: &[Problem],
        result: &str,
        run_id: Option<i64>,
        pushed: Option<&Value>,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let problems = serde_json::to_string(problems)
            .map_err(|e| StoreError::Corrupt(format!("problems: {e}")))?;
        on_pool!(self, |p| sqlx::query(
            "UPDATE crm_opportunities SET problems = $2, last_result = $3, last_run_id = $4,
                    last_synced_at = $5, pushed = COALESCE($6, pushed)
             WHERE crm_id = $1"
        )
        .bind(crm_id)
        .bind(problems)
        .bind(result)
        .bind(run_id)
        .bind(at)
        .bind(pushed.map(Value::to_string))
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Remembers the row version cosell's own write to the opportunity produced.
    pub async fn record_written_version(
        &self,
        crm_id: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "UPDATE crm_opportunities SET written_version = $2 WHERE crm_id = $1"
        )
        .bind(crm_id)
        .bind(version)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;
    use serde_json::json;

    /// Synced opportunities waiting for a fix, as the Overview counts them.
    async fn to_fix(store: &Store) -> i64 {
        let now = OffsetDateTime::now_utc();
        let crm = crate::domain::flows::Crm::Dynamics365;
        let facts = store.overview(crm, "opportunities", now, now).await;
        facts.unwrap().opportunities_to_fix
    }

    fn seen(id: &str, name: &str) -> SeenOpportunity {
        SeenOpportunity {
            crm_id: id.into(),
            name: name.into(),
            referral_id: None,
            referral_link: None,
            customer_id: Some("acc".into()),
            sync: false,
            state: OpportunityState::Open,
            version: Some("1".into()),
            solutions: None,
            fingerprint: None,
        }
    }

    #[tokio::test]
    async fn the_mirror_lists_by_name_searches_and_pages_by_keyset() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        for (id, name) in [
            ("c", "Contoso 100% cloud"),
            ("a", "adatum renewal"),
            ("b", "Fabrikam migration"),
            ("d", "Fabrikam_data"),
        ] {
            assert!(
                store
                    .see_opportunity(&seen(id, name), now)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        let names = |rows: Vec<MirroredOpportunity>| {
            rows.into_iter().map(|r| r.seen.crm_id).collect::<Vec<_>>()
        };
        let first = store.list_opportunities(None, None, 2).await.unwrap();
        let cursor = (first[1].seen.name.clone(), first[1].seen.crm_id.clone());
        assert_eq!(names(first), vec!["a", "c"]);
        let next = store
            .list_opportunities(None, Some(&cursor), 2)
            .await
            .unwrap();
        assert_eq!(names(next), vec!["b", "d"]);
        let fab = store
            .list_opportunities(Some("FABRIKAM"), None, 10)
            .await
            .unwrap();
        assert_eq!(names(fab), vec!["b", "d"]);
        let pct = store
            .list_opportunities(Some("100%"), None, 10)
            .await
            .unwrap();
        assert_eq!(names(pct), vec!["c"], "% is literal");
        let under = store
            .list_opportunities(Some("m_m"), None, 10)
            .await
            .unwrap();
        assert!(under.is_empty(), "_ is literal");

        let mut linked = seen("b", "Fabrikam migration");
        linked.referral_id = Some("ref-9".into());
        linked.version = Some("2".into());
        let before = store.see_opportunity(&linked, now).await.unwrap().unwrap();
        assert_eq!(before.seen.version.as_deref(), Some("1"));
        let by_ref = store
            .list_opportunities(Some("ref-9"), None, 10)
            .await
            .unwrap();
        assert_eq!(names(by_ref), vec!["b"]);
        let mut synced = seen("a", "adatum renewal");
        synced.sync = true;
        store.see_opportunity(&synced, now).await.unwrap();
        assert_eq!(
            store.synced_opportunities_of("acc").await.unwrap(),
            vec!["a"]
        );
        assert!(
            store
                .synced_opportunities_of("other")
                .await
                .unwrap()
                .is_empty()
        );
        store.forget_opportunity("d").await.unwrap();
        assert!(store.opportunity("d").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn sync_results_are_kept() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        store.see_opportunity(&seen("a", "A"), now).await.unwrap();
        let problems = vec![Problem::SolutionMissing, Problem::ContactMissing];
        store
            .record_sync_result("a", &problems, "2 rules fail", Some(7), None, now)
            .await
            .unwrap();
        let pushed = json!({ "/name": "A" });
        store
            .record_sync_result("a", &[], "Referral created", Some(8), Some(&pushed), now)
            .await
            .unwrap();
        store
            .record_sync_result("a", &[], "Nothing changed", Some(9), None, now)
            .await
            .unwrap();
        store.record_written_version("a", "5").await.unwrap();
        let a = store.opportunity("a").await.unwrap().unwrap();
        assert_eq!(a.problems, Some(vec![]));
        assert_eq!(a.last_run_id, Some(9));
        assert_eq!(a.pushed, Some(pushed), "kept when a sync sends nothing");
        assert_eq!(a.written_version.as_deref(), Some("5"));
        assert_eq!(to_fix(&store).await, 0, "ready now, and not synced");
        // Seeing the row again keeps what cosell knows of it.
        store.see_opportunity(&seen("a", "A2"), now).await.unwrap();
        assert_eq!(
            store.opportunity("a").await.unwrap().unwrap().last_run_id,
            Some(9)
        );

        let mut synced = seen("b", "B");
        synced.sync = true;
        store.see_opportunity(&synced, now).await.unwrap();
        store
            .record_sync_result(
                "b",
                &[Problem::SolutionMissing],
                "1 rule fails",
                None,
                None,
                now,
            )
            .await
            .unwrap();
        assert_eq!(to_fix(&store).await, 1);
    }

    #[tokio::test]
    async fn cosells_own_write_is_recorded_with_its_version_as_its_own() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let written = SeenOpportunity {
            sync: true,
            version: Some("7".into()),
            ..seen("a", "A")
        };
        store
            .record_own_opportunity_write(&written, now)
            .await
            .unwrap();
        let a = store.opportunity("a").await.unwrap().unwrap();
        assert_eq!(a.seen, written);
        assert_eq!(a.written_version.as_deref(), Some("7"));
    }

    #[tokio::test]
    async fn what_the_feed_saw_of_the_solutions_is_kept_until_it_sees_them_again() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let fed = SeenOpportunity {
            solutions: Some(vec!["SOL-1".into(), "SOL-2".into()]),
            fingerprint: Some("f1".into()),
            ..seen("a", "A")
        };
        store.see_opportunity(&fed, now).await.unwrap();
        // A run's read says nothing of them: the feed's reading stays.
        let by_run = SeenOpportunity {
            version: Some("2".into()),
            ..seen("a", "A")
        };
        let before = store.see_opportunity(&by_run, now).await.unwrap().unwrap();
        assert_eq!(before.seen, fed);
        let a = store.opportunity("a").await.unwrap().unwrap();
        assert_eq!(a.seen.version.as_deref(), Some("2"));
        assert_eq!(a.seen.solutions, fed.solutions);
        assert_eq!(a.seen.fingerprint.as_deref(), Some("f1"));
        let emptied = SeenOpportunity {
            solutions: Some(vec![]),
            fingerprint: Some("f2".into()),
            ..seen("a", "A")
        };
        store.see_opportunity(&emptied, now).await.unwrap();
        let a = store.opportunity("a").await.unwrap().unwrap();
        assert_eq!(a.seen.solutions, Some(vec![]));
        assert_eq!(a.seen.fingerprint.as_deref(), Some("f2"));
    }
}
