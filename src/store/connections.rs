//! Connections: who connected which system, the sealed refresh token, and the current diagnosis.
//!
//! Refresh tokens rotate at every use (Entra returns a new one each time). With several instances on one
//! PostgreSQL database, two may refresh at once: [`Store::rotate_refresh_token`] is a compare-and-swap on
//! `token_version`, so the loser learns it lost and rereads instead of overwriting the winner's token.

use super::{Store, StoreError, on_pool};
use crate::crypto::{SealingKey, Secret};
use crate::domain::connection::{Diagnosis, System};
use time::OffsetDateTime;

/// What an admin's consent produced.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub system: System,
    pub account_name: String,
    pub account_username: String,
    pub account_object_id: String,
    pub tenant_id: String,
    /// The CRM organization or instance URL, for CRM connections.
    pub instance_url: Option<String>,
    pub refresh_token: Secret,
    /// The dashboard user (object id) who connected it.
    pub connected_by: String,
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub system: System,
    pub account_name: String,
    pub account_username: String,
    pub account_object_id: String,
    pub tenant_id: String,
    pub instance_url: Option<String>,
    pub refresh_token: Secret,
    pub token_version: i64,
    pub connected_by: String,
    pub connected_at: OffsetDateTime,
    pub refreshed_at: Option<OffsetDateTime>,
    pub diagnosis: Option<Diagnosis>,
}

#[derive(sqlx::FromRow)]
struct Row {
    system: String,
    account_name: String,
    account_username: String,
    account_object_id: String,
    tenant_id: String,
    instance_url: Option<String>,
    refresh_token_sealed: String,
    token_version: i64,
    connected_by: String,
    connected_at: OffsetDateTime,
    refreshed_at: Option<OffsetDateTime>,
    diagnosis: Option<String>,
}

/// The associated data binding a sealed token to its row: a token copied to another row does not open.
fn context(system: System) -> String {
    format!("connections:{}:refresh_token", system.as_code())
}

impl Row {
    fn open(self, key: &SealingKey) -> Result<Connection, StoreError> {
        let system = System::from_code(&self.system)
            .ok_or_else(|| StoreError::Corrupt(format!("system {:?}", self.system)))?;
        let token = key
            .open(&self.refresh_token_sealed, &context(system))
            .map_err(|e| StoreError::Sealed(e.to_string()))?;
        Ok(Connection {
            system,
            account_name: self.account_name,
            account_username: self.account_username,
            account_object_id: self.account_object_id,
            tenant_id: self.tenant_id,
            instance_url: self.instance_url,
            refresh_token: Secret::new(
                String::from_utf8(token).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            ),
            token_version: self.token_version,
            connected_by: self.connected_by,
            connected_at: self.connected_at,
            refreshed_at: self.refreshed_at,
            diagnosis: self.diagnosis.as_deref().and_then(Diagnosis::from_code),
        })
    }
}

