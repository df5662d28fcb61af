//! Command line and environment. Every setting has a flag and an environment variable; bad or missing
//! settings stop start-up with one line naming the setting and how to fix it.

use clap::{Args, Parser, Subcommand, ValueEnum};
use cosell::crypto::SealingKey;
use cosell::domain::RoleNames;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use url::Url;

#[derive(Debug, Parser)]
#[command(
    name = "cosell",
    version,
    about = "Co-sell referrals connector: Partner Center ⇄ CRM"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the dashboard and the sync engine.
    Serve(Box<ServeArgs>),
    /// Run the sandbox emulators (Entra ID, Partner Center, Dataverse, Salesforce) alone, with demo
    /// data, until stopped: `cosell serve --sandbox-url` then uses them, and survives its own restarts.
    Sandbox(SandboxArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address the emulators listen on.
    #[arg(long, env = "COSELL_SANDBOX_ADDR", default_value = "127.0.0.1:3100")]
    pub addr: SocketAddr,
}

/// The CRM an instance keeps in step with Partner Center.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CrmChoice {
    #[value(name = "dynamics365")]
    Dynamics365,
    #[value(name = "salesforce")]
    Salesforce,
}

impl From<CrmChoice> for cosell::domain::system::Crm {
    fn from(c: CrmChoice) -> Self {
        match c {
            CrmChoice::Dynamics365 => cosell::domain::system::Crm::Dynamics365,
            CrmChoice::Salesforce => cosell::domain::system::Crm::Salesforce,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Start the local emulators (Entra ID, …) in-process with demo data and sign in against them.
    #[arg(long, env = "COSELL_SANDBOX")]
    pub sandbox: bool,
    /// Address the dashboard listens on.
    #[arg(long, env = "COSELL_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Where the sandbox emulators listen (with --sandbox).
    #[arg(long, env = "COSELL_SANDBOX_ADDR", default_value = "127.0.0.1:3100")]
    pub sandbox_addr: SocketAddr,
    /// Use the sandbox already running there (`cosell sandbox`), e.g. https://127.0.0.1:3100, instead of
    /// starting one: sandbox mode as with --sandbox, but the outside world outlives this process, so a
    /// restarted cosell given the same --database-url and --secret-key carries on where it stopped. Its
    /// TLS CA is fetched from its control API (`http://` on the same port) and trusted by this process.
    /// An `http://` URL names the same listener.
    #[arg(long, env = "COSELL_SANDBOX_URL", conflicts_with = "sandbox")]
    pub sandbox_url: Option<String>,
    /// sqlite://path or postgres://… [default: sqlite://./data/cosell.db; with --sandbox a fresh
    /// sqlite://./data/sandbox.db at each start]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "COSELL_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// The URL people use to reach the dashboard (behind a proxy: its https URL). [default: http://ADDR]
    #[arg(long, env = "COSELL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Directory holding the built front end (`pkg/`).
    #[arg(long, env = "COSELL_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Entra ID tenant (directory) id or verified domain. Not `common` or `organizations`.
    #[arg(long, env = "COSELL_ENTRA_TENANT_ID")]
    pub entra_tenant_id: Option<String>,
    /// Entra ID authority host (sovereign clouds differ).
    #[arg(
        long,
        env = "COSELL_ENTRA_AUTHORITY",
        default_value = "https://login.microsoftonline.com"
    )]
    pub entra_authority: String,
    /// Application (client) id of cosell's app registration.
    #[arg(long, env = "COSELL_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// Client secret of cosell's app registration.
    #[arg(long, env = "COSELL_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Redirect URI registered on the app registration. [default: PUBLIC_URL/auth/callback]
    #[arg(long, env = "COSELL_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<String>,
    /// App-role value that makes a person a referrals admin.
    #[arg(long, env = "COSELL_ADMIN_ROLE", default_value = "Cosell.Admin")]
    pub admin_role: String,
    /// App-role value that gives read-only access.
    #[arg(long, env = "COSELL_VIEWER_ROLE", default_value = "Cosell.Viewer")]
    pub viewer_role: String,
    /// PEM file of the root(s) Partner Center's webhook signing certificate must chain to (its
    /// self-signed certificates, the trust anchors) and, optionally, the intermediate(s) between them (the
    /// others; an intermediate left out is fetched from the certificate's caIssuers URL only when that URL
    /// is under --webhook-certificate-url-prefix). Take both from the certificate Microsoft serves
    /// (README, "Partner Center webhook certificates"): which root and intermediate are unconfirmed.
    /// Without it, webhooks are refused (503) outside the sandbox.
    #[arg(long, env = "COSELL_WEBHOOK_TRUST_ANCHORS")]
    pub webhook_trust_anchors: Option<PathBuf>,
    /// Where webhook signing certificates, and the intermediates their caIssuers URL names, may be
    /// fetched from (comma-separated prefixes).
    #[arg(
        long,
        env = "COSELL_WEBHOOK_CERTIFICATE_URL_PREFIX",
        value_delimiter = ',',
        default_value = "https://3psostorageacct.blob.core.windows.net/cert/"
    )]
    pub webhook_certificate_url_prefix: Vec<String>,
    /// Base64 of 32 random bytes sealing secrets at rest (`openssl rand -base64 32`). With --sandbox, a
    /// fresh key is made at each start when unset.
    #[arg(long, env = "COSELL_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// The Dynamics 365 organization URL, e.g. https://contoso.crm.dynamics.com (the sandbox has its own).
    #[arg(long, env = "COSELL_DYNAMICS_URL")]
    pub dynamics_url: Option<String>,
    /// The co-sell solution's opportunity columns where they differ from the defaults, as
    /// key=logical_name pairs: sync, referral_id, referral_link, audit, solutions, help (e.g.
    /// "sync=new_syncwithpartnercenter,audit=new_cosellaudit").
    #[arg(long, env = "COSELL_DYNAMICS_COLUMNS", default_value = "")]
    pub dynamics_columns: String,
    /// Sync workers in this instance.
    #[arg(long, env = "COSELL_WORKERS", default_value_t = 2)]
    pub workers: usize,
    /// The first wait before a failed run is tried again, doubled at each attempt.
    #[arg(long, env = "COSELL_RETRY_BASE_MS", default_value_t = 5000)]
    pub retry_base_ms: u64,
    /// A dashboard session ends after this many minutes without a request (each request starts the
    /// count again); the person then signs in again.
    #[arg(long, env = "COSELL_SESSION_IDLE_MINUTES", default_value_t = 480)]
    pub session_idle_minutes: u32,
    /// How long a worker holds a run before another instance may take it over if this one stops
    /// answering; renewed every third of it while the run works.
    #[arg(long, env = "COSELL_RUN_LEASE_MS", default_value_t = 300_000)]
    pub run_lease_ms: u64,
    /// How long one call to Partner Center or the CRM may take before it counts as failed (and is retried).
    #[arg(long, env = "COSELL_CALL_TIMEOUT_MS", default_value_t = 30_000)]
    pub call_timeout_ms: u64,
    /// How often the CRM's change feed is read (sellers' edits, "Sync with Partner Center" switched).
    #[arg(long, env = "COSELL_CRM_POLL_MS", default_value_t = 60_000)]
    pub crm_poll_ms: u64,
    /// How often the alert rules are judged (they are also judged at once when a connection is
    /// refused or reconnected).
    #[arg(long, env = "COSELL_ALERTS_EVERY_MS", default_value_t = 30_000)]
    pub alerts_every_ms: u64,
    /// The CRM this instance keeps in step with Partner Center (one per instance).
    #[arg(long, env = "COSELL_CRM", value_enum, default_value = "dynamics365")]
    pub crm: CrmChoice,
    /// Where Salesforce users sign in: https://login.salesforce.com, https://test.salesforce.com for a
    /// sandbox org, or your My Domain URL (the sandbox has its own).
    #[arg(
        long,
        env = "COSELL_SALESFORCE_LOGIN_URL",
        default_value = "https://login.salesforce.com"
    )]
    pub salesforce_login_url: String,
    /// Consumer key of the connected app cosell signs in to Salesforce with.
    #[arg(long, env = "COSELL_SALESFORCE_CLIENT_ID")]
    pub salesforce_client_id: Option<String>,
    /// Consumer secret of that connected app.
    #[arg(long, env = "COSELL_SALESFORCE_CLIENT_SECRET", hide_env_values = true)]
    pub salesforce_client_secret: Option<String>,
    /// The co-sell fields' API names on Opportunity where they differ from Microsoft's package, as
    /// key=Api_Name__c pairs: sync, referral_id, referral_link, audit, help, solutions.
    #[arg(long, env = "COSELL_SALESFORCE_FIELDS", default_value = "")]
    pub salesforce_fields: String,
}

