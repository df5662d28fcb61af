//! Runs of flows, their steps, and the audit trail, as the dashboard shows them.

use serde::{Deserialize, Serialize};

/// An enum with a stable text code per variant (`as_code`/`from_code`, `ALL` in declaration order),
/// serialized in the given case (snake_case unless `as "…"` says otherwise) to match its codes.
macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($body:tt)* }) => {
        $crate::domain::runs::coded_enum!($(#[$m])* $name as "snake_case" { $($body)* });
    };
    ($(#[$m:meta])* $name:ident as $case:literal { $($(#[$vm:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = $case)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_code() == code)
            }
        }
    };
}
pub(crate) use coded_enum;

coded_enum!(
    /// Where a run stands.
    RunStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Nothing to do, on purpose (audited with the reason).
        Skipped = "skipped",
        /// Waiting for a person to act on a connection (an expired password, withdrawn consent, a
        /// missing role): no attempt is spent, and it resumes by itself once the connection works.
        Paused = "paused",
    }
);

impl RunStatus {
    /// As the Runs page shows it.
    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Queued => "Queued",
            RunStatus::Running => "Running",
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Failed => "Failed",
            RunStatus::Skipped => "Skipped",
            RunStatus::Paused => "Paused",
        }
    }
}

coded_enum!(
    /// Why a run failed, for the Overview's chart of failures (and for whoever reads the run).
    FailureCause {
        /// A record's data does not fit: a missing customer name, a currency the CRM lacks, a
        /// referral that no longer exists.
        Data = "data",
        /// An API refused the call (a 4xx other than sign-in): Partner Center's validation, a conflict.
        Refused = "refused",
        /// A connection needs a person: not connected, consent withdrawn, a missing role.
        Connection = "connection",
        /// A system kept failing (5xx, time-outs, throttling) until the attempts were spent.
        Unavailable = "unavailable",
        /// The worker running it stopped, or lost it to another.
        Interrupted = "interrupted",
        /// Anything else (cosell's own error).
        Other = "other",
    }
);

impl FailureCause {
    /// As the Overview's chart names it.
    pub fn label(self) -> &'static str {
        match self {
            FailureCause::Data => "Data to fix",
            FailureCause::Refused => "Refused by an API",
            FailureCause::Connection => "Connection needs a person",
            FailureCause::Unavailable => "System unavailable",
            FailureCause::Interrupted => "Interrupted",
            FailureCause::Other => "Other",
        }
    }
}

coded_enum!(
    /// What started a run.
    RunTrigger {
        Webhook = "webhook",
        Manual = "manual",
        Child = "child",
        Resubmit = "resubmit",
        CrmChange = "crm_change",
        /// By cosell itself: the daily reconciliation, or one after a connection came back.
        Schedule = "schedule",
        /// Queued by a reconciliation for a record that differed.
        Reconciliation = "reconciliation",
    }
);

coded_enum!(
    /// How one step went.
    StepOutcome {
        Ok = "ok",
        Skipped = "skipped",
        /// A transient failure; the run will be tried again.
        Retry = "retry",
        Failed = "failed",
    }
);

coded_enum!(
    /// What an audit event records.
    #[derive(Default)]
    AuditOutcome {
        /// Something changed in a system.
        #[default]
        Effect = "effect",
        /// Nothing was done, on purpose (with the reason): a skip, a validation failure, an echo.
        Skip = "skip",
        Failure = "failure",
        /// Both sides changed the same record; the merge rule decided.
        Conflict = "conflict",
    }
);

