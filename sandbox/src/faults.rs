//! Fault injection shared by every emulator: rules matched by method and path, each applying to the next
//! N matching calls (or, with `nth`, to the Nth matching call and the N-1… after it).
//!
//! What a rule does is its [`FaultKind`]:
//! - `delay` — the emulator answers, `delay_ms` late (latency, a client's time-out);
//! - `status` — the answer is replaced by a status, an optional JSON body and `Retry-After` (5xx, 429 bursts);
//! - `reset` — the connection is dropped without an HTTP answer (the emulator never saw the call);
//! - `answer_lost` — the emulator does the work, then, `delay_ms` later, the connection is dropped without
//!   its answer: a slow server whose client gave up, or a connection lost on the way back — the case where
//!   a retry must not do the work twice;
//! - `malformed_json` — the emulator's answer (it did the work) with its `application/json` body cut short,
//!   with its own status or the given one;
//! - `html_error_page` — a gateway's HTML error page, `502 Bad Gateway` unless told otherwise;
//! - `slow_body` — the emulator's answer with its headers at once, then the body stalls `delay_ms` midway.
//!
//! Every kind but `slow_body` and `answer_lost` waits `delay_ms` (when given) before answering. A replaced
//! answer (`status`, `reset`, `html_error_page`) never reaches the emulator.
//!
//! As JSON (`POST /_control/faults`) a rule is flat; `kind` may be left out, so the old shapes keep their
//! meaning: with a `status` the rule is a `status` rule, without one a `delay` rule.
//!
//! ```json
//! {"method":"GET","path_contains":"/referrals","status":429,"retry_after":2,"times":3}
//! {"path_contains":"/token","delay_ms":5000}
//! {"path_contains":"/referrals","kind":"reset"}
//! {"path_contains":"/referrals","kind":"malformed_json"}
//! {"path_contains":"/api/data/v9.2/","kind":"html_error_page","status":504}
//! {"path_contains":"/services/data/","kind":"slow_body","delay_ms":3000}
//! {"method":"POST","path_contains":"/referrals","status":503,"nth":2}
//! ```

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One fault rule. Build one with [`FaultRule::new`] and the builder methods, e.g.
/// `FaultRule::new("/referrals", FaultKind::status(503)).method("POST").nth(2)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "WireRule", into = "WireRule")]
pub struct FaultRule {
    /// `GET`, `POST`, …; any method when absent.
    pub method: Option<String>,
    /// The rule applies to requests whose path contains this text.
    pub path_contains: String,
    /// What the rule does to a call it applies to.
    pub kind: FaultKind,
    /// Wait this long before answering; for [`FaultKind::SlowBody`], how long the body stalls midway.
    pub delay_ms: Option<u64>,
    /// Let the first `nth - 1` matching calls through unchanged and apply from the `nth` on (counted from
    /// when the rule was added, whatever other rules did to those calls); from the first call when absent.
    /// Listed rules show what is left: a rule that has let one call through shows `nth` one lower.
    pub nth: Option<u32>,
    /// How many matching calls the rule applies to (from the `nth` on); the rule is gone after that.
    pub times: u32,
}

/// What a rule does to a call. Statuses are real HTTP statuses, so a bad one cannot be expressed.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// The emulator answers (after the rule's `delay_ms`): latency only.
    Delay,
    /// The answer is replaced by `status`, with `body` as JSON (an empty body when absent) and a
    /// `Retry-After` of `retry_after` seconds when given.
    Status {
        status: StatusCode,
        body: Option<serde_json::Value>,
        retry_after: Option<u64>,
    },
    /// The connection is dropped without an answer: the client sees a connection error, not a status.
    Reset,
    /// The emulator does the work; its answer never arrives (dropped after the rule's `delay_ms`).
    AnswerLost,
    /// The emulator's answer, with `status` instead of its own when given, `Content-Type:
    /// application/json` and a body that is JSON cut short.
    MalformedJson { status: Option<StatusCode> },
    /// A gateway's HTML error page (`Content-Type: text/html`), 502 by default, with a `Retry-After` of
    /// `retry_after` seconds when given.
    HtmlErrorPage {
        status: StatusCode,
        retry_after: Option<u64>,
    },
    /// The emulator's own answer, its headers and the first half of its body at once, the rest after
    /// the rule's `delay_ms`: a client's whole-call time-out fires mid-body.
    SlowBody,
}

/// The name of a [`FaultKind`]: the `kind` of a rule as JSON, and the `fault` of a journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTag {
    Delay,
    Status,
    Reset,
    AnswerLost,
    MalformedJson,
    HtmlErrorPage,
    SlowBody,
}

impl FaultKind {
    /// A replaced answer with `status` (which must be a valid HTTP status: panics otherwise), no body.
    pub fn status(status: u16) -> FaultKind {
        FaultKind::Status {
            status: StatusCode::from_u16(status).expect("an HTTP status"),
            body: None,
            retry_after: None,
        }
    }

