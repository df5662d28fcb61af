//! "CRM to Partner Center" (named for the CRM, e.g. "Dynamics 365 to Partner Center"): an opportunity with "Sync with Partner Center" on is read from the
//! CRM (with its account, contact, currency and owner), checked against every rule — a failing one costs
//! no Partner Center call — and then, through the child flows, shared as a new co-sell referral
//! ("Create Co-sell Referral") or brought in step with its referral by one JSON Patch guarded by the
//! referral's eTag ("Opportunity to Partner Center"). "[Customize]" applies the admin's value mapping.
//!
//! "Microsoft Solutions to Partner Center" is the same update narrowed to the referral's solutions:
//! the change feed runs it for a linked opportunity whose solutions alone changed, so one read of the
//! opportunity's own fields replaces the full read, and nothing is created.
//!
//! Written once, against the CRM port. Our own writes do not echo: the record version cosell's write produces is remembered (the change
//! feed ignores it), and the Partner Center fields last sent are remembered with the referral's eTag, so
//! an opportunity whose shared fields did not change costs no Partner Center call at all.

use super::context::{CallFailure, RunContext, StepError};
use super::crm::{CrmError, CrmPort, WriteBack};
use crate::clients::http::CallError;
use crate::clients::partner_center::referrals::AUDIENCE as PARTNER_CENTER;
use crate::domain::codes::CurrencyCode;
use crate::domain::connection::System;
use crate::domain::flows::Flow;
use crate::domain::mapping::{self, Change, Mapping};
use crate::domain::opportunity::{Opportunity, OpportunityState, Problem, Purpose, Ready, check};
use crate::domain::referral::link_for;
use crate::domain::runs::{AuditAction, Direction, FailureCause, RunInput, RunStatus, StepOutcome};
use crate::store::{NewAuditEvent, SeenOpportunity};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

/// What the mirror keeps of an opportunity the CRM port read.
pub(super) fn seen(o: &Opportunity) -> SeenOpportunity {
    SeenOpportunity {
        crm_id: o.id.clone(),
        name: o.name.clone(),
        referral_id: o.referral_id.clone(),
        referral_link: o.referral_link.clone(),
        customer_id: o.account_id.clone(),
        sync: o.sync,
        state: o.state,
        version: o.version.clone(),
        solutions: None,
        fingerprint: None,
    }
}

/// How long a run for a change the feed read waits while "Partner Center to CRM" works on the
/// opportunity's referral: that run's write is answered before it is noted as cosell's own, and the
/// note comes within milliseconds.
const WAIT_FOR_OWN_WRITE: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the change the feed read (`fed_version` of opportunity `id`) was cosell's own write, noted
/// only after the feed read it: the CRM answers a create or an update before cosell can record the
/// version as its own, and the feed may read it in between. Costs no call. While "Partner Center to
/// CRM" is still working on the opportunity's referral the run waits, without spending an attempt;
/// then the change is cosell's when the version it wrote is the one the feed read. A seller's change
/// has a version of its own, and is shared.
pub(super) async fn echo_of_own_write(
    ctx: &RunContext<'_>,
    id: &str,
    referral_id: Option<&str>,
    fed_version: &str,
) -> Result<Option<(RunStatus, String)>, StepError> {
    let store = &ctx.engine().store;
    if let Some(referral) = referral_id
        && store
            .run_in_progress(Flow::PartnerCenterToCrm, referral)
            .await
            .map_err(StepError::store)?
    {
        return Err(StepError::Paused(
            format!(
                "Referral {referral} is being brought into the CRM right now, and the change read of opportunity {id} may be that run's own write"
            ),
            WAIT_FOR_OWN_WRITE,
        ));
    }
    let written = store
        .opportunity(id)
        .await
        .map_err(StepError::store)?
        .and_then(|known| known.written_version);
    if written.as_deref() != Some(fed_version) {
        return Ok(None);
    }
    let why = format!(
        "The change the CRM reported (version {fed_version} of opportunity {id}) was cosell's own write: nothing to share."
    );
    ctx.decide("Recognise cosell's own write", StepOutcome::Skipped, &why)
        .await?;
    ctx.record(NewAuditEvent {
        direction: Some(Direction::ToPartnerCenter),
        ..NewAuditEvent::new(AuditAction::EchoSuppressed, "opportunity", id, why.clone())
    })
    .await?;
    Ok(Some((RunStatus::Skipped, why)))
}

