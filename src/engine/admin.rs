//! What an admin does from the dashboard, each as one engine method that writes, audits and wakes the
//! workers together, so a server function only authorizes, parses, calls one of these and renders.

use super::crm::cosell_fields::CoSellFields;
use super::webhook_registration::RegistrationInput;
use super::{Engine, MAPPING_SETTING, RunFinished};
use crate::domain::flows::{
    ConnectionKind, Flow, activate_all_plan, check_activate, check_deactivate,
};
use crate::domain::mapping::Mapping;
use crate::domain::runs::{AuditAction, RunInput, RunTrigger};
use crate::domain::system::System;
use crate::store::{NewAuditEvent, NewRun, RunFilter, StoreError};
use time::OffsetDateTime;

/// Why an admin's action did not happen: refused (the message says why and what to do), or the
/// database failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Engine {
    fn cosell_fields_setting(&self) -> String {
        format!("{}/cosell_fields", self.crm.as_code())
    }

    /// Takes the co-sell fields' names an admin saved (on any instance) into the CRM port.
    pub(crate) async fn load_cosell_fields(&self) -> Result<(), StoreError> {
        let (Ok(port), Some(serde_json::Value::String(text))) = (
            self.crm_port(),
            self.store.setting(&self.cosell_fields_setting()).await?,
        ) else {
            return Ok(());
        };
        match CoSellFields::parse(self.crm, &text) {
            Ok(fields) if fields != port.cosell_fields() => port.set_cosell_fields(fields),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the stored co-sell field names do not read"),
        }
        Ok(())
    }

    /// The connections the flows run with that are in place.
    async fn connected_kinds(&self) -> Result<Vec<ConnectionKind>, StoreError> {
        let mut kinds = Vec::new();
        for (system, kind) in [
            (System::PartnerCenter, ConnectionKind::PartnerCenter),
            (System::Crm(self.crm), ConnectionKind::Crm),
        ] {
            if self.tokens.connected(system).await? {
                kinds.push(kind);
            }
        }
        Ok(kinds)
    }

    pub(crate) async fn audit_by(
        &self,
        by: &str,
        event: NewAuditEvent,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.store
            .record_audit(
                &NewAuditEvent {
                    actor: by.to_string(),
                    ..event
                },
                at,
            )
            .await
            .map(|_| ())
    }

    async fn audit_flows(&self, by: &str, flows: &[Flow], on: bool) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let action = if on {
            AuditAction::FlowActivated
        } else {
            AuditAction::FlowDeactivated
        };
        for flow in flows {
            let name = flow.name(self.crm);
            let detail = format!("“{name}” switched {}.", if on { "on" } else { "off" });
            self.audit_by(by, NewAuditEvent::new(action, "flow", &name, detail), now)
                .await?;
        }
        Ok(())
    }

    /// Switches one flow on or off, refusing a step out of order (naming the flow to switch first).
    pub async fn set_flow(&self, flow: Flow, on: bool, by: &str) -> Result<(), ActionError> {
        let crm = self.crm;
        let connected = self.connected_kinds().await?;
        self.store
            .set_flows_active(
                crm,
                &[flow],
                on,
                by,
                OffsetDateTime::now_utc(),
                |f, current| {
                    if on {
                        check_activate(crm, f, current, &|k| connected.contains(&k))
                    } else {
                        check_deactivate(crm, f, current)
                    }
                },
            )
            .await?
            .map_err(|e| ActionError::Refused(e.to_string()))?;
        self.diagnostics.invalidate();
        Ok(self.audit_flows(by, &[flow], on).await?)
    }

    /// Switches on every inactive flow, children first, all or nothing; the flows switched on.
    pub async fn activate_all(&self, by: &str) -> Result<Vec<Flow>, ActionError> {
        let crm = self.crm;
        let plan = activate_all_plan(crm, &self.store.active_flows(crm).await?);
        if plan.is_empty() {
            return Ok(plan);
        }
        let connected = self.connected_kinds().await?;
        self.store
            .set_flows_active(
                crm,
                &plan,
                true,
                by,
                OffsetDateTime::now_utc(),
                |f, current| check_activate(crm, f, current, &|k| connected.contains(&k)),
            )
            .await?
            .map_err(|e| ActionError::Refused(format!("Nothing was switched on. {e}.")))?;
        self.diagnostics.invalidate();
        self.audit_flows(by, &plan, true).await?;
        Ok(plan)
    }

    /// Queues a failed (or skipped) run again as a new run linked to it; the new run's id.
    pub async fn resubmit(&self, id: i64, by: &str) -> Result<i64, ActionError> {
        let now = OffsetDateTime::now_utc();
        let again = self
            .store
            .resubmit_run(id, now)
            .await?
            .map_err(|refusal| ActionError::Refused(refusal.to_string()))?;
        self.audit_resubmission(by, id, again, now).await?;
        self.diagnostics.invalidate();
        self.nudge();
        Ok(again)
    }

    /// Queues again every failed run the filter matches, `cap` at most (not child runs, not runs
    /// already resubmitted); the pairs (original, new).
    pub async fn resubmit_failed(
        &self,
        filter: &RunFilter,
        cap: i64,
        by: &str,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let again = self.store.resubmit_failed(filter, cap, now).await?;
        for (original, new) in &again {
            self.audit_resubmission(by, *original, *new, now).await?;
        }
        self.diagnostics.invalidate();
        self.nudge();
        Ok(again)
    }

    async fn audit_resubmission(
        &self,
        by: &str,
        original: i64,
        again: i64,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let detail = format!("Run {original} resubmitted as run {again}.");
        let event = NewAuditEvent {
            run_id: Some(again),
            ..NewAuditEvent::new(
                AuditAction::RunResubmitted,
                "run",
                &original.to_string(),
                detail,
            )
        };
        self.audit_by(by, event, at).await
    }

    /// Saves the value mapping and, when given, the co-sell fields' names in the CRM; both apply from
    /// the next run.
    pub async fn save_mapping(
        &self,
        mapping: &Mapping,
        fields: Option<CoSellFields>,
        by: &str,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        if let (Some(fields), Ok(port)) = (fields, self.crm_port())
            && fields != port.cosell_fields()
        {
            self.store
                .set_setting(
                    &self.cosell_fields_setting(),
                    &serde_json::Value::String(fields.to_text()),
                    by,
                    now,
                )
                .await?;
            port.set_cosell_fields(fields.clone());
            let event = NewAuditEvent::new(
                AuditAction::CoSellFieldsRenamed,
                "mapping",
                "cosell_fields",
                format!(
                    "The co-sell fields in {} are now: {}.",
                    self.crm.label(),
                    fields.to_text().replace('\n', ", ")
                ),
            );
            self.audit_by(by, event, now).await?;
        }
        let value = serde_json::to_value(mapping)
            .map_err(|e| StoreError::Corrupt(format!("the mapping does not serialize: {e}")))?;
        self.store
            .set_setting(MAPPING_SETTING, &value, by, now)
            .await?;
        let event = NewAuditEvent::new(
            AuditAction::MappingChanged,
            "mapping",
            "mapping",
            "The value mapping was saved; it applies from the next run.",
        );
        self.audit_by(by, event, now).await
    }

    /// Reads the opportunity from the CRM and checks every rule now, sending nothing to Partner
    /// Center; recorded as a run.
    pub async fn check_opportunity(
        &self,
        crm_id: &str,
        by: &str,
    ) -> Result<RunFinished, StoreError> {
        let run = NewRun {
            flow: Flow::CrmToPartnerCenter,
            trigger: RunTrigger::Manual,
            input: RunInput::Opportunity {
                opportunity_id: crm_id.to_string(),
                referral_id: None,
                check_only: true,
                fed_version: None,
            },
            record_id: Some(crm_id.to_string()),
            parent_run_id: None,
            resubmitted_from: None,
            settled: None,
        };
        self.run_now(&run, by).await
    }

    /// Runs "Partner Center Webhook Registration" now.
    pub async fn register_webhook(
        &self,
        input: RegistrationInput,
        by: &str,
    ) -> Result<RunFinished, StoreError> {
        let run = NewRun {
            flow: Flow::WebhookRegistration,
            trigger: RunTrigger::Manual,
            input: RunInput::Registration(input),
            record_id: None,
            parent_run_id: None,
            resubmitted_from: None,
            settled: None,
        };
        let done = self.run_now(&run, by).await;
        self.diagnostics.invalidate();
        done
    }

    /// Forgets a connection: its grant deleted, its cached tokens dropped. False when there was none.
    pub async fn disconnect(&self, system: System) -> Result<bool, StoreError> {
        let gone = self.store.delete_connection(system).await?;
        self.tokens.forget(system);
        self.diagnostics.invalidate();
        self.alerts_due();
        Ok(gone)
    }
}