coded_enum!(
    /// What an audit event records, stored by its code (the names rows already carry).
    AuditAction {
        // Effects on a record.
        AccountMatched = "account_matched",
        AccountCreated = "account_created",
        ContactCreated = "contact_created",
        OpportunityCreated = "opportunity_created",
        OpportunityUpdated = "opportunity_updated",
        OpportunityClosed = "opportunity_closed",
        ReferralCreated = "referral_created",
        ReferralUpdated = "referral_updated",
        ReferralClosed = "referral_closed",
        ReferralLinked = "referral_linked",
        SyncSwitchedOn = "sync_switched_on",
        SyncSwitchedOff = "sync_switched_off",
        // What the admin changed.
        FlowActivated = "flow_activated",
        FlowDeactivated = "flow_deactivated",
        MappingChanged = "mapping_changed",
        RetentionChanged = "retention_changed",
        BudgetsChanged = "budgets_changed",
        AlertsChanged = "alerts_changed",
        AlertAcknowledged = "alert_acknowledged",
        CoSellFieldsRenamed = "cosell_fields_renamed",
        RunResubmitted = "run_resubmitted",
        ConnectionConnected = "connection_connected",
        WebhookRegistered = "webhook_registered",
        // Nothing done, on purpose.
        ReferralSkippedFlowOff = "referral_skipped_flow_off",
        ReferralSkippedMissing = "referral_skipped_missing",
        ReferralSkippedClosed = "referral_skipped_closed",
        ReferralIgnoredUnknownCrmId = "referral_ignored_unknown_crm_id",
        ReferralSkippedLead = "referral_skipped_lead",
        ReferralUnchanged = "referral_unchanged",
        OpportunityUnchanged = "opportunity_unchanged",
        OpportunityReadonlySkipped = "opportunity_readonly_skipped",
        OpportunitySkippedMissing = "opportunity_skipped_missing",
        OpportunitySkippedSyncOff = "opportunity_skipped_sync_off",
        /// A solutions-only update of an opportunity that has no referral (yet, or any more).
        OpportunitySkippedUnlinked = "opportunity_skipped_unlinked",
        OpportunitySkippedFlowOff = "opportunity_skipped_flow_off",
        RunSkippedFlowOff = "run_skipped_flow_off",
        EchoSuppressed = "echo_suppressed",
        // Failures and conflicts.
        OpportunityInvalid = "opportunity_invalid",
        RunFailed = "run_failed",
        ReferralUpdateConflict = "referral_update_conflict",
    }
);

impl AuditAction {
    /// What kind of event the action is.
    pub fn outcome(self) -> AuditOutcome {
        use AuditAction::*;
        match self {
            OpportunityInvalid | RunFailed => AuditOutcome::Failure,
            ReferralUpdateConflict => AuditOutcome::Conflict,
            ReferralSkippedFlowOff
            | ReferralSkippedMissing
            | ReferralSkippedClosed
            | ReferralIgnoredUnknownCrmId
            | ReferralSkippedLead
            | ReferralUnchanged
            | OpportunityUnchanged
            | OpportunityReadonlySkipped
            | OpportunitySkippedMissing
            | OpportunitySkippedSyncOff
            | OpportunitySkippedUnlinked
            | OpportunitySkippedFlowOff
            | RunSkippedFlowOff
            | EchoSuppressed => AuditOutcome::Skip,
            _ => AuditOutcome::Effect,
        }
    }
}

/// What a run starts from, kept with the run so that a resubmission repeats it. Stored as the JSON
/// object it serializes to (the shapes rows already hold); each variant's fields tell it apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunInput {
    /// A Partner Center webhook event, stored in the inbox.
    Event {
        event: String,
        referral_id: String,
        inbox_id: i64,
        /// The event's `ResourceChangeUtcDate`: tells the announcement of cosell's own write from
        /// anyone else's change without reading the referral.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        changed_at: Option<String>,
    },
    /// "Partner Center Webhook Registration", as the Flows page submits it.
    Registration(RegistrationInput),
    /// An opportunity to share (or, with `check_only`, to judge without sending anything).
    Opportunity {
        opportunity_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        referral_id: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        check_only: bool,
        /// The opportunity's version as the change feed read it, when the feed queued the run for the
        /// opportunity's own change: the run tells cosell's own write (read before cosell had
        /// recorded it as its own) from a seller's without a call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fed_version: Option<String>,
    },
    /// A referral to bring into the CRM (child runs name the account they work on).
    Referral {
        referral_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
    },
    /// A reconciliation, and why it was started.
    Reconciliation { reason: String },
}

