//! The flow catalog: the flows an admin already knows from Microsoft's co-sell connectors, what each
//! calls, which connections it uses, and the order they must be switched on in.
//!
//! Children must be active before their parents (Power Automate's `WorkflowTriggerNotFound` when they
//! are not). The activation order is derived from the dependencies below, keeping the documented order
//! (partner-center.md §3.2) wherever it agrees with them. Where it does not: the 2023 Dynamics page lists
//! "Dynamics 365 to Partner Center" (7) before "Dynamics 365 Opportunity to Partner Center" (8), yet 7
//! calls 8 (ARCHITECTURE.md), so 8 is activated first. The Salesforce troubleshooting FAQ activates
//! "Salesforce to Partner Center" early, hinting that it is a child there (unconfirmed); both CRMs share
//! one model here.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub use super::system::Crm;

/// A connection a flow runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionKind {
    /// Referrals API and webhook registration, as a Partner Center Referrals admin.
    PartnerCenter,
    /// The CRM, as a System Administrator or System Customizer.
    Crm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    WebhookRegistration,
    Customize,
    CreateReferral,
    /// Dynamics 365 only: account match by name + postal code, contacts.
    Helper,
    ReferralUpdatesToCrm,
    PartnerCenterToCrm,
    CrmToPartnerCenter,
    OpportunityToPartnerCenter,
    SolutionsToPartnerCenter,
    /// cosell's own, not one of Microsoft's flows: compares Partner Center with the CRM and queues a run
    /// of the flow above for each record that differs (missed webhooks, a connector that was down,
    /// edits made while a flow was off). Always available; the runs it queues obey their flows.
    Reconciliation,
}

/// What starts a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Run by the admin from the Flows page.
    Manual,
    /// Called by another flow.
    Child,
    /// A Partner Center webhook.
    Webhook,
    /// A change seen in the CRM.
    CrmChange,
}

impl Flow {
    pub const ALL: [Flow; 10] = [
        Flow::WebhookRegistration,
        Flow::Customize,
        Flow::CreateReferral,
        Flow::Helper,
        Flow::ReferralUpdatesToCrm,
        Flow::PartnerCenterToCrm,
        Flow::CrmToPartnerCenter,
        Flow::OpportunityToPartnerCenter,
        Flow::SolutionsToPartnerCenter,
        Flow::Reconciliation,
    ];

