//! The tables the sync engine needs, as the Web API exposes them (crm-apis.md §2.9): column names, types,
//! lengths, choices and lookups. Only what the emulator uses; the real tables have many more columns.
//!
//! The co-sell solution's custom columns on `opportunity` (`msp_*`) come from Microsoft's co-sell
//! connector solution; **their schema names are unconfirmed** (the reference does not give them): the
//! emulator uses
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `msp_syncwithpartnercenter` | Boolean, default `false` | "Sync with Partner Center" |
//! | `msp_referralid` | String | the Partner Center referral id |
//! | `msp_referrallink` | String | link to the referral in Partner Center |
//! | `msp_cosellaudit` | Memo | the solution's audit text |
//! | `msp_microsoftsolutions` | String | comma-separated Partner Center solution ids (a simplification of the "Microsoft Partner Center Solutions" subgrid) |
//! | `msp_howcanmicrosofthelp` | String or null | how Microsoft can help |
//! | `msp_microsoftcrmid` | String | Microsoft's CRM id of the deal |
//!
//! Column lengths of the custom columns are unconfirmed too. "Application-required" columns (`name`,
//! `customerid`, `transactioncurrencyid` on opportunities) are **not** enforced: the Web API enforces only
//! system-required ones, form-level requirements do not apply to it (unconfirmed, but widely observed).

/// Column names a script acting as a CRM user writes and reads: the co-sell solution's custom columns
/// on `opportunity`, and its state and status codes.
pub mod columns {
    pub const SYNC: &str = "msp_syncwithpartnercenter";
    pub const REFERRAL_ID: &str = "msp_referralid";
    pub const REFERRAL_LINK: &str = "msp_referrallink";
    pub const AUDIT: &str = "msp_cosellaudit";
    pub const SOLUTIONS: &str = "msp_microsoftsolutions";
    pub const HELP: &str = "msp_howcanmicrosofthelp";
    pub const CRM_ID: &str = "msp_microsoftcrmid";
    pub const STATE: &str = "statecode";
    pub const STATUS: &str = "statuscode";
}

/// How a column reads and writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// The primary key (`Edm.Guid`).
    Key,
    /// String with a maximum length.
    Text(usize),
    /// Multiple lines of text with a maximum length.
    Memo(usize),
    /// Whole number in a range (`Edm.Int32`).
    Whole(i64, i64),
    /// Money, precision 2 (`Edm.Decimal`); ±1e12 (crm-apis.md §2.9).
    Money,
    /// Decimal (`Edm.Decimal`), e.g. an exchange rate.
    Decimal,
    /// `versionnumber` (`Edm.Int64`).
    BigInt,
    Bool,
    /// Date only: JSON `"2025-09-30"` (`Edm.Date`).
    DateOnly,
    /// Date and time, UTC (`Edm.DateTimeOffset`).
    DateTime,
    /// A choice (picklist): value and label.
    Choice(&'static [(i64, &'static str)]),
    /// `statecode`: value and label.
    State(&'static [(i64, &'static str)]),
    /// `statuscode`: value, label and the state it belongs to; the first of a state is its default.
    Status(&'static [(i64, &'static str, i64)]),
    /// A lookup, read back as `_<name>_value`, set with `<nav>@odata.bind`.
    Lookup(&'static [Target]),
}

impl Kind {
    /// The OData type name, as error messages give it.
    pub(crate) fn edm(self) -> &'static str {
        match self {
            Kind::Key | Kind::Lookup(_) => "Edm.Guid",
            Kind::Text(_) | Kind::Memo(_) => "Edm.String",
            Kind::Whole(..) | Kind::Choice(_) | Kind::State(_) | Kind::Status(_) => "Edm.Int32",
            Kind::Money | Kind::Decimal => "Edm.Decimal",
            Kind::BigInt => "Edm.Int64",
            Kind::Bool => "Edm.Boolean",
            Kind::DateOnly => "Edm.Date",
            Kind::DateTime => "Edm.DateTimeOffset",
        }
    }
}

/// One way to set a lookup: `<nav>@odata.bind: "/<set>(<guid>)"`.
#[derive(Debug, PartialEq)]
pub(crate) struct Target {
    pub nav: &'static str,
    pub set: &'static str,
    pub logical: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Access {
    /// Callers may write it.
    Write,
    /// Set by the platform; writes are ignored (unconfirmed: the real service may reject some).
    System,
}

#[derive(Debug)]
pub(crate) struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub access: Access,
}

