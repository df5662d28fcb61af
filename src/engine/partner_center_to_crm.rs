//! "Partner Center to CRM": read the referral a webhook named, then, through the two child flows, match
//! or create the customer account and contacts ("Helper") and create or update the opportunity
//! ("Referral Updates"), and write the CRM id back to the referral as `externalReferenceId`.
//!
//! Safe to run again from the top: the opportunity is found by the id the referral carries or by the
//! referral id stored on it, the account by name + postal code, contacts by e-mail; only changed
//! fields are written, so our own write-back (which Partner Center announces as `referral-updated`)
//! comes back as "no change" rather than an echo. Written once, against the CRM port.

use super::context::{CallFailure, RunContext, StepError};
use super::crm::{CrmError, CrmPort, Customer, NewCustomer};
use crate::clients::http::CallError;
use crate::clients::partner_center::referrals::AUDIENCE as PARTNER_CENTER;
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::opportunity::{Opportunity, OpportunityState, Person};
use crate::domain::referral::{OpportunityDraft, Referral, Standing};
use crate::domain::runs::{AuditAction, Direction, FailureCause, RunInput, RunStatus, StepOutcome};
use serde_json::json;

pub(super) async fn run(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    referral_id: &str,
    changed_at: Option<(&str, &str)>,
) -> Result<(RunStatus, String), StepError> {
    let engine = ctx.engine();
    if referral_id.is_empty() {
        return Err(StepError::Permanent(
            FailureCause::Other,
            "The run's input names no referral.".into(),
        ));
    }
    let referral_id = referral_id.to_string();
    if let Some((event, at)) = changed_at
        && super::echoes::is_own(ctx, event, &referral_id, at).await?
    {
        let why = format!(
            "Partner Center announced cosell's own write to referral {referral_id} (changed at {at}): nothing to read or sync."
        );
        ctx.decide("Recognise cosell's own write", StepOutcome::Skipped, &why)
            .await?;
        audit(
            ctx,
            AuditAction::EchoSuppressed,
            "referral",
            &referral_id,
            &why,
        )
        .await?;
        return Ok((RunStatus::Skipped, why));
    }

    let fetched = ctx
        .calls()
        .call(
            "Get the referral from Partner Center",
            System::PartnerCenter,
            PARTNER_CENTER,
            |t| {
                let id = referral_id.clone();
                async move { engine.referrals.get(&t, &id).await }
            },
        )
        .await;
    let referral = match fetched {
        Ok(r) => r,
        Err(CallFailure::Refused(_, CallError::NotFound(_))) => {
            let why = format!(
                "Referral {referral_id} no longer exists in Partner Center: nothing to sync."
            );
            audit(
                ctx,
                AuditAction::ReferralSkippedMissing,
                "referral",
                &referral_id,
                &why,
            )
            .await?;
            return Ok((RunStatus::Skipped, why));
        }
        Err(e) => return Err(e.into_step_error()),
    };

    let opportunity_id = match into_crm(ctx, crm, &referral).await? {
        Synced::Skipped(why) => return Ok((RunStatus::Skipped, why)),
        Synced::To(id) => id,
    };

    // Write the CRM id back, unless Partner Center already has it or the referral is final.
    if referral.crm_id() != Some(opportunity_id.as_str()) && referral.standing() == Standing::Open {
        // `add`, not `replace`: a referral without a CRM id has no such member, and `replace` needs one
        // (RFC 6902 §4.3); `add` on an existing member replaces its value (§4.1).
        let ops = json!([{ "op": "add", "path": "/externalReferenceId", "value": opportunity_id }]);
        let _writing = engine.in_flight.begin(Some(&referral.id));
        let patched = ctx
            .calls()
            .call(
                "Write the CRM id back to the referral",
                System::PartnerCenter,
                PARTNER_CENTER,
                |t| {
                    let (id, tag, ops) = (referral.id.clone(), referral.e_tag.clone(), ops.clone());
                    async move { engine.referrals.patch(&t, &id, &tag, &ops).await }
                },
            )
            .await;
        match patched {
            Ok(updated) => super::echoes::remember(ctx, &updated).await?,
            // Changed since we read it: read again on the next attempt and write back then.
            Err(CallFailure::Refused(_, CallError::PreconditionFailed(m))) => {
                return Err(StepError::Transient(
                    format!("Partner Center: the referral changed while we synced it ({m})"),
                    None,
                ));
            }
            Err(e) => return Err(e.into_step_error()),
        }
        audit(
            ctx,
            AuditAction::ReferralLinked,
            "referral",
            &referral.id,
            &format!("externalReferenceId set to opportunity {opportunity_id}."),
        )
        .await?;
    }
    Ok((
        RunStatus::Succeeded,
        format!(
            "Referral {} is in sync with opportunity {opportunity_id}.",
            referral.id
        ),
    ))
}

