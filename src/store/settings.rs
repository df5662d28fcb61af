//! Dashboard settings (the field mapping and the like): JSON values by key, with who changed them last.
//!
//! Kept in the database, not in configuration, so that every instance sees an admin's change at once.

use super::{Store, StoreError, on_pool};
use serde_json::Value;
use time::OffsetDateTime;

impl Store {
    /// A dashboard setting (JSON), if it was ever saved.
    pub async fn setting(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT value FROM settings WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(p)
        .await)?;
        text.map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("setting {key}: {e}")))
    }

    pub async fn set_setting(
        &self,
        key: &str,
        value: &Value,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO settings (key, value, changed_by, changed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, changed_by = excluded.changed_by,
                 changed_at = excluded.changed_at"
        )
        .bind(key)
        .bind(value.to_string())
        .bind(by)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    /// Forgets a setting (no-op when it was never saved).
    pub async fn clear_setting(&self, key: &str) -> Result<(), StoreError> {
        on_pool!(self, |p| sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
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

    #[tokio::test]
    async fn settings_are_kept() {
        let db = TestDatabase::new().await;
        let store = Store::connect(db.url()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        assert_eq!(store.setting("mapping").await.unwrap(), None);
        store
            .set_setting("mapping", &json!({ "stages": [] }), "Adele", now)
            .await
            .unwrap();
        assert_eq!(
            store.setting("mapping").await.unwrap(),
            Some(json!({ "stages": [] }))
        );
    }
}
