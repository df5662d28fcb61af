//! What a write must satisfy, in the order Salesforce reports it: field names and types first (the
//! body's deserialization), then required fields, then picklists, lookups and derived fields.

use super::countries;
use super::errors::SfError;
use super::records::{Row, blank};
use super::schema::{self, Field, HELP_VALUES, Object, Type, Values};
use super::{Org, Settings, ids};
use serde_json::{Map, Number, Value, json};
use time::macros::format_description;

fn invalid_field(o: &Object, name: &str) -> SfError {
    SfError::bad(
        "INVALID_FIELD",
        format!("No such column '{name}' on sobject of type {}", o.name),
    )
}

/// The body's fields under their API names, with values of their types (numbers from numeric
/// strings, ids in their 18-character form).
pub(crate) fn check_fields(
    o: &Object,
    body: &Map<String, Value>,
    settings: &Settings,
) -> Result<Map<String, Value>, SfError> {
    let mut out = Map::new();
    for (name, value) in body {
        if name == "attributes" {
            continue; // Records read from the API may be written back as they are.
        }
        if name.eq_ignore_ascii_case("Id") {
            return Err(SfError::bad(
                "INVALID_FIELD",
                "The Id field should not be specified in the sobject data.",
            ));
        }
        let field = o
            .field(name, settings)
            .ok_or_else(|| invalid_field(o, name))?;
        if !field.writable {
            return Err(SfError::bad(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    field.name
                ),
            )
            .with_fields(&[field.name]));
        }
        out.insert(field.name.to_string(), coerce(field, value)?);
    }
    Ok(out)
}

fn parse_error(field: &Field, value: &Value) -> SfError {
    // Jackson's wording, which the REST API passes on (the column is not reproduced).
    SfError::bad(
        "JSON_PARSER_ERROR",
        format!(
            "Cannot deserialize instance of {} from {} value {} or request may be missing a required field",
            field.ty.describe_name(),
            match value {
                Value::String(_) => "VALUE_STRING",
                Value::Number(_) => "VALUE_NUMBER",
                Value::Bool(_) => "VALUE_BOOLEAN",
                Value::Array(_) => "START_ARRAY",
                Value::Object(_) => "START_OBJECT",
                Value::Null => "VALUE_NULL",
            },
            value
        ),
    )
}

fn coerce(field: &Field, value: &Value) -> Result<Value, SfError> {
    let ty = field.ty;
    if value.is_null() {
        // A cleared checkbox is false, never null.
        return Ok(if ty == Type::Boolean {
            json!(false)
        } else {
            Value::Null
        });
    }
    if ty.is_text() {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(parse_error(field, value)),
        };
        if let Some(max) = ty.max_length()
            && text.chars().count() > max
        {
            return Err(SfError::bad(
                "STRING_TOO_LONG",
                format!(
                    "{}: data value too large: {text} (max length={max})",
                    field.label
                ),
            )
            .with_fields(&[field.name]));
        }
        if ty == Type::Email && !text.is_empty() && !is_email(&text) {
            return Err(SfError::bad(
                "INVALID_EMAIL_ADDRESS",
                format!("{}: invalid email address: {text}", field.label),
            )
            .with_fields(&[field.name]));
        }
        return Ok(if text.is_empty() {
            Value::Null
        } else {
            json!(text)
        });
    }
    match ty {
        Type::Boolean => value
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| parse_error(field, value)),
        _ if ty.is_number() => {
            let n = match value {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|n| n.is_finite())
            .ok_or_else(|| parse_error(field, value))?;
            if ty == Type::Percent && !(0.0..=100.0).contains(&n) {
                return Err(SfError::bad(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    format!(
                        "{}: value outside of valid range on numeric field: {n}",
                        field.label
                    ),
                )
                .with_fields(&[field.name]));
            }
            Ok(if ty == Type::Int {
                json!(n as i64)
            } else {
                Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            })
        }
        Type::Date => match value.as_str() {
            Some(s)
                if time::Date::parse(s, format_description!("[year]-[month]-[day]")).is_ok() =>
            {
                Ok(json!(s))
            }
            _ => Err(parse_error(field, value)),
        },
        Type::Id | Type::Reference(..) => match value.as_str() {
            Some("") => Ok(Value::Null),
            Some(s) => ids::normalize(s).map(Value::String).ok_or_else(|| {
                SfError::bad(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {s}", field.label),
                )
                .with_fields(&[field.name])
            }),
            None => Err(parse_error(field, value)),
        },
        _ => Ok(value.clone()),
    }
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

