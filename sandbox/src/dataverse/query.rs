//! The query options of a collection (crm-apis.md §2.5): `$select`, `$filter` and `$orderby`.
//!
//! `$filter` takes comparisons (`eq ne gt ge lt le`) of a property with a literal, `and`/`or`/`not`,
//! parentheses and `contains`/`startswith`/`endswith`. Strings compare case-insensitively (`''` escapes
//! a quote); lookups compare by their `_x_value` with an unquoted GUID; booleans, numbers, dates and
//! `null` work as in OData. Operand types are checked as the OData layer checks them (a quoted GUID is
//! refused). Anything else (navigation paths, lambdas, `Microsoft.Dynamics.CRM.*` query functions,
//! arithmetic, `in`) is refused with 400 naming the unsupported part, never ignored.

use super::schema::{Kind, Table};
use super::{DvError, codes};
use crate::odata_lexer as lexer;
use axum::http::StatusCode;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn bad(code: &'static str, message: impl Into<String>) -> DvError {
    DvError::new(StatusCode::BAD_REQUEST, code, message)
}

/// The documented message for an unknown property (code `0x0` as documented).
pub(crate) fn unknown_property(table: &Table, name: &str) -> DvError {
    bad(
        codes::ODATA,
        format!(
            "Could not find a property named '{name}' on type '{}'.",
            table.type_name()
        ),
    )
}

