pub mod alert_settings;
pub mod alerts;
pub mod audit;
pub mod charts;
pub mod connections;
pub mod diagnostics;
pub mod flows;
pub mod mapping;
pub mod opportunities;
pub mod overview;
pub mod runs;
pub mod settings;
pub mod users;

use leptos::prelude::*;
use time::OffsetDateTime;

/// Rows per page of a list (runs, audit events).
pub const PAGE_SIZE: i64 = 50;
pub use cosell::domain::runs::when;

/// From (inclusive) and Before (exclusive), each when given.
pub type TimeWindow = (Option<OffsetDateTime>, Option<OffsetDateTime>);

/// A filter's From/Before fields: each None when empty, else the moment it reads as (UTC); refused with
/// what to type when it does not read, or when From is not before Before.
pub fn filter_window(from: &str, before: &str) -> Result<TimeWindow, crate::error::AppError> {
    use crate::error::AppError;
    let moment = |text: &str, field: &str| {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        cosell::domain::runs::parse_utc_moment(text)
            .map(Some)
            .ok_or_else(|| {
                AppError::Invalid(format!(
                    "“{text}” in “{field}” is not a date and time: use YYYY-MM-DD HH:MM, in UTC."
                ))
            })
    };
    let window = (moment(from, "From")?, moment(before, "Before")?);
    if let (Some(since), Some(until)) = window
        && since >= until
    {
        return Err(AppError::Invalid(
            "“From” must come before “Before”: nothing can match.".into(),
        ));
    }
    Ok(window)
}

/// What a server action answered, as the page shows it: a notice, or the error with its fix.
pub fn action_result(
    r: Option<Result<String, crate::error::AppError>>,
) -> Option<leptos::prelude::AnyView> {
    use leptos::prelude::*;
    r.map(|r| match r {
        Ok(m) => view! { <p class="notice" role="status">{m}</p> }.into_any(),
        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
    })
}

/// A page of a list fetched with one row more than it shows: the rows to show, and the cursor (from the
/// last row shown) the next page starts after, when there is one.
pub fn page_of<T, C>(mut rows: Vec<T>, cursor: impl Fn(&T) -> C) -> (Vec<T>, Option<C>) {
    if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
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
    fn a_page_knows_where_the_next_one_starts() {
        let ids: Vec<i64> = (1..=PAGE_SIZE + 1).rev().collect();
        let (shown, older) = page_of(ids, |id| *id);
        assert_eq!(shown.len() as i64, PAGE_SIZE);
        assert_eq!(older, Some(2));
        let (shown, older) = page_of(vec![3, 2, 1], |id| *id);
        assert_eq!((shown, older), (vec![3, 2, 1], None));
    }

    #[test]
    fn query_strings_skip_empty_values_and_encode_the_rest() {
        assert_eq!(query_string(&[("a", ""), ("b", "")]), "");
        assert_eq!(
            query_string(&[("record", "a b&c"), ("flow", ""), ("before", "42")]),
            "?record=a%20b%26c&before=42"
        );
    }
}

/// A long id (a GUID, a CRM record id) as tables show it: shortened to fit by the style sheet, whole on
/// hover (the title) and whole when selected and copied.
#[component]
pub fn ShortId(id: String) -> impl IntoView {
    let title = id.clone();
    view! { <span class="id" title=title>{id}</span> }
}
