//! The demo organization every sandbox starts with: currencies, accounts, contacts and
//! opportunities, written through the same rules as any other write.

use super::{Actor, State};
use crate::dataverse::schema::{ACCOUNT, CONTACT, OPPORTUNITY, TRANSACTION_CURRENCY, Table};
use serde_json::{Value, json};

/// The seeded currencies (the organization's base currency is USD).
pub const CURRENCY_USD: &str = "c0a1f000-0000-4000-8000-000000000840";
pub const CURRENCY_EUR: &str = "c0a1f000-0000-4000-8000-000000000978";
pub const CURRENCY_GBP: &str = "c0a1f000-0000-4000-8000-000000000826";
/// Seeded demo accounts.
pub const ACCOUNT_FABRIKAM: &str = "a0c0a000-0000-4000-8000-000000000001";
pub const ACCOUNT_CONTOSO_PHARMA: &str = "a0c0a000-0000-4000-8000-000000000002";
pub const ACCOUNT_ADATUM: &str = "a0c0a000-0000-4000-8000-000000000003";
pub const ACCOUNT_LITWARE: &str = "a0c0a000-0000-4000-8000-000000000004";
/// The seeded opportunities, none shared with Partner Center yet ("Sync with Partner Center" off).
pub const OPPORTUNITY_FABRIKAM: &str = "0aa0a000-0000-4000-8000-000000000001";
pub const OPPORTUNITY_ADATUM: &str = "0aa0a000-0000-4000-8000-000000000002";
pub const OPPORTUNITY_LITWARE: &str = "0aa0a000-0000-4000-8000-000000000003";

