//! Whether Partner Center's deliveries reach cosell: the deliveries this instance refused, by reason,
//! and the test event an admin asks Partner Center to send ("Send a test event" on Diagnostics).

use super::Engine;
use super::context::CallFailure;
use crate::clients::partner_center::webhook_registration::{AUDIENCE, Registration};
use crate::domain::connection::System;
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;
use time::OffsetDateTime;

/// Where the last test event is remembered (shared by every instance).
pub const TEST_EVENT_SETTING: &str = "webhooks.test_event";

/// The event Partner Center's test deliveries carry.
pub const TEST_EVENT: &str = "test-created";

/// A test event asked of Partner Center.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestEvent {
    pub correlation_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    pub by: String,
}

/// Deliveries this instance refused since it started, by reason: (how many, the last one).
#[derive(Debug, Default)]
pub struct Refusals(Mutex<BTreeMap<&'static str, (u64, OffsetDateTime)>>);

impl Refusals {
    pub fn record(&self, reason: &'static str) {
        let mut by_reason = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = by_reason
            .entry(reason)
            .or_insert((0, OffsetDateTime::now_utc()));
        entry.0 += 1;
        entry.1 = OffsetDateTime::now_utc();
    }

    pub fn list(&self) -> Vec<(&'static str, u64, OffsetDateTime)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(reason, (n, last))| (*reason, *n, *last))
            .collect()
    }
}

/// Why a test event could not be sent, in words for the admin.
#[derive(Debug, thiserror::Error)]
pub enum TestEventError {
    #[error(
        "No webhook is registered: register it first (Flows, or the fix of “Partner Center webhook registered here”)."
    )]
    NotRegistered,
    #[error("{0}")]
    Refused(String),
    #[error("cosell's database failed; try again.")]
    Store(#[from] StoreError),
}

impl From<CallFailure> for TestEventError {
    fn from(failure: CallFailure) -> TestEventError {
        TestEventError::Refused(failure.into_step_error().message().to_string())
    }
}

impl Engine {
    /// The deliveries this instance refused, by reason.
    pub fn webhook_refusals(&self) -> &Refusals {
        &self.refusals
    }

    /// Asks Partner Center to send a test delivery, adding `test-created` to the registration first if
    /// it lacks it (Partner Center sends test events only then). Remembers it for Diagnostics.
    pub async fn send_test_event(&self, by: &str) -> Result<TestEvent, TestEventError> {
        let calls = self.calls();
        let registration = calls
            .call(
                "View the webhook registration",
                System::PartnerCenter,
                AUDIENCE,
                |t| async move { self.webhooks.view(&t).await },
            )
            .await?
            .ok_or(TestEventError::NotRegistered)?;
        if !registration.lacks(&[TEST_EVENT]).is_empty() {
            let mut events = registration.webhook_events.clone();
            events.push(TEST_EVENT.to_string());
            let wanted = Registration {
                webhook_url: registration.webhook_url.clone(),
                webhook_events: events,
            };
            let wanted = &wanted;
            calls
                .call(
                    "Add test-created to the registration",
                    System::PartnerCenter,
                    AUDIENCE,
                    |t| async move { self.webhooks.put(&t, wanted, true).await },
                )
                .await?;
        }
        let correlation_id = calls
            .call(
                "Send a test event",
                System::PartnerCenter,
                AUDIENCE,
                |t| async move { self.webhooks.send_test_event(&t).await },
            )
            .await?;
        let sent = TestEvent {
            correlation_id,
            sent_at: OffsetDateTime::now_utc(),
            by: by.to_string(),
        };
        let value = serde_json::to_value(&sent).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store
            .set_setting(TEST_EVENT_SETTING, &value, by, sent.sent_at)
            .await?;
        self.diagnostics.invalidate();
        Ok(sent)
    }

    /// The last test event asked for, if any.
    pub async fn last_test_event(&self) -> Result<Option<TestEvent>, StoreError> {
        Ok(self
            .store
            .setting(TEST_EVENT_SETTING)
            .await?
            .and_then(|v| serde_json::from_value(v).ok()))
    }
}
