//! Diagnostics: the troubleshooting FAQ of Microsoft's co-sell connectors, answered by cosell itself.
//! Each [`Check`] says how one part is doing, what was looked at and when, and the fix — an admin
//! action or a page to open. The engine runs them (`engine::diagnostics`); the dashboard shows them.
//!
//! Kept in the domain (no I/O) so the browser renders the same typed checks the server made.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

super::runs::coded_enum!(
    /// A check's stable id, as the page's markup (`data-check`) and its anchors carry it; `ALL` in the
    /// order the page shows them.
    CheckId as "kebab-case" {
        ConnectionsConsented = "connections-consented",
        CredentialsCurrent = "credentials-current",
        PartnerCenterRole = "partner-center-role",
        CrmRole = "crm-role",
        FlowsOrder = "flows-order",
        FlowsConnections = "flows-connections",
        WebhookRegistered = "webhook-registered",
        WebhookArriving = "webhook-arriving",
        CrmFeedCurrent = "crm-feed-current",
        CrmCurrency = "crm-currency",
        CrmSellers = "crm-sellers",
        OpportunitiesNotReady = "opportunities-not-ready",
        SyncSwitch = "sync-switch",
        CrmIdUnknown = "crm-id-unknown",
        ReferralNotInCrm = "referral-not-in-crm",
        ReferralClosed = "referral-closed",
        RunsFailing = "runs-failing",
        ApiQuota = "api-quota",
        Storage = "storage",
    }
);

impl CheckId {
    /// The question the check answers, as the page titles it.
    pub fn title(self) -> &'static str {
        match self {
            CheckId::PartnerCenterRole => "Partner Center account is a Referrals admin",
            CheckId::CrmRole => "CRM account may run the connector",
            CheckId::CrmCurrency => "CRM currencies configured",
            CheckId::CrmSellers => "Owners of synced opportunities are complete sellers",
            CheckId::CrmFeedCurrent => "CRM changes read recently",
            CheckId::WebhookArriving => "Partner Center's deliveries arriving",
            CheckId::OpportunitiesNotReady => "Synced opportunities pass the rules",
            CheckId::SyncSwitch => "Linked opportunities have sync on",
            CheckId::CrmIdUnknown => "Referrals name only CRM ids the CRM has",
            CheckId::ReferralNotInCrm => "Every shared referral reached the CRM",
            CheckId::ReferralClosed => "Referrals and opportunities closed together",
            CheckId::ConnectionsConsented => "Both connections consented and answering",
            CheckId::CredentialsCurrent => "Passwords and sign-ins current",
            CheckId::FlowsOrder => "Flows on, in a valid order",
            CheckId::FlowsConnections => "Every flow on has working connections",
            CheckId::WebhookRegistered => "Partner Center webhook registered here",
            CheckId::RunsFailing => "No runs failing",
            CheckId::ApiQuota => "API calls within the daily quota",
            CheckId::Storage => "Database reachable",
        }
    }
}

super::runs::coded_enum!(
    /// How a part is doing. A check that could not look says why as `NotApplicable` or `Attention`,
    /// never `Ok`.
    CheckState as "kebab-case" {
        Ok = "ok",
        /// Works, but something is about to go wrong or could not be verified now.
        Attention = "attention",
        /// Broken: the fix is needed.
        Failing = "failing",
        /// Cannot be judged yet (e.g. what it looks at is not connected); the check says why.
        NotApplicable = "not-applicable",
    }
);

impl CheckState {
    pub fn label(self) -> &'static str {
        match self {
            CheckState::Ok => "OK",
            CheckState::Attention => "Attention",
            CheckState::Failing => "Failing",
            CheckState::NotApplicable => "Not applicable",
        }
    }

    /// Whether a person should act (what the Overview counts).
    pub fn needs_attention(self) -> bool {
        matches!(self, CheckState::Attention | CheckState::Failing)
    }
}

/// An admin action that fixes a check: one of the dashboard's existing server functions, with the
/// fields the page's form sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FixAction {
    /// `activate_all`: every flow on, children first.
    ActivateAll,
    /// `register_webhook` for the four referral events at this instance's callback URL, replacing
    /// whatever is registered (the admin asked for exactly this).
    RegisterWebhook { callback_url: String },
    /// `resubmit_failed` for the failed runs created since `from` (as the Runs filter writes it,
    /// `YYYY-MM-DDTHH:MM` in UTC).
    ResubmitFailed { from: String },
    /// `reconcile_now`: compare Partner Center with the CRM and queue what differs.
    Reconcile,
    /// `send_test_event`: Partner Center sends a test delivery to the registered URL.
    SendTestEvent,
}

