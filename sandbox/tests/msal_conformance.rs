//! Conformance with a vendor client: Microsoft's MSAL for Python drives the Entra ID emulator over HTTPS
//! (`conformance/msal_entra.py`: client credentials, authorization code with PKCE and the id_token
//! validated, a wrong nonce refused, refresh with rotation, a wrong secret refused with AADSTS7000215).
//!
//! MSAL lives in the virtualenv `.venv-conformance` that `scripts/setup --conformance` makes (scripts/test
//! runs it). Without it the test is skipped with a message, except in CI (`CI=true`), where it fails.

use cosell_sandbox::Sandbox;
use cosell_sandbox::entra::{DASHBOARD_CLIENT_ID, DASHBOARD_CLIENT_SECRET, TENANT_ID};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the sandbox crate sits in the repository")
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msal_for_python_accepts_the_entra_emulator() {
    let root = repository();
    let python = root.join(".venv-conformance/bin/python");
    if !python.exists() {
        let why = format!(
            "{} is missing: run scripts/setup --conformance to install MSAL for Python",
            python.display()
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why} (CI runs every conformance test)");
        }
        // Straight to stderr: libtest would swallow an eprintln! of a passing test.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED msal_for_python_accepts_the_entra_emulator: {why}"
        );
        return;
    }

    let sb = Sandbox::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ca_file = std::env::temp_dir().join(format!(
        "cosell-sandbox-ca-{}-{}.pem",
        std::process::id(),
        sb.addr().port()
    ));
    std::fs::write(&ca_file, sb.tls_ca_pem()).unwrap();

    let mut command = Command::new(&python);
    command
        .arg(root.join("conformance/msal_entra.py"))
        .arg(sb.base_url())
        .arg(&ca_file)
        .args(["--tenant", TENANT_ID])
        .args(["--client-id", DASHBOARD_CLIENT_ID])
        .args(["--client-secret", DASHBOARD_CLIENT_SECRET])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The sandbox serves on this runtime's other thread while the script runs.
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("python starts");
        let started = Instant::now();
        loop {
            if child.try_wait().expect("python runs").is_some() {
                break;
            }
            if started.elapsed() > LIMIT {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("python's output")
    })
    .await
    .unwrap();
    let _ = std::fs::remove_file(&ca_file);

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "MSAL conformance failed ({}; limit {LIMIT:?}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("all MSAL conformance checks passed"),
        "{stdout}"
    );
}
