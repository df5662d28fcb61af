//! The objects the emulated org has and their fields (crm-apis.md §3.9, §3.11): the standard ones
//! the sync engine reads and writes, the permission objects a connection check reads, and the co-sell
//! package's fields on Opportunity ([`super::schema::fields`]).

use super::schema::{Field, Object, Type, Values, When, fields};

const fn f(name: &'static str, label: &'static str, ty: Type) -> Field {
    Field {
        name,
        label,
        ty,
        writable: true,
        required: false,
        external_id: false,
        when: When::Always,
    }
}

const fn ro(name: &'static str, label: &'static str, ty: Type) -> Field {
    Field {
        writable: false,
        ..f(name, label, ty)
    }
}

const fn req(name: &'static str, label: &'static str, ty: Type) -> Field {
    Field {
        required: true,
        ..f(name, label, ty)
    }
}

const fn only(when: When, field: Field) -> Field {
    Field { when, ..field }
}

const ID: Field = ro("Id", "Record ID", Type::Id);
const IS_DELETED: Field = ro("IsDeleted", "Deleted", Type::Boolean);
const OWNER: Field = f("OwnerId", "Owner ID", Type::Reference("User", "Owner"));
const CURRENCY: Field = only(
    When::MultiCurrency,
    f(
        "CurrencyIsoCode",
        "Currency ISO Code",
        Type::Picklist(Values::Currency),
    ),
);
const CREATED_DATE: Field = ro("CreatedDate", "Created Date", Type::DateTime);
const CREATED_BY: Field = ro(
    "CreatedById",
    "Created By ID",
    Type::Reference("User", "CreatedBy"),
);
const MODIFIED_DATE: Field = ro("LastModifiedDate", "Last Modified Date", Type::DateTime);
const MODIFIED_BY: Field = ro(
    "LastModifiedById",
    "Last Modified By ID",
    Type::Reference("User", "LastModifiedBy"),
);
const MODSTAMP: Field = ro("SystemModstamp", "System Modstamp", Type::DateTime);

pub(crate) static OPPORTUNITY: Object = Object {
    name: "Opportunity",
    label: "Opportunity",
    plural: "Opportunities",
    prefix: "006",
    writable: true,
    when: When::Always,
    fields: &[
        ID,
        IS_DELETED,
        f(
            "AccountId",
            "Account ID",
            Type::Reference("Account", "Account"),
        ),
        req("Name", "Name", Type::String(120)),
        f("Description", "Description", Type::TextArea(32000)),
        req("StageName", "Stage", Type::Picklist(Values::Stage)),
        f("Amount", "Amount", Type::Currency),
        f("Probability", "Probability (%)", Type::Percent),
        req("CloseDate", "Close Date", Type::Date),
        ro("IsClosed", "Closed", Type::Boolean),
        ro("IsWon", "Won", Type::Boolean),
        ro("HasOpportunityLineItem", "Has Line Item", Type::Boolean),
        f(
            "ContactId",
            "Contact ID",
            Type::Reference("Contact", "Contact"),
        ),
        OWNER,
        CURRENCY,
        CREATED_DATE,
        CREATED_BY,
        MODIFIED_DATE,
        MODIFIED_BY,
        MODSTAMP,
        f(fields::SYNC, "Sync with Partner Center", Type::Boolean),
        Field {
            external_id: true,
            ..f(
                fields::REFERRAL_ID,
                "Referral Identifier",
                Type::String(100),
            )
        },
        f(fields::REFERRAL_LINK, "Referral Link", Type::Url),
        f(fields::AUDIT, "Audit", Type::TextArea(131072)),
        f(
            fields::HELP,
            "How can Microsoft help?",
            Type::Picklist(Values::Help),
        ),
        f(fields::SOLUTIONS, "Microsoft Solutions", Type::String(255)),
    ],
};

pub(crate) static ACCOUNT: Object = Object {
    name: "Account",
    label: "Account",
    plural: "Accounts",
    prefix: "001",
    writable: true,
    when: When::Always,
    fields: &[
        ID,
        IS_DELETED,
        req("Name", "Account Name", Type::String(255)),
        f("Phone", "Account Phone", Type::Phone),
        f("BillingStreet", "Billing Street", Type::TextArea(255)),
        f("BillingCity", "Billing City", Type::String(40)),
        f("BillingState", "Billing State/Province", Type::String(80)),
        f(
            "BillingPostalCode",
            "Billing Zip/Postal Code",
            Type::String(20),
        ),
        f("BillingCountry", "Billing Country", Type::String(80)),
        only(
            When::Picklists,
            f(
                "BillingStateCode",
                "Billing State/Province Code",
                Type::Picklist(Values::State),
            ),
        ),
        only(
            When::Picklists,
            f(
                "BillingCountryCode",
                "Billing Country Code",
                Type::Picklist(Values::Country),
            ),
        ),
        OWNER,
        CURRENCY,
        CREATED_DATE,
        CREATED_BY,
        MODIFIED_DATE,
        MODIFIED_BY,
        MODSTAMP,
    ],
};

pub(crate) static CONTACT: Object = Object {
    name: "Contact",
    label: "Contact",
    plural: "Contacts",
    prefix: "003",
    writable: true,
    when: When::Always,
    fields: &[
        ID,
        IS_DELETED,
        f(
            "AccountId",
            "Account ID",
            Type::Reference("Account", "Account"),
        ),
        f("FirstName", "First Name", Type::String(40)),
        req("LastName", "Last Name", Type::String(80)),
        ro("Name", "Full Name", Type::String(121)),
        f("Email", "Email", Type::Email),
        f("Phone", "Business Phone", Type::Phone),
        f("MailingCountry", "Mailing Country", Type::String(80)),
        only(
            When::Picklists,
            f(
                "MailingCountryCode",
                "Mailing Country Code",
                Type::Picklist(Values::Country),
            ),
        ),
        OWNER,
        CURRENCY,
        CREATED_DATE,
        CREATED_BY,
        MODIFIED_DATE,
        MODIFIED_BY,
        MODSTAMP,
    ],
};

