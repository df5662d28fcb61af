pub mod audit;
pub mod connections;
pub mod flows;
pub mod overview;
pub mod runs;
pub mod users;

use time::OffsetDateTime;

/// Rows per page of a list (runs, audit events).
pub const PAGE_SIZE: i64 = 50;
use time::macros::format_description;

/// A moment as the dashboard shows it: to the minute, in UTC.
pub fn when(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// Percent-encodes a value for a URL query or path (RFC 3986 unreserved characters and `/` stay).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query string (`?a=1&b=2`) of the pairs whose value is not empty; empty when none is.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_skip_empty_values_and_encode_the_rest() {
        assert_eq!(query_string(&[("a", ""), ("b", "")]), "");
        assert_eq!(
            query_string(&[("record", "a b&c"), ("flow", ""), ("before", "42")]),
            "?record=a%20b%26c&before=42"
        );
    }
}
