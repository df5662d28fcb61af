//! People who signed in, and "sign out everywhere".

use super::{Store, StoreError, on_pool};
use crate::domain::{Access, SignedInUser, UserSummary};
use time::OffsetDateTime;

#[derive(sqlx::FromRow)]
struct UserRow {
    tenant_id: String,
    object_id: String,
    name: String,
    username: String,
    access: String,
    last_sign_in_at: OffsetDateTime,
    sessions_revoked_at: Option<OffsetDateTime>,
}

impl TryFrom<UserRow> for UserSummary {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(UserSummary {
            access: Access::from_code(&row.access)
                .ok_or_else(|| StoreError::Corrupt(format!("access {:?}", row.access)))?,
            tenant_id: row.tenant_id,
            object_id: row.object_id,
            name: row.name,
            username: row.username,
            last_sign_in_at: row.last_sign_in_at,
            sessions_revoked_at: row.sessions_revoked_at,
        })
    }
}

const USER_COLUMNS: &str =
    "tenant_id, object_id, name, username, access, last_sign_in_at, sessions_revoked_at";

impl Store {
    /// Records a sign-in: creates the user on first sign-in, refreshes display fields and access after.
    pub async fn record_sign_in(&self, user: &SignedInUser) -> Result<(), StoreError> {
        let at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(user.signed_in_at_ms) * 1_000_000)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on_pool!(self, |p| {
            sqlx::query(
                "INSERT INTO users (tenant_id, object_id, name, username, access, first_sign_in_at, last_sign_in_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (tenant_id, object_id) DO UPDATE SET
                    name = excluded.name, username = excluded.username,
                    access = excluded.access, last_sign_in_at = excluded.last_sign_in_at",
            )
            .bind(&user.tenant_id)
            .bind(&user.object_id)
            .bind(&user.name)
            .bind(&user.username)
            .bind(user.access.as_code())
            .bind(at)
            .execute(p)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Everyone who has signed in, most recent first.
    pub async fn list_users(&self, limit: i64) -> Result<Vec<UserSummary>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY last_sign_in_at DESC, tenant_id, object_id LIMIT $1"
        );
        let rows: Vec<UserRow> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(limit)
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(UserSummary::try_from).collect()
    }

    pub async fn get_user(
        &self,
        tenant_id: &str,
        object_id: &str,
    ) -> Result<Option<UserSummary>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 AND object_id = $2");
        let row: Option<UserRow> = on_pool!(self, |p| sqlx::query_as(&sql)
            .bind(tenant_id)
            .bind(object_id)
            .fetch_optional(p)
            .await)?;
        row.map(UserSummary::try_from).transpose()
    }

    /// Ends every session of this user that began before `at`. Returns false when the user is unknown.
    pub async fn revoke_sessions(
        &self,
        tenant_id: &str,
        object_id: &str,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = on_pool!(self, |p| sqlx::query(
            "UPDATE users SET sessions_revoked_at = $3 WHERE tenant_id = $1 AND object_id = $2"
        )
        .bind(tenant_id)
        .bind(object_id)
        .bind(at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(result > 0)
    }

    /// Whether the session of `user` began before their sessions were last revoked.
    pub async fn is_session_revoked(&self, user: &SignedInUser) -> Result<bool, StoreError> {
        let revoked: Option<Option<OffsetDateTime>> = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT sessions_revoked_at FROM users WHERE tenant_id = $1 AND object_id = $2"
        )
        .bind(&user.tenant_id)
        .bind(&user.object_id)
        .fetch_optional(p)
        .await)?;
        Ok(match revoked.flatten() {
            Some(at) => i128::from(user.signed_in_at_ms) <= at.unix_timestamp_nanos() / 1_000_000,
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::TestDatabase;
    use super::*;

    fn user(oid: &str, access: Access, at_seconds: i64) -> SignedInUser {
        SignedInUser {
            tenant_id: "tenant-1".into(),
            object_id: oid.into(),
            name: format!("User {oid}"),
            username: format!("{oid}@contoso.example"),
            access,
            signed_in_at_ms: at_seconds * 1000,
        }
    }

    #[tokio::test]
    async fn sign_ins_are_recorded_and_updated() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        store
            .record_sign_in(&user("a", Access::Viewer, 1_700_000_000))
            .await
            .unwrap();
        store
            .record_sign_in(&user("b", Access::NoRole, 1_700_000_100))
            .await
            .unwrap();
        let mut again = user("a", Access::Admin, 1_700_000_200);
        again.name = "Renamed".into();
        store.record_sign_in(&again).await.unwrap();

        let users = store.list_users(10).await.unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].object_id, "a", "most recent first");
        assert_eq!(users[0].name, "Renamed");
        assert_eq!(users[0].access, Access::Admin);
        assert_eq!(users[0].last_sign_in_at.unix_timestamp(), 1_700_000_200);
        assert_eq!(users[1].object_id, "b");
        assert_eq!(store.list_users(1).await.unwrap().len(), 1);
        assert!(store.get_user("tenant-1", "zzz").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn revoking_sessions_invalidates_older_sign_ins_only() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let first = user("a", Access::Admin, 1_700_000_000);
        store.record_sign_in(&first).await.unwrap();
        assert!(!store.is_session_revoked(&first).await.unwrap());

        let revoked_at = OffsetDateTime::from_unix_timestamp(1_700_000_050).unwrap();
        assert!(
            store
                .revoke_sessions("tenant-1", "a", revoked_at)
                .await
                .unwrap()
        );
        assert!(
            !store
                .revoke_sessions("tenant-1", "nobody", revoked_at)
                .await
                .unwrap()
        );
        assert!(store.is_session_revoked(&first).await.unwrap());

        // Same second as the revocation, a millisecond later: a new session, valid.
        let mut later = user("a", Access::Admin, 1_700_000_050);
        later.signed_in_at_ms += 1;
        store.record_sign_in(&later).await.unwrap();
        assert!(!store.is_session_revoked(&later).await.unwrap());
        let summary = store.get_user("tenant-1", "a").await.unwrap().unwrap();
        assert_eq!(summary.sessions_revoked_at, Some(revoked_at));
    }
}