    /// The emulator's answer with its JSON body cut short.
    pub fn malformed_json() -> FaultKind {
        FaultKind::MalformedJson { status: None }
    }

    /// A gateway's 502 HTML page.
    pub fn html_error_page() -> FaultKind {
        FaultKind::HtmlErrorPage {
            status: StatusCode::BAD_GATEWAY,
            retry_after: None,
        }
    }

    pub fn tag(&self) -> FaultTag {
        match self {
            FaultKind::Delay => FaultTag::Delay,
            FaultKind::Status { .. } => FaultTag::Status,
            FaultKind::Reset => FaultTag::Reset,
            FaultKind::AnswerLost => FaultTag::AnswerLost,
            FaultKind::MalformedJson { .. } => FaultTag::MalformedJson,
            FaultKind::HtmlErrorPage { .. } => FaultTag::HtmlErrorPage,
            FaultKind::SlowBody => FaultTag::SlowBody,
        }
    }
}

impl FaultRule {
    /// A rule for the next call of any method whose path contains `path_contains`.
    pub fn new(path_contains: impl Into<String>, kind: FaultKind) -> FaultRule {
        FaultRule {
            method: None,
            path_contains: path_contains.into(),
            kind,
            delay_ms: None,
            nth: None,
            times: 1,
        }
    }

    pub fn method(mut self, method: impl Into<String>) -> FaultRule {
        self.method = Some(method.into());
        self
    }

    pub fn delay_ms(mut self, ms: u64) -> FaultRule {
        self.delay_ms = Some(ms);
        self
    }

    pub fn nth(mut self, nth: u32) -> FaultRule {
        self.nth = Some(nth);
        self
    }

    pub fn times(mut self, times: u32) -> FaultRule {
        self.times = times;
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.times > 0
            && path.contains(&self.path_contains)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }
}

/// A rule as JSON: flat, `kind` optional (see the module documentation).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    path_contains: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<FaultTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nth: Option<u32>,
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

impl TryFrom<WireRule> for FaultRule {
    type Error = String;

    fn try_from(w: WireRule) -> Result<FaultRule, String> {
        let tag = w.kind.unwrap_or(if w.status.is_some() {
            FaultTag::Status
        } else {
            FaultTag::Delay
        });
        let name = serde_json::to_value(tag).unwrap_or_default();
        let refuse = |field: &str| Err(format!("a {name} fault rule takes no `{field}`"));
        let status = |default: Option<StatusCode>| match (w.status, default) {
            (Some(s), _) => {
                StatusCode::from_u16(s).map_err(|_| format!("{s} is not an HTTP status"))
            }
            (None, Some(d)) => Ok(d),
            (None, None) => Err(format!("a {name} fault rule needs a `status`")),
        };
        if w.body.is_some() && tag != FaultTag::Status {
            return refuse("body");
        }
        if w.retry_after.is_some() && !matches!(tag, FaultTag::Status | FaultTag::HtmlErrorPage) {
            return refuse("retry_after");
        }
        if w.status.is_some()
            && matches!(
                tag,
                FaultTag::Delay | FaultTag::Reset | FaultTag::AnswerLost | FaultTag::SlowBody
            )
        {
            return refuse("status");
        }
        let kind = match tag {
            FaultTag::Delay => FaultKind::Delay,
            FaultTag::Status => FaultKind::Status {
                status: status(None)?,
                body: w.body,
                retry_after: w.retry_after,
            },
            FaultTag::Reset => FaultKind::Reset,
            FaultTag::AnswerLost => FaultKind::AnswerLost,
            FaultTag::MalformedJson => FaultKind::MalformedJson {
                status: w.status.map(|_| status(None)).transpose()?,
            },
            FaultTag::HtmlErrorPage => FaultKind::HtmlErrorPage {
                status: status(Some(StatusCode::BAD_GATEWAY))?,
                retry_after: w.retry_after,
            },
            FaultTag::SlowBody if w.delay_ms.is_none() => {
                return Err("a slow_body fault rule needs a `delay_ms`".into());
            }
            FaultTag::SlowBody => FaultKind::SlowBody,
        };
        if w.nth == Some(0) {
            return Err("`nth` counts from 1".into());
        }
        if w.times == 0 {
            return Err("`times` must be at least 1".into());
        }
        Ok(FaultRule {
            method: w.method,
            path_contains: w.path_contains,
            kind,
            delay_ms: w.delay_ms,
            nth: w.nth,
            times: w.times,
        })
    }
}

