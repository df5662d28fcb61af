//! What a failed REST answer means (crm-apis.md §3.7). Salesforce's error body is an array,
//! `[{"message","errorCode","fields"}]`; the first entry names the problem. Messages keep the error code in
//! front (`REQUIRED_FIELD_MISSING: Required fields are missing: [Name] (fields: Name)`), since the code is
//! what an admin searches for.

use crate::clients::http::CallError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use std::time::Duration;

/// The first entry of an error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RestError {
    pub code: Option<String>,
    pub message: String,
    pub fields: Vec<String>,
}

impl RestError {
    pub(super) fn from_body(body: &Value) -> Option<RestError> {
        let first = match body {
            Value::Array(entries) => entries.first()?,
            other => other,
        };
        let text = |key: &str| first.get(key).and_then(Value::as_str).map(str::to_string);
        // The token endpoint and some gateways answer with an OAuth object instead of the array.
        let code = text("errorCode").or_else(|| text("error"));
        let message = text("message")
            .or_else(|| text("error_description"))
            .or_else(|| code.clone())?;
        let fields = first
            .get("fields")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Some(RestError {
            code,
            message,
            fields,
        })
    }

    pub(super) fn render(&self) -> String {
        let mut out = match &self.code {
            Some(code) if *code != self.message => format!("{code}: {}", self.message),
            _ => self.message.clone(),
        };
        if !self.fields.is_empty() {
            out.push_str(&format!(" (fields: {})", self.fields.join(", ")));
        }
        out
    }
}

/// A non-2xx REST answer as a [`CallError`].
///
/// Salesforce never answers 429: it signals an exhausted daily API allocation (and too many concurrent
/// long-running requests) with **403 `REQUEST_LIMIT_EXCEEDED`**. That becomes
/// [`CallError::AllocationSpent`], so the engine pauses the connection's work until the allocation frees
/// (no attempt spent) instead of telling the admin that access was denied. `UNABLE_TO_LOCK_ROW` (another
/// transaction holds the record) is a [`CallError::Server`]: the same request succeeds a moment later.
pub fn call_error(status: u16, headers: &HeaderMap, body: &str) -> CallError {
    let parsed = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| RestError::from_body(&v));
    let code = parsed.as_ref().and_then(|e| e.code.clone());
    let message = match &parsed {
        Some(e) => e.render(),
        None => plain_message(status, body),
    };
    classify(status, retry_after(headers), code.as_deref(), message)
}

/// The variant for a status and error code, with the message already written.
pub(super) fn classify(
    status: u16,
    retry_after: Option<Duration>,
    code: Option<&str>,
    message: String,
) -> CallError {
    match (status, code) {
        (401, _) => CallError::Unauthorized(message),
        (403, Some("REQUEST_LIMIT_EXCEEDED")) => CallError::AllocationSpent(message),
        (403, _) => CallError::Forbidden(message),
        (404, _) => CallError::NotFound(message),
        // Not Salesforce's own signal, but proxies in front of it use it.
        (429, _) => CallError::Throttled {
            retry_after,
            message,
        },
        (_, Some("UNABLE_TO_LOCK_ROW")) | (500..=599, _) => CallError::Server {
            status,
            retry_after,
            message,
        },
        _ => CallError::Rejected { status, message },
    }
}

/// A body without an error entry: short text is kept (the identity service answers `Bad_OAuth_Token`),
/// an HTML page or JSON without a message is not.
fn plain_message(status: u16, body: &str) -> String {
    let body = body.trim();
    if !body.is_empty() && body.len() <= 200 && !body.starts_with(['<', '[', '{']) {
        return body.to_string();
    }
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("no message")
        .to_string()
}

/// `Retry-After` in seconds; Salesforce sends it (if ever) on 503s from maintenance.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> CallError {
        call_error(status, &HeaderMap::new(), body)
    }

    #[test]
    fn statuses_and_error_codes_map_to_what_the_engine_does_next() {
        assert_eq!(
            err(
                401,
                r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#
            ),
            CallError::Unauthorized("INVALID_SESSION_ID: Session expired or invalid".into())
        );
        assert_eq!(
            err(
                403,
                r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#
            ),
            CallError::AllocationSpent(
                "REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.".into()
            )
        );
        assert_eq!(
            err(
                403,
                r#"[{"message":"insufficient access rights on object id","errorCode":"INSUFFICIENT_ACCESS_OR_READONLY"}]"#
            ),
            CallError::Forbidden(
                "INSUFFICIENT_ACCESS_OR_READONLY: insufficient access rights on object id".into()
            )
        );
        assert_eq!(
            err(
                404,
                r#"[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]"#
            ),
            CallError::NotFound("NOT_FOUND: The requested resource does not exist".into())
        );
        assert_eq!(
            err(
                400,
                r#"[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW","fields":[]}]"#
            ),
            CallError::Server {
                status: 400,
                retry_after: None,
                message: "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record"
                    .into()
            }
        );
        assert_eq!(
            err(
                400,
                r#"[{"message":"Required fields are missing: [Name, CloseDate]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name","CloseDate"]}]"#
            ),
            CallError::Rejected {
                status: 400,
                message: "REQUIRED_FIELD_MISSING: Required fields are missing: [Name, CloseDate] (fields: Name, CloseDate)".into()
            }
        );
        assert_eq!(
            err(409, r#"[{"message":"conflict","errorCode":"CONFLICT"}]"#),
            CallError::Rejected {
                status: 409,
                message: "CONFLICT: conflict".into()
            }
        );
        assert_eq!(
            err(
                412,
                r#"[{"message":"precondition failed","errorCode":"PRECONDITION_FAILED"}]"#
            ),
            CallError::Rejected {
                status: 412,
                message: "PRECONDITION_FAILED: precondition failed".into()
            }
        );
    }

    #[test]
    fn server_errors_keep_retry_after_and_odd_bodies_still_say_something() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "30".parse().unwrap());
        assert_eq!(
            call_error(503, &headers, "<html>down for maintenance</html>"),
            CallError::Server {
                status: 503,
                retry_after: Some(Duration::from_secs(30)),
                message: "Service Unavailable".into()
            }
        );
        assert_eq!(
            err(
                500,
                r#"[{"message":"An unexpected error occurred","errorCode":"UNKNOWN_EXCEPTION"}]"#
            ),
            CallError::Server {
                status: 500,
                retry_after: None,
                message: "UNKNOWN_EXCEPTION: An unexpected error occurred".into()
            }
        );
        assert_eq!(
            err(403, "Bad_OAuth_Token"),
            CallError::Forbidden("Bad_OAuth_Token".into())
        );
        assert_eq!(
            err(
                400,
                r#"{"error":"invalid_grant","error_description":"authentication failure"}"#
            ),
            CallError::Rejected {
                status: 400,
                message: "invalid_grant: authentication failure".into()
            }
        );
        assert_eq!(
            err(400, "[]"),
            CallError::Rejected {
                status: 400,
                message: "Bad Request".into()
            }
        );
    }
}