/// What the CRM side of a referral came to.
#[derive(Debug, PartialEq)]
pub(super) enum Synced {
    /// Nothing done, on purpose (audited).
    Skipped(String),
    /// The opportunity the referral is now in step with.
    To(String),
}

/// The CRM side of a referral: find its opportunity (by the CRM id it names, or by its referral id),
/// then, through the child flows, the account and contacts, and the opportunity created or updated.
pub(super) async fn into_crm(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    referral: &Referral,
) -> Result<Synced, StepError> {
    let label = crm.system().label();
    // Salesforce's "Sync Co-sell opportunity": unless the admin said otherwise, only co-sell and
    // pipeline-sharing deals become opportunities (partner-center.md §3.4).
    if crm.crm() == crate::domain::system::Crm::Salesforce && referral.is_lead() {
        let mapping = ctx.engine().mapping().await.map_err(StepError::store)?;
        if !mapping.sync_leads {
            let why = format!(
                "Referral {} is a lead, not a co-sell opportunity: only co-sell and pipeline-sharing deals go into {label} (turn on “Sync leads too” on the Mapping page to change that).",
                referral.id
            );
            ctx.decide("Decide", StepOutcome::Skipped, &why).await?;
            audit(
                ctx,
                AuditAction::ReferralSkippedLead,
                "referral",
                &referral.id,
                &why,
            )
            .await?;
            return Ok(Synced::Skipped(why));
        }
    }

    // The opportunity this referral is about, if any.
    let existing = match referral.crm_id() {
        Some(crm_id) => {
            let found = crm.opportunity(&ctx.calls(), crm_id).await?;
            if found.is_none() {
                // Documented behaviour of Microsoft's connectors: a CRM id that does not exist means
                // the create or update is ignored (partner-center.md §3.5).
                let why = format!(
                    "Referral {} names CRM id {crm_id}, which does not exist in {label}: the update was ignored. \
                     Correct the CRM ID in Partner Center (or clear it to create a new opportunity).",
                    referral.id
                );
                ctx.decide("Find the opportunity by CRM id", StepOutcome::Skipped, &why)
                    .await?;
                audit(
                    ctx,
                    AuditAction::ReferralIgnoredUnknownCrmId,
                    "referral",
                    &referral.id,
                    &why,
                )
                .await?;
                return Ok(Synced::Skipped(why));
            }
            found
        }
        None => {
            crm.opportunity_by_referral(&ctx.calls(), &referral.id)
                .await?
        }
    };

    if existing.is_none() && referral.standing() != Standing::Open {
        let why = format!(
            "Referral {} is closed ({}/{}) and has no opportunity: none was created.",
            referral.id, referral.status, referral.substatus
        );
        ctx.decide("Decide", StepOutcome::Skipped, &why).await?;
        audit(
            ctx,
            AuditAction::ReferralSkippedClosed,
            "referral",
            &referral.id,
            &why,
        )
        .await?;
        return Ok(Synced::Skipped(why));
    }

    // Dynamics 365's catalog has a Helper flow for the account and contacts; Salesforce's has none,
    // and "Referral Updates" does that work itself (partner-center.md §3.2).
    let customer = if Flow::Helper.exists_for(crm.crm()) {
        let customer = ctx
            .child(Flow::Helper, RunInput::referral(&referral.id), |child| {
                let referral = referral.clone();
                async move { helper(&child, crm, &referral).await }
            })
            .await?;
        Some(customer)
    } else {
        None
    };
    let account_id = match &customer {
        Some(Customer::Existing(id)) => Some(id.clone()),
        _ => None,
    };

    let opportunity_id = ctx
        .child(
            Flow::ReferralUpdatesToCrm,
            RunInput::Referral {
                referral_id: referral.id.clone(),
                account_id: account_id.clone(),
            },
            |child| {
                let referral = referral.clone();
                let existing = existing.clone();
                async move {
                    let customer = match customer {
                        Some(customer) => customer,
                        None => helper(&child, crm, &referral).await?.0,
                    };
                    updates(&child, crm, &referral, existing, &customer).await
                }
            },
        )
        .await?;
    Ok(Synced::To(opportunity_id))
}

