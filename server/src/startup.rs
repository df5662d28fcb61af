//! Building and running the application: listener, store, sign-in, sessions, router, and with
//! `--sandbox` the emulators. Tests start the real thing on port 0 through [`Application::build`].

use crate::config::{Identity, OidcSettings, SandboxMode, Settings};
use crate::sandbox_link::SandboxLink;
use crate::signin::{self, SignIn};
use crate::{api_input, api_status, connections, detached, ops, security, webhooks};
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use cosell::clients::entra::EntraClient;
use cosell::clients::partner_center::webhook_signature::SignatureVerifier;
use cosell::clients::salesforce::SalesforceOAuth;
use cosell::clients::tls::TlsTrust;
use cosell::crypto::{SealingKey, Secret};
use cosell::domain::system::Crm;
use cosell::engine::tokens::TokenSource;
use cosell::engine::{Endpoints, Engine};
use cosell::store::Store;
use cosell_app::auth::server::ServerContext;
use cosell_app::{App, shell};
use cosell_sandbox::Sandbox;
use cosell_sandbox::entra::{DASHBOARD_CLIENT_ID, DASHBOARD_CLIENT_SECRET};

use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use metrics_exporter_prometheus::PrometheusHandle;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tower_http::compression::CompressionLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};
use url::Url;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub store: Store,
    pub sign_in: Arc<SignIn>,
    pub prometheus: PrometheusHandle,
    /// None when no trust anchors are configured: webhooks are then refused.
    pub webhook_verifier: Option<Arc<SignatureVerifier>>,
    pub inbox: broadcast::Sender<webhooks::InboxNotice>,
    pub engine: Arc<Engine>,
    pub sealing_key: SealingKey,
    pub live: crate::live::Live,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("COSELL_ADDR (--addr): cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("COSELL_SANDBOX_ADDR (--sandbox-addr): cannot start the sandbox on {addr}: {source}")]
    Sandbox {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("COSELL_SANDBOX_URL (--sandbox-url): {0}")]
    SandboxUnreachable(#[from] crate::sandbox_link::RemoteError),
    #[error("DATABASE_URL (--database-url): {0}")]
    Store(#[from] cosell::store::StoreError),
    #[error("sign-in settings: {0}")]
    SignIn(String),
    #[error("COSELL_WEBHOOK_TRUST_ANCHORS / COSELL_WEBHOOK_CERTIFICATE_URL_PREFIX: {0}")]
    Webhooks(String),
    #[error("sync engine: {0}")]
    Engine(String),
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    addr: SocketAddr,
    public_url: Url,
    store: Store,
    sandbox: Option<SandboxLink>,
    issuer: String,
    inbox: broadcast::Sender<webhooks::InboxNotice>,
    engine: Arc<Engine>,
    workers: usize,
    crm_poll: std::time::Duration,
    alerts_every: std::time::Duration,
    live: crate::live::Live,
}

const SESSION_COOKIE: &str = "cosell.sid";

/// Where this instance receives Partner Center's webhooks.
fn callback_url(public_url: &Url) -> String {
    format!(
        "{}/webhooks/partner-center",
        public_url.as_str().trim_end_matches('/')
    )
}

/// How often the inbox is swept for events stored but not queued (a crash between the two, here or in
/// another instance): such an event becomes a run within this time.
const INBOX_DRAIN_EVERY: Duration = Duration::from_secs(2);

/// How often each instance runs the Diagnostics checks by itself (a page load looks too, kept a minute).
const DIAGNOSTICS_EVERY: Duration = Duration::from_secs(60 * 60);

/// How often an instance asks whether the daily reconciliation is due (one is queued, whichever asks).
const RECONCILIATION_CHECK_EVERY: Duration = Duration::from_secs(10 * 60);
/// How often history older than its retention is removed.
const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

impl Application {
    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        let listener =
            TcpListener::bind(settings.addr)
                .await
                .map_err(|source| StartError::Listen {
                    addr: settings.addr,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: settings.addr,
            source,
        })?;
        let public_url = settings.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{addr}")).expect("socket address makes a URL")
        });
        let default_redirect = format!(
            "{}/auth/callback",
            public_url.as_str().trim_end_matches('/')
        );

        let connect_redirect = format!(
            "{}/connections/callback",
            public_url.as_str().trim_end_matches('/')
        );
        // The CAs every HTTPS client below trusts: the public roots, plus the sandbox's own CA in
        // sandbox mode only (its emulators speak HTTPS with a certificate it issued).
        let (oidc, sandbox, tls) = match &settings.identity {
            Identity::Sandbox(mode) => {
                let sandbox = match mode {
                    SandboxMode::Start(sandbox_addr) => {
                        SandboxLink::in_process(Arc::new(
                            Sandbox::start(*sandbox_addr).await.map_err(|source| {
                                StartError::Sandbox {
                                    addr: *sandbox_addr,
                                    source,
                                }
                            })?,
                        ))
                        .await?
                    }
                    SandboxMode::Use(url) => SandboxLink::remote(url).await?,
                };
                sandbox
                    .register_dashboard_redirect(&default_redirect)
                    .await?;
                sandbox
                    .register_dashboard_redirect(&connect_redirect)
                    .await?;
                let oidc = OidcSettings {
                    issuer: Url::parse(&sandbox.issuer()).expect("sandbox issuer is a URL"),
                    client_id: DASHBOARD_CLIENT_ID.into(),
                    client_secret: DASHBOARD_CLIENT_SECRET.into(),
                    redirect_url: None,
                };
                let tls = sandbox.tls_trust();
                (oidc, Some(sandbox), tls)
            }
            Identity::Entra(oidc) => (oidc.clone(), None, TlsTrust::public_roots()),
        };

        if settings.fresh_database {
            remove_sqlite_file(&settings.database_url);
        }
        let store = Store::connect(&settings.database_url).await?;
        let sessions = store.session_backend().await?;
        spawn_expired_session_sweeper(sessions.clone());

        let redirect = oidc
            .redirect_url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or(default_redirect);
        let sign_in = SignIn::new(
            oidc.issuer.as_str().trim_end_matches('/'),
            oidc.client_id.clone(),
            oidc.client_secret.clone(),
            &redirect,
            settings.roles.clone(),
            &tls,
        )
        .map_err(StartError::SignIn)?;
        let issuer = sign_in.issuer().to_string();

        let webhook_verifier = webhook_verifier(&settings, sandbox.as_ref(), &tls).await?;
        let engine = engine(
            &settings,
            &oidc,
            &connect_redirect,
            sandbox.as_ref(),
            &tls,
            store.clone(),
        )
        .await?;
        let (inbox, _) = broadcast::channel(256);

        let leptos_options = LeptosOptions::builder()
            .output_name("cosell")
            .site_root(settings.site_root.to_string_lossy().to_string())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build();
        let live = crate::live::Live::default();
        let state = AppState {
            leptos_options: leptos_options.clone(),
            store: store.clone(),
            sign_in: Arc::new(sign_in),
            prometheus: ops::prometheus(),
            webhook_verifier,
            inbox: inbox.clone(),
            engine: engine.clone(),
            sealing_key: settings.sealing_key.clone(),
            live: live.clone(),
        };
        let server_context = ServerContext {
            store: store.clone(),
            roles: settings.roles.clone(),
            engine: engine.clone(),
            sealing_key: settings.sealing_key.clone(),
            callback_url: callback_url(&public_url),
        };

        let session_layer = SessionManagerLayer::new(sessions)
            .with_name(SESSION_COOKIE)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(public_url.scheme() == "https")
            .with_expiry(Expiry::OnInactivity(settings.session_idle));

        let routes = route_list();
        let context = move || provide_context(server_context.clone());
        let router = Router::new()
            .route("/healthz", get(ops::health))
            .route("/metrics", get(ops::metrics))
            .route(
                "/webhooks/partner-center",
                axum::routing::post(webhooks::partner_center).layer(
                    axum::extract::DefaultBodyLimit::max(webhooks::MAX_BODY_BYTES),
                ),
            )
            .merge(signin::routes())
            .merge(connections::routes())
            .merge(crate::live::routes())
            .leptos_routes_with_context(&state, routes, context.clone(), {
                let options = leptos_options.clone();
                move || shell(options.clone())
            })
            .fallback(leptos_axum::file_and_error_handler_with_context::<
                AppState,
                _,
            >(context, shell))
            .layer(axum::middleware::from_fn(detached::run_to_completion))
            .layer(axum::middleware::from_fn(
                api_input::refuse_unexpected_fields,
            ))
            .layer(axum::middleware::from_fn(api_status::error_status))
            .layer(session_layer)
            .layer(axum::middleware::from_fn_with_state(
                public_url.scheme().to_string(),
                security::refuse_cross_origin,
            ))
            .layer(axum::middleware::from_fn(ops::track))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
            )
            .layer(CompressionLayer::new())
            .with_state(state);

        Ok(Application {
            live,
            listener,
            router,
            addr,
            public_url,
            store,
            sandbox,
            issuer,
            inbox,
            engine,
            workers: settings.workers,
            crm_poll: settings.crm_poll,
            alerts_every: settings.alerts_every,
        })
    }

    /// The sync engine (tests watch runs finish through it).
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_string()
    }

    /// The sandbox's base URL (`https://…`), in sandbox mode.
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(|s| s.base_url())
    }

    /// The sandbox's control API over plain HTTP (`http://…`, the same listener), in sandbox mode.
    pub fn sandbox_control_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(|s| s.control_url())
    }

    /// The in-process sandbox, when running with `--sandbox`.
    pub fn sandbox(&self) -> Option<Arc<Sandbox>> {
        self.sandbox.as_ref().and_then(SandboxLink::owned)
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// Every stored webhook delivery, as it happens.
    pub fn subscribe_inbox(&self) -> broadcast::Receiver<webhooks::InboxNotice> {
        self.inbox.subscribe()
    }

    pub async fn print_banner(&self) {
        tracing::info!(url = %self.base_url(), issuer = %self.issuer, "cosell is listening");
        println!("cosell dashboard: {}", self.base_url());
        if let Some(sandbox) = &self.sandbox {
            println!(
                "sandbox emulators: {} (Entra ID issuer {}; their TLS CA: {}/_control/tls/ca)",
                sandbox.base_url(),
                self.issuer,
                sandbox.control_url()
            );
            match sandbox.demo_users().await {
                Ok(users) => println!("sandbox demo users: {}", users.join(", ")),
                Err(e) => tracing::warn!(error = %e, "could not list the sandbox's demo users"),
            }
        }
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_workers, stopped) = tokio::sync::watch::channel(false);
        self.engine
            .spawn_inbox_drain(INBOX_DRAIN_EVERY, stopped.clone());
        self.engine
            .spawn_change_feed(self.crm_poll, stopped.clone());
        self.engine
            .spawn_reconciliation_schedule(RECONCILIATION_CHECK_EVERY, stopped.clone());
        self.engine.spawn_retention(PRUNE_EVERY, stopped.clone());
        self.engine.spawn_diagnostics_schedule(
            callback_url(&self.public_url),
            DIAGNOSTICS_EVERY,
            stopped.clone(),
        );
        self.engine
            .spawn_alerts(self.base_url(), self.alerts_every, stopped.clone());
        self.engine.spawn_workers(self.workers, stopped);
        self.live
            .spawn_watch(self.store.clone(), crate::live::LIVE_EVERY);
        // Open live-page streams end as shutdown begins, or the server would wait on them forever.
        let live = self.live.clone();
        let shutdown = async move {
            shutdown.await;
            live.close();
        };
        let result = axum::serve(self.listener, self.router.into_make_service())
            .with_graceful_shutdown(shutdown)
            .await;
        let _ = stop_workers.send(true);
        if let Some(sandbox) = &self.sandbox {
            sandbox.shutdown();
        }
        self.store.close().await;
        result
    }
}

