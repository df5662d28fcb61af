//! The request journal: every request that reaches an emulated API (never `/_control/…`), with the
//! headers that matter, the status it was answered with and the fault rule applied to it, if any.
//!
//! Bodies are not kept unless asked for ([`Journal::keep_bodies`], for a benchmark that replays the
//! calls), nor is the `Authorization` header (only whether there was one). The journal
//! holds the last [`Journal::CAPACITY`] entries, the oldest dropped first. Entries are numbered in the
//! order their answers were made (`seq`, from 1, never reused, not even after [`Journal::clear`]), so
//! [`JournalFilter::since`] with the last `seq` a test saw gives exactly what was answered after it.
//! An entry is recorded before its answer is sent: once a client has a status, the entry is there.

use crate::clock::Clock;
use crate::faults::FaultTag;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// The emulated API a request was meant for, decided from its path the way the router splits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `/{tenant}/v2.0/…`, `/{tenant}/discovery/…`, `/{tenant}/oauth2/…`
    Entra,
    /// `/v1.0/engagements/…`, `/v1.0/referrals`, `/engagements/v1/…`, `/webhooks/v1/…`, `/cert/…`
    PartnerCenter,
    /// `/api/data/…`
    Dataverse,
    /// `/services/…`, `/id/…`
    Salesforce,
    /// A path no emulator serves (answered 404): a client calling a wrong URL shows up here.
    Unknown,
}

impl Api {
    pub fn of_path(path: &str) -> Api {
        let starts = |prefixes: &[&str]| prefixes.iter().any(|p| path.starts_with(p));
        if starts(&["/api/data/"]) {
            Api::Dataverse
        } else if starts(&["/services/", "/id/"]) || path == "/services" {
            Api::Salesforce
        } else if starts(&[
            "/v1.0/engagements/",
            "/v1.0/referrals",
            "/engagements/v1/",
            "/webhooks/v1/",
            "/cert/",
        ]) || path == "/v1.0/engagements"
        {
            Api::PartnerCenter
        } else if matches!(
            path.split('/').nth(2),
            Some("v2.0" | "discovery" | "oauth2")
        ) {
            Api::Entra
        } else {
            Api::Unknown
        }
    }
}

/// One request to an emulated API and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// 1, 2, …: the order the answers were made in.
    pub seq: u64,
    /// When the request arrived, by the emulators' clock (which `/_control/clock/advance` moves).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub api: Api,
    pub method: String,
    /// As sent (percent-encoded), without the query string.
    pub path: String,
    /// The raw query string, without the `?`.
    pub query: Option<String>,
    pub if_match: Option<String>,
    pub prefer: Option<String>,
    pub ms_request_id: Option<String>,
    pub ms_correlation_id: Option<String>,
    /// Whether an `Authorization` header was sent (its value is never kept).
    pub authorization: bool,
    /// The status answered; `None` when a `reset` fault dropped the connection instead.
    pub status: Option<u16>,
    /// The kind of the fault rule applied to this request, if one was.
    pub fault: Option<FaultTag>,
    /// The request body, only while [`Journal::keep_bodies`] is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// Which entries to read; every field left out matches everything. As a query string:
/// `?api=partner_center&method=POST&path_contains=/referrals&since=41`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalFilter {
    pub api: Option<Api>,
    /// Compared without regard to case.
    pub method: Option<String>,
    pub path_contains: Option<String>,
    /// Only entries with a `seq` greater than this.
    pub since: Option<u64>,
    /// Only entries a fault rule was applied to (`true`) or not (`false`).
    pub faulted: Option<bool>,
}

impl JournalFilter {
    pub fn api(mut self, api: Api) -> JournalFilter {
        self.api = Some(api);
        self
    }

    pub fn method(mut self, method: impl Into<String>) -> JournalFilter {
        self.method = Some(method.into());
        self
    }

    pub fn path_contains(mut self, text: impl Into<String>) -> JournalFilter {
        self.path_contains = Some(text.into());
        self
    }

