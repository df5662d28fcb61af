//! The CRM's currency ids, remembered for a few minutes: every referral with a deal value needs one,
//! and the currencies an organization has change a few times a year. A create refused for good makes
//! cosell read them again (perhaps the currency was removed).

use super::Engine;
use super::context::Calls;
use super::crm::{CrmError, CrmPort};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a currency id is trusted.
const KEPT: Duration = Duration::from_secs(600);

/// Currency code → (the CRM's id; when it was read).
#[derive(Debug, Default)]
pub(crate) struct Currencies(Mutex<HashMap<String, (Option<String>, Instant)>>);

impl Engine {
    /// The CRM's id of currency `code` (None when it is not configured), from the last few minutes'
    /// answer or one call.
    pub(crate) async fn currency_id(
        &self,
        crm: &dyn CrmPort,
        calls: &Calls<'_>,
        code: &str,
    ) -> Result<Option<String>, CrmError> {
        let remembered = self
            .currencies
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(code)
            .filter(|(_, at)| at.elapsed() < KEPT)
            .map(|(id, _)| id.clone());
        if let Some(id) = remembered {
            return Ok(id);
        }
        let id = crm.find_currency(calls, code).await?;
        // A missing currency is not remembered: the admin who adds it resubmits at once.
        if id.is_none() {
            return Ok(None);
        }
        self.currencies
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(code.to_string(), (id.clone(), Instant::now()));
        Ok(id)
    }

    /// Forgets the currencies read so far.
    pub(crate) fn forget_currencies(&self) {
        self.currencies
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