fn unsupported(what: impl std::fmt::Display) -> DvError {
    bad(
        codes::ODATA,
        format!("The sandbox does not support {what} in $filter."),
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }

    /// The operator kind, as OData's error messages name it.
    fn kind(self) -> &'static str {
        match self {
            Op::Eq => "Equal",
            Op::Ne => "NotEqual",
            Op::Gt => "GreaterThan",
            Op::Ge => "GreaterThanOrEqual",
            Op::Lt => "LessThan",
            Op::Le => "LessThanOrEqual",
        }
    }

    fn holds(self, o: Ordering) -> bool {
        match self {
            Op::Eq => o == Ordering::Equal,
            Op::Ne => o != Ordering::Equal,
            Op::Gt => o == Ordering::Greater,
            Op::Ge => o != Ordering::Less,
            Op::Lt => o == Ordering::Less,
            Op::Le => o != Ordering::Greater,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Decimal(f64),
    Str(String),
    Guid(String),
    Date(String),
    DateTime(i64),
}

impl Lit {
    fn edm(&self) -> &'static str {
        match self {
            Lit::Null => "null",
            Lit::Bool(_) => "Edm.Boolean",
            Lit::Int(_) => "Edm.Int32",
            Lit::Decimal(_) => "Edm.Decimal",
            Lit::Str(_) => "Edm.String",
            Lit::Guid(_) => "Edm.Guid",
            Lit::Date(_) => "Edm.Date",
            Lit::DateTime(_) => "Edm.DateTimeOffset",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Func {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Filter {
    Cmp {
        property: String,
        kind: Kind,
        op: Op,
        lit: Lit,
    },
    Text {
        func: Func,
        property: String,
        text: String,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Comma,
    Str(String),
    Word(String),
}

/// Dataverse reads whatever lies between blanks, parentheses, commas and quotes as one word (a name,
/// an operator, a GUID, a number, a date or a date-time); `literal` and the parser sort words out.
fn tokenize(text: &str) -> Result<Vec<Token>, DvError> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for token in lexer::tokenize(text) {
        let token = token.map_err(|lexer::Unterminated| {
            bad(
                codes::ODATA,
                "Syntax error: unterminated string literal in $filter.",
            )
        })?;
        let token = match token {
            lexer::Token::Number(s) | lexer::Token::Ident(s) => {
                word.push_str(&s);
                continue;
            }
            lexer::Token::Colon => {
                word.push(':');
                continue;
            }
            lexer::Token::Symbol(c) => {
                word.push(c);
                continue;
            }
            lexer::Token::Space(_) => None,
            lexer::Token::Open => Some(Token::Open),
            lexer::Token::Close => Some(Token::Close),
            lexer::Token::Comma => Some(Token::Comma),
            lexer::Token::Str(s) => Some(Token::Str(s)),
        };
        if !word.is_empty() {
            tokens.push(Token::Word(std::mem::take(&mut word)));
        }
        tokens.extend(token);
    }
    if !word.is_empty() {
        tokens.push(Token::Word(word));
    }
    Ok(tokens)
}

fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A bare word as a literal: `true`, `false`, `null`, a GUID, a date, a date-time or a number.
fn literal(word: &str) -> Option<Lit> {
    match word {
        "true" => return Some(Lit::Bool(true)),
        "false" => return Some(Lit::Bool(false)),
        "null" => return Some(Lit::Null),
        _ => {}
    }
    if super::tables::is_guid(word) {
        return Some(Lit::Guid(word.to_ascii_lowercase()));
    }
    if super::tables::valid_date(word) {
        return Some(Lit::Date(word.to_string()));
    }
    if word.len() > 10 && super::tables::valid_date(&word[..10]) {
        return OffsetDateTime::parse(word, &Rfc3339)
            .ok()
            .map(|t| Lit::DateTime(t.unix_timestamp()));
    }
    let numeric = word
        .strip_prefix('-')
        .unwrap_or(word)
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.');
    if !numeric || !word.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    if let Ok(n) = word.parse::<i64>() {
        return Some(Lit::Int(n));
    }
    word.parse::<f64>().ok().map(Lit::Decimal)
}

struct Parser<'a> {
    table: &'a Table,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn expect(&mut self, token: Token, what: &str) -> Result<(), DvError> {
        match self.next() {
            Some(t) if t == token => Ok(()),
            other => Err(bad(
                codes::ODATA,
                format!("Syntax error in $filter: expected {what}, found {other:?}."),
            )),
        }
    }

    fn or(&mut self) -> Result<Filter, DvError> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, DvError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, DvError> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn property(&self, name: &str) -> Result<Kind, DvError> {
        if name.contains('/') {
            return Err(unsupported(format_args!(
                "navigation paths or lambda operators ('{name}')"
            )));
        }
        if name.starts_with('@') {
            return Err(unsupported(format_args!("parameter aliases ('{name}')")));
        }
        if !is_identifier(name) {
            return Err(bad(
                codes::ODATA,
                format!("Syntax error in $filter at '{name}'."),
            ));
        }
        self.table
            .property(name)
            .map(|c| c.kind)
            .ok_or_else(|| unknown_property(self.table, name))
    }

    fn primary(&mut self) -> Result<Filter, DvError> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                self.expect(Token::Close, "')'")?;
                Ok(inner)
            }
            Some(Token::Word(word)) if self.peek() == Some(&Token::Open) => {
                self.at += 1;
                let func = match word.as_str() {
                    "contains" => Func::Contains,
                    "startswith" => Func::StartsWith,
                    "endswith" => Func::EndsWith,
                    other => {
                        return Err(unsupported(format_args!("the function '{other}'")));
                    }
                };
                let Some(Token::Word(property)) = self.next() else {
                    return Err(unsupported(format_args!(
                        "'{word}' without a property as its first argument"
                    )));
                };
                let kind = self.property(&property)?;
                self.expect(Token::Comma, "','")?;
                let Some(Token::Str(text)) = self.next() else {
                    return Err(bad(
                        codes::ODATA,
                        format!("'{word}' takes a string literal as its second argument."),
                    ));
                };
                self.expect(Token::Close, "')'")?;
                if !matches!(kind, Kind::Text(_) | Kind::Memo(_)) {
                    return Err(bad(
                        codes::ODATA,
                        format!(
                            "No function signature for the function with name '{word}' matches the specified arguments. The function signatures considered are: {word}(Edm.String Nullable=true, Edm.String Nullable=true)."
                        ),
                    ));
                }
                Ok(Filter::Text {
                    func,
                    property,
                    text: text.to_lowercase(),
                })
            }
            Some(Token::Word(word)) if literal(&word).is_none() => {
                let kind = self.property(&word)?;
                let op = match self.next() {
                    Some(Token::Word(op)) => match Op::parse(&op) {
                        Some(op) => op,
                        None if matches!(
                            op.as_str(),
                            "add" | "sub" | "mul" | "div" | "mod" | "has" | "in"
                        ) =>
                        {
                            return Err(unsupported(format_args!("the operator '{op}'")));
                        }
                        None => {
                            return Err(bad(
                                codes::ODATA,
                                format!("Syntax error in $filter: '{op}' is not an operator."),
                            ));
                        }
                    },
                    other => {
                        return Err(bad(
                            codes::ODATA,
                            format!(
                                "Syntax error in $filter: expected an operator after '{word}', found {other:?}."
                            ),
                        ));
                    }
                };
                let lit = match self.next() {
                    Some(Token::Str(s)) => Lit::Str(s),
                    Some(Token::Word(w)) => match literal(&w) {
                        Some(lit) => lit,
                        None => {
                            return Err(unsupported(format_args!(
                                "comparing two properties or expressions ('{word} {} {w}'); compare a property with a literal",
                                op_text(op)
                            )));
                        }
                    },
                    other => {
                        return Err(bad(
                            codes::ODATA,
                            format!(
                                "Syntax error in $filter: expected a value after '{word} {}', found {other:?}.",
                                op_text(op)
                            ),
                        ));
                    }
                };
                check_types(kind, op, &lit)?;
                Ok(Filter::Cmp {
                    property: word,
                    kind,
                    op,
                    lit,
                })
            }
            Some(Token::Word(_)) | Some(Token::Str(_)) => Err(unsupported(
                "a literal on the left of a comparison; write '<property> <operator> <value>'",
            )),
            other => Err(bad(
                codes::ODATA,
                format!("Syntax error in $filter: unexpected {other:?}."),
            )),
        }
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "eq",
        Op::Ne => "ne",
        Op::Gt => "gt",
        Op::Ge => "ge",
        Op::Lt => "lt",
        Op::Le => "le",
    }
}

