//! The "Contoso Sandbox" org every sandbox starts with.
//!
//! - **Users** (the three demo users who can sign in, and the three sellers owning the opportunities):
//!   `admin` Maria Campbell (System Administrator: Modify All Data), `standard` Jordan Lee (Standard
//!   User, plus the "Sales User" permission set, neither with Modify All Data), `revoked` Sam Ortiz
//!   (System Administrator, but every refresh of a token of theirs fails: an admin revoked the app).
//! - **Profiles and permission sets**: each profile also appears as a permission set with
//!   `IsOwnedByProfile = true`, assigned to its users.
//! - **Stages**: the standard ten, Prospecting … Negotiation/Review, Closed Won, Closed Lost.
//! - **Currencies**: USD (corporate), EUR, GBP.
//! - **Accounts**: Northwind Traders (Seattle, US), Fabrikam GmbH (Berlin, DE), Tailspin Toys (no
//!   address), Wide World Importers (free-text country "U.K." only, never converted to a code).
//! - **Contacts**: Nancy Davolio (Northwind), Hans Becker (Fabrikam), Olivia Wilson (Wide World).
//! - **Opportunities**, none with "Sync with Partner Center" on: [`OPPORTUNITY_READY`] (everything
//!   Partner Center needs), [`OPPORTUNITY_NO_SOLUTION`], [`OPPORTUNITY_HELP_NO_CONTACT`] (asks for
//!   Microsoft's help, no contact, account without a country), [`OPPORTUNITY_HELP_WITH_CONTACT`],
//!   [`OPPORTUNITY_WON`] (Closed Won, free-text country) and [`OPPORTUNITY_WITH_PRODUCTS`] (has products,
//!   so writes to `Amount` are ignored).

use super::records::{Row, timestamp};
use super::schema::{self, Object, fields};
use super::{DemoUser, Org, ids};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub const ORG_ID: &str = "00D5J0000000001UAA";
pub const USER_ADMIN: &str = "0055J0000000001QAA";
pub const USER_STANDARD: &str = "0055J0000000002QAA";
pub const USER_REVOKED: &str = "0055J0000000003QAA";
pub const ACCOUNT_NORTHWIND: &str = "0015J0000000001QAA";
pub const ACCOUNT_FABRIKAM: &str = "0015J0000000002QAA";
pub const ACCOUNT_TAILSPIN: &str = "0015J0000000003QAA";
pub const ACCOUNT_WIDE_WORLD: &str = "0015J0000000004QAA";
pub const CONTACT_NANCY: &str = "0035J0000000001QAA";
pub const CONTACT_HANS: &str = "0035J0000000002QAA";
pub const CONTACT_OLIVIA: &str = "0035J0000000003QAA";
pub const OPPORTUNITY_READY: &str = "0065J0000000001QAA";
pub const OPPORTUNITY_NO_SOLUTION: &str = "0065J0000000002QAA";
pub const OPPORTUNITY_HELP_NO_CONTACT: &str = "0065J0000000003QAA";
pub const OPPORTUNITY_HELP_WITH_CONTACT: &str = "0065J0000000004QAA";
pub const OPPORTUNITY_WON: &str = "0065J0000000005QAA";
pub const OPPORTUNITY_WITH_PRODUCTS: &str = "0065J0000000006QAA";

const DOMAIN: &str = "contoso-sandbox.example";

#[rustfmt::skip]
const USERS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    // key, id, first, last, phone, profile, picker text
    ("admin", USER_ADMIN, "Maria", "Campbell", "+1 415 555 0101", "System Administrator",
     "System Administrator (Modify All Data)"),
    ("standard", USER_STANDARD, "Jordan", "Lee", "+1 415 555 0102", "Standard User",
     "Standard User, no Modify All Data"),
    ("revoked", USER_REVOKED, "Sam", "Ortiz", "+1 415 555 0103", "System Administrator",
     "System Administrator whose refresh tokens are revoked"),
];

pub(crate) fn demo_users() -> Vec<DemoUser> {
    USERS
        .iter()
        .map(|(key, id, first, last, phone, profile, about)| DemoUser {
            key: key.to_string(),
            id: id.to_string(),
            username: format!("{}.{}@{DOMAIN}", first.to_lowercase(), last.to_lowercase()),
            first_name: first.to_string(),
            last_name: last.to_string(),
            email: format!("{}@{DOMAIN}", first.to_lowercase()),
            phone: phone.to_string(),
            profile: profile.to_string(),
            description: about.to_string(),
        })
        .collect()
}