    /// A stable name for storage and URLs.
    pub fn as_code(self) -> &'static str {
        match self {
            Flow::WebhookRegistration => "webhook_registration",
            Flow::Customize => "customize",
            Flow::CreateReferral => "create_referral",
            Flow::Helper => "helper",
            Flow::ReferralUpdatesToCrm => "referral_updates_to_crm",
            Flow::PartnerCenterToCrm => "partner_center_to_crm",
            Flow::CrmToPartnerCenter => "crm_to_partner_center",
            Flow::OpportunityToPartnerCenter => "opportunity_to_partner_center",
            Flow::SolutionsToPartnerCenter => "solutions_to_partner_center",
            Flow::Reconciliation => "reconciliation",
        }
    }

    pub fn from_code(code: &str) -> Option<Flow> {
        Flow::ALL.into_iter().find(|f| f.as_code() == code)
    }

    /// The catalog of a CRM, in the documented order.
    pub fn documented(crm: Crm) -> &'static [Flow] {
        use Flow::*;
        match crm {
            Crm::Dynamics365 => &[
                WebhookRegistration,
                Customize,
                CreateReferral,
                Helper,
                ReferralUpdatesToCrm,
                PartnerCenterToCrm,
                CrmToPartnerCenter,
                OpportunityToPartnerCenter,
                SolutionsToPartnerCenter,
            ],
            Crm::Salesforce => &[
                WebhookRegistration,
                Customize,
                CreateReferral,
                ReferralUpdatesToCrm,
                PartnerCenterToCrm,
                CrmToPartnerCenter,
                OpportunityToPartnerCenter,
                SolutionsToPartnerCenter,
            ],
        }
    }

    /// The flows this one calls; they must be active first.
    pub fn children(self, crm: Crm) -> &'static [Flow] {
        use Flow::*;
        match (self, crm) {
            (WebhookRegistration | Customize, _) => &[],
            (CreateReferral | Helper | ReferralUpdatesToCrm | OpportunityToPartnerCenter, _) => {
                &[Customize]
            }
            (PartnerCenterToCrm, Crm::Dynamics365) => &[Helper, ReferralUpdatesToCrm],
            (PartnerCenterToCrm, Crm::Salesforce) => &[ReferralUpdatesToCrm],
            (CrmToPartnerCenter, _) => &[CreateReferral, OpportunityToPartnerCenter],
            (SolutionsToPartnerCenter, _) => &[OpportunityToPartnerCenter],
            (Reconciliation, _) => &[],
        }
    }

    pub fn trigger(self) -> Trigger {
        match self {
            Flow::WebhookRegistration | Flow::Reconciliation => Trigger::Manual,
            Flow::PartnerCenterToCrm => Trigger::Webhook,
            Flow::CrmToPartnerCenter | Flow::SolutionsToPartnerCenter => Trigger::CrmChange,
            _ => Trigger::Child,
        }
    }

    pub fn connections(self) -> &'static [ConnectionKind] {
        match self {
            Flow::WebhookRegistration => &[ConnectionKind::PartnerCenter],
            Flow::Customize | Flow::Helper => &[ConnectionKind::Crm],
            _ => &[ConnectionKind::PartnerCenter, ConnectionKind::Crm],
        }
    }

    /// The name admins know from the Power Automate solution.
    pub fn name(self, crm: Crm) -> String {
        let c = crm.label();
        match self {
            Flow::WebhookRegistration => "Partner Center Webhook Registration".into(),
            Flow::Customize => format!("[Customize] Create or Get Details from {c}"),
            Flow::CreateReferral => format!("Create Co-sell Referral - {c} to Partner Center"),
            Flow::Helper => format!("Partner Center to {c} - Helper"),
            Flow::ReferralUpdatesToCrm => {
                format!("Partner Center Microsoft Co-sell Referral Updates to {c}")
            }
            Flow::PartnerCenterToCrm => format!("Partner Center to {c}"),
            Flow::CrmToPartnerCenter => format!("{c} to Partner Center"),
            Flow::OpportunityToPartnerCenter => format!("{c} Opportunity to Partner Center"),
            Flow::SolutionsToPartnerCenter => format!("{c} Microsoft Solutions to Partner Center"),
            Flow::Reconciliation => format!("Reconciliation of Partner Center and {c}"),
        }
    }

    /// The flows that call this one.
    pub fn parents(self, crm: Crm) -> impl Iterator<Item = Flow> {
        Flow::documented(crm)
            .iter()
            .copied()
            .filter(move |p| p.children(crm).contains(&self))
    }

    pub fn exists_for(self, crm: Crm) -> bool {
        Flow::documented(crm).contains(&self)
    }
}

