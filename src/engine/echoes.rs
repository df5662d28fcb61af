//! Partner Center announces every change of a referral with a webhook event, cosell's own writes
//! included. Each write's answer carries the referral's new `updatedDateTime`, and the event it causes
//! carries the same time as `ResourceChangeUtcDate`: kept here, it tells cosell's echo from anyone
//! else's change without reading the referral (a Partner Center call saved per write).
//!
//! Microsoft does not document that the two times are equal (partner-center.md §2.3 leaves it open).
//! When they are not, no event is taken for an echo and the referral is read, as for any change: the
//! saving is lost, never a change.

use super::context::{RunContext, StepError};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How long an event waits for a write of this instance that may be its cause. Partner Center
/// announces a change before its answer reaches cosell, so the event can be first; a write takes
/// milliseconds, and one that takes longer only costs the read it would have spared.
const WAIT_FOR_WRITE: Duration = Duration::from_secs(2);

/// The writes to Partner Center this instance has under way: to referrals by id, and creates (whose
/// referral has no id before the answer).
#[derive(Debug)]
pub(crate) struct InFlight {
    writes: Mutex<Writes>,
    done: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Writes {
    updates: HashMap<String, usize>,
    creates: usize,
}

impl Default for InFlight {
    fn default() -> InFlight {
        InFlight {
            writes: Mutex::default(),
            done: tokio::sync::watch::channel(0).0,
        }
    }
}

/// A write under way, until dropped (after its answer was remembered, or it failed).
pub(super) struct Writing<'a> {
    in_flight: &'a InFlight,
    referral_id: Option<String>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Writes> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A write to referral `referral_id`, or a create (None), begins.
    pub(super) fn begin(&self, referral_id: Option<&str>) -> Writing<'_> {
        let mut writes = self.lock();
        match referral_id {
            Some(id) => *writes.updates.entry(id.to_string()).or_default() += 1,
            None => writes.creates += 1,
        }
        Writing {
            in_flight: self,
            referral_id: referral_id.map(str::to_string),
        }
    }

    /// Whether a write that may have caused an event about `referral_id` is under way.
    fn may_cause(&self, referral_id: &str, created: bool) -> bool {
        let writes = self.lock();
        writes.updates.contains_key(referral_id) || (created && writes.creates > 0)
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        {
            let mut writes = self.in_flight.lock();
            match &self.referral_id {
                Some(id) => {
                    if let Some(n) = writes.updates.get_mut(id) {
                        *n -= 1;
                        if *n == 0 {
                            writes.updates.remove(id);
                        }
                    }
                }
                None => writes.creates = writes.creates.saturating_sub(1),
            }
        }
        self.in_flight.done.send_modify(|n| *n += 1);
    }
}

/// Remembers the write whose answer is `referral` (as Partner Center returned it).
pub(super) async fn remember(ctx: &RunContext<'_>, referral: &Value) -> Result<(), StepError> {
    let (Some(id), Some(changed)) = (
        referral["id"].as_str(),
        referral["updatedDateTime"].as_str().and_then(parse),
    ) else {
        // An answer without the time: its event will be read like any other.
        return Ok(());
    };
    ctx.engine()
        .store
        .record_own_write(id, changed, OffsetDateTime::now_utc())
        .await
        .map_err(StepError::store)
}

/// Whether the event `event` about `referral_id` that changed it at `changed_at` announces cosell's
/// own write. While a write of this instance that may be its cause is under way, waits for it (a
/// little).
pub(super) async fn is_own(
    ctx: &RunContext<'_>,
    event: &str,
    referral_id: &str,
    changed_at: &str,
) -> Result<bool, StepError> {
    let Some(changed) = parse(changed_at) else {
        return Ok(false);
    };
    let engine = ctx.engine();
    let in_flight = &engine.in_flight;
    let mut done = in_flight.done.subscribe();
    let created = event == "referral-created";
    let until = tokio::time::Instant::now() + WAIT_FOR_WRITE;
    loop {
        if engine
            .store
            .take_own_write(referral_id, changed)
            .await
            .map_err(StepError::store)?
        {
            return Ok(true);
        }
        if !in_flight.may_cause(referral_id, created) {
            return Ok(false);
        }
        match tokio::time::timeout_at(until, done.changed()).await {
            Ok(Ok(())) => {}
            _ => return Ok(false),
        }
    }
}

fn parse(at: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(at, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::parse;
    use time::macros::datetime;

    #[test]
    fn both_ways_of_writing_the_time_read_the_same() {
        assert_eq!(
            parse("2018-02-17T00:05:39.5485487+00:00"),
            parse("2018-02-17T00:05:39.5485487Z")
        );
        assert_eq!(
            parse("2018-02-17T00:05:39.548548700Z"),
            Some(datetime!(2018-02-17 00:05:39.5485487 UTC))
        );
        assert_eq!(parse("t"), None);
    }
}
