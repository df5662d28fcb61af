//! A Partner Center referral as the sync reads it (partner-center.md §1.7–1.8), and the one place where
//! a referral becomes the fields of a Dynamics 365 opportunity, account and contact.
//!
//! Only what the sync uses is typed; unknown fields are ignored on read (the resource has many more).

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
    pub customer_profile: CustomerProfile,
    pub details: Details,
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

impl Referral {
    pub fn standing(&self) -> Standing {
        match (self.status.as_str(), self.substatus.as_str()) {
            ("Closed", "Won") => Standing::Won,
            ("Closed", _) => Standing::Lost,
            _ => Standing::Open,
        }
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

/// The Dataverse columns of an opportunity made from a referral (crm-apis.md §2.9 and the co-sell
/// solution's custom columns, whose schema names are unconfirmed). Lookups are bound by the caller.
pub fn opportunity_fields(referral: &Referral) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::{Value, json};
    let mut fields = serde_json::Map::new();
    let name = if referral.name.trim().is_empty() {
        format!("Co-sell referral {}", referral.id)
    } else {
        referral.name.clone()
    };
    fields.insert("name".into(), Value::String(name));
    if let Some(value) = referral.details.deal_value {
        fields.insert("estimatedvalue".into(), json!(value));
    }
    if let Some(date) = referral
        .details
        .closing_date_time
        .as_deref()
        .and_then(|d| d.get(..10))
    {
        fields.insert("estimatedclosedate".into(), Value::String(date.into()));
    }
    if let Some(notes) = referral.details.notes.as_deref().filter(|n| !n.is_empty()) {
        fields.insert("description".into(), Value::String(notes.into()));
    }
    // Referrals from Partner Center arrive with "Sync with Partner Center" on (partner-center.md §3.3).
    fields.insert("msp_syncwithpartnercenter".into(), Value::Bool(true));
    fields.insert("msp_referralid".into(), Value::String(referral.id.clone()));
    fields.insert("msp_referrallink".into(), Value::String(referral.link()));
    fields
}

/// The Dataverse columns of the customer account (address1_country stays the ISO code the referral
/// carries: Dataverse's column is free text, crm-apis.md §2.9).
pub fn account_fields(profile: &CustomerProfile) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut fields = serde_json::Map::new();
    fields.insert("name".into(), Value::String(profile.name.clone()));
    let a = &profile.address;
    for (column, value) in [
        ("address1_line1", &a.address_line1),
        ("address1_city", &a.city),
        ("address1_stateorprovince", &a.state),
        ("address1_postalcode", &a.postal_code),
        ("address1_country", &a.country),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            fields.insert(column.into(), Value::String(v.into()));
        }
    }
    fields
}

/// The Dataverse columns of a customer contact.
pub fn contact_fields(member: &Member) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let mut fields = serde_json::Map::new();
    for (column, value) in [
        ("firstname", &member.first_name),
        ("lastname", &member.last_name),
        ("emailaddress1", &member.email),
        ("telephone1", &member.phone_number),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            fields.insert(column.into(), Value::String(v.into()));
        }
    }
    fields
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
    fn a_referral_maps_to_opportunity_columns() {
        let f = opportunity_fields(&referral());
        assert_eq!(f["name"], "Azure migration");
        assert_eq!(f["estimatedvalue"], 25000.5);
        assert_eq!(f["estimatedclosedate"], "2027-03-31");
        assert_eq!(f["msp_syncwithpartnercenter"], true);
        assert_eq!(f["msp_referralid"], "abc");
        assert!(!f.contains_key("description"));
        let a = account_fields(&referral().customer_profile);
        assert_eq!(a["address1_postalcode"], "98101");
        assert!(!a.contains_key("address1_city"));
        let c = contact_fields(&referral().customer_profile.team[0]);
        assert_eq!(c["emailaddress1"], "ray@f.example");
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
