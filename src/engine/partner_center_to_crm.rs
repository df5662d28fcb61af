//! "Partner Center to Dynamics 365": read the referral a webhook named, then, through the two child
//! flows, match or create the customer account and contacts ("Helper") and create or update the
//! opportunity ("Referral Updates"), and write the CRM id back to the referral as `externalReferenceId`.
//!
//! Safe to run again from the top: the opportunity is found by the id the referral carries or by the
//! referral id stored on it, the account by name + postal code, contacts by e-mail; only changed
//! columns are written, so our own write-back (which Partner Center announces as `referral-updated`)
//! comes back as "no change" rather than an echo.

use super::context::{CallFailure, RunContext, StepError};
use super::crm::Crm;
use crate::clients::http::CallError;
use crate::clients::partner_center::referrals::AUDIENCE as PARTNER_CENTER;
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::referral::{self, Referral, Standing};
use crate::domain::runs::{Direction, RunStatus, StepOutcome};
use serde_json::{Map, Value, json};

const OPPORTUNITY_COLUMNS: &str = "name,estimatedvalue,estimatedclosedate,description,statecode,\
msp_syncwithpartnercenter,msp_referralid,msp_referrallink,_customerid_value,_transactioncurrencyid_value";

pub(super) async fn run(
    ctx: &RunContext<'_>,
    input: &Value,
) -> Result<(RunStatus, String), StepError> {
    let engine = ctx.engine();
    let referral_id = input["referral_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StepError::Permanent("The run's input names no referral.".into()))?
        .to_string();
    let crm = Crm::of(engine)?;

    let fetched = ctx
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
                "referral_skipped_missing",
                "referral",
                &referral_id,
                &why,
            )
            .await?;
            return Ok((RunStatus::Skipped, why));
        }
        Err(e) => return Err(e.into_step_error()),
    };

    // The opportunity this referral is about, if any.
    let existing = match referral.crm_id() {
        Some(crm_id) => {
            let found = get_opportunity(ctx, &crm, crm_id).await?;
            if found.is_none() {
                // Documented behaviour of Microsoft's connectors: a CRM id that does not exist means
                // the create or update is ignored (partner-center.md §3.5).
                let why = format!(
                    "Referral {} names CRM id {crm_id}, which does not exist in Dynamics 365: the update was ignored. \
                     Correct the CRM ID in Partner Center (or clear it to create a new opportunity).",
                    referral.id
                );
                ctx.decide("Find the opportunity by CRM id", StepOutcome::Skipped, &why)
                    .await?;
                audit(
                    ctx,
                    "referral_ignored_unknown_crm_id",
                    "referral",
                    &referral.id,
                    &why,
                )
                .await?;
                return Ok((RunStatus::Skipped, why));
            }
            found
        }
        None => find_by_referral_id(ctx, &crm, &referral.id).await?,
    };

    if existing.is_none() && referral.standing() != Standing::Open {
        let why = format!(
            "Referral {} is closed ({}/{}) and has no opportunity: none was created.",
            referral.id, referral.status, referral.substatus
        );
        ctx.decide("Decide", StepOutcome::Skipped, &why).await?;
        audit(
            ctx,
            "referral_skipped_closed",
            "referral",
            &referral.id,
            &why,
        )
        .await?;
        return Ok((RunStatus::Skipped, why));
    }

    let account_id = ctx
        .child(
            Flow::Helper,
            json!({ "referral_id": referral.id }),
            |child| {
                let referral = referral.clone();
                async move { helper(&child, &crm, &referral).await }
            },
        )
        .await?;

    let opportunity_id = ctx
        .child(
            Flow::ReferralUpdatesToCrm,
            json!({ "referral_id": referral.id, "account_id": account_id }),
            |child| {
                let referral = referral.clone();
                let existing = existing.clone();
                async move { updates(&child, &crm, &referral, existing, &account_id).await }
            },
        )
        .await?;

    // Write the CRM id back, unless Partner Center already has it or the referral is final.
    if referral.crm_id() != Some(opportunity_id.as_str()) && referral.standing() == Standing::Open {
        // `add`, not `replace`: a referral without a CRM id has no such member, and `replace` needs one
        // (RFC 6902 §4.3); `add` on an existing member replaces its value (§4.1).
        let ops = json!([{ "op": "add", "path": "/externalReferenceId", "value": opportunity_id }]);
        let patched = ctx
            .call(
                "Write the CRM id back to the referral",
                System::PartnerCenter,
                PARTNER_CENTER,
                |t| {
                    let (id, tag, ops) = (referral.id.clone(), referral.e_tag.clone(), ops.clone());
                    async move {
                        engine
                            .referrals
                            .patch(&t, &id, &tag, &ops)
                            .await
                            .map(|_| ())
                    }
                },
            )
            .await;
        match patched {
            Ok(()) => {}
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
            "referral_linked",
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

async fn audit(
    ctx: &RunContext<'_>,
    action: &str,
    kind: &str,
    id: &str,
    detail: &str,
) -> Result<(), StepError> {
    ctx.audit(action, kind, id, Some(Direction::ToCrm), detail.to_string())
        .await
        .map_err(StepError::store)
}

async fn get_opportunity(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    id: &str,
) -> Result<Option<Value>, StepError> {
    crm.call(ctx, "Find the opportunity by CRM id", |t| async move {
        crm.client
            .row(&t, "opportunities", id, OPPORTUNITY_COLUMNS)
            .await
    })
    .await
}

async fn find_by_referral_id(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    referral_id: &str,
) -> Result<Option<Value>, StepError> {
    let id = crm
        .find(
            ctx,
            "Find the opportunity by referral id",
            ("opportunities", "opportunityid"),
            &[("msp_referralid", referral_id)],
        )
        .await?;
    match id {
        Some(id) => get_opportunity(ctx, crm, &id).await,
        None => Ok(None),
    }
}

/// "Partner Center to Dynamics 365 - Helper": the customer account by name + postal code (created when
/// none matches), and its contacts by e-mail.
async fn helper(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    referral: &Referral,
) -> Result<(String, String), StepError> {
    let profile = &referral.customer_profile;
    if profile.name.trim().is_empty() {
        return Err(StepError::Permanent(format!(
            "Referral {} has no customer name, so no account can be matched or created. Ask the Microsoft seller to complete it, then resubmit.",
            referral.id
        )));
    }
    let postal = profile.address.postal_code.clone().unwrap_or_default();
    let found = crm
        .find(
            ctx,
            "Match the account by name and postal code",
            ("accounts", "accountid"),
            &[("name", &profile.name), ("address1_postalcode", &postal)],
        )
        .await?;
    let (account_id, how) = match found {
        Some(id) => {
            audit(
                ctx,
                "account_matched",
                "account",
                &id,
                &format!("“{}” {postal} matched.", profile.name),
            )
            .await?;
            (id, "matched")
        }
        None => {
            let fields = referral::account_fields(profile);
            let id = crm
                .create(ctx, "Create the account", "accounts", &fields)
                .await?;
            audit(
                ctx,
                "account_created",
                "account",
                &id,
                &format!("“{}” {postal} created.", profile.name),
            )
            .await?;
            (id, "created")
        }
    };
    for member in &profile.team {
        let Some(email) = member.email.as_deref().filter(|e| !e.trim().is_empty()) else {
            continue;
        };
        let found = crm
            .find(
                ctx,
                "Find the contact by e-mail",
                ("contacts", "contactid"),
                &[("emailaddress1", email)],
            )
            .await?;
        if found.is_none() {
            let mut fields = referral::contact_fields(member);
            fields.insert(
                "parentcustomerid_account@odata.bind".into(),
                Value::String(format!("/accounts({account_id})")),
            );
            let id = crm
                .create(ctx, "Create the contact", "contacts", &fields)
                .await?;
            audit(
                ctx,
                "contact_created",
                "contact",
                &id,
                &format!("{email} created for account {account_id}."),
            )
            .await?;
        }
    }
    Ok((account_id.clone(), format!("Account {account_id} {how}.")))
}

/// "Partner Center Microsoft Co-sell Referral Updates to Dynamics 365": create the opportunity, or
/// update the columns that differ; close it when the referral closed.
async fn updates(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    referral: &Referral,
    existing: Option<Value>,
    account_id: &str,
) -> Result<(String, String), StepError> {
    let mut fields = referral::opportunity_fields(referral);
    if let Some(code) = referral
        .details
        .currency
        .as_deref()
        .filter(|c| !c.is_empty())
    {
        let currency = crm
            .find(
                ctx,
                "Find the currency",
                ("transactioncurrencies", "transactioncurrencyid"),
                &[("isocurrencycode", code)],
            )
            .await?;
        match currency {
            Some(id) => {
                fields.insert(
                    "transactioncurrencyid@odata.bind".into(),
                    Value::String(format!("/transactioncurrencies({id})")),
                );
            }
            None => {
                return Err(StepError::Permanent(format!(
                    "The currency {code} of referral {} is not set up in Dynamics 365. Add it (Settings → Business Management → Currencies), then resubmit.",
                    referral.id
                )));
            }
        }
    }
    let Some(current) = existing else {
        fields.insert(
            "customerid_account@odata.bind".into(),
            Value::String(format!("/accounts({account_id})")),
        );
        let id = crm
            .create(ctx, "Create the opportunity", "opportunities", &fields)
            .await?;
        audit(
            ctx,
            "opportunity_created",
            "opportunity",
            &id,
            &format!(
                "Created from referral {} (“{}”).",
                referral.id, referral.name
            ),
        )
        .await?;
        return Ok((id.clone(), format!("Opportunity {id} created.")));
    };
    let id = current["opportunityid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if current["statecode"].as_i64().unwrap_or(0) != 0 {
        let why = format!(
            "Opportunity {id} is closed in Dynamics 365 (read-only): the referral's changes were not applied."
        );
        ctx.decide("Update the opportunity", StepOutcome::Skipped, &why)
            .await?;
        audit(
            ctx,
            "opportunity_readonly_skipped",
            "opportunity",
            &id,
            &why,
        )
        .await?;
        return Ok((id, why));
    }
    let changed = changed_columns(&fields, &current);
    if changed.is_empty() {
        ctx.decide(
            "Update the opportunity",
            StepOutcome::Skipped,
            "Already up to date.",
        )
        .await?;
        audit(
            ctx,
            "opportunity_unchanged",
            "opportunity",
            &id,
            &format!("Referral {} brought no change.", referral.id),
        )
        .await?;
    } else {
        let names: Vec<String> = changed
            .keys()
            .map(|k| k.trim_end_matches("@odata.bind").to_string())
            .collect();
        // Guarded by the version read above: if someone (a seller, or cosell's other direction) wrote
        // in between, read again on the next attempt rather than overwrite their change.
        let e_tag = current["@odata.etag"].as_str().unwrap_or("*").to_string();
        let updated = ctx
            .call(
                "Update the opportunity",
                crate::domain::connection::System::Dynamics365,
                crm.resource,
                |t| {
                    let (changed, id, e_tag) = (&changed, &id, &e_tag);
                    async move {
                        crm.client
                            .update(&t, "opportunities", id, changed, e_tag)
                            .await
                    }
                },
            )
            .await;
        match updated {
            Ok(()) => {}
            Err(CallFailure::Refused(_, CallError::PreconditionFailed(_))) => {
                return Err(StepError::Transient(
                    format!("Opportunity {id} changed in Dynamics 365 while cosell updated it"),
                    None,
                ));
            }
            Err(e) => return Err(e.into_step_error()),
        }
        audit(
            ctx,
            "opportunity_updated",
            "opportunity",
            &id,
            &format!(
                "From referral {}: {} changed.",
                referral.id,
                names.join(", ")
            ),
        )
        .await?;
    }
    let standing = referral.standing();
    if standing != Standing::Open {
        let won = standing == Standing::Won;
        let step = if won {
            "Close the opportunity as won"
        } else {
            "Close the opportunity as lost"
        };
        crm.call(ctx, step, |t| {
            let id = &id;
            async move { crm.client.close_opportunity(&t, id, won).await }
        })
        .await?;
        audit(
            ctx,
            "opportunity_closed",
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

/// The columns of `wanted` whose value differs from the row as read (Dataverse counts every column sent
/// as an update, crm-apis.md §2.4). Lookups compare by the id they bind.
fn changed_columns(wanted: &Map<String, Value>, current: &Value) -> Map<String, Value> {
    let mut changed = Map::new();
    for (column, value) in wanted {
        let same = match column.strip_suffix("@odata.bind") {
            Some(nav) => {
                let read_as = format!("_{}_value", nav.trim_end_matches("_account"));
                let bound = value
                    .as_str()
                    .and_then(|v| v.rsplit_once('('))
                    .map(|(_, id)| id.trim_end_matches(')'));
                bound.is_some_and(|id| {
                    current[&read_as]
                        .as_str()
                        .is_some_and(|c| c.eq_ignore_ascii_case(id))
                })
            }
            None => match (value, &current[column]) {
                (Value::Number(a), Value::Number(b)) => {
                    (a.as_f64().unwrap_or(f64::NAN) - b.as_f64().unwrap_or(0.0)).abs() < 0.005
                }
                (a, b) => a == b,
            },
        };
        if !same {
            changed.insert(column.clone(), value.clone());
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_columns_are_written() {
        let mut wanted = Map::new();
        wanted.insert("name".into(), json!("Deal"));
        wanted.insert("estimatedvalue".into(), json!(25000.0));
        wanted.insert(
            "transactioncurrencyid@odata.bind".into(),
            json!("/transactioncurrencies(C1)"),
        );
        let current = json!({
            "name": "Deal", "estimatedvalue": 25000, "_transactioncurrencyid_value": "c1"
        });
        assert!(changed_columns(&wanted, &current).is_empty());
        let current =
            json!({ "name": "Old", "estimatedvalue": 1, "_transactioncurrencyid_value": "c2" });
        assert_eq!(changed_columns(&wanted, &current).len(), 3);
    }
}
