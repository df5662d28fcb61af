//! "Dynamics 365 to Partner Center": an opportunity with "Sync with Partner Center" on is read from the
//! CRM (with its account, contact, currency and owner), checked against every rule — a failing one costs
//! no Partner Center call — and then, through the child flows, shared as a new co-sell referral
//! ("Create Co-sell Referral") or brought in step with its referral by one JSON Patch guarded by the
//! referral's eTag ("Opportunity to Partner Center"). "[Customize]" applies the admin's value mapping.
//!
//! Our own writes do not echo: the CRM row version cosell's write produces is remembered (the change
//! feed ignores it), and the Partner Center fields last sent are remembered with the referral's eTag, so
//! an opportunity whose shared fields did not change costs no Partner Center call at all.

use super::context::{CallFailure, RunContext, StepError};
use super::crm::Crm;
use crate::clients::dynamics::version_of;
use crate::clients::http::CallError;
use crate::clients::partner_center::referrals::AUDIENCE as PARTNER_CENTER;
use crate::domain::codes::CurrencyCode;
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::mapping::{self, Change, Mapping};
use crate::domain::opportunity::{
    Customer, Opportunity, OpportunityState, Person, Problem, Purpose, Ready, check,
};
use crate::domain::referral::link_for;
use crate::domain::runs::{AuditOutcome, Direction, RunStatus, StepOutcome};
use crate::store::{NewAuditEvent, SeenOpportunity};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// The columns the change feed tracks (enough for the Opportunities page and to decide on a run).
pub(super) const FEED_COLUMNS: &str =
    "name,statecode,msp_syncwithpartnercenter,msp_referralid,msp_referrallink,_customerid_value";

const OPPORTUNITY_COLUMNS: &str = "name,description,estimatedvalue,estimatedclosedate,statecode,\
statuscode,salesstage,msp_syncwithpartnercenter,msp_referralid,msp_referrallink,msp_cosellaudit,\
msp_microsoftsolutions,msp_howcanmicrosofthelp,_customerid_value,_parentaccountid_value,\
_parentcontactid_value,_transactioncurrencyid_value,_ownerid_value";

