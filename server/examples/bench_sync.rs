//! `scripts/bench-sync`: how fast cosell syncs, and what each sync costs the outside world, measured
//! from outside. The sandbox runs in this process; cosell runs as its own process against it
//! (`--sandbox-url`), so its CPU time and memory are its own (read from /proc).
//!
//! For each store (SQLite, and PostgreSQL when given), both directions:
//! - latency of single syncs, one at a time: Partner Center → CRM from the seller sharing the referral
//!   to the CRM id back in Partner Center; CRM → Partner Center from the switch turned on in the CRM
//!   to the referral id back in the CRM (this one includes the wait for the next change-feed read);
//! - throughput of a burst shared at once, until every one is synced;
//! - API calls per sync per system, from the emulators' journal (not cosell's own count), the
//!   change-feed reads apart (they cost the same whatever changed);
//! - cosell's CPU seconds per 1,000 syncs, its resident memory idle and at the end;
//! - the engine overhead ratio: the burst's wall time divided by the wall time of sending exactly the
//!   calls cosell made during it (the journal, bodies included) straight at the emulators, with as many
//!   at once as cosell has workers: the floor no engine on this sandbox can beat.
//!
//! Prints a table and one JSON line per store; asserts nothing.

mod common;

use clap::Parser;
use common::*;
use cosell::store::Store;
use cosell_sandbox::Sandbox;
use cosell_sandbox::dataverse::columns as col;
use cosell_sandbox::journal::{Api, JournalEntry, JournalFilter};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(about = "End-to-end sync benchmark of cosell against the sandbox")]
struct Args {
    /// Referrals (and opportunities) synced at once in the burst of each direction.
    #[arg(long, default_value_t = 5000)]
    burst: usize,
    /// Single syncs timed one at a time, per direction.
    #[arg(long, default_value_t = 100)]
    singles: usize,
    /// cosell's sync workers (its default is 2).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// How often cosell reads the CRM's changes.
    #[arg(long, default_value_t = 200)]
    crm_poll_ms: u64,
    /// The cosell binary (a release build).
    #[arg(long, default_value = "target/release/cosell")]
    cosell: PathBuf,
    /// A PostgreSQL server URL allowed to create databases: measures there too.
    #[arg(long, env = "BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Where cosell's logs and the SQLite database go.
    #[arg(long, default_value = "target/bench-sync")]
    work_dir: PathBuf,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir).expect("work dir");
    let db = args.work_dir.join("bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let mut results = vec![measure(&args, "SQLite", &format!("sqlite://{}", db.display())).await];
    if let Some(admin) = &args.postgres {
        let (url, name) = create_postgres_database(admin).await;
        results.push(measure(&args, "PostgreSQL", &url).await);
        psql(admin, &format!("DROP DATABASE IF EXISTS {name}"));
    } else {
        println!("(no --postgres URL: SQLite only)");
    }
    println!();
    print_table(&results);
    for r in &results {
        println!("{}", r.json(&args));
    }
}

