//! Dynamics 365 calls as steps of a run: the organization's client and token audience, with the
//! find/create helpers the flows share.

use super::Engine;
use super::context::{CallFailure, RunContext, StepError};
use crate::clients::dynamics::DynamicsClient;
use crate::clients::http::CallError;
use crate::crypto::Secret;
use crate::domain::connection::System;
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