impl FixAction {
    /// The server function the page's form posts to.
    pub fn endpoint(&self) -> &'static str {
        match self {
            FixAction::ActivateAll => "activate_all",
            FixAction::RegisterWebhook { .. } => "register_webhook",
            FixAction::ResubmitFailed { .. } => "resubmit_failed",
            FixAction::Reconcile => "reconcile_now",
            FixAction::SendTestEvent => "send_test_event",
        }
    }

    /// The button's words.
    pub fn label(&self) -> &'static str {
        match self {
            FixAction::ActivateAll => "Activate all in order",
            FixAction::RegisterWebhook { .. } => "Register the webhook here",
            FixAction::ResubmitFailed { .. } => "Resubmit these",
            FixAction::Reconcile => "Reconcile now",
            FixAction::SendTestEvent => "Send a test event",
        }
    }

    /// The fix in words, for someone who may not click it (a viewer).
    pub fn describe(&self) -> String {
        match self {
            FixAction::ActivateAll => {
                "A referrals admin switches every flow on, children first (“Activate all in order”)."
                    .into()
            }
            FixAction::RegisterWebhook { callback_url } => format!(
                "A referrals admin registers {callback_url} for the four referral events, replacing the current registration."
            ),
            FixAction::ResubmitFailed { .. } => {
                "A referrals admin resubmits these failed runs (“Resubmit these”).".into()
            }
            FixAction::Reconcile => {
                "A referrals admin reconciles Partner Center with the CRM (“Reconcile now”).".into()
            }
            FixAction::SendTestEvent => {
                "A referrals admin asks Partner Center for a test delivery (“Send a test event”).".into()
            }
        }
    }
}

/// What fixes a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fix {
    /// An admin action, done from the Diagnostics page.
    Action(FixAction),
    /// A page of the dashboard where the fix is done (e.g. Reconnect on Connections).
    Link { href: String, label: String },
}

impl Fix {
    pub fn link(href: impl Into<String>, label: impl Into<String>) -> Fix {
        Fix::Link {
            href: href.into(),
            label: label.into(),
        }
    }
}

/// One check's finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub id: CheckId,
    pub state: CheckState,
    /// Why this state, in a sentence or two.
    pub why: String,
    /// What it found item by item (one line each: a connection, a group of failed runs…); may be empty.
    pub details: Vec<String>,
    /// What was looked at, so a person can look there too.
    pub looked_at: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub fix: Option<Fix>,
}

/// Every check, run together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub checks: Vec<Check>,
}

impl Report {
    /// The checks someone should act on, failing ones first, each group in page order.
    pub fn needing_attention(&self) -> Vec<&Check> {
        let (failing, attention): (Vec<&Check>, Vec<&Check>) = self
            .checks
            .iter()
            .filter(|c| c.state.needs_attention())
            .partition(|c| c.state == CheckState::Failing);
        failing.into_iter().chain(attention).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_states_have_stable_codes() {
        for &id in CheckId::ALL {
            assert_eq!(CheckId::from_code(id.as_code()), Some(id));
            // The serialized form is the code too, so the browser and the markup agree.
            assert_eq!(
                serde_json::to_value(id).unwrap(),
                serde_json::Value::String(id.as_code().into())
            );
        }
        assert_eq!(CheckId::from_code("nope"), None);
        for (state, code) in [
            (CheckState::Ok, "ok"),
            (CheckState::Attention, "attention"),
            (CheckState::Failing, "failing"),
            (CheckState::NotApplicable, "not-applicable"),
        ] {
            assert_eq!(state.as_code(), code);
            assert_eq!(serde_json::to_value(state).unwrap(), code);
        }
    }

    #[test]
    fn failing_checks_come_first_among_those_needing_attention() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let check = |id, state| Check {
            id,
            state,
            why: String::new(),
            details: vec![],
            looked_at: String::new(),
            at,
            fix: None,
        };
        let report = Report {
            at,
            checks: vec![
                check(CheckId::ConnectionsConsented, CheckState::Ok),
                check(CheckId::FlowsOrder, CheckState::Attention),
                check(CheckId::WebhookRegistered, CheckState::NotApplicable),
                check(CheckId::RunsFailing, CheckState::Failing),
            ],
        };
        let ids: Vec<CheckId> = report.needing_attention().iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![CheckId::RunsFailing, CheckId::FlowsOrder]);
        let back: Report = serde_json::from_value(serde_json::to_value(&report).unwrap()).unwrap();
        assert_eq!(back, report);
    }
}
