//! Dynamics 365 calls as steps of a run (the organization's client and token audience, with the
//! find/create helpers the flows share), and the same calls made outside a run (the change feed, the
//! dashboard's switch).

use super::Engine;
use super::context::{CallFailure, RunContext, StepError};
use super::tokens::TokenProblem;
use crate::clients::dynamics::DynamicsClient;
use crate::clients::http::CallError;
use crate::crypto::Secret;
use crate::domain::connection::System;
use crate::store::StoreError;
use serde_json::{Map, Value};
use std::future::Future;

#[derive(Clone, Copy)]
pub(super) struct Crm<'a> {
    pub client: &'a DynamicsClient,
    pub resource: &'a str,
}

impl<'a> Crm<'a> {
    /// The configured organization, or the run fails saying how to configure it.
    pub fn of(engine: &'a Engine) -> Result<Crm<'a>, StepError> {
        match (
            engine.dynamics.as_ref(),
            engine.endpoints.dynamics_resource.as_deref(),
        ) {
            (Some(client), Some(resource)) => Ok(Crm { client, resource }),
            _ => Err(StepError::Permanent(
                "No Dynamics 365 organization is configured: set COSELL_DYNAMICS_URL and restart cosell."
                    .into(),
            )),
        }
    }

    /// One Dataverse call as a step of the run; a refusal fails the run with its fix.
    pub async fn call<T, Fut>(
        &self,
        ctx: &RunContext<'_>,
        step: &str,
        f: impl Fn(Secret) -> Fut,
    ) -> Result<T, StepError>
    where
        Fut: Future<Output = Result<T, CallError>>,
    {
        ctx.call(step, System::Dynamics365, self.resource, f)
            .await
            .map_err(CallFailure::into_step_error)
    }

    pub async fn find(
        &self,
        ctx: &RunContext<'_>,
        step: &str,
        (set, key): (&str, &str),
        matching: &[(&str, &str)],
    ) -> Result<Option<String>, StepError> {
        self.call(ctx, step, |t| async move {
            self.client.find(&t, set, key, matching).await
        })
        .await
    }

    pub async fn create(
        &self,
        ctx: &RunContext<'_>,
        step: &str,
        set: &str,
        fields: &Map<String, Value>,
    ) -> Result<String, StepError> {
        self.call(ctx, step, |t| async move {
            self.client.create(&t, set, fields).await
        })
        .await
    }
}

/// Why a Dynamics 365 call made outside a run gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum CrmCallError {
    #[error(
        "No Dynamics 365 organization is configured: set COSELL_DYNAMICS_URL and restart cosell."
    )]
    NotConfigured,
    #[error("{0}. {fix}", fix = .0.fix())]
    Token(#[from] TokenProblem),
    #[error("Dynamics 365: {0}")]
    Call(#[from] CallError),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Engine {
    /// One Dynamics 365 call outside a run: with the connection's token (refreshed once on a 401), each
    /// attempt counted against the day's calls.
    pub(crate) async fn crm_call<'a, T, F, Fut>(&'a self, f: F) -> Result<T, CrmCallError>
    where
        F: Fn(&'a DynamicsClient, Secret) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let (Some(client), Some(resource)) = (
            self.dynamics.as_ref(),
            self.endpoints.dynamics_resource.as_deref(),
        ) else {
            return Err(CrmCallError::NotConfigured);
        };
        let mut retried = false;
        loop {
            let token = self.tokens.token(System::Dynamics365, resource).await?;
            self.store
                .count_api_calls(
                    System::Dynamics365.as_code(),
                    1,
                    time::OffsetDateTime::now_utc(),
                )
                .await?;
            match f(client, token).await {
                Err(CallError::Unauthorized(_)) if !retried => {
                    // An access token revoked early: get a fresh one, once.
                    self.tokens.forget(System::Dynamics365);
                    retried = true;
                }
                other => return Ok(other?),
            }
        }
    }
}