impl Store {
    /// Saves a fresh connection (replacing any previous one for the system), with no diagnosis.
    pub async fn save_connection(
        &self,
        c: &NewConnection,
        key: &SealingKey,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let sealed = key.seal(c.refresh_token.expose().as_bytes(), &context(c.system));
        on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO connections (system, account_name, account_username, account_object_id, tenant_id, instance_url,
                                      refresh_token_sealed, token_version, connected_by, connected_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9)
             ON CONFLICT (system) DO UPDATE SET
                account_name = excluded.account_name, account_username = excluded.account_username,
                account_object_id = excluded.account_object_id, tenant_id = excluded.tenant_id,
                instance_url = excluded.instance_url, refresh_token_sealed = excluded.refresh_token_sealed,
                token_version = connections.token_version + 1, connected_by = excluded.connected_by,
                connected_at = excluded.connected_at, refreshed_at = NULL, diagnosis = NULL, diagnosed_at = NULL"
        )
        .bind(c.system.as_code())
        .bind(&c.account_name)
        .bind(&c.account_username)
        .bind(&c.account_object_id)
        .bind(&c.tenant_id)
        .bind(&c.instance_url)
        .bind(&sealed)
        .bind(&c.connected_by)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    pub async fn connection(
        &self,
        system: System,
        key: &SealingKey,
    ) -> Result<Option<Connection>, StoreError> {
        let row: Option<Row> = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT system, account_name, account_username, account_object_id, tenant_id, instance_url,
                    refresh_token_sealed, token_version, connected_by, connected_at, refreshed_at, diagnosis
             FROM connections WHERE system = $1"
        )
        .bind(system.as_code())
        .fetch_optional(p)
        .await
        })?;
        row.map(|r| r.open(key)).transpose()
    }

    /// Stores the refresh token that replaced the one read at `expected_version`. False: another instance
    /// rotated it first (reread and use theirs).
    pub async fn rotate_refresh_token(
        &self,
        system: System,
        expected_version: i64,
        new_token: &Secret,
        key: &SealingKey,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sealed = key.seal(new_token.expose().as_bytes(), &context(system));
        let changed = on_pool!(self, |p| {
            sqlx::query(
            "UPDATE connections SET refresh_token_sealed = $1, token_version = token_version + 1, refreshed_at = $2,
                    diagnosis = NULL, diagnosed_at = NULL
             WHERE system = $3 AND token_version = $4"
        )
        .bind(&sealed)
        .bind(at)
        .bind(system.as_code())
        .bind(expected_version)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// Records what is wrong with a connection (or clears it).
    pub async fn set_diagnosis(
        &self,
        system: System,
        diagnosis: Option<Diagnosis>,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "UPDATE connections SET diagnosis = $1, diagnosed_at = $2 WHERE system = $3"
        )
        .bind(diagnosis.map(Diagnosis::as_code))
        .bind(diagnosis.map(|_| at))
        .bind(system.as_code())
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Holds every call to `system` until `until`, for `reason` (it asked to slow down, or its
    /// allocation is spent): runs that need it wait rather than call. The latest answer wins.
    pub async fn hold_system(
        &self,
        system: System,
        until: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query(
            "UPDATE connections SET held_until = $1, held_reason = $2 WHERE system = $3"
        )
        .bind(until)
        .bind(reason)
        .bind(system.as_code())
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// The systems held past `now`, until when and why.
    pub async fn holds(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(System, OffsetDateTime, String)>, StoreError> {
        let rows: Vec<(String, OffsetDateTime, Option<String>)> = on_pool!(self, |p| {
            sqlx::query_as(
            "SELECT system, held_until, held_reason FROM connections WHERE held_until IS NOT NULL"
        )
        .fetch_all(p)
        .await
        })?;
        Ok(rows
            .into_iter()
            .filter(|(_, until, _)| *until > now)
            .filter_map(|(system, until, reason)| {
                Some((
                    System::from_code(&system)?,
                    until,
                    reason.unwrap_or_default(),
                ))
            })
            .collect())
    }

    pub async fn delete_connection(&self, system: System) -> Result<bool, StoreError> {
        let n = on_pool!(self, |p| sqlx::query(
            "DELETE FROM connections WHERE system = $1"
        )
        .bind(system.as_code())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;

    fn new_connection(token: &str) -> NewConnection {
        super::super::test_support::new_connection(System::PartnerCenter, token)
    }

    async fn partner_center(store: &Store, key: &SealingKey) -> Connection {
        store
            .connection(System::PartnerCenter, key)
            .await
            .unwrap()
            .expect("connection stored")
    }

    /// A store holding a Partner Center connection with refresh token `token`.
    async fn connected(token: &str) -> (TestDatabase, Store, SealingKey, OffsetDateTime) {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let key = SealingKey::generate();
        let now = OffsetDateTime::now_utc();
        store
            .save_connection(&new_connection(token), &key, now)
            .await
            .unwrap();
        (db, store, key, now)
    }

    #[tokio::test]
    async fn tokens_are_sealed_at_rest_and_open_with_the_key() {
        let (_db, store, key, _) = connected("0.secret-refresh-token").await;

        let c = partner_center(&store, &key).await;
        assert_eq!(c.refresh_token.expose(), "0.secret-refresh-token");
        assert_eq!(c.account_name, "Adele Vance");
        assert!(c.diagnosis.is_none());
        assert!(
            store
                .connection(System::DYNAMICS_365, &key)
                .await
                .unwrap()
                .is_none()
        );

        let raw: String = on_pool!(store, |p| sqlx::query_scalar(
            "SELECT refresh_token_sealed FROM connections"
        )
        .fetch_one(p)
        .await)
        .unwrap();
        assert!(
            !raw.contains("secret-refresh-token"),
            "never in the clear: {raw}"
        );
        // Another key cannot open it, and says so rather than returning garbage.
        let err = store
            .connection(System::PartnerCenter, &SealingKey::generate())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Sealed(_)), "{err}");
    }

    #[tokio::test]
    async fn rotation_is_a_compare_and_swap() {
        let (_db, store, key, now) = connected("rt-1").await;
        let read = partner_center(&store, &key).await;

        // Two instances read version v and both refreshed; the first to write wins.
        assert!(
            store
                .rotate_refresh_token(
                    System::PartnerCenter,
                    read.token_version,
                    &Secret::new("rt-2a"),
                    &key,
                    now
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .rotate_refresh_token(
                    System::PartnerCenter,
                    read.token_version,
                    &Secret::new("rt-2b"),
                    &key,
                    now
                )
                .await
                .unwrap()
        );
        let now_stored = partner_center(&store, &key).await;
        assert_eq!(now_stored.refresh_token.expose(), "rt-2a");
        assert_eq!(now_stored.token_version, read.token_version + 1);
        assert!(now_stored.refreshed_at.is_some());
    }

    #[tokio::test]
    async fn diagnoses_are_kept_until_fixed() {
        let (_db, store, key, now) = connected("rt-1").await;
        store
            .set_diagnosis(System::PartnerCenter, Some(Diagnosis::PasswordExpired), now)
            .await
            .unwrap();
        let c = partner_center(&store, &key).await;
        assert_eq!(c.diagnosis, Some(Diagnosis::PasswordExpired));
        // Reconnecting replaces the grant and clears the diagnosis.
        store
            .save_connection(&new_connection("rt-new"), &key, now)
            .await
            .unwrap();
        let c = partner_center(&store, &key).await;
        assert_eq!(c.diagnosis, None);
        assert_eq!(c.refresh_token.expose(), "rt-new");
        assert!(
            store
                .delete_connection(System::PartnerCenter)
                .await
                .unwrap()
        );
        assert!(
            !store
                .delete_connection(System::PartnerCenter)
                .await
                .unwrap()
        );
    }
}
