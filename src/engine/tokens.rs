//! Access tokens for the connections: refreshed from the sealed refresh token, rotated on every use
//! (compare-and-swap, so several instances agree), cached until shortly before they expire. A refusal
//! becomes the connection's diagnosis, shown on the Connections page.

use crate::clients::entra::EntraClient;
use crate::clients::salesforce::SalesforceOAuth;
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
    /// Salesforce signs its users in itself (its own OAuth), when the CRM is Salesforce.
    salesforce: Option<SalesforceOAuth>,
    cache: Mutex<HashMap<(System, String), (Secret, Instant)>>,
}

/// How long a Salesforce access token is used before it is refreshed: Salesforce says no lifetime
/// (crm-apis.md §3.2), sessions last 2 hours by default, and a 401 refreshes it earlier anyway.
const SALESFORCE_TOKEN_LIFE: Duration = Duration::from_secs(30 * 60);

/// A refreshed access token, whichever sign-in service gave it.
struct Refreshed {
    access_token: Secret,
    /// Set when the service rotated the refresh token.
    refresh_token: Option<Secret>,
    /// How long to use it.
    lasts: Duration,
}

/// Tokens are renewed this long before they expire, so none expires mid-call.
const MARGIN: Duration = Duration::from_secs(120);

impl TokenSource {
    /// The key secrets are sealed with at rest (connections' tokens, the alert channels' secrets).
    pub(crate) fn sealing_key(&self) -> &SealingKey {
        &self.key
    }

    pub fn new(store: Store, key: SealingKey, entra: EntraClient) -> TokenSource {
        TokenSource {
            store,
            key,
            entra,
            salesforce: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Salesforce connections refresh through this connected app.
    pub fn with_salesforce(self, oauth: SalesforceOAuth) -> TokenSource {
        TokenSource {
            salesforce: Some(oauth),
            ..self
        }
    }

    pub fn salesforce(&self) -> Option<&SalesforceOAuth> {
        self.salesforce.as_ref()
    }

    /// The connected account's id in `system` (Salesforce: the user id from the identity URL).
    pub async fn account_id(&self, system: System) -> Result<String, TokenProblem> {
        Ok(self
            .store
            .connection(system, &self.key)
            .await?
            .ok_or(TokenProblem::NotConnected(system))?
            .account_object_id)
    }

    /// Where the connected system's API is (Salesforce: the org's `instance_url`), as the connection
    /// recorded it.
    pub async fn instance_url(&self, system: System) -> Result<String, TokenProblem> {
        self.store
            .connection(system, &self.key)
            .await?
            .ok_or(TokenProblem::NotConnected(system))?
            .instance_url
            .ok_or(TokenProblem::Diagnosed(system, Diagnosis::ConsentMissing))
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
        let now = OffsetDateTime::now_utc();
        let refreshed = self
            .refresh(system, resource, &connection.refresh_token)
            .await;
        match refreshed {
            Ok(fresh) => {
                if let Some(rotated) = &fresh.refresh_token {
                    // The old refresh token is spent. Losing the race means another instance stored a
                    // newer one: keep theirs.
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
                self.clear_diagnosis(system, &connection, now).await?;
                let until = Instant::now() + fresh.lasts;
                self.lock().insert(key, (fresh.access_token.clone(), until));
                Ok(fresh.access_token)
            }
            Err((diagnosis, error)) => {
                tracing::warn!(system = system.as_code(), %error, "token refresh failed");
                if diagnosis != Diagnosis::Unreachable {
                    self.store
                        .set_diagnosis(system, Some(diagnosis), now)
                        .await?;
                }
                Err(TokenProblem::Diagnosed(system, diagnosis))
            }
        }
    }

    /// A new access token from the refresh token: Salesforce's own OAuth for a Salesforce connection,
    /// Entra ID for the rest. On refusal, the diagnosis and what was said.
    async fn refresh(
        &self,
        system: System,
        resource: &str,
        refresh_token: &Secret,
    ) -> Result<Refreshed, (Diagnosis, String)> {
        if system == System::SALESFORCE {
            let oauth = self.salesforce.as_ref().ok_or((
                Diagnosis::ClientCredentialsInvalid,
                "no Salesforce connected app is configured".to_string(),
            ))?;
            return oauth
                .refresh(refresh_token)
                .await
                .map(|grant| Refreshed {
                    access_token: grant.access_token,
                    refresh_token: grant.refresh_token,
                    lasts: SALESFORCE_TOKEN_LIFE,
                })
                .map_err(|e| (e.diagnosis(), e.to_string()));
        }
        let scope = format!("{resource}/user_impersonation");
        self.entra
            .refresh(refresh_token, &scope)
            .await
            .map(|grant| Refreshed {
                lasts: grant.expires_in.saturating_sub(MARGIN),
                access_token: grant.access_token,
                refresh_token: grant.refresh_token,
            })
            .map_err(|e| (e.diagnosis(), e.to_string()))
    }

    /// The stored connection of `system`, if any (Diagnostics reads its diagnosis and account).
    pub async fn stored(
        &self,
        system: System,
    ) -> Result<Option<crate::store::Connection>, StoreError> {
        self.store.connection(system, &self.key).await
    }

    /// Whether someone connected `system` (its consent may still need renewing).
    pub async fn connected(&self, system: System) -> Result<bool, StoreError> {
        Ok(self.store.connection(system, &self.key).await?.is_some())
    }

    /// A refresh that worked ends a sign-in diagnosis (a missing role stays until a check clears it).
    async fn clear_diagnosis(
        &self,
        system: System,
        connection: &crate::store::Connection,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if connection
            .diagnosis
            .is_some_and(|d| d != Diagnosis::MissingRole && d != Diagnosis::NotAMember)
        {
            self.store.set_diagnosis(system, None, now).await?;
        }
        Ok(())
    }

    /// Drops cached tokens of a system (after a 401, a reconnect or a disconnect).
    pub fn forget(&self, system: System) {
        self.lock().retain(|(s, _), _| *s != system);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(System, String), (Secret, Instant)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}