/// Writes a record as it would be after years of use: no validation (legacy values may break today's
/// rules), audit fields from the seed time, the admin as creator.
fn put(org: &mut Org, o: &Object, id: String, body: Value, now: OffsetDateTime) {
    let mut fields = body.as_object().expect("object").clone();
    let stamp = json!(timestamp(now));
    fields.insert("Id".into(), json!(id));
    for (name, value) in [
        ("IsDeleted", json!(false)),
        ("CreatedDate", stamp.clone()),
        ("CreatedById", json!(USER_ADMIN)),
        ("LastModifiedDate", stamp.clone()),
        ("LastModifiedById", json!(USER_ADMIN)),
        ("SystemModstamp", stamp),
    ] {
        if o.has(name) {
            fields.entry(name).or_insert(value);
        }
    }
    org.store.put(
        id,
        Row {
            object: o.name,
            fields,
            deleted: false,
        },
    );
}

pub(crate) fn seed(org: &mut Org, now: OffsetDateTime) {
    put(
        org,
        &schema::ORGANIZATION,
        ORG_ID.into(),
        json!({ "Name": "Contoso Sandbox", "DefaultCurrencyIsoCode": "USD", "IsSandbox": true,
                "OrganizationType": "Developer Edition" }),
        now,
    );
    let admin_profile = ids::make("00e", 1);
    let standard_profile = ids::make("00e", 2);
    for (id, name, all) in [
        (&admin_profile, "System Administrator", true),
        (&standard_profile, "Standard User", false),
    ] {
        let perms = json!({ "Name": name, "PermissionsModifyAllData": all, "PermissionsViewAllData": all,
                            "PermissionsApiEnabled": true });
        put(org, &schema::PROFILE, id.clone(), perms, now);
    }
    // A profile's permission set is named after the profile's id, as Salesforce names them.
    let admin_ps = ids::make("0PS", 1);
    let standard_ps = ids::make("0PS", 2);
    let sales_ps = ids::make("0PS", 3);
    for (id, name, profile, all) in [
        (
            &admin_ps,
            format!("X{}_128_09_04_12_1", &admin_profile[..15]),
            Some(&admin_profile),
            true,
        ),
        (
            &standard_ps,
            format!("X{}_128_09_04_12_2", &standard_profile[..15]),
            Some(&standard_profile),
            false,
        ),
        (&sales_ps, "Sales_User".to_string(), None, false),
    ] {
        let label = if profile.is_some() {
            name[1..].to_string()
        } else {
            "Sales User".into()
        };
        let body = json!({ "Name": name, "Label": label, "IsOwnedByProfile": profile.is_some(),
                           "ProfileId": profile, "PermissionsModifyAllData": all,
                           "PermissionsViewAllData": all, "PermissionsApiEnabled": true });
        put(org, &schema::PERMISSION_SET, id.clone(), body, now);
    }
    for user in demo_users() {
        let admin = user.profile == "System Administrator";
        let body = json!({
            "Username": user.username, "Email": user.email, "FirstName": user.first_name,
            "LastName": user.last_name, "Name": format!("{} {}", user.first_name, user.last_name),
            "Phone": user.phone, "MobilePhone": user.phone.replace("555 01", "555 02"), "IsActive": true,
            "ProfileId": if admin { &admin_profile } else { &standard_profile },
        });
        put(org, &schema::USER, user.id.clone(), body, now);
    }
    let assignments = [
        (USER_ADMIN, &admin_ps),
        (USER_STANDARD, &standard_ps),
        (USER_STANDARD, &sales_ps),
        (USER_REVOKED, &admin_ps),
    ];
    for (n, (user, ps)) in assignments.into_iter().enumerate() {
        let body = json!({ "AssigneeId": user, "PermissionSetId": ps });
        put(
            org,
            &schema::PERMISSION_SET_ASSIGNMENT,
            ids::make("0Pa", n as u64 + 1),
            body,
            now,
        );
    }
    #[rustfmt::skip]
    let stages = [
        ("Prospecting", false, false, 10.0, "Pipeline"),
        ("Qualification", false, false, 10.0, "Pipeline"),
        ("Needs Analysis", false, false, 20.0, "Pipeline"),
        ("Value Proposition", false, false, 50.0, "Pipeline"),
        ("Id. Decision Makers", false, false, 60.0, "Pipeline"),
        ("Perception Analysis", false, false, 70.0, "Pipeline"),
        ("Proposal/Price Quote", false, false, 75.0, "Pipeline"),
        ("Negotiation/Review", false, false, 90.0, "Pipeline"),
        ("Closed Won", true, true, 100.0, "Closed"),
        ("Closed Lost", true, false, 0.0, "Omitted"),
    ];
    for (n, (label, closed, won, probability, forecast)) in stages.into_iter().enumerate() {
        let body = json!({ "MasterLabel": label, "ApiName": label, "IsActive": true, "IsClosed": closed,
                           "IsWon": won, "DefaultProbability": probability,
                           "ForecastCategoryName": forecast, "SortOrder": n + 1 });
        put(
            org,
            &schema::OPPORTUNITY_STAGE,
            ids::make("01J", n as u64 + 1),
            body,
            now,
        );
    }
    for (n, (code, rate)) in [("USD", 1.0), ("EUR", 0.92), ("GBP", 0.79)]
        .into_iter()
        .enumerate()
    {
        let body = json!({ "IsoCode": code, "IsActive": true, "IsCorporate": code == "USD",
                           "ConversionRate": rate, "DecimalPlaces": 2 });
        put(
            org,
            &schema::CURRENCY_TYPE,
            ids::make("01L", n as u64 + 1),
            body,
            now,
        );
    }
    seed_sales(org, now);
}

