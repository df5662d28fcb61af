//! The one OData lexer behind both emulators' `$filter` parsers. It keeps every character (blanks
//! too) and judges nothing, so each parser can refuse exactly what its vendor refuses.

use std::iter::Peekable;
use std::str::Chars;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Open,
    Close,
    Comma,
    Colon,
    /// A quoted string, its doubled quotes (`''`) already read as one.
    Str(String),
    /// A run of ASCII digits, `.` and `-` starting with a digit or `-`: numbers, but also the start
    /// of dates and GUIDs, which a parser may glue back together.
    Number(String),
    /// A run of letters, digits, `_` and `/` (paths like `customerProfile/address/country`).
    Ident(String),
    /// Any other single character (`@`, `.`, `=`…): meaningful to one dialect, an error to another.
    Symbol(char),
    /// A run of whitespace, kept because Partner Center accepts only spaces and tabs.
    Space(String),
}

/// A string literal without its closing quote; it runs to the end of the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Unterminated;

/// The tokens of `text` in order. An unterminated string is the last item, so a parser still meets
/// any earlier error first, as a hand-written lexer reading left to right would.
pub(crate) fn tokenize(text: &str) -> Lexer<'_> {
    Lexer {
        chars: text.chars().peekable(),
    }
}

pub(crate) struct Lexer<'a> {
    chars: Peekable<Chars<'a>>,
}

impl Lexer<'_> {
    fn run(&mut self, first: char, more: impl Fn(char) -> bool) -> String {
        let mut s = String::from(first);
        while let Some(c) = self.chars.next_if(|c| more(*c)) {
            s.push(c);
        }
        s
    }

    fn string(&mut self) -> Result<Token, Unterminated> {
        let mut s = String::new();
        loop {
            match self.chars.next() {
                None => return Err(Unterminated),
                Some('\'') if self.chars.next_if_eq(&'\'').is_some() => s.push('\''),
                Some('\'') => return Ok(Token::Str(s)),
                Some(c) => s.push(c),
            }
        }
    }
}

fn is_number_part(c: char) -> bool {
    c.is_ascii_digit() || c == '.' || c == '-'
}

fn is_ident_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '/'
}

impl Iterator for Lexer<'_> {
    type Item = Result<Token, Unterminated>;

    fn next(&mut self) -> Option<Self::Item> {
        let c = self.chars.next()?;
        Some(Ok(match c {
            c if c.is_whitespace() => Token::Space(self.run(c, char::is_whitespace)),
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            ':' => Token::Colon,
            '\'' => return Some(self.string()),
            // Before identifiers: a digit starts a number even though identifiers may contain digits.
            c if c.is_ascii_digit() || c == '-' => Token::Number(self.run(c, is_number_part)),
            c if is_ident_part(c) => Token::Ident(self.run(c, is_ident_part)),
            c => Token::Symbol(c),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        tokenize(text).collect::<Result<_, _>>().unwrap()
    }

    fn ident(s: &str) -> Token {
        Token::Ident(s.into())
    }

    #[test]
    fn strings_unescape_doubled_quotes() {
        assert_eq!(
            tokens("name eq 'O''Brien'"),
            [
                ident("name"),
                Token::Space(" ".into()),
                ident("eq"),
                Token::Space(" ".into()),
                Token::Str("O'Brien".into()),
            ]
        );
        assert_eq!(tokens("''''"), [Token::Str("'".into())]);
    }

    #[test]
    fn an_unterminated_string_comes_last() {
        let items: Vec<_> = tokenize("a 'b''").collect();
        assert_eq!(
            items,
            [
                Ok(ident("a")),
                Ok(Token::Space(" ".into())),
                Err(Unterminated)
            ]
        );
    }

    #[test]
    fn paths_lambdas_and_functions() {
        assert_eq!(
            tokens("team/any(t:t/email eq 'x')"),
            [
                ident("team/any"),
                Token::Open,
                ident("t"),
                Token::Colon,
                ident("t/email"),
                Token::Space(" ".into()),
                ident("eq"),
                Token::Space(" ".into()),
                Token::Str("x".into()),
                Token::Close,
            ]
        );
        assert_eq!(
            tokens("startswith(name,'a')"),
            [
                ident("startswith"),
                Token::Open,
                ident("name"),
                Token::Comma,
                Token::Str("a".into()),
                Token::Close,
            ]
        );
    }

    #[test]
    fn numbers_guids_dates_and_symbols_split_but_lose_nothing() {
        assert_eq!(
            tokens("-1.5 _x_value @p1\t\n"),
            [
                Token::Number("-1.5".into()),
                Token::Space(" ".into()),
                ident("_x_value"),
                Token::Space(" ".into()),
                Token::Symbol('@'),
                ident("p1"),
                Token::Space("\t\n".into()),
            ]
        );
        assert_eq!(
            tokens("a0c0a000-0000-4000-8000-000000000001"),
            [
                ident("a0c0a000"),
                Token::Number("-0000-4000-8000-000000000001".into())
            ]
        );
        assert_eq!(
            tokens("2025-01-01T10:00:00Z"),
            [
                Token::Number("2025-01-01".into()),
                ident("T10"),
                Token::Colon,
                Token::Number("00".into()),
                Token::Colon,
                Token::Number("00".into()),
                ident("Z"),
            ]
        );
    }
}