/// A configuration problem, naming the setting.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.problem)
    }
}

impl std::error::Error for ConfigError {}

fn problem(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

/// Where people sign in.
#[derive(Debug, Clone)]
pub enum Identity {
    /// The sandbox's Entra ID emulator.
    Sandbox(SandboxMode),
    Entra(OidcSettings),
}

/// Which sandbox: one started in this process, or one running on its own.
#[derive(Debug, Clone)]
pub enum SandboxMode {
    Start(SocketAddr),
    Use(Url),
}

#[derive(Clone)]
pub struct OidcSettings {
    /// `https://login.microsoftonline.com/{tenant}/v2.0`
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: String,
    /// None: `{public_url}/auth/callback`.
    pub redirect_url: Option<Url>,
}

impl fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"…")
            .field("redirect_url", &self.redirect_url.as_ref().map(Url::as_str))
            .finish()
    }
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub addr: SocketAddr,
    pub database_url: String,
    /// True when the sandbox database should start empty (the default sandbox file).
    pub fresh_database: bool,
    pub log_format: LogFormat,
    pub public_url: Option<Url>,
    pub site_root: PathBuf,
    pub identity: Identity,
    pub roles: RoleNames,
    pub sealing_key: SealingKey,
    pub webhooks: WebhookSettings,
    /// The Dynamics 365 organization URL (the token audience), when configured.
    pub dynamics_url: Option<Url>,
    pub dynamics_columns: cosell::engine::crm::dynamics::Columns,
    pub workers: usize,
    pub retry: cosell::engine::retry::RetryPolicy,
    pub crm_poll: std::time::Duration,
    pub alerts_every: std::time::Duration,
    /// How long a dashboard session may stay idle.
    pub session_idle: time::Duration,
    pub crm: cosell::domain::system::Crm,
    /// The connected app, with `--crm salesforce` outside the sandbox (the sandbox brings its own).
    pub salesforce: Option<SalesforceSettings>,
    pub salesforce_fields: cosell::engine::crm::salesforce::Fields,
}

