//! Runs of flows, their steps, and the audit trail, as the dashboard shows them.

use serde::{Deserialize, Serialize};

macro_rules! coded_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
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

coded_enum!(
    /// Where a run stands.
    RunStatus {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Nothing to do, on purpose (audited with the reason).
        Skipped = "skipped",
    }
);

coded_enum!(
    /// What started a run.
    RunTrigger {
        Webhook = "webhook",
        Manual = "manual",
        Child = "child",
        Resubmit = "resubmit",
        CrmChange = "crm_change",
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

impl AuditOutcome {
    /// The outcome an action's name says, by the naming convention of our actions (`…_skipped`,
    /// `…_ignored`, `…_unchanged`, `…_suppressed`, `…_failed`, `…_conflict`).
    pub fn of_action(action: &str) -> AuditOutcome {
        let has = |w: &str| action.split('_').any(|part| part == w);
        if has("failed") || has("invalid") {
            AuditOutcome::Failure
        } else if has("conflict") {
            AuditOutcome::Conflict
        } else if has("skipped") || has("ignored") || has("unchanged") || has("suppressed") {
            AuditOutcome::Skip
        } else {
            AuditOutcome::Effect
        }
    }
}

coded_enum!(
    /// Which way a change went.
    Direction {
        ToCrm = "to_crm",
        ToPartnerCenter = "to_partner_center",
    }
);

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
    fn an_actions_name_says_its_outcome() {
        for (action, outcome) in [
            ("opportunity_created", AuditOutcome::Effect),
            ("referral_linked", AuditOutcome::Effect),
            ("referral_skipped_flow_off", AuditOutcome::Skip),
            ("referral_ignored_unknown_crm_id", AuditOutcome::Skip),
            ("opportunity_unchanged", AuditOutcome::Skip),
            ("echo_suppressed", AuditOutcome::Skip),
            ("run_failed", AuditOutcome::Failure),
            ("opportunity_invalid", AuditOutcome::Failure),
            ("referral_update_conflict", AuditOutcome::Conflict),
            ("flow_activated", AuditOutcome::Effect),
        ] {
            assert_eq!(AuditOutcome::of_action(action), outcome, "{action}");
        }
    }
}