/// How far a reconciliation has come (shown as a progress bar while it works).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Records compared so far.
    pub compared: i64,
    /// Records to compare: referrals updated since the last reconciliation and synced opportunities.
    pub total: i64,
    /// Records that differed.
    pub differences: i64,
    /// Runs queued for them.
    pub queued: i64,
}

impl Progress {
    /// Percent compared, 0–100 (100 when there was nothing to compare).
    pub fn percent(&self) -> i64 {
        if self.total <= 0 {
            100
        } else {
            (self.compared * 100 / self.total).clamp(0, 100)
        }
    }
}

/// The webhook registration an admin asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationInput {
    pub callback_url: String,
    pub events: Vec<String>,
    pub overwrite: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl RunInput {
    pub fn opportunity(id: &str) -> RunInput {
        RunInput::Opportunity {
            opportunity_id: id.to_string(),
            referral_id: None,
            check_only: false,
            fed_version: None,
        }
    }

    pub fn referral(id: &str) -> RunInput {
        RunInput::Referral {
            referral_id: id.to_string(),
            account_id: None,
        }
    }

    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A stored input, read back; None when it is none of the shapes above.
    pub fn from_value(value: &serde_json::Value) -> Option<RunInput> {
        serde_json::from_value(value.clone()).ok()
    }
}

coded_enum!(
    /// Which way a change went.
    Direction {
        ToCrm = "to_crm",
        ToPartnerCenter = "to_partner_center",
    }
);

/// A moment as the dashboard shows it: to the minute, in UTC.
pub fn when(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// A moment as a filter's From/Before field takes it (what [`parse_utc_moment`] reads), to the minute.
pub fn filter_moment(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]"
        ))
        .unwrap_or_default()
}