/// One direction's figures on one store.
#[derive(Debug, Default)]
struct Direction {
    latencies: Vec<Duration>,
    burst_wall: Duration,
    burst_cpu_s: f64,
    /// Per sync in the burst: (Partner Center, CRM, change-feed reads, Entra).
    calls: Calls,
    replay_wall: Duration,
    replay_failed: usize,
    /// The burst's calls by shape (method, path with ids left out, query option names), most first.
    shapes: Vec<(String, usize)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Calls {
    partner_center: f64,
    crm: f64,
    feed: f64,
    entra: f64,
}

#[derive(Debug, Default)]
struct Figures {
    store: String,
    to_crm: Direction,
    to_partner_center: Direction,
    rss_idle_mb: f64,
    rss_end_mb: f64,
    burst: usize,
}

impl Direction {
    fn percentile(&self, p: f64) -> f64 {
        let mut ms: Vec<f64> = self
            .latencies
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        if ms.is_empty() {
            return f64::NAN;
        }
        let i = ((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1;
        ms[i]
    }

    fn per_second(&self, n: usize) -> f64 {
        n as f64 / self.burst_wall.as_secs_f64()
    }

    fn overhead(&self) -> f64 {
        self.burst_wall.as_secs_f64() / self.replay_wall.as_secs_f64()
    }

    fn json(&self, n: usize) -> Value {
        json!({
            "latency_ms": { "p50": self.percentile(0.5), "p99": self.percentile(0.99), "n": self.latencies.len() },
            "burst": { "syncs": n, "wall_s": self.burst_wall.as_secs_f64(), "per_s": self.per_second(n) },
            "calls_per_sync": { "partner_center": self.calls.partner_center, "crm": self.calls.crm,
                                "change_feed": self.calls.feed, "entra": self.calls.entra },
            "cpu_s_per_1000": self.burst_cpu_s * 1000.0 / n as f64,
            "replay_wall_s": self.replay_wall.as_secs_f64(), "replay_failed": self.replay_failed,
            "engine_overhead_ratio": self.overhead(),
        })
    }
}

impl Figures {
    fn json(&self, args: &Args) -> Value {
        json!({
            "store": self.store, "workers": args.workers, "crm_poll_ms": args.crm_poll_ms,
            "partner_center_to_crm": self.to_crm.json(self.burst),
            "crm_to_partner_center": self.to_partner_center.json(self.burst),
            "rss_mb": { "idle": self.rss_idle_mb, "end": self.rss_end_mb },
        })
    }
}

fn print_table(results: &[Figures]) {
    println!(
        "{:<11} {:<18} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "store",
        "direction",
        "p50 ms",
        "p99 ms",
        "burst/s",
        "PC/sync",
        "CRM/sync",
        "feed/sync",
        "CPU s/1000",
        "overhead"
    );
    for r in results {
        for (name, d) in [
            ("Partner Center→CRM", &r.to_crm),
            ("CRM→Partner Center", &r.to_partner_center),
        ] {
            println!(
                "{:<11} {:<18} {:>8.1} {:>8.1} {:>9.1} {:>8.2} {:>8.2} {:>9.2} {:>10.2} {:>8.1}×",
                r.store,
                name,
                d.percentile(0.5),
                d.percentile(0.99),
                d.per_second(r.burst),
                d.calls.partner_center,
                d.calls.crm,
                d.calls.feed,
                d.burst_cpu_s * 1000.0 / r.burst as f64,
                d.overhead()
            );
        }
        println!(
            "{:<11} cosell's memory: {:.1} MB idle, {:.1} MB after both bursts",
            r.store, r.rss_idle_mb, r.rss_end_mb
        );
    }
    // Where the calls go: the same on every store, so the first one's.
    if let Some(r) = results.first() {
        for (name, d) in [
            ("Partner Center→CRM", &r.to_crm),
            ("CRM→Partner Center", &r.to_partner_center),
        ] {
            println!("\n{name}: calls per sync by shape");
            for (shape, n) in &d.shapes {
                println!("{:>8.2}  {shape}", *n as f64 / r.burst as f64);
            }
        }
    }
}

/// Counts calls by shape: the method, the path with record ids left out, the query's option names.
fn shapes(entries: &[JournalEntry]) -> Vec<(String, usize)> {
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for e in entries.iter().filter(|e| e.api != Api::Entra) {
        let path: String = e
            .path
            .split('/')
            .map(|segment| match segment.split_once('(') {
                Some((set, _)) => format!("{set}(…)"),
                None if segment.len() >= 20 => "…".to_string(),
                None => segment.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/");
        let options: Vec<&str> = e
            .query
            .as_deref()
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split('=').next())
            .filter(|name| !name.is_empty())
            .collect();
        let shape = if options.is_empty() {
            format!("{} {path}", e.method)
        } else {
            format!("{} {path}?{}", e.method, options.join("&"))
        };
        *counts.entry(shape).or_default() += 1;
    }
    let mut shapes: Vec<(String, usize)> = counts.into_iter().collect();
    shapes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    shapes
}

async fn measure(args: &Args, store_name: &str, database_url: &str) -> Figures {
    eprintln!("== {store_name}: starting");
    let world = Arc::new(
        Sandbox::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("sandbox"),
    );
    let workers = args.workers.to_string();
    let poll = args.crm_poll_ms.to_string();
    let mut cosell = Instance::start(
        &args.cosell,
        &args.work_dir,
        &format!("cosell-{}", store_name.to_lowercase()),
        &world.base_url(),
        database_url,
        &[
            "--workers",
            &workers,
            "--crm-poll-ms",
            &poll,
            "--retry-base-ms",
            "200",
            "--run-lease-ms",
            "30000",
        ],
    );
    cosell.healthy().await;
    make_ready(&world, &cosell.base).await;
    let store = Store::connect(database_url).await.expect("database");
    wait_for_first_poll(&store).await;
    let pid = cosell.child.id();
    let mut figures = Figures {
        store: store_name.into(),
        burst: args.burst,
        rss_idle_mb: rss_mb(pid),
        ..Default::default()
    };

    eprintln!("== {store_name}: {} single referrals", args.singles);
    for i in 0..args.singles {
        let started = Instant::now();
        let id = share(&world, &format!("Single {i}"), i);
        wait_until(|| written_back(&world, &id)).await;
        figures.to_crm.latencies.push(started.elapsed());
    }
    settle(&store).await;

    eprintln!("== {store_name}: {} single switches", args.singles);
    let singles = seed_opportunities(&world, args.singles);
    for id in &singles {
        let started = Instant::now();
        switch_on(&world, id);
        wait_until(|| linked(&world, id)).await;
        figures.to_partner_center.latencies.push(started.elapsed());
    }
    settle(&store).await;

    eprintln!("== {store_name}: a burst of {} referrals", args.burst);
    world.journal().keep_bodies(true);
    let since = world.journal().last_seq();
    let cpu = cpu_s(pid);
    let started = Instant::now();
    let shared: Vec<String> = (0..args.burst)
        .map(|i| share(&world, &format!("Burst {i}"), args.singles + i))
        .collect();
    wait_for_all(shared.clone(), |id| written_back(&world, id)).await;
    figures.to_crm.burst_wall = started.elapsed();
    settle(&store).await;
    figures.to_crm.burst_cpu_s = cpu_s(pid) - cpu;
    let made = world
        .journal()
        .entries(&JournalFilter::default().since(since));
    figures.to_crm.calls = per_sync(&made, args.burst);
    figures.to_crm.shapes = shapes(&made);

    eprintln!("== {store_name}: a burst of {} switches", args.burst);
    let opportunities =
        seed_opportunities(&world, args.burst + args.singles).split_off(args.singles);
    let since = world.journal().last_seq();
    let cpu = cpu_s(pid);
    let started = Instant::now();
    for id in &opportunities {
        switch_on(&world, id);
    }
    wait_for_all(opportunities.clone(), |id| linked(&world, id)).await;
    figures.to_partner_center.burst_wall = started.elapsed();
    settle(&store).await;
    figures.to_partner_center.burst_cpu_s = cpu_s(pid) - cpu;
    let switched = world
        .journal()
        .entries(&JournalFilter::default().since(since));
    figures.to_partner_center.calls = per_sync(&switched, args.burst);
    figures.to_partner_center.shapes = shapes(&switched);
    world.journal().keep_bodies(false);
    figures.rss_end_mb = rss_mb(pid);
    cosell.kill();

    eprintln!("== {store_name}: replaying cosell's calls at the emulators");
    let replayer = Replayer::new(&world).await;
    (figures.to_crm.replay_wall, figures.to_crm.replay_failed) =
        replayer.replay(&made, args.workers).await;
    (
        figures.to_partner_center.replay_wall,
        figures.to_partner_center.replay_failed,
    ) = replayer.replay(&switched, args.workers).await;
    figures
}

/// A Microsoft seller shares a referral with a new customer and a contact.
fn share(world: &Sandbox, name: &str, n: usize) -> String {
    let referral = world.partner_center().seller_creates(json!({
        "name": name,
        "customerProfile": {
            "name": format!("Bench customer {n}"),
            "address": { "postalCode": format!("{:05}", 10000 + n % 80000), "country": "US" },
            "team": [{ "firstName": "Ada", "lastName": "Ng", "email": format!("ada.{n}@bench.example") }]
        },
        "details": { "dealValue": 5000 + n, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
    }));
    referral["id"].as_str().expect("an id").to_string()
}

fn switch_on(world: &Sandbox, opportunity: &str) {
    world
        .dataverse()
        .update("opportunities", opportunity, json!({ (col::SYNC): true }))
        .expect("switch on");
}

fn written_back(world: &Sandbox, referral: &str) -> bool {
    world.partner_center().referral(referral).is_some_and(|r| {
        r["externalReferenceId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    })
}

fn linked(world: &Sandbox, opportunity: &str) -> bool {
    world
        .dataverse()
        .row("opportunities", opportunity)
        .is_some_and(|o| o[col::REFERRAL_ID].is_string())
}

/// Waits until `done` holds for every record. Every 20 ms it checks the pending ones in order until 32
/// of them are still pending (records are synced about in the order they were shared), and never
/// checks one again once it holds: the driver shares the two cores with cosell, and must not eat them.
async fn wait_for_all(mut pending: Vec<String>, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut still = 0;
        pending.retain(|id| {
            if still >= 32 {
                return true;
            }
            let pending = !done(id);
            still += usize::from(pending);
            pending
        });
        if pending.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "not synced within 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks `done` every millisecond (a benchmark's stopwatch, not a test's synchronisation) for at
/// most ten minutes.
async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(Instant::now() < deadline, "not synced within 10 minutes");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits until no run is queued or running (the echoes of the writes included).
async fn settle(store: &Store) {
    wait_until_async(|| nothing_pending(store)).await;
}

async fn wait_until_async<F: std::future::Future<Output = bool>>(mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done().await {
        assert!(Instant::now() < deadline, "not settled within 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_feed_read(e: &JournalEntry) -> bool {
    e.prefer
        .as_deref()
        .is_some_and(|p| p.contains("track-changes"))
        || e.query.as_deref().is_some_and(|q| q.contains("deltatoken"))
}

fn per_sync(entries: &[JournalEntry], syncs: usize) -> Calls {
    let n = syncs as f64;
    let count =
        |f: &dyn Fn(&JournalEntry) -> bool| entries.iter().filter(|e| f(e)).count() as f64 / n;
    Calls {
        partner_center: count(&|e| e.api == Api::PartnerCenter && !e.path.starts_with("/cert/")),
        crm: count(&|e| e.api == Api::Dataverse && !is_feed_read(e)),
        feed: count(&|e| e.api == Api::Dataverse && is_feed_read(e)),
        entra: count(&|e| e.api == Api::Entra),
    }
}

/// Sends journaled calls straight at the emulators, with tokens of its own.
struct Replayer {
    client: reqwest::Client,
    base: String,
    partner_center: String,
    dataverse: String,
}

impl Replayer {
    async fn new(world: &Sandbox) -> Replayer {
        let partner_center = cosell_sandbox::testing::access_token(
            world,
            "admin",
            "https://api.partner.microsoft.com/user_impersonation offline_access",
        )
        .await;
        let dataverse = cosell_sandbox::testing::access_token(
            world,
            "admin",
            "https://contoso-sandbox.crm.dynamics.com/user_impersonation offline_access",
        )
        .await;
        Replayer {
            client: cosell_sandbox::testing::client(world),
            base: world.base_url(),
            partner_center,
            dataverse,
        }
    }

    /// Replays the Partner Center and Dataverse calls of `entries` with `concurrency` at once, in
    /// their order; returns the wall time and how many were not answered 2xx. Conditions (`If-Match`)
    /// are left out: the records have moved on since, and a 412 would cost less than the write did.
    async fn replay(&self, entries: &[JournalEntry], concurrency: usize) -> (Duration, usize) {
        use futures::StreamExt;
        let calls: Vec<&JournalEntry> = entries
            .iter()
            .filter(|e| matches!(e.api, Api::PartnerCenter | Api::Dataverse))
            .filter(|e| !e.path.starts_with("/cert/"))
            .collect();
        let started = Instant::now();
        let failed = futures::stream::iter(calls)
            .map(|e| self.send(e))
            .buffer_unordered(concurrency.max(1))
            .filter(|ok| std::future::ready(!ok))
            .count()
            .await;
        (started.elapsed(), failed)
    }

    async fn send(&self, e: &JournalEntry) -> bool {
        let url = match &e.query {
            Some(q) => format!("{}{}?{q}", self.base, e.path),
            None => format!("{}{}", self.base, e.path),
        };
        let method = reqwest::Method::from_bytes(e.method.as_bytes()).expect("a method");
        let token = match e.api {
            Api::PartnerCenter => &self.partner_center,
            _ => &self.dataverse,
        };
        let mut request = self.client.request(method, url).bearer_auth(token);
        if let Some(prefer) = &e.prefer {
            request = request.header("Prefer", prefer);
        }
        if let Some(id) = &e.ms_request_id {
            request = request.header("MS-RequestId", id);
        }
        if let Some(body) = &e.body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.clone());
        }
        request.send().await.is_ok_and(|r| r.status().is_success())
    }
}

/// cosell's user and system CPU time so far, in seconds (/proc/<pid>/stat, in clock ticks of 1/100 s).
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the state (field 3).
    (ticks(11) + ticks(12)) / 100.0
}

/// cosell's resident memory now, in MB (/proc/<pid>/status VmRSS).
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