/// `check_only` is "Check" on the Opportunities page: read and judge, send nothing, write nothing to
/// the CRM.
pub(super) async fn run(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    id: &str,
    check_only: bool,
) -> Result<(RunStatus, String), StepError> {
    let engine = ctx.engine();
    if id.is_empty() {
        return Err(StepError::Permanent(
            FailureCause::Other,
            "The run's input names no opportunity.".into(),
        ));
    }
    let id = id.to_string();
    let now = OffsetDateTime::now_utc();
    let Some(opportunity) = crm.opportunity_in_full(&ctx.calls(), &id).await? else {
        return gone(ctx, crm, &id).await;
    };
    // What cosell knew of it before this read: among it, what it last sent to Partner Center.
    let last_sent = engine
        .store
        .see_opportunity(&seen(&opportunity), now)
        .await
        .map_err(StepError::store)?
        .and_then(|known| known.pushed);
    if !opportunity.sync && !check_only {
        return sync_off(ctx, &opportunity).await;
    }

    let mapping = customize(ctx, &id).await?;
    let currencies: Vec<CurrencyCode> = crm.currencies(&ctx.calls()).await?;
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
        Err(problems) => return invalid(ctx, crm, &opportunity, &problems, true).await,
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
            ctx.child(Flow::CreateReferral, RunInput::opportunity(&id), |child| {
                let (ready, mapping) = (ready.clone(), mapping.clone());
                async move { create(&child, crm, &ready, &mapping).await }
            })
            .await
        }
        Purpose::Update => {
            created_meanwhile(ctx, &opportunity).await?;
            ctx.child(
                Flow::OpportunityToPartnerCenter,
                RunInput::Opportunity {
                    opportunity_id: id.clone(),
                    referral_id: opportunity.referral_id.clone(),
                    check_only: false,
                    fed_version: None,
                },
                |child| {
                    let (ready, mapping) = (ready.clone(), mapping.clone());
                    async move {
                        let scope = Scope::Whole(&ready);
                        update(
                            &child,
                            crm,
                            ready.opportunity,
                            scope,
                            &mapping,
                            last_sent,
                            true,
                        )
                        .await
                    }
                },
            )
            .await
        }
    }
    .map(|outcome| (RunStatus::Succeeded, outcome))
}

/// "Microsoft Solutions to Partner Center": the opportunity's solutions, and nothing else, onto its
/// referral. The feed queued it having seen only the solutions change, so the opportunity's own fields
/// are read (one call) rather than everything the rules need; with what cosell last sent (and its
/// eTag), that makes one PATCH, as for any update.
pub(super) async fn solutions(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    id: &str,
) -> Result<(RunStatus, String), StepError> {
    let engine = ctx.engine();
    if id.is_empty() {
        return Err(StepError::Permanent(
            FailureCause::Other,
            "The run's input names no opportunity.".into(),
        ));
    }
    let Some(opportunity) = crm.opportunity(&ctx.calls(), id).await? else {
        return gone(ctx, crm, id).await;
    };
    // Read, not recorded: recording this version would hide from the feed whatever else a seller
    // changed since it queued this run (a later poll takes the same version for nothing new).
    let known = engine
        .store
        .opportunity(id)
        .await
        .map_err(StepError::store)?;
    if !opportunity.sync {
        return sync_off(ctx, &opportunity).await;
    }
    let Some(referral_id) = opportunity.referral_id.clone() else {
        let why = format!(
            "“{}” has no referral yet: “{}” shares it whole, solutions included.",
            opportunity.name,
            Flow::CrmToPartnerCenter.name(engine.crm)
        );
        ctx.decide("Find the referral", StepOutcome::Skipped, &why)
            .await?;
        skip(ctx, id, AuditAction::OpportunitySkippedUnlinked, &why).await?;
        return Ok((RunStatus::Skipped, why));
    };
    // Whether the opportunity is still as the feed saw it when it chose this flow, solutions aside.
    // If not, a seller changed more since: cosell's note must not pass for its own echo, so that the
    // feed sees that change and sends it through "CRM to Partner Center".
    let as_decided = known
        .as_ref()
        .is_some_and(|k| k.seen.fingerprint.as_deref() == Some(opportunity.fingerprint().as_str()));
    let ids = opportunity.solution_ids();
    if ids.is_empty() {
        return invalid(
            ctx,
            crm,
            &opportunity,
            &[Problem::SolutionMissing],
            as_decided,
        )
        .await;
    }
    let mapping = customize(ctx, id).await?;
    let last_sent = known.and_then(|k| k.pushed);
    ctx.child(
        Flow::OpportunityToPartnerCenter,
        RunInput::Opportunity {
            opportunity_id: id.to_string(),
            referral_id: Some(referral_id),
            check_only: false,
            fed_version: None,
        },
        |child| {
            let (opportunity, mapping) = (&opportunity, &mapping);
            let scope = Scope::Solutions(&ids);
            async move {
                update(
                    &child,
                    crm,
                    opportunity,
                    scope,
                    mapping,
                    last_sent,
                    as_decided,
                )
                .await
            }
        },
    )
    .await
    .map(|outcome| (RunStatus::Succeeded, outcome))
}

