//! `query` and `queryAll`: SOQL resolved against the org's schema (unknown objects and fields are
//! errors, literals must fit their field's type), evaluated over the records, rendered with
//! relationship fields as nested records, and paged through query locators (`01g…-2000`).

use super::errors::SfError;
use super::records::{Row, attributes};
use super::schema::{self, Field, Object, Type};
use super::soql::lexer::{LITERAL_PERCENT, LITERAL_UNDERSCORE};
use super::soql::{self, Cond, Lit, Op, ParseError, Path, Select};

pub(crate) use super::paging::{Cursors, MAX_BATCH};
use super::{Org, ids};
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A field reached from the queried object: the lookups followed, then the field.
#[derive(Debug, Clone)]
struct Resolved {
    hops: Vec<(&'static Field, &'static str, &'static Object)>,
    field: &'static Field,
}

enum Typed {
    Text(String),
    Id(String),
    Num(f64),
    Bool(bool),
    Date(time::Date),
    DateTime(OffsetDateTime),
}

enum RCond {
    All(Vec<RCond>),
    Any(Vec<RCond>),
    Not(Box<RCond>),
    Cmp(Resolved, Op, Option<Typed>),
    In(Resolved, bool, Vec<Option<Typed>>),
}

/// SOQL errors point at the text: `\n{line}\n{caret}\nERROR at Row:r:Column:c\n{message}`.
fn at(text: &str, offset: usize, code: &'static str, message: &str) -> SfError {
    let before: String = text.chars().take(offset).collect();
    let row = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    let line = text.lines().nth(row - 1).unwrap_or_default();
    let caret = format!("{}^", " ".repeat(column - 1));
    SfError::bad(
        code,
        format!("\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{message}"),
    )
}

fn resolve(org: &Org, text: &str, base: &'static Object, path: &Path) -> Result<Resolved, SfError> {
    let parts: Vec<&str> = path.text.split('.').collect();
    let mut current = base;
    let mut hops = Vec::new();
    for part in &parts[..parts.len() - 1] {
        let Some((field, target)) = current.relationship(part, &org.settings) else {
            return Err(at(
                text,
                path.at,
                "INVALID_FIELD",
                &format!(
                    "Didn't understand relationship '{part}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                ),
            ));
        };
        let Type::Reference(_, rel) = field.ty else {
            unreachable!("relationships are lookups")
        };
        hops.push((field, rel, target));
        current = target;
    }
    let last = parts[parts.len() - 1];
    let field = current.field(last, &org.settings).ok_or_else(|| {
        at(text, path.at, "INVALID_FIELD", &format!(
            "No such column '{last}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            current.name
        ))
    })?;
    Ok(Resolved { hops, field })
}

fn literal(
    text: &str,
    path: &Path,
    field: &Field,
    lit: &Lit,
    op: Op,
) -> Result<Option<Typed>, SfError> {
    let ty = field.ty;
    let wrong = |what: &str, quoted: bool| {
        at(
            text,
            path.at,
            "INVALID_FIELD",
            &format!(
                "value of filter criterion for field '{}' must be of type {what} and should {}be enclosed in quotes",
                field.name,
                if quoted { "" } else { "not " }
            ),
        )
    };
    if op == Op::Like && !ty.is_text() {
        return Err(at(
            text,
            path.at,
            "INVALID_QUERY_FILTER_OPERATOR",
            &format!("invalid operator on {} field", ty.describe_name()),
        ));
    }
    Ok(Some(match (lit, ty) {
        (Lit::Null, _) => return Ok(None),
        (Lit::Str(s), t) if t.is_text() => Typed::Text(if op == Op::Like {
            s.to_lowercase()
        } else {
            s.replace(LITERAL_PERCENT, "%")
                .replace(LITERAL_UNDERSCORE, "_")
                .to_lowercase()
        }),
        (_, t) if t.is_text() => return Err(wrong("string", true)),
        (Lit::Str(s), Type::Id | Type::Reference(..)) => {
            Typed::Id(ids::normalize(s).ok_or_else(|| {
                at(
                    text,
                    path.at,
                    "INVALID_QUERY_FILTER_OPERATOR",
                    &format!("invalid ID field: {s}"),
                )
            })?)
        }
        (_, Type::Id | Type::Reference(..)) => return Err(wrong("id", true)),
        (Lit::Num(n), t) if t.is_number() => Typed::Num(*n),
        (_, Type::Int) => return Err(wrong("int", false)),
        (_, t) if t.is_number() => return Err(wrong("double", false)),
        (Lit::Bool(b), Type::Boolean) => Typed::Bool(*b),
        (_, Type::Boolean) => return Err(wrong("boolean", false)),
        (Lit::Date(d), Type::Date) if !d.contains('T') => {
            Typed::Date(parse_date(d).ok_or_else(|| wrong("date", false))?)
        }
        (_, Type::Date) => return Err(wrong("date", false)),
        (Lit::Date(d), Type::DateTime) if d.contains('T') => {
            Typed::DateTime(parse_datetime(d).ok_or_else(|| wrong("dateTime", false))?)
        }
        _ => return Err(wrong("dateTime", false)),
    }))
}

fn parse_date(s: &str) -> Option<time::Date> {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

/// RFC 3339, and Salesforce's own `+0000` offsets without a colon.
pub(crate) fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    let fixed = match s.len().checked_sub(5).map(|i| s.split_at(i)) {
        Some((head, tail))
            if (tail.starts_with('+') || tail.starts_with('-')) && !tail.contains(':') =>
        {
            format!("{head}{}:{}", &tail[..3], &tail[3..])
        }
        _ => s.to_string(),
    };
    OffsetDateTime::parse(&fixed, &Rfc3339).ok()
}

fn condition(org: &Org, text: &str, base: &'static Object, c: &Cond) -> Result<RCond, SfError> {
    let all = |cs: &[Cond]| {
        cs.iter()
            .map(|c| condition(org, text, base, c))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match c {
        Cond::All(cs) => RCond::All(all(cs)?),
        Cond::Any(cs) => RCond::Any(all(cs)?),
        Cond::Not(c) => RCond::Not(Box::new(condition(org, text, base, c)?)),
        Cond::Cmp(path, op, lit) => {
            let r = resolve(org, text, base, path)?;
            let value = literal(text, path, r.field, lit, *op)?;
            RCond::Cmp(r, *op, value)
        }
        Cond::In(path, negated, lits) => {
            let r = resolve(org, text, base, path)?;
            let values = lits
                .iter()
                .map(|l| literal(text, path, r.field, l, Op::Eq))
                .collect::<Result<_, _>>()?;
            RCond::In(r, *negated, values)
        }
    })
}

/// The record at the end of the path's lookups (deleted records are not followed).
fn follow<'a>(org: &'a Org, row: &'a Row, r: &Resolved, depth: usize) -> Option<&'a Row> {
    let mut current = row;
    for (field, _, _) in &r.hops[..depth] {
        let id = current.fields.get(field.name)?.as_str()?;
        current = org.store.get(id).filter(|t| !t.deleted)?;
    }
    Some(current)
}

fn typed(org: &Org, row: &Row, r: &Resolved) -> Option<Typed> {
    let v = follow(org, row, r, r.hops.len())?
        .fields
        .get(r.field.name)?;
    Some(match r.field.ty {
        Type::Id | Type::Reference(..) => Typed::Id(v.as_str()?.to_string()),
        Type::Boolean => Typed::Bool(v.as_bool()?),
        Type::Date => Typed::Date(parse_date(v.as_str()?)?),
        Type::DateTime => Typed::DateTime(parse_datetime(v.as_str()?)?),
        t if t.is_number() => Typed::Num(v.as_f64()?),
        _ => Typed::Text(v.as_str()?.to_lowercase()),
    })
}

fn compare(a: &Typed, b: &Typed) -> Option<Ordering> {
    match (a, b) {
        (Typed::Text(a), Typed::Text(b)) | (Typed::Id(a), Typed::Id(b)) => Some(a.cmp(b)),
        (Typed::Num(a), Typed::Num(b)) => a.partial_cmp(b),
        (Typed::Bool(a), Typed::Bool(b)) => Some(a.cmp(b)),
        (Typed::Date(a), Typed::Date(b)) => Some(a.cmp(b)),
        (Typed::DateTime(a), Typed::DateTime(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// `%` any run, `_` one character; case-insensitive (both sides are lower-cased).
fn like(value: &[char], pattern: &[char]) -> bool {
    match pattern.split_first() {
        None => value.is_empty(),
        Some(('%', rest)) => (0..=value.len()).any(|i| like(&value[i..], rest)),
        Some((p, rest)) => match value.split_first() {
            Some((v, tail)) => {
                let literal = match *p {
                    LITERAL_PERCENT => '%',
                    LITERAL_UNDERSCORE => '_',
                    c => c,
                };
                (*p == '_' || *v == literal) && like(tail, rest)
            }
            None => false,
        },
    }
}

fn matches(org: &Org, row: &Row, c: &RCond) -> bool {
    match c {
        RCond::All(cs) => cs.iter().all(|c| matches(org, row, c)),
        RCond::Any(cs) => cs.iter().any(|c| matches(org, row, c)),
        RCond::Not(c) => !matches(org, row, c),
        RCond::Cmp(r, op, lit) => {
            let value = typed(org, row, r);
            match (value, lit) {
                (None, None) => *op == Op::Eq,
                (Some(_), None) => *op == Op::Ne,
                // SOQL's `!=` keeps the records where the field is null.
                (None, Some(_)) => *op == Op::Ne,
                (Some(Typed::Text(v)), Some(Typed::Text(p))) if *op == Op::Like => like(
                    &v.chars().collect::<Vec<_>>(),
                    &p.chars().collect::<Vec<_>>(),
                ),
                (Some(v), Some(l)) => compare(&v, l).is_some_and(|o| match op {
                    Op::Eq => o.is_eq(),
                    Op::Ne => o.is_ne(),
                    Op::Lt => o.is_lt(),
                    Op::Gt => o.is_gt(),
                    Op::Le => o.is_le(),
                    Op::Ge => o.is_ge(),
                    Op::Like => false,
                }),
            }
        }
        RCond::In(r, negated, values) => {
            let value = typed(org, row, r);
            let found = values.iter().any(|l| match (&value, l) {
                (None, None) => true,
                (Some(v), Some(l)) => compare(v, l).is_some_and(Ordering::is_eq),
                _ => false,
            });
            found != *negated
        }
    }
}

fn render(
    org: &Org,
    out: &mut Map<String, Value>,
    row: &Row,
    r: &Resolved,
    depth: usize,
    version: u32,
) {
    if depth == r.hops.len() {
        let value = row.fields.get(r.field.name).cloned().unwrap_or(Value::Null);
        out.insert(r.field.name.to_string(), value);
        return;
    }
    let (field, rel, target) = r.hops[depth];
    let next = row
        .fields
        .get(field.name)
        .and_then(Value::as_str)
        .and_then(|id| org.store.get(id).filter(|t| !t.deleted).map(|t| (id, t)));
    match next {
        None => {
            out.entry(rel).or_insert(Value::Null);
        }
        Some((id, t)) => {
            let entry = out.entry(rel).or_insert(Value::Null);
            if entry.is_null() {
                *entry = json!({ "attributes": attributes(target.name, id, version) });
            }
            if let Value::Object(inner) = entry {
                render(org, inner, t, r, depth + 1, version);
            }
        }
    }
}

/// Runs a query; the first batch, with a `nextRecordsUrl` when there is more.
pub(crate) fn run(
    org: &mut Org,
    text: &str,
    all_rows: bool,
    batch: usize,
    version: u32,
) -> Result<Value, SfError> {
    let parse_error = |e: ParseError| at(text, e.at, "MALFORMED_QUERY", &e.message);
    let q = soql::parse(text).map_err(parse_error)?;
    let base = schema::find(&q.object.text, &org.settings).ok_or_else(|| {
        at(text, q.object.at, "INVALID_TYPE", &format!(
            "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
            q.object.text
        ))
    })?;
    let selected = match &q.select {
        Select::Count => None,
        Select::Fields(paths) => {
            let mut seen = Vec::new();
            let mut out = Vec::new();
            for p in paths {
                let r = resolve(org, text, base, p)?;
                let key: Vec<&str> = r.hops.iter().map(|h| h.1).chain([r.field.name]).collect();
                let key = key.join(".");
                if seen.contains(&key) {
                    return Err(at(
                        text,
                        p.at,
                        "MALFORMED_QUERY",
                        &format!("duplicate field selected: {}", p.text),
                    ));
                }
                seen.push(key);
                out.push(r);
            }
            Some(out)
        }
    };
    let filter = q
        .filter
        .as_ref()
        .map(|c| condition(org, text, base, c))
        .transpose()?;
    let order = q
        .order
        .iter()
        .map(|o| Ok((resolve(org, text, base, &o.path)?, o.desc, o.nulls_last)))
        .collect::<Result<Vec<_>, SfError>>()?;
    let rows = if all_rows {
        org.store.all(base).collect::<Vec<_>>()
    } else {
        org.store.live(base).collect()
    };
    let mut rows: Vec<(&String, &Row)> = rows
        .into_iter()
        .filter(|(_, row)| filter.as_ref().is_none_or(|f| matches(org, row, f)))
        .collect();
    if !order.is_empty() {
        rows.sort_by(|(_, a), (_, b)| {
            for (r, desc, nulls_last) in &order {
                let (va, vb) = (typed(org, a, r), typed(org, b, r));
                let o = match (va, vb) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => {
                        if *nulls_last {
                            Ordering::Greater
                        } else {
                            Ordering::Less
                        }
                    }
                    (Some(_), None) => {
                        if *nulls_last {
                            Ordering::Less
                        } else {
                            Ordering::Greater
                        }
                    }
                    (Some(x), Some(y)) => {
                        let o = compare(&x, &y).unwrap_or(Ordering::Equal);
                        if *desc { o.reverse() } else { o }
                    }
                };
                if o.is_ne() {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    rows.truncate(q.limit.unwrap_or(usize::MAX));
    let Some(selected) = selected else {
        return Ok(json!({ "totalSize": rows.len(), "done": true, "records": [] }));
    };
    let records: Vec<Value> = rows
        .iter()
        .map(|(id, row)| {
            let mut out = Map::new();
            out.insert("attributes".into(), attributes(base.name, id, version));
            for r in &selected {
                render(org, &mut out, row, r, 0, version);
            }
            Value::Object(out)
        })
        .collect();
    Ok(org.cursors.first_page(records, batch, all_rows, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_and_datetimes() {
        let chars = |s: &str| s.chars().collect::<Vec<_>>();
        assert!(like(&chars("northwind traders"), &chars("north%")));
        assert!(like(
            &chars("a_b"),
            &chars(&format!("a{LITERAL_UNDERSCORE}b"))
        ));
        assert!(!like(
            &chars("axb"),
            &chars(&format!("a{LITERAL_UNDERSCORE}b"))
        ));
        assert!(like(&chars("axb"), &chars("a_b")));
        assert_eq!(
            parse_datetime("2026-11-30T14:05:09.000+0000"),
            parse_datetime("2026-11-30T14:05:09Z")
        );
        assert!(parse_datetime("2026-11-30T15:05:09+01:00").is_some());
    }
}