impl Column {
    /// The property name in JSON: `_<name>_value` for lookups.
    pub(crate) fn property(&self) -> String {
        match self.kind {
            Kind::Lookup(_) => format!("_{}_value", self.name),
            _ => self.name.to_string(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Table {
    pub set: &'static str,
    pub logical: &'static str,
    pub key: &'static str,
    /// The primary name column (a lookup's formatted value).
    pub primary_name: &'static str,
    pub columns: &'static [Column],
}

impl Table {
    pub(crate) fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column behind a JSON property name (`name`, `_parentaccountid_value`, …).
    pub(crate) fn property(&self, property: &str) -> Option<&'static Column> {
        if let Some(lookup) = property
            .strip_prefix('_')
            .and_then(|p| p.strip_suffix("_value"))
            && let Some(c) = self.column(lookup)
            && matches!(c.kind, Kind::Lookup(_))
        {
            return Some(c);
        }
        self.column(property)
            .filter(|c| !matches!(c.kind, Kind::Lookup(_)))
    }

    /// The lookup column a navigation property binds, e.g. `customerid_account` → `customerid`.
    pub(crate) fn lookup_by_nav(&self, nav: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| match c.kind {
            Kind::Lookup(targets) => targets.iter().any(|t| t.nav == nav),
            _ => false,
        })
    }

    pub(crate) fn has_money(&self) -> bool {
        self.columns.iter().any(|c| c.kind == Kind::Money)
    }

    /// The full type name, as error messages give it.
    pub(crate) fn type_name(&self) -> String {
        format!("Microsoft.Dynamics.CRM.{}", self.logical)
    }
}

const fn w(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        access: Access::Write,
    }
}

const fn sys(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        access: Access::System,
    }
}

const CURRENCY: Kind = Kind::Lookup(&[Target {
    nav: "transactioncurrencyid",
    set: "transactioncurrencies",
    logical: "transactioncurrency",
}]);
const OWNER: Kind = Kind::Lookup(&[
    Target {
        nav: "ownerid",
        set: "systemusers",
        logical: "systemuser",
    },
    Target {
        nav: "ownerid",
        set: "teams",
        logical: "team",
    },
]);
const PARENT_ACCOUNT: Kind = Kind::Lookup(&[Target {
    nav: "parentaccountid",
    set: "accounts",
    logical: "account",
}]);
/// Active/Inactive, as accounts, contacts and currencies have them.
const ACTIVE_STATE: Kind = Kind::State(&[(0, "Active"), (1, "Inactive")]);
const ACTIVE_STATUS: Kind = Kind::Status(&[(1, "Active", 0), (2, "Inactive", 1)]);

pub(crate) const OPPORTUNITY_STATES: &[(i64, &str)] = &[(0, "Open"), (1, "Won"), (2, "Lost")];
pub(crate) const OPPORTUNITY_STATUSES: &[(i64, &str, i64)] = &[
    (1, "In Progress", 0),
    (2, "On Hold", 0),
    (3, "Won", 1),
    (4, "Canceled", 2),
    (5, "Out-Sold", 2),
];

pub(crate) static OPPORTUNITY: Table = Table {
    set: "opportunities",
    logical: "opportunity",
    key: "opportunityid",
    primary_name: "name",
    columns: &[
        w("opportunityid", Kind::Key),
        w("name", Kind::Text(300)),
        w("description", Kind::Memo(2000)),
        w("estimatedvalue", Kind::Money),
        sys("estimatedvalue_base", Kind::Money),
        w("estimatedclosedate", Kind::DateOnly),
        w("actualvalue", Kind::Money),
        sys("actualvalue_base", Kind::Money),
        w("actualclosedate", Kind::DateOnly),
        sys("exchangerate", Kind::Decimal),
        w("closeprobability", Kind::Whole(0, 100)),
        w("stepname", Kind::Text(200)),
        w(
            "salesstage",
            Kind::Choice(&[(0, "Qualify"), (1, "Develop"), (2, "Propose"), (3, "Close")]),
        ),
        w(
            "msdyn_forecastcategory",
            Kind::Choice(&[
                (100000001, "Pipeline"),
                (100000002, "Best case"),
                (100000003, "Committed"),
                (100000004, "Omitted"),
                (100000005, "Won"),
                (100000006, "Lost"),
            ]),
        ),
        w("statecode", Kind::State(OPPORTUNITY_STATES)),
        w("statuscode", Kind::Status(OPPORTUNITY_STATUSES)),
        w("transactioncurrencyid", CURRENCY),
        w(
            "customerid",
            Kind::Lookup(&[
                Target {
                    nav: "customerid_account",
                    set: "accounts",
                    logical: "account",
                },
                Target {
                    nav: "customerid_contact",
                    set: "contacts",
                    logical: "contact",
                },
            ]),
        ),
        w("parentaccountid", PARENT_ACCOUNT),
        w(
            "parentcontactid",
            Kind::Lookup(&[Target {
                nav: "parentcontactid",
                set: "contacts",
                logical: "contact",
            }]),
        ),
        w("ownerid", OWNER),
        // The co-sell solution's columns (names unconfirmed, see the module doc).
        w(columns::SYNC, Kind::Bool),
        w(columns::REFERRAL_ID, Kind::Text(100)),
        w(columns::REFERRAL_LINK, Kind::Text(1000)),
        w(columns::AUDIT, Kind::Memo(1_048_576)),
        w(columns::SOLUTIONS, Kind::Text(4000)),
        w(columns::HELP, Kind::Text(4000)),
        w(columns::CRM_ID, Kind::Text(100)),
        sys("createdon", Kind::DateTime),
        sys("modifiedon", Kind::DateTime),
        sys("versionnumber", Kind::BigInt),
    ],
};

