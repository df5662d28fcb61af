//! What the example drivers (`scripts/chaos`, `scripts/bench-sync`) share: cosell as a real process
//! against a sandbox in the driver's process, made ready as an admin would, and the databases it runs on.

#![allow(dead_code)] // Each driver uses its own part.

use cosell::store::Store;
use cosell_sandbox::Sandbox;
use cosell_sandbox::dataverse::columns as col;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Base64 of 32 bytes: the key every cosell of a phase shares, so a restarted one opens what it sealed.
pub const SECRET_KEY: &str = "Y29zZWxsLWNoYW9zLXNlYWxpbmcta2V5LTMyYnl0ZXM=";

/// One cosell process.
pub struct Instance {
    pub name: String,
    args: Vec<String>,
    pub base: String,
    pub log: PathBuf,
    pub child: Child,
}

impl Instance {
    /// Starts `cosell serve` against the sandbox at `sandbox`, its log in `work_dir`, with the driver's
    /// `extra` flags (workers, intervals).
    pub fn start(
        cosell: &Path,
        work_dir: &Path,
        name: &str,
        sandbox: &str,
        database_url: &str,
        extra: &[&str],
    ) -> Instance {
        let port = free_port();
        let log = work_dir.join(format!("{name}.log"));
        let mut cli = vec![
            "serve".to_string(),
            "--sandbox-url".into(),
            sandbox.into(),
            "--database-url".into(),
            database_url.into(),
            "--secret-key".into(),
            SECRET_KEY.into(),
            "--addr".into(),
            format!("127.0.0.1:{port}"),
            "--log-format".into(),
            "json".into(),
        ];
        cli.extend(extra.iter().map(|s| s.to_string()));
        let child = spawn(cosell, &cli, &log);
        Instance {
            name: name.into(),
            args: cli,
            base: format!("http://127.0.0.1:{port}"),
            log,
            child,
        }
    }

    /// SIGKILL: no shutdown, no flush, leases left behind.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self, cosell: &Path) {
        self.child = spawn(cosell, &self.args, &self.log);
    }

    pub async fn healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                panic!(
                    "{} exited ({exit}) at start-up: {}",
                    self.name,
                    tail.join("\n")
                );
            }
            if let Ok(r) = reqwest::get(format!("{}/healthz", self.base)).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer /healthz within 60 s (see {})",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(cosell: &Path, cli: &[String], log: &PathBuf) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    Command::new(cosell)
        .args(cli)
        .stdout(Stdio::from(out.try_clone().expect("log")))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it: cargo build -p cosell-server)",
                cosell.display()
            )
        })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Signs in as the demo admin, connects Partner Center and Dynamics 365, switches every flow on and
/// registers `base`'s webhook URL, as an admin does on the dashboard.
pub async fn make_ready(world: &Sandbox, base: &str) {
    let (dashboard, _) = sign_in(world, base).await;
    let browser = || browser(world);
    for system in ["partner_center", "dynamics365"] {
        let r = dashboard
            .post(format!("{base}/connections/{system}/connect"))
            .header("Origin", base)
            .send()
            .await
            .unwrap();
        let callback = cosell_sandbox::testing::pick(&browser(), &location(&r), "admin").await;
        let r = dashboard.get(&callback).send().await.unwrap();
        assert_eq!(r.status(), 303, "{system} connected");
    }
    let r = dashboard
        .post(format!("{base}/api/activate_all"))
        .header("Origin", base)
        .form(&[] as &[(&str, &str)])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "activate all: {}",
        r.text().await.unwrap()
    );
    cosell_sandbox::testing::register_webhook(
        world,
        &format!("{base}/webhooks/partner-center"),
        &["referral-created", "referral-updated"],
        false,
    )
    .await;
}

/// A browser for the dashboard (plain HTTP) and the sandbox's sign-in pages (HTTPS under its own CA).
fn browser(world: &Sandbox) -> reqwest::Client {
    cosell_sandbox::testing::client_builder(world)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs in to the dashboard at `base` as the demo admin: the browser, and its session cookie
/// (`name=value`, as a `Cookie` header sends it).
pub async fn sign_in(world: &Sandbox, base: &str) -> (reqwest::Client, String) {
    let dashboard = browser(world);
    let r = dashboard
        .get(format!("{base}/auth/sign-in?return_to=/"))
        .send()
        .await
        .unwrap();
    let authorize = location(&r);
    let callback = cosell_sandbox::testing::pick(&browser(world), &authorize, "admin").await;
    let r = dashboard.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303, "signed in");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("cosell.sid="))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie at sign-in")
        .to_string();
    (dashboard, cookie)
}

/// The person on the emulator's sign-in page picks `user`; returns the redirect back.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("a redirect, got {}", r.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// `n` opportunities ready to share (a customer with a country, a solution, a value, a date), with
/// "Sync with Partner Center" still off.
pub fn seed_opportunities(world: &Sandbox, n: usize) -> Vec<String> {
    let dataverse = world.dataverse();
    (0..n)
        .map(|i| {
            let account = dataverse.insert(
                "accounts",
                json!({ "name": format!("Chaos customer {i}"), "address1_city": "Chicago",
                        "address1_postalcode": format!("{:05}", 60000 + i), "address1_country": "US" }),
            );
            dataverse.insert(
                "opportunities",
                json!({
                    "name": format!("Chaos opportunity {i}"), "estimatedvalue": 10000 + i, "estimatedclosedate": "2027-09-30",
                    (col::SOLUTIONS): "SOL-DATA-PLAT",
                    "customerid_account@odata.bind": format!("/accounts({account})"),
                    "transactioncurrencyid@odata.bind": format!("/transactioncurrencies({})", cosell_sandbox::dataverse::CURRENCY_USD),
                }),
            )
        })
        .collect()
}

/// Switching sync on counts only after the change feed's first read has set its position.
pub async fn wait_for_first_poll(store: &Store) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while store
        .change_feed("dynamics365/opportunities")
        .await
        .expect("change feed")
        .is_none()
    {
        assert!(Instant::now() < deadline, "the change feed never read");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn nothing_pending(store: &Store) -> bool {
    use cosell::domain::runs::RunStatus;
    for status in [RunStatus::Queued, RunStatus::Running] {
        let filter = cosell::store::RunFilter {
            status: Some(status),
            ..Default::default()
        };
        if !store
            .list_runs(&filter, None, 1)
            .await
            .expect("runs")
            .is_empty()
        {
            return false;
        }
    }
    store.unprocessed_inbox().await.expect("inbox").is_empty()
}

/// A database of its own on the server `admin` names: its URL and its name.
pub async fn create_postgres_database(admin: &str) -> (String, String) {
    let name = format!("cosell_chaos_{}", uuid::Uuid::new_v4().simple());
    psql(admin, &format!("CREATE DATABASE {name}"));
    let mut url = url::Url::parse(admin).expect("a PostgreSQL URL");
    url.set_path(&name);
    (url.to_string(), name)
}

pub fn psql(admin: &str, sql: &str) {
    let status = Command::new("psql")
        .args([admin, "-Atqc", sql])
        .status()
        .expect("psql");
    assert!(status.success(), "psql {sql:?} failed on {admin}");
}
