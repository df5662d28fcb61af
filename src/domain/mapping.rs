//! The one place where a CRM opportunity becomes a Partner Center referral: the value mapping an admin
//! configures in the dashboard (stages, statuses, help requests, currencies, solution ids; the job of the
//! "[Customize]" flow in Microsoft's solution), the body of a new referral, and the JSON Patch that brings
//! an existing referral in step.
//!
//! Merge rule (documented for admins on the Mapping page): for the fields cosell maps from the
//! opportunity, the CRM is the record of truth and wins; every other field stays as Partner Center has it.
//! The customer's location is never patched (fixed once the referral exists, partner-center.md §1.5).

use super::opportunity::{OpportunityState, Ready};
use super::system::Crm;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Partner Center's sales stages (the connector contract's enum, partner-center.md §1.7).
pub const SALES_STAGES: &[&str] = &["Qualify", "Develop", "Propose", "Close"];

/// `inviteContext.assistanceRequestCode` values (§1.8), "How can Microsoft help?" in the API.
pub const ASSISTANCE_CODES: &[&str] = &[
    "GeneralOrOther",
    "CustomerTechnicalArchitecture",
    "ProofOfConceptOrDemo",
    "QuotesOrLicensing",
    "PostSalesCustomerSuccess",
    "WorkloadSpecificValueProposition",
];

/// The status/substatus pairs an opportunity's status may map to: open, won, lost (§1.7).
pub const REFERRAL_STATES: &[&str] = &["Active/Accepted", "Closed/Won", "Closed/Lost"];

/// One row of a value map: a CRM value and the Partner Center value it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub crm: String,
    pub partner_center: String,
}

/// Which table of the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Stages,
    Statuses,
    Help,
    Currencies,
    Solutions,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Stages,
        Table::Statuses,
        Table::Help,
        Table::Currencies,
        Table::Solutions,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Table::Stages => "stages",
            Table::Statuses => "statuses",
            Table::Help => "help",
            Table::Currencies => "currencies",
            Table::Solutions => "solutions",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Table::Stages => "Sales stage → Partner Center sales stage",
            Table::Statuses => "Status reason → Partner Center status/substatus",
            Table::Help => "How can Microsoft help? → assistance request code",
            Table::Currencies => "Currency → Partner Center currency",
            Table::Solutions => "Microsoft solution → Partner Center solution id",
        }
    }

    /// What an unmapped CRM value becomes.
    pub fn fallback(self) -> &'static str {
        match self {
            Table::Stages => "left out of the referral",
            Table::Statuses => {
                "Active/Accepted while open, Closed/Won when won, Closed/Lost when lost"
            }
            Table::Help => "GeneralOrOther, or itself when it is already a code",
            Table::Currencies | Table::Solutions => "itself",
        }
    }

    /// The Partner Center values this table may map to; None when any non-empty value will do.
    pub fn allowed(self) -> Option<&'static [&'static str]> {
        match self {
            Table::Stages => Some(SALES_STAGES),
            Table::Statuses => Some(REFERRAL_STATES),
            Table::Help => Some(ASSISTANCE_CODES),
            Table::Currencies | Table::Solutions => None,
        }
    }
}

/// The value mapping, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mapping {
    pub stages: Vec<Pair>,
    pub statuses: Vec<Pair>,
    pub help: Vec<Pair>,
    pub currencies: Vec<Pair>,
    pub solutions: Vec<Pair>,
    /// Salesforce's "Sync Co-sell opportunity" set to no: leads from Partner Center become
    /// opportunities too. Off (the default), only co-sell and pipeline-sharing deals do.
    pub sync_leads: bool,
}

fn pairs(rows: &[(&str, &str)]) -> Vec<Pair> {
    rows.iter()
        .map(|(crm, pc)| Pair {
            crm: crm.to_string(),
            partner_center: pc.to_string(),
        })
        .collect()
}

