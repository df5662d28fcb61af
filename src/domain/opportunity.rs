//! A CRM opportunity as cosell reads it (whatever the CRM), and the rules it must pass before anything is
//! sent to Partner Center (partner-center.md §1.5 business rules, §3.5 sync requirements). A failing
//! opportunity costs no Partner Center call: every failing rule is named at once, with its fix.

use super::codes::{CountryCode, CurrencyCode};
use serde::{Deserialize, Serialize};
use time::Date;

/// Where an opportunity stands in the CRM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpportunityState {
    #[default]
    Open,
    Won,
    Lost,
}

/// A person: the opportunity's owner (the referral's team) or the customer's contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl Person {
    pub fn full_name(&self) -> String {
        [&self.first_name, &self.last_name]
            .into_iter()
            .flatten()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The customer account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: String,
    /// As the CRM holds it: Dataverse's column is free text ("United States", "US").
    pub country: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub address_line1: Option<String>,
}

/// An opportunity as the CRM port gives it, whatever the CRM. How much is filled depends on the read
/// (each port operation says): a change-feed row and a read of the record itself carry its own fields
/// (lookups as ids); a full read adds the records the rules need (account, contact, owner, currency).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Opportunity {
    pub id: String,
    pub name: String,
    /// "Sync with Partner Center".
    pub sync: bool,
    pub referral_id: Option<String>,
    /// Where the referral opens in Partner Center, as written on the opportunity.
    pub referral_link: Option<String>,
    /// The one-line result cosell last wrote on the opportunity (its co-sell audit field).
    pub note: Option<String>,
    /// The customer account's id (the lookup, even when the account itself was not read).
    pub account_id: Option<String>,
    /// The CRM's id of the opportunity's currency (Salesforce: the ISO code itself).
    pub currency_id: Option<String>,
    /// The CRM's id of the opportunity's owner (the referral's team).
    pub owner_id: Option<String>,
    /// The CRM's id of the customer contact the opportunity names, where it names one (Dynamics 365).
    pub contact_id: Option<String>,
    pub state: OpportunityState,
    /// The CRM's status reason label ("In Progress", "Canceled"…), mapped to the referral's status.
    pub status_reason: Option<String>,
    pub deal_value: Option<f64>,
    /// The ISO code of the opportunity's currency record, if it has one.
    pub currency: Option<String>,
    pub closing_date: Option<Date>,
    /// The CRM's sales stage label (mapped to Partner Center's by the configured mapping).
    pub sales_stage: Option<String>,
    /// "How can Microsoft help?": empty means not co-sell.
    pub help: Option<String>,
    /// Partner Center solution ids.
    pub solutions: Vec<String>,
    pub notes: Option<String>,
    pub customer: Option<Customer>,
    pub contact: Option<Person>,
    pub owner: Option<Person>,
    /// The record's version, for optimistic concurrency and to tell cosell's own writes from sellers'
    /// edits (opaque: each CRM has its own).
    pub version: Option<String>,
}

impl Opportunity {
    /// The Partner Center solution ids, as sent: trimmed, blanks left out.
    pub fn solution_ids(&self) -> Vec<String> {
        self.solutions
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// A digest of the record's own fields that reach Partner Center, its solutions left out: two
    /// reads with the same digest differ, if at all, only in what a solutions-only update may send.
    /// Left out too: cosell's own note and referral link (its writes), the version, and what only a
    /// full read carries (the account, contact and owner records, which have their own ids here).
    pub fn fingerprint(&self) -> String {
        let fields = serde_json::json!([
            self.name,
            self.sync,
            self.referral_id,
            self.account_id,
            self.currency_id,
            self.owner_id,
            self.contact_id,
            self.state,
            self.status_reason,
            self.deal_value,
            self.closing_date,
            self.sales_stage,
            self.help,
            self.notes,
        ]);
        // FNV-1a: stable across processes and releases (it is stored), unlike the standard hasher.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in fields.to_string().bytes() {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

/// What a check is for: the customer's location is fixed once a referral exists (§1.5), so it matters
/// only for a new referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Create,
    Update,
}

/// One failing rule: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Problem {
    NameMissing,
    SolutionMissing,
    CustomerMissing,
    CountryMissing {
        account: String,
    },
    CountryNotIso {
        account: String,
        value: String,
        suggestion: Option<String>,
    },
    ContactMissing,
    DealValueMissing,
    DealValueNegative {
        value: String,
    },
    ClosingDateMissing,
    CurrencyMissing,
    CurrencyUnknown {
        value: String,
        configured: Vec<String>,
    },
    /// The CRM has no currency a referral could be in (Salesforce without multiple currencies: the
    /// FAQ's "the currency field is configured" requirement).
    CurrencyNotConfigured,
    OwnerIncomplete {
        owner: String,
        missing: Vec<String>,
    },
    ClosedWithoutReferral {
        state: OpportunityState,
    },
}

impl Problem {
    /// A stable code for the rule (audit events, tests, CSS).
    pub fn rule(&self) -> &'static str {
        match self {
            Problem::NameMissing => "name_missing",
            Problem::SolutionMissing => "solution_missing",
            Problem::CustomerMissing => "customer_missing",
            Problem::CountryMissing { .. } => "country_missing",
            Problem::CountryNotIso { .. } => "country_not_iso",
            Problem::ContactMissing => "contact_missing",
            Problem::DealValueMissing => "deal_value_missing",
            Problem::DealValueNegative { .. } => "deal_value_negative",
            Problem::ClosingDateMissing => "closing_date_missing",
            Problem::CurrencyMissing => "currency_missing",
            Problem::CurrencyUnknown { .. } => "currency_unknown",
            Problem::CurrencyNotConfigured => "currency_not_configured",
            Problem::OwnerIncomplete { .. } => "owner_incomplete",
            Problem::ClosedWithoutReferral { .. } => "closed_without_referral",
        }
    }

