//! SOQL: queries that follow `nextRecordsUrl` to the end (crm-apis.md §3.6), and the two guards every
//! value passes before it reaches a query or a URL: [`soql_literal`] and [`is_id`] / [`is_api_name`].

use super::API_VERSION;
use super::rest::{SalesforceClient, base};
use crate::clients::http::{self, CallError};
use crate::crypto::Secret;
use serde_json::Value;

/// The rows of a query, and how many requests it took (each counts against the org's allocation and
/// the connection's daily quota).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    pub records: Vec<Value>,
    pub requests: i64,
}

/// A SOQL string literal. Backslash is SOQL's escape character, so it is escaped first; quotes and line
/// breaks would otherwise end the literal or the query. `%` and `_` are left alone: they are wildcards
/// only under `LIKE`, where the caller decides what they mean.
pub fn soql_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Salesforce ids are 15 (case-sensitive) or 18 (case-insensitive) alphanumerics; anything else never
/// reaches a URL or a query.
pub fn is_id(s: &str) -> bool {
    matches!(s.len(), 15 | 18) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// An object or field API name (`Opportunity`, `Co_Sell_Id__c`, `ns__Field__c`): what may be put into a
/// URL path or a SELECT list.
pub fn is_api_name(s: &str) -> bool {
    s.len() <= 80
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl SalesforceClient {
    /// A SOQL query, following `nextRecordsUrl` to the end.
    pub async fn query(
        &self,
        token: &Secret,
        instance: &str,
        soql: &str,
    ) -> Result<Records, CallError> {
        self.run_query(token, instance, "query", soql).await
    }

    /// The same over deleted and archived rows too (`/queryAll`): how a poller sees deletions.
    pub async fn query_all(
        &self,
        token: &Secret,
        instance: &str,
        soql: &str,
    ) -> Result<Records, CallError> {
        self.run_query(token, instance, "queryAll", soql).await
    }

    async fn run_query(
        &self,
        token: &Secret,
        instance: &str,
        resource: &str,
        soql: &str,
    ) -> Result<Records, CallError> {
        let base = base(instance);
        let mut url = format!("{base}/services/data/{API_VERSION}/{resource}");
        let mut query = Some(soql);
        let mut out = Records::default();
        loop {
            let mut request = self.http.get(&url).bearer_auth(token.expose());
            if let Some(q) = query.take() {
                request = request.query(&[("q", q)]);
            }
            out.requests += 1;
            let body = http::json(self.send(request).await?).await?;
            let records = body["records"].as_array().ok_or_else(|| {
                CallError::Unexpected(format!("a {resource} answer without records"))
            })?;
            out.records.extend(records.iter().cloned());
            let next = body["nextRecordsUrl"].as_str();
            if body["done"].as_bool().unwrap_or(next.is_none()) {
                return Ok(out);
            }
            // The locator URL is relative to the instance; anything else would carry the token elsewhere.
            match next {
                Some(next) if next.starts_with("/services/data/") => {
                    url = format!("{base}{next}");
                }
                other => {
                    return Err(CallError::Unexpected(format!(
                        "an unfinished {resource} answer with nextRecordsUrl {other:?}"
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_what_would_end_them() {
        assert_eq!(soql_literal("Contoso"), "'Contoso'");
        assert_eq!(soql_literal("O'Brien"), r"'O\'Brien'");
        assert_eq!(soql_literal(r"back\slash"), r"'back\\slash'");
        // The escape of a backslash must not swallow the quote escape that follows it.
        assert_eq!(soql_literal(r"x\' OR Name != '"), r"'x\\\' OR Name != \''");
        assert_eq!(soql_literal("two\nlines\r\ttab"), r"'two\nlines\r\ttab'");
        assert_eq!(soql_literal(r#"say "hi""#), r#"'say \"hi\"'"#);
        assert_eq!(soql_literal("100%_ok"), "'100%_ok'");
        assert_eq!(soql_literal("Zürich"), "'Zürich'");
    }

    #[test]
    fn ids_are_15_or_18_alphanumerics() {
        assert!(is_id("006RO00000AbCdE"));
        assert!(is_id("006RO00000AbCdEYAQ"));
        assert!(!is_id("006RO00000AbCd"));
        assert!(!is_id("006RO00000AbCdEYA"));
        assert!(!is_id("006RO00000AbCdE/.."));
        assert!(!is_id("006' OR Id != '1"));
        assert!(!is_id("006RO00000AbCdÉ"));
        assert!(!is_id(""));
    }

    #[test]
    fn api_names_are_plain_identifiers() {
        assert!(is_api_name("Opportunity"));
        assert!(is_api_name("Co_Sell_Id__c"));
        assert!(is_api_name("ns__Field__c"));
        assert!(!is_api_name("_x"));
        assert!(!is_api_name("Opportunity/describe"));
        assert!(!is_api_name("Name, (SELECT Id FROM Contacts)"));
        assert!(!is_api_name(""));
    }
}