/// The opportunity is no longer in the CRM: it leaves the mirror, audited.
async fn gone(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    id: &str,
) -> Result<(RunStatus, String), StepError> {
    let why = format!(
        "Opportunity {id} no longer exists in {}: nothing to share.",
        crm.system().label()
    );
    ctx.engine()
        .store
        .forget_opportunity(id)
        .await
        .map_err(StepError::store)?;
    skip(ctx, id, AuditAction::OpportunitySkippedMissing, &why).await?;
    Ok((RunStatus::Skipped, why))
}

async fn sync_off(ctx: &RunContext<'_>, o: &Opportunity) -> Result<(RunStatus, String), StepError> {
    let why = format!(
        "“{}” has Sync with Partner Center off: nothing was sent.",
        o.name
    );
    ctx.decide("Check Sync with Partner Center", StepOutcome::Skipped, &why)
        .await?;
    skip(ctx, &o.id, AuditAction::OpportunitySkippedSyncOff, &why).await?;
    result(ctx, &o.id, &[], &why, None).await?;
    Ok((RunStatus::Skipped, why))
}

/// "[Customize]": the admin's value mapping, as a child run.
async fn customize(ctx: &RunContext<'_>, id: &str) -> Result<Mapping, StepError> {
    ctx.child(
        Flow::Customize,
        RunInput::opportunity(id),
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
    .await
}

/// Every failing rule, named, with no Partner Center call. `as_echo`: see [`note_in_crm`].
async fn invalid(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    o: &Opportunity,
    problems: &[Problem],
    as_echo: bool,
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
        direction: Some(Direction::ToPartnerCenter),
        changes: Some(
            problems
                .iter()
                .map(|p| json!({ "rule": p.rule(), "field": p.field(), "message": p.message() }))
                .collect(),
        ),
        ..NewAuditEvent::new(
            AuditAction::OpportunityInvalid,
            "opportunity",
            &o.id,
            why.clone(),
        )
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
    note_in_crm(ctx, crm, o, None, &summary, as_echo).await?;
    result(ctx, &o.id, problems, &why, None).await?;
    Ok((RunStatus::Skipped, why))
}

/// "Create Co-sell Referral": one Partner Center call, then the referral's id and link on the opportunity.
async fn create(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    ready: &Ready<'_>,
    mapping: &Mapping,
) -> Result<(String, String), StepError> {
    let engine = ctx.engine();
    let o = ready.opportunity;
    let body = mapping::new_referral(ready, mapping);
    // The referrals cosell made for it so far: the same count on every retry or resubmission of this
    // create (its audit event is written after the write-back), a new one once the seller clears the
    // referral to share the deal again.
    let generation = engine
        .store
        .count_audit(&o.id, AuditAction::ReferralCreated)
        .await
        .map_err(StepError::store)?;
    let request_id = ctx.request_id("create-referral", &o.id, generation);
    // If its answer (or the write-back after it) is lost and Partner Center's announcement links the
    // opportunity meanwhile, the next run still audits the create.
    let pending = ctx.pending_create("referral", &o.id);
    pending.begin().await?;
    let writing = engine.in_flight.begin(None);
    let created = ctx
        .calls()
        .call(
            "Create the referral in Partner Center",
            System::PartnerCenter,
            PARTNER_CENTER,
            |t| {
                let body = body.clone();
                let request_id = &request_id;
                async move { engine.referrals.create(&t, &body, request_id).await }
            },
        )
        .await;
    let created = match created {
        Ok(c) => c,
        Err(CallFailure::Refused(_, CallError::Rejected { message, .. })) => {
            let why = format!(
                "Partner Center refused the referral: {message}. Correct the opportunity; the next change shares it again."
            );
            // Refused for good: nothing was made.
            pending.end().await?;
            result(ctx, &o.id, &[], &why, None).await?;
            return Err(StepError::Permanent(FailureCause::Refused, why));
        }
        Err(e) => return Err(e.into_step_error()),
    };
    super::echoes::remember(ctx, &created).await?;
    drop(writing);
    let referral_id = created["id"].as_str().unwrap_or_default().to_string();
    let link = link_for(&referral_id);
    note_in_crm(
        ctx,
        crm,
        o,
        Some((referral_id.clone(), link.clone())),
        &format!("✔ Shared with Partner Center as referral {referral_id}."),
        true,
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
        direction: Some(Direction::ToPartnerCenter),
        changes: Some(Value::Array(changes)),
        ..NewAuditEvent::new(
            AuditAction::ReferralCreated,
            "opportunity",
            &o.id,
            what.clone(),
        )
    })
    .await?;
    pending.end().await?;
    let linked = SeenOpportunity {
        referral_id: Some(referral_id.clone()),
        referral_link: Some(link),
        ..seen(o)
    };
    engine
        .store
        .see_opportunity(&linked, OffsetDateTime::now_utc())
        .await
        .map_err(StepError::store)?;
    let pushed = pushed(&owned, created["eTag"].as_str());
    result(ctx, &o.id, &[], &what, Some(&pushed)).await?;
    Ok((what.clone(), what))
}