/// One span per request, naming the route pattern and the path but never the query string: the sign-in
/// callback's query carries the authorization code.
/// The app's routes, generated once per process. Generating them runs the app with resource loading
/// suppressed through a process-wide flag, and a resource first polled meanwhile — a page being
/// rendered by another server in the same process, as in the tests — waits forever
/// (leptos-rs/leptos#4773). Once per process, no page can be rendering while it happens.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        route = %route,
    )
}

/// The verifier for inbound webhooks. In sandbox mode, unset settings come from the sandbox: its root
/// as trust anchor and its certificate URL as the allowed prefix (the intermediate, not in the bundle, is
/// fetched from the same prefix through the signing certificate's caIssuers URL, as a real one may be).
async fn webhook_verifier(
    settings: &Settings,
    sandbox: Option<&SandboxLink>,
    tls: &TlsTrust,
) -> Result<Option<Arc<SignatureVerifier>>, StartError> {
    let hooks = &settings.webhooks;
    let (anchors, prefixes) = match sandbox {
        Some(sandbox) => (
            match &hooks.trust_anchors_pem {
                Some(pem) => Some(pem.clone()),
                None => Some(sandbox.trust_anchor_pem().await?),
            },
            if hooks.default_prefixes {
                vec![format!("{}/cert/", sandbox.base_url())]
            } else {
                hooks.certificate_url_prefixes.clone()
            },
        ),
        None => (
            hooks.trust_anchors_pem.clone(),
            hooks.certificate_url_prefixes.clone(),
        ),
    };
    let Some(anchors) = anchors else {
        tracing::warn!(
            "COSELL_WEBHOOK_TRUST_ANCHORS is not set: Partner Center webhooks will be refused"
        );
        return Ok(None);
    };
    SignatureVerifier::new(&prefixes, &anchors, tls)
        .map(|v| Some(Arc::new(v)))
        .map_err(|e| StartError::Webhooks(e.to_string()))
}

