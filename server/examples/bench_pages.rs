//! `scripts/bench-pages`: how fast the dashboard's pages answer at volume, measured from outside.
//!
//! Seeds a fresh database (SQLite, then PostgreSQL when given) with `--rows` runs and as many audit
//! events (a month of traffic) and `--opportunities` mirrored opportunities, starts cosell (release)
//! on it against the sandbox, signs in as the demo admin, and drives each page with `wrk` (a kept load
//! generator, Debian's package): `--connections` at once for `--seconds` each. Prints requests per
//! second, p50 and p99 latency and the page's size per page, and one JSON line per store; asserts
//! nothing.

mod common;

use clap::Parser;
use common::*;
use cosell::store::Store;
use cosell::store::test_support::volume;
use cosell_sandbox::Sandbox;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(Parser, Debug, Clone)]
#[command(about = "Dashboard pages under load, at volume")]
struct Args {
    /// Runs and audit events seeded (each).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Mirrored opportunities seeded.
    #[arg(long, default_value_t = 100_000)]
    opportunities: usize,
    /// Connections wrk keeps open at once.
    #[arg(long, default_value_t = 100)]
    connections: usize,
    /// How long each page is driven.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// The cosell binary (a release build).
    #[arg(long, default_value = "target/release/cosell")]
    cosell: PathBuf,
    /// A PostgreSQL server URL allowed to create databases: measures there too.
    #[arg(long, env = "BENCH_POSTGRES_URL")]
    postgres: Option<String>,
    /// Where cosell's log and the SQLite database go.
    #[arg(long, default_value = "target/bench-pages")]
    work_dir: PathBuf,
}

const PAGES: [&str; 4] = ["/", "/runs", "/audit", "/opportunities"];

#[derive(Debug)]
struct PageFigures {
    page: &'static str,
    bytes: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    std::fs::create_dir_all(&args.work_dir).expect("work dir");
    let db = args.work_dir.join("pages.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let mut results = vec![(
        "SQLite",
        measure(&args, &format!("sqlite://{}", db.display())).await,
    )];
    if let Some(admin) = &args.postgres {
        let (url, name) = create_postgres_database(admin).await;
        results.push(("PostgreSQL", measure(&args, &url).await));
        psql(admin, &format!("DROP DATABASE IF EXISTS {name}"));
    } else {
        println!("(no --postgres URL: SQLite only)");
    }
    println!(
        "\n{} runs, {} audit events, {} opportunities; {} connections, {} s a page",
        args.rows, args.rows, args.opportunities, args.connections, args.seconds
    );
    println!(
        "{:<11} {:<15} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "store", "page", "requests/s", "p50 ms", "p99 ms", "KB", "non-2xx"
    );
    for (store, pages) in &results {
        for p in pages {
            println!(
                "{:<11} {:<15} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>7}",
                store,
                p.page,
                p.per_second,
                p.p50_ms,
                p.p99_ms,
                p.bytes as f64 / 1024.0,
                p.non_2xx
            );
        }
    }
    for (store, pages) in &results {
        let pages: Vec<Value> = pages
            .iter()
            .map(|p| {
                json!({ "page": p.page, "bytes": p.bytes, "requests_per_s": p.per_second,
                        "p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "non_2xx": p.non_2xx })
            })
            .collect();
        println!(
            "{}",
            json!({ "store": store, "rows": args.rows, "opportunities": args.opportunities,
                    "connections": args.connections, "seconds": args.seconds, "pages": pages })
        );
    }
}

async fn measure(args: &Args, database_url: &str) -> Vec<PageFigures> {
    eprintln!("== seeding {database_url}");
    let seeding = Instant::now();
    {
        let store = Store::connect(database_url).await.expect("database");
        let seeded = volume::seed_runs_and_audit(&store, args.rows).await;
        volume::seed_mirror(&store, args.opportunities, seeded.start).await;
    }
    eprintln!("== seeded in {:.0} s", seeding.elapsed().as_secs_f64());
    let world = Sandbox::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox");
    let mut cosell = Instance::start(
        &args.cosell,
        &args.work_dir,
        "cosell-pages",
        &world.base_url(),
        database_url,
        &[],
    );
    cosell.healthy().await;
    let (browser, cookie) = sign_in(&world, &cosell.base).await;
    let mut figures = Vec::new();
    for page in PAGES {
        let url = format!("{}{page}", cosell.base);
        let r = browser.get(&url).send().await.expect("the page");
        assert!(r.status().is_success(), "{page}: {}", r.status());
        let bytes = r.bytes().await.expect("its body").len();
        eprintln!("== {page}: {} s of wrk", args.seconds);
        figures.push(drive(args, page, &url, &cookie, bytes));
    }
    cosell.kill();
    figures
}

/// Runs wrk against `url` and reads its report.
fn drive(args: &Args, page: &'static str, url: &str, cookie: &str, bytes: usize) -> PageFigures {
    let out = Command::new("wrk")
        .args([
            "--threads",
            "2",
            "--connections",
            &args.connections.to_string(),
            "--duration",
            &format!("{}s", args.seconds),
            "--timeout",
            "10s",
            "--latency",
            "--header",
            &format!("Cookie: {cookie}"),
            url,
        ])
        .output()
        .expect("wrk (scripts/bench-pages installs it)");
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| -> Option<String> {
        report
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    };
    PageFigures {
        page,
        bytes,
        per_second: field("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN),
        p50_ms: field("50%").map_or(f64::NAN, |v| millis(&v)),
        p99_ms: field("99%").map_or(f64::NAN, |v| millis(&v)),
        non_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// A wrk duration (`812.00us`, `3.21ms`, `1.02s`) in milliseconds.
fn millis(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}