/// The Salesforce connected app cosell connects with.
#[derive(Clone)]
pub struct SalesforceSettings {
    pub login_url: Url,
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for SalesforceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceSettings")
            .field("login_url", &self.login_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"…")
            .finish()
    }
}

/// How inbound Partner Center webhooks are verified. In sandbox mode, unset values come from the sandbox.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub trust_anchors_pem: Option<String>,
    pub certificate_url_prefixes: Vec<String>,
    /// True when the prefixes are the default (the sandbox then substitutes its own).
    pub default_prefixes: bool,
}

impl ServeArgs {
    pub fn into_settings(mut self) -> Result<Settings, ConfigError> {
        let sandbox_url = self
            .sandbox_url
            .as_deref()
            .map(|u| {
                const SETTING: &str = "COSELL_SANDBOX_URL (--sandbox-url)";
                let url = parse_http_url(u.trim().trim_end_matches('/'), SETTING)?;
                if url.path() != "/" || url.query().is_some() {
                    return Err(problem(
                        SETTING,
                        format!("must be the sandbox's address alone, like https://127.0.0.1:3100, got {u:?}"),
                    ));
                }
                Ok(url)
            })
            .transpose()?;
        // A separate sandbox implies what --sandbox implies.
        self.sandbox |= sandbox_url.is_some();
        let public_url = self
            .public_url
            .as_deref()
            .map(|u| parse_http_url(u, "COSELL_PUBLIC_URL (--public-url)"))
            .transpose()?;
        let (database_url, fresh_database) = match self.database_url {
            Some(url)
                if url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://") =>
            {
                (url, false)
            }
            Some(url) => {
                return Err(problem(
                    "DATABASE_URL (--database-url)",
                    format!(
                        "must start with sqlite: or postgres:// (got {:?})",
                        cosell::store::redact_url(&url)
                    ),
                ));
            }
            None if self.sandbox => ("sqlite://./data/sandbox.db".to_string(), true),
            None => ("sqlite://./data/cosell.db".to_string(), false),
        };
        let roles = RoleNames {
            admin: non_empty(self.admin_role, "COSELL_ADMIN_ROLE (--admin-role)")?,
            viewer: non_empty(self.viewer_role, "COSELL_VIEWER_ROLE (--viewer-role)")?,
        };
        if roles.admin == roles.viewer {
            return Err(problem(
                "COSELL_VIEWER_ROLE (--viewer-role)",
                "must differ from the admin role",
            ));
        }
        let sealing_key = match (self.secret_key, self.sandbox) {
            (Some(k), _) => SealingKey::parse_base64(&k)
                .map_err(|e| problem("COSELL_SECRET_KEY (--secret-key)", e.to_string()))?,
            (None, true) => SealingKey::generate(),
            (None, false) => {
                return Err(problem(
                    "COSELL_SECRET_KEY (--secret-key)",
                    "is required: it seals tokens and secrets at rest. Generate one with `openssl rand -base64 32` and keep it safe",
                ));
            }
        };
        let identity = if let Some(url) = sandbox_url {
            Identity::Sandbox(SandboxMode::Use(url))
        } else if self.sandbox {
            Identity::Sandbox(SandboxMode::Start(self.sandbox_addr))
        } else {
            let tenant = self.entra_tenant_id.unwrap_or_default();
            let tenant = tenant.trim();
            if tenant.is_empty() {
                return Err(problem(
                    "COSELL_ENTRA_TENANT_ID (--entra-tenant-id)",
                    "is required (your directory's tenant id, from Entra admin center → Overview), unless --sandbox is given",
                ));
            }
            if matches!(tenant, "common" | "organizations" | "consumers")
                || !tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
            {
                return Err(problem(
                    "COSELL_ENTRA_TENANT_ID (--entra-tenant-id)",
                    format!(
                        "must be your tenant id or verified domain, not {tenant:?}: multi-tenant authorities publish a templated issuer that cannot be verified"
                    ),
                ));
            }
            let authority = parse_http_url(
                &self.entra_authority,
                "COSELL_ENTRA_AUTHORITY (--entra-authority)",
            )?;
            let issuer = Url::parse(&format!(
                "{}/{tenant}/v2.0",
                authority.as_str().trim_end_matches('/')
            ))
            .map_err(|e| problem("COSELL_ENTRA_TENANT_ID (--entra-tenant-id)", e.to_string()))?;
            let client_id = non_empty(
                self.oidc_client_id.unwrap_or_default(),
                "COSELL_OIDC_CLIENT_ID (--oidc-client-id)",
            )
            .map_err(|e| ConfigError {
                problem: "is required: the Application (client) ID of cosell's app registration"
                    .into(),
                ..e
            })?;
            let client_secret = non_empty(
                self.oidc_client_secret.unwrap_or_default(),
                "COSELL_OIDC_CLIENT_SECRET (--oidc-client-secret)",
            )
            .map_err(|e| ConfigError {
                problem: "is required: a client secret value of cosell's app registration".into(),
                ..e
            })?;
            let redirect_url = self
                .oidc_redirect_url
                .as_deref()
                .map(|u| parse_http_url(u, "COSELL_OIDC_REDIRECT_URL (--oidc-redirect-url)"))
                .transpose()?;
            Identity::Entra(OidcSettings {
                issuer,
                client_id,
                client_secret,
                redirect_url,
            })
        };
        let trust_anchors_pem = self
            .webhook_trust_anchors
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path).map_err(|e| {
                    problem(
                        "COSELL_WEBHOOK_TRUST_ANCHORS (--webhook-trust-anchors)",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })
            })
            .transpose()?;
        let default_prefixes = self.webhook_certificate_url_prefix
            == [cosell::clients::partner_center::webhook_signature::MICROSOFT_CERTIFICATE_PREFIX];
        let webhooks = WebhookSettings {
            trust_anchors_pem,
            certificate_url_prefixes: self.webhook_certificate_url_prefix,
            default_prefixes,
        };
        let dynamics_url = self
            .dynamics_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|u| {
                parse_http_url(
                    u.trim().trim_end_matches('/'),
                    "COSELL_DYNAMICS_URL (--dynamics-url)",
                )
            })
            .transpose()?;
        let dynamics_columns = cosell::engine::crm::cosell_fields::CoSellFields::parse(
            cosell::domain::system::Crm::Dynamics365,
            &self.dynamics_columns,
        )
        .map_err(|why| problem("COSELL_DYNAMICS_COLUMNS (--dynamics-columns)", why))?;
        if self.workers == 0 {
            return Err(problem("COSELL_WORKERS (--workers)", "must be at least 1"));
        }
        let salesforce_fields = cosell::engine::crm::cosell_fields::CoSellFields::parse(
            cosell::domain::system::Crm::Salesforce,
            &self.salesforce_fields,
        )
        .map_err(|why| problem("COSELL_SALESFORCE_FIELDS (--salesforce-fields)", why))?;
        let salesforce = match (self.crm, self.sandbox) {
            (CrmChoice::Salesforce, false) => Some(SalesforceSettings {
                login_url: parse_http_url(
                    self.salesforce_login_url.trim().trim_end_matches('/'),
                    "COSELL_SALESFORCE_LOGIN_URL (--salesforce-login-url)",
                )?,
                client_id: non_empty(
                    self.salesforce_client_id.unwrap_or_default(),
                    "COSELL_SALESFORCE_CLIENT_ID (--salesforce-client-id)",
                )
                .map_err(|e| ConfigError {
                    problem: "is required with --crm salesforce: the Consumer Key of your connected app (Setup → App Manager)".into(),
                    ..e
                })?,
                client_secret: non_empty(
                    self.salesforce_client_secret.unwrap_or_default(),
                    "COSELL_SALESFORCE_CLIENT_SECRET (--salesforce-client-secret)",
                )
                .map_err(|e| ConfigError {
                    problem: "is required with --crm salesforce: the Consumer Secret of your connected app".into(),
                    ..e
                })?,
            }),
            _ => None,
        };
        let retry = cosell::engine::retry::RetryPolicy {
            base: std::time::Duration::from_millis(self.retry_base_ms.max(1)),
            call_timeout: std::time::Duration::from_millis(self.call_timeout_ms.max(1)),
            lease: std::time::Duration::from_millis(self.run_lease_ms.max(300)),
            ..Default::default()
        };
        Ok(Settings {
            crm: self.crm.into(),
            salesforce,
            salesforce_fields,
            dynamics_url,
            dynamics_columns,
            workers: self.workers,
            retry,
            crm_poll: std::time::Duration::from_millis(self.crm_poll_ms.max(100)),
            alerts_every: std::time::Duration::from_millis(self.alerts_every_ms.max(100)),
            session_idle: time::Duration::minutes(i64::from(self.session_idle_minutes.max(1))),
            webhooks,
            addr: self.addr,
            database_url,
            fresh_database,
            log_format: self.log_format,
            public_url,
            site_root: self.site_root,
            identity,
            roles,
            sealing_key,
        })
    }
}