fn text(row: &Value, column: &str) -> Option<String> {
    row[column]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn label(row: &Value, column: &str) -> Option<String> {
    text(
        row,
        &format!("{column}@OData.Community.Display.V1.FormattedValue"),
    )
}

fn state_of(row: &Value) -> OpportunityState {
    match row["statecode"].as_i64() {
        Some(1) => OpportunityState::Won,
        Some(2) => OpportunityState::Lost,
        _ => OpportunityState::Open,
    }
}

/// What a change-feed row (or a full row) says about the opportunity.
pub(super) fn seen(row: &Value) -> Option<SeenOpportunity> {
    Some(SeenOpportunity {
        crm_id: text(row, "opportunityid")?,
        name: row["name"].as_str().unwrap_or_default().to_string(),
        referral_id: text(row, "msp_referralid"),
        referral_link: text(row, "msp_referrallink"),
        customer_id: text(row, "_customerid_value"),
        sync: row["msp_syncwithpartnercenter"].as_bool().unwrap_or(false),
        state: state_of(row),
        version: version_of(row),
    })
}

/// The opportunity with everything the rules need, as CRM calls of the run; None when it is gone.
async fn read(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    id: &str,
) -> Result<Option<(Opportunity, Value)>, StepError> {
    let Some(row) = crm
        .call(ctx, "Read the opportunity", |t| async move {
            crm.client
                .row_with_labels(&t, "opportunities", id, OPPORTUNITY_COLUMNS)
                .await
        })
        .await?
    else {
        return Ok(None);
    };
    let get = |step: &'static str, set: &'static str, id: Option<String>, select: &'static str| async move {
        match id {
            None => Ok(None),
            Some(id) => {
                crm.call(ctx, step, |t| {
                    let id = id.clone();
                    async move { crm.client.row(&t, set, &id, select).await }
                })
                .await
            }
        }
    };
    // The customer is an account, or a contact whose account is the parent account.
    let account_id = text(&row, "_customerid_value");
    let mut account = get(
        "Read the customer account",
        "accounts",
        account_id,
        "accountid,name,address1_line1,address1_city,address1_stateorprovince,address1_postalcode,address1_country,_primarycontactid_value",
    )
    .await?;
    if account.is_none() {
        account = get(
            "Read the parent account",
            "accounts",
            text(&row, "_parentaccountid_value"),
            "accountid,name,address1_line1,address1_city,address1_stateorprovince,address1_postalcode,address1_country,_primarycontactid_value",
        )
        .await?;
    }
    let contact_id = text(&row, "_parentcontactid_value").or_else(|| {
        account
            .as_ref()
            .and_then(|a| text(a, "_primarycontactid_value"))
    });
    let contact = get(
        "Read the customer contact",
        "contacts",
        contact_id,
        "firstname,lastname,emailaddress1,telephone1,mobilephone",
    )
    .await?;
    let currency = get(
        "Read the currency",
        "transactioncurrencies",
        text(&row, "_transactioncurrencyid_value"),
        "isocurrencycode",
    )
    .await?;
    let owner = get(
        "Read the owner",
        "systemusers",
        text(&row, "_ownerid_value"),
        "firstname,lastname,internalemailaddress,address1_telephone1,mobilephone",
    )
    .await?;
    let person = |p: &Value, email: &str, phones: &[&str]| Person {
        first_name: text(p, "firstname"),
        last_name: text(p, "lastname"),
        email: text(p, email),
        phone: phones.iter().find_map(|c| text(p, c)),
    };
    let opportunity = Opportunity {
        id: id.to_string(),
        name: row["name"].as_str().unwrap_or_default().to_string(),
        sync: row["msp_syncwithpartnercenter"].as_bool().unwrap_or(false),
        referral_id: text(&row, "msp_referralid"),
        state: state_of(&row),
        status_reason: label(&row, "statuscode"),
        deal_value: row["estimatedvalue"].as_f64(),
        currency: currency.as_ref().and_then(|c| text(c, "isocurrencycode")),
        closing_date: text(&row, "estimatedclosedate").and_then(|d| {
            time::Date::parse(
                &d,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()
        }),
        sales_stage: label(&row, "salesstage"),
        help: text(&row, "msp_howcanmicrosofthelp"),
        solutions: text(&row, "msp_microsoftsolutions")
            .map(|s| {
                s.split([',', ';', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        notes: text(&row, "description"),
        customer: account.as_ref().map(|a| Customer {
            id: text(a, "accountid").unwrap_or_default(),
            name: a["name"].as_str().unwrap_or_default().to_string(),
            country: text(a, "address1_country"),
            postal_code: text(a, "address1_postalcode"),
            city: text(a, "address1_city"),
            state: text(a, "address1_stateorprovince"),
            address_line1: text(a, "address1_line1"),
        }),
        contact: contact
            .as_ref()
            .map(|c| person(c, "emailaddress1", &["telephone1", "mobilephone"])),
        owner: owner.as_ref().map(|o| {
            person(
                o,
                "internalemailaddress",
                &["address1_telephone1", "mobilephone"],
            )
        }),
        version: version_of(&row),
    };
    Ok(Some((opportunity, row)))
}

pub(super) async fn run(
    ctx: &RunContext<'_>,
    input: &Value,
) -> Result<(RunStatus, String), StepError> {
    let engine = ctx.engine();
    let id = input["opportunity_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| StepError::Permanent("The run's input names no opportunity.".into()))?
        .to_string();
    // "Check" on the Opportunities page: read and judge, send nothing, write nothing to the CRM.
    let check_only = input["check_only"].as_bool().unwrap_or(false);
    let crm = Crm::of(engine)?;
    let now = OffsetDateTime::now_utc();
    let Some((opportunity, row)) = read(ctx, &crm, &id).await? else {
        let why = format!("Opportunity {id} no longer exists in Dynamics 365: nothing to share.");
        engine
            .store
            .forget_opportunity(&id)
            .await
            .map_err(StepError::store)?;
        skip(ctx, &id, "opportunity_skipped_missing", &why).await?;
        return Ok((RunStatus::Skipped, why));
    };
    // What cosell knew of it before this read: among it, what it last sent to Partner Center.
    let last_sent = match seen(&row) {
        Some(seen) => engine
            .store
            .see_opportunity(&seen, now)
            .await
            .map_err(StepError::store)?
            .and_then(|known| known.pushed),
        None => None,
    };
    if !opportunity.sync && !check_only {
        let why = format!(
            "“{}” has Sync with Partner Center off: nothing was sent.",
            opportunity.name
        );
        ctx.decide("Check Sync with Partner Center", StepOutcome::Skipped, &why)
            .await?;
        skip(ctx, &id, "opportunity_skipped_sync_off", &why).await?;
        result(ctx, &id, &[], &why, None).await?;
        return Ok((RunStatus::Skipped, why));
    }

    let mapping = ctx
        .child(
            Flow::Customize,
            json!({ "opportunity_id": id }),
            |child| async move {
                let mapping = child.engine().mapping().await.map_err(StepError::store)?;
                let rules: usize = mapping::Table::ALL
                    .iter()
                    .map(|t| mapping.table(*t).len())
                    .sum();
                let what = format!("{rules} value mapping rules applied.");
                child
                    .decide("Apply the value mapping", StepOutcome::Ok, &what)
                    .await?;
                Ok((mapping, what))
            },
        )
        .await?;
    let currencies: Vec<CurrencyCode> = crm
        .call(ctx, "Read the CRM's currencies", |t| async move {
            crm.client
                .query(
                    &t,
                    "transactioncurrencies",
                    &[("$select", "isocurrencycode")],
                )
                .await
        })
        .await?
        .iter()
        .filter_map(|c| c["isocurrencycode"].as_str().and_then(CurrencyCode::parse))
        .collect();
    let purpose = if opportunity.referral_id.is_some() {
        Purpose::Update
    } else {
        Purpose::Create
    };
    let ready = match check(&opportunity, &currencies, purpose) {
        Ok(ready) => ready,
        Err(problems) if check_only => {
            let why = format!(
                "{} {} to fix before “{}” can be shared: {}",
                problems.len(),
                if problems.len() == 1 {
                    "thing"
                } else {
                    "things"
                },
                opportunity.name,
                problems
                    .iter()
                    .map(Problem::message)
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            ctx.decide(
                "Check the opportunity against the rules",
                StepOutcome::Failed,
                &why,
            )
            .await?;
            result(ctx, &id, &problems, &why, None).await?;
            return Ok((RunStatus::Succeeded, why));
        }
        Err(problems) => return invalid(ctx, &crm, &opportunity, &row, &problems).await,
    };
    if check_only {
        let why = format!("“{}” passes every rule: ready to share.", opportunity.name);
        ctx.decide(
            "Check the opportunity against the rules",
            StepOutcome::Ok,
            &why,
        )
        .await?;
        result(ctx, &id, &[], &why, None).await?;
        return Ok((RunStatus::Succeeded, why));
    }
    ctx.decide(
        "Check the opportunity against the rules",
        StepOutcome::Ok,
        "Every rule passes.",
    )
    .await?;
    match purpose {
        Purpose::Create => {
            ctx.child(
                Flow::CreateReferral,
                json!({ "opportunity_id": id }),
                |child| {
                    let (ready, mapping, row) = (ready.clone(), mapping.clone(), row.clone());
                    async move { create(&child, &crm, &ready, &mapping, &row).await }
                },
            )
            .await
        }
        Purpose::Update => {
            ctx.child(
                Flow::OpportunityToPartnerCenter,
                json!({ "opportunity_id": id, "referral_id": opportunity.referral_id }),
                |child| {
                    let (ready, mapping, row) = (ready.clone(), mapping.clone(), row.clone());
                    async move { update(&child, &crm, &ready, &mapping, &row, last_sent).await }
                },
            )
            .await
        }
    }
    .map(|outcome| (RunStatus::Succeeded, outcome))
}

/// Every failing rule, named, with no Partner Center call.
async fn invalid(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    o: &Opportunity,
    row: &Value,
    problems: &[Problem],
) -> Result<(RunStatus, String), StepError> {
    let messages: Vec<String> = problems.iter().map(Problem::message).collect();
    let why = format!(
        "Not sent to Partner Center: {} {} to fix. {}",
        problems.len(),
        if problems.len() == 1 {
            "thing"
        } else {
            "things"
        },
        messages.join(" ")
    );
    ctx.decide(
        "Check the opportunity against the rules",
        StepOutcome::Failed,
        &why,
    )
    .await?;
    ctx.record(NewAuditEvent {
        action: "opportunity_invalid".into(),
        record_kind: "opportunity".into(),
        record_id: o.id.clone(),
        direction: Some(Direction::ToPartnerCenter),
        detail: why.clone(),
        outcome: AuditOutcome::Failure,
        changes: Some(
            problems
                .iter()
                .map(|p| json!({ "rule": p.rule(), "field": p.field(), "message": p.message() }))
                .collect(),
        ),
        ..Default::default()
    })
    .await?;
    let summary = format!(
        "✖ Not sent to Partner Center: {}",
        problems
            .iter()
            .map(|p| p.field())
            .collect::<Vec<_>>()
            .join(", ")
    );
    note_in_crm(ctx, crm, o, row, Map::new(), &summary).await?;
    result(ctx, &o.id, problems, &why, None).await?;
    Ok((RunStatus::Skipped, why))
}

/// "Create Co-sell Referral": one Partner Center call, then the referral's id and link on the opportunity.
async fn create(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    ready: &Ready<'_>,
    mapping: &Mapping,
    row: &Value,
) -> Result<(String, String), StepError> {
    let engine = ctx.engine();
    let o = ready.opportunity;
    let body = mapping::new_referral(ready, mapping);
    let created = ctx
        .call(
            "Create the referral in Partner Center",
            System::PartnerCenter,
            PARTNER_CENTER,
            |t| {
                let body = body.clone();
                async move { engine.referrals.create(&t, &body).await }
            },
        )
        .await;
    let created = match created {
        Ok(c) => c,
        Err(CallFailure::Refused(_, CallError::Rejected { message, .. })) => {
            let why = format!(
                "Partner Center refused the referral: {message}. Correct the opportunity; the next change shares it again."
            );
            result(ctx, &o.id, &[], &why, None).await?;
            return Err(StepError::Permanent(why));
        }
        Err(e) => return Err(e.into_step_error()),
    };
    let referral_id = created["id"].as_str().unwrap_or_default().to_string();
    let link = link_for(&referral_id);
    let mut fields = Map::new();
    fields.insert("msp_referralid".into(), json!(referral_id));
    fields.insert("msp_referrallink".into(), json!(link));
    note_in_crm(
        ctx,
        crm,
        o,
        row,
        fields,
        &format!("✔ Shared with Partner Center as referral {referral_id}."),
    )
    .await?;
    let owned = mapping::owned_fields(ready, mapping);
    let changes: Vec<Value> = owned
        .iter()
        .map(|(path, to)| json!({ "path": path, "from": Value::Null, "to": to }))
        .collect();
    let what = format!(
        "Referral {referral_id} created in Partner Center from “{}”.",
        o.name
    );
    ctx.record(NewAuditEvent {
        action: "referral_created".into(),
        record_kind: "opportunity".into(),
        record_id: o.id.clone(),
        direction: Some(Direction::ToPartnerCenter),
        detail: what.clone(),
        changes: Some(Value::Array(changes)),
        ..Default::default()
    })
    .await?;
    if let Some(seen) = seen(row) {
        let linked = SeenOpportunity {
            referral_id: Some(referral_id.clone()),
            referral_link: Some(link),
            ..seen
        };
        engine
            .store
            .see_opportunity(&linked, OffsetDateTime::now_utc())
            .await
            .map_err(StepError::store)?;
    }
    let pushed = pushed(&owned, created["eTag"].as_str());
    result(ctx, &o.id, &[], &what, Some(&pushed)).await?;
    Ok((what.clone(), what))
}

/// "Opportunity to Partner Center": the changed fields as one JSON Patch with `If-Match`; on 412, read
/// the referral again, merge (the CRM wins for the fields cosell maps), try once more, and audit it.
async fn update(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    ready: &Ready<'_>,
    mapping: &Mapping,
    row: &Value,
    last_sent: Option<Value>,
) -> Result<(String, String), StepError> {
    let o = ready.opportunity;
    let referral_id = o.referral_id.clone().unwrap_or_default();
    let owned = mapping::owned_fields(ready, mapping);
    let known = last_sent.as_ref().and_then(|p| {
        Some((
            fields_doc(p.get("fields")?),
            p.get("eTag")?.as_str()?.to_string(),
        ))
    });
    // What Partner Center holds: what cosell last sent (its eTag says whether that is still so), or,
    // the first time, the referral as read.
    let (current, e_tag) = match known {
        Some(known) => known,
        None => read_referral(ctx, &referral_id).await?,
    };
    if let Some(why) = closed(&current, &referral_id) {
        ctx.decide("Update the referral", StepOutcome::Skipped, &why)
            .await?;
        skip(ctx, &o.id, "referral_skipped_closed", &why).await?;
        result(ctx, &o.id, &[], &why, None).await?;
        return Ok((why.clone(), why));
    }
    let changes = mapping::changes(&current, ready, mapping);
    if changes.is_empty() {
        let why = format!("Referral {referral_id} already has the opportunity's values.");
        ctx.decide("Update the referral", StepOutcome::Skipped, &why)
            .await?;
        skip(ctx, &o.id, "referral_unchanged", &why).await?;
        result(ctx, &o.id, &[], &why, Some(&pushed(&owned, Some(&e_tag)))).await?;
        return Ok((why.clone(), why));
    }
    let (updated, applied) = match patch(ctx, &referral_id, &e_tag, &current, &changes).await? {
        Patched::Done(updated) => (updated, changes),
        first => {
            // Stale (412), or refused: Partner Center changed since. Read it again.
            let (fresh, fresh_tag) = read_referral(ctx, &referral_id).await?;
            if let Some(why) = closed(&fresh, &referral_id) {
                // Closed on Microsoft's side meanwhile (declined, expired, won): final.
                ctx.decide("Update the referral", StepOutcome::Skipped, &why)
                    .await?;
                skip(ctx, &o.id, "referral_skipped_closed", &why).await?;
                result(ctx, &o.id, &[], &why, None).await?;
                return Ok((why.clone(), why));
            }
            if let Patched::Refused(why) = first {
                return Err(StepError::Permanent(why));
            }
            let theirs: Vec<Value> = owned
                .iter()
                .filter(|(path, _)| current.pointer(path) != fresh.pointer(path))
                .map(|(path, _)| {
                    json!({ "path": path, "from": current.pointer(path), "to": fresh.pointer(path) })
                })
                .collect();
            let merged = mapping::changes(&fresh, ready, mapping);
            ctx.record(NewAuditEvent {
                action: "referral_update_conflict".into(),
                record_kind: "opportunity".into(),
                record_id: o.id.clone(),
                direction: Some(Direction::ToPartnerCenter),
                detail: format!(
                    "Referral {referral_id} changed in Partner Center since cosell last wrote it ({} of the shared fields). Merge rule: the CRM's values win for the fields cosell maps; Partner Center's other changes are kept.",
                    theirs.len()
                ),
                outcome: AuditOutcome::Conflict,
                changes: Some(Value::Array(theirs)),
                ..Default::default()
            })
            .await?;
            if merged.is_empty() {
                let why = format!(
                    "Referral {referral_id} already had the opportunity's values after the merge."
                );
                result(
                    ctx,
                    &o.id,
                    &[],
                    &why,
                    Some(&pushed(&owned, Some(&fresh_tag))),
                )
                .await?;
                return Ok((why.clone(), why));
            }
            match patch(ctx, &referral_id, &fresh_tag, &fresh, &merged).await? {
                Patched::Done(updated) => (updated, merged),
                Patched::Refused(why) => return Err(StepError::Permanent(why)),
                Patched::Stale => {
                    return Err(StepError::Transient(
                        format!(
                            "Referral {referral_id} changed again in Partner Center while cosell merged"
                        ),
                        None,
                    ));
                }
            }
        }
    };
    let closing = applied.iter().any(|c| c.path == "/status");
    let names: Vec<&str> = applied.iter().map(|c| c.path.as_str()).collect();
    let what = if closing {
        format!(
            "Referral {referral_id} closed in Partner Center ({}/{}).",
            updated["status"].as_str().unwrap_or("Closed"),
            updated["substatus"].as_str().unwrap_or_default()
        )
    } else {
        format!(
            "Referral {referral_id} updated in Partner Center: {}.",
            names.join(", ")
        )
    };
    ctx.record(NewAuditEvent {
        action: if closing {
            "referral_closed"
        } else {
            "referral_updated"
        }
        .into(),
        record_kind: "opportunity".into(),
        record_id: o.id.clone(),
        direction: Some(Direction::ToPartnerCenter),
        detail: what.clone(),
        changes: serde_json::to_value(&applied).ok(),
        ..Default::default()
    })
    .await?;
    note_in_crm(ctx, crm, o, row, Map::new(), &format!("✔ {what}")).await?;
    let pushed = pushed(&owned, updated["eTag"].as_str());
    result(ctx, &o.id, &[], &what, Some(&pushed)).await?;
    Ok((what.clone(), what))
}

/// What one PATCH came to.
enum Patched {
    /// The referral as it now is.
    Done(Value),
    /// 412: the eTag is stale.
    Stale,
    /// Refused (400), with the message for the admin: perhaps because cosell's picture of the referral
    /// is stale (Partner Center refuses edits to a referral closed meanwhile before it checks the eTag).
    Refused(String),
}

/// One PATCH with `If-Match`.
async fn patch(
    ctx: &RunContext<'_>,
    referral_id: &str,
    e_tag: &str,
    current: &Value,
    changes: &[Change],
) -> Result<Patched, StepError> {
    let engine = ctx.engine();
    let ops = mapping::patch(current, changes);
    let patched = ctx
        .call(
            "Update the referral in Partner Center",
            System::PartnerCenter,
            PARTNER_CENTER,
            |t| {
                let ops = ops.clone();
                async move { engine.referrals.patch(&t, referral_id, e_tag, &ops).await }
            },
        )
        .await;
    match patched {
        Ok(updated) => Ok(Patched::Done(updated)),
        Err(CallFailure::Refused(_, CallError::PreconditionFailed(_))) => Ok(Patched::Stale),
        Err(CallFailure::Refused(system, e @ CallError::Rejected { .. })) => Ok(Patched::Refused(
            super::context::refusal_message(system, &e),
        )),
        Err(CallFailure::Refused(_, CallError::NotFound(_))) => Err(StepError::Permanent(format!(
            "Referral {referral_id} no longer exists in Partner Center. Clear the opportunity's Referral Identifier to share it as a new referral."
        ))),
        Err(e) => Err(e.into_step_error()),
    }
}

async fn read_referral(
    ctx: &RunContext<'_>,
    referral_id: &str,
) -> Result<(Value, String), StepError> {
    let engine = ctx.engine();
    let referral = ctx
        .call(
            "Read the referral from Partner Center",
            System::PartnerCenter,
            PARTNER_CENTER,
            |t| async move { engine.referrals.get_json(&t, referral_id).await },
        )
        .await;
    match referral {
        Ok(r) => {
            let tag = r["eTag"].as_str().unwrap_or_default().to_string();
            Ok((r, tag))
        }
        Err(CallFailure::Refused(_, CallError::NotFound(_))) => Err(StepError::Permanent(format!(
            "Referral {referral_id} no longer exists in Partner Center. Clear the opportunity's Referral Identifier to share it as a new referral."
        ))),
        Err(e) => Err(e.into_step_error()),
    }
}

/// Why a referral takes no more updates: closed referrals are final (partner-center.md §1.7).
fn closed(referral: &Value, id: &str) -> Option<String> {
    (referral["status"] == "Closed").then(|| {
        format!(
            "Referral {id} is closed in Partner Center ({}): closed referrals are final, so the opportunity's changes were not sent.",
            referral["substatus"].as_str().unwrap_or("closed")
        )
    })
}

/// What cosell now knows Partner Center holds: the shared fields and the eTag that guards them.
fn pushed(owned: &[(&str, Value)], e_tag: Option<&str>) -> Value {
    let fields: Map<String, Value> = owned
        .iter()
        .map(|(path, value)| (path.to_string(), value.clone()))
        .collect();
    json!({ "fields": fields, "eTag": e_tag })
}

/// A referral document holding the pushed fields at their pointers.
fn fields_doc(fields: &Value) -> Value {
    let mut doc = json!({});
    for (pointer, value) in fields.as_object().into_iter().flatten() {
        mapping::set(&mut doc, pointer, value.clone());
    }
    doc
}

/// The one-line summary sellers read in the opportunity's Audit column, with any other columns to
/// write; written only when it changes, and only while the opportunity is open (closed ones are
/// read-only). The row version this write produces is remembered, so the change feed ignores it.
async fn note_in_crm(
    ctx: &RunContext<'_>,
    crm: &Crm<'_>,
    o: &Opportunity,
    row: &Value,
    mut fields: Map<String, Value>,
    summary: &str,
) -> Result<(), StepError> {
    if o.state != OpportunityState::Open {
        return Ok(());
    }
    if row["msp_cosellaudit"].as_str() != Some(summary) {
        fields.insert("msp_cosellaudit".into(), json!(summary));
    }
    if fields.is_empty() {
        return Ok(());
    }
    let version = crm
        .call(ctx, "Write the result on the opportunity", |t| {
            let fields = fields.clone();
            async move {
                crm.client
                    .update_versioned(&t, "opportunities", &o.id, "opportunityid", &fields, "*")
                    .await
            }
        })
        .await?;
    ctx.engine()
        .store
        .record_written_version(&o.id, &version)
        .await
        .map_err(StepError::store)
}

async fn skip(ctx: &RunContext<'_>, id: &str, action: &str, why: &str) -> Result<(), StepError> {
    ctx.record(NewAuditEvent {
        action: action.into(),
        record_kind: "opportunity".into(),
        record_id: id.to_string(),
        direction: Some(Direction::ToPartnerCenter),
        detail: why.to_string(),
        outcome: AuditOutcome::Skip,
        ..Default::default()
    })
    .await
}

async fn result(
    ctx: &RunContext<'_>,
    id: &str,
    problems: &[Problem],
    what: &str,
    pushed: Option<&Value>,
) -> Result<(), StepError> {
    ctx.engine()
        .store
        .record_sync_result(
            id,
            problems,
            what,
            Some(ctx.run_id()),
            pushed,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(StepError::store)
}

impl super::Engine {
    /// Writes "Sync with Partner Center" through to the opportunity in the CRM (the record of truth),
    /// then queues the run that acts on it. The run's id (None when one was already waiting).
    pub async fn set_sync(
        &self,
        crm_id: &str,
        on: bool,
        by: &str,
    ) -> Result<Option<i64>, super::CrmCallError> {
        use crate::domain::runs::RunTrigger;
        let mut fields = Map::new();
        fields.insert("msp_syncwithpartnercenter".into(), json!(on));
        let fields = &fields;
        let version = self
            .crm_call(|client, token| async move {
                client
                    .update_versioned(
                        &token,
                        "opportunities",
                        crm_id,
                        "opportunityid",
                        fields,
                        "*",
                    )
                    .await
            })
            .await?;
        let now = OffsetDateTime::now_utc();
        // The feed will report this write: the run below already acts on it.
        self.store.record_written_version(crm_id, &version).await?;
        if let Some(mut mirrored) = self.store.opportunity(crm_id).await? {
            mirrored.seen.sync = on;
            mirrored.seen.version = Some(version);
            self.store.see_opportunity(&mirrored.seen, now).await?;
        }
        self.store
            .record_audit(
                &NewAuditEvent {
                    actor: by.to_string(),
                    action: if on {
                        "sync_switched_on"
                    } else {
                        "sync_switched_off"
                    }
                    .into(),
                    record_kind: "opportunity".into(),
                    record_id: crm_id.to_string(),
                    direction: Some(Direction::ToPartnerCenter),
                    detail: format!(
                        "Sync with Partner Center switched {} (written to the CRM).",
                        if on { "on" } else { "off" }
                    ),
                    ..Default::default()
                },
                now,
            )
            .await?;
        Ok(self.queue_opportunity(crm_id, RunTrigger::Manual).await?)
    }
}