async fn audit(
    ctx: &RunContext<'_>,
    action: AuditAction,
    kind: &str,
    id: &str,
    detail: &str,
) -> Result<(), StepError> {
    ctx.audit(action, kind, id, Some(Direction::ToCrm), detail.to_string())
        .await
        .map_err(StepError::store)
}

/// "Partner Center to CRM - Helper": the customer account by name + postal code, and its contacts by
/// e-mail (the whole team in one query). A matched account gets the contacts it lacks now; a customer
/// no account matches is made with its opportunity (in one call where the CRM allows it).
async fn helper(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    referral: &Referral,
) -> Result<(Customer, String), StepError> {
    let calls = ctx.calls();
    let profile = &referral.customer_profile;
    if profile.name.trim().is_empty() {
        return Err(StepError::Permanent(
            FailureCause::Data,
            format!(
                "Referral {} has no customer name, so no account can be matched or created. Ask the Microsoft seller to complete it, then resubmit.",
                referral.id
            ),
        ));
    }
    let postal = profile.address.postal_code.clone().unwrap_or_default();
    let matched = crm.match_account(&calls, &profile.name, &postal).await?;
    let mut team: Vec<Person> = Vec::new();
    for member in &profile.team {
        let Some(email) = member
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            continue;
        };
        if team.iter().any(|p| {
            p.email
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(email))
        }) {
            continue;
        }
        team.push(Person {
            first_name: member.first_name.clone(),
            last_name: member.last_name.clone(),
            email: Some(email.to_string()),
            phone: member.phone_number.clone(),
        });
    }
    let emails: Vec<String> = team.iter().filter_map(|p| p.email.clone()).collect();
    let known = crm.known_contacts(&calls, &emails).await?;
    let new_contacts: Vec<Person> = team
        .into_iter()
        .filter(|p| {
            p.email
                .as_deref()
                .is_some_and(|e| !known.contains(&e.to_ascii_lowercase()))
        })
        .collect();
    let Some(account_id) = matched else {
        return Ok((
            Customer::New(NewCustomer {
                name: profile.name.clone(),
                address: profile.address.clone(),
                contacts: new_contacts,
            }),
            format!(
                "No account “{}” {postal}: it is made with the opportunity.",
                profile.name
            ),
        ));
    };
    audit(
        ctx,
        AuditAction::AccountMatched,
        "account",
        &account_id,
        &format!("“{}” {postal} matched.", profile.name),
    )
    .await?;
    for contact in &new_contacts {
        let id = crm.create_contact(&calls, contact, &account_id).await?;
        audit(
            ctx,
            AuditAction::ContactCreated,
            "contact",
            &id,
            &format!(
                "{} created for account {account_id}.",
                contact.email.as_deref().unwrap_or_default()
            ),
        )
        .await?;
    }
    Ok((
        Customer::Existing(account_id.clone()),
        format!("Account {account_id} matched."),
    ))
}

