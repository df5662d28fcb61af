//! What the Overview page shows, read in one query: the page is the first thing every admin opens, and
//! on PostgreSQL each round trip costs more than the reading itself (ten queries gave 675 requests/s).

use super::api_calls::day_of;
use super::runs::stored_status;
use super::{Pool, Store, StoreError, opportunities::COUNT_TO_FIX, sqlite_time_bound};
use crate::domain::connection::{Diagnosis, System};
use crate::domain::flows::{Crm, Flow};
use crate::domain::runs::RunStatus;
use std::collections::BTreeSet;
use time::OffsetDateTime;

/// A connection as the Overview judges it: who it runs as and what is wrong with it (no secret is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStanding {
    pub account_name: String,
    pub diagnosis: Option<Diagnosis>,
}

/// The last "Webhook Registration" run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRegistration {
    pub status: RunStatus,
    pub at: OffsetDateTime,
    pub outcome: Option<String>,
}

/// Everything the Overview's checks are made of, as of one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OverviewFacts {
    pub partner_center: Option<ConnectionStanding>,
    pub crm: Option<ConnectionStanding>,
    /// API calls made today (UTC) with the Partner Center connection, then with the CRM's.
    pub partner_center_calls: i64,
    pub crm_calls: i64,
    /// Runs waiting for a system's connection to be repaired, by system (systems with none left out).
    pub paused: Vec<(System, i64)>,
    pub active_flows: BTreeSet<Flow>,
    pub last_registration: Option<LastRegistration>,
    /// Runs that failed since the `since` given (top-level runs, as the charts and Diagnostics count
    /// them: a child fails inside its parent).
    pub failed_since: i64,
    pub opportunities_to_fix: i64,
    /// When the CRM's change feed was last read.
    pub crm_feed_polled_at: Option<OffsetDateTime>,
}

/// One row per fact: `kind` says which, the other columns carry it. Both databases accept this UNION ALL
/// as written (PostgreSQL resolves the untyped NULLs from the other branches).
const FACTS: &str = "
SELECT 'connection' AS kind, system AS k, CAST(NULL AS BIGINT) AS n, connected_at AS at,
       account_name AS t1, diagnosis AS t2
  FROM connections WHERE system IN ($1, $2)
UNION ALL
SELECT 'calls', system, CAST(SUM(calls) AS BIGINT), NULL, NULL, NULL
  FROM api_calls WHERE system IN ($1, $2) AND day = $3 GROUP BY system
UNION ALL
SELECT 'paused', paused_for, COUNT(*), NULL, NULL, NULL
  FROM runs WHERE paused_for IS NOT NULL AND status = 'queued' GROUP BY paused_for
UNION ALL
SELECT 'flow', flow, NULL, NULL, NULL, NULL FROM flow_states WHERE crm = $4 AND active = $5
UNION ALL
SELECT * FROM (SELECT 'registration', status, CAST(NULL AS BIGINT), created_at, outcome,
       CAST(NULL AS TEXT)
  FROM runs WHERE flow = $6 ORDER BY id DESC LIMIT 1) AS last_registration
UNION ALL
SELECT 'failed', NULL, COUNT(*), NULL, NULL, NULL FROM runs
 WHERE status = $7 AND created_at >= $8 AND parent_run_id IS NULL
UNION ALL
SELECT 'to_fix', NULL, (COUNT_TO_FIX), NULL, NULL, NULL
UNION ALL
SELECT 'polled', NULL, NULL, polled_at, NULL, NULL FROM change_feeds WHERE feed = $9";

type FactRow = (
    String,
    Option<String>,
    Option<i64>,
    Option<OffsetDateTime>,
    Option<String>,
    Option<String>,
);