/// A linked opportunity whose create was never audited: the create happened, its answer or the
/// write-back after it was lost, and Partner Center's announcement of the new referral linked the
/// opportunity before this run. Audited now, so the audit says the referral was created, once.
async fn created_meanwhile(ctx: &RunContext<'_>, o: &Opportunity) -> Result<(), StepError> {
    let pending = ctx.pending_create("referral", &o.id);
    if !pending.was_under_way().await? {
        return Ok(());
    }
    let referral_id = o.referral_id.as_deref().unwrap_or_default();
    ctx.record(NewAuditEvent {
        direction: Some(Direction::ToPartnerCenter),
        ..NewAuditEvent::new(
            AuditAction::ReferralCreated,
            "opportunity",
            &o.id,
            format!(
                "Referral {referral_id} created in Partner Center from “{}”; the answer to the create was lost, and the referral was linked through Partner Center's announcement of it.",
                o.name
            ),
        )
    })
    .await?;
    pending.end().await
}

/// What an update brings in step on the referral.
#[derive(Clone, Copy)]
enum Scope<'r> {
    /// Every field cosell maps ("CRM to Partner Center").
    Whole(&'r Ready<'r>),
    /// The solutions alone, these ids ("Microsoft Solutions to Partner Center").
    Solutions(&'r [String]),
}

impl Scope<'_> {
    /// The fields to bring in step, as they should be.
    fn owned(self, m: &Mapping) -> Vec<(&'static str, Value)> {
        match self {
            Scope::Whole(ready) => mapping::owned_fields(ready, m),
            Scope::Solutions(ids) => vec![(mapping::SOLUTIONS, mapping::solution_tags(ids, m))],
        }
    }

    fn changes(self, current: &Value, m: &Mapping) -> Vec<Change> {
        match self {
            Scope::Whole(ready) => mapping::changes(current, ready, m),
            Scope::Solutions(ids) => mapping::solutions_changes(current, ids, m),
        }
    }

    /// What Partner Center holds of cosell's fields once `owned` is in step on `referral` (as read
    /// or as the PATCH answered it), guarded by `e_tag`.
    fn pushed(self, owned: &[(&str, Value)], referral: &Value, e_tag: Option<&str>) -> Value {
        match self {
            Scope::Whole(_) => pushed(owned, e_tag),
            // The next update compares with every shared field: those this run left alone are
            // kept as Partner Center has them.
            Scope::Solutions(_) => {
                let mut fields: Vec<(&str, Value)> = mapping::OWNED_POINTERS
                    .iter()
                    .filter(|p| !owned.iter().any(|(o, _)| o == *p))
                    .filter_map(|p| Some((*p, referral.pointer(p)?.clone())))
                    .collect();
                fields.extend(owned.iter().cloned());
                pushed(&fields, e_tag)
            }
        }
    }
}

