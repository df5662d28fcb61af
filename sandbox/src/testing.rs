//! Helpers for tests that use the sandbox from outside: HTTP clients that trust the sandbox's CA, tokens
//! obtained the real way (authorize page, PKCE, token endpoint, over HTTPS) and a webhook receiver that
//! records what it is sent.

use crate::Sandbox;
use crate::entra::{DASHBOARD_CLIENT_ID, DASHBOARD_CLIENT_SECRET, TENANT_ID};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// An Authority Information Access extension naming `url` as the issuer's certificate (caIssuers), for
/// certificate chains made in tests the way the sandbox makes its own.
pub use crate::partner_center::signer::ca_issuers_extension;

const REDIRECT: &str = "http://127.0.0.1:9/testing-callback";

/// The sandbox's CA, for a client's trust store.
pub fn tls_ca(sandbox: &Sandbox) -> reqwest::Certificate {
    reqwest::Certificate::from_pem(sandbox.tls_ca_pem().as_bytes()).expect("the sandbox CA is PEM")
}

/// A client builder that trusts the sandbox's CA (the emulated APIs speak HTTPS only).
pub fn client_builder(sandbox: &Sandbox) -> reqwest::ClientBuilder {
    // Bounded, so an emulator that never answers fails the test instead of hanging it.
    reqwest::Client::builder()
        .add_root_certificate(tls_ca(sandbox))
        .timeout(std::time::Duration::from_secs(60))
}

/// A client that trusts the sandbox's CA, otherwise reqwest's defaults (redirects followed).
pub fn client(sandbox: &Sandbox) -> reqwest::Client {
    client_builder(sandbox).build().expect("client")
}

/// An access token for `user` (a demo user key) and `scope`, through the sign-in page and token endpoint.
pub async fn access_token(sandbox: &Sandbox, user: &str, scope: &str) -> String {
    sandbox
        .entra()
        .register_redirect_uri(DASHBOARD_CLIENT_ID, REDIRECT);
    let base = format!("{}/{TENANT_ID}/oauth2/v2.0", sandbox.base_url());
    let app = Client {
        id: DASHBOARD_CLIENT_ID,
        secret: DASHBOARD_CLIENT_SECRET,
        redirect: REDIRECT,
    };
    code_grant(sandbox, &base, &app, user, scope).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// A client of an emulated authorization server.
struct Client {
    id: &'static str,
    secret: &'static str,
    redirect: &'static str,
}

/// The token response of the authorization-code flow with PKCE at `base` (`…/authorize`, `…/token`),
/// `user` picked on the emulator's page, over HTTPS.
async fn code_grant(
    sandbox: &Sandbox,
    base: &str,
    app: &Client,
    user: &str,
    scope: &str,
) -> serde_json::Value {
    let http = client_builder(sandbox)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let verifier = crate::entra::random_token(64);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let picked = http
        .post(format!("{base}/authorize"))
        .form(&[
            ("client_id", app.id),
            ("response_type", "code"),
            ("redirect_uri", app.redirect),
            ("scope", scope),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("user", user),
        ])
        .send()
        .await
        .expect("authorize");
    let location = picked
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("redirect back");
    let code = url::Url::parse(location)
        .expect("URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    http.post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", app.id),
            ("client_secret", app.secret),
            ("code", &code),
            ("redirect_uri", app.redirect),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token JSON")
}

/// Registers `url` for `events` through the webhook registration API, as the demo admin.
pub async fn register_webhook(
    sandbox: &Sandbox,
    url: &str,
    events: &[&str],
    ms_signature_header: bool,
) {
    let token = access_token(
        sandbox,
        "admin",
        "https://api.partnercenter.microsoft.com/user_impersonation",
    )
    .await;
    let r = client(sandbox)
        .post(format!("{}/webhooks/v1/registration", sandbox.base_url()))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "WebhookUrl": url, "WebhookEvents": events, "SignatureTokenToMsSignatureHeader": ms_signature_header
        }))
        .send()
        .await
        .expect("register");
    assert!(
        r.status().is_success(),
        "registration refused: {}",
        r.status()
    );
}

/// A webhook receiver on a free loopback port: answers with the queued statuses (then 200) and hands
/// each call (headers, raw body) to the test.
pub struct WebhookReceiver {
    pub url: String,
    pub calls: mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
}

#[derive(Clone)]
struct ReceiverState {
    statuses: Arc<Mutex<Vec<StatusCode>>>,
    calls: mpsc::UnboundedSender<(HeaderMap, Bytes)>,
}

async fn receive(State(s): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = s.calls.send((headers, body));
    let mut statuses = s.statuses.lock().unwrap_or_else(|p| p.into_inner());
    if statuses.is_empty() {
        StatusCode::OK
    } else {
        statuses.remove(0)
    }
}

impl WebhookReceiver {
    pub async fn start(statuses: Vec<StatusCode>) -> WebhookReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(ReceiverState {
                statuses: Arc::new(Mutex::new(statuses)),
                calls: tx,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookReceiver { url, calls: rx }
    }

    /// The next delivery (headers, raw body).
    pub async fn next(&mut self) -> (HeaderMap, Bytes) {
        self.calls.recv().await.expect("receiver open")
    }
}

const SALESFORCE_REDIRECT: &str = "http://127.0.0.1:9/salesforce-callback";

/// The token response for a Salesforce demo `user` (`admin`, `standard`, `revoked`) and `scope`,
/// through the authorize page (PKCE) and the token endpoint, over HTTPS.
pub async fn salesforce_tokens(sandbox: &Sandbox, user: &str, scope: &str) -> serde_json::Value {
    use crate::salesforce::{SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET};
    sandbox
        .salesforce()
        .register_redirect_uri(SALESFORCE_REDIRECT);
    let base = format!("{}/services/oauth2", sandbox.base_url());
    let app = Client {
        id: SALESFORCE_CLIENT_ID,
        secret: SALESFORCE_CLIENT_SECRET,
        redirect: SALESFORCE_REDIRECT,
    };
    code_grant(sandbox, &base, &app, user, scope).await
}

/// A Salesforce access token for a demo user, with the `api` and `refresh_token` scopes.
pub async fn salesforce_access_token(sandbox: &Sandbox, user: &str) -> String {
    salesforce_tokens(sandbox, user, "api refresh_token id").await["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Picks `user` on the emulated sign-in page at `authorize_url` (a URL a client was sent to, query
/// included), submitted as the page's form would be, and returns where the emulator sends the browser
/// back: the client's redirect URI with `code` and `state`. `browser` must trust the sandbox's CA and
/// not follow redirects.
pub async fn pick(browser: &reqwest::Client, authorize_url: &str, user: &str) -> String {
    let (action, query) = authorize_url
        .split_once('?')
        .expect("an authorize URL with its query");
    let mut form: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    form.push(("user".into(), user.into()));
    let r = browser
        .post(action)
        .form(&form)
        .send()
        .await
        .expect("the sign-in page answers");
    assert_eq!(
        r.status(),
        reqwest::StatusCode::FOUND,
        "the emulator redirects back"
    );
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_string()
}