pub(crate) static USER: Object = Object {
    name: "User",
    label: "User",
    plural: "Users",
    prefix: "005",
    writable: false,
    when: When::Always,
    fields: &[
        ID,
        req("Username", "Username", Type::String(80)),
        req("Email", "Email", Type::Email),
        f("FirstName", "First Name", Type::String(40)),
        req("LastName", "Last Name", Type::String(80)),
        ro("Name", "Full Name", Type::String(121)),
        f("Phone", "Phone", Type::Phone),
        f("MobilePhone", "Mobile", Type::Phone),
        f("IsActive", "Active", Type::Boolean),
        req(
            "ProfileId",
            "Profile ID",
            Type::Reference("Profile", "Profile"),
        ),
        CREATED_DATE,
        MODIFIED_DATE,
        MODSTAMP,
    ],
};

pub(crate) static PROFILE: Object = Object {
    name: "Profile",
    label: "Profile",
    plural: "Profile",
    prefix: "00e",
    writable: false,
    when: When::Always,
    fields: &[
        ID,
        req("Name", "Name", Type::String(255)),
        f("PermissionsModifyAllData", "Modify All Data", Type::Boolean),
        f("PermissionsViewAllData", "View All Data", Type::Boolean),
        f("PermissionsApiEnabled", "API Enabled", Type::Boolean),
        MODSTAMP,
    ],
};

pub(crate) static PERMISSION_SET: Object = Object {
    name: "PermissionSet",
    label: "Permission Set",
    plural: "Permission Sets",
    prefix: "0PS",
    writable: false,
    when: When::Always,
    fields: &[
        ID,
        req("Name", "Name", Type::String(80)),
        f("Label", "Label", Type::String(80)),
        f("IsOwnedByProfile", "Is Owned by Profile", Type::Boolean),
        f(
            "ProfileId",
            "Profile ID",
            Type::Reference("Profile", "Profile"),
        ),
        f("PermissionsModifyAllData", "Modify All Data", Type::Boolean),
        f("PermissionsViewAllData", "View All Data", Type::Boolean),
        f("PermissionsApiEnabled", "API Enabled", Type::Boolean),
        MODSTAMP,
    ],
};

pub(crate) static PERMISSION_SET_ASSIGNMENT: Object = Object {
    name: "PermissionSetAssignment",
    label: "Permission Set Assignment",
    plural: "Permission Set Assignments",
    prefix: "0Pa",
    writable: false,
    when: When::Always,
    fields: &[
        ID,
        req(
            "AssigneeId",
            "Assignee ID",
            Type::Reference("User", "Assignee"),
        ),
        req(
            "PermissionSetId",
            "Permission Set ID",
            Type::Reference("PermissionSet", "PermissionSet"),
        ),
        MODSTAMP,
    ],
};

pub(crate) static OPPORTUNITY_STAGE: Object = Object {
    name: "OpportunityStage",
    label: "Opportunity Stage",
    plural: "Opportunity Stages",
    prefix: "01J",
    writable: false,
    when: When::Always,
    fields: &[
        ID,
        req("MasterLabel", "Master Label", Type::String(255)),
        f("ApiName", "Api Name", Type::String(255)),
        f("IsActive", "Is Active", Type::Boolean),
        f("IsClosed", "Closed", Type::Boolean),
        f("IsWon", "Won", Type::Boolean),
        f("DefaultProbability", "Probability", Type::Percent),
        f(
            "ForecastCategoryName",
            "Forecast Category",
            Type::String(40),
        ),
        f("SortOrder", "Sort Order", Type::Int),
        MODSTAMP,
    ],
};

pub(crate) static CURRENCY_TYPE: Object = Object {
    name: "CurrencyType",
    label: "Currency Type",
    plural: "Currency Types",
    prefix: "01L",
    writable: false,
    // The object exists only in multi-currency orgs.
    when: When::MultiCurrency,
    fields: &[
        ID,
        req("IsoCode", "Currency ISO Code", Type::String(3)),
        f("IsActive", "Active", Type::Boolean),
        f("IsCorporate", "Corporate", Type::Boolean),
        f("ConversionRate", "Conversion Rate", Type::Double),
        f("DecimalPlaces", "Decimal Places", Type::Int),
        MODSTAMP,
    ],
};

/// The org itself; without multi-currency its `DefaultCurrencyIsoCode` is the org's only currency.
pub(crate) static ORGANIZATION: Object = Object {
    name: "Organization",
    label: "Organization",
    plural: "Organizations",
    prefix: "00D",
    writable: false,
    when: When::Always,
    fields: &[
        ID,
        ro("Name", "Name", Type::String(80)),
        ro("DefaultCurrencyIsoCode", "Locale Currency", Type::String(3)),
        ro("IsSandbox", "Is Sandbox", Type::Boolean),
        ro("OrganizationType", "Edition", Type::String(40)),
        MODSTAMP,
    ],
};

pub(crate) static OBJECTS: &[&Object] = &[
    &OPPORTUNITY,
    &ACCOUNT,
    &CONTACT,
    &USER,
    &PROFILE,
    &PERMISSION_SET,
    &PERMISSION_SET_ASSIGNMENT,
    &OPPORTUNITY_STAGE,
    &CURRENCY_TYPE,
    &ORGANIZATION,
];
