use clap::Parser;
use cosell::store::test_support::TestDatabase;
use cosell_server::config::{Cli, Command, Settings};
use cosell_server::startup::Application;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    pub sandbox: String,
    /// The in-process sandbox (act as Microsoft, read its journals).
    pub world: std::sync::Arc<cosell_sandbox::Sandbox>,
    pub store: cosell::store::Store,
    /// Stored webhook deliveries, as they happen.
    pub inbox: tokio::sync::broadcast::Receiver<cosell_server::webhooks::InboxNotice>,
    /// The sync engine, and every run that reaches a final status.
    pub engine: std::sync::Arc<cosell::engine::Engine>,
    pub runs: tokio::sync::broadcast::Receiver<cosell::engine::RunFinished>,
    /// Runs that finished while a test waited for another one.
    finished_early: std::collections::VecDeque<cosell::engine::RunFinished>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _db: TestDatabase,
}

/// The outcome of following a sign-in to its end.
pub struct Landing {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
    pub set_cookie: Vec<String>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[&str]) -> TestApp {
        let db = TestDatabase::new().await;
        let app = Application::build(sandbox_settings(db.url(), extra))
            .await
            .expect("application builds");
        // The listening address, not the public URL (which may name a host that is not this one).
        let base = format!("http://{}", app.addr());
        let sandbox = app.sandbox_url().expect("sandbox mode");
        let world = app.sandbox().expect("sandbox mode");
        let store = app.store();
        let inbox = app.subscribe_inbox();
        let engine = app.engine();
        let runs = engine.subscribe();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp {
            base,
            sandbox,
            world,
            store,
            inbox,
            engine,
            runs,
            finished_early: Default::default(),
            stop: Some(stop),
            server: Some(server),
            _db: db,
        }
    }

    /// Connected to both systems, every flow on, webhooks registered to this server.
    pub async fn spawn_ready() -> TestApp {
        Self::spawn_ready_with(&[]).await
    }

    /// [`TestApp::spawn_ready`] with extra command-line flags (`--crm salesforce` connects Salesforce).
    pub async fn spawn_ready_with(extra: &[&str]) -> TestApp {
        let app = TestApp::spawn_with(extra).await;
        let admin = app.signed_in("admin").await;
        app.connect(&admin, "partner_center", "admin").await;
        let crm = app.engine.crm().as_code();
        app.connect(&admin, crm, "admin").await;
        let (status, body) = app.call(&admin, "activate_all", &[]).await;
        assert!(status.is_success(), "{body}");
        cosell_sandbox::testing::register_webhook(
            &app.world,
            &app.url("/webhooks/partner-center"),
            &["referral-created", "referral-updated"],
            false,
        )
        .await;
        app
    }

    /// A browser-like client: keeps cookies, does not follow redirects (each hop is inspected).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Starts a sign-in; returns the Entra authorize URL the server redirected to.
    pub async fn begin(&self, client: &reqwest::Client, return_to: &str) -> String {
        let r = client
            .get(self.url(&format!("/auth/sign-in?return_to={return_to}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let to = location(&r).expect("redirect to Entra");
        assert!(to.starts_with(&self.sandbox), "{to}");
        to
    }

    /// Plays the person on the emulator's page: loads it, picks `user`. Returns the redirect back.
    pub async fn pick(&self, authorize_url: &str, user: &str) -> String {
        let browser = self.client();
        let page = browser.get(authorize_url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!(r#"data-user="{user}""#)),
            "picker lists {user}"
        );
        let (action, query) = authorize_url.split_once('?').unwrap();
        let mut form: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        form.push(("user".into(), user.into()));
        let r = browser.post(action).form(&form).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "emulator redirects back");
        location(&r).unwrap()
    }

    /// Delivers Entra's answer to the callback and reads where it leads.
    pub async fn land(&self, client: &reqwest::Client, callback: &str) -> Landing {
        let r = client.get(callback).send().await.unwrap();
        let status = r.status();
        let location = location(&r);
        let set_cookie = r
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        let body = r.text().await.unwrap();
        Landing {
            status,
            location,
            body,
            set_cookie,
        }
    }

    /// The whole chain for `user`; asserts success and returns the signed-in client.
    pub async fn signed_in(&self, user: &str) -> reqwest::Client {
        let client = self.client();
        let authorize = self.begin(&client, "/").await;
        let callback = self.pick(&authorize, user).await;
        let landing = self.land(&client, &callback).await;
        assert_eq!(landing.status, StatusCode::SEE_OTHER, "{}", landing.body);
        assert_eq!(landing.location.as_deref(), Some("/"));
        client
    }

    /// Calls a server function as a same-origin form post; returns the status and the body.
    pub async fn call(
        &self,
        client: &reqwest::Client,
        function: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let r = client
            .post(self.url(&format!("/api/{function}")))
            .header("Origin", &self.base)
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// Connects `system` ("partner_center", "dynamics365") through the consent flow as `user`, with the
    /// signed-in dashboard `client`. Returns where the server sent the browser back to.
    pub async fn connect(&self, client: &reqwest::Client, system: &str, user: &str) -> String {
        let r = client
            .post(self.url(&format!("/connections/{system}/connect")))
            .header("Origin", &self.base)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let authorize = location(&r).expect("redirect to Entra");
        assert!(authorize.starts_with(&self.sandbox), "{authorize}");
        let callback = self.pick(&authorize, user).await;
        let landing = self.land(client, &callback).await;
        assert_eq!(landing.status, StatusCode::SEE_OTHER, "{}", landing.body);
        landing.location.expect("back to the Connections page")
    }

    /// Waits for the next run that reaches a final status.
    pub async fn next_run(&mut self) -> cosell::engine::RunFinished {
        if let Some(run) = self.finished_early.pop_front() {
            return run;
        }
        tokio::time::timeout(std::time::Duration::from_secs(30), self.runs.recv())
            .await
            .expect("a run finishes within 30 s")
            .expect("engine running")
    }

    /// Waits for run `id` to finish; runs finishing meanwhile stay for [`TestApp::next_run`].
    pub async fn run_finished(&mut self, id: i64) -> cosell::engine::RunFinished {
        if let Some(i) = self.finished_early.iter().position(|r| r.run_id == id) {
            return self.finished_early.remove(i).expect("present");
        }
        loop {
            let run = tokio::time::timeout(std::time::Duration::from_secs(30), self.runs.recv())
                .await
                .unwrap_or_else(|_| panic!("run {id} finishes within 30 s"))
                .expect("engine running");
            if run.run_id == id {
                return run;
            }
            self.finished_early.push_back(run);
        }
    }

    /// Partner Center calls a run and its child runs made (steps that name Partner Center).
    pub async fn partner_center_calls(&self, run_id: i64) -> i64 {
        let mut runs = vec![run_id];
        runs.extend(
            self.store
                .related_runs(run_id)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id),
        );
        let mut calls = 0;
        for id in runs {
            for s in self.store.run_steps(id).await.unwrap() {
                if s.name.contains("Partner Center") {
                    calls += s.api_calls;
                }
            }
        }
        calls
    }

    /// Acts as a Microsoft seller editing a referral (JSON Patch), through the sandbox's control API.
    pub async fn seller_updates(&self, referral_id: &str, ops: serde_json::Value) {
        let r = reqwest::Client::new()
            .patch(format!(
                "{}/_control/partner-center/referrals/{referral_id}",
                self.sandbox
            ))
            .json(&ops)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// A run and the run of the `referral-updated` event its own write-back causes (the echo). The two
    /// run on different workers and may finish in either order; the echo was queued second.
    pub async fn run_and_echo(
        &mut self,
    ) -> (cosell::engine::RunFinished, cosell::engine::RunFinished) {
        let a = self.next_run().await;
        let b = self.next_run().await;
        if a.run_id < b.run_id { (a, b) } else { (b, a) }
    }

    pub async fn page(&self, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
        let r = client.get(self.url(path)).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// A page fetched by a client that presents only this session id (a replayed or planted cookie).
    pub async fn page_with_session(&self, session_id: &str, path: &str) -> String {
        reqwest::Client::new()
            .get(self.url(path))
            .header("cookie", format!("cosell.sid={session_id}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sets the Entra emulator's faults through its control API.
    pub async fn entra_faults(&self, faults: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_control/entra/faults", self.sandbox))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    pub async fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = reqwest::Client::new()
            .post(format!("{}/_control{path}", self.sandbox))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}");
        r.json().await.unwrap()
    }

    /// A control call that answers no body.
    pub async fn control_ok(&self, path: &str, body: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/_control{path}", self.sandbox))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }

    /// The key this server seals secrets with.
    pub fn engine_key(&self) -> cosell::crypto::SealingKey {
        cosell::crypto::SealingKey::parse_base64(TEST_SEALING_KEY).unwrap()
    }

    /// Stops the server gracefully and waits for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.server.take().unwrap().await.expect("server task")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// 32 bytes, base64: the sealing key of test servers (so tests can open what they stored).
pub const TEST_SEALING_KEY: &str = "Y29zZWxsLXRlc3Qtc2VhbGluZy1rZXktMzItYnl0ZXM=";

/// Settings for a sandbox-mode server on free ports with this database, plus extra flags.
pub fn sandbox_settings(database_url: &str, extra: &[&str]) -> Settings {
    let mut args = vec![
        "cosell",
        "serve",
        "--sandbox",
        "--addr",
        "127.0.0.1:0",
        "--sandbox-addr",
        "127.0.0.1:0",
        "--database-url",
        database_url,
        // Retries come quickly in tests (Retry-After still holds).
        "--retry-base-ms",
        "50",
        // Tests read the CRM's change feed when they choose (engine.poll_changes), not on a timer.
        "--crm-poll-ms",
        "3600000",
        "--secret-key",
        TEST_SEALING_KEY,
    ];
    args.extend_from_slice(extra);
    let Command::Serve(serve) = Cli::try_parse_from(args).expect("arguments parse").command;
    serve.into_settings().expect("settings")
}

pub fn location(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
}

/// Replaces one query parameter of a URL.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == name {
                (k, value.to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn session_cookie(set_cookie: &[String]) -> Option<String> {
    set_cookie
        .iter()
        .find(|c| c.starts_with("cosell.sid="))
        .map(|c| {
            c.split(';')
                .next()
                .unwrap()
                .trim_start_matches("cosell.sid=")
                .to_string()
        })
}

/// The `data-code` of the sign-in error page.
pub fn error_code(body: &str) -> Option<&str> {
    let start = body.find(r#"data-code=""#)? + 11;
    body[start..].split('"').next()
}
