//! Fault injection shared by every emulator: rules matched by method and path, each applying to the next
//! N matching calls. A rule may delay the answer (latency, time-outs) and/or replace it with a status,
//! a body and a `Retry-After` header (5xx, 429 bursts).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRule {
    /// `GET`, `POST`, …; any method when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// The rule applies to requests whose path contains this text.
    pub path_contains: String,
    /// Answer with this status instead of the emulator's own answer.
    #[serde(default)]
    pub status: Option<u16>,
    /// JSON body of the replaced answer.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
    /// `Retry-After` seconds on the replaced answer.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// How many matching calls the rule applies to.
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<FaultRule>>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.lock().push(rule);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one use of the first rule matching this request.
    fn take(&self, method: &str, path: &str) -> Option<FaultRule> {
        let mut rules = self.lock();
        let index = rules.iter().position(|r| {
            r.times > 0
                && path.contains(&r.path_contains)
                && r.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        rules[index].times -= 1;
        let rule = rules[index].clone();
        if rules[index].times == 0 {
            rules.remove(index);
        }
        Some(rule)
    }
}

pub async fn inject(State(faults): State<Faults>, request: Request, next: Next) -> Response {
    let Some(rule) = faults.take(request.method().as_str(), request.uri().path()) else {
        return next.run(request).await;
    };
    if let Some(ms) = rule.delay_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let Some(status) = rule.status.and_then(|s| StatusCode::from_u16(s).ok()) else {
        return next.run(request).await;
    };
    let mut response = match rule.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    if let Some(seconds) = rule.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
