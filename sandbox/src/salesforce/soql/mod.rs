//! The SOQL subset the emulator understands:
//!
//! `SELECT COUNT() | path, … FROM Object [WHERE cond] [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST], …]
//! [LIMIT n]`, where a path is a field or relationships then a field (`Account.Owner.Name`), and a
//! condition combines `path op literal`, `path [NOT] IN (literal, …)`, `path LIKE 'pattern'` with
//! `AND`/`OR`/`NOT` and parentheses (mixing `AND` and `OR` without parentheses is an error, as in SOQL).
//! Literals: strings with backslash escapes, numbers, `true`/`false`/`null`, dates and datetimes.
//!
//! Everything else (subqueries, aggregates, `GROUP BY`, `OFFSET`, date literals such as `TODAY`, bind
//! variables…) is refused with `MALFORMED_QUERY` rather than ignored.

pub(crate) mod lexer;

use lexer::{Spanned, Tok};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    pub text: String,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Select {
    Count,
    Fields(Vec<Path>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Date(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(Path, Op, Lit),
    In(Path, bool, Vec<Lit>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    pub path: Path,
    pub desc: bool,
    pub nulls_last: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub select: Select,
    pub object: Path,
    pub filter: Option<Cond>,
    pub order: Vec<Order>,
    pub limit: Option<usize>,
}

/// Where the text stops making sense, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub at: usize,
    pub message: String,
}

const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "GROUP", "HAVING", "WITH", "FOR", "USING",
    "TYPEOF", "INCLUDES", "EXCLUDES", "ALL", "ROWS",
];

pub(crate) fn parse(text: &str) -> Result<Query, ParseError> {
    let tokens = lexer::tokenize(text).map_err(|(at, message)| ParseError { at, message })?;
    let mut p = Parser { tokens, i: 0 };
    let q = p.query()?;
    match p.peek() {
        Tok::End => Ok(q),
        _ => Err(p.unexpected()),
    }
}

struct Parser {
    tokens: Vec<Spanned>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.i].0
    }

    fn at(&self) -> usize {
        self.tokens[self.i].1
    }

    fn next(&mut self) -> Tok {
        let t = self.tokens[self.i].0.clone();
        if t != Tok::End {
            self.i += 1;
        }
        t
    }

    fn unexpected(&self) -> ParseError {
        let shown = match self.peek() {
            Tok::Word(w) | Tok::Number(w) | Tok::Date(w) => w.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Op(o) => o.to_string(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Other(c) => c.to_string(),
            Tok::End => "<EOF>".into(),
        };
        ParseError {
            at: self.at(),
            message: format!("unexpected token: {shown}"),
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn keyword(&mut self, kw: &str) -> Result<(), ParseError> {
        if self.is_keyword(kw) {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat(&mut self, kw: &str) -> bool {
        let yes = self.is_keyword(kw);
        if yes {
            self.next();
        }
        yes
    }

    fn expect(&mut self, tok: Tok) -> Result<(), ParseError> {
        if *self.peek() == tok {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn path(&mut self) -> Result<Path, ParseError> {
        let at = self.at();
        match self.peek() {
            Tok::Word(w) if !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(w)) => {
                let text = w.clone();
                if text.starts_with('.') || text.ends_with('.') || text.contains("..") {
                    return Err(self.unexpected());
                }
                self.next();
                Ok(Path { text, at })
            }
            _ => Err(self.unexpected()),
        }
    }

    fn query(&mut self) -> Result<Query, ParseError> {
        self.keyword("SELECT")?;
        let select = if self.is_keyword("COUNT") && self.tokens[self.i + 1].0 == Tok::Open {
            self.next();
            self.next();
            self.expect(Tok::Close)?;
            Select::Count
        } else {
            let mut fields = vec![self.path()?];
            while *self.peek() == Tok::Comma {
                self.next();
                fields.push(self.path()?);
            }
            Select::Fields(fields)
        };
        self.keyword("FROM")?;
        let object = self.path()?;
        let filter = if self.eat("WHERE") {
            Some(self.condition()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.eat("ORDER") {
            self.keyword("BY")?;
            loop {
                let path = self.path()?;
                let desc = if self.eat("DESC") {
                    true
                } else {
                    self.eat("ASC");
                    false
                };
                // Ascending puts nulls first, descending last, unless told otherwise.
                let nulls_last = if self.eat("NULLS") {
                    if self.eat("LAST") {
                        true
                    } else {
                        self.keyword("FIRST")?;
                        false
                    }
                } else {
                    desc
                };
                order.push(Order {
                    path,
                    desc,
                    nulls_last,
                });
                if *self.peek() != Tok::Comma {
                    break;
                }
                self.next();
            }
        }
        let limit = if self.eat("LIMIT") {
            match self.peek() {
                Tok::Number(n) if n.parse::<usize>().is_ok() => {
                    let n = n.parse().expect("checked");
                    self.next();
                    Some(n)
                }
                _ => return Err(self.unexpected()),
            }
        } else {
            None
        };
        Ok(Query {
            select,
            object,
            filter,
            order,
            limit,
        })
    }

    /// Terms joined by one connective; a different one at the same level needs parentheses.
    fn condition(&mut self) -> Result<Cond, ParseError> {
        let first = self.term()?;
        let joiner = if self.is_keyword("AND") {
            "AND"
        } else if self.is_keyword("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut terms = vec![first];
        loop {
            if self.eat(joiner) {
                terms.push(self.term()?);
            } else if self.is_keyword("AND") || self.is_keyword("OR") {
                return Err(self.unexpected());
            } else {
                break;
            }
        }
        Ok(if joiner == "AND" {
            Cond::All(terms)
        } else {
            Cond::Any(terms)
        })
    }

    fn term(&mut self) -> Result<Cond, ParseError> {
        if self.eat("NOT") {
            return Ok(Cond::Not(Box::new(self.term()?)));
        }
        if *self.peek() == Tok::Open {
            self.next();
            let inner = self.condition()?;
            self.expect(Tok::Close)?;
            return Ok(inner);
        }
        let path = self.path()?;
        let negated = self.eat("NOT");
        if self.eat("IN") {
            self.expect(Tok::Open)?;
            let mut values = vec![self.literal()?];
            while *self.peek() == Tok::Comma {
                self.next();
                values.push(self.literal()?);
            }
            self.expect(Tok::Close)?;
            return Ok(Cond::In(path, negated, values));
        }
        if negated {
            return Err(self.unexpected());
        }
        let op = if self.eat("LIKE") {
            Op::Like
        } else {
            match self.peek() {
                Tok::Op(o) => {
                    let op = match *o {
                        "=" => Op::Eq,
                        "!=" => Op::Ne,
                        "<" => Op::Lt,
                        ">" => Op::Gt,
                        "<=" => Op::Le,
                        _ => Op::Ge,
                    };
                    self.next();
                    op
                }
                _ => return Err(self.unexpected()),
            }
        };
        let value = self.literal()?;
        Ok(Cond::Cmp(path, op, value))
    }

    fn literal(&mut self) -> Result<Lit, ParseError> {
        let lit = match self.peek() {
            Tok::Str(s) => Lit::Str(s.clone()),
            Tok::Number(n) => match n.parse::<f64>() {
                Ok(v) => Lit::Num(v),
                Err(_) => return Err(self.unexpected()),
            },
            Tok::Date(d) => Lit::Date(d.clone()),
            Tok::Word(w) if w.eq_ignore_ascii_case("true") => Lit::Bool(true),
            Tok::Word(w) if w.eq_ignore_ascii_case("false") => Lit::Bool(false),
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Lit::Null,
            _ => return Err(self.unexpected()),
        };
        self.next();
        Ok(lit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        let q = parse(
            "SELECT Id, Account.Name FROM Opportunity WHERE (StageName = 'It\\'s' OR Amount >= 10.5) AND NOT IsClosed = true AND Id NOT IN ('a','b') AND SystemModstamp > 2026-11-30T14:05:09.000+0000 ORDER BY Name DESC NULLS FIRST, Id LIMIT 5",
        )
        .unwrap();
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.order.len(), 2);
        assert!(!q.order[0].nulls_last && q.order[0].desc);
        let Some(Cond::All(terms)) = &q.filter else {
            panic!("{:?}", q.filter)
        };
        assert_eq!(terms.len(), 4);
        assert!(matches!(&terms[0], Cond::Any(v)
            if matches!(&v[0], Cond::Cmp(p, Op::Eq, Lit::Str(s)) if p.text == "StageName" && s == "It's")));
        assert!(
            matches!(&terms[3], Cond::Cmp(_, Op::Gt, Lit::Date(d)) if d == "2026-11-30T14:05:09.000+0000")
        );
        assert_eq!(
            parse("SELECT COUNT() FROM Account").unwrap().select,
            Select::Count
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            "SELECT Id FROM Account WHERE A = 1 AND B = 2 OR C = 3",
            "SELECT Id FROM Account LIMIT 5 OFFSET 5",
            "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
            "SELECT Id FROM Account WHERE CreatedDate = TODAY",
            "SELECT Id FROM Account WHERE Id = :id",
            "SELECT Id FROM Account WHERE Name = 'open",
            "SELECT Id FROM Account WHERE Name = 'a\\qb'",
            "SELECT COUNT(Id) FROM Account",
            "SELECT Id FROM",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