pub(crate) fn required(
    o: &'static Object,
    fields: &Map<String, Value>,
    settings: &Settings,
) -> Result<(), SfError> {
    let missing: Vec<&str> = o
        .fields_in(settings)
        .filter(|f| f.required && blank(fields.get(f.name)))
        .map(|f| f.name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(SfError::bad(
        "REQUIRED_FIELD_MISSING",
        format!("Required fields are missing: [{}]", missing.join(", ")),
    )
    .with_fields(&missing))
}

fn restricted(field: &str, label: &str, value: &str) -> SfError {
    SfError::bad(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        format!("{label}: bad value for restricted picklist field: {value}"),
    )
    .with_fields(&[field])
}

fn integrity(what: &str, field: &str) -> SfError {
    SfError::bad(
        "FIELD_INTEGRITY_EXCEPTION",
        format!(
            "There's a problem with this {what}, even though it may appear correct. Please select a {what} from the list of valid {what}s."
        ),
    )
    .with_fields(&[field])
}

/// Picklists, lookups and derived fields of the merged record; `changes` are this write's fields.
pub(crate) fn apply(
    org: &Org,
    o: &Object,
    fields: &mut Map<String, Value>,
    changes: &Map<String, Value>,
) -> Result<(), SfError> {
    for (name, value) in changes {
        let field = o.field(name, &org.settings).expect("checked");
        let Some(text) = value.as_str() else { continue };
        match field.ty {
            Type::Picklist(Values::Stage) => {
                let stage =
                    stage(org, text).ok_or_else(|| restricted(field.name, field.label, text))?;
                fields.insert("IsClosed".into(), stage.fields["IsClosed"].clone());
                fields.insert("IsWon".into(), stage.fields["IsWon"].clone());
                if !changes.contains_key("Probability") {
                    fields.insert(
                        "Probability".into(),
                        stage.fields["DefaultProbability"].clone(),
                    );
                }
            }
            Type::Picklist(Values::Currency) => {
                let active = org.store.live(&schema::CURRENCY_TYPE).any(|(_, r)| {
                    r.fields["IsoCode"] == json!(text) && r.fields["IsActive"] == json!(true)
                });
                if !active {
                    return Err(SfError::bad(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        format!("{} Currency: invalid currency code: {text}", o.label),
                    )
                    .with_fields(&[field.name]));
                }
            }
            Type::Picklist(Values::Help) if !HELP_VALUES.iter().any(|(v, _)| *v == text) => {
                return Err(restricted(field.name, field.label, text));
            }
            Type::Reference(to, _) => lookup(org, field, to, text)?,
            _ => {}
        }
    }
    match o.name {
        "Account" => {
            address(
                fields,
                changes,
                &org.settings,
                "BillingCountry",
                "BillingCountryCode",
            )?;
            states(fields, changes, &org.settings)?;
        }
        "Contact" => address(
            fields,
            changes,
            &org.settings,
            "MailingCountry",
            "MailingCountryCode",
        )?,
        _ => {}
    }
    if o.has("FirstName") && o.has("Name") {
        let name = [fields.get("FirstName"), fields.get("LastName")]
            .into_iter()
            .filter_map(|v| v.and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        fields.insert("Name".into(), json!(name));
    }
    Ok(())
}

pub(crate) fn stage<'a>(org: &'a Org, label: &str) -> Option<&'a Row> {
    org.store
        .live(&schema::OPPORTUNITY_STAGE)
        .map(|(_, r)| r)
        .find(|r| r.fields["MasterLabel"] == json!(label) && r.fields["IsActive"] == json!(true))
}

