//! Dataverse rows read into the port's typed values, and typed changes written as columns and lookup
//! binds (crm-apis.md §2.3, §2.9).

use super::columns::Columns;
use crate::clients::dynamics::version_of;
use crate::domain::opportunity::{Opportunity, OpportunityState, Person};
use crate::domain::referral::OpportunityChanges;
use serde_json::{Map, Value, json};

impl Columns {
    /// The opportunity's own fields from its row, read with its choices' labels (full reads add the
    /// records it names).
    pub(super) fn opportunity(&self, row: &Value) -> Option<Opportunity> {
        let c = self;
        Some(Opportunity {
            id: text(row, "opportunityid")?,
            name: row["name"].as_str().unwrap_or_default().to_string(),
            sync: row[&c.sync].as_bool().unwrap_or(false),
            referral_id: text(row, &c.referral_id),
            referral_link: text(row, &c.referral_link),
            note: text(row, &c.audit),
            account_id: text(row, "_customerid_value"),
            currency_id: text(row, "_transactioncurrencyid_value"),
            owner_id: text(row, "_ownerid_value"),
            contact_id: text(row, "_parentcontactid_value"),
            status_reason: label(row, "statuscode"),
            sales_stage: label(row, "salesstage"),
            help: text(row, &c.help),
            solutions: text(row, &c.solutions)
                .map(|s| {
                    s.split([',', ';', '\n'])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            state: match row["statecode"].as_i64() {
                Some(1) => OpportunityState::Won,
                Some(2) => OpportunityState::Lost,
                _ => OpportunityState::Open,
            },
            deal_value: row["estimatedvalue"].as_f64(),
            closing_date: text(row, "estimatedclosedate").and_then(|d| {
                time::Date::parse(
                    &d,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .ok()
            }),
            notes: text(row, "description"),
            version: version_of(row),
            ..Default::default()
        })
    }

    /// The Dataverse columns of an opportunity's changes; lookups are bound.
    pub(super) fn write(&self, changes: &OpportunityChanges) -> Map<String, Value> {
        let c = self;
        let mut fields = Map::new();
        let mut put = |column: &str, value: Value| {
            fields.insert(column.to_string(), value);
        };
        if let Some(name) = &changes.name {
            put("name", json!(name));
        }
        if let Some(value) = changes.deal_value {
            put("estimatedvalue", json!(value));
        }
        if let Some(date) = changes.closing_date {
            put("estimatedclosedate", json!(date_text(date)));
        }
        if let Some(notes) = &changes.notes {
            put("description", json!(notes));
        }
        if let Some(sync) = changes.sync {
            put(&c.sync, json!(sync));
        }
        if let Some(id) = &changes.referral_id {
            put(&c.referral_id, json!(id));
        }
        if let Some(link) = &changes.referral_link {
            put(&c.referral_link, json!(link));
        }
        if let Some(currency) = &changes.currency_id {
            put(
                "transactioncurrencyid@odata.bind",
                json!(format!("/transactioncurrencies({currency})")),
            );
        }
        fields
    }
}

pub(super) fn text(row: &Value, column: &str) -> Option<String> {
    row[column]
        .as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub(super) fn label(row: &Value, column: &str) -> Option<String> {
    text(
        row,
        &format!("{column}@OData.Community.Display.V1.FormattedValue"),
    )
}

fn date_text(date: time::Date) -> String {
    date.format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

pub(super) fn person(p: &Value, email: &str, phones: &[&str]) -> Person {
    Person {
        first_name: text(p, "firstname"),
        last_name: text(p, "lastname"),
        email: text(p, email),
        phone: phones.iter().find_map(|c| text(p, c)),
    }
}

/// A row read by its id, with the id column set (Dataverse returns the primary key, the sandbox too;
/// this keeps a row without it readable).
pub(super) fn with_id(row: &Value, id: &str) -> Value {
    let mut row = row.clone();
    if row.get("opportunityid").is_none_or(Value::is_null) {
        row["opportunityid"] = json!(id);
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_become_columns_and_binds() {
        let fields = Columns::dynamics().write(&OpportunityChanges {
            name: Some("Deal".into()),
            deal_value: Some(25000.0),
            closing_date: Some(time::macros::date!(2027 - 03 - 31)),
            sync: Some(true),
            currency_id: Some("C1".into()),
            ..Default::default()
        });
        assert_eq!(fields["name"], "Deal");
        assert_eq!(fields["estimatedvalue"], 25000.0);
        assert_eq!(fields["estimatedclosedate"], "2027-03-31");
        assert_eq!(fields["msp_syncwithpartnercenter"], true);
        assert_eq!(
            fields["transactioncurrencyid@odata.bind"],
            "/transactioncurrencies(C1)"
        );
        assert_eq!(fields.len(), 5);
    }
}