impl From<FaultRule> for WireRule {
    fn from(r: FaultRule) -> WireRule {
        let tag = r.kind.tag();
        let (status, body, retry_after) = match r.kind {
            FaultKind::Status {
                status,
                body,
                retry_after,
            } => (Some(status), body, retry_after),
            FaultKind::MalformedJson { status } => (status, None, None),
            FaultKind::HtmlErrorPage {
                status,
                retry_after,
            } => (Some(status), None, retry_after),
            FaultKind::Delay | FaultKind::Reset | FaultKind::AnswerLost | FaultKind::SlowBody => {
                (None, None, None)
            }
        };
        WireRule {
            method: r.method,
            path_contains: r.path_contains,
            kind: Some(tag),
            status: status.map(|s| s.as_u16()),
            body,
            retry_after,
            delay_ms: r.delay_ms,
            nth: r.nth,
            times: r.times,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
    /// Woken when a rule is used up, for tests that wait for a fault to be met.
    used_up: Arc<tokio::sync::Notify>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.lock().push(rule);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The rules in force, with what is left of their `nth` and `times`.
    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    /// Waits until every rule has been used up (or `timeout` passes: `false`). What a test waits for
    /// when it must act while a held call is in flight: the request has reached the emulator.
    pub async fn wait_until_used(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let woken = self.used_up.notified();
            tokio::pin!(woken);
            // Registered before the check, so a rule used up in between still wakes this waiter.
            woken.as_mut().enable();
            if self.lock().is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return self.lock().is_empty();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts this request against every matching rule still waiting for its `nth` call, and takes one
    /// use of the first matching rule that is due.
    fn take(&self, method: &str, path: &str) -> Option<FaultRule> {
        let mut rules = self.lock();
        let mut due = None;
        for (index, rule) in rules.iter_mut().enumerate() {
            if !rule.matches(method, path) {
                continue;
            }
            match rule.nth {
                Some(n) if n > 1 => rule.nth = Some(n - 1).filter(|&n| n > 1),
                _ => {
                    due.get_or_insert(index);
                }
            }
        }
        let index = due?;
        rules[index].times -= 1;
        let rule = rules[index].clone();
        if rules[index].times == 0 {
            rules.remove(index);
            self.used_up.notify_waiters();
        }
        Some(rule)
    }
}

/// A truncated JSON document, as a proxy that cut the answer short would deliver it.
const MALFORMED_JSON: &str = r#"{"value":[{"id":"5f3e0c1a-0000-4000-8000-00000000000"#;

pub async fn inject(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let Some(rule) = faults.take(request.method().as_str(), request.uri().path()) else {
        return next.run(request).await;
    };
    if let Some(slot) = request.extensions().get::<crate::journal::FaultSlot>() {
        slot.set(rule.kind.tag());
    }
    let delay = rule.delay_ms.map(Duration::from_millis);
    if let Some(delay) = delay
        && !matches!(rule.kind, FaultKind::SlowBody | FaultKind::AnswerLost)
    {
        tokio::time::sleep(delay).await;
    }
    let tag = rule.kind.tag();
    let mut response = match rule.kind {
        FaultKind::Delay => next.run(request).await,
        FaultKind::Status {
            status,
            body,
            retry_after,
        } => with_retry_after(
            match body {
                Some(body) => (status, axum::Json(body)).into_response(),
                None => status.into_response(),
            },
            retry_after,
        ),
        FaultKind::Reset => reset(),
        FaultKind::AnswerLost => {
            let done = next.run(request).await;
            drop(done);
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            reset()
        }
        FaultKind::MalformedJson { status } => {
            // Its own status and headers (an `OData-EntityId`, say), its body cut short.
            let (mut parts, _) = next.run(request).await.into_parts();
            if let Some(status) = status {
                parts.status = status;
            }
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            Response::from_parts(parts, Body::from(MALFORMED_JSON))
        }
        FaultKind::HtmlErrorPage {
            status,
            retry_after,
        } => with_retry_after(gateway_page(status), retry_after),
        FaultKind::SlowBody => slow_body(next.run(request).await, delay.unwrap_or_default()).await,
    };
    response.extensions_mut().insert(tag);
    response
}

fn with_retry_after(mut response: Response, seconds: Option<u64>) -> Response {
    if let Some(seconds) = seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// An answer whose body fails before its first byte: hyper then drops the connection without writing
/// the (still buffered) status line and headers, so the client sees the connection close unanswered.
fn reset() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault injected: connection reset",
        ))
    });
    Response::new(Body::from_stream(failing))
}

/// The page a reverse proxy (nginx, as in front of many APIs) serves when the upstream fails.
fn gateway_page(status: StatusCode) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n\
         <hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
}

