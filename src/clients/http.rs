//! One HTTP attempt against a vendor API, and what its failure means for the caller: retry (429 with
//! `Retry-After`, 5xx, time-outs), refresh the token (401), or stop with a message an admin can act on.
//! Retrying itself is the engine's business (it counts and records every attempt).

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use std::time::Duration;

/// Why one call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("throttled (HTTP 429): {message}")]
    Throttled {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("server error (HTTP {status}): {message}")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("no answer: {0}")]
    Network(String),
    /// The API's daily allocation is spent (Salesforce: 403 `REQUEST_LIMIT_EXCEEDED`): nothing to
    /// retry until it frees up.
    #[error("the daily API allocation is spent: {0}")]
    AllocationSpent(String),
    #[error("not signed in (HTTP 401): {0}")]
    Unauthorized(String),
    #[error("access denied (HTTP 403): {0}")]
    Forbidden(String),
    #[error("not found (HTTP 404): {0}")]
    NotFound(String),
    #[error("the record changed meanwhile (HTTP 412): {0}")]
    PreconditionFailed(String),
    #[error("refused (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// A success whose body is not JSON at all (cut short, or a proxy's page): the transfer went wrong,
    /// not the API, so the call is tried again.
    #[error("an unreadable answer: {0}")]
    Garbled(String),
    /// JSON of a shape the API does not document: trying again would get the same.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

impl CallError {
    /// Worth trying again later, as is.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CallError::Throttled { .. }
                | CallError::Server { .. }
                | CallError::Network(_)
                | CallError::Garbled(_)
                | CallError::AllocationSpent(_)
        )
    }

    /// What the server asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Throttled { retry_after, .. } | CallError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    pub fn from_transport(e: reqwest::Error) -> CallError {
        if e.is_timeout() {
            CallError::Network("timed out".into())
        } else if e.is_connect() {
            CallError::Network("could not connect".into())
        } else {
            CallError::Network(e.without_url().to_string())
        }
    }
}

/// Sends one request; a non-2xx answer becomes a [`CallError`] carrying the vendor's own message.
pub async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, CallError> {
    let response = request.send().await.map_err(CallError::from_transport)?;
    let status = response.status();
    if status.is_success() || status == reqwest::StatusCode::NOT_MODIFIED {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let message = vendor_message(&body).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string()
    });
    Err(match status.as_u16() {
        429 => CallError::Throttled {
            retry_after,
            message,
        },
        401 => CallError::Unauthorized(message),
        403 => CallError::Forbidden(message),
        404 => CallError::NotFound(message),
        412 => CallError::PreconditionFailed(message),
        s @ 500..=599 => CallError::Server {
            status: s,
            retry_after,
            message,
        },
        s => CallError::Rejected { status: s, message },
    })
}

/// Reads a JSON body, or says why it could not.
pub async fn json(response: reqwest::Response) -> Result<Value, CallError> {
    let body = response.bytes().await.map_err(CallError::from_transport)?;
    serde_json::from_slice(&body).map_err(|e| CallError::Garbled(format!("not JSON ({e})")))
}

/// `Retry-After` in seconds (both vendors send seconds; an HTTP date is not used by them).
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

/// The human message in the error shapes we meet: Dataverse `{"error":{"code","message"}}`, Partner
/// Center `{"code","message","details"?}`, Salesforce `[{"message","errorCode"}]`.
fn vendor_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let one = |v: &Value| -> Option<String> {
        let message = v.get("message")?.as_str()?.to_string();
        let details: Vec<&str> = v
            .get("details")
            .and_then(Value::as_array)
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.get("message").and_then(Value::as_str).or(x.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        Some(if details.is_empty() {
            message
        } else {
            format!("{message} ({})", details.join("; "))
        })
    };
    v.get("error")
        .and_then(one)
        .or_else(|| one(&v))
        .or_else(|| v.as_array().and_then(|a| a.first()).and_then(one))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_messages_are_found_in_each_shape() {
        assert_eq!(
            vendor_message(
                r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded"}}"#
            ),
            Some("Number of requests exceeded".into())
        );
        assert_eq!(
            vendor_message(
                r#"{"code":"InvalidRequest","message":"bad","details":[{"message":"a"},"b"]}"#
            ),
            Some("bad (a; b)".into())
        );
        assert_eq!(
            vendor_message(r#"[{"message":"Session expired","errorCode":"INVALID_SESSION_ID"}]"#),
            Some("Session expired".into())
        );
        assert_eq!(vendor_message("<html>"), None);
    }

    #[test]
    fn transient_failures_are_the_retryable_ones() {
        assert!(
            CallError::Throttled {
                retry_after: Some(Duration::from_secs(2)),
                message: String::new()
            }
            .is_transient()
        );
        assert!(CallError::Network("x".into()).is_transient());
        assert!(!CallError::Forbidden("x".into()).is_transient());
        assert!(!CallError::PreconditionFailed("x".into()).is_transient());
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    }
}