    /// The CRM field to fix, as sellers see it.
    pub fn field(&self) -> &'static str {
        match self {
            Problem::NameMissing => "Topic",
            Problem::SolutionMissing => "Microsoft Partner Center Solutions",
            Problem::CustomerMissing => "Potential Customer",
            Problem::CountryMissing { .. } | Problem::CountryNotIso { .. } => {
                "Account: Address 1: Country/Region"
            }
            Problem::ContactMissing => "Contact",
            Problem::DealValueMissing | Problem::DealValueNegative { .. } => "Est. Revenue",
            Problem::ClosingDateMissing => "Est. Close Date",
            Problem::CurrencyMissing
            | Problem::CurrencyUnknown { .. }
            | Problem::CurrencyNotConfigured => "Currency",
            Problem::OwnerIncomplete { .. } => "Owner",
            Problem::ClosedWithoutReferral { .. } => "Status",
        }
    }

    /// What is wrong and how to fix it, in a sentence or two.
    pub fn message(&self) -> String {
        match self {
            Problem::NameMissing => "The opportunity has no name (Topic). Give it one.".into(),
            Problem::SolutionMissing => {
                "Solution ID is required: add at least one Microsoft solution \
                (Microsoft Partner Center Solutions) to the opportunity."
                    .into()
            }
            Problem::CustomerMissing => {
                "The opportunity has no customer account. Set Potential Customer to an account."
                    .into()
            }
            Problem::CountryMissing { account } => format!(
                "Customer account country code is missing: set Address 1: Country/Region of “{account}” to a two-letter ISO 3166 code (US, DE, GB…)."
            ),
            Problem::CountryNotIso {
                account,
                value,
                suggestion,
            } => match suggestion {
                Some(code) => format!(
                    "“{value}” (country of “{account}”) is not a two-letter ISO 3166 code: set it to {code}."
                ),
                None => format!(
                    "“{value}” (country of “{account}”) is not a two-letter ISO 3166 code: use the country's code (US, DE, GB…)."
                ),
            },
            Problem::ContactMissing => {
                "Microsoft's help is requested, so a customer contact is required: \
                set the opportunity's Contact (or the account's primary contact)."
                    .into()
            }
            Problem::DealValueMissing => "The deal value is missing: set Est. Revenue.".into(),
            Problem::DealValueNegative { value } => {
                format!(
                    "The deal value ({value}) is negative: set Est. Revenue to the expected amount."
                )
            }
            Problem::ClosingDateMissing => {
                "The closing date is missing: set Est. Close Date.".into()
            }
            Problem::CurrencyMissing => "The opportunity has no currency: set Currency.".into(),
            Problem::CurrencyNotConfigured => "The CRM has no currency configured for referrals. In Salesforce, turn on multiple currencies and activate the deal's currency (Setup → Company Settings → Manage Currencies); in Dynamics 365, add it (Settings → Business Management → Currencies).".into(),
            Problem::CurrencyUnknown { value, configured } => format!(
                "The currency “{value}” is not an ISO 4217 code configured in the CRM ({}). Choose one of those, or add the currency to the CRM first.",
                if configured.is_empty() {
                    "none is".to_string()
                } else {
                    configured.join(", ")
                }
            ),
            Problem::OwnerIncomplete { owner, missing } => format!(
                "Partner Center needs the deal's team member with a name, email and phone: the owner {owner} has no {}. Complete the owner's user record.",
                missing.join(" or ")
            ),
            Problem::ClosedWithoutReferral { state } => format!(
                "The opportunity is already {}: closed deals are not shared. Reopen it to share it.",
                match state {
                    OpportunityState::Won => "won",
                    _ => "lost",
                }
            ),
        }
    }
}