/// "Opportunity to Partner Center": the changed fields of `scope` as one JSON Patch with `If-Match`;
/// on 412, read the referral again, merge (the CRM wins for the fields cosell maps), try once more,
/// and audit it. `as_echo`: see [`note_in_crm`].
async fn update(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    o: &Opportunity,
    scope: Scope<'_>,
    mapping: &Mapping,
    last_sent: Option<Value>,
    as_echo: bool,
) -> Result<(String, String), StepError> {
    let referral_id = o.referral_id.clone().unwrap_or_default();
    let owned = scope.owned(mapping);
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
        skip(ctx, &o.id, AuditAction::ReferralSkippedClosed, &why).await?;
        result(ctx, &o.id, &[], &why, None).await?;
        return Ok((why.clone(), why));
    }
    let changes = scope.changes(&current, mapping);
    if changes.is_empty() {
        let why = format!("Referral {referral_id} already has the opportunity's values.");
        ctx.decide("Update the referral", StepOutcome::Skipped, &why)
            .await?;
        skip(ctx, &o.id, AuditAction::ReferralUnchanged, &why).await?;
        let pushed = scope.pushed(&owned, &current, Some(&e_tag));
        result(ctx, &o.id, &[], &why, Some(&pushed)).await?;
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
                skip(ctx, &o.id, AuditAction::ReferralSkippedClosed, &why).await?;
                result(ctx, &o.id, &[], &why, None).await?;
                return Ok((why.clone(), why));
            }
            if let Patched::Refused(why) = first {
                return Err(StepError::Permanent(FailureCause::Refused, why));
            }
            let theirs: Vec<Value> = owned
                .iter()
                .filter(|(path, _)| current.pointer(path) != fresh.pointer(path))
                .map(|(path, _)| {
                    json!({ "path": path, "from": current.pointer(path), "to": fresh.pointer(path) })
                })
                .collect();
            let merged = scope.changes(&fresh, mapping);
            let detail = format!(
                "Referral {referral_id} changed in Partner Center since cosell last wrote it ({} of the shared fields). Merge rule: the CRM's values win for the fields cosell maps; Partner Center's other changes are kept.",
                theirs.len()
            );
            ctx.record(NewAuditEvent {
                direction: Some(Direction::ToPartnerCenter),
                changes: Some(Value::Array(theirs)),
                ..NewAuditEvent::new(
                    AuditAction::ReferralUpdateConflict,
                    "opportunity",
                    &o.id,
                    detail,
                )
            })
            .await?;
            if merged.is_empty() {
                let why = format!(
                    "Referral {referral_id} already had the opportunity's values after the merge."
                );
                let pushed = scope.pushed(&owned, &fresh, Some(&fresh_tag));
                result(ctx, &o.id, &[], &why, Some(&pushed)).await?;
                return Ok((why.clone(), why));
            }
            match patch(ctx, &referral_id, &fresh_tag, &fresh, &merged).await? {
                Patched::Done(updated) => (updated, merged),
                Patched::Refused(why) => {
                    return Err(StepError::Permanent(FailureCause::Refused, why));
                }
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
    let action = if closing {
        AuditAction::ReferralClosed
    } else {
        AuditAction::ReferralUpdated
    };
    ctx.record(NewAuditEvent {
        direction: Some(Direction::ToPartnerCenter),
        changes: serde_json::to_value(&applied).ok(),
        ..NewAuditEvent::new(action, "opportunity", &o.id, what.clone())
    })
    .await?;
    note_in_crm(ctx, crm, o, None, &format!("✔ {what}"), as_echo).await?;
    let pushed = scope.pushed(&owned, &updated, updated["eTag"].as_str());
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
    let _writing = engine.in_flight.begin(Some(referral_id));
    let patched = ctx
        .calls()
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
        Ok(updated) => {
            super::echoes::remember(ctx, &updated).await?;
            Ok(Patched::Done(updated))
        }
        Err(CallFailure::Refused(_, CallError::PreconditionFailed(_))) => Ok(Patched::Stale),
        Err(CallFailure::Refused(system, e @ CallError::Rejected { .. })) => Ok(Patched::Refused(
            super::context::refusal_message(system, &e),
        )),
        Err(CallFailure::Refused(_, CallError::NotFound(_))) => Err(StepError::Permanent(
            FailureCause::Data,
            format!(
                "Referral {referral_id} no longer exists in Partner Center. Clear the opportunity's Referral Identifier to share it as a new referral."
            ),
        )),
        Err(e) => Err(e.into_step_error()),
    }
}

