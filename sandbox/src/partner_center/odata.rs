//! The OData subset the Referrals API documents (partner-center.md §1.4): `$filter` with `eq`, `and`, `or`,
//! parentheses, nested paths (`customerProfile/address/country`) and the `any` lambda
//! (`team/any(t:t/email eq 'x')`); `$orderby` on `createdDateTime` or `updatedDateTime` only.

use crate::odata_lexer as lexer;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq(Vec<String>, Value),
    Any {
        collection: Vec<String>,
        path: Vec<String>,
        value: Value,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

impl Filter {
    pub fn matches(&self, doc: &Value) -> bool {
        match self {
            Filter::Eq(path, value) => lookup(doc, path) == Some(value),
            Filter::Any {
                collection,
                path,
                value,
            } => lookup(doc, collection)
                .and_then(Value::as_array)
                .is_some_and(|items| items.iter().any(|item| lookup(item, path) == Some(value))),
            Filter::And(a, b) => a.matches(doc) && b.matches(doc),
            Filter::Or(a, b) => a.matches(doc) || b.matches(doc),
        }
    }
}

fn lookup<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |node, key| node.get(key))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Open,
    Close,
    Colon,
}

/// Partner Center's lexer knows no commas, no symbols and no blanks but spaces and tabs, and reads a
/// number on its own: each refusal keeps the message it always had.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    for token in lexer::tokenize(text) {
        tokens.push(
            match token.map_err(|lexer::Unterminated| "unterminated string literal".to_string())? {
                lexer::Token::Open => Token::Open,
                lexer::Token::Close => Token::Close,
                lexer::Token::Colon => Token::Colon,
                lexer::Token::Str(s) => Token::Str(s),
                lexer::Token::Ident(s) => Token::Ident(s),
                lexer::Token::Number(text) => {
                    Token::Num(text.parse().map_err(|_| format!("bad number {text}"))?)
                }
                lexer::Token::Space(blank) => {
                    match blank.chars().find(|c| !matches!(c, ' ' | '\t')) {
                        Some(other) => return Err(format!("unexpected character {other:?}")),
                        None => continue,
                    }
                }
                lexer::Token::Comma => return Err(format!("unexpected character {:?}", ',')),
                lexer::Token::Symbol(other) => {
                    return Err(format!("unexpected character {other:?}"));
                }
            },
        );
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if w == word) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.term()?;
        while self.keyword("and") {
            left = Filter::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("missing )".into()),
                }
            }
            Some(Token::Ident(path))
                if path.ends_with("/any") && self.peek() == Some(&Token::Open) =>
            {
                self.next();
                let var = match self.next() {
                    Some(Token::Ident(v)) => v,
                    _ => return Err("any() needs a range variable".into()),
                };
                if self.next() != Some(Token::Colon) {
                    return Err("any() needs var:expression".into());
                }
                let inner = match self.next() {
                    Some(Token::Ident(p)) => p,
                    _ => return Err("any() needs a path".into()),
                };
                let inner = inner
                    .strip_prefix(&format!("{var}/"))
                    .ok_or("any() path must start with its range variable")?;
                if !self.keyword("eq") {
                    return Err("only eq is supported".into());
                }
                let value = self.literal()?;
                if self.next() != Some(Token::Close) {
                    return Err("missing ) after any()".into());
                }
                Ok(Filter::Any {
                    collection: split(path.trim_end_matches("/any")),
                    path: split(inner),
                    value,
                })
            }
            Some(Token::Ident(path)) => {
                if !self.keyword("eq") {
                    return Err(format!("only eq is supported (after {path})"));
                }
                Ok(Filter::Eq(split(&path), self.literal()?))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }

    fn literal(&mut self) -> Result<Value, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Value::String(s)),
            Some(Token::Num(n)) => Ok(serde_json::json!(n)),
            Some(Token::Ident(w)) if w == "true" => Ok(Value::Bool(true)),
            Some(Token::Ident(w)) if w == "false" => Ok(Value::Bool(false)),
            Some(Token::Ident(w)) if w == "null" => Ok(Value::Null),
            other => Err(format!("expected a literal, found {other:?}")),
        }
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('/').map(str::to_string).collect()
}

pub fn parse_filter(text: &str) -> Result<Filter, String> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        at: 0,
    };
    let filter = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err("unexpected text after the expression".into());
    }
    Ok(filter)
}

/// `(field, descending)`; only the two fields the API documents.
pub fn parse_orderby(text: &str) -> Result<(String, bool), String> {
    let mut parts = text.split_whitespace();
    let field = parts.next().unwrap_or_default();
    if field != "createdDateTime" && field != "updatedDateTime" {
        return Err(format!(
            "$orderby supports only createdDateTime and updatedDateTime, not {field:?}"
        ));
    }
    let descending = match parts.next() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(format!("unknown sort direction {other:?}")),
    };
    Ok((field.to_string(), descending))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_filters_parse_and_match() {
        let doc = json!({
            "engagementId": "e-1", "status": "New", "qualification": "SalesQualified", "type": "Shared",
            "direction": "Incoming", "customerProfile": {"address": {"country": "US"}},
            "team": [{"email": "r2d2@contoso.com"}], "substatus": "Pending"
        });
        for (filter, expected) in [
            ("engagementId eq 'e-1'", true),
            (
                "status eq 'New' and qualification eq 'SalesQualified'",
                true,
            ),
            (
                "customerProfile/address/country eq 'US' and direction eq 'Incoming'",
                true,
            ),
            ("team/any(t:t/email eq 'r2d2@contoso.com')", true),
            ("team/any(t:t/email eq 'c3po@contoso.com')", false),
            ("(type eq 'Shared' and direction eq 'Incoming')", true),
            ("substatus eq 'Accepted' or substatus eq 'Pending'", true),
            ("customerProfile/address/country eq 'DE'", false),
        ] {
            assert_eq!(
                parse_filter(filter).unwrap().matches(&doc),
                expected,
                "{filter}"
            );
        }
    }

    #[test]
    fn unsupported_filters_are_refused() {
        for bad in [
            "status ne 'New'",
            "status eq",
            "(status eq 'New'",
            "status eq 'New' xor",
            "startswith(name,'a')",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn orderby_accepts_only_the_documented_fields() {
        assert_eq!(
            parse_orderby("createdDateTime desc").unwrap(),
            ("createdDateTime".into(), true)
        );
        assert_eq!(
            parse_orderby("updatedDateTime").unwrap(),
            ("updatedDateTime".into(), false)
        );
        assert!(parse_orderby("name asc").is_err());
    }
}
