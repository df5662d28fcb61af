//! A Partner Center referral as the sync reads it (partner-center.md §1.7–1.8), and the one place where
//! a referral becomes an opportunity's values, whatever the CRM (each CRM's adapter names its columns).
//!
//! Only what the sync uses is typed; unknown fields are ignored on read (the resource has many more).

use super::opportunity::Opportunity;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Referral {
    pub id: String,
    pub engagement_id: Option<String>,
    pub name: String,
    pub external_reference_id: Option<String>,
    pub status: String,
    pub substatus: String,
    pub direction: Option<String>,
    pub e_tag: String,
    /// `Independent` or `Shared`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `None`, `Direct`, `MarketingQualified`, `SalesQualified`.
    pub qualification: Option<String>,
    pub invite_context: InviteContext,
    pub customer_profile: CustomerProfile,
    pub details: Details,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InviteContext {
    pub invited_by: Option<InvitedBy>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct InvitedBy {
    pub organization_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomerProfile {
    pub name: String,
    pub address: Address,
    pub team: Vec<Member>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Address {
    pub address_line1: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Member {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone_number: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Details {
    pub notes: Option<String>,
    /// A decimal; some payloads send it as a string (partner-center.md §1.8).
    #[serde(deserialize_with = "number_or_string")]
    pub deal_value: Option<f64>,
    pub currency: Option<String>,
    pub closing_date_time: Option<String>,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Where the referral stands, from `status`/`substatus` (§1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Open,
    Won,
    /// Lost, declined or expired.
    Lost,
}

impl Standing {
    /// From a referral's `status` and `substatus`.
    pub fn of(status: &str, substatus: &str) -> Standing {
        match (status, substatus) {
            ("Closed", "Won") => Standing::Won,
            ("Closed", _) => Standing::Lost,
            _ => Standing::Open,
        }
    }
}

impl Referral {
    /// A lead rather than a co-sell opportunity (partner-center.md §1.9): independent, from Microsoft
    /// (or nobody), qualified by a customer, Microsoft marketing or a Microsoft sales agent. Shared deals
    /// and deals a partner invited to are co-sell.
    pub fn is_lead(&self) -> bool {
        let from_microsoft = self
            .invite_context
            .invited_by
            .as_ref()
            .and_then(|b| b.organization_id.as_deref())
            .is_none_or(|org| org.eq_ignore_ascii_case("msft"));
        self.kind.as_deref() == Some("Independent")
            && from_microsoft
            && matches!(
                self.qualification.as_deref(),
                Some("Direct" | "MarketingQualified" | "SalesQualified")
            )
    }

    pub fn standing(&self) -> Standing {
        Standing::of(&self.status, &self.substatus)
    }

    /// The CRM id the referral names, if any (blank means none).
    pub fn crm_id(&self) -> Option<&str> {
        self.external_reference_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Where an admin opens the referral in Partner Center. The URL pattern is not in the reference
    /// (unconfirmed); the referral id is what matters, and it is stored alongside.
    pub fn link(&self) -> String {
        link_for(&self.id)
    }
}

/// Where an admin opens referral `id` in Partner Center (the URL pattern is unconfirmed).
pub fn link_for(id: &str) -> String {
    format!("https://partner.microsoft.com/dashboard/referrals/v2/opportunities/{id}")
}

/// What a referral says an opportunity should hold (its customer account is matched or created apart).
/// Referrals from Partner Center arrive with "Sync with Partner Center" on (partner-center.md §3.3).
#[derive(Debug, Clone, PartialEq)]
pub struct OpportunityDraft {
    pub name: String,
    pub deal_value: Option<f64>,
    pub closing_date: Option<time::Date>,
    pub notes: Option<String>,
    /// The ISO code of the referral's currency.
    pub currency: Option<String>,
    pub referral_id: String,
    pub referral_link: String,
}

impl OpportunityDraft {
    pub fn of(referral: &Referral) -> OpportunityDraft {
        let name = if referral.name.trim().is_empty() {
            format!("Co-sell referral {}", referral.id)
        } else {
            referral.name.clone()
        };
        OpportunityDraft {
            name,
            deal_value: referral.details.deal_value,
            closing_date: referral
                .details
                .closing_date_time
                .as_deref()
                .and_then(|d| d.get(..10))
                .and_then(|d| {
                    time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
                        .ok()
                }),
            notes: referral.details.notes.clone().filter(|n| !n.is_empty()),
            currency: referral.details.currency.clone().filter(|c| !c.is_empty()),
            referral_id: referral.id.clone(),
            referral_link: referral.link(),
        }
    }

    /// What differs between the draft and the opportunity as read; `currency_id` is the CRM's id of
    /// the draft's currency. What the referral does not say (no value, no notes) is left as it is.
    pub fn changes(&self, current: &Opportunity, currency_id: Option<&str>) -> OpportunityChanges {
        fn differs<T: PartialEq + Clone>(want: &T, have: Option<&T>) -> Option<T> {
            (have != Some(want)).then(|| want.clone())
        }
        OpportunityChanges {
            name: differs(&self.name, Some(&current.name)),
            // Money is compared to the cent: the CRM may store 25000 for 25000.0.
            deal_value: self.deal_value.filter(|v| {
                current
                    .deal_value
                    .is_none_or(|have| (v - have).abs() >= 0.005)
            }),
            closing_date: self
                .closing_date
                .and_then(|d| differs(&d, current.closing_date.as_ref())),
            notes: self
                .notes
                .as_ref()
                .and_then(|n| differs(n, current.notes.as_ref())),
            sync: (!current.sync).then_some(true),
            referral_id: differs(&self.referral_id, current.referral_id.as_ref()),
            referral_link: differs(&self.referral_link, current.referral_link.as_ref()),
            currency_id: currency_id
                .filter(|want| {
                    !current
                        .currency_id
                        .as_deref()
                        .is_some_and(|have| have.eq_ignore_ascii_case(want))
                })
                .map(str::to_string),
        }
    }
}

/// The values of an opportunity to write (None: leave as it is).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpportunityChanges {
    pub name: Option<String>,
    pub deal_value: Option<f64>,
    pub closing_date: Option<time::Date>,
    pub notes: Option<String>,
    pub sync: Option<bool>,
    pub referral_id: Option<String>,
    pub referral_link: Option<String>,
    pub currency_id: Option<String>,
}

impl OpportunityChanges {
    /// The names of the fields it changes, as an admin reads them.
    pub fn fields(&self) -> Vec<&'static str> {
        [
            (self.name.is_some(), "name"),
            (self.deal_value.is_some(), "deal value"),
            (self.closing_date.is_some(), "closing date"),
            (self.notes.is_some(), "notes"),
            (self.sync.is_some(), "sync with Partner Center"),
            (self.referral_id.is_some(), "referral id"),
            (self.referral_link.is_some(), "referral link"),
            (self.currency_id.is_some(), "currency"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.fields().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn referral() -> Referral {
        serde_json::from_value(json!({
            "id": "abc", "name": "Azure migration", "status": "New", "substatus": "Pending",
            "eTag": "\"1\"", "unknownField": 1,
            "customerProfile": { "name": "Fabrikam", "address": { "postalCode": "98101", "country": "US" },
                                 "team": [{ "firstName": "Ray", "lastName": "Tanaka", "email": "ray@f.example" }] },
            "details": { "dealValue": "25000.50", "currency": "USD", "closingDateTime": "2027-03-31T00:00:00Z" }
        }))
        .unwrap()
    }

    #[test]
    fn a_referral_becomes_a_draft_and_only_differences_are_changes() {
        let d = OpportunityDraft::of(&referral());
        assert_eq!(d.name, "Azure migration");
        assert_eq!(d.deal_value, Some(25000.5));
        assert_eq!(d.closing_date, Some(time::macros::date!(2027 - 03 - 31)));
        assert_eq!(d.referral_id, "abc");
        assert_eq!(d.notes, None);
        let same = Opportunity {
            name: "Azure migration".into(),
            deal_value: Some(25000.504),
            closing_date: d.closing_date,
            sync: true,
            referral_id: Some("abc".into()),
            referral_link: Some(d.referral_link.clone()),
            currency_id: Some("C1".into()),
            ..Default::default()
        };
        assert!(d.changes(&same, Some("c1")).is_empty());
        let old = Opportunity {
            name: "Old".into(),
            deal_value: Some(1.0),
            currency_id: Some("c2".into()),
            ..same.clone()
        };
        assert_eq!(
            d.changes(&old, Some("c1")).fields(),
            ["name", "deal value", "currency"]
        );
        let fresh = d.changes(&Opportunity::default(), None);
        assert_eq!(
            fresh.fields(),
            [
                "name",
                "deal value",
                "closing date",
                "sync with Partner Center",
                "referral id",
                "referral link"
            ]
        );
    }

    #[test]
    fn leads_are_told_from_co_sell_opportunities() {
        let with = |kind: &str, qualification: &str, invited_by: Option<&str>| {
            let mut r = referral();
            r.kind = Some(kind.into());
            r.qualification = Some(qualification.into());
            r.invite_context.invited_by = invited_by.map(|o| InvitedBy {
                organization_id: Some(o.into()),
            });
            r.is_lead()
        };
        assert!(with("Independent", "Direct", None), "a Marketplace lead");
        assert!(
            with("Independent", "SalesQualified", Some("msft")),
            "a qualified lead"
        );
        assert!(with("Independent", "MarketingQualified", Some("msft")));
        assert!(!with("Shared", "SalesQualified", Some("msft")), "co-sell");
        assert!(!with("Independent", "None", Some("msft")), "co-sell");
        assert!(
            !with("Independent", "SalesQualified", Some("a-partner-org")),
            "invited by a partner"
        );
        assert!(!referral().is_lead(), "no type: not a lead");
    }

    #[test]
    fn standing_and_crm_id() {
        let mut r = referral();
        assert_eq!(r.standing(), Standing::Open);
        assert_eq!(r.crm_id(), None);
        r.external_reference_id = Some("  ".into());
        assert_eq!(r.crm_id(), None);
        r.external_reference_id = Some("guid".into());
        assert_eq!(r.crm_id(), Some("guid"));
        r.status = "Closed".into();
        r.substatus = "Won".into();
        assert_eq!(r.standing(), Standing::Won);
        r.substatus = "Expired".into();
        assert_eq!(r.standing(), Standing::Lost);
    }
}