impl Default for Mapping {
    /// Dynamics 365's out-of-the-box values.
    fn default() -> Self {
        Mapping::defaults(Crm::Dynamics365)
    }
}

impl Mapping {
    /// A CRM's out-of-the-box values: Dynamics 365's sales stages and status reasons, or Salesforce's
    /// standard opportunity stages (whose name is also the status: "Closed Won", "Closed Lost").
    pub fn defaults(crm: Crm) -> Mapping {
        let help = pairs(&[
            ("General or other", "GeneralOrOther"),
            ("Architecture guidance", "CustomerTechnicalArchitecture"),
            ("Proof of concept or demo", "ProofOfConceptOrDemo"),
            ("Quotes or licensing", "QuotesOrLicensing"),
            ("Post-sales customer success", "PostSalesCustomerSuccess"),
            (
                "Workload value proposition",
                "WorkloadSpecificValueProposition",
            ),
        ]);
        if crm == Crm::Salesforce {
            return Mapping {
                stages: pairs(&[
                    ("Prospecting", "Qualify"),
                    ("Qualification", "Qualify"),
                    ("Needs Analysis", "Develop"),
                    ("Value Proposition", "Develop"),
                    ("Id. Decision Makers", "Develop"),
                    ("Perception Analysis", "Develop"),
                    ("Proposal/Price Quote", "Propose"),
                    ("Negotiation/Review", "Close"),
                    ("Closed Won", "Close"),
                    ("Closed Lost", "Close"),
                ]),
                statuses: pairs(&[
                    ("Prospecting", "Active/Accepted"),
                    ("Qualification", "Active/Accepted"),
                    ("Needs Analysis", "Active/Accepted"),
                    ("Value Proposition", "Active/Accepted"),
                    ("Id. Decision Makers", "Active/Accepted"),
                    ("Perception Analysis", "Active/Accepted"),
                    ("Proposal/Price Quote", "Active/Accepted"),
                    ("Negotiation/Review", "Active/Accepted"),
                    ("Closed Won", "Closed/Won"),
                    ("Closed Lost", "Closed/Lost"),
                ]),
                help,
                currencies: Vec::new(),
                solutions: Vec::new(),
                sync_leads: false,
            };
        }
        Mapping {
            stages: pairs(&[
                ("Qualify", "Qualify"),
                ("Develop", "Develop"),
                ("Propose", "Propose"),
                ("Close", "Close"),
            ]),
            statuses: pairs(&[
                ("In Progress", "Active/Accepted"),
                ("On Hold", "Active/Accepted"),
                ("Won", "Closed/Won"),
                ("Canceled", "Closed/Lost"),
                ("Out-Sold", "Closed/Lost"),
            ]),
            help,
            currencies: Vec::new(),
            solutions: Vec::new(),
            sync_leads: false,
        }
    }
}

/// A mapping table that could not be read, line by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table}, line {line}: {problem}")]
pub struct MappingError {
    pub table: &'static str,
    pub line: usize,
    pub problem: String,
}

impl Mapping {
    pub fn table(&self, t: Table) -> &[Pair] {
        match t {
            Table::Stages => &self.stages,
            Table::Statuses => &self.statuses,
            Table::Help => &self.help,
            Table::Currencies => &self.currencies,
            Table::Solutions => &self.solutions,
        }
    }

    fn table_mut(&mut self, t: Table) -> &mut Vec<Pair> {
        match t {
            Table::Stages => &mut self.stages,
            Table::Statuses => &mut self.statuses,
            Table::Help => &mut self.help,
            Table::Currencies => &mut self.currencies,
            Table::Solutions => &mut self.solutions,
        }
    }

    /// A table as the dashboard edits it: one `CRM value = Partner Center value` per line.
    pub fn to_text(&self, t: Table) -> String {
        self.table(t)
            .iter()
            .map(|p| format!("{} = {}\n", p.crm, p.partner_center))
            .collect()
    }