fn seed_sales(org: &mut Org, now: OffsetDateTime) {
    #[rustfmt::skip]
    let accounts = [
        (ACCOUNT_NORTHWIND, json!({ "Name": "Northwind Traders", "Phone": "+1 206 555 0140",
            "BillingStreet": "1200 Fifth Avenue", "BillingCity": "Seattle", "BillingState": "Washington",
            "BillingStateCode": "WA", "BillingPostalCode": "98101", "BillingCountry": "United States",
            "BillingCountryCode": "US", "OwnerId": USER_ADMIN, "CurrencyIsoCode": "USD" })),
        (ACCOUNT_FABRIKAM, json!({ "Name": "Fabrikam GmbH", "Phone": "+49 30 5550 1234",
            "BillingStreet": "Friedrichstraße 100", "BillingCity": "Berlin", "BillingPostalCode": "10117",
            "BillingCountry": "Germany", "BillingCountryCode": "DE", "OwnerId": USER_STANDARD,
            "CurrencyIsoCode": "EUR" })),
        (ACCOUNT_TAILSPIN, json!({ "Name": "Tailspin Toys", "OwnerId": USER_REVOKED,
            "CurrencyIsoCode": "USD" })),
        (ACCOUNT_WIDE_WORLD, json!({ "Name": "Wide World Importers", "BillingCity": "London",
            "BillingPostalCode": "EC1A 1BB", "BillingCountry": "U.K.", "OwnerId": USER_ADMIN,
            "CurrencyIsoCode": "GBP" })),
    ];
    for (id, body) in accounts {
        put(org, &schema::ACCOUNT, id.into(), body, now);
    }
    #[rustfmt::skip]
    let contacts = [
        (CONTACT_NANCY, ACCOUNT_NORTHWIND, "Nancy", "Davolio", "nancy.davolio@northwind.example", "US", USER_ADMIN),
        (CONTACT_HANS, ACCOUNT_FABRIKAM, "Hans", "Becker", "hans.becker@fabrikam.example", "DE", USER_STANDARD),
        (CONTACT_OLIVIA, ACCOUNT_WIDE_WORLD, "Olivia", "Wilson", "olivia.wilson@wideworld.example", "GB", USER_ADMIN),
    ];
    for (id, account, first, last, email, country, owner) in contacts {
        let name = super::countries::country_by_code(country).map(|(_, n)| n);
        let body = json!({ "AccountId": account, "FirstName": first, "LastName": last,
                           "Name": format!("{first} {last}"), "Email": email, "Phone": "+1 425 555 0199",
                           "MailingCountry": name, "MailingCountryCode": country, "OwnerId": owner,
                           "CurrencyIsoCode": "USD" });
        put(org, &schema::CONTACT, id.into(), body, now);
    }
    let close = |days: i64| (now.date() + time::Duration::days(days)).to_string();
    #[rustfmt::skip]
    let opportunities = [
        (OPPORTUNITY_READY, json!({ "Name": "Northwind Azure migration", "AccountId": ACCOUNT_NORTHWIND,
            "Amount": 250000.0, "CloseDate": close(60), "StageName": "Proposal/Price Quote",
            "Probability": 75.0, fields::SOLUTIONS: "SOL-AZ-MIG", "OwnerId": USER_ADMIN,
            "CurrencyIsoCode": "USD", "ContactId": CONTACT_NANCY })),
        (OPPORTUNITY_NO_SOLUTION, json!({ "Name": "Fabrikam data platform", "AccountId": ACCOUNT_FABRIKAM,
            "Amount": 48000.0, "CloseDate": close(90), "StageName": "Qualification", "Probability": 10.0,
            "OwnerId": USER_STANDARD, "CurrencyIsoCode": "EUR" })),
        (OPPORTUNITY_HELP_NO_CONTACT, json!({ "Name": "Tailspin Copilot rollout",
            "AccountId": ACCOUNT_TAILSPIN, "Amount": 120000.0, "CloseDate": close(120),
            "StageName": "Needs Analysis", "Probability": 20.0, fields::SOLUTIONS: "SOL-34104-EBB",
            fields::HELP: "CustomerTechnicalArchitecture", "OwnerId": USER_REVOKED,
            "CurrencyIsoCode": "USD" })),
        (OPPORTUNITY_HELP_WITH_CONTACT, json!({ "Name": "Fabrikam security assessment",
            "AccountId": ACCOUNT_FABRIKAM, "Amount": 30000.0, "CloseDate": close(45),
            "StageName": "Value Proposition", "Probability": 50.0, fields::SOLUTIONS: "SOL-SEC-ASSESS",
            fields::HELP: "ProofOfConceptOrDemo", "ContactId": CONTACT_HANS, "OwnerId": USER_STANDARD,
            "CurrencyIsoCode": "EUR" })),
        (OPPORTUNITY_WON, json!({ "Name": "Wide World Dynamics 365 rollout",
            "AccountId": ACCOUNT_WIDE_WORLD, "Amount": 64000.0, "CloseDate": close(-10),
            "StageName": "Closed Won", "Probability": 100.0, "IsClosed": true, "IsWon": true,
            fields::SOLUTIONS: "Dynamics365forFieldService", "ContactId": CONTACT_OLIVIA,
            "OwnerId": USER_ADMIN, "CurrencyIsoCode": "GBP" })),
        (OPPORTUNITY_WITH_PRODUCTS, json!({ "Name": "Northwind Microsoft 365 licences",
            "AccountId": ACCOUNT_NORTHWIND, "Amount": 36000.0, "CloseDate": close(30),
            "StageName": "Negotiation/Review", "Probability": 90.0, "HasOpportunityLineItem": true,
            fields::SOLUTIONS: "SOL-M365-LIC", "OwnerId": USER_REVOKED, "CurrencyIsoCode": "USD" })),
    ];
    for (id, mut body) in opportunities {
        for (name, value) in [
            ("IsClosed", false),
            ("IsWon", false),
            ("HasOpportunityLineItem", false),
            (fields::SYNC, false),
        ] {
            body.as_object_mut()
                .expect("object")
                .entry(name)
                .or_insert(json!(value));
        }
        put(org, &schema::OPPORTUNITY, id.into(), body, now);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeded_ids_are_generated_ids() {
        use super::*;
        for (id, prefix, n) in [
            (ORG_ID, "00D", 1),
            (USER_ADMIN, "005", 1),
            (USER_REVOKED, "005", 3),
            (ACCOUNT_WIDE_WORLD, "001", 4),
            (CONTACT_OLIVIA, "003", 3),
            (OPPORTUNITY_WITH_PRODUCTS, "006", 6),
        ] {
            assert_eq!(id, ids::make(prefix, n));
        }
    }
}
