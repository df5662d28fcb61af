//! The org's objects and fields, as describe and SOQL see them (crm-apis.md §3.9, §3.11). Only what the
//! sync engine needs; real objects have many more fields.
//!
//! The co-sell fields on Opportunity come from Microsoft's "Partner Center Referrals Synchronization for
//! Salesforce" package; the reference names the fields by label only (partner-center.md §3.3), so **their
//! API names are the emulator's choice** and live in [`fields`]. "How can Microsoft help?" is a restricted
//! picklist whose values are the six documented `assistanceRequestCode` values other than `Unknown`
//! (partner-center.md §1.8, the mapping itself inferred there), with readable labels.

use super::Settings;

pub(crate) use super::objects::{
    ACCOUNT, CONTACT, CURRENCY_TYPE, OBJECTS, OPPORTUNITY, OPPORTUNITY_STAGE, ORGANIZATION,
    PERMISSION_SET, PERMISSION_SET_ASSIGNMENT, PROFILE, USER,
};

/// API names of the co-sell fields (and the standard ones scripts touch most).
pub mod fields {
    pub const SYNC: &str = "Sync_with_Partner_Center__c";
    pub const REFERRAL_ID: &str = "Referral_Identifier__c";
    pub const REFERRAL_LINK: &str = "Referral_Link__c";
    pub const AUDIT: &str = "Audit__c";
    pub const HELP: &str = "How_can_Microsoft_help__c";
    pub const SOLUTIONS: &str = "Microsoft_Solutions__c";
}

/// "How can Microsoft help?": (API value, label).
pub const HELP_VALUES: &[(&str, &str)] = &[
    ("GeneralOrOther", "General or other"),
    (
        "CustomerTechnicalArchitecture",
        "Customer technical architecture",
    ),
    ("ProofOfConceptOrDemo", "Proof of concept or demo"),
    ("QuotesOrLicensing", "Quotes or licensing"),
    ("PostSalesCustomerSuccess", "Post-sales customer success"),
    (
        "WorkloadSpecificValueProposition",
        "Workload-specific value proposition",
    ),
];

/// Where a picklist takes its values from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Values {
    /// Active `OpportunityStage` master labels.
    Stage,
    /// Active `CurrencyType` ISO codes.
    Currency,
    Help,
    Country,
    State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Id,
    /// A lookup: the object it points at and the relationship name SOQL follows.
    Reference(&'static str, &'static str),
    String(usize),
    TextArea(usize),
    Url,
    Email,
    Phone,
    Picklist(Values),
    Boolean,
    Currency,
    Percent,
    Double,
    Int,
    Date,
    DateTime,
}

impl Type {
    /// The `type` describe reports.
    pub(crate) fn describe_name(self) -> &'static str {
        match self {
            Type::Id => "id",
            Type::Reference(..) => "reference",
            Type::String(_) => "string",
            Type::TextArea(_) => "textarea",
            Type::Url => "url",
            Type::Email => "email",
            Type::Phone => "phone",
            Type::Picklist(_) => "picklist",
            Type::Boolean => "boolean",
            Type::Currency => "currency",
            Type::Percent => "percent",
            Type::Double => "double",
            Type::Int => "int",
            Type::Date => "date",
            Type::DateTime => "datetime",
        }
    }

    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            Type::String(_)
                | Type::TextArea(_)
                | Type::Url
                | Type::Email
                | Type::Phone
                | Type::Picklist(_)
        )
    }

    pub(crate) fn is_number(self) -> bool {
        matches!(
            self,
            Type::Currency | Type::Percent | Type::Double | Type::Int
        )
    }

    pub(crate) fn max_length(self) -> Option<usize> {
        match self {
            Type::String(n) | Type::TextArea(n) => Some(n),
            Type::Url | Type::Email => Some(255),
            Type::Phone => Some(40),
            _ => None,
        }
    }
}

/// When a field or object exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Always,
    MultiCurrency,
    Picklists,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub ty: Type,
    /// Writable through the API (system and formula fields are not).
    pub writable: bool,
    pub required: bool,
    pub external_id: bool,
    pub when: When,
}

impl Field {
    pub(crate) fn custom(&self) -> bool {
        self.name.ends_with("__c")
    }
}

#[derive(Debug)]
pub(crate) struct Object {
    pub name: &'static str,
    pub label: &'static str,
    pub plural: &'static str,
    pub prefix: &'static str,
    /// Create, update and delete through the REST API (the rest are read through SOQL, seeded or
    /// written through the control API).
    pub writable: bool,
    pub when: When,
    pub fields: &'static [Field],
}

impl Object {
    /// The field of this name (case-insensitive, as SOQL and the REST API match names) if the org has it.
    pub(crate) fn field(&self, name: &str, settings: &Settings) -> Option<&'static Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name) && exists(f.when, settings))
    }

    /// The lookup field behind a relationship name (`Account` → `AccountId`).
    pub(crate) fn relationship(
        &self,
        name: &str,
        settings: &Settings,
    ) -> Option<(&'static Field, &'static Object)> {
        self.fields.iter().find_map(|f| match f.ty {
            Type::Reference(to, rel)
                if rel.eq_ignore_ascii_case(name) && exists(f.when, settings) =>
            {
                Some((f, object(to).expect("lookups point at known objects")))
            }
            _ => None,
        })
    }

    pub(crate) fn fields_in<'a>(
        &'static self,
        settings: &'a Settings,
    ) -> impl Iterator<Item = &'static Field> + 'a {
        self.fields.iter().filter(|f| exists(f.when, settings))
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|f| f.name == name)
    }
}

pub(crate) fn exists(when: When, settings: &Settings) -> bool {
    match when {
        When::Always => true,
        When::MultiCurrency => settings.multi_currency,
        When::Picklists => settings.state_country_picklists,
    }
}

/// The object of this name if the org has it (case-insensitive).
pub(crate) fn find(name: &str, settings: &Settings) -> Option<&'static Object> {
    OBJECTS
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(name) && exists(o.when, settings))
        .copied()
}

/// Any known object, whatever the switches.
pub(crate) fn object(name: &str) -> Option<&'static Object> {
    OBJECTS.iter().find(|o| o.name == name).copied()
}
