use clap::Parser;
use cosell::store::test_support::TestDatabase;
use cosell_server::config::{Cli, Command, Settings};
use cosell_server::startup::Application;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};
use tokio::sync::oneshot;

pub struct TestApp {
    pub base: String,
    /// The sandbox's emulated APIs, `https://…` (the clients of [`TestApp::client`] trust its CA).
    pub sandbox: String,
    /// The sandbox's control API over plain HTTP, `http://…` (the same listener).
    pub control: String,
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
    /// Kept alive (and dropped) with the server; shared with a server started after it.
    _db: std::sync::Arc<TestDatabase>,
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
        capture_logs();
        let db = std::sync::Arc::new(TestDatabase::new().await);
        let app = Application::build(sandbox_settings(db.url(), extra))
            .await
            .expect("application builds");
        let world = app.sandbox().expect("sandbox mode");
        Self::serve(app, world, db)
    }

    /// A server using a sandbox that runs on its own (`--sandbox-url`) and the database `db`: stop it
    /// and spawn another on the same both, and the outside world has not moved.
    pub async fn spawn_on(
        world: std::sync::Arc<cosell_sandbox::Sandbox>,
        db: std::sync::Arc<TestDatabase>,
        extra: &[&str],
    ) -> TestApp {
        let url = world.base_url();
        Self::spawn_on_url(world, db, &url, extra).await
    }

    /// [`TestApp::spawn_on`] with the sandbox named by `url` (`https://…`, or `http://…` for the same
    /// listener).
    pub async fn spawn_on_url(
        world: std::sync::Arc<cosell_sandbox::Sandbox>,
        db: std::sync::Arc<TestDatabase>,
        url: &str,
        extra: &[&str],
    ) -> TestApp {
        capture_logs();
        let mut args = vec!["--sandbox-url", url];
        args.extend_from_slice(extra);
        let app = Application::build(settings(db.url(), &args))
            .await
            .expect("application builds");
        assert!(app.sandbox().is_none(), "no sandbox of its own");
        Self::serve(app, world, db)
    }

    fn serve(
        app: Application,
        world: std::sync::Arc<cosell_sandbox::Sandbox>,
        db: std::sync::Arc<TestDatabase>,
    ) -> TestApp {
        // The listening address, not the public URL (which may name a host that is not this one).
        let base = format!("http://{}", app.addr());
        let sandbox = app.sandbox_url().expect("sandbox mode");
        let control = app.sandbox_control_url().expect("sandbox mode");
        assert_eq!(sandbox, world.base_url());
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
            control,
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
        TestApp::spawn_with(extra).await.made_ready().await
    }

    /// Connects both systems as the admin, switches every flow on and registers the webhook.
    pub async fn made_ready(self) -> TestApp {
        let app = self;
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

    /// A browser-like client: keeps cookies, does not follow redirects (each hop is inspected), and
    /// trusts the sandbox's CA (the sign-in pages are served over HTTPS).
    pub fn client(&self) -> reqwest::Client {
        cosell_sandbox::testing::client_builder(&self.world)
            .timeout(CALL_LIMIT)
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
        cosell_sandbox::testing::pick(&browser, authorize_url, user).await
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

    /// Submits a page's form as a browser without JavaScript does (an HTML `Accept`, coming from
    /// `from`): the server function answers with a redirect.
    pub async fn submit(
        &self,
        client: &reqwest::Client,
        from: &str,
        action: &str,
        fields: &[(String, String)],
    ) -> reqwest::Response {
        client
            .post(self.url(action))
            .header("accept", "text/html")
            .header("origin", &self.base)
            .header("referer", self.url(from))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Connects `system` ("partner_center", "dynamics365") through the consent flow as `user`, with the
    /// signed-in dashboard `client`. Returns where the server sent the browser back to.
    pub async fn connect(&self, client: &reqwest::Client, system: &str, user: &str) -> String {
        self.connect_via(client, &format!("/connections/{system}/connect"), user)
            .await
    }

    /// [`TestApp::connect`] through the form at `path` (the Overview's guided setup adds
    /// `?return_to=overview`).
    pub async fn connect_via(&self, client: &reqwest::Client, path: &str, user: &str) -> String {
        let r = client
            .post(self.url(path))
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

    /// How many Dataverse opportunities carry `referral_id`: one, once a referral is synced.
    pub fn opportunities_for(&self, referral_id: &str) -> usize {
        self.world
            .dataverse()
            .rows("opportunities")
            .iter()
            .filter(|o| o[cosell_sandbox::dataverse::columns::REFERRAL_ID] == referral_id)
            .count()
    }

    /// Registers the webhook at this server with the four referral events, from the dashboard as
    /// `admin` (replacing any registration): the answer's status and body.
    pub async fn register_webhook_here(&self, admin: &reqwest::Client) -> (StatusCode, String) {
        let callback = self.url("/webhooks/partner-center");
        self.call(
            admin,
            "register_webhook",
            &[
                ("callback_url", callback.as_str()),
                ("referral_created", "on"),
                ("referral_updated", "on"),
                ("related_referral_created", "on"),
                ("related_referral_updated", "on"),
                ("overwrite", "on"),
            ],
        )
        .await
    }

    /// The diagnosis `system`'s stored connection carries.
    pub async fn diagnosis_of(
        &self,
        system: cosell::domain::connection::System,
    ) -> Option<cosell::domain::connection::Diagnosis> {
        self.store
            .connection(system, &self.engine_key())
            .await
            .unwrap()
            .expect("connected")
            .diagnosis
    }

    /// A seller shares a referral named after each of `names` while Partner Center cannot deliver to
    /// cosell (the registration points where nothing listens, and Partner Center gives up after its
    /// attempts); then the registration points here again. The referrals' ids: none reached cosell.
    pub async fn shared_while_deliveries_fail(&self, names: &[&str]) -> Vec<String> {
        self.control_ok(
            "/partner-center/delivery-settings",
            serde_json::json!({ "retry_base_ms": 1 }),
        )
        .await;
        let events = ["referral-created", "referral-updated"];
        cosell_sandbox::testing::register_webhook(
            &self.world,
            &self.url("/webhooks/nowhere"),
            &events,
            false,
        )
        .await;
        let ids: Vec<String> = names
            .iter()
            .map(|name| {
                self.world
                    .partner_center()
                    .seller_creates(serde_json::json!({ "name": name }))["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for id in &ids {
            eventually("Partner Center gives up delivering", || async {
                let attempts = self
                    .world
                    .partner_center()
                    .deliveries()
                    .into_iter()
                    .filter(|a| a.resource_uri.contains(id.as_str()))
                    .count();
                (attempts as u32 == cosell_sandbox::partner_center::MAX_ATTEMPTS).then_some(())
            })
            .await;
        }
        cosell_sandbox::testing::register_webhook(
            &self.world,
            &self.url("/webhooks/partner-center"),
            &events,
            false,
        )
        .await;
        ids
    }

    /// The newest run the filter lists that `wanted` accepts, once there is one (the engine works in
    /// the background).
    pub async fn run_where(
        &self,
        what: &str,
        filter: cosell::store::RunFilter,
        wanted: impl Fn(&cosell::store::Run) -> bool,
    ) -> cosell::store::Run {
        eventually(what, || async {
            self.store
                .list_runs(&filter, None, 20)
                .await
                .unwrap()
                .into_iter()
                .find(|r| wanted(r))
        })
        .await
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

    /// Waits for run `id` to finish; runs finishing meanwhile stay for [`TestApp::next_run`]. The
    /// announcements of `id` going back to the queue to wait (for cosell's own write to be noted, for a
    /// hold or a budget) are passed over: it has not finished.
    pub async fn run_finished(&mut self, id: i64) -> cosell::engine::RunFinished {
        use cosell::domain::runs::RunStatus;
        self.finished_early
            .retain(|r| !(r.run_id == id && r.status == RunStatus::Queued));
        if let Some(i) = self.finished_early.iter().position(|r| r.run_id == id) {
            return self.finished_early.remove(i).expect("present");
        }
        loop {
            let run = tokio::time::timeout(std::time::Duration::from_secs(30), self.runs.recv())
                .await
                .unwrap_or_else(|_| panic!("run {id} finishes within 30 s"))
                .expect("engine running");
            match (run.run_id == id, run.status) {
                (true, RunStatus::Queued) => continue,
                (true, _) => return run,
                (false, _) => self.finished_early.push_back(run),
            }
        }
    }

    /// API calls cosell counted today (UTC) with the Partner Center connection.
    pub async fn partner_center_calls_today(&self) -> i64 {
        self.store
            .api_calls_on("partner_center", time::OffsetDateTime::now_utc())
            .await
            .unwrap()
    }

    /// Partner Center calls a finished run and its child runs made, as their rows count them.
    pub async fn partner_center_calls(&self, run_id: i64) -> i64 {
        let run = self.store.run(run_id).await.unwrap().expect("the run");
        let children = self.store.related_runs(run_id).await.unwrap();
        std::iter::once(run)
            .chain(
                children
                    .into_iter()
                    .filter(|r| r.parent_run_id == Some(run_id)),
            )
            .map(|r| r.calls.partner_center)
            .sum()
    }

    /// Acts as a Microsoft seller editing a referral (JSON Patch), through the sandbox's control API.
    pub async fn seller_updates(&self, referral_id: &str, ops: serde_json::Value) {
        let r = plain_client()
            .patch(format!(
                "{}/_control/partner-center/referrals/{referral_id}",
                self.control
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
        plain_client()
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
        let r = plain_client()
            .post(format!("{}/_control/entra/faults", self.control))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    pub async fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = plain_client()
            .post(format!("{}/_control{path}", self.control))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}");
        r.json().await.unwrap()
    }

    /// A control call that answers no body.
    pub async fn control_ok(&self, path: &str, body: serde_json::Value) {
        let r = plain_client()
            .post(format!("{}/_control{path}", self.control))
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

/// How long any call a test makes may take: a server that never answers fails the test, saying where,
/// instead of hanging the suite.
/// The servers' logs go to the test that runs them (a server runs on its test's runtime, so on its
/// thread): the output of a failing test says what the server did, the others' is dropped.
/// `RUST_LOG` overrides the filter.
pub fn capture_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .compact()
        .try_init();
}

pub const CALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A plain HTTP client (the control API, the webhook receiver), bounded by [`CALL_LIMIT`].
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CALL_LIMIT)
        .build()
        .expect("client")
}

/// 32 bytes, base64: the sealing key of test servers (so tests can open what they stored).
pub const TEST_SEALING_KEY: &str = "Y29zZWxsLXRlc3Qtc2VhbGluZy1rZXktMzItYnl0ZXM=";

/// Settings for a sandbox-mode server on free ports with this database, plus extra flags.
pub fn sandbox_settings(database_url: &str, extra: &[&str]) -> Settings {
    let mut args = vec!["--sandbox", "--sandbox-addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    settings(database_url, &args)
}

/// Settings for a test server with this database, on a free port unless `extra` names an `--addr`.
pub fn settings(database_url: &str, extra: &[&str]) -> Settings {
    let addr: &[&str] = if extra.contains(&"--addr") {
        &[]
    } else {
        &["--addr", "127.0.0.1:0"]
    };
    let mut args = vec!["cosell", "serve"];
    args.extend_from_slice(addr);
    args.extend_from_slice(&[
        "--database-url",
        database_url,
        // Retries come quickly in tests (Retry-After still holds).
        "--retry-base-ms",
        "50",
        "--secret-key",
        TEST_SEALING_KEY,
    ]);
    // Tests read the CRM's change feed when they choose (engine.poll_changes), not on a timer, unless
    // they say otherwise.
    if !extra.contains(&"--crm-poll-ms") {
        args.extend_from_slice(&["--crm-poll-ms", "3600000"]);
    }
    args.extend_from_slice(extra);
    let Command::Serve(serve) = Cli::try_parse_from(args).expect("arguments parse").command else {
        panic!("a serve command")
    };
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

/// Waits for state nothing announces (the store's rows): asks `probe` every 20 ms until it answers,
/// for at most 20 s. Where an event exists (a run finishing, a call reaching the sandbox), wait on it
/// instead.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The checks a page shows (the Overview's, the Diagnostics page's), as (`data-check`, `data-state`)
/// pairs in page order.
pub fn checks(page: &str) -> Vec<(String, String)> {
    page.split("data-check=\"")
        .skip(1)
        .map(|rest| {
            let id = rest.split('"').next().unwrap().to_string();
            let state = rest
                .split("data-state=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap()
                .to_string();
            (id, state)
        })
        .collect()
}

/// The `data-code` of the sign-in error page.
pub fn error_code(body: &str) -> Option<&str> {
    let start = body.find(r#"data-code=""#)? + 11;
    body[start..].split('"').next()
}