/// "Partner Center Microsoft Co-sell Referral Updates to CRM": create the opportunity, or update the
/// fields that differ; close it when the referral closed.
async fn updates(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    referral: &Referral,
    existing: Option<Opportunity>,
    customer: &Customer,
) -> Result<(String, String), StepError> {
    let calls = ctx.calls();
    let label = crm.system().label();
    let draft = OpportunityDraft::of(referral);
    let currency_id = match draft.currency.as_deref() {
        None => None,
        Some(code) => match ctx.engine().currency_id(crm, &calls, code).await? {
            Some(id) => Some(id),
            None => {
                return Err(StepError::Permanent(
                    FailureCause::Data,
                    format!(
                        "The currency {code} of referral {} is not set up in {label}. {}",
                        referral.id,
                        crm.currency_fix()
                    ),
                ));
            }
        },
    };
    let store = &ctx.engine().store;
    // A create whose answer is lost is found by its referral id on the next attempt.
    let pending = ctx.pending_create("opportunity", &referral.id);
    let Some(current) = existing else {
        pending.begin().await?;
        let written = match crm
            .create_opportunity(&calls, &draft, customer, currency_id.as_deref())
            .await
        {
            Ok(written) => written,

            Err(
                e @ (CrmError::Transient { .. }
                | CrmError::AllocationSpent { .. }
                | CrmError::LeaseLost),
            ) => {
                return Err(e.into());
            }
            // Refused for good: nothing was made. Perhaps for a currency removed since cosell
            // remembered it: read them again next time.
            Err(e) => {
                ctx.engine().forget_currencies();
                pending.end().await?;
                return Err(e.into());
            }
        };
        let id = written.id;
        let account_id = match (&written.made, customer) {
            (Some(made), _) => made.account_id.clone(),
            (None, Customer::Existing(account_id)) => account_id.clone(),
            (None, Customer::New(_)) => String::new(),
        };
        // Known as cosell's own write at once, so the change feed does not take it for a seller's
        // change (a feed that reads it before this is told by the run it queues).
        store
            .record_own_opportunity_write(
                &crate::store::SeenOpportunity {
                    crm_id: id.clone(),
                    name: draft.name.clone(),
                    referral_id: Some(draft.referral_id.clone()),
                    referral_link: Some(draft.referral_link.clone()),
                    customer_id: Some(account_id).filter(|a| !a.is_empty()),
                    sync: true,
                    state: OpportunityState::Open,
                    version: Some(written.version.clone()),
                    solutions: None,
                    fingerprint: None,
                },
                time::OffsetDateTime::now_utc(),
            )
            .await
            .map_err(StepError::store)?;
        if let Some(made) = &written.made {
            audit(
                ctx,
                AuditAction::AccountCreated,
                "account",
                &made.account_id,
                &format!(
                    "“{}” {} created with opportunity {id}.",
                    referral.customer_profile.name,
                    referral
                        .customer_profile
                        .address
                        .postal_code
                        .as_deref()
                        .unwrap_or_default()
                ),
            )
            .await?;
            for (email, contact) in &made.contacts {
                audit(
                    ctx,
                    AuditAction::ContactCreated,
                    "contact",
                    contact,
                    &format!("{email} created for account {}.", made.account_id),
                )
                .await?;
            }
        }
        audit(
            ctx,
            AuditAction::OpportunityCreated,
            "opportunity",
            &id,
            &format!(
                "Created from referral {} (“{}”).",
                referral.id, referral.name
            ),
        )
        .await?;
        pending.end().await?;
        return Ok((id.clone(), format!("Opportunity {id} created.")));
    };
    let id = current.id.clone();
    if pending.was_under_way().await? {
        audit(
            ctx,
            AuditAction::OpportunityCreated,
            "opportunity",
            &id,
            &format!(
                "Created from referral {} (“{}”); {label}'s answer to the create was lost, and this attempt found it by the referral id.",
                referral.id, referral.name
            ),
        )
        .await?;
        pending.end().await?;
    }
    if current.state != OpportunityState::Open {
        let why = format!(
            "Opportunity {id} is closed in {label} (read-only): the referral's changes were not applied."
        );
        ctx.decide("Update the opportunity", StepOutcome::Skipped, &why)
            .await?;
        audit(
            ctx,
            AuditAction::OpportunityReadonlySkipped,
            "opportunity",
            &id,
            &why,
        )
        .await?;
        return Ok((id, why));
    }
    let changes = draft.changes(&current, currency_id.as_deref());
    if changes.is_empty() {
        ctx.decide(
            "Update the opportunity",
            StepOutcome::Skipped,
            "Already up to date.",
        )
        .await?;
        audit(
            ctx,
            AuditAction::OpportunityUnchanged,
            "opportunity",
            &id,
            &format!("Referral {} brought no change.", referral.id),
        )
        .await?;
    } else {
        match crm.update_opportunity(&calls, &current, &changes).await {
            Ok(version) => store
                .record_written_version(&id, &version)
                .await
                .map_err(StepError::store)?,
            // Someone (a seller, or cosell's other direction) wrote in between: read again on the
            // next attempt rather than overwrite their change.
            Err(CrmError::Conflict(_)) => {
                return Err(StepError::Transient(
                    format!("Opportunity {id} changed in {label} while cosell updated it"),
                    None,
                ));
            }
            Err(e) => return Err(e.into()),
        }
        audit(
            ctx,
            AuditAction::OpportunityUpdated,
            "opportunity",
            &id,
            &format!(
                "From referral {}: {} changed.",
                referral.id,
                changes.fields().join(", ")
            ),
        )
        .await?;
    }
    let standing = referral.standing();
    if standing != Standing::Open {
        let won = standing == Standing::Won;
        crm.close_opportunity(&calls, &id, won).await?;
        audit(
            ctx,
            AuditAction::OpportunityClosed,
            "opportunity",
            &id,
            &format!(
                "Referral {} is {}/{}: opportunity closed as {}.",
                referral.id,
                referral.status,
                referral.substatus,
                if won { "won" } else { "lost" }
            ),
        )
        .await?;
    }
    Ok((id.clone(), format!("Opportunity {id} brought up to date.")))
}
