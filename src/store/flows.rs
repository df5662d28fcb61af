//! Which flows are switched on. A change is checked against the current states inside the transaction
//! that writes it, so two admins (or two instances) cannot together break the activation order.

use super::{Pool, Store, StoreError, on_pool};
use crate::domain::flows::{Crm, Flow};
use std::collections::BTreeSet;
use time::OffsetDateTime;

impl Store {
    pub async fn active_flows(&self, crm: Crm) -> Result<BTreeSet<Flow>, StoreError> {
        let codes: Vec<String> = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT flow FROM flow_states WHERE crm = $1 AND active = $2"
        )
        .bind(crm.as_code())
        .bind(true)
        .fetch_all(p)
        .await)?;
        Ok(codes.iter().filter_map(|c| Flow::from_code(c)).collect())
    }

    /// Switches `flows` to `active`, in order, if `check` accepts each step given the states of the moment
    /// (which include the steps already taken). The first refusal stops and rolls everything back.
    pub async fn set_flows_active<E>(
        &self,
        crm: Crm,
        flows: &[Flow],
        active: bool,
        by: &str,
        at: OffsetDateTime,
        check: impl Fn(Flow, &BTreeSet<Flow>) -> Result<(), E>,
    ) -> Result<Result<(), E>, StoreError> {
        const WRITE: &str = "INSERT INTO flow_states (crm, flow, active, changed_by, changed_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (crm, flow) DO UPDATE SET active = excluded.active,
                changed_by = excluded.changed_by, changed_at = excluded.changed_at";
        const READ: &str = "SELECT flow FROM flow_states WHERE crm = $1 AND active = $2";
        macro_rules! body {
            ($tx:ident) => {{
                let codes: Vec<String> = sqlx::query_scalar(READ)
                    .bind(crm.as_code())
                    .bind(true)
                    .fetch_all(&mut *$tx)
                    .await?;
                let mut current: BTreeSet<Flow> =
                    codes.iter().filter_map(|c| Flow::from_code(c)).collect();
                for &flow in flows {
                    if let Err(e) = check(flow, &current) {
                        $tx.rollback().await?;
                        return Ok(Err(e));
                    }
                    sqlx::query(WRITE)
                        .bind(crm.as_code())
                        .bind(flow.as_code())
                        .bind(active)
                        .bind(by)
                        .bind(at)
                        .execute(&mut *$tx)
                        .await?;
                    if active {
                        current.insert(flow);
                    } else {
                        current.remove(&flow);
                    }
                }
                $tx.commit().await?;
                Ok(Ok(()))
            }};
        }
        match &self.pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                // Take the write lock before reading: SQLite has one writer, and this makes it us.
                sqlx::query("UPDATE flow_states SET crm = crm WHERE 0")
                    .execute(&mut *tx)
                    .await?;
                body!(tx)
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cosell.flow_states'))")
                    .execute(&mut *tx)
                    .await?;
                body!(tx)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;
    use crate::domain::flows::{ActivationError, check_activate};

    #[tokio::test]
    async fn flows_switch_on_only_in_order_and_all_or_nothing() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let crm = Crm::Dynamics365;
        let now = OffsetDateTime::now_utc();
        let check = |flow: Flow, active: &BTreeSet<Flow>| -> Result<(), ActivationError> {
            check_activate(crm, flow, active, &|_| true)
        };
        let refused = store
            .set_flows_active(crm, &[Flow::Helper], true, "a", now, check)
            .await
            .unwrap();
        assert!(matches!(
            refused,
            Err(ActivationError::ChildInactive { .. })
        ));
        assert!(store.active_flows(crm).await.unwrap().is_empty());

        // A plan whose second step is refused leaves nothing switched on.
        let partial = store
            .set_flows_active(
                crm,
                &[Flow::Customize, Flow::PartnerCenterToCrm],
                true,
                "a",
                now,
                check,
            )
            .await
            .unwrap();
        assert!(partial.is_err());
        assert!(store.active_flows(crm).await.unwrap().is_empty());

        store
            .set_flows_active(crm, &[Flow::Customize, Flow::Helper], true, "a", now, check)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.active_flows(crm).await.unwrap(),
            BTreeSet::from([Flow::Customize, Flow::Helper])
        );
        store
            .set_flows_active(crm, &[Flow::Helper], false, "a", now, |_, _| {
                Ok::<(), ActivationError>(())
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.active_flows(crm).await.unwrap(),
            BTreeSet::from([Flow::Customize])
        );
        assert!(
            store
                .active_flows(Crm::Salesforce)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