/// `response` with its headers and the first half of its body at once, the rest after `stall`.
async fn slow_body(response: Response, stall: Duration) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "slow_body fault: the emulator's body failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    // Streamed, the length comes from the chunks; a stale header would contradict them.
    parts.headers.remove(header::CONTENT_LENGTH);
    let half = bytes.len().div_ceil(2);
    let (first, rest) = (bytes.slice(..half), bytes.slice(half..));
    let chunks = futures_util::stream::once(async move { Ok::<_, Infallible>(first) }).chain(
        futures_util::stream::once(async move {
            tokio::time::sleep(stall).await;
            Ok(rest)
        }),
    );
    Response::from_parts(parts, Body::from_stream(chunks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: serde_json::Value) -> Result<FaultRule, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn the_old_shapes_keep_their_meaning() {
        let r = rule(json!({"method":"GET","path_contains":"/referrals","status":429,"retry_after":2,"times":3})).unwrap();
        assert_eq!(
            r,
            FaultRule {
                method: Some("GET".into()),
                path_contains: "/referrals".into(),
                kind: FaultKind::Status {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    body: None,
                    retry_after: Some(2)
                },
                delay_ms: None,
                nth: None,
                times: 3,
            }
        );
        let r = rule(json!({"path_contains":"/token","delay_ms":5000})).unwrap();
        assert_eq!(r, FaultRule::new("/token", FaultKind::Delay).delay_ms(5000));
    }

    #[test]
    fn each_kind_reads_and_writes_its_json() {
        for (v, expected) in [
            (
                json!({"path_contains":"/r","kind":"reset"}),
                FaultRule::new("/r", FaultKind::Reset),
            ),
            (
                json!({"path_contains":"/r","kind":"malformed_json"}),
                FaultRule::new("/r", FaultKind::malformed_json()),
            ),
            (
                json!({"path_contains":"/r","kind":"html_error_page","status":504,"retry_after":9}),
                FaultRule::new(
                    "/r",
                    FaultKind::HtmlErrorPage {
                        status: StatusCode::GATEWAY_TIMEOUT,
                        retry_after: Some(9),
                    },
                ),
            ),
            (
                json!({"path_contains":"/r","kind":"slow_body","delay_ms":300}),
                FaultRule::new("/r", FaultKind::SlowBody).delay_ms(300),
            ),
            (
                json!({"method":"POST","path_contains":"/r","status":503,"nth":2,"times":2}),
                FaultRule::new("/r", FaultKind::status(503))
                    .method("POST")
                    .nth(2)
                    .times(2),
            ),
        ] {
            let parsed = rule(v.clone()).unwrap();
            assert_eq!(parsed, expected, "{v}");
            let again: FaultRule =
                serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
            assert_eq!(again, expected, "written and read back: {v}");
        }
        assert_eq!(
            serde_json::to_value(FaultRule::new("/r", FaultKind::html_error_page())).unwrap(),
            json!({"path_contains":"/r","kind":"html_error_page","status":502,"times":1})
        );
    }

    #[test]
    fn contradictions_are_refused() {
        for v in [
            json!({"path_contains":"/r","kind":"reset","status":500}),
            json!({"path_contains":"/r","kind":"status"}),
            json!({"path_contains":"/r","kind":"slow_body"}),
            json!({"path_contains":"/r","kind":"malformed_json","body":{}}),
            json!({"path_contains":"/r","kind":"reset","retry_after":1}),
            json!({"path_contains":"/r","body":{"a":1}}),
            json!({"path_contains":"/r","status":1000}),
            json!({"path_contains":"/r","status":500,"nth":0}),
            json!({"path_contains":"/r","status":500,"times":0}),
            json!({"path_contains":"/r","status":500,"nht":2}),
            json!({"path_contains":"/r","kind":"teapot"}),
        ] {
            assert!(rule(v.clone()).is_err(), "{v} accepted");
        }
    }

    #[test]
    fn nth_counts_every_matching_call_then_times_runs_from_there() {
        let faults = Faults::default();
        faults.add(
            FaultRule::new("/referrals", FaultKind::status(503))
                .method("POST")
                .nth(3)
                .times(2),
        );
        let applied: Vec<bool> = (0..6)
            .map(|_| faults.take("POST", "/v1.0/engagements/referrals").is_some())
            .collect();
        assert_eq!(applied, [false, false, true, true, false, false]);
        assert!(faults.list().is_empty(), "spent rules are gone");

        // A call another rule faults still counts toward a waiting rule's nth.
        faults.add(FaultRule::new("/referrals", FaultKind::Reset));
        faults.add(FaultRule::new("/referrals", FaultKind::status(500)).nth(2));
        assert_eq!(
            faults.take("GET", "/referrals").map(|r| r.kind.tag()),
            Some(FaultTag::Reset)
        );
        assert_eq!(faults.list()[0].nth, None, "the second rule is now due");
        assert_eq!(
            faults.take("GET", "/referrals").map(|r| r.kind.tag()),
            Some(FaultTag::Status)
        );
        assert!(faults.take("GET", "/referrals").is_none());
    }
}
