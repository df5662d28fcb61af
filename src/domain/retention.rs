//! How long history is kept: runs with their steps (default 90 days; Power Automate keeps 28) and audit
//! events (default: forever, they are the answer to "what happened to this deal?").

use serde::{Deserialize, Serialize};
use std::fmt;

/// A number of days history is kept: at least one, at most ten years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct KeepDays(u32);

impl KeepDays {
    pub const MAX: u32 = 3650;

    pub fn new(days: u32) -> Result<KeepDays, RetentionError> {
        if (1..=Self::MAX).contains(&days) {
            Ok(KeepDays(days))
        } else {
            Err(RetentionError::OutOfRange(days.to_string()))
        }
    }

    /// From what an admin typed (surrounding spaces ignored).
    pub fn parse(text: &str) -> Result<KeepDays, RetentionError> {
        let text = text.trim();
        match text.parse::<u32>() {
            Ok(days) => KeepDays::new(days),
            Err(_) => Err(RetentionError::NotANumber(text.to_string())),
        }
    }

    pub fn days(self) -> u32 {
        self.0
    }

    pub fn as_duration(self) -> time::Duration {
        time::Duration::days(i64::from(self.0))
    }
}

impl TryFrom<u32> for KeepDays {
    type Error = RetentionError;
    fn try_from(days: u32) -> Result<KeepDays, RetentionError> {
        KeepDays::new(days)
    }
}

impl From<KeepDays> for u32 {
    fn from(d: KeepDays) -> u32 {
        d.0
    }
}

impl fmt::Display for KeepDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => write!(f, "1 day"),
            n => write!(f, "{n} days"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("“{0}” is not a whole number of days.")]
    NotANumber(String),
    #[error("{0} days is out of range: keep history from 1 to 3650 days (ten years).")]
    OutOfRange(String),
}

/// What is kept, and for how long. Stored as the setting [`Retention::SETTING`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Runs and their steps, counted from when the run was queued. Runs still queued or running are
    /// never removed.
    pub runs: KeepDays,
    /// Audit events; `None`: kept forever.
    pub audit: Option<KeepDays>,
}

impl Retention {
    pub const SETTING: &'static str = "retention";
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            runs: KeepDays(90),
            audit: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_whole_and_within_ten_years() {
        assert_eq!(KeepDays::parse(" 28 ").unwrap().days(), 28);
        assert_eq!(
            KeepDays::parse("0"),
            Err(RetentionError::OutOfRange("0".into()))
        );
        assert_eq!(
            KeepDays::parse("3651"),
            Err(RetentionError::OutOfRange("3651".into()))
        );
        assert_eq!(
            KeepDays::parse("2.5"),
            Err(RetentionError::NotANumber("2.5".into()))
        );
        assert_eq!(
            KeepDays::parse("-1"),
            Err(RetentionError::NotANumber("-1".into()))
        );
        assert_eq!(KeepDays::new(1).unwrap().to_string(), "1 day");
    }

    #[test]
    fn a_stored_retention_is_checked_as_it_is_read() {
        let default = Retention::default();
        assert_eq!((default.runs.days(), default.audit), (90, None));
        let stored = serde_json::json!({ "runs": 28, "audit": 365 });
        let read: Retention = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(serde_json::to_value(read).unwrap(), stored);
        assert!(
            serde_json::from_value::<Retention>(serde_json::json!({ "runs": 0, "audit": null }))
                .is_err()
        );
    }
}