pub(crate) static ACCOUNT: Table = Table {
    set: "accounts",
    logical: "account",
    key: "accountid",
    primary_name: "name",
    columns: &[
        w("accountid", Kind::Key),
        w("name", Kind::Text(160)),
        w("accountnumber", Kind::Text(20)),
        w("description", Kind::Memo(2000)),
        w("address1_line1", Kind::Text(250)),
        w("address1_line2", Kind::Text(250)),
        w("address1_city", Kind::Text(80)),
        w("address1_stateorprovince", Kind::Text(50)),
        w("address1_postalcode", Kind::Text(20)),
        // Free text ("United States", "Deutschland"), not an ISO code (crm-apis.md §2.9).
        w("address1_country", Kind::Text(80)),
        w("telephone1", Kind::Text(50)),
        w("emailaddress1", Kind::Text(100)),
        w("websiteurl", Kind::Text(200)),
        w("numberofemployees", Kind::Whole(0, 1_000_000_000)),
        w("revenue", Kind::Money),
        sys("revenue_base", Kind::Money),
        sys("exchangerate", Kind::Decimal),
        w("transactioncurrencyid", CURRENCY),
        w(
            "primarycontactid",
            Kind::Lookup(&[Target {
                nav: "primarycontactid",
                set: "contacts",
                logical: "contact",
            }]),
        ),
        w("parentaccountid", PARENT_ACCOUNT),
        w("ownerid", OWNER),
        w("statecode", ACTIVE_STATE),
        w("statuscode", ACTIVE_STATUS),
        sys("createdon", Kind::DateTime),
        sys("modifiedon", Kind::DateTime),
        sys("versionnumber", Kind::BigInt),
    ],
};

pub(crate) static CONTACT: Table = Table {
    set: "contacts",
    logical: "contact",
    key: "contactid",
    primary_name: "fullname",
    columns: &[
        w("contactid", Kind::Key),
        w("firstname", Kind::Text(50)),
        w("lastname", Kind::Text(50)),
        // "First Last", computed by the platform.
        sys("fullname", Kind::Text(160)),
        w("emailaddress1", Kind::Text(100)),
        w("telephone1", Kind::Text(50)),
        w("mobilephone", Kind::Text(50)),
        w("jobtitle", Kind::Text(100)),
        w("description", Kind::Memo(2000)),
        w("address1_city", Kind::Text(80)),
        w("address1_postalcode", Kind::Text(20)),
        w("address1_country", Kind::Text(80)),
        w(
            "parentcustomerid",
            Kind::Lookup(&[
                Target {
                    nav: "parentcustomerid_account",
                    set: "accounts",
                    logical: "account",
                },
                Target {
                    nav: "parentcustomerid_contact",
                    set: "contacts",
                    logical: "contact",
                },
            ]),
        ),
        w("ownerid", OWNER),
        w("statecode", ACTIVE_STATE),
        w("statuscode", ACTIVE_STATUS),
        sys("createdon", Kind::DateTime),
        sys("modifiedon", Kind::DateTime),
        sys("versionnumber", Kind::BigInt),
    ],
};

pub(crate) static TRANSACTION_CURRENCY: Table = Table {
    set: "transactioncurrencies",
    logical: "transactioncurrency",
    key: "transactioncurrencyid",
    primary_name: "currencyname",
    columns: &[
        w("transactioncurrencyid", Kind::Key),
        w("currencyname", Kind::Text(100)),
        w("isocurrencycode", Kind::Text(5)),
        w("currencysymbol", Kind::Text(10)),
        // Units of this currency per unit of the base currency (USD in the sandbox).
        w("exchangerate", Kind::Decimal),
        w("currencyprecision", Kind::Whole(0, 4)),
        w("statecode", ACTIVE_STATE),
        w("statuscode", ACTIVE_STATUS),
        sys("createdon", Kind::DateTime),
        sys("modifiedon", Kind::DateTime),
        sys("versionnumber", Kind::BigInt),
    ],
};

pub(crate) static TABLES: [&Table; 4] = [&OPPORTUNITY, &ACCOUNT, &CONTACT, &TRANSACTION_CURRENCY];

pub(crate) fn table(set: &str) -> Option<&'static Table> {
    TABLES.iter().copied().find(|t| t.set == set)
}
