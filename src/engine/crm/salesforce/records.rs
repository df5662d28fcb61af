//! Salesforce records read into the port's typed values, typed changes written as fields, and the
//! SOQL this adapter sends (literals always through `soql_literal`, ids checked before use).

use super::Fields;
use crate::domain::opportunity::{Customer, Opportunity, OpportunityState, Person};
use crate::domain::referral::OpportunityChanges;
use serde_json::{Map, Value, json};

/// What the org looks like, read once from the objects' describe: optional features change the fields
/// that exist (crm-apis.md §3.9).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgShape {
    /// `CurrencyIsoCode` exists (multi-currency on).
    pub multi_currency: bool,
    /// `BillingCountryCode` exists (State & Country Picklists on).
    pub country_codes: bool,
    /// Co-sell fields the org lacks.
    pub missing: Vec<String>,
    /// Without multiple currencies, the org's one currency (`Organization.DefaultCurrencyIsoCode`):
    /// every amount is in it.
    pub org_currency: Option<String>,
}

pub(super) fn text(record: &Value, field: &str) -> Option<String> {
    record[field]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub(super) fn date_text(date: time::Date) -> String {
    date.format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// A record's version: its `SystemModstamp` and a digest of its own fields. Salesforce stamps to the
/// second, so two writes in one second share a stamp; the digest tells them apart (a seller's edit
/// right after cosell's own write is not taken for its echo). Relationship fields are left out, so
/// every read of the record's own fields gives the same version.
pub(super) fn version(record: &Value) -> Option<String> {
    let stamp = text(record, "SystemModstamp")?;
    let mut own: Vec<(&String, String)> = record
        .as_object()?
        .iter()
        .filter(|(k, v)| k.as_str() != "attributes" && !v.is_object())
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    own.sort();
    // FNV-1a: stable across processes and versions, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in own {
        for b in k.bytes().chain([0]).chain(v.bytes()).chain([0]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    Some(format!("{stamp}#{hash:016x}"))
}

/// The opportunity's own fields (what [`own_fields`] selects).
pub(super) fn own_fields(fields: &Fields, shape: &OrgShape) -> String {
    let mut f = vec![
        "Id",
        "Name",
        "Amount",
        "CloseDate",
        "StageName",
        "IsClosed",
        "IsWon",
        "Description",
        "AccountId",
        "OwnerId",
        "SystemModstamp",
    ];
    if shape.multi_currency {
        f.push("CurrencyIsoCode");
    }
    let mut f: Vec<String> = f.into_iter().map(str::to_string).collect();
    f.extend(
        fields
            .all()
            .into_iter()
            .filter(|n| !shape.missing.iter().any(|m| m == n))
            .map(str::to_string),
    );
    f.join(", ")
}

/// The account and owner fields a full read adds, through relationships (one query).
pub(super) fn related_fields(shape: &OrgShape) -> String {
    let country = if shape.country_codes {
        "Account.BillingCountryCode"
    } else {
        "Account.BillingCountry"
    };
    [
        "Account.Name",
        "Account.BillingStreet",
        "Account.BillingCity",
        "Account.BillingState",
        "Account.BillingPostalCode",
        country,
        "Owner.FirstName",
        "Owner.LastName",
        "Owner.Email",
        "Owner.Phone",
        "Owner.MobilePhone",
    ]
    .join(", ")
}

/// An Opportunity record as the port's value; None without an Id.
pub(super) fn opportunity(fields: &Fields, record: &Value) -> Option<Opportunity> {
    let state = match (record["IsClosed"].as_bool(), record["IsWon"].as_bool()) {
        (Some(true), Some(true)) => OpportunityState::Won,
        (Some(true), _) => OpportunityState::Lost,
        _ => OpportunityState::Open,
    };
    let stage = text(record, "StageName");
    Some(Opportunity {
        id: text(record, "Id")?,
        name: record["Name"].as_str().unwrap_or_default().to_string(),
        sync: record[&fields.sync].as_bool().unwrap_or(false),
        referral_id: text(record, &fields.referral_id),
        referral_link: text(record, &fields.referral_link),
        note: text(record, &fields.audit),
        account_id: text(record, "AccountId"),
        owner_id: text(record, "OwnerId"),
        // Salesforce names a currency by its ISO code: the code is the id.
        currency_id: text(record, "CurrencyIsoCode"),
        currency: text(record, "CurrencyIsoCode"),
        state,
        status_reason: stage.clone(),
        sales_stage: stage,
        deal_value: record["Amount"].as_f64(),
        closing_date: text(record, "CloseDate").and_then(|d| {
            time::Date::parse(
                &d,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .ok()
        }),
        notes: text(record, "Description"),
        help: text(record, &fields.help),
        solutions: text(record, &fields.solutions)
            .map(|s| {
                s.split([';', ',', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        version: version(record),
        customer: record["Account"].as_object().map(|_| {
            let a = &record["Account"];
            Customer {
                id: text(record, "AccountId").unwrap_or_default(),
                name: a["Name"].as_str().unwrap_or_default().to_string(),
                country: text(a, "BillingCountryCode").or_else(|| text(a, "BillingCountry")),
                postal_code: text(a, "BillingPostalCode"),
                city: text(a, "BillingCity"),
                state: text(a, "BillingState"),
                address_line1: text(a, "BillingStreet"),
            }
        }),
        owner: record["Owner"]
            .as_object()
            .map(|_| person(&record["Owner"])),
        ..Default::default()
    })
}

/// A User or Contact record as a person.
pub(super) fn person(r: &Value) -> Person {
    Person {
        first_name: text(r, "FirstName"),
        last_name: text(r, "LastName"),
        email: text(r, "Email"),
        phone: text(r, "Phone").or_else(|| text(r, "MobilePhone")),
    }
}

/// The Opportunity fields of typed changes.
pub(super) fn write(
    fields: &Fields,
    shape: &OrgShape,
    changes: &OpportunityChanges,
) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |field: &str, value: Value| {
        out.insert(field.to_string(), value);
    };
    if let Some(name) = &changes.name {
        put("Name", json!(name));
    }
    if let Some(value) = changes.deal_value {
        // Ignored by Salesforce when the opportunity has products (their sum is the amount).
        put("Amount", json!(value));
    }
    if let Some(date) = changes.closing_date {
        put("CloseDate", json!(date_text(date)));
    }
    if let Some(notes) = &changes.notes {
        put("Description", json!(notes));
    }
    if let Some(sync) = changes.sync {
        put(&fields.sync, json!(sync));
    }
    if let Some(id) = &changes.referral_id {
        put(&fields.referral_id, json!(id));
    }
    if let Some(link) = &changes.referral_link {
        put(&fields.referral_link, json!(link));
    }
    if let (Some(code), true) = (&changes.currency_id, shape.multi_currency) {
        put("CurrencyIsoCode", json!(code));
    }
    out
}

/// `SystemModstamp` as Salesforce writes it (`2026-11-30T14:05:09.000+0000`), for a SOQL datetime
/// literal (`2026-11-30T14:05:09Z`), moved back by `overlap` so that rows committed late with an
/// earlier stamp are read again rather than missed.
pub(super) fn soql_datetime(stamp: &str, overlap: time::Duration) -> Option<String> {
    let at = time::PrimitiveDateTime::parse(
        stamp.get(..19)?,
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .ok()?
    .assume_utc()
        - overlap;
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_with_its_account_and_owner_reads_as_an_opportunity() {
        let record = json!({
            "attributes": { "type": "Opportunity" },
            "Id": "006000000000001AAA", "Name": "Deal", "Amount": 48000, "CloseDate": "2027-06-30",
            "StageName": "Closed Won", "IsClosed": true, "IsWon": true, "CurrencyIsoCode": "EUR",
            "AccountId": "001000000000001AAA", "SystemModstamp": "2026-11-30T14:05:09.000+0000",
            "Sync_with_Partner_Center__c": true, "Microsoft_Solutions__c": "SOL-1; SOL-2",
            "Account": { "attributes": {}, "Name": "Fabrikam", "BillingCountryCode": "US", "BillingPostalCode": "98052" },
            "Owner": { "attributes": {}, "FirstName": "Adele", "LastName": "Vance", "Email": "a@x", "MobilePhone": "+1" }
        });
        let o = opportunity(&Fields::salesforce(), &record).unwrap();
        assert_eq!(o.state, OpportunityState::Won);
        assert_eq!(o.deal_value, Some(48000.0));
        assert_eq!(o.currency.as_deref(), Some("EUR"));
        assert_eq!(o.solutions, ["SOL-1", "SOL-2"]);
        assert!(o.sync);
        let v = o.version.unwrap();
        assert!(v.starts_with("2026-11-30T14:05:09.000+0000#"), "{v}");
        // The same own fields read without the relationships are the same version; another value is not.
        let mut own = record.clone();
        own.as_object_mut().unwrap().remove("Account");
        assert_eq!(version(&own).unwrap(), v);
        own["Amount"] = json!(1);
        assert_ne!(version(&own).unwrap(), v);
        let c = o.customer.unwrap();
        assert_eq!(
            (c.country.as_deref(), c.postal_code.as_deref()),
            (Some("US"), Some("98052"))
        );
        assert_eq!(o.owner.unwrap().phone.as_deref(), Some("+1"));
    }

    #[test]
    fn changes_become_fields_and_currency_only_where_the_org_has_it() {
        let changes = OpportunityChanges {
            deal_value: Some(10.0),
            closing_date: Some(time::macros::date!(2027 - 01 - 31)),
            sync: Some(true),
            currency_id: Some("EUR".into()),
            ..Default::default()
        };
        let multi = OrgShape {
            multi_currency: true,
            ..Default::default()
        };
        let f = write(&Fields::salesforce(), &multi, &changes);
        assert_eq!(f["CloseDate"], "2027-01-31");
        assert_eq!(f["Sync_with_Partner_Center__c"], true);
        assert_eq!(f["CurrencyIsoCode"], "EUR");
        let single = write(&Fields::salesforce(), &OrgShape::default(), &changes);
        assert!(!single.contains_key("CurrencyIsoCode"));
    }

    #[test]
    fn stamps_become_soql_datetimes_with_an_overlap() {
        assert_eq!(
            soql_datetime("2026-11-30T14:05:09.000+0000", time::Duration::seconds(60)).as_deref(),
            Some("2026-11-30T14:04:09Z")
        );
        assert_eq!(soql_datetime("yesterday", time::Duration::ZERO), None);
    }
}