    /// Replaces table `t` with the lines typed; every problem is reported, and nothing changes unless
    /// all lines are valid.
    pub fn set_from_text(&mut self, t: Table, text: &str) -> Result<(), Vec<MappingError>> {
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |problem: String| MappingError {
                table: t.label(),
                line: i + 1,
                problem,
            };
            let Some((crm, pc)) = line.split_once('=') else {
                errors.push(error(format!(
                    "“{line}” has no “=”: write “CRM value = Partner Center value”."
                )));
                continue;
            };
            let (crm, pc) = (crm.trim(), pc.trim());
            if crm.is_empty() || pc.is_empty() {
                errors.push(error("both sides of “=” need a value.".into()));
                continue;
            }
            if rows.iter().any(|p: &Pair| p.crm.eq_ignore_ascii_case(crm)) {
                errors.push(error(format!("“{crm}” is mapped twice.")));
                continue;
            }
            let pc = match t.allowed() {
                Some(allowed) => match allowed.iter().find(|a| a.eq_ignore_ascii_case(pc)) {
                    Some(a) => a.to_string(),
                    None => {
                        errors.push(error(format!(
                            "“{pc}” is not a Partner Center value here: use one of {}.",
                            allowed.join(", ")
                        )));
                        continue;
                    }
                },
                None if t == Table::Currencies => match super::codes::CurrencyCode::parse(pc) {
                    Some(c) => c.to_string(),
                    None => {
                        errors.push(error(format!("“{pc}” is not an ISO 4217 currency code.")));
                        continue;
                    }
                },
                None => pc.to_string(),
            };
            rows.push(Pair {
                crm: crm.to_string(),
                partner_center: pc,
            });
        }
        if errors.is_empty() {
            *self.table_mut(t) = rows;
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn lookup(&self, t: Table, crm: &str) -> Option<&str> {
        let crm = crm.trim();
        self.table(t)
            .iter()
            .find(|p| p.crm.eq_ignore_ascii_case(crm))
            .map(|p| p.partner_center.as_str())
    }

    /// Partner Center's sales stage for the CRM's, if mapped.
    pub fn stage(&self, crm: Option<&str>) -> Option<String> {
        crm.and_then(|s| self.lookup(Table::Stages, s))
            .map(str::to_string)
    }

    /// The assistance request code for "How can Microsoft help?", None when no help is asked.
    pub fn help(&self, crm: Option<&str>) -> Option<String> {
        let crm = crm.map(str::trim).filter(|s| !s.is_empty())?;
        Some(match self.lookup(Table::Help, crm) {
            Some(code) => code.to_string(),
            None => ASSISTANCE_CODES
                .iter()
                .find(|c| c.eq_ignore_ascii_case(crm))
                .unwrap_or(&"GeneralOrOther")
                .to_string(),
        })
    }

    pub fn currency(&self, crm: &str) -> String {
        self.lookup(Table::Currencies, crm)
            .unwrap_or(crm)
            .to_string()
    }

    pub fn solution(&self, crm: &str) -> String {
        self.lookup(Table::Solutions, crm)
            .unwrap_or(crm)
            .to_string()
    }

    /// The referral's (status, substatus) for the opportunity's state and status reason.
    pub fn referral_state(
        &self,
        state: OpportunityState,
        status_reason: Option<&str>,
    ) -> (&'static str, &'static str) {
        let by_state = match state {
            OpportunityState::Open => ("Active", "Accepted"),
            OpportunityState::Won => ("Closed", "Won"),
            OpportunityState::Lost => ("Closed", "Lost"),
        };
        let mapped = status_reason
            .and_then(|s| self.lookup(Table::Statuses, s))
            .and_then(|pair| match pair {
                "Active/Accepted" => Some(("Active", "Accepted")),
                "Closed/Won" => Some(("Closed", "Won")),
                "Closed/Lost" => Some(("Closed", "Lost")),
                _ => None,
            });
        // A mapping cannot reopen a closed deal or close an open one: the CRM's state decides which.
        match mapped {
            Some(m) if (m.0 == "Active") == (state == OpportunityState::Open) => m,
            _ => by_state,
        }
    }
}

/// Where a referral lists its solutions (partner-center.md §2, ReferralRequirements).
pub const SOLUTIONS: &str = "/details/requirements/solutions";

/// Every field [`owned_fields`] may return.
pub const OWNED_POINTERS: [&str; 14] = [
    "/name",
    "/externalReferenceId",
    "/details/dealValue",
    "/details/currency",
    "/details/closingDateTime",
    SOLUTIONS,
    "/team",
    "/consent/consentToShareReferralWithMicrosoftSellers",
    "/details/notes",
    "/salesStage",
    "/inviteContext/assistanceRequestCode",
    "/customerProfile/team",
    "/status",
    "/substatus",
];

/// A referral's solutions for these solution ids, mapped.
pub fn solution_tags(ids: &[String], m: &Mapping) -> Value {
    Value::Array(
        ids.iter()
            .map(|s| json!({ "id": m.solution(s), "type": "Name" }))
            .collect(),
    )
}

/// The change that brings `current`'s solutions in step with these ids: "Microsoft Solutions to
/// Partner Center" sends nothing else.
pub fn solutions_changes(current: &Value, ids: &[String], m: &Mapping) -> Vec<Change> {
    let to = solution_tags(ids, m);
    let from = current.pointer(SOLUTIONS).cloned().unwrap_or(Value::Null);
    if same(&from, &to) {
        return Vec::new();
    }
    vec![Change {
        path: SOLUTIONS.to_string(),
        from,
        to,
    }]
}

/// The Partner Center fields cosell owns, as they should be for this opportunity (JSON Pointer → value).
/// Both the body of a new referral and the patch of an existing one come from these.
pub fn owned_fields(r: &Ready, m: &Mapping) -> Vec<(&'static str, Value)> {
    let o = r.opportunity;
    let help = m.help(o.help.as_deref());
    let member = |p: &super::opportunity::Person| {
        let mut v = json!({
            "firstName": p.first_name.clone().unwrap_or_default(),
            "lastName": p.last_name.clone().unwrap_or_default(),
            "email": p.email.clone().unwrap_or_default(),
        });
        if let Some(phone) = p.phone.as_deref().filter(|s| !s.trim().is_empty()) {
            v["phoneNumber"] = json!(phone);
        }
        v
    };
    let mut fields = vec![
        ("/name", json!(o.name.trim())),
        ("/externalReferenceId", json!(o.id)),
        ("/details/dealValue", json!(r.deal_value)),
        ("/details/currency", json!(m.currency(r.currency.as_str()))),
        (
            "/details/closingDateTime",
            json!(format!("{}T00:00:00Z", r.closing_date)),
        ),
        (SOLUTIONS, solution_tags(&r.solutions, m)),
        ("/team", json!([member(r.owner)])),
        (
            // Shared with Microsoft sellers when help is asked (a co-sell deal, §1.5). Once visible, a
            // referral cannot be made private again (§3.3): the patch never turns this off.
            "/consent/consentToShareReferralWithMicrosoftSellers",
            json!(help.is_some()),
        ),
    ];
    if let Some(notes) = o.notes.as_deref().filter(|n| !n.trim().is_empty()) {
        fields.push(("/details/notes", json!(notes)));
    }
    if let Some(stage) = m.stage(o.sales_stage.as_deref()) {
        fields.push(("/salesStage", json!(stage)));
    }
    if let Some(code) = help {
        fields.push(("/inviteContext/assistanceRequestCode", json!(code)));
    }
    if let Some(contact) = r.contact {
        fields.push(("/customerProfile/team", json!([member(contact)])));
    }
    let (status, substatus) = m.referral_state(o.state, o.status_reason.as_deref());
    fields.push(("/status", json!(status)));
    fields.push(("/substatus", json!(substatus)));
    fields
}

/// The body of a new referral (partner-center.md §1.5, §1.10).
pub fn new_referral(r: &Ready, m: &Mapping) -> Value {
    let c = r.customer;
    let mut body = json!({
        "type": "Independent",
        "qualification": "SalesQualified",
        "customerProfile": {
            "name": c.name,
            "address": {
                "addressLine1": c.address_line1.clone().unwrap_or_default(),
                "city": c.city.clone().unwrap_or_default(),
                "state": c.state.clone().unwrap_or_default(),
                "postalCode": c.postal_code.clone().unwrap_or_default(),
                "country": r.country.map(|c| c.to_string()).unwrap_or_default(),
            },
        },
        "consent": { "consentToToShareInfoWithOthers": true, "consentToContact": true },
        "details": {},
    });
    for (pointer, value) in owned_fields(r, m) {
        // A new referral starts Active/Accepted (§1.5); only a state the CRM closed is sent.
        if pointer == "/status" || pointer == "/substatus" {
            continue;
        }
        set(&mut body, pointer, value);
    }
    body
}

/// One JSON Patch operation, with the value it replaces (for the audit trail's field diff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub from: Value,
    pub to: Value,
}