/// An opportunity that passed every rule, with its values parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready<'a> {
    pub opportunity: &'a Opportunity,
    pub customer: &'a Customer,
    /// None on [`Purpose::Update`]: the referral's location is fixed.
    pub country: Option<CountryCode>,
    pub currency: CurrencyCode,
    pub deal_value: f64,
    pub closing_date: Date,
    pub solutions: Vec<String>,
    pub owner: &'a Person,
    pub contact: Option<&'a Person>,
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// Every rule at once: the opportunity ready to send, or every problem with it.
/// `configured` are the currencies the CRM has set up.
pub fn check<'a>(
    o: &'a Opportunity,
    configured: &[CurrencyCode],
    purpose: Purpose,
) -> Result<Ready<'a>, Vec<Problem>> {
    let mut problems = Vec::new();
    if purpose == Purpose::Create && o.state != OpportunityState::Open {
        problems.push(Problem::ClosedWithoutReferral { state: o.state });
    }
    if o.name.trim().is_empty() {
        problems.push(Problem::NameMissing);
    }
    let solutions = o.solution_ids();
    if solutions.is_empty() {
        problems.push(Problem::SolutionMissing);
    }
    let mut country = None;
    match &o.customer {
        None => problems.push(Problem::CustomerMissing),
        Some(c) if purpose == Purpose::Create => match c.country.as_deref().map(str::trim) {
            None | Some("") => problems.push(Problem::CountryMissing {
                account: c.name.clone(),
            }),
            Some(value) => match CountryCode::parse(value) {
                Some(code) => country = Some(code),
                None => problems.push(Problem::CountryNotIso {
                    account: c.name.clone(),
                    value: value.to_string(),
                    suggestion: CountryCode::suggest(value).map(|c| c.to_string()),
                }),
            },
        },
        Some(_) => {}
    }
    let help = !blank(&o.help);
    let contact = o
        .contact
        .as_ref()
        .filter(|p| !(blank(&p.email) && blank(&p.first_name) && blank(&p.last_name)));
    if help && contact.is_none() {
        problems.push(Problem::ContactMissing);
    }
    // The reference asks for value and date "when qualifying"; Partner Center makes both mandatory for
    // every deal (§1.5), and a deal shared from the CRM is a qualified one, so both are always required.
    match o.deal_value {
        None => problems.push(Problem::DealValueMissing),
        Some(v) if v < 0.0 || !v.is_finite() => problems.push(Problem::DealValueNegative {
            value: v.to_string(),
        }),
        Some(_) => {}
    }
    if o.closing_date.is_none() {
        problems.push(Problem::ClosingDateMissing);
    }
    let currency = match o.currency.as_deref().map(str::trim) {
        _ if configured.is_empty() => {
            problems.push(Problem::CurrencyNotConfigured);
            None
        }
        None | Some("") => {
            problems.push(Problem::CurrencyMissing);
            None
        }
        Some(value) => match CurrencyCode::parse(value).filter(|c| configured.contains(c)) {
            Some(code) => Some(code),
            None => {
                problems.push(Problem::CurrencyUnknown {
                    value: value.to_string(),
                    configured: configured.iter().map(|c| c.to_string()).collect(),
                });
                None
            }
        },
    };
    let owner = o.owner.as_ref();
    let missing: Vec<String> = match owner {
        None => vec!["name".into(), "email".into(), "phone".into()],
        Some(p) => [
            ("name", p.full_name().is_empty()),
            ("email", blank(&p.email)),
            ("phone", blank(&p.phone)),
        ]
        .into_iter()
        .filter(|(_, missing)| *missing)
        .map(|(what, _)| what.to_string())
        .collect(),
    };
    if !missing.is_empty() {
        problems.push(Problem::OwnerIncomplete {
            owner: owner
                .map(Person::full_name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "(none)".into()),
            missing,
        });
    }
    match (problems.is_empty(), &o.customer, currency, owner) {
        (true, Some(customer), Some(currency), Some(owner)) => Ok(Ready {
            opportunity: o,
            customer,
            country,
            currency,
            deal_value: o.deal_value.unwrap_or_default(),
            closing_date: o.closing_date.unwrap_or(Date::MIN),
            solutions,
            owner,
            contact,
        }),
        _ => Err(problems),
    }
}