impl Store {
    /// The Overview's facts for `crm` (whose change feed is `feed`) at `now`; failed runs are counted
    /// from `since`.
    pub async fn overview(
        &self,
        crm: Crm,
        feed: &str,
        now: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<OverviewFacts, StoreError> {
        let sql = FACTS.replace("(COUNT_TO_FIX)", &format!("({COUNT_TO_FIX})"));
        let crm_system = System::Crm(crm);
        macro_rules! query {
            ($since:expr) => {
                sqlx::query_as::<_, FactRow>(&sql)
                    .bind(System::PartnerCenter.as_code())
                    .bind(crm_system.as_code())
                    .bind(day_of(now))
                    .bind(crm.as_code())
                    .bind(true)
                    .bind(Flow::WebhookRegistration.as_code())
                    .bind(stored_status(RunStatus::Failed))
                    .bind($since)
                    .bind(feed)
            };
        }
        let rows = match &self.pool {
            Pool::Sqlite(p) => query!(sqlite_time_bound(since)).fetch_all(p).await?,
            Pool::Postgres(p) => query!(since).fetch_all(p).await?,
        };

        let mut facts = OverviewFacts::default();
        let system = |code: Option<&str>| {
            code.and_then(System::from_code)
                .ok_or_else(|| StoreError::Corrupt(format!("overview: system {code:?}")))
        };
        for (kind, key, n, at, t1, t2) in rows {
            match kind.as_str() {
                "connection" => {
                    let standing = ConnectionStanding {
                        account_name: t1.unwrap_or_default(),
                        diagnosis: t2.as_deref().and_then(Diagnosis::from_code),
                    };
                    if system(key.as_deref())? == System::PartnerCenter {
                        facts.partner_center = Some(standing);
                    } else {
                        facts.crm = Some(standing);
                    }
                }
                "calls" => {
                    if system(key.as_deref())? == System::PartnerCenter {
                        facts.partner_center_calls = n.unwrap_or(0);
                    } else {
                        facts.crm_calls = n.unwrap_or(0);
                    }
                }
                "paused" => facts.paused.push((system(key.as_deref())?, n.unwrap_or(0))),
                "flow" => facts
                    .active_flows
                    .extend(key.as_deref().and_then(Flow::from_code)),
                "registration" => {
                    let code = key.unwrap_or_default();
                    facts.last_registration = Some(LastRegistration {
                        status: RunStatus::from_code(&code).ok_or_else(|| {
                            StoreError::Corrupt(format!("overview: run status {code:?}"))
                        })?,
                        at: at.ok_or_else(|| {
                            StoreError::Corrupt("overview: registration without a time".into())
                        })?,
                        outcome: t1,
                    })
                }
                "failed" => facts.failed_since = n.unwrap_or(0),
                "to_fix" => facts.opportunities_to_fix = n.unwrap_or(0),
                "polled" => facts.crm_feed_polled_at = at,
                other => return Err(StoreError::Corrupt(format!("overview: fact {other:?}"))),
            }
        }
        facts.paused.sort_by_key(|(s, _)| s.as_code());
        Ok(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SealingKey;
    use crate::domain::opportunity::{OpportunityState, Problem};
    use crate::domain::runs::RunTrigger;
    use crate::store::SeenOpportunity;
    use crate::store::test_support::{TestDatabase, claim_and_end, new_connection, new_run, now};
    use time::Duration;

    /// A run of `flow` created at `at` and ended as `status`.
    async fn run_ending(store: &Store, flow: Flow, at: OffsetDateTime, status: RunStatus) {
        let mut run = new_run("r");
        run.flow = flow;
        run.trigger = RunTrigger::Manual;
        let id = store.enqueue_run(&run, at).await.unwrap();
        claim_and_end(store, id, status, None, at).await;
    }

    #[tokio::test]
    async fn the_overview_reads_every_fact_in_one_query() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = now();
        let since = now - Duration::hours(24);
        let crm = Crm::Dynamics365;
        let overview = || store.overview(crm, "opportunities", now, since);
        assert_eq!(overview().await.unwrap(), OverviewFacts::default());

        let key = SealingKey::generate();
        for system in [System::PartnerCenter, System::DYNAMICS_365] {
            store
                .save_connection(&new_connection(system, "0.token"), &key, now)
                .await
                .unwrap();
        }
        store
            .set_diagnosis(System::PartnerCenter, Some(Diagnosis::PasswordExpired), now)
            .await
            .unwrap();
        let pc = System::PartnerCenter.as_code();
        store.count_api_calls(pc, None, 3, now).await.unwrap();
        store
            .count_api_calls(pc, Some(Flow::PartnerCenterToCrm), 4, now)
            .await
            .unwrap();
        store
            .count_api_calls(pc, None, 100, now - Duration::days(1))
            .await
            .unwrap();
        store
            .count_api_calls(System::DYNAMICS_365.as_code(), None, 5, now)
            .await
            .unwrap();
        store
            .count_api_calls(System::Crm(Crm::Salesforce).as_code(), None, 9, now)
            .await
            .unwrap();
        store
            .set_flows_active(
                crm,
                &[Flow::WebhookRegistration, Flow::Customize],
                true,
                "admin",
                now,
                |_, _| Ok::<(), ()>(()),
            )
            .await
            .unwrap()
            .unwrap();
        // Failed two days ago (not counted), then failed, then registered.
        let reg = Flow::WebhookRegistration;
        run_ending(&store, reg, now - Duration::days(2), RunStatus::Failed).await;
        run_ending(&store, reg, now - Duration::hours(1), RunStatus::Failed).await;
        run_ending(&store, reg, now, RunStatus::Succeeded).await;
        let paused = store.enqueue_run(&new_run("p"), now).await.unwrap();
        store
            .claim_run("w", now, now + Duration::seconds(60))
            .await
            .unwrap();
        assert!(
            store
                .pause_run_for(paused, "w", System::PartnerCenter, "Reconnect")
                .await
                .unwrap()
        );
        let opportunity = SeenOpportunity {
            crm_id: "o".into(),
            name: "O".into(),
            referral_id: None,
            referral_link: None,
            customer_id: None,
            sync: true,
            state: OpportunityState::Open,
            version: Some("1".into()),
            solutions: None,
            fingerprint: None,
        };
        store.see_opportunity(&opportunity, now).await.unwrap();
        store
            .record_sync_result(
                "o",
                &[Problem::SolutionMissing],
                "1 rule fails",
                None,
                None,
                now,
            )
            .await
            .unwrap();
        store
            .set_change_feed("opportunities", "link", now)
            .await
            .unwrap();
        store.set_change_feed("other", "link", since).await.unwrap();

        let facts = overview().await.unwrap();
        assert_eq!(
            facts,
            OverviewFacts {
                partner_center: Some(ConnectionStanding {
                    account_name: "Adele Vance".into(),
                    diagnosis: Some(Diagnosis::PasswordExpired),
                }),
                crm: Some(ConnectionStanding {
                    account_name: "Adele Vance".into(),
                    diagnosis: None,
                }),
                partner_center_calls: 7,
                crm_calls: 5,
                paused: vec![(System::PartnerCenter, 1)],
                active_flows: [Flow::WebhookRegistration, Flow::Customize].into(),
                last_registration: Some(LastRegistration {
                    status: RunStatus::Succeeded,
                    at: now,
                    outcome: Some("it says why".into()),
                }),
                failed_since: 1,
                opportunities_to_fix: 1,
                crm_feed_polled_at: Some(now),
            }
        );
        // The same facts as the one-question-each methods give.
        assert_eq!(facts.paused, store.paused_runs().await.unwrap());
        assert_eq!(facts.active_flows, store.active_flows(crm).await.unwrap());
        assert_eq!(
            facts.partner_center_calls,
            store.api_calls_on(pc, now).await.unwrap()
        );
    }
}