/// The sync engine, with the endpoints of the real services or of the sandbox.
async fn engine(
    settings: &Settings,
    oidc: &OidcSettings,
    connect_redirect: &str,
    sandbox: Option<&SandboxLink>,
    tls: &TlsTrust,
    store: Store,
) -> Result<Arc<Engine>, StartError> {
    // The issuer is `{authority}/{tenant}/v2.0`; the OAuth endpoints live under `{authority}/{tenant}`.
    let authority = oidc
        .issuer
        .as_str()
        .trim_end_matches('/')
        .trim_end_matches("/v2.0")
        .to_string();
    let entra = EntraClient::new(
        &authority,
        &oidc.client_id,
        &Secret::new(oidc.client_secret.clone()),
        connect_redirect,
        tls,
    )
    .map_err(StartError::Engine)?;
    let endpoints = match sandbox {
        Some(sb) => Endpoints {
            partner_center_api: sb.base_url(),
            partner_center_webhooks_api: sb.base_url(),
            dynamics_resource: Some(
                settings
                    .dynamics_url
                    .as_ref()
                    .map(|u| u.as_str().trim_end_matches('/').to_string())
                    .unwrap_or_else(|| cosell_sandbox::dataverse::ORGANIZATION_URL.to_string()),
            ),
            dynamics_api: Some(format!("{}/api/data/v9.2", sb.base_url())),
            dynamics_columns: settings.dynamics_columns.clone(),
            crm: settings.crm,
            salesforce_fields: settings.salesforce_fields.clone(),
            tls: tls.clone(),
        },
        None => Endpoints {
            partner_center_api: "https://api.partner.microsoft.com".into(),
            partner_center_webhooks_api: "https://api.partnercenter.microsoft.com".into(),
            dynamics_resource: settings
                .dynamics_url
                .as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_string()),
            dynamics_api: settings
                .dynamics_url
                .as_ref()
                .map(|u| format!("{}/api/data/v9.2", u.as_str().trim_end_matches('/'))),
            dynamics_columns: settings.dynamics_columns.clone(),
            crm: settings.crm,
            salesforce_fields: settings.salesforce_fields.clone(),
            tls: tls.clone(),
        },
    };
    let tokens = TokenSource::new(store.clone(), settings.sealing_key.clone(), entra);
    // Salesforce signs its users in itself, through the connected app (the sandbox brings one).
    let salesforce = match (settings.crm, sandbox, &settings.salesforce) {
        (Crm::Salesforce, Some(sb), _) => Some({
            sb.register_salesforce_redirect(connect_redirect).await?;
            SalesforceOAuth::new(
                &sb.base_url(),
                cosell_sandbox::salesforce::SALESFORCE_CLIENT_ID,
                &Secret::new(cosell_sandbox::salesforce::SALESFORCE_CLIENT_SECRET),
                connect_redirect,
                tls,
            )
        }),
        (Crm::Salesforce, None, Some(app)) => Some(SalesforceOAuth::new(
            app.login_url.as_str(),
            &app.client_id,
            &Secret::new(app.client_secret.clone()),
            connect_redirect,
            tls,
        )),
        _ => None,
    };
    let tokens = Arc::new(match salesforce {
        Some(oauth) => tokens.with_salesforce(oauth.map_err(StartError::Engine)?),
        None => tokens,
    });
    Engine::new(store, tokens, endpoints, settings.retry.clone()).map_err(StartError::Engine)
}

fn spawn_expired_session_sweeper(sessions: cosell::store::SessionBackend) {
    use tower_sessions::ExpiredDeletion;
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            if let Err(e) = sessions.delete_expired().await {
                tracing::warn!(error = %e, "could not delete expired sessions");
            }
        }
    });
}

/// The sandbox starts from a clean slate: its emulators forget everything at each start, so must we.
fn remove_sqlite_file(url: &str) {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}
