//! `sobjects` (the global describe), `sobjects/{Object}` (basic information) and
//! `sobjects/{Object}/describe`: only what the org has under its current switches, so a client that
//! checks for `CurrencyIsoCode` or `BillingCountryCode` before using them finds out the truth.

use super::Org;
use super::countries::COUNTRIES;
use super::schema::{self, Field, HELP_VALUES, OBJECTS, Object, Type, Values};
use serde_json::{Value, json};

fn urls(o: &Object, version: u32) -> Value {
    let base = format!("/services/data/v{version}.0/sobjects/{}", o.name);
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

fn summary(o: &Object, version: u32) -> Value {
    json!({
        "name": o.name,
        "label": o.label,
        "labelPlural": o.plural,
        "keyPrefix": o.prefix,
        "custom": false,
        "createable": o.writable,
        "updateable": o.writable,
        "deletable": o.writable,
        "queryable": true,
        "retrieveable": true,
        "urls": urls(o, version),
    })
}

pub(crate) fn global(org: &Org, version: u32) -> Value {
    let sobjects: Vec<Value> = OBJECTS
        .iter()
        .filter(|o| schema::exists(o.when, &org.settings))
        .map(|o| summary(o, version))
        .collect();
    json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects })
}

pub(crate) fn basic(o: &Object, version: u32) -> Value {
    json!({ "objectDescribe": summary(o, version), "recentItems": [] })
}

fn picklist(org: &Org, values: Values) -> Vec<Value> {
    let entry = |value: &str, label: &str| json!({ "active": true, "defaultValue": false, "label": label, "validFor": null, "value": value });
    let rows = |o: &Object, field: &str| -> Vec<Value> {
        org.store
            .live(o)
            .filter(|(_, r)| r.fields.get("IsActive") == Some(&json!(true)))
            .filter_map(|(_, r)| {
                r.fields
                    .get(field)
                    .and_then(Value::as_str)
                    .map(|v| entry(v, v))
            })
            .collect()
    };
    match values {
        Values::Stage => rows(&schema::OPPORTUNITY_STAGE, "MasterLabel"),
        Values::Currency => rows(&schema::CURRENCY_TYPE, "IsoCode"),
        Values::Help => HELP_VALUES.iter().map(|(v, l)| entry(v, l)).collect(),
        Values::Country => COUNTRIES.iter().map(|(c, n)| entry(c, n)).collect(),
        // Dependent on the country in real orgs; the sandbox lists the US states.
        Values::State => super::countries::states("US")
            .unwrap_or_default()
            .iter()
            .map(|(c, n)| entry(c, n))
            .collect(),
    }
}

fn field(org: &Org, f: &Field) -> Value {
    let (reference_to, relationship) = match f.ty {
        Type::Reference(to, rel) => (json!([to]), json!(rel)),
        _ => (json!([]), Value::Null),
    };
    let picklist_values = match f.ty {
        Type::Picklist(values) => picklist(org, values),
        _ => Vec::new(),
    };
    json!({
        "name": f.name,
        "label": f.label,
        "type": f.ty.describe_name(),
        "custom": f.custom(),
        "length": f.ty.max_length().unwrap_or(0),
        "nillable": !f.required && f.ty != Type::Boolean && f.ty != Type::Id,
        "createable": f.writable,
        "updateable": f.writable,
        "externalId": f.external_id,
        "idLookup": f.external_id || f.ty == Type::Id,
        "calculated": false,
        "defaultedOnCreate": matches!(f.name, "OwnerId" | "CreatedDate" | "CreatedById" | "LastModifiedDate" | "LastModifiedById" | "SystemModstamp" | "IsDeleted") || f.ty == Type::Boolean,
        "restrictedPicklist": matches!(f.ty, Type::Picklist(_)),
        "picklistValues": picklist_values,
        "referenceTo": reference_to,
        "relationshipName": relationship,
    })
}

pub(crate) fn describe(org: &Org, o: &'static Object, version: u32) -> Value {
    let mut body = summary(o, version);
    body["fields"] = o.fields_in(&org.settings).map(|f| field(org, f)).collect();
    body
}