/// OData refuses comparisons of incompatible types, e.g. a GUID column with a quoted string.
fn check_types(kind: Kind, op: Op, lit: &Lit) -> Result<(), DvError> {
    let ok = matches!(
        (kind, lit),
        (_, Lit::Null)
            | (Kind::Text(_) | Kind::Memo(_), Lit::Str(_))
            | (Kind::Key | Kind::Lookup(_), Lit::Guid(_))
            | (Kind::Bool, Lit::Bool(_))
            | (
                Kind::Whole(..)
                    | Kind::Choice(_)
                    | Kind::State(_)
                    | Kind::Status(_)
                    | Kind::Money
                    | Kind::Decimal
                    | Kind::BigInt,
                Lit::Int(_) | Lit::Decimal(_),
            )
            | (
                Kind::DateOnly | Kind::DateTime,
                Lit::Date(_) | Lit::DateTime(_)
            )
    );
    if ok {
        Ok(())
    } else {
        // The OData layer's message (code unconfirmed).
        Err(bad(
            codes::ODATA,
            format!(
                "A binary operator with incompatible types was detected. Found operand types '{}' and '{}' for operator kind '{}'.",
                kind.edm(),
                lit.edm(),
                op.kind()
            ),
        ))
    }
}

pub(crate) fn parse_filter(table: &Table, text: &str) -> Result<Filter, DvError> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(bad(codes::ODATA, "The $filter expression is empty."));
    }
    let mut parser = Parser {
        table,
        tokens,
        at: 0,
    };
    let filter = parser.or()?;
    if let Some(extra) = parser.peek() {
        return Err(bad(
            codes::ODATA,
            format!("Syntax error in $filter: unexpected {extra:?} after a complete expression."),
        ));
    }
    Ok(filter)
}