/// The order to switch flows on: every child before its parents, otherwise the documented order.
pub fn activation_order(crm: Crm) -> Vec<Flow> {
    let documented = Flow::documented(crm);
    let mut order: Vec<Flow> = Vec::with_capacity(documented.len());
    while order.len() < documented.len() {
        // The first documented flow not yet placed whose children are all placed.
        let next = documented
            .iter()
            .copied()
            .find(|f| !order.contains(f) && f.children(crm).iter().all(|c| order.contains(c)))
            .expect("the dependency graph has no cycle");
        order.push(next);
    }
    order
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationError {
    #[error("“{flow}” is not part of the {crm} solution")]
    NotInCatalog { flow: String, crm: &'static str },
    #[error("Activate “{first}” first: “{flow}” calls it")]
    ChildInactive { flow: String, first: String },
    #[error("Connect {connection} first: “{flow}” runs with that connection")]
    NotConnected {
        flow: String,
        connection: &'static str,
    },
    #[error("Deactivate “{parent}” first: it calls “{flow}”")]
    ParentActive { flow: String, parent: String },
}

fn connection_label(kind: ConnectionKind, crm: Crm) -> &'static str {
    match kind {
        ConnectionKind::PartnerCenter => "Partner Center",
        ConnectionKind::Crm => crm.label(),
    }
}

/// Whether `flow` may be switched on now. The first missing child is named (in activation order).
pub fn check_activate(
    crm: Crm,
    flow: Flow,
    active: &BTreeSet<Flow>,
    connected: &dyn Fn(ConnectionKind) -> bool,
) -> Result<(), ActivationError> {
    if !flow.exists_for(crm) {
        return Err(ActivationError::NotInCatalog {
            flow: flow.name(crm),
            crm: crm.label(),
        });
    }
    if let Some(kind) = flow.connections().iter().copied().find(|k| !connected(*k)) {
        return Err(ActivationError::NotConnected {
            flow: flow.name(crm),
            connection: connection_label(kind, crm),
        });
    }
    let order = activation_order(crm);
    if let Some(missing) = order
        .iter()
        .copied()
        .find(|f| flow.children(crm).contains(f) && !active.contains(f))
    {
        return Err(ActivationError::ChildInactive {
            flow: flow.name(crm),
            first: missing.name(crm),
        });
    }
    Ok(())
}

/// Whether `flow` may be switched off now: not while a flow that calls it is on.
pub fn check_deactivate(
    crm: Crm,
    flow: Flow,
    active: &BTreeSet<Flow>,
) -> Result<(), ActivationError> {
    match flow.parents(crm).find(|p| active.contains(p)) {
        Some(parent) => Err(ActivationError::ParentActive {
            flow: flow.name(crm),
            parent: parent.name(crm),
        }),
        None => Ok(()),
    }
}

/// "Activate all in order": the inactive flows, in the order they will be switched on.
pub fn activate_all_plan(crm: Crm, active: &BTreeSet<Flow>) -> Vec<Flow> {
    activation_order(crm)
        .into_iter()
        .filter(|f| !active.contains(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Flow::*;

    #[test]
    fn codes_round_trip() {
        for f in Flow::ALL {
            assert_eq!(Flow::from_code(f.as_code()), Some(f));
        }
        for c in [Crm::Dynamics365, Crm::Salesforce] {
            assert_eq!(Crm::from_code(c.as_code()), Some(c));
        }
        assert_eq!(Flow::from_code("nope"), None);
    }

    fn all_connected(_: ConnectionKind) -> bool {
        true
    }

    #[test]
    fn dynamics_order_keeps_the_documented_order_except_where_a_child_comes_later() {
        assert_eq!(
            activation_order(Crm::Dynamics365),
            [
                WebhookRegistration,
                Customize,
                CreateReferral,
                Helper,
                ReferralUpdatesToCrm,
                PartnerCenterToCrm,
                OpportunityToPartnerCenter,
                CrmToPartnerCenter,
                SolutionsToPartnerCenter
            ]
        );
    }

    #[test]
    fn salesforce_has_eight_flows_and_no_helper() {
        let order = activation_order(Crm::Salesforce);
        assert_eq!(order.len(), 8);
        assert!(!order.contains(&Helper));
        assert_eq!(
            Flow::Helper.name(Crm::Salesforce),
            "Partner Center to Salesforce - Helper"
        );
        assert!(matches!(
            check_activate(Crm::Salesforce, Helper, &BTreeSet::new(), &all_connected),
            Err(ActivationError::NotInCatalog { .. })
        ));
    }

    #[test]
    fn every_child_comes_before_its_parents_in_both_catalogs() {
        for crm in [Crm::Dynamics365, Crm::Salesforce] {
            let order = activation_order(crm);
            for (i, flow) in order.iter().enumerate() {
                for child in flow.children(crm) {
                    let at = order
                        .iter()
                        .position(|f| f == child)
                        .expect("child in catalog");
                    assert!(at < i, "{crm:?}: {child:?} after {flow:?}");
                }
            }
        }
    }

    #[test]
    fn activating_out_of_order_names_the_flow_to_activate_first() {
        let crm = Crm::Dynamics365;
        let mut active = BTreeSet::new();
        let err = check_activate(crm, PartnerCenterToCrm, &active, &all_connected).unwrap_err();
        assert_eq!(
            err,
            ActivationError::ChildInactive {
                flow: "Partner Center to Dynamics 365".into(),
                first: "Partner Center to Dynamics 365 - Helper".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            "Activate “Partner Center to Dynamics 365 - Helper” first: “Partner Center to Dynamics 365” calls it"
        );
        active.extend([Customize, Helper]);
        let err = check_activate(crm, PartnerCenterToCrm, &active, &all_connected).unwrap_err();
        assert!(
            err.to_string()
                .contains("Partner Center Microsoft Co-sell Referral Updates to Dynamics 365")
        );
        active.insert(ReferralUpdatesToCrm);
        assert_eq!(
            check_activate(crm, PartnerCenterToCrm, &active, &all_connected),
            Ok(())
        );
    }

    #[test]
    fn a_flow_needs_its_connections() {
        let only_crm = |k: ConnectionKind| k == ConnectionKind::Crm;
        assert_eq!(
            check_activate(Crm::Dynamics365, Customize, &BTreeSet::new(), &only_crm),
            Ok(())
        );
        let err = check_activate(
            Crm::Dynamics365,
            WebhookRegistration,
            &BTreeSet::new(),
            &only_crm,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Connect Partner Center first: “Partner Center Webhook Registration” runs with that connection"
        );
        let none = |_: ConnectionKind| false;
        let err = check_activate(Crm::Salesforce, Customize, &BTreeSet::new(), &none).unwrap_err();
        assert!(err.to_string().starts_with("Connect Salesforce first"));
    }

    #[test]
    fn a_child_cannot_be_switched_off_under_an_active_parent() {
        let crm = Crm::Dynamics365;
        let active: BTreeSet<Flow> =
            [Customize, Helper, ReferralUpdatesToCrm, PartnerCenterToCrm].into();
        let err = check_deactivate(crm, Helper, &active).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Deactivate “Partner Center to Dynamics 365” first: it calls “Partner Center to Dynamics 365 - Helper”"
        );
        assert_eq!(check_deactivate(crm, PartnerCenterToCrm, &active), Ok(()));
        assert_eq!(check_deactivate(crm, WebhookRegistration, &active), Ok(()));
    }

    #[test]
    fn activate_all_goes_in_order_and_every_step_is_allowed() {
        for crm in [Crm::Dynamics365, Crm::Salesforce] {
            let mut active: BTreeSet<Flow> = [Customize].into();
            let plan = activate_all_plan(crm, &active);
            assert!(!plan.contains(&Customize));
            for flow in plan {
                assert_eq!(
                    check_activate(crm, flow, &active, &all_connected),
                    Ok(()),
                    "{crm:?} {flow:?}"
                );
                active.insert(flow);
            }
            assert_eq!(active.len(), Flow::documented(crm).len());
        }
    }

    #[test]
    fn triggers_and_connections() {
        assert_eq!(WebhookRegistration.trigger(), Trigger::Manual);
        assert_eq!(PartnerCenterToCrm.trigger(), Trigger::Webhook);
        assert_eq!(CrmToPartnerCenter.trigger(), Trigger::CrmChange);
        assert_eq!(Helper.trigger(), Trigger::Child);
        assert_eq!(
            WebhookRegistration.connections(),
            &[ConnectionKind::PartnerCenter]
        );
        assert_eq!(
            CreateReferral.name(Crm::Dynamics365),
            "Create Co-sell Referral - Dynamics 365 to Partner Center"
        );
    }
}
