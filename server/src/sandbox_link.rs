//! The sandbox cosell runs against: started in this process (`--sandbox`) or already running as a
//! process of its own (`--sandbox-url`, started by `cosell sandbox`). A separate sandbox is what lets a
//! test kill cosell and start it again against the same outside world, so everything cosell needs from
//! it at start-up goes over its control API, the same for both: the in-process sandbox is asked the
//! same way, so every test runs the path a separate one needs.
//!
//! The sandbox serves its emulated APIs over HTTPS with a certificate from a CA of its own, and its
//! control API over plain HTTP as well, on the same port. cosell trusts that CA in sandbox mode only
//! ([`SandboxLink::tls_trust`]), fetched at `GET /_control/tls/ca` (plain HTTP, loopback: the one thing
//! that cannot be asked over HTTPS before the CA is known).

use cosell::clients::tls::TlsTrust;
use cosell_sandbox::Sandbox;
use cosell_sandbox::entra::{DASHBOARD_CLIENT_ID, TENANT_ID};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct SandboxLink {
    /// `https://host:port`: the emulated APIs.
    base_url: String,
    /// `http://host:port`: the control API, on the same listener.
    control_url: String,
    /// For the control API (plain HTTP).
    http: reqwest::Client,
    /// The public roots and the sandbox's CA, fetched at start-up.
    tls: TlsTrust,
    /// The sandbox this process started, if it did (stopped with it; tests drive its Rust handles).
    owned: Option<Arc<Sandbox>>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the sandbox at {base_url} did not answer {what}: {detail}. Start it with `cosell sandbox --addr …` first"
)]
pub struct RemoteError {
    base_url: String,
    what: &'static str,
    detail: String,
}

impl SandboxLink {
    /// The sandbox listening at `url`'s host and port (`https://127.0.0.1:3100`; `http://` names the
    /// same listener), with its CA fetched from its control API.
    pub async fn remote(url: &url::Url) -> Result<Self, RemoteError> {
        // The settings made sure of an http(s) URL with a host (an IPv6 one comes bracketed).
        let authority = format!(
            "{}:{}",
            url.host_str().unwrap_or("127.0.0.1"),
            url.port_or_known_default().unwrap_or(443)
        );
        Self::connect(
            format!("https://{authority}"),
            format!("http://{authority}"),
            None,
        )
        .await
    }

    /// The sandbox this process started, asked over its control API like a separate one.
    pub async fn in_process(sandbox: Arc<Sandbox>) -> Result<Self, RemoteError> {
        Self::connect(sandbox.base_url(), sandbox.control_url(), Some(sandbox)).await
    }

    async fn connect(
        base_url: String,
        control_url: String,
        owned: Option<Arc<Sandbox>>,
    ) -> Result<Self, RemoteError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a plain HTTP client builds");
        let mut link = SandboxLink {
            base_url,
            control_url,
            http,
            tls: TlsTrust::default(),
            owned,
        };
        let ca = link.text("/_control/tls/ca", "its TLS CA").await?;
        link.tls = TlsTrust::with_sandbox_ca(&ca).map_err(|e| link.error("its TLS CA", e))?;
        Ok(link)
    }

    /// Where the emulated APIs are (`https://…`).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Where the control API is over plain HTTP (`http://…`, the same listener).
    pub fn control_url(&self) -> String {
        self.control_url.clone()
    }

    /// What cosell's HTTPS clients trust in sandbox mode: the public roots and the sandbox's CA.
    pub fn tls_trust(&self) -> TlsTrust {
        self.tls.clone()
    }

    /// The sandbox this process started, for tests that drive it through its Rust handles.
    pub fn owned(&self) -> Option<Arc<Sandbox>> {
        self.owned.clone()
    }

    /// The Entra issuer of the sandbox's tenant.
    pub fn issuer(&self) -> String {
        format!("{}/{TENANT_ID}/v2.0", self.base_url)
    }

    /// Lets the dashboard's app registration redirect to `uri` (cosell knows its address only once bound).
    pub async fn register_dashboard_redirect(&self, uri: &str) -> Result<(), RemoteError> {
        self.post(
            "/_control/entra/redirect-uris",
            serde_json::json!({ "client_id": DASHBOARD_CLIENT_ID, "redirect_uri": uri }),
            "the Entra redirect URI registration",
        )
        .await
    }

    /// Lets the Salesforce connected app redirect to `uri`.
    pub async fn register_salesforce_redirect(&self, uri: &str) -> Result<(), RemoteError> {
        self.post(
            "/_control/salesforce/redirect-uris",
            serde_json::json!({ "redirect_uri": uri }),
            "the Salesforce redirect URI registration",
        )
        .await
    }

    /// The root Partner Center's webhook signing certificate chains to, in the sandbox.
    pub async fn trust_anchor_pem(&self) -> Result<String, RemoteError> {
        self.text("/_control/partner-center/trust-anchor", "the trust anchor")
            .await
    }

    /// "Name (key)" of each demo user, for the banner.
    pub async fn demo_users(&self) -> Result<Vec<String>, RemoteError> {
        #[derive(serde::Deserialize)]
        struct User {
            key: String,
            name: String,
        }
        let what = "the demo users";
        let users: Vec<User> = self
            .get("/_control/entra/users", what)
            .await?
            .json()
            .await
            .map_err(|e| self.error(what, e))?;
        Ok(users
            .into_iter()
            .map(|u| format!("{} ({})", u.name, u.key))
            .collect())
    }

    /// Stops the sandbox this process started; a separate one keeps running for the next cosell.
    pub fn shutdown(&self) {
        if let Some(sb) = &self.owned {
            sb.shutdown();
        }
    }

    async fn get(&self, path: &str, what: &'static str) -> Result<reqwest::Response, RemoteError> {
        self.http
            .get(format!("{}{path}", self.control_url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| self.error(what, e))
    }

    async fn text(&self, path: &str, what: &'static str) -> Result<String, RemoteError> {
        self.get(path, what)
            .await?
            .text()
            .await
            .map_err(|e| self.error(what, e))
    }

    async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
        what: &'static str,
    ) -> Result<(), RemoteError> {
        self.http
            .post(format!("{}{path}", self.control_url))
            .json(&body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map(|_| ())
            .map_err(|e| self.error(what, e))
    }

    fn error(&self, what: &'static str, e: impl std::fmt::Display) -> RemoteError {
        RemoteError {
            base_url: self.base_url.clone(),
            what,
            detail: e.to_string(),
        }
    }
}