fn timestamp(value: &Value) -> Option<i64> {
    let s = value.as_str()?;
    if super::tables::valid_date(s) {
        return OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp());
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

impl Filter {
    /// Evaluates against a row as rendered (properties by their JSON names).
    /// What every matching row must hold, as far as stored text decides it: for each top-level `and`
    /// of `property eq 'text'` (or of `or`s of such on one property), the property and the texts any
    /// of which will do, lowercased (comparisons ignore case). A list reads only the rows that hold
    /// them before rendering any, as Dataverse's indexes would.
    pub(crate) fn required_texts(&self) -> Vec<(&str, Vec<String>)> {
        match self {
            Filter::And(a, b) => {
                let mut required = a.required_texts();
                required.extend(b.required_texts());
                required
            }
            other => other.alternatives().into_iter().collect(),
        }
    }

    fn alternatives(&self) -> Option<(&str, Vec<String>)> {
        match self {
            Filter::Cmp {
                property,
                op: Op::Eq,
                lit: Lit::Str(text),
                ..
            } => Some((property, vec![text.to_lowercase()])),
            Filter::Or(a, b) => {
                let (property, mut texts) = a.alternatives()?;
                let (other, more) = b.alternatives()?;
                (property == other).then(|| {
                    texts.extend(more);
                    (property, texts)
                })
            }
            _ => None,
        }
    }

    pub(crate) fn matches(&self, row: &Map<String, Value>) -> bool {
        match self {
            Filter::And(a, b) => a.matches(row) && b.matches(row),
            Filter::Or(a, b) => a.matches(row) || b.matches(row),
            Filter::Not(a) => !a.matches(row),
            Filter::Text {
                func,
                property,
                text,
            } => {
                let Some(value) = row.get(property).and_then(Value::as_str) else {
                    return false;
                };
                let value = value.to_lowercase();
                match func {
                    Func::Contains => value.contains(text.as_str()),
                    Func::StartsWith => value.starts_with(text.as_str()),
                    Func::EndsWith => value.ends_with(text.as_str()),
                }
            }
            Filter::Cmp {
                property,
                kind,
                op,
                lit,
            } => {
                let value = row.get(property).unwrap_or(&Value::Null);
                compare(*kind, value, *op, lit)
            }
        }
    }
}

/// `null eq null` holds and `x ne null` holds for any value; an empty column is unequal to every value
/// (OData semantics; whether Dataverse's `ne` includes empty columns is unconfirmed); ordering
/// comparisons with an empty side are false.
fn compare(kind: Kind, value: &Value, op: Op, lit: &Lit) -> bool {
    match (value.is_null(), lit) {
        (true, Lit::Null) => return op.holds(Ordering::Equal),
        (false, Lit::Null) | (true, _) => {
            return matches!(op, Op::Ne);
        }
        _ => {}
    }
    let ordering = match (kind, lit) {
        (_, Lit::Str(s)) => value
            .as_str()
            .map(|v| v.to_lowercase().cmp(&s.to_lowercase())),
        (_, Lit::Guid(g)) => value.as_str().map(|v| v.to_ascii_lowercase().cmp(g)),
        (_, Lit::Bool(b)) => value.as_bool().map(|v| v.cmp(b)),
        (_, Lit::Int(n)) => value.as_f64().and_then(|v| v.partial_cmp(&(*n as f64))),
        (_, Lit::Decimal(n)) => value.as_f64().and_then(|v| v.partial_cmp(n)),
        (Kind::DateOnly, Lit::Date(d)) => value.as_str().map(|v| v.cmp(d.as_str())),
        (_, Lit::Date(d)) => {
            let day = timestamp(&Value::String(d.clone()));
            timestamp(value).zip(day).map(|(v, d)| v.cmp(&d))
        }
        (_, Lit::DateTime(t)) => timestamp(value).map(|v| v.cmp(t)),
        (_, Lit::Null) => None,
    };
    ordering.is_some_and(|o| op.holds(o))
}

/// `$select`: property names, each checked.
pub(crate) fn parse_select(table: &Table, text: &str) -> Result<Vec<String>, DvError> {
    let mut columns = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(bad(codes::ODATA, "Syntax error in $select: an empty item."));
        }
        if name == "*" {
            continue;
        }
        table
            .property(name)
            .ok_or_else(|| unknown_property(table, name))?;
        columns.push(name.to_string());
    }
    Ok(columns)
}

/// `$orderby`: `property [asc|desc]`, comma-separated.
pub(crate) fn parse_orderby(table: &Table, text: &str) -> Result<Vec<(String, bool)>, DvError> {
    let mut keys = Vec::new();
    for item in text.split(',').map(str::trim) {
        let mut parts = item.split_whitespace();
        let Some(name) = parts.next() else {
            return Err(bad(
                codes::ODATA,
                "Syntax error in $orderby: an empty item.",
            ));
        };
        let descending = match parts.next() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(bad(
                    codes::ODATA,
                    format!("Syntax error in $orderby: '{other}' (use asc or desc)."),
                ));
            }
        };
        if parts.next().is_some() {
            return Err(bad(
                codes::ODATA,
                format!("Syntax error in $orderby at '{item}'."),
            ));
        }
        if name.contains('/') {
            return Err(bad(
                codes::ODATA,
                format!("The sandbox does not support navigation paths in $orderby ('{name}')."),
            ));
        }
        table
            .property(name)
            .ok_or_else(|| unknown_property(table, name))?;
        keys.push((name.to_string(), descending));
    }
    Ok(keys)
}

