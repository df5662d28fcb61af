//! `POST /services/data/vXX.X/composite` (crm-apis.md §3.6): up to 25 subrequests run in order as one
//! API call; `@{ref.field}` (also `@{ref.records[0].Id}`) reads an earlier subresponse's body. The
//! answer is always 200; each subresponse has its own status. With `allOrNone` the first failure rolls
//! every write back and every other subrequest answers `PROCESSING_HALTED`.
//!
//! Unconfirmed: the errors for a malformed composite body, an over-long list and refused subrequest
//! headers (400 with `INVALID_INPUT` here).

use super::errors::SfError;
use super::rest::{Call, Reply, serve};
use super::{LATEST_API_VERSION, OLDEST_API_VERSION, Org};
use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const MAX_SUBREQUESTS: usize = 25;
const ROLLED_BACK: &str =
    "The transaction was rolled back since another operation in the same transaction failed.";

fn halted(message: &str) -> Reply {
    SfError::bad("PROCESSING_HALTED", message).into()
}

fn invalid(message: &str) -> Reply {
    SfError::bad("INVALID_INPUT", message).into()
}

/// Replaces every `@{ref.path}` in `text`; a string that is one reference becomes that value.
fn substitute(text: &str, done: &HashMap<String, Option<Value>>) -> Result<Value, String> {
    let whole = text.starts_with("@{") && text.ends_with('}') && text.matches("@{").count() == 1;
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .ok_or_else(|| format!("Invalid reference specified: {rest}"))?
            + start;
        let reference = &rest[start + 2..end];
        let value = resolve(reference, done)?;
        if whole {
            return Ok(value);
        }
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn resolve(reference: &str, done: &HashMap<String, Option<Value>>) -> Result<Value, String> {
    let (id, path) = reference.split_once('.').unwrap_or((reference, ""));
    let missing = || {
        format!(
            "Invalid reference specified. No value for {reference} found in {id}. Provided referenceId ('{id}') must match a referenceId from a previous subrequest."
        )
    };
    let mut value = done.get(id).cloned().flatten().ok_or_else(missing)?;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        value = value.get(name).cloned().ok_or_else(missing)?;
        if let Some(i) = index {
            value = value.get(i).cloned().ok_or_else(missing)?;
        }
    }
    if value.is_null() {
        Err(missing())
    } else {
        Ok(value)
    }
}

fn walk(value: &Value, done: &HashMap<String, Option<Value>>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) if s.contains("@{") => substitute(s, done)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| walk(v, done))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), walk(v, done)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        other => other.clone(),
    })
}

fn subrequest(
    org: &mut Org,
    c: &Call,
    sub: &Value,
    done: &HashMap<String, Option<Value>>,
) -> Reply {
    if let Some(headers) = sub.get("httpHeaders").and_then(Value::as_object)
        && let Some(h) = headers.keys().find(|h| {
            ["authorization", "accept", "content-type"].contains(&h.to_ascii_lowercase().as_str())
        })
    {
        return invalid(&format!(
            "The {h} header is not allowed in a composite subrequest"
        ));
    }
    let Some(method) = sub
        .get("method")
        .and_then(Value::as_str)
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
    else {
        return invalid("A subrequest needs a method");
    };
    let url = match sub
        .get("url")
        .and_then(Value::as_str)
        .map(|u| substitute(u, done))
    {
        Some(Ok(Value::String(u))) => u,
        Some(Err(message)) => return halted(&message),
        _ => return invalid("A subrequest needs a url"),
    };
    let body = match sub.get("body").map(|b| walk(b, done)) {
        Some(Ok(b)) => Some(b),
        Some(Err(message)) => return halted(&message),
        None => None,
    };
    let (path, raw_query) = url.split_once('?').unwrap_or((&url, ""));
    let Some(rest) = path.strip_prefix("/services/data/") else {
        return SfError::not_found().into();
    };
    let (segment, path) = rest.split_once('/').unwrap_or((rest, ""));
    let version = segment
        .strip_prefix('v')
        .and_then(|v| v.strip_suffix(".0"))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|v| (OLDEST_API_VERSION..=LATEST_API_VERSION).contains(v));
    let Some(version) = version else {
        return SfError::not_found().into();
    };
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let sub_call = Call {
        method,
        path,
        query: &query,
        body,
        batch: c.batch,
        user_id: c.user_id,
        version,
        now: c.now,
    };
    serve(org, &sub_call)
}

pub(crate) fn run(org: &mut Org, c: &Call) -> Reply {
    let Some(requests) = c
        .body
        .as_ref()
        .and_then(|b| b.get("compositeRequest"))
        .and_then(Value::as_array)
    else {
        return invalid("The composite request needs a compositeRequest array");
    };
    if requests.is_empty() || requests.len() > MAX_SUBREQUESTS {
        return invalid(&format!(
            "A composite request has 1 to {MAX_SUBREQUESTS} subrequests"
        ));
    }
    let mut ids = Vec::new();
    for sub in requests {
        match sub.get("referenceId").and_then(Value::as_str) {
            Some(id)
                if !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !ids.contains(&id) =>
            {
                ids.push(id)
            }
            _ => {
                return invalid(
                    "Each subrequest needs a unique referenceId of letters, digits and underscores",
                );
            }
        }
    }
    let all_or_none = c
        .body
        .as_ref()
        .and_then(|b| b.get("allOrNone"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let before = all_or_none.then(|| org.store.clone());
    // The body of each successful subresponse, by reference id (None: it failed).
    let mut done: HashMap<String, Option<Value>> = HashMap::new();
    let mut replies: Vec<Reply> = Vec::new();
    let mut failed_at = None;
    for (i, sub) in requests.iter().enumerate() {
        if failed_at.is_some() {
            replies.push(halted(ROLLED_BACK));
            continue;
        }
        let reply = subrequest(org, c, sub, &done);
        let ok = reply.status.is_success();
        done.insert(
            ids[i].to_string(),
            if ok {
                Some(reply.body.clone().unwrap_or(Value::Null))
            } else {
                None
            },
        );
        if !ok && all_or_none {
            failed_at = Some(i);
        }
        replies.push(reply);
    }
    if let (Some(failed), Some(before)) = (failed_at, before) {
        org.store = before;
        for (i, reply) in replies.iter_mut().enumerate().take(failed) {
            if i != failed {
                *reply = halted(ROLLED_BACK);
            }
        }
    }
    let responses: Vec<Value> = replies
        .into_iter()
        .zip(ids)
        .map(|(r, id)| {
            let headers: Map<String, Value> = r.headers.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
            json!({ "body": r.body, "httpHeaders": headers, "httpStatusCode": r.status.as_u16(), "referenceId": id })
        })
        .collect();
    Reply {
        status: StatusCode::OK,
        body: Some(json!({ "compositeResponse": responses })),
        headers: Vec::new(),
    }
}
