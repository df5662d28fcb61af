//! Access tokens for the connections: refreshed from the sealed refresh token, rotated on every use
//! (compare-and-swap, so several instances agree), cached until shortly before they expire. A refusal
//! becomes the connection's diagnosis, shown on the Connections page.

use crate::clients::entra::EntraClient;
use crate::crypto::{SealingKey, Secret};
use crate::domain::connection::{Diagnosis, System};
use crate::store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("{} is not connected", .0.label())]
    NotConnected(System),
    #[error("{}", .1.headline(*.0))]
    Diagnosed(System, Diagnosis),
    #[error("the database failed: {0}")]
    Store(String),
}

impl TokenProblem {
    /// What the admin should do, in one sentence.
    pub fn fix(&self) -> String {
        match self {
            TokenProblem::NotConnected(s) => {
                format!("Connect {} on the Connections page.", s.label())
            }
            TokenProblem::Diagnosed(s, d) => d.fix(*s),
            TokenProblem::Store(_) => "Check the database; cosell retries by itself.".into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TokenProblem::Diagnosed(_, Diagnosis::Unreachable) | TokenProblem::Store(_)
        )
    }
}

impl From<StoreError> for TokenProblem {
    fn from(e: StoreError) -> Self {
        TokenProblem::Store(e.to_string())
    }
}

pub struct TokenSource {
    store: Store,
    key: SealingKey,
    entra: EntraClient,
    cache: Mutex<HashMap<(System, String), (Secret, Instant)>>,
}

/// Tokens are renewed this long before they expire, so none expires mid-call.
const MARGIN: Duration = Duration::from_secs(120);

impl TokenSource {
    pub fn new(store: Store, key: SealingKey, entra: EntraClient) -> TokenSource {
        TokenSource {
            store,
            key,
            entra,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn entra(&self) -> &EntraClient {
        &self.entra
    }

    /// A token for `resource` (its audience), as the account connected for `system`.
    pub async fn token(&self, system: System, resource: &str) -> Result<Secret, TokenProblem> {
        let key = (system, resource.to_string());
        if let Some((token, until)) = self.lock().get(&key)
            && *until > Instant::now()
        {
            return Ok(token.clone());
        }
        let connection = self
            .store
            .connection(system, &self.key)
            .await?
            .ok_or(TokenProblem::NotConnected(system))?;
        let scope = format!("{resource}/user_impersonation");
        let now = OffsetDateTime::now_utc();
        match self.entra.refresh(&connection.refresh_token, &scope).await {
            Ok(grant) => {
                if let Some(rotated) = &grant.refresh_token {
                    // Losing the race means another instance stored a newer token: keep theirs.
                    self.store
                        .rotate_refresh_token(
                            system,
                            connection.token_version,
                            rotated,
                            &self.key,
                            now,
                        )
                        .await?;
                }
                if connection
                    .diagnosis
                    .is_some_and(|d| d != Diagnosis::MissingRole && d != Diagnosis::NotAMember)
                {
                    self.store.set_diagnosis(system, None, now).await?;
                }
                let until = Instant::now() + grant.expires_in.saturating_sub(MARGIN);
                self.lock().insert(key, (grant.access_token.clone(), until));
                Ok(grant.access_token)
            }
            Err(e) => {
                let diagnosis = e.diagnosis();
                tracing::warn!(system = system.as_code(), error = %e, "token refresh failed");
                if diagnosis != Diagnosis::Unreachable {
                    self.store
                        .set_diagnosis(system, Some(diagnosis), now)
                        .await?;
                }
                Err(TokenProblem::Diagnosed(system, diagnosis))
            }
        }
    }

    /// Whether someone connected `system` (its consent may still need renewing).
    pub async fn connected(&self, system: System) -> Result<bool, StoreError> {
        Ok(self.store.connection(system, &self.key).await?.is_some())
    }

    /// Drops cached tokens of a system (after a 401, a reconnect or a disconnect).
    pub fn forget(&self, system: System) {
        self.lock().retain(|(s, _), _| *s != system);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(System, String), (Secret, Instant)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}