async fn read_referral(
    ctx: &RunContext<'_>,
    referral_id: &str,
) -> Result<(Value, String), StepError> {
    let engine = ctx.engine();
    let referral = ctx
        .calls()
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
        Err(CallFailure::Refused(_, CallError::NotFound(_))) => Err(StepError::Permanent(
            FailureCause::Data,
            format!(
                "Referral {referral_id} no longer exists in Partner Center. Clear the opportunity's Referral Identifier to share it as a new referral."
            ),
        )),
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

/// The one-line summary sellers read in the opportunity's Audit column, with the referral's id and link
/// when there is a new one; written only when something changes, and only while the opportunity is
/// open (closed ones are read-only). With `as_echo`, the version this write produces is remembered, so
/// the change feed ignores it; without, the feed reads it as a seller's change (the write carries
/// one this run did not send).
async fn note_in_crm(
    ctx: &RunContext<'_>,
    crm: &dyn CrmPort,
    o: &Opportunity,
    referral: Option<(String, String)>,
    summary: &str,
    as_echo: bool,
) -> Result<(), StepError> {
    if o.state != OpportunityState::Open {
        return Ok(());
    }
    let write = WriteBack {
        note: (o.note.as_deref() != Some(summary)).then(|| summary.to_string()),
        referral,
    };
    if write == WriteBack::default() {
        return Ok(());
    }
    let version = match crm.write_back(&ctx.calls(), &o.id, &write).await {
        Ok(version) => version,
        // A seller saved the opportunity between our read and this write: the fields written are
        // cosell's own, so the run reads it again and writes them on the latest version.
        Err(CrmError::Conflict(m)) => {
            return Err(StepError::Transient(
                format!(
                    "the opportunity changed while cosell wrote its result ({m}); writing it again on the latest version"
                ),
                None,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !as_echo {
        return Ok(());
    }
    ctx.engine()
        .store
        .record_written_version(&o.id, &version)
        .await
        .map_err(StepError::store)
}

async fn skip(
    ctx: &RunContext<'_>,
    id: &str,
    action: AuditAction,
    why: &str,
) -> Result<(), StepError> {
    ctx.record(NewAuditEvent {
        direction: Some(Direction::ToPartnerCenter),
        ..NewAuditEvent::new(action, "opportunity", id, why)
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
    /// audits it, then queues the run that acts on it. The run's id (None when one was already waiting).
    pub async fn set_sync(
        &self,
        crm_id: &str,
        on: bool,
        by: &str,
    ) -> Result<Option<i64>, super::EngineError> {
        use crate::domain::runs::RunTrigger;
        let version = self.crm_port()?.set_sync(&self.calls(), crm_id, on).await?;
        let now = OffsetDateTime::now_utc();
        // The feed will report this write: the run below already acts on it.
        self.store.record_written_version(crm_id, &version).await?;
        if let Some(mut mirrored) = self.store.opportunity(crm_id).await? {
            mirrored.seen.sync = on;
            mirrored.seen.version = Some(version);
            self.store.see_opportunity(&mirrored.seen, now).await?;
        }
        let action = if on {
            AuditAction::SyncSwitchedOn
        } else {
            AuditAction::SyncSwitchedOff
        };
        let detail = format!(
            "Sync with Partner Center switched {} (written to the CRM).",
            if on { "on" } else { "off" }
        );
        self.store
            .record_audit(
                &NewAuditEvent {
                    actor: by.to_string(),
                    direction: Some(Direction::ToPartnerCenter),
                    ..NewAuditEvent::new(action, "opportunity", crm_id, detail)
                },
                now,
            )
            .await?;
        Ok(self.queue_opportunity(crm_id, RunTrigger::Manual).await?)
    }
}