/// Sort order of two values of one column: empty first (as SQL Server sorts NULL), strings
/// case-insensitively, numbers numerically.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x
            .to_lowercase()
            .cmp(&y.to_lowercase())
            .then_with(|| x.cmp(y)),
        (x, y) => x.to_string().cmp(&y.to_string()),
    }
}

/// Compares sort keys (the `$orderby` values, then the primary key, always ascending).
pub(crate) fn compare_keys(a: &[Value], b: &[Value], descending: &[bool]) -> Ordering {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let o = compare_values(x, y);
        let o = if descending.get(i).copied().unwrap_or(false) {
            o.reverse()
        } else {
            o
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::super::schema::{ACCOUNT, OPPORTUNITY};
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_texts_a_row_must_hold_are_the_top_level_equalities() {
        let f = parse_filter(
            &ACCOUNT,
            "name eq 'Northwind' and (address1_postalcode eq '98052' or address1_postalcode eq 'x') and (name eq 'a' or address1_city eq 'b')",
        )
        .unwrap();
        assert_eq!(
            f.required_texts(),
            vec![
                ("name", vec!["northwind".to_string()]),
                (
                    "address1_postalcode",
                    vec!["98052".to_string(), "x".to_string()]
                ),
            ],
            "an `or` across two properties decides nothing alone"
        );
        let f = parse_filter(&ACCOUNT, "not (name eq 'a') or name ne 'b'").unwrap();
        assert!(f.required_texts().is_empty());
    }

    #[test]
    fn comparisons_logic_and_functions() {
        let f = parse_filter(
            &ACCOUNT,
            "(name eq 'O''Brien Ltd' or startswith(name,'fab')) and not (revenue lt 100) and address1_country ne null",
        )
        .unwrap();
        assert!(f.matches(&row(
            json!({"name": "o'brien ltd", "revenue": 100.0, "address1_country": "Ireland"})
        )));
        assert!(f.matches(&row(
            json!({"name": "Fabrikam", "revenue": 500, "address1_country": "US"})
        )));
        assert!(!f.matches(&row(
            json!({"name": "Fabrikam", "revenue": 5, "address1_country": "US"})
        )));
        assert!(!f.matches(&row(
            json!({"name": "Fabrikam", "revenue": 500, "address1_country": null})
        )));
    }

    #[test]
    fn lookups_compare_with_unquoted_guids_only() {
        let id = "A0C0A000-0000-4000-8000-000000000001";
        let f = parse_filter(&OPPORTUNITY, &format!("_customerid_value eq {id}")).unwrap();
        assert!(f.matches(&row(json!({"_customerid_value": id.to_ascii_lowercase()}))));
        let e = parse_filter(&OPPORTUNITY, &format!("_customerid_value eq '{id}'")).unwrap_err();
        assert!(e.message.contains("incompatible types"), "{}", e.message);
        assert!(e.message.contains("'Edm.Guid' and 'Edm.String'"));
    }

    #[test]
    fn unsupported_syntax_is_refused() {
        for bad in [
            "primarycontactid/fullname eq 'x'",
            "Microsoft.Dynamics.CRM.LastXHours(PropertyName=@p1,PropertyValue=@p2)",
            "revenue add 1 eq 2",
            "name eq accountnumber",
            "'x' eq name",
            "name eq 'x' extra",
            "nosuchcolumn eq 1",
            "name eq 'unterminated",
            "tolower(name) eq 'x'",
        ] {
            assert!(parse_filter(&ACCOUNT, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_booleans() {
        let f = parse_filter(
            &OPPORTUNITY,
            "estimatedclosedate ge 2025-09-01 and msp_syncwithpartnercenter eq true and createdon gt 2025-01-01T00:00:00Z",
        )
        .unwrap();
        assert!(f.matches(&row(json!({
            "estimatedclosedate": "2025-09-30", "msp_syncwithpartnercenter": true,
            "createdon": "2025-06-01T10:00:00Z"
        }))));
        assert!(!f.matches(&row(json!({
            "estimatedclosedate": "2025-08-30", "msp_syncwithpartnercenter": true,
            "createdon": "2025-06-01T10:00:00Z"
        }))));
    }
}
