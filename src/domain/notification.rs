//! A Partner Center webhook notification (partner-center.md §2.3): thin, PascalCase, naming the changed
//! referral by a `ResourceUri` on another host than the Referrals API. We keep only the referral id.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventName {
    #[serde(rename = "referral-created")]
    ReferralCreated,
    #[serde(rename = "referral-updated")]
    ReferralUpdated,
    #[serde(rename = "related-referral-created")]
    RelatedReferralCreated,
    #[serde(rename = "related-referral-updated")]
    RelatedReferralUpdated,
    /// A validation event sent from the registration API.
    #[serde(rename = "test-created")]
    TestCreated,
}

impl EventName {
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::ReferralCreated => "referral-created",
            EventName::ReferralUpdated => "referral-updated",
            EventName::RelatedReferralCreated => "related-referral-created",
            EventName::RelatedReferralUpdated => "related-referral-updated",
            EventName::TestCreated => "test-created",
        }
    }
}

/// A parsed notification. Once you hold one, its fields are usable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub event: EventName,
    pub resource_uri: String,
    /// The trailing id of `ResourceUri`: the referral (or, for a test event, the correlation id).
    pub resource_id: String,
    /// As sent (seven fractional digits and an offset); part of the identity of an event.
    pub changed_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("the body is not a Partner Center notification: {0}")]
    Shape(String),
    #[error("ResourceUri {0:?} does not end with /referrals/{{id}}")]
    ResourceUri(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Wire {
    event_name: EventName,
    resource_uri: String,
    resource_change_utc_date: String,
}

impl Notification {
    pub fn parse(body: &[u8]) -> Result<Notification, NotificationError> {
        let wire: Wire =
            serde_json::from_slice(body).map_err(|e| NotificationError::Shape(e.to_string()))?;
        // …/referrals/{id}, or …/validationEvents/{id} for a test event; whatever the host.
        let path = wire
            .resource_uri
            .split(['?', '#'])
            .next()
            .unwrap_or_default();
        let mut segments = path.rsplit('/');
        let id = segments.next().unwrap_or_default();
        let collection = segments.next().unwrap_or_default();
        let id_ok = !id.is_empty()
            && id.len() <= 128
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let collection_ok = collection.eq_ignore_ascii_case("referrals")
            || collection.eq_ignore_ascii_case("validationEvents");
        if !(id_ok && collection_ok) {
            return Err(NotificationError::ResourceUri(wire.resource_uri.clone()));
        }
        let resource_id = id.to_string();
        Ok(Notification {
            event: wire.event_name,
            resource_uri: wire.resource_uri,
            resource_id,
            changed_at: wire.resource_change_utc_date,
        })
    }

    /// What makes two deliveries the same event: name, referral and change time (there is no event id).
    pub fn dedupe_key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.event.as_str(),
            self.resource_id,
            self.changed_at
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_payloads() {
        let n = Notification::parse(br#"{"EventName":"referral-created","ResourceUri":"https://api.partnercenter.microsoft.com/engagements/v1/referrals/5f3a7d4e-0000-4000-8000-000000000001","ResourceName":"referral","AuditUri":null,"ResourceChangeUtcDate":"2018-02-17T00:05:39.5485487+00:00"}"#).unwrap();
        assert_eq!(n.event, EventName::ReferralCreated);
        assert_eq!(n.resource_id, "5f3a7d4e-0000-4000-8000-000000000001");
        assert_eq!(
            n.dedupe_key(),
            "referral-created|5f3a7d4e-0000-4000-8000-000000000001|2018-02-17T00:05:39.5485487+00:00"
        );
        let t = Notification::parse(br#"{"EventName":"test-created","ResourceUri":"http://api.partnercenter.microsoft.com/webhooks/v1/registration/validationEvents/c0bfd694-3075-4ec5-9a3c-733d3a890a1f","ResourceName":"test","AuditUri":null,"ResourceChangeUtcDate":"2017-11-16T16:19:06.3520276+00:00"}"#).unwrap();
        assert_eq!(t.event, EventName::TestCreated);
    }

    #[test]
    fn refuses_what_is_not_a_notification() {
        for bad in [
            &br#"not json"#[..],
            br#"{"EventName":"subscription-updated","ResourceUri":"https://x/y/1","ResourceChangeUtcDate":"t"}"#,
            br#"{"EventName":"referral-created","ResourceChangeUtcDate":"t"}"#,
            br#"{"EventName":"referral-created","ResourceUri":"https://x/referrals/","ResourceChangeUtcDate":"t"}"#,
            br#"{"EventName":"referral-created","ResourceUri":"https://x/referrals/a%20b","ResourceChangeUtcDate":"t"}"#,
            br#"{"EventName":"referral-created","ResourceUri":"https://x/invoices/123","ResourceChangeUtcDate":"t"}"#,
        ] {
            assert!(Notification::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
