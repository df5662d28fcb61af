//! Volume for benchmarks: a month of runs and audit events, and a CRM's worth of mirrored
//! opportunities, written in large transactions (`scripts/bench`, `scripts/bench-pages`).

use crate::domain::flows::Flow;
use crate::domain::opportunity::OpportunityState;
use crate::domain::runs::{Direction, RunStatus, RunTrigger};
use crate::store::{NewAuditEvent, NewRun, SeenOpportunity, Store};
use time::OffsetDateTime;

/// When the seeded month starts, and the time between two seeded runs.
pub struct Volume {
    pub start: OffsetDateTime,
    pub step: time::Duration,
}

/// `rows` runs and `rows` audit events over the last 30 days, oldest first: 2% failed, 1% skipped, five
/// runs per referral (`ref-N`), a webhook registration every 1,000.
pub async fn seed_runs_and_audit(store: &Store, rows: usize) -> Volume {
    // A month of traffic, oldest first: 2% failed, 1% skipped; 5 runs per referral; a registration
    // run every 1,000.
    let start = OffsetDateTime::now_utc() - time::Duration::days(30);
    let step = time::Duration::seconds(30 * 24 * 3600) / rows.max(1) as f64;
    let mut batch = Vec::with_capacity(10_000);
    for i in 0..rows {
        let (flow, record) = if i % 1000 == 999 {
            (Flow::WebhookRegistration, None)
        } else {
            (Flow::PartnerCenterToCrm, Some(format!("ref-{}", i / 5)))
        };
        let status = match i % 100 {
            7 | 57 => RunStatus::Failed,
            33 => RunStatus::Skipped,
            _ => RunStatus::Succeeded,
        };
        batch.push((
            NewRun {
                flow,
                trigger: RunTrigger::Webhook,
                input: crate::domain::runs::RunInput::referral(
                    record.as_deref().unwrap_or_default(),
                ),
                record_id: record,
                parent_run_id: None,
                resubmitted_from: None,
                settled: Some((status, format!("run {i}"))),
            },
            start + step * i as f64,
        ));
        if batch.len() == batch.capacity() {
            store.seed_runs(&batch).await.expect("seed runs");
            batch.clear();
        }
    }
    store.seed_runs(&batch).await.expect("seed runs");
    let mut events = Vec::with_capacity(10_000);
    for i in 0..rows {
        events.push((
            NewAuditEvent {
                direction: Some(Direction::ToCrm),
                ..NewAuditEvent::new(
                    crate::domain::runs::AuditAction::OpportunityUnchanged,
                    "opportunity",
                    &format!("opp-{}", i / 5),
                    format!("event {i}"),
                )
            },
            start + step * i as f64,
        ));
        if events.len() == events.capacity() {
            store.seed_audit(&events).await.expect("seed audit");
            events.clear();
        }
    }
    store.seed_audit(&events).await.expect("seed audit");
    Volume { start, step }
}

/// `rows` mirrored opportunities (a third of them synced and linked to `ref-N`), seen at `at`.
pub async fn seed_mirror(store: &Store, rows: usize, at: OffsetDateTime) -> Vec<SeenOpportunity> {
    let mut mirror = Vec::with_capacity(rows);
    for i in 0..rows {
        mirror.push(SeenOpportunity {
            crm_id: format!("{:08x}-0000-4000-8000-{:012x}", i, i),
            name: format!(
                "{} deal {i}",
                ["Contoso", "Fabrikam", "Litware", "Adatum", "Tailspin"][i % 5]
            ),
            referral_id: (i % 3 == 0).then(|| format!("ref-{i}")),
            referral_link: None,
            customer_id: Some(format!("acc-{}", i / 10)),
            sync: i % 3 == 0,
            state: OpportunityState::Open,
            version: Some(i.to_string()),
            solutions: None,
            fingerprint: None,
        });
    }
    for chunk in mirror.chunks(10_000) {
        store
            .seed_opportunities(chunk, at)
            .await
            .expect("seed opportunities");
    }
    mirror
}
