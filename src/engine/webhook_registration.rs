//! "Partner Center Webhook Registration", run by an admin from the Flows page: register the callback URL
//! for the chosen events. Partner Center keeps one registration per partner, so an existing one for
//! another URL is replaced only when the admin said "overwrite".

use super::context::{CallFailure, RunContext, StepError};
use crate::clients::partner_center::webhook_registration::{AUDIENCE, Registration};
use crate::domain::connection::System;
pub use crate::domain::runs::RegistrationInput;
use crate::domain::runs::{AuditAction, Direction, FailureCause, RunStatus, StepOutcome};

/// The events the co-sell flows need (partner-center.md §2).
pub const REFERRAL_EVENTS: [&str; 4] = [
    "referral-created",
    "referral-updated",
    "related-referral-created",
    "related-referral-updated",
];

pub(super) async fn run(
    ctx: &RunContext<'_>,
    input: &RegistrationInput,
) -> Result<(RunStatus, String), StepError> {
    let engine = ctx.engine();
    let current = ctx
        .calls()
        .call(
            "View the current registration",
            System::PartnerCenter,
            AUDIENCE,
            |t| async move { engine.webhooks.view(&t).await },
        )
        .await
        .map_err(CallFailure::into_step_error)?;
    let wanted = Registration {
        webhook_url: input.callback_url.clone(),
        webhook_events: input.events.clone(),
    };
    if let Some(existing) = &current {
        if existing.is(&wanted) {
            let why = "This registration is already in place: nothing to change.".to_string();
            ctx.decide("Register", StepOutcome::Skipped, &why).await?;
            return Ok((RunStatus::Succeeded, why));
        }
        if !input.overwrite {
            let why = format!(
                "Partner Center already sends events to {} ({}). Choose “Overwrite” to replace that registration with this one.",
                existing.webhook_url,
                existing.webhook_events.join(", ")
            );
            ctx.decide("Register", StepOutcome::Failed, &why).await?;
            return Err(StepError::Permanent(FailureCause::Refused, why));
        }
    }
    let saved = ctx
        .calls()
        .call(
            if current.is_some() {
                "Update the registration"
            } else {
                "Register the webhook"
            },
            System::PartnerCenter,
            AUDIENCE,
            |t| {
                let (wanted, exists) = (wanted.clone(), current.is_some());
                async move { engine.webhooks.put(&t, &wanted, exists).await }
            },
        )
        .await
        .map_err(CallFailure::into_step_error)?;
    let detail = format!(
        "Partner Center now sends {} to {}{}.",
        saved.webhook_events.join(", "),
        saved.webhook_url,
        match &current {
            Some(old) if old.webhook_url != saved.webhook_url =>
                format!(" (replacing {})", old.webhook_url),
            _ => String::new(),
        }
    );
    ctx.audit(
        AuditAction::WebhookRegistered,
        "webhook",
        &saved.webhook_url,
        Some(Direction::ToCrm),
        detail.clone(),
    )
    .await
    .map_err(StepError::store)?;
    Ok((RunStatus::Succeeded, detail))
}