    pub fn since(mut self, seq: u64) -> JournalFilter {
        self.since = Some(seq);
        self
    }

    pub fn faulted(mut self, faulted: bool) -> JournalFilter {
        self.faulted = Some(faulted);
        self
    }

    pub fn matches(&self, e: &JournalEntry) -> bool {
        self.api.is_none_or(|a| a == e.api)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&e.method))
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| e.path.contains(p))
            && self.since.is_none_or(|s| e.seq > s)
            && self.faulted.is_none_or(|f| f == e.fault.is_some())
    }
}

#[derive(Debug, Default)]
struct Entries {
    entries: VecDeque<JournalEntry>,
    last_seq: u64,
}

/// The journal of every emulated API (a cheap handle: clones share it).
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Mutex<Entries>>,
    clock: Clock,
    /// Woken at each new entry, for [`Journal::wait_for`].
    added: Arc<tokio::sync::Notify>,
    bodies: Arc<std::sync::atomic::AtomicBool>,
}

impl Journal {
    /// How many entries are kept; the oldest goes when a new one would exceed it.
    pub const CAPACITY: usize = 100_000;

    pub fn new(clock: Clock) -> Journal {
        Journal {
            inner: Arc::default(),
            clock,
            added: Arc::default(),
            bodies: Arc::default(),
        }
    }

    /// Keeps the bodies of the requests journaled from now on (off by default: they cost memory).
    pub fn keep_bodies(&self, on: bool) {
        self.bodies.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The entries `filter` matches, oldest first.
    pub fn entries(&self, filter: &JournalFilter) -> Vec<JournalEntry> {
        let inner = self.lock();
        let from = filter
            .since
            .map_or(0, |s| inner.entries.partition_point(|e| e.seq <= s));
        inner
            .entries
            .range(from..)
            .filter(|e| filter.matches(e))
            .cloned()
            .collect()
    }

    /// The entries `filter` matches as soon as there is one, or none once `timeout` has passed: for a
    /// test that waits for a call which is journaled when it ends (a lost answer, after the client gave up).
    pub async fn wait_for(&self, filter: &JournalFilter, timeout: Duration) -> Vec<JournalEntry> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let woken = self.added.notified();
            tokio::pin!(woken);
            // Registered before the read, so an entry pushed in between still wakes this waiter.
            woken.as_mut().enable();
            let found = self.entries(filter);
            if !found.is_empty() {
                return found;
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return self.entries(filter);
            }
        }
    }

    /// Every entry kept, oldest first.
    pub fn all(&self) -> Vec<JournalEntry> {
        self.entries(&JournalFilter::default())
    }

    /// The `seq` of the newest entry ever recorded (0 before the first): pass it to
    /// [`JournalFilter::since`] to see only what comes after now.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Forgets every entry; numbering goes on where it was.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, mut entry: JournalEntry) {
        let mut inner = self.lock();
        inner.last_seq += 1;
        entry.seq = inner.last_seq;
        if inner.entries.len() >= Self::CAPACITY {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry);
        drop(inner);
        self.added.notify_waiters();
    }
}

/// The value(s) of a header, joined as a list; `None` when absent.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// The middleware, outermost around the emulated APIs (outside the fault injection, so it sees the
/// answer a fault rule made).
/// Where the fault layer says which rule it applied, for an entry whose answer never comes (the client
/// gave up, and the server dropped the call, while a fault held the answer back).
#[derive(Clone, Default)]
pub(crate) struct FaultSlot(Arc<std::sync::OnceLock<FaultTag>>);

impl FaultSlot {
    pub(crate) fn set(&self, tag: FaultTag) {
        let _ = self.0.set(tag);
    }
}

/// An entry journaled when its call ends, or, if the call is dropped before an answer, when it is
/// dropped: with no status and the fault that held it.
struct Pending {
    journal: Journal,
    entry: Option<JournalEntry>,
    slot: FaultSlot,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.fault = self.slot.0.get().copied();
            self.journal.push(entry);
        }
    }
}