/// The changes that bring `current` (a referral as Partner Center returned it) in step with the
/// opportunity, in patch order (status last, so the other fields are set while the deal is editable).
pub fn changes(current: &Value, r: &Ready, m: &Mapping) -> Vec<Change> {
    let mut out = Vec::new();
    for (pointer, to) in owned_fields(r, m) {
        let from = current.pointer(pointer).cloned().unwrap_or(Value::Null);
        if pointer == "/consent/consentToShareReferralWithMicrosoftSellers" && from == json!(true) {
            continue;
        }
        // Partner Center may answer a number as a string (§1.6): compare values, not spellings.
        if same(&from, &to) {
            continue;
        }
        out.push(Change {
            path: pointer.to_string(),
            from,
            to,
        });
    }
    // A closed pair is one transition: status and substatus go together or not at all.
    let state_changed = out
        .iter()
        .any(|c| c.path == "/status" || c.path == "/substatus");
    out.retain(|c| c.path != "/status" && c.path != "/substatus");
    if state_changed {
        let (status, substatus) =
            m.referral_state(r.opportunity.state, r.opportunity.status_reason.as_deref());
        for (path, to) in [("/status", status), ("/substatus", substatus)] {
            out.push(Change {
                path: path.into(),
                from: current.pointer(path).cloned().unwrap_or(Value::Null),
                to: json!(to),
            });
        }
    }
    out
}

