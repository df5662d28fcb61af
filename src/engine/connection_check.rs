//! "Test connection": prove that a connection works for what the flows need — Partner Center access as a
//! Referrals admin; a Dynamics 365 user with the System Administrator or System Customizer role — and
//! store the diagnosis the Connections page shows.

use super::Engine;
use super::tokens::TokenProblem;
use crate::clients::http::CallError;
use crate::clients::partner_center::referrals::AUDIENCE as REFERRALS;
use crate::clients::partner_center::webhook_registration::AUDIENCE as WEBHOOKS;
use crate::domain::connection::{Diagnosis, System, crm_roles_sufficient};
use crate::store::StoreError;
use time::OffsetDateTime;

/// What a test found: fine (with what was checked), or a diagnosis.
pub type CheckResult = Result<String, Diagnosis>;

impl Engine {
    pub async fn check_connection(&self, system: System) -> Result<CheckResult, StoreError> {
        let result = match system {
            System::PartnerCenter => self.check_partner_center().await,
            System::Dynamics365 => self.check_dynamics().await,
            System::Salesforce => Err(Diagnosis::Unreachable),
        };
        let now = OffsetDateTime::now_utc();
        match &result {
            Ok(_) => self.store.set_diagnosis(system, None, now).await?,
            Err(Diagnosis::Unreachable) => {}
            Err(d) => self.store.set_diagnosis(system, Some(*d), now).await?,
        }
        Ok(result)
    }

    /// Counts a call against the day's quota; a failure to count does not fail the test.
    async fn count(&self, system: System) {
        if let Err(e) = self
            .store
            .count_api_calls(system.as_code(), 1, OffsetDateTime::now_utc())
            .await
        {
            tracing::warn!(error = %e, "could not count an API call");
        }
    }

    async fn token(
        &self,
        system: System,
        resource: &str,
    ) -> Result<crate::crypto::Secret, Diagnosis> {
        self.tokens
            .token(system, resource)
            .await
            .map_err(|p| match p {
                TokenProblem::Diagnosed(_, d) => d,
                TokenProblem::NotConnected(_) => Diagnosis::ConsentMissing,
                TokenProblem::Store(_) => Diagnosis::Unreachable,
            })
    }

    async fn check_partner_center(&self) -> CheckResult {
        let token = self.token(System::PartnerCenter, REFERRALS).await?;
        self.count(System::PartnerCenter).await;
        self.referrals.probe(&token).await.map_err(|e| judge(&e))?;
        // The webhook registration API is another audience of the same consent.
        self.token(System::PartnerCenter, WEBHOOKS).await?;
        Ok("Partner Center answered: the account can read referrals as a Referrals admin.".into())
    }

    async fn check_dynamics(&self) -> CheckResult {
        let (Some(client), Some(resource)) = (
            self.dynamics.as_ref(),
            self.endpoints.dynamics_resource.as_deref(),
        ) else {
            return Err(Diagnosis::Unreachable);
        };
        let token = self.token(System::Dynamics365, resource).await?;
        self.count(System::Dynamics365).await;
        let user = client.who_am_i(&token).await.map_err(|e| match e {
            CallError::Forbidden(_) => Diagnosis::NotAMember,
            other => judge(&other),
        })?;
        self.count(System::Dynamics365).await;
        let roles = client
            .role_templates(&token, &user)
            .await
            .map_err(|e| judge(&e))?;
        crm_roles_sufficient(&roles)?;
        Ok("Dynamics 365 answered: the account holds the System Administrator or System Customizer role.".into())
    }
}

fn judge(e: &CallError) -> Diagnosis {
    match e {
        CallError::Forbidden(_) => Diagnosis::MissingRole,
        // A token Entra just issued and the API refuses: MFA or consent no longer satisfied.
        CallError::Unauthorized(_) => Diagnosis::MfaRequired,
        _ => Diagnosis::Unreachable,
    }
}
