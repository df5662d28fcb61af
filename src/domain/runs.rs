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
    /// Which way a change went.
    Direction {
        ToCrm = "to_crm",
        ToPartnerCenter = "to_partner_center",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

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
}