fn non_empty(value: String, setting: &'static str) -> Result<String, ConfigError> {
    let v = value.trim().to_string();
    if v.is_empty() {
        Err(problem(setting, "must not be empty"))
    } else {
        Ok(v)
    }
}

fn parse_http_url(text: &str, setting: &'static str) -> Result<Url, ConfigError> {
    let url =
        Url::parse(text).map_err(|e| problem(setting, format!("is not a URL ({e}): {text:?}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(problem(
            setting,
            format!("must be an http(s) URL with a host, got {text:?}"),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let mut full = vec!["cosell", "serve"];
        full.extend_from_slice(args);
        let Command::Serve(args) = Cli::try_parse_from(full).expect("parses").command else {
            panic!("a serve command")
        };
        args.into_settings()
    }

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    #[test]
    fn salesforce_needs_its_connected_app_outside_the_sandbox() {
        let s = parse(&["--sandbox", "--crm", "salesforce"]).unwrap();
        assert_eq!(s.crm, cosell::domain::system::Crm::Salesforce);
        assert!(s.salesforce.is_none(), "the sandbox brings its own");
        let entra = [
            "--secret-key",
            KEY,
            "--entra-tenant-id",
            "contoso.onmicrosoft.com",
            "--oidc-client-id",
            "c",
            "--oidc-client-secret",
            "s",
            "--crm",
            "salesforce",
        ];
        let err = parse(&entra).unwrap_err();
        assert_eq!(
            err.setting,
            "COSELL_SALESFORCE_CLIENT_ID (--salesforce-client-id)"
        );
        let mut with_id = entra.to_vec();
        with_id.extend(["--salesforce-client-id", "3MVG9"]);
        let err = parse(&with_id).unwrap_err();
        assert_eq!(
            err.setting,
            "COSELL_SALESFORCE_CLIENT_SECRET (--salesforce-client-secret)"
        );
        let mut bad_url = with_id.clone();
        bad_url.extend([
            "--salesforce-client-secret",
            "x",
            "--salesforce-login-url",
            "login",
        ]);
        let err = parse(&bad_url).unwrap_err();
        assert_eq!(
            err.setting,
            "COSELL_SALESFORCE_LOGIN_URL (--salesforce-login-url)"
        );
        let mut good = with_id.clone();
        good.extend([
            "--salesforce-client-secret",
            "x",
            "--salesforce-login-url",
            "https://test.salesforce.com/",
        ]);
        let s = parse(&good).unwrap();
        let sf = s.salesforce.expect("salesforce settings");
        assert_eq!(sf.login_url.as_str(), "https://test.salesforce.com/");
        assert!(
            !format!("{sf:?}").contains("\"x\""),
            "the secret is never printed"
        );
        let unknown = Cli::try_parse_from(["cosell", "serve", "--sandbox", "--crm", "sap"]);
        assert!(unknown.is_err(), "an unknown CRM stops start-up");
    }

    #[test]
    fn sandbox_needs_nothing_else() {
        let s = parse(&["--sandbox"]).unwrap();
        assert_eq!(s.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(s.database_url, "sqlite://./data/sandbox.db");
        assert!(s.fresh_database);
        assert!(matches!(
            s.identity,
            Identity::Sandbox(SandboxMode::Start(_))
        ));
    }

    #[test]
    fn a_separate_sandbox_keeps_the_database_and_key_given() {
        let s = parse(&[
            "--sandbox-url",
            "https://127.0.0.1:3100/",
            "--database-url",
            "sqlite://./data/chaos.db",
            "--secret-key",
            KEY,
        ])
        .unwrap();
        assert!(
            matches!(&s.identity, Identity::Sandbox(SandboxMode::Use(u)) if u.as_str() == "https://127.0.0.1:3100/")
        );
        assert_eq!(s.database_url, "sqlite://./data/chaos.db");
        assert!(!s.fresh_database, "a restarted cosell opens what it had");
        let err = parse(&["--sandbox-url", "localhost:3100"]).unwrap_err();
        assert_eq!(err.setting, "COSELL_SANDBOX_URL (--sandbox-url)");
        let err = parse(&["--sandbox-url", "https://127.0.0.1:3100/v1.0"]).unwrap_err();
        assert_eq!(err.setting, "COSELL_SANDBOX_URL (--sandbox-url)");
        assert!(
            Cli::try_parse_from(["cosell", "serve", "--sandbox", "--sandbox-url", "http://x"])
                .is_err(),
            "one sandbox or the other"
        );
    }

    #[test]
    fn entra_settings_are_required_outside_the_sandbox() {
        let err = parse(&["--secret-key", KEY]).unwrap_err();
        assert_eq!(err.setting, "COSELL_ENTRA_TENANT_ID (--entra-tenant-id)");
        let err = parse(&[
            "--secret-key",
            KEY,
            "--entra-tenant-id",
            "contoso.onmicrosoft.com",
        ])
        .unwrap_err();
        assert_eq!(err.setting, "COSELL_OIDC_CLIENT_ID (--oidc-client-id)");
        let err = parse(&[
            "--secret-key",
            KEY,
            "--entra-tenant-id",
            "t",
            "--oidc-client-id",
            "c",
        ])
        .unwrap_err();
        assert_eq!(
            err.setting,
            "COSELL_OIDC_CLIENT_SECRET (--oidc-client-secret)"
        );
        let err = parse(&[
            "--entra-tenant-id",
            "t",
            "--oidc-client-id",
            "c",
            "--oidc-client-secret",
            "s",
        ])
        .unwrap_err();
        assert_eq!(err.setting, "COSELL_SECRET_KEY (--secret-key)");

        let s = parse(&[
            "--secret-key",
            KEY,
            "--entra-tenant-id",
            "contoso.onmicrosoft.com",
            "--oidc-client-id",
            "c",
            "--oidc-client-secret",
            "s",
        ])
        .unwrap();
        let Identity::Entra(oidc) = s.identity else {
            panic!("entra")
        };
        assert_eq!(
            oidc.issuer.as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
        );
        assert!(
            !format!("{oidc:?}").contains("\"s\""),
            "secret is not in Debug output"
        );
        assert_eq!(s.database_url, "sqlite://./data/cosell.db");
        assert!(!s.fresh_database);
    }

    #[test]
    fn bad_values_name_their_setting() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["--sandbox", "--secret-key", "short"],
                "COSELL_SECRET_KEY (--secret-key)",
            ),
            (
                &["--sandbox", "--database-url", "mysql://x"],
                "DATABASE_URL (--database-url)",
            ),
            (
                &["--sandbox", "--public-url", "not a url"],
                "COSELL_PUBLIC_URL (--public-url)",
            ),
            (
                &["--sandbox", "--public-url", "ftp://x"],
                "COSELL_PUBLIC_URL (--public-url)",
            ),
            (
                &["--sandbox", "--admin-role", " "],
                "COSELL_ADMIN_ROLE (--admin-role)",
            ),
            (
                &["--sandbox", "--viewer-role", "Cosell.Admin"],
                "COSELL_VIEWER_ROLE (--viewer-role)",
            ),
            (
                &["--secret-key", KEY, "--entra-tenant-id", "common"],
                "COSELL_ENTRA_TENANT_ID (--entra-tenant-id)",
            ),
            (
                &["--secret-key", KEY, "--entra-tenant-id", "a/b"],
                "COSELL_ENTRA_TENANT_ID (--entra-tenant-id)",
            ),
        ];
        for (args, setting) in cases {
            let err = parse(args).unwrap_err();
            assert_eq!(err.setting, *setting, "{args:?}: {err}");
            assert!(!err.to_string().contains('\n'), "one line: {err}");
        }
    }

    #[test]
    fn an_unreadable_trust_anchor_file_is_named() {
        let err = parse(&[
            "--sandbox",
            "--webhook-trust-anchors",
            "/nonexistent/anchors.pem",
        ])
        .unwrap_err();
        assert_eq!(
            err.setting,
            "COSELL_WEBHOOK_TRUST_ANCHORS (--webhook-trust-anchors)"
        );
    }

    #[test]
    fn bad_database_urls_are_redacted_in_the_message() {
        let err = parse(&["--sandbox", "--database-url", "mysql://u:hunter2@h/x"]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