/// The JSON Patch for `changes`: `replace` where the member exists, `add` where it does not (RFC 6902
/// §4.3: replace needs an existing member; Partner Center accepts only these two).
pub fn patch(current: &Value, changes: &[Change]) -> Value {
    Value::Array(
        changes
            .iter()
            .map(|c| {
                let op = if current.pointer(&c.path).is_some() {
                    "replace"
                } else {
                    "add"
                };
                json!({ "op": op, "path": c.path, "value": c.to })
            })
            .collect(),
    )
}

fn same(a: &Value, b: &Value) -> bool {
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match (a, b) {
        (Value::Number(_), _) | (_, Value::Number(_)) => {
            number(a).is_some() && number(a) == number(b)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| subset(q, p))
        }
        _ => a == b,
    }
}

/// Whether every member of `want` is in `have` with the same value (Partner Center adds fields of its
/// own to team members and solutions).
fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| subset(v, hv))),
        _ => same(want, have),
    }
}

/// Sets `value` at `pointer` in `doc`, creating the objects on the way.
pub fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut at = doc;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let map = at.as_object_mut().expect("object");
        if i == parts.len() - 1 {
            map.insert(part.to_string(), value);
            return;
        }
        at = map.entry(part.to_string()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::codes::CurrencyCode;
    use crate::domain::opportunity::{Opportunity, Purpose, check};

    fn opportunity() -> Opportunity {
        crate::domain::opportunity::fixture::ready()
    }

    fn usd() -> Vec<CurrencyCode> {
        vec![CurrencyCode::parse("USD").unwrap()]
    }

    #[test]
    fn a_ready_opportunity_becomes_a_referral_body() {
        let o = opportunity();
        let r = check(&o, &usd(), Purpose::Create).unwrap();
        let body = new_referral(&r, &Mapping::default());
        assert_eq!(body["name"], "Fabrikam Azure migration");
        assert_eq!(body["externalReferenceId"], "opp-1");
        assert_eq!(body["customerProfile"]["address"]["country"], "US");
        assert_eq!(
            body["customerProfile"]["team"][0]["email"],
            "ray@fabrikam.example"
        );
        assert_eq!(body["details"]["dealValue"], 48000.0);
        assert_eq!(body["details"]["closingDateTime"], "2027-06-30T00:00:00Z");
        assert_eq!(
            body["details"]["requirements"]["solutions"][0]["id"],
            "SOL-AZ-MIG"
        );
        assert_eq!(body["team"][0]["phoneNumber"], "+1 425 555 0100");
        assert_eq!(
            body["inviteContext"]["assistanceRequestCode"],
            "CustomerTechnicalArchitecture"
        );
        assert_eq!(
            body["consent"]["consentToShareReferralWithMicrosoftSellers"],
            true
        );
        assert_eq!(body["salesStage"], "Develop");
        assert!(
            body.get("status").is_none(),
            "a new referral starts Accepted"
        );
    }

    #[test]
    fn the_patch_holds_only_what_changed_and_status_goes_last() {
        let mut o = opportunity();
        let m = Mapping::default();
        let r = check(&o, &usd(), Purpose::Create).unwrap();
        let mut current = new_referral(&r, &m);
        current["status"] = json!("Active");
        current["substatus"] = json!("Accepted");
        current["details"]["dealValue"] = json!("48000"); // a string, as Partner Center may answer
        current["team"][0]["title"] = json!("Seller"); // a field of Partner Center's own
        let r = check(&o, &usd(), Purpose::Update).unwrap();
        assert_eq!(changes(&current, &r, &m), vec![], "nothing to do: no echo");

        o.deal_value = Some(50000.0);
        o.state = OpportunityState::Won;
        o.status_reason = Some("Won".into());
        let r = check(&o, &usd(), Purpose::Update).unwrap();
        let c = changes(&current, &r, &m);
        let paths: Vec<&str> = c.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, vec!["/details/dealValue", "/status", "/substatus"]);
        assert_eq!(c[0].from, json!("48000"));
        let p = patch(&current, &c);
        assert_eq!(
            p[0],
            json!({ "op": "replace", "path": "/details/dealValue", "value": 50000.0 })
        );
        assert_eq!(
            p[2],
            json!({ "op": "replace", "path": "/substatus", "value": "Won" })
        );
    }

    #[test]
    fn a_member_partner_center_lacks_is_added_and_visibility_never_reverts() {
        let mut o = opportunity();
        o.notes = Some("Needs a landing zone".into());
        let m = Mapping::default();
        let current = json!({ "name": "Fabrikam Azure migration", "status": "Active", "substatus": "Accepted",
                              "consent": { "consentToShareReferralWithMicrosoftSellers": true } });
        o.help = None;
        let r = check(&o, &usd(), Purpose::Update).unwrap();
        let c = changes(&current, &r, &m);
        assert!(
            c.iter()
                .all(|c| c.path != "/consent/consentToShareReferralWithMicrosoftSellers")
        );
        let p = patch(&current, &c);
        let notes = p
            .as_array()
            .unwrap()
            .iter()
            .find(|op| op["path"] == "/details/notes")
            .unwrap();
        assert_eq!(notes["op"], "add");
    }

    #[test]
    fn status_mapping_cannot_contradict_the_crm_state() {
        let mut m = Mapping::default();
        m.set_from_text(
            Table::Statuses,
            "In Progress = Closed/Won\nCanceled = Closed/Lost\n",
        )
        .unwrap();
        assert_eq!(
            m.referral_state(OpportunityState::Open, Some("In Progress")),
            ("Active", "Accepted")
        );
        assert_eq!(
            m.referral_state(OpportunityState::Lost, Some("Canceled")),
            ("Closed", "Lost")
        );
        assert_eq!(
            m.referral_state(OpportunityState::Won, None),
            ("Closed", "Won")
        );
    }

    #[test]
    fn mapping_tables_are_edited_as_text_and_checked_line_by_line() {
        let mut m = Mapping::default();
        m.set_from_text(
            Table::Currencies,
            "US Dollar = usd\n# comment\n\nEuro = EUR",
        )
        .unwrap();
        assert_eq!(m.currency("us dollar"), "USD");
        assert_eq!(m.currency("GBP"), "GBP", "unmapped values pass as they are");
        assert_eq!(
            m.to_text(Table::Currencies),
            "US Dollar = USD\nEuro = EUR\n"
        );

        let before = m.clone();
        let errors = m
            .set_from_text(
                Table::Stages,
                "Qualify = Qualify\nDevelop Develop\nQualify = Close\nClose = Won",
            )
            .unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert!(
            errors[2]
                .problem
                .contains("Qualify, Develop, Propose, Close"),
            "{}",
            errors[2]
        );
        assert_eq!(m, before, "nothing changes unless every line is valid");
        assert!(m.set_from_text(Table::Currencies, "Dollar = US$").is_err());
        assert_eq!(
            m.help(Some("ProofOfConceptOrDemo")).as_deref(),
            Some("ProofOfConceptOrDemo")
        );
        assert_eq!(
            m.help(Some("Anything else")).as_deref(),
            Some("GeneralOrOther")
        );
        assert_eq!(m.help(Some("  ")), None);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Mapping>(&json).unwrap(), m);
    }

    #[test]
    fn a_solutions_change_is_the_solutions_alone_and_none_when_they_match() {
        let o = opportunity();
        let mut m = Mapping::default();
        m.set_from_text(Table::Solutions, "Azure migration = SOL-AZ-MIG")
            .unwrap();
        let r = check(&o, &usd(), Purpose::Create).unwrap();
        let mut current = new_referral(&r, &m);
        // Partner Center adds fields of its own to a solution.
        current["details"]["requirements"]["solutions"][0]["name"] = json!("Azure migration");
        assert_eq!(
            solutions_changes(&current, &["Azure migration".into()], &m),
            vec![]
        );
        let c = solutions_changes(&current, &["SOL-DATA".into(), "SOL-AZ-MIG".into()], &m);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].path, SOLUTIONS);
        assert_eq!(
            c[0].to,
            json!([{ "id": "SOL-DATA", "type": "Name" }, { "id": "SOL-AZ-MIG", "type": "Name" }])
        );
        assert_eq!(
            patch(&current, &c),
            json!([{ "op": "replace", "path": SOLUTIONS, "value": c[0].to }])
        );
    }

    #[test]
    fn every_owned_field_is_listed() {
        let mut o = opportunity();
        o.notes = Some("Notes".into());
        let r = check(&o, &usd(), Purpose::Create).unwrap();
        for (pointer, _) in owned_fields(&r, &Mapping::default()) {
            assert!(OWNED_POINTERS.contains(&pointer), "{pointer}");
        }
    }
}