fn lookup(org: &Org, field: &Field, to: &str, id: &str) -> Result<(), SfError> {
    let target = schema::object(to).expect("known");
    if !id.starts_with(target.prefix) {
        return Err(SfError::bad(
            "FIELD_INTEGRITY_EXCEPTION",
            format!("{}: id value of incorrect type: {id}", field.label),
        )
        .with_fields(&[field.name]));
    }
    match org.store.get(id) {
        None => Err(SfError::bad(
            "INVALID_CROSS_REFERENCE_KEY",
            format!("{}: invalid cross reference id", field.label),
        )
        .with_fields(&[field.name])),
        Some(r) if r.deleted => {
            Err(SfError::bad("ENTITY_IS_DELETED", "entity is deleted").with_fields(&[field.name]))
        }
        Some(r) if field.name == "OwnerId" && r.fields.get("IsActive") == Some(&json!(false)) => {
            Err(SfError::bad(
                "INACTIVE_OWNER_OR_USER",
                format!(
                    "operation performed with inactive user [{id}] as owner of {}",
                    field.label
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// Keeps a free-text country and its ISO code in step. With the picklists on, a typed country must be
/// one of the list (matched by name or code) and sets the code; a code sets the name. Without them only
/// the text exists, and changing it drops a code left from when they were on.
fn address(
    fields: &mut Map<String, Value>,
    changes: &Map<String, Value>,
    settings: &Settings,
    text: &str,
    code: &str,
) -> Result<(), SfError> {
    if !settings.state_country_picklists {
        if changes.contains_key(text) {
            fields.insert(code.into(), Value::Null);
        }
        return Ok(());
    }
    let new_code = changes.get(code);
    let new_text = changes.get(text).and_then(Value::as_str);
    let (iso, name) = match (new_code, new_text) {
        (Some(Value::String(c)), typed) => {
            let found = countries::country_by_code(c).ok_or_else(|| integrity("country", code))?;
            if typed.is_some_and(|t| countries::country(t) != Some(found)) {
                return Err(integrity("country", text));
            }
            found
        }
        (Some(_), _) => {
            fields.insert(text.into(), Value::Null);
            return Ok(());
        }
        (None, Some(t)) => countries::country(t).ok_or_else(|| integrity("country", text))?,
        (None, None) if changes.contains_key(text) => {
            fields.insert(code.into(), Value::Null);
            return Ok(());
        }
        (None, None) => return Ok(()),
    };
    fields.insert(code.into(), json!(iso));
    fields.insert(text.into(), json!(name));
    Ok(())
}

/// The same for the billing state, against the country's state list where it has one (the sandbox
/// lists US states only; other countries keep whatever is typed).
fn states(
    fields: &mut Map<String, Value>,
    changes: &Map<String, Value>,
    settings: &Settings,
) -> Result<(), SfError> {
    let (text, code) = ("BillingState", "BillingStateCode");
    if !settings.state_country_picklists {
        if changes.contains_key(text) {
            fields.insert(code.into(), Value::Null);
        }
        return Ok(());
    }
    let country = fields.get("BillingCountryCode").and_then(Value::as_str);
    let list = country.and_then(countries::states);
    let new_code = changes.get(code).and_then(Value::as_str);
    let new_text = changes.get(text).and_then(Value::as_str);
    let Some(list) = list else {
        if let Some(c) = new_code {
            fields.insert(text.into(), json!(c));
        }
        return Ok(());
    };
    let wanted = new_code.or(new_text);
    if let Some(w) = wanted {
        let (c, n) = list
            .iter()
            .find(|(c, n)| *c == w || n.eq_ignore_ascii_case(w))
            .ok_or_else(|| integrity("state", if new_code.is_some() { code } else { text }))?;
        fields.insert(code.into(), json!(c));
        fields.insert(text.into(), json!(n));
    }
    Ok(())
}
