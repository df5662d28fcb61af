//! "Test connection": prove that a connection works for what the flows need — Partner Center access as a
//! Referrals admin; a CRM account whose role may run the connector (asked of the CRM port) — and store
//! the diagnosis the Connections page shows.

use super::Engine;
use crate::clients::partner_center::referrals::AUDIENCE as REFERRALS;
use crate::clients::partner_center::webhook_registration::AUDIENCE as WEBHOOKS;
use crate::domain::connection::{Diagnosis, System};
use crate::engine::context::CallFailure;
use crate::store::StoreError;
use time::OffsetDateTime;

/// What a test found: fine (with what was checked), or a diagnosis.
pub type CheckResult = Result<String, Diagnosis>;

impl Engine {
    /// Tests the connection now, stores what was found, and lets Diagnostics look again.
    pub async fn check_connection(&self, system: System) -> Result<CheckResult, StoreError> {
        let result = self.probe_connection(system).await;
        self.diagnostics.invalidate();
        if matches!(result, Ok(Ok(_))) {
            // Work paused for this connection goes now rather than at the next poll.
            self.nudge();
        }
        result
    }

    /// [`Engine::check_connection`] without touching Diagnostics' kept report: Diagnostics probes
    /// with it, and must not make its own report stale.
    pub(crate) async fn probe_connection(&self, system: System) -> Result<CheckResult, StoreError> {
        let result = match system {
            System::PartnerCenter => self.check_partner_center().await,
            System::Crm(crm) if crm == self.crm => match self.crm_port() {
                Ok(port) => port.check(&self.calls()).await.map_err(|e| e.diagnosis()),
                Err(_) => Err(Diagnosis::Unreachable),
            },
            // A CRM this instance is not set up for cannot be reached.
            System::Crm(_) => Err(Diagnosis::Unreachable),
        };
        let now = OffsetDateTime::now_utc();
        match &result {
            Ok(_) => self.store.set_diagnosis(system, None, now).await?,
            Err(Diagnosis::Unreachable) => {}
            Err(d) => self.store.set_diagnosis(system, Some(*d), now).await?,
        }
        // A credential alert opens or resolves now rather than at the next judging.
        self.alerts_due();
        Ok(result)
    }

    async fn check_partner_center(&self) -> CheckResult {
        self.calls()
            .call(
                "Read referrals",
                System::PartnerCenter,
                REFERRALS,
                |t| async move { self.referrals.probe(&t).await },
            )
            .await
            .map_err(|f| f.diagnosis())?;
        // The webhook registration API is another audience of the same consent: a token is enough.
        self.tokens
            .token(System::PartnerCenter, WEBHOOKS)
            .await
            .map_err(|p| CallFailure::NoToken(p).diagnosis())?;
        Ok("Partner Center answered: the account can read referrals as a Referrals admin.".into())
    }
}
