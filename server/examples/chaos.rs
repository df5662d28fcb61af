//! `scripts/chaos`: the README's promises (one effect per event, nothing lost on a crash, one instance at
//! a time per record) under crashes and scale-out, counted from the outside world.
//!
//! The sandbox runs in this process, on its own: cosell runs as a real process against it
//! (`--sandbox-url`), is killed with SIGKILL at random moments and started again on the same database
//! and key, while Microsoft sellers share referrals and CRM users switch opportunities on. Then, on
//! PostgreSQL, two instances share one database and one of them is killed mid-way. For each phase it
//! prints what the emulators hold and exits non-zero unless duplicates, missing write-backs and runs
//! executed twice at once are all 0.

mod common;

use clap::Parser;
use common::*;
use cosell::store::Store;
use cosell_sandbox::Sandbox;
use cosell_sandbox::dataverse::columns as col;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug, Clone)]
#[command(about = "Crash and scale-out test of cosell against the sandbox")]
struct Args {
    /// Referrals Microsoft sellers share.
    #[arg(long, default_value_t = 1000)]
    referrals: usize,
    /// CRM opportunities switched on for Partner Center meanwhile.
    #[arg(long, default_value_t = 200)]
    opportunities: usize,
    /// SIGKILLs of cosell in the SQLite phase.
    #[arg(long, default_value_t = 3)]
    kills: usize,
    /// The cosell binary.
    #[arg(long, default_value = "target/debug/cosell")]
    cosell: PathBuf,
    /// A PostgreSQL server URL allowed to create databases: runs the two-instance phase there.
    #[arg(long, env = "CHAOS_POSTGRES_URL")]
    postgres: Option<String>,
    /// How long either phase may take to settle.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Where cosell's logs and the SQLite database go.
    #[arg(long, default_value = "target/chaos")]
    work_dir: PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir).expect("work dir");
    let mut failed = false;

    let db = args.work_dir.join("chaos.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let sqlite = format!("sqlite://{}", db.display());
    let name = format!("SQLite, one instance killed {} times", args.kills);
    let report = phase(&args, &name, &sqlite, 1).await;
    failed |= !report.print();

    if let Some(admin) = &args.postgres {
        let (url, name) = create_postgres_database(admin).await;
        let report = phase(&args, "PostgreSQL, two instances, one killed", &url, 2).await;
        failed |= !report.print();
        psql(admin, &format!("DROP DATABASE IF EXISTS {name}"));
    } else {
        println!("\n(no --postgres URL: the two-instance phase was not run)");
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

#[derive(Debug, Default)]
struct Report {
    phase: String,
    referrals_shared: usize,
    opportunities_created: usize,
    opportunity_duplicates: usize,
    opportunities_switched_on: usize,
    referrals_from_crm: usize,
    referral_duplicates: usize,
    write_backs_missing: usize,
    concurrent_runs: usize,
    kills: usize,
    settled_in: Duration,
    settled: bool,
}

impl Report {
    /// Prints the table; true when the promises held.
    fn print(&self) -> bool {
        println!(
            "\n== {} ({} kills, settled in {:.1} s{})",
            self.phase,
            self.kills,
            self.settled_in.as_secs_f64(),
            if self.settled { "" } else { ": DID NOT SETTLE" }
        );
        let rows = [
            ("referrals shared", self.referrals_shared),
            ("opportunities created", self.opportunities_created),
            ("duplicate opportunities", self.opportunity_duplicates),
            ("opportunities switched on", self.opportunities_switched_on),
            ("referrals created from the CRM", self.referrals_from_crm),
            ("duplicate referrals", self.referral_duplicates),
            ("write-backs missing", self.write_backs_missing),
            ("runs executed twice at once", self.concurrent_runs),
        ];
        for (what, n) in rows {
            println!("{what:>32}: {n}");
        }
        let ok = self.settled
            && self.opportunity_duplicates == 0
            && self.referral_duplicates == 0
            && self.write_backs_missing == 0
            && self.concurrent_runs == 0;
        println!(
            "{}",
            json!({
                "phase": self.phase, "kills": self.kills, "settled": self.settled,
                "settled_in_s": self.settled_in.as_secs_f64(),
                "referrals_shared": self.referrals_shared, "opportunities_created": self.opportunities_created,
                "opportunity_duplicates": self.opportunity_duplicates,
                "opportunities_switched_on": self.opportunities_switched_on,
                "referrals_from_crm": self.referrals_from_crm, "referral_duplicates": self.referral_duplicates,
                "write_backs_missing": self.write_backs_missing, "concurrent_runs": self.concurrent_runs, "ok": ok
            })
        );
        ok
    }
}

/// A random moment in `range` milliseconds (the kills must not land on the same step every time).
fn random_ms(range: std::ops::Range<u64>) -> Duration {
    let r = (uuid::Uuid::new_v4().as_u128() % u128::from(range.end - range.start)) as u64;
    Duration::from_millis(range.start + r)
}

async fn phase(args: &Args, name: &str, database_url: &str, instances: usize) -> Report {
    let world = Arc::new(
        Sandbox::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("sandbox"),
    );
    // Deliveries to a killed cosell are retried soon (Partner Center's intervals are undocumented).
    world.partner_center().set_delivery_settings(
        cosell_sandbox::partner_center::DeliverySettings {
            retry_base_ms: 200,
            ..Default::default()
        },
    );
    let tag = if instances == 1 { "sqlite" } else { "postgres" };
    let mut cosells: Vec<Instance> = (0..instances)
        .map(|i| {
            Instance::start(
                &args.cosell,
                &args.work_dir,
                &format!("cosell-{tag}-{i}"),
                &world.base_url(),
                database_url,
                &[
                    "--workers",
                    "4",
                    "--retry-base-ms",
                    "200",
                    "--crm-poll-ms",
                    "500",
                    "--run-lease-ms",
                    "3000",
                ],
            )
        })
        .collect();
    for c in &mut cosells {
        c.healthy().await;
    }
    // The survivor (the last) receives the webhooks; the first is the one killed.
    let receiver = cosells.last().expect("an instance");
    make_ready(&world, &receiver.base).await;

    let store = Store::connect(database_url)
        .await
        .expect("the phase's database");
    let opportunities = seed_opportunities(&world, args.opportunities);
    wait_for_first_poll(&store).await;

    let started = Instant::now();
    let sharing = {
        let world = world.clone();
        let (n, opportunities) = (args.referrals, opportunities.clone());
        tokio::spawn(async move { share(&world, n, &opportunities).await })
    };
    let mut kills = 0;
    if instances == 1 {
        for _ in 0..args.kills {
            let wait = random_ms(300..3000);
            tokio::time::sleep(wait).await;
            cosells[0].kill();
            kills += 1;
            cosells[0].restart(&args.cosell);
            cosells[0].healthy().await;
        }
    } else {
        tokio::time::sleep(random_ms(500..2500)).await;
        cosells[0].kill();
        kills += 1;
    }
    let referrals = sharing.await.expect("sharing");

    let deadline = started + Duration::from_secs(args.timeout_secs);
    let settled = loop {
        let done = count(&world, &store, &referrals, &opportunities, name).await;
        if done.write_backs_missing == 0 && nothing_pending(&store).await {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut report = count(&world, &store, &referrals, &opportunities, name).await;
    report.kills = kills;
    report.settled = settled;
    report.settled_in = started.elapsed();
    drop(cosells);
    store.close().await;
    world.shutdown();
    report
}

/// Sellers share `n` referrals while CRM users switch `opportunities` on, interleaved.
async fn share(world: &Sandbox, n: usize, opportunities: &[String]) -> Vec<String> {
    let mut shared = Vec::with_capacity(n);
    let every = (n / opportunities.len().max(1)).max(1);
    let mut switched = opportunities.iter();
    for i in 0..n {
        let referral = world.partner_center().seller_creates(json!({
            "name": format!("Chaos referral {i}"),
            "customerProfile": { "name": format!("Chaos prospect {i}"), "address": { "postalCode": format!("{:05}", 10000 + i), "country": "US" } },
            "details": { "dealValue": 5000 + i, "currency": "USD", "closingDateTime": "2027-06-30T00:00:00Z" }
        }));
        shared.push(referral["id"].as_str().expect("an id").to_string());
        if i % every == 0
            && let Some(id) = switched.next()
        {
            world
                .dataverse()
                .update("opportunities", id, json!({ (col::SYNC): true }))
                .expect("switch on");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for id in switched {
        world
            .dataverse()
            .update("opportunities", id, json!({ (col::SYNC): true }))
            .expect("switch on");
    }
    shared
}

/// What the outside world holds now.
async fn count(
    world: &Sandbox,
    store: &Store,
    referrals: &[String],
    opportunities: &[String],
    phase: &str,
) -> Report {
    let crm = world.dataverse().rows("opportunities");
    let mut opportunities_per_referral: HashMap<&str, usize> = HashMap::new();
    for o in &crm {
        if let Some(r) = o[col::REFERRAL_ID].as_str() {
            *opportunities_per_referral.entry(r).or_default() += 1;
        }
    }
    let shared: HashSet<&str> = referrals.iter().map(String::as_str).collect();
    let switched: HashSet<&str> = opportunities.iter().map(String::as_str).collect();
    let pc = world.partner_center().referrals();
    let mut referrals_per_opportunity: HashMap<&str, usize> = HashMap::new();
    for r in &pc {
        if let Some(o) = r["externalReferenceId"].as_str()
            && switched.contains(o)
        {
            *referrals_per_opportunity.entry(o).or_default() += 1;
        }
    }
    let by_id: HashMap<&str, &Value> = pc
        .iter()
        .filter_map(|r| Some((r["id"].as_str()?, r)))
        .collect();
    let missing_to_pc = shared
        .iter()
        .filter(|id| {
            by_id
                .get(*id)
                .is_none_or(|r| r["externalReferenceId"].as_str().is_none_or(str::is_empty))
        })
        .count();
    let crm_by_id: HashMap<&str, &Value> = crm
        .iter()
        .filter_map(|o| Some((o["opportunityid"].as_str()?, o)))
        .collect();
    let missing_to_crm = switched
        .iter()
        .filter(|id| {
            crm_by_id
                .get(*id)
                .is_none_or(|o| o[col::REFERRAL_ID].as_str().is_none())
        })
        .count();
    let concurrent = store
        .runs_executed_concurrently()
        .await
        .expect("steps")
        .len();
    Report {
        phase: phase.to_string(),
        referrals_shared: referrals.len(),
        opportunities_created: shared
            .iter()
            .filter(|r| opportunities_per_referral.contains_key(*r))
            .count(),
        opportunity_duplicates: opportunities_per_referral
            .iter()
            .filter(|(r, n)| shared.contains(*r) && **n > 1)
            .count(),
        opportunities_switched_on: switched.len(),
        referrals_from_crm: referrals_per_opportunity.len(),
        referral_duplicates: referrals_per_opportunity
            .values()
            .filter(|n| **n > 1)
            .count(),
        write_backs_missing: missing_to_pc + missing_to_crm,
        concurrent_runs: concurrent,
        ..Default::default()
    }
}
