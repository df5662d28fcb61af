//! Columns the platform computes on every write: a contact's full name, and a money row's
//! currency, exchange rate and base amounts.

use super::seed::CURRENCY_USD;
use super::{Link, Row, State, number, round2};
use crate::dataverse::schema::{Access, CONTACT, Kind, TRANSACTION_CURRENCY, Table};
use serde_json::{Value, json};

impl State {
    /// Columns the platform computes: full name, currency, exchange rate, base amounts.
    pub(super) fn derive(&self, table: &Table, row: &mut Row) {
        if table.set == CONTACT.set {
            let name = [row.values.get("firstname"), row.values.get("lastname")]
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            if name.is_empty() {
                row.values.remove("fullname");
            } else {
                row.values.insert("fullname", json!(name));
            }
        }
        if !table.has_money() {
            return;
        }
        let money: Vec<&'static str> = table
            .columns
            .iter()
            .filter(|c| c.kind == Kind::Money && c.access == Access::Write)
            .map(|c| c.name)
            .collect();
        let any_money = money
            .iter()
            .any(|m| row.values.get(m).is_some_and(|v| !v.is_null()));
        if any_money && !row.lookups.contains_key("transactioncurrencyid") {
            // A money value needs a currency: the platform uses the organization's base currency
            // (the user's default currency in real organizations; unconfirmed which applies first).
            row.lookups.insert(
                "transactioncurrencyid",
                Link {
                    set: TRANSACTION_CURRENCY.set,
                    logical: TRANSACTION_CURRENCY.logical,
                    id: CURRENCY_USD.into(),
                },
            );
        }
        let rate = row
            .lookups
            .get("transactioncurrencyid")
            .and_then(|l| self.get(&TRANSACTION_CURRENCY, &l.id))
            .and_then(|c| c.values.get("exchangerate"))
            .and_then(Value::as_f64)
            .filter(|r| *r > 0.0);
        match rate {
            Some(rate) => {
                row.values.insert("exchangerate", number(rate));
                for m in money {
                    let base = row
                        .values
                        .get(m)
                        .and_then(Value::as_f64)
                        .map(|v| number(round2(v / rate)));
                    let name = base_column(table, m);
                    match (base, name) {
                        (Some(b), Some(n)) => {
                            row.values.insert(n, b);
                        }
                        (None, Some(n)) => {
                            row.values.remove(n);
                        }
                        _ => {}
                    }
                }
            }
            None => {
                row.values.remove("exchangerate");
            }
        }
    }
}

fn base_column(table: &Table, money: &str) -> Option<&'static str> {
    let name = format!("{money}_base");
    table.column(&name).map(|c| c.name)
}
