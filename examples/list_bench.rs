//! How fast the Runs and Audit lists answer at volume: seeds a fresh database with 100,000 runs and
//! 100,000 audit events (SQLite in the temp directory, or a new database on the PostgreSQL server named
//! by TEST_DATABASE_URL), then times every query those pages make, first page and deep pages, with each
//! filter. Prints the figures; it asserts nothing (timings are not tests).
//!
//! Run with `scripts/bench` (both databases), or:
//! `cargo run --release --features test-support --example list_bench -- [ROWS]`

use cosell::domain::flows::Flow;
use cosell::domain::runs::RunStatus;
use cosell::store::test_support::{TestDatabase, volume};
use cosell::store::{AuditFilter, OpportunityCursor, RunFilter, Store};
use std::time::{Duration, Instant};

const ITERATIONS: usize = 25;
const PAGE: i64 = 51; // the pages ask for one more row than they show, to know if there is another page

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ROWS is a number"))
        .unwrap_or(100_000);
    let db = TestDatabase::new().await;
    let store = Store::connect(db.url()).await.expect("database");
    println!(
        "list_bench: {rows} runs and {rows} audit events on {:?}",
        store.backend()
    );

    let seeding = Instant::now();
    let volume = volume::seed_runs_and_audit(&store, rows).await;
    let (start, step) = (volume.start, volume.step);
    println!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());

    let newest = store
        .list_runs(&RunFilter::default(), None, 1)
        .await
        .unwrap()[0]
        .id;
    let middle = newest - rows as i64 / 2;
    let mid_time = start + step * (rows / 2) as f64;
    let cases: Vec<(&str, RunFilter, Option<i64>)> = vec![
        ("runs: first page", RunFilter::default(), None),
        (
            "runs: a page halfway down (keyset)",
            RunFilter::default(),
            Some(middle),
        ),
        (
            "runs: failed",
            RunFilter {
                status: Some(RunStatus::Failed),
                ..Default::default()
            },
            None,
        ),
        (
            "runs: failed, halfway down",
            RunFilter {
                status: Some(RunStatus::Failed),
                ..Default::default()
            },
            Some(middle),
        ),
        (
            "runs: rare flow (registration)",
            RunFilter {
                flow: Some(Flow::WebhookRegistration),
                ..Default::default()
            },
            None,
        ),
        (
            "runs: one record",
            RunFilter {
                record_id: Some(format!("ref-{}", rows / 10)),
                ..Default::default()
            },
            None,
        ),
        (
            "runs: one hour, two weeks ago",
            RunFilter {
                since: Some(mid_time),
                until: Some(mid_time + time::Duration::hours(1)),
                ..Default::default()
            },
            None,
        ),
        (
            "runs: flow + failed + since",
            RunFilter {
                flow: Some(Flow::PartnerCenterToCrm),
                status: Some(RunStatus::Failed),
                since: Some(mid_time),
                ..Default::default()
            },
            None,
        ),
    ];
    println!(
        "{:<40} {:>10} {:>10} {:>6}",
        "query", "median ms", "max ms", "rows"
    );
    for (name, filter, before) in &cases {
        let (times, n) = measure(|| async {
            store
                .list_runs(filter, *before, PAGE)
                .await
                .expect("list runs")
                .len()
        })
        .await;
        report(name, &times, n);
    }
    let newest_event = store
        .list_audit(&AuditFilter::default(), None, 1)
        .await
        .unwrap()[0]
        .id;
    let audit_cases: Vec<(&str, AuditFilter, Option<i64>)> = vec![
        ("audit: first page", AuditFilter::default(), None),
        (
            "audit: a page halfway down (keyset)",
            AuditFilter::default(),
            Some(newest_event - rows as i64 / 2),
        ),
        (
            "audit: one record",
            AuditFilter::record(format!("opp-{}", rows / 10)),
            None,
        ),
    ];
    for (name, filter, before) in &audit_cases {
        let (times, n) = measure(|| async {
            store
                .list_audit(filter, *before, PAGE)
                .await
                .expect("list audit")
                .len()
        })
        .await;
        report(name, &times, n);
    }

    // The Opportunities page: by name, a page far down, and each kind of search.
    let seeding = Instant::now();
    let mirror = volume::seed_mirror(&store, rows, start).await;
    println!(
        "seeded {rows} opportunities in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let halfway = store
        .list_opportunities(None, None, (rows / 2) as i64)
        .await
        .unwrap()
        .last()
        .map(|o| (o.seen.name.clone(), o.seen.crm_id.clone()));
    let by_id = mirror[rows / 3].crm_id.clone();
    let opportunity_cases: Vec<(&str, Option<String>, Option<OpportunityCursor>)> = vec![
        ("opportunities: first page", None, None),
        ("opportunities: a page halfway down (keyset)", None, halfway),
        ("opportunities: search by CRM id", Some(by_id), None),
        (
            "opportunities: search by referral id",
            Some(format!("ref-{}", rows / 3 * 3)),
            None,
        ),
        (
            "opportunities: search by part of the name",
            Some("tailspin deal 99".into()),
            None,
        ),
    ];
    for (name, search, after) in &opportunity_cases {
        let (times, n) = measure(|| async {
            store
                .list_opportunities(search.as_deref(), after.as_ref(), PAGE)
                .await
                .expect("list opportunities")
                .len()
        })
        .await;
        report(name, &times, n);
    }
}

/// Sorted timings of `f`, and the rows it returned.
async fn measure<F, Fut>(f: F) -> (Vec<Duration>, usize)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    // Warm the caches: the figures are for a page an admin opens, not the first query after boot.
    let rows = f().await;
    let mut times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    times.sort();
    (times, rows)
}

fn report(name: &str, times: &[Duration], rows: usize) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<40} {:>10.2} {:>10.2} {rows:>6}",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    );
}