/// A sample opportunity that passes every rule, for tests here and in the mapping.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use time::macros::date;

    pub(crate) fn person(first: &str, email: &str, phone: &str) -> Person {
        let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        Person {
            first_name: some(first),
            last_name: some("Doe"),
            email: some(email),
            phone: some(phone),
        }
    }

    /// An opportunity that passes every rule.
    pub(crate) fn ready() -> Opportunity {
        Opportunity {
            id: "opp-1".into(),
            name: "Fabrikam Azure migration".into(),
            sync: true,
            referral_id: None,
            state: OpportunityState::Open,
            status_reason: Some("In Progress".into()),
            deal_value: Some(48000.0),
            currency: Some("USD".into()),
            closing_date: Some(date!(2027 - 06 - 30)),
            sales_stage: Some("Develop".into()),
            help: Some("Architecture guidance".into()),
            solutions: vec!["SOL-AZ-MIG".into()],
            notes: None,
            customer: Some(Customer {
                id: "acc-1".into(),
                name: "Fabrikam, Inc.".into(),
                country: Some("US".into()),
                postal_code: Some("98052".into()),
                ..Default::default()
            }),
            contact: Some(person("Ray", "ray@fabrikam.example", "")),
            owner: Some(person("Adele", "adele@contoso.example", "+1 425 555 0100")),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::ready;
    use super::*;
    use time::macros::date;

    fn currencies() -> Vec<CurrencyCode> {
        ["USD", "EUR", "GBP"]
            .iter()
            .map(|c| CurrencyCode::parse(c).unwrap())
            .collect()
    }

    /// The rules, one row each: a change to a ready opportunity, the purpose, and the rules that fail.
    #[test]
    fn the_rules_table() {
        type Change = fn(&mut Opportunity);
        #[rustfmt::skip]
        let rows: &[(&str, Change, Purpose, &[&str])] = &[
            ("ready", |_| {}, Purpose::Create, &[]),
            ("ready, for an update", |_| {}, Purpose::Update, &[]),
            ("no name", |o| o.name = "  ".into(), Purpose::Create, &["name_missing"]),
            ("no solution", |o| o.solutions.clear(), Purpose::Create, &["solution_missing"]),
            ("blank solution ids", |o| o.solutions = vec![" ".into()], Purpose::Create, &["solution_missing"]),
            ("no customer", |o| o.customer = None, Purpose::Create, &["customer_missing"]),
            ("no country", |o| o.customer.as_mut().unwrap().country = None, Purpose::Create, &["country_missing"]),
            ("blank country", |o| o.customer.as_mut().unwrap().country = Some(" ".into()), Purpose::Create, &["country_missing"]),
            ("country as a name", |o| o.customer.as_mut().unwrap().country = Some("Deutschland".into()), Purpose::Create, &["country_not_iso"]),
            ("country not assigned", |o| o.customer.as_mut().unwrap().country = Some("XX".into()), Purpose::Create, &["country_not_iso"]),
            ("country lower case", |o| o.customer.as_mut().unwrap().country = Some("de".into()), Purpose::Create, &[]),
            ("no country, on update", |o| o.customer.as_mut().unwrap().country = None, Purpose::Update, &[]),
            ("help without contact", |o| o.contact = None, Purpose::Create, &["contact_missing"]),
            ("help with an empty contact", |o| o.contact = Some(Person::default()), Purpose::Create, &["contact_missing"]),
            ("no help, no contact", |o| { o.help = None; o.contact = None; }, Purpose::Create, &[]),
            ("blank help, no contact", |o| { o.help = Some(" ".into()); o.contact = None; }, Purpose::Create, &[]),
            ("no deal value", |o| o.deal_value = None, Purpose::Create, &["deal_value_missing"]),
            ("negative deal value", |o| o.deal_value = Some(-5.0), Purpose::Create, &["deal_value_negative"]),
            ("zero deal value", |o| o.deal_value = Some(0.0), Purpose::Create, &[]),
            ("no closing date", |o| o.closing_date = None, Purpose::Create, &["closing_date_missing"]),
            ("no currency", |o| o.currency = None, Purpose::Create, &["currency_missing"]),
            ("currency not ISO", |o| o.currency = Some("US$".into()), Purpose::Create, &["currency_unknown"]),
            ("currency not configured", |o| o.currency = Some("JPY".into()), Purpose::Create, &["currency_unknown"]),
            ("no owner", |o| o.owner = None, Purpose::Create, &["owner_incomplete"]),
            ("owner without phone", |o| o.owner.as_mut().unwrap().phone = None, Purpose::Create, &["owner_incomplete"]),
            ("won, no referral yet", |o| o.state = OpportunityState::Won, Purpose::Create, &["closed_without_referral"]),
            ("lost, updating its referral", |o| o.state = OpportunityState::Lost, Purpose::Update, &[]),
            ("everything wrong at once", |o| {
                o.name.clear();
                o.solutions.clear();
                o.customer.as_mut().unwrap().country = None;
                o.contact = None;
                o.deal_value = None;
                o.closing_date = None;
                o.currency = None;
                o.owner = None;
            }, Purpose::Create, &[
                "name_missing", "solution_missing", "country_missing", "contact_missing",
                "deal_value_missing", "closing_date_missing", "currency_missing", "owner_incomplete",
            ]),
        ];
        for (what, change, purpose, expected) in rows {
            let mut o = ready();
            change(&mut o);
            let got: Vec<&str> = match check(&o, &currencies(), *purpose) {
                Ok(_) => vec![],
                Err(problems) => problems.iter().map(Problem::rule).collect(),
            };
            assert_eq!(&got, expected, "{what}");
        }
    }

    #[test]
    fn a_crm_without_currencies_is_one_rule_with_its_fix() {
        let problems = check(&ready(), &[], Purpose::Create).unwrap_err();
        assert_eq!(
            problems.iter().map(Problem::rule).collect::<Vec<_>>(),
            ["currency_not_configured"]
        );
        assert!(problems[0].message().contains("Manage Currencies"));
    }

    #[test]
    fn a_ready_opportunity_carries_its_parsed_values() {
        let o = ready();
        let r = check(&o, &currencies(), Purpose::Create).unwrap();
        assert_eq!(r.country.unwrap().as_str(), "US");
        assert_eq!(r.currency.as_str(), "USD");
        assert_eq!(r.deal_value, 48000.0);
        assert_eq!(r.closing_date, date!(2027 - 06 - 30));
        assert_eq!(
            r.contact.unwrap().email.as_deref(),
            Some("ray@fabrikam.example")
        );
        let r = check(&o, &currencies(), Purpose::Update).unwrap();
        assert_eq!(
            r.country, None,
            "the location is fixed once the referral exists"
        );
    }

    #[test]
    fn messages_name_the_field_and_the_fix() {
        let mut o = ready();
        o.customer.as_mut().unwrap().country = Some("Deutschland".into());
        o.currency = Some("JPY".into());
        o.owner.as_mut().unwrap().phone = None;
        let problems = check(&o, &currencies(), Purpose::Create).unwrap_err();
        let text: Vec<String> = problems.iter().map(Problem::message).collect();
        assert!(
            text[0].contains("“Deutschland”") && text[0].contains("set it to DE"),
            "{}",
            text[0]
        );
        assert_eq!(problems[0].field(), "Account: Address 1: Country/Region");
        assert!(
            text[1].contains("JPY") && text[1].contains("USD, EUR, GBP"),
            "{}",
            text[1]
        );
        assert!(
            text[2].contains("Adele Doe") && text[2].contains("no phone"),
            "{}",
            text[2]
        );
        let json = serde_json::to_value(&problems[0]).unwrap();
        assert_eq!(json["rule"], "country_not_iso");
        assert_eq!(
            serde_json::from_value::<Problem>(json).unwrap(),
            problems[0]
        );
    }

    #[test]
    fn the_fingerprint_moves_with_every_shared_field_but_the_solutions() {
        let o = ready();
        let same = |f: fn(&mut Opportunity)| {
            let mut other = o.clone();
            f(&mut other);
            other.fingerprint() == o.fingerprint()
        };
        assert!(same(|o| o.solutions = vec!["SOL-OTHER".into()]));
        assert!(
            same(|o| o.note = Some("✔ Shared".into())),
            "cosell's own note"
        );
        assert!(same(|o| o.version = Some("9".into())));
        assert!(same(|o| o.referral_link = Some("https://x".into())));
        assert!(same(|o| o.contact = None), "a full read's records");
        assert!(!same(|o| o.deal_value = Some(1.0)));
        assert!(!same(|o| o.closing_date = None));
        assert!(!same(|o| o.owner_id = Some("user-2".into())));
        assert!(!same(|o| o.sales_stage = Some("Close".into())));
        assert!(!same(|o| o.help = None));
        assert!(!same(|o| o.state = OpportunityState::Won));
        assert_eq!(o.fingerprint(), ready().fingerprint(), "stable");
    }
}
