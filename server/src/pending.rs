//! Redirects in flight (sign-ins, connection consents), remembered in the browser's session and keyed by
//! the OAuth `state` they carry, so several tabs can each finish their own. Each is good for one answer
//! and for a limited time; a browser holds only a few, the oldest forgotten first.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use tower_sessions::Session;
use tower_sessions::session::Error;

/// Something started at a moment (unix seconds).
pub trait Started {
    fn started_at(&self) -> i64;
}

pub struct Pending {
    /// The session key.
    pub key: &'static str,
    pub ttl_seconds: i64,
    pub max: usize,
}

/// What [`Pending::take`] found.
pub struct Taken<T> {
    pub item: Option<T>,
    /// Whether the browser still has other redirects in flight (a wrong state rather than none at all).
    pub others: bool,
}

impl Pending {
    async fn load<T: DeserializeOwned + Started>(
        &self,
        session: &Session,
        now: i64,
    ) -> Result<BTreeMap<String, T>, Error> {
        let mut all: BTreeMap<String, T> = session.get(self.key).await?.unwrap_or_default();
        all.retain(|_, p| now - p.started_at() < self.ttl_seconds);
        Ok(all)
    }

    pub async fn push<T: Serialize + DeserializeOwned + Started>(
        &self,
        session: &Session,
        state: String,
        item: T,
        now: i64,
    ) -> Result<(), Error> {
        let mut all = self.load::<T>(session, now).await?;
        while all.len() >= self.max {
            let oldest = all
                .iter()
                .min_by_key(|(_, p)| p.started_at())
                .map(|(k, _)| k.clone())
                .expect("non-empty");
            all.remove(&oldest);
        }
        all.insert(state, item);
        session.insert(self.key, &all).await
    }

    /// Removes and returns the redirect `state` names, if it is still live.
    pub async fn take<T: Serialize + DeserializeOwned + Started>(
        &self,
        session: &Session,
        state: &str,
        now: i64,
    ) -> Result<Taken<T>, Error> {
        let mut all = self.load::<T>(session, now).await?;
        let item = all.remove(state);
        session.insert(self.key, &all).await?;
        Ok(Taken {
            item,
            others: !all.is_empty(),
        })
    }
}
