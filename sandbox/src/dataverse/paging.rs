//! Paging cookies and delta tokens (crm-apis.md §2.5, §2.7).
//!
//! A next page is named by `$skiptoken=<cookie pagenumber="2" pagingcookie="…" istracking="False" />`
//! whose `pagingcookie` is, as in real responses, an XML cookie URL-encoded twice:
//! `<cookie page="1"><name last="…" /><accountid last="{GUID}" first="{GUID}" /></cookie>`. It holds the
//! sort values of the last row served, so the next page starts right after it however rows were added or
//! removed meanwhile (keyset paging: stable). The sandbox writes the `$orderby` values as JSON text in
//! `last` (real cookies hold the plain value; clients must treat the cookie as opaque anyway).
//!
//! A delta token is `<version>!<MM/dd/yyyy HH:mm:ss>` (UTC).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Everything but unreserved characters is encoded (query values and the cookie).
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Query keys keep their `$`.
const KEY: &AsciiSet = &STRICT.remove(b'$');

pub(crate) fn encode(text: &str) -> String {
    utf8_percent_encode(text, STRICT).to_string()
}

pub(crate) fn encode_key(text: &str) -> String {
    utf8_percent_encode(text, KEY).to_string()
}

fn decode(text: &str) -> Option<String> {
    percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Where a page ends: the page number just served, the `$orderby` values and the key of its last row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cursor {
    pub page: u32,
    /// `(property, value)` of each `$orderby` key, in order.
    pub sort: Vec<(String, Value)>,
    pub key_name: String,
    pub last_key: String,
    pub first_key: String,
}

/// The `$skiptoken` value (before URL encoding) for the page after `cursor`.
pub(crate) fn skiptoken(cursor: &Cursor) -> String {
    let mut xml = format!("<cookie page=\"{}\">", cursor.page);
    for (property, value) in &cursor.sort {
        xml.push_str(&format!(
            "<{property} last=\"{}\" />",
            xml_escape(&value.to_string())
        ));
    }
    xml.push_str(&format!(
        "<{} last=\"{{{}}}\" first=\"{{{}}}\" />",
        cursor.key_name,
        cursor.last_key.to_ascii_uppercase(),
        cursor.first_key.to_ascii_uppercase()
    ));
    xml.push_str("</cookie>");
    format!(
        "<cookie pagenumber=\"{}\" pagingcookie=\"{}\" istracking=\"False\" />",
        cursor.page + 1,
        encode(&encode(&xml))
    )
}

fn attribute<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[start..].find('"')?;
    Some(&element[start..start + len])
}

/// Reads a `$skiptoken` back; `None` when it is not one this emulator wrote for these sort keys.
pub(crate) fn read_skiptoken(token: &str, orderby: &[String], key_name: &str) -> Option<Cursor> {
    let token = token.trim();
    let outer = format!(" {}", token.strip_prefix("<cookie ")?.strip_suffix("/>")?);
    let pagenumber: u32 = attribute(&outer, "pagenumber")?.parse().ok()?;
    let encoded = attribute(&outer, "pagingcookie")?;
    let xml = decode(&decode(encoded)?)?;
    let inner = xml.strip_prefix("<cookie ")?.strip_suffix("</cookie>")?;
    let (head, elements) = inner.split_once('>')?;
    let page: u32 = attribute(&format!(" {head}"), "page")?.parse().ok()?;
    if page + 1 != pagenumber {
        return None;
    }
    let elements: Vec<&str> = elements
        .split("/>")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if elements.len() != orderby.len() + 1 {
        return None;
    }
    let mut sort = Vec::new();
    for (element, property) in elements.iter().zip(orderby) {
        let element = element.strip_prefix('<')?;
        let (name, _) = element.split_once(' ')?;
        if name != property {
            return None;
        }
        let value: Value = serde_json::from_str(&xml_unescape(attribute(element, "last")?)).ok()?;
        sort.push((property.clone(), value));
    }
    let key = elements.last()?.strip_prefix('<')?;
    let (name, _) = key.split_once(' ')?;
    if name != key_name {
        return None;
    }
    let unbrace = |s: &str| {
        s.strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .filter(|s| super::tables::is_guid(s))
            .map(str::to_ascii_lowercase)
    };
    Some(Cursor {
        page,
        sort,
        key_name: key_name.to_string(),
        last_key: unbrace(attribute(key, "last")?)?,
        first_key: unbrace(attribute(key, "first")?)?,
    })
}

/// `919042!08/22/2017 08:10:44`.
pub(crate) fn deltatoken(version: u64, at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let text = at
        .format(format_description!(
            "[month]/[day]/[year] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    format!("{version}!{text}")
}

pub(crate) fn read_deltatoken(token: &str) -> Option<(u64, OffsetDateTime)> {
    let (version, at) = token.split_once('!')?;
    let version = version.parse().ok()?;
    let at = PrimitiveDateTime::parse(
        at,
        format_description!("[month]/[day]/[year] [hour]:[minute]:[second]"),
    )
    .ok()?
    .assume_utc();
    Some((version, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn skiptokens_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            page: 1,
            sort: vec![("name".into(), json!("O'Brien & \"Sons\" <Ltd>"))],
            key_name: "accountid".into(),
            last_key: "a0c0a000-0000-4000-8000-000000000001".into(),
            first_key: "a0c0a000-0000-4000-8000-000000000002".into(),
        };
        let token = skiptoken(&cursor);
        assert!(token.starts_with("<cookie pagenumber=\"2\" pagingcookie=\"%253Ccookie"));
        assert!(token.ends_with("istracking=\"False\" />"));
        assert_eq!(
            read_skiptoken(&token, &["name".into()], "accountid"),
            Some(cursor)
        );
        assert_eq!(read_skiptoken(&token, &[], "accountid"), None);
        assert_eq!(read_skiptoken(&token, &["name".into()], "contactid"), None);
        assert_eq!(read_skiptoken("garbage", &[], "accountid"), None);
        let tampered = token.replace("pagenumber=\"2\"", "pagenumber=\"5\"");
        assert_eq!(
            read_skiptoken(&tampered, &["name".into()], "accountid"),
            None
        );
    }

    #[test]
    fn delta_tokens_have_the_documented_form() {
        let at = time::macros::datetime!(2017-08-22 08:10:44 UTC);
        assert_eq!(deltatoken(919042, at), "919042!08/22/2017 08:10:44");
        assert_eq!(
            encode(&deltatoken(919042, at)),
            "919042%2108%2F22%2F2017%2008%3A10%3A44"
        );
        assert_eq!(
            read_deltatoken("919042!08/22/2017 08:10:44"),
            Some((919042, at))
        );
        assert_eq!(read_deltatoken("919042"), None);
        assert_eq!(read_deltatoken("x!08/22/2017 08:10:44"), None);
    }
}
