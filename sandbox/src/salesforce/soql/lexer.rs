//! SOQL's tokens. Unlike OData, strings use backslash escapes, and dates and datetimes are bare
//! literals (`2026-11-30`, `2026-11-30T14:05:09Z`).

/// In a LIKE pattern, `\%` and `\_` are a literal percent sign and underscore; they are kept as these
/// private-use characters until the value is used, so that `=` reads them as `%`/`_` and LIKE as
/// literals.
pub(crate) const LITERAL_PERCENT: char = '\u{E000}';
pub(crate) const LITERAL_UNDERSCORE: char = '\u{E001}';

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Names and keywords, with dots (`Account.Owner.Name`).
    Word(String),
    Str(String),
    Number(String),
    /// `YYYY-MM-DD`, or with a time (`THH:MM:SS[.fff](Z|±HH[:]MM)`).
    Date(String),
    Op(&'static str),
    Open,
    Close,
    Comma,
    /// Anything else (`:` of a bind variable, `*`, `;`…).
    Other(char),
    End,
}

/// A token and the character offset it starts at (for the error's Row/Column).
pub(crate) type Spanned = (Tok, usize);

/// Why the text is not made of tokens: the offset and the message.
pub(crate) type LexError = (usize, String);

pub(crate) fn tokenize(text: &str) -> Result<Vec<Spanned>, LexError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::Open
            }
            ')' => {
                i += 1;
                Tok::Close
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '\'' => {
                let (s, next) = string(&chars, i + 1)?;
                i = next;
                Tok::Str(s)
            }
            '=' => {
                i += 1;
                Tok::Op("=")
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Op("!=")
            }
            '<' | '>' => {
                let (op, width) = match (c, chars.get(i + 1)) {
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', _) => ("<", 1),
                    _ => (">", 1),
                };
                i += width;
                Tok::Op(op)
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let (tok, next) = number_or_date(&chars, i);
                i = next;
                tok
            }
            c if c.is_alphabetic() || c == '_' => {
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
                Tok::Word(chars[start..i].iter().collect())
            }
            other => {
                i += 1;
                Tok::Other(other)
            }
        };
        out.push((tok, start));
    }
    out.push((Tok::End, chars.len()));
    Ok(out)
}

fn string(chars: &[char], mut i: usize) -> Result<(String, usize), LexError> {
    let start = i - 1;
    let mut s = String::new();
    while i < chars.len() {
        match chars[i] {
            '\'' => return Ok((s, i + 1)),
            '\\' => {
                let escaped = chars.get(i + 1).copied();
                s.push(match escaped {
                    Some('\'') => '\'',
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('b') => '\u{8}',
                    Some('f') => '\u{c}',
                    Some('%') => LITERAL_PERCENT,
                    Some('_') => LITERAL_UNDERSCORE,
                    other => {
                        let seq: String = other.map(|c| format!("\\{c}")).unwrap_or("\\".into());
                        let literal: String = chars[start..].iter().take_while(|c| **c != '\'' ).collect();
                        return Err((
                            i,
                            format!(
                                "Invalid string literal '{literal}'. Illegal character sequence '{seq}' in string literal."
                            ),
                        ));
                    }
                });
                i += 2;
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    Err((
        start,
        "line 1:0 mismatched character '<EOF>' expecting '''".into(),
    ))
}

/// `123`, `-4.5`, `2026-11-30`, `2026-11-30T14:05:09.000+0000`.
fn number_or_date(chars: &[char], start: usize) -> (Tok, usize) {
    let digits = |from: usize, n: usize| {
        (from..from + n).all(|k| chars.get(k).is_some_and(|c| c.is_ascii_digit()))
    };
    let at = |k: usize, c: char| chars.get(k) == Some(&c);
    let s = start;
    if digits(s, 4) && at(s + 4, '-') && digits(s + 5, 2) && at(s + 7, '-') && digits(s + 8, 2) {
        let mut i = s + 10;
        if at(i, 'T')
            && digits(i + 1, 2)
            && at(i + 3, ':')
            && digits(i + 4, 2)
            && at(i + 6, ':')
            && digits(i + 7, 2)
        {
            i += 9;
            if at(i, '.') {
                i += 1;
                while chars.get(i).is_some_and(|c| c.is_ascii_digit()) {
                    i += 1;
                }
            }
            if at(i, 'Z') {
                i += 1;
            } else if (at(i, '+') || at(i, '-')) && digits(i + 1, 2) {
                i += 3;
                if at(i, ':') {
                    i += 1;
                }
                while digits(i, 1) && i < s + 40 {
                    i += 1;
                }
            }
        }
        return (Tok::Date(chars[s..i].iter().collect()), i);
    }
    let mut i = s + 1;
    while chars
        .get(i)
        .is_some_and(|c| c.is_ascii_digit() || *c == '.')
    {
        i += 1;
    }
    (Tok::Number(chars[s..i].iter().collect()), i)
}