pub async fn record(State(journal): State<Journal>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/_control" || path.starts_with("/_control/") {
        return next.run(request).await;
    }
    let body = if journal.bodies.load(std::sync::atomic::Ordering::Relaxed) {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, 64 << 20)
            .await
            .unwrap_or_default();
        let kept = (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned());
        request = Request::from_parts(parts, axum::body::Body::from(bytes));
        kept
    } else {
        None
    };
    let path = request.uri().path();
    let headers = request.headers();
    let entry = JournalEntry {
        seq: 0,
        at: journal.clock.now(),
        api: Api::of_path(path),
        method: request.method().as_str().to_string(),
        path: path.to_string(),
        query: request.uri().query().map(str::to_string),
        if_match: header(headers, "if-match"),
        prefer: header(headers, "prefer"),
        ms_request_id: header(headers, "ms-requestid"),
        ms_correlation_id: header(headers, "ms-correlationid"),
        authorization: headers.contains_key(axum::http::header::AUTHORIZATION),
        status: None,
        fault: None,
        body,
    };
    let slot = FaultSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut pending = Pending {
        journal,
        entry: Some(entry),
        slot,
    };
    let response = next.run(request).await;
    let mut entry = pending.entry.take().expect("taken once");
    entry.fault = response.extensions().get::<FaultTag>().copied();
    if !matches!(entry.fault, Some(FaultTag::Reset | FaultTag::AnswerLost)) {
        entry.status = Some(response.status().as_u16());
    }
    pending.journal.push(entry);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_told_apart_as_the_router_does() {
        for (path, api) in [
            (
                "/00000000-0000-0000-0000-000000000001/oauth2/v2.0/token",
                Api::Entra,
            ),
            ("/common/v2.0/.well-known/openid-configuration", Api::Entra),
            ("/contoso.onmicrosoft.com/discovery/v2.0/keys", Api::Entra),
            ("/v1.0/engagements/referrals/abc", Api::PartnerCenter),
            ("/v1.0/referrals", Api::PartnerCenter),
            ("/engagements/v1/referrals/abc", Api::PartnerCenter),
            ("/webhooks/v1/registration", Api::PartnerCenter),
            ("/api/data/v9.2/opportunities(1)", Api::Dataverse),
            ("/services/oauth2/token", Api::Salesforce),
            ("/services/data/v62.0/query", Api::Salesforce),
            ("/id/00D/005", Api::Salesforce),
            ("/favicon.ico", Api::Unknown),
            ("/v1.0/engagement/referrals", Api::Unknown),
        ] {
            assert_eq!(Api::of_path(path), api, "{path}");
        }
    }

    fn entry(method: &str, path: &str) -> JournalEntry {
        JournalEntry {
            seq: 0,
            at: OffsetDateTime::UNIX_EPOCH,
            api: Api::of_path(path),
            method: method.into(),
            path: path.into(),
            query: None,
            if_match: None,
            prefer: None,
            ms_request_id: None,
            ms_correlation_id: None,
            authorization: false,
            status: Some(200),
            fault: None,
            body: None,
        }
    }

    #[test]
    fn the_oldest_entries_go_first_and_numbering_survives_a_clear() {
        let journal = Journal::new(Clock::default());
        for _ in 0..Journal::CAPACITY + 2 {
            journal.push(entry("GET", "/services/data/v62.0/limits"));
        }
        let all = journal.all();
        assert_eq!(all.len(), Journal::CAPACITY);
        assert_eq!(all[0].seq, 3);
        assert_eq!(journal.last_seq(), Journal::CAPACITY as u64 + 2);
        let since = journal.entries(&JournalFilter::default().since(journal.last_seq() - 1));
        assert_eq!(since.len(), 1);
        journal.clear();
        assert!(journal.all().is_empty());
        journal.push(entry("POST", "/v1.0/engagements/referrals"));
        assert_eq!(journal.all()[0].seq, Journal::CAPACITY as u64 + 3);
    }
}