/// A moment typed into a filter, read as UTC: `2026-11-30` (midnight), `2026-11-30T14:05` (what a
/// browser's date-and-time field sends), `2026-11-30 14:05`, either with seconds. None when it is none
/// of these.
pub fn parse_utc_moment(text: &str) -> Option<time::OffsetDateTime> {
    use time::macros::format_description;
    let text = text.trim();
    let date_time = [
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    ];
    date_time
        .iter()
        .find_map(|f| time::PrimitiveDateTime::parse(text, f).ok())
        .or_else(|| {
            time::Date::parse(text, format_description!("[year]-[month]-[day]"))
                .ok()
                .map(|d| d.midnight())
        })
        .map(|t| t.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn filter_moments_are_read_as_utc() {
        for (text, expected) in [
            ("2026-11-30", Some(datetime!(2026-11-30 00:00 UTC))),
            ("2026-11-30T14:05", Some(datetime!(2026-11-30 14:05 UTC))),
            (
                " 2026-11-30 14:05:09 ",
                Some(datetime!(2026-11-30 14:05:09 UTC)),
            ),
            (
                "2026-11-30T14:05:09",
                Some(datetime!(2026-11-30 14:05:09 UTC)),
            ),
            ("2026-02-30", None),
            ("yesterday", None),
            ("30/11/2026", None),
            ("", None),
        ] {
            assert_eq!(parse_utc_moment(text), expected, "{text:?}");
        }
    }

    #[test]
    fn codes_round_trip() {
        for s in RunStatus::ALL {
            assert_eq!(RunStatus::from_code(s.as_code()), Some(*s));
        }
        for t in RunTrigger::ALL {
            assert_eq!(RunTrigger::from_code(t.as_code()), Some(*t));
        }
        for o in StepOutcome::ALL {
            assert_eq!(StepOutcome::from_code(o.as_code()), Some(*o));
        }
        assert_eq!(RunStatus::from_code("nope"), None);
    }

    #[test]
    fn actions_say_their_outcome_and_keep_their_codes() {
        for (action, outcome) in [
            (AuditAction::OpportunityCreated, AuditOutcome::Effect),
            (AuditAction::ReferralLinked, AuditOutcome::Effect),
            (AuditAction::ReferralSkippedFlowOff, AuditOutcome::Skip),
            (AuditAction::ReferralIgnoredUnknownCrmId, AuditOutcome::Skip),
            (AuditAction::OpportunityUnchanged, AuditOutcome::Skip),
            (AuditAction::EchoSuppressed, AuditOutcome::Skip),
            (AuditAction::RunFailed, AuditOutcome::Failure),
            (AuditAction::OpportunityInvalid, AuditOutcome::Failure),
            (AuditAction::ReferralUpdateConflict, AuditOutcome::Conflict),
            (AuditAction::FlowActivated, AuditOutcome::Effect),
        ] {
            assert_eq!(action.outcome(), outcome, "{action:?}");
        }
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::from_code(a.as_code()), Some(*a));
        }
    }

    #[test]
    fn run_inputs_keep_the_shapes_stored_rows_have() {
        use serde_json::json;
        for (stored, typed) in [
            (
                json!({ "event": "referral-created", "referral_id": "r1", "inbox_id": 7 }),
                RunInput::Event {
                    event: "referral-created".into(),
                    referral_id: "r1".into(),
                    inbox_id: 7,
                    changed_at: None,
                },
            ),
            (
                json!({ "event": "referral-updated", "referral_id": "r1", "inbox_id": 8,
                        "changed_at": "2018-02-17T00:05:39.5485487+00:00" }),
                RunInput::Event {
                    event: "referral-updated".into(),
                    referral_id: "r1".into(),
                    inbox_id: 8,
                    changed_at: Some("2018-02-17T00:05:39.5485487+00:00".into()),
                },
            ),
            (
                json!({ "opportunity_id": "o1" }),
                RunInput::opportunity("o1"),
            ),
            (
                json!({ "opportunity_id": "o1", "check_only": true }),
                RunInput::Opportunity {
                    opportunity_id: "o1".into(),
                    referral_id: None,
                    check_only: true,
                    fed_version: None,
                },
            ),
            (
                json!({ "opportunity_id": "o1", "referral_id": "r1" }),
                RunInput::Opportunity {
                    opportunity_id: "o1".into(),
                    referral_id: Some("r1".into()),
                    check_only: false,
                    fed_version: None,
                },
            ),
            (
                json!({ "opportunity_id": "o1", "referral_id": "r1", "fed_version": "7" }),
                RunInput::Opportunity {
                    opportunity_id: "o1".into(),
                    referral_id: Some("r1".into()),
                    check_only: false,
                    fed_version: Some("7".into()),
                },
            ),
            (json!({ "referral_id": "r1" }), RunInput::referral("r1")),
            (
                json!({ "referral_id": "r1", "account_id": "a1" }),
                RunInput::Referral {
                    referral_id: "r1".into(),
                    account_id: Some("a1".into()),
                },
            ),
            (
                json!({ "callback_url": "https://x/h", "events": ["referral-created"], "overwrite": false }),
                RunInput::Registration(RegistrationInput {
                    callback_url: "https://x/h".into(),
                    events: vec!["referral-created".into()],
                    overwrite: false,
                }),
            ),
        ] {
            assert_eq!(
                RunInput::from_value(&stored).as_ref(),
                Some(&typed),
                "{stored}"
            );
            assert_eq!(typed.to_value(), stored);
        }
        // Rows written before inputs were typed said `"referral_id": null` for a first share.
        assert_eq!(
            RunInput::from_value(&json!({ "opportunity_id": "o1", "referral_id": null })),
            Some(RunInput::opportunity("o1"))
        );
        assert_eq!(RunInput::from_value(&json!({ "nothing": 1 })), None);
    }
}
