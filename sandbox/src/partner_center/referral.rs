//! The referral resource's rules (partner-center.md §1.5–1.8): input casing, required fields, business
//! rules, the status model, and the fields only the server may set.

use serde_json::{Map, Value};

/// Responses are camelCase; input is accepted in PascalCase too (the current private-deal sample sends
/// PascalCase consent keys; case-insensitive matching is unconfirmed, so we accept both forms).
pub fn camel_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (lower_first(&k), camel_case_keys(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(camel_case_keys).collect()),
        other => other,
    }
}

pub fn lower_first(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) if !key.starts_with("@odata") => first.to_lowercase().chain(chars).collect(),
        _ => key.to_string(),
    }
}

/// `dealValue` arrives as a string in the documented PATCH sample ("10000"); the service converts it.
pub fn coerce_deal_value(referral: &mut Value) {
    if let Some(v) = referral.pointer_mut("/details/dealValue")
        && let Some(text) = v.as_str()
        && let Ok(number) = text.trim().parse::<f64>()
    {
        *v = serde_json::json!(number);
    }
}

/// `status` → the substatuses it allows, and the statuses it may move to.
pub fn allowed_substatus(status: &str) -> Option<&'static [&'static str]> {
    match status {
        "New" => Some(&["Pending", "Received"]),
        "Active" => Some(&["Accepted"]),
        "Closed" => Some(&["Won", "Lost", "Declined", "Expired"]),
        _ => None,
    }
}

fn allowed_next(status: &str) -> &'static [&'static str] {
    match status {
        "New" => &["New", "Active", "Closed"],
        "Active" => &["Active", "Closed"],
        "Closed" => &["Closed"],
        _ => &[],
    }
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A status/substatus pair must be one the model allows.
pub fn check_state(status: &str, substatus: &str) -> Result<(), String> {
    match allowed_substatus(status) {
        None => Err(format!(
            "status {status:?} is not one of New, Active, Closed"
        )),
        Some(subs) if !subs.contains(&substatus) => Err(format!(
            "substatus {substatus:?} is not allowed with status {status:?} (allowed: {})",
            subs.join(", ")
        )),
        Some(_) => Ok(()),
    }
}

pub fn check_transition(from: &str, to: &str) -> Result<(), String> {
    if allowed_next(from).contains(&to) {
        Ok(())
    } else {
        Err(format!("status cannot change from {from:?} to {to:?}"))
    }
}

/// Every problem with a create request, so the caller can fix them in one go.
pub fn create_problems(r: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for field in ["type", "customerProfile", "consent", "details"] {
        if r.get(field).is_none_or(Value::is_null) {
            problems.push(format!("{field} is required"));
        }
    }
    if text(r, "/name").is_none() {
        problems.push("name (the deal name) is required".into());
    }
    if r.pointer("/details/dealValue").is_none_or(Value::is_null) {
        problems.push("details.dealValue is required".into());
    }
    if text(r, "/details/closingDateTime").is_none() {
        problems.push("details.closingDateTime is required".into());
    }
    match text(r, "/customerProfile/address/country") {
        Some(c) if c.len() == 2 && c.chars().all(|ch| ch.is_ascii_uppercase()) => {}
        Some(c) => problems.push(format!(
            "customerProfile.address.country must be a 2-letter ISO 3166 code, not {c:?}"
        )),
        None => problems.push("customerProfile.address.country is required".into()),
    }
    let solutions = r
        .pointer("/details/requirements/solutions")
        .and_then(Value::as_array);
    if solutions.is_none_or(|s| s.is_empty()) {
        problems.push("details.requirements.solutions needs at least one solution".into());
    }
    let team_ok = r.get("team").and_then(Value::as_array).is_some_and(|team| {
        team.iter().any(|m| {
            (text(m, "/firstName").is_some() || text(m, "/lastName").is_some())
                && text(m, "/email").is_some()
                && text(m, "/phoneNumber").is_some()
        })
    });
    if !team_ok {
        problems.push("team needs at least one member with a name, phone number and email".into());
    }
    let help = text(r, "/inviteContext/assistanceRequestCode").is_some_and(|c| c != "Unknown");
    let contacts = r.pointer("/customerProfile/team").and_then(Value::as_array);
    if help && contacts.is_none_or(|c| c.is_empty()) {
        problems.push(
            "customerProfile.team needs a customer contact when help from Microsoft is requested"
                .into(),
        );
    }
    if let Some(status) = text(r, "/status") {
        let substatus = text(r, "/substatus").unwrap_or("None");
        if let Err(e) = check_state(status, substatus) {
            problems.push(e);
        }
    }
    problems
}

/// Fields only the service sets; a PATCH that changes them is refused.
pub const SERVER_FIELDS: &[&str] = &[
    "/id",
    "/engagementId",
    "/organizationId",
    "/organizationName",
    "/createdDateTime",
    "/updatedDateTime",
    "/acceptedDateTime",
    "/closedDateTime",
    "/expirationDateTime",
    "/eTag",
    "/links",
    "/direction",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pascal_case_input_becomes_camel_case() {
        let v = camel_case_keys(
            json!({"Consent": {"ConsentToToShareInfoWithOthers": true}, "@odata.type": 1}),
        );
        assert_eq!(
            v,
            json!({"consent": {"consentToToShareInfoWithOthers": true}, "@odata.type": 1})
        );
    }

    #[test]
    fn the_status_model() {
        assert!(check_state("New", "Pending").is_ok());
        assert!(check_state("Active", "Accepted").is_ok());
        assert!(check_state("Closed", "Won").is_ok());
        assert!(check_state("Active", "Won").is_err());
        assert!(check_state("Engaged", "None").is_err());
        assert!(check_transition("New", "Active").is_ok());
        assert!(check_transition("Active", "Closed").is_ok());
        assert!(check_transition("Active", "New").is_err());
        assert!(check_transition("Closed", "Active").is_err());
    }

    #[test]
    fn deal_value_strings_are_numbers() {
        let mut v = json!({"details": {"dealValue": "10000"}});
        coerce_deal_value(&mut v);
        assert_eq!(v["details"]["dealValue"], json!(10000.0));
    }

    #[test]
    fn create_problems_name_every_missing_piece() {
        let problems = create_problems(&json!({"customerProfile": {"address": {"country": "USA"}},
            "inviteContext": {"assistanceRequestCode": "ProofOfConceptOrDemo"}}));
        let all = problems.join("\n");
        for needle in [
            "type is required",
            "consent is required",
            "details is required",
            "name",
            "dealValue",
            "closingDateTime",
            "2-letter",
            "at least one solution",
            "team needs",
            "customer contact",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
    }
}