impl State {
    pub(crate) fn seed(&mut self, actor: &Actor) {
        let currencies = [
            (CURRENCY_USD, "US Dollar", "USD", "$", 1.0),
            (CURRENCY_EUR, "Euro", "EUR", "€", 0.92),
            (CURRENCY_GBP, "Pound Sterling", "GBP", "£", 0.79),
        ];
        for (id, name, code, symbol, rate) in currencies {
            let body = json!({
                "currencyname": name, "isocurrencycode": code, "currencysymbol": symbol,
                "exchangerate": rate, "currencyprecision": 2,
            });
            self.seed_row(&TRANSACTION_CURRENCY, id, body, actor);
        }
        let accounts = [
            (
                ACCOUNT_FABRIKAM,
                "Fabrikam, Inc.",
                "1 Microsoft Way",
                "Redmond",
                "WA",
                "98052",
                "United States",
                Some(250_000_000.0),
                CURRENCY_USD,
            ),
            (
                ACCOUNT_CONTOSO_PHARMA,
                "Contoso Pharmaceuticals",
                "2 Kingdom Street",
                "London",
                "",
                "W2 6BD",
                "United Kingdom",
                Some(80_000_000.0),
                CURRENCY_GBP,
            ),
            (
                ACCOUNT_ADATUM,
                "Adatum Corporation",
                "Walter-Gropius-Straße 5",
                "München",
                "Bayern",
                "80807",
                "Deutschland",
                None,
                CURRENCY_EUR,
            ),
            (
                ACCOUNT_LITWARE,
                "Litware, Inc.",
                "233 S Wacker Dr",
                "Chicago",
                "IL",
                "60606",
                "United States of America",
                Some(12_500_000.0),
                CURRENCY_USD,
            ),
        ];
        for (id, name, line1, city, state, postal, country, revenue, currency) in accounts {
            let body = json!({
                "name": name, "address1_line1": line1, "address1_city": city,
                "address1_stateorprovince": state, "address1_postalcode": postal,
                "address1_country": country, "revenue": revenue,
                "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({currency})"),
            });
            self.seed_row(&ACCOUNT, id, body, actor);
        }
        let contacts = [
            (
                "c0c0c000-0000-4000-8000-000000000001",
                "Ray",
                "Tanaka",
                "ray.tanaka@fabrikam.example",
                "CIO",
                ACCOUNT_FABRIKAM,
            ),
            (
                "c0c0c000-0000-4000-8000-000000000002",
                "Mia",
                "Johnson",
                "mia.johnson@fabrikam.example",
                "IT Director",
                ACCOUNT_FABRIKAM,
            ),
            (
                "c0c0c000-0000-4000-8000-000000000003",
                "Oliver",
                "O'Brien",
                "oliver.obrien@contosopharma.example",
                "Head of Infrastructure",
                ACCOUNT_CONTOSO_PHARMA,
            ),
            (
                "c0c0c000-0000-4000-8000-000000000004",
                "Lena",
                "Schmidt",
                "lena.schmidt@adatum.example",
                "CTO",
                ACCOUNT_ADATUM,
            ),
            (
                "c0c0c000-0000-4000-8000-000000000005",
                "Sam",
                "Patel",
                "sam.patel@litware.example",
                "VP Engineering",
                ACCOUNT_LITWARE,
            ),
        ];
        for (id, first, last, email, title, account) in contacts {
            let body = json!({
                "firstname": first, "lastname": last, "emailaddress1": email, "jobtitle": title,
                "parentcustomerid_account@odata.bind": format!("/accounts({account})"),
            });
            self.seed_row(&CONTACT, id, body, actor);
        }
        for (account, contact) in [
            (ACCOUNT_FABRIKAM, "c0c0c000-0000-4000-8000-000000000001"),
            (
                ACCOUNT_CONTOSO_PHARMA,
                "c0c0c000-0000-4000-8000-000000000003",
            ),
            (ACCOUNT_ADATUM, "c0c0c000-0000-4000-8000-000000000004"),
            (ACCOUNT_LITWARE, "c0c0c000-0000-4000-8000-000000000005"),
        ] {
            let body = json!({ "primarycontactid@odata.bind": format!("/contacts({contact})") });
            let body = body.as_object().expect("object");
            self.update(&ACCOUNT, account, body, actor)
                .expect("seed data is valid");
        }
        // Sellers' opportunities as a CRM holds them: free-text countries (so none is ready to share
        // until its account gets an ISO code), one without solutions, one asking Microsoft for help.
        let opportunities = [
            (
                OPPORTUNITY_FABRIKAM,
                json!({
                    "name": "Fabrikam Azure migration", "estimatedvalue": 48000, "estimatedclosedate": "2027-06-30",
                    "salesstage": 1, "msp_microsoftsolutions": "SOL-AZ-MIG",
                    "customerid_account@odata.bind": format!("/accounts({ACCOUNT_FABRIKAM})"),
                    "parentcontactid@odata.bind": "/contacts(c0c0c000-0000-4000-8000-000000000001)",
                    "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({CURRENCY_USD})"),
                }),
            ),
            (
                OPPORTUNITY_ADATUM,
                json!({
                    "name": "Adatum security assessment", "estimatedvalue": 30000, "estimatedclosedate": "2027-03-31",
                    "salesstage": 0, "msp_howcanmicrosofthelp": "Proof of concept or demo",
                    "customerid_account@odata.bind": format!("/accounts({ACCOUNT_ADATUM})"),
                    "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({CURRENCY_EUR})"),
                }),
            ),
            (
                OPPORTUNITY_LITWARE,
                json!({
                    "name": "Litware data platform", "estimatedvalue": 120000, "estimatedclosedate": "2027-09-30",
                    "salesstage": 2, "msp_microsoftsolutions": "SOL-DATA-PLAT",
                    "msp_howcanmicrosofthelp": "Architecture guidance",
                    "customerid_account@odata.bind": format!("/accounts({ACCOUNT_LITWARE})"),
                    "parentcontactid@odata.bind": "/contacts(c0c0c000-0000-4000-8000-000000000005)",
                    "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({CURRENCY_USD})"),
                }),
            ),
        ];
        for (id, body) in opportunities {
            self.seed_row(&OPPORTUNITY, id, body, actor);
        }
    }

    fn seed_row(&mut self, table: &'static Table, id: &str, body: Value, actor: &Actor) {
        let body = body.as_object().expect("object").clone();
        self.create(table, Some(id), &body, actor)
            .expect("seed data is valid");
    }
}
