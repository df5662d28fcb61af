//! Salesforce's OAuth 2.0 web server flow for one connected app (crm-apis.md §3.1–3.3): the authorize URL
//! (`api refresh_token`, PKCE S256), the code exchange, refresh, and the identity URL.
//!
//! Salesforce's token answer has no `expires_in` (an access token lives as long as the session policy
//! says; the caller refreshes on 401), carries `issued_at` as epoch milliseconds in a string, and names
//! the org's API base in `instance_url`. A refresh returns a `refresh_token` only when the org rotates
//! them. The `signature` (an HMAC of `id` + `issued_at` keyed with our secret) is not checked: the answer
//! came from the token endpoint over TLS, authenticated by that same secret.

use super::errors::call_error;
use crate::clients::http::CallError;
use crate::clients::tls::TlsTrust;
use crate::crypto::Secret;
use crate::domain::connection::Diagnosis;
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The token endpoint's refusal: an OAuth object, not the REST error array.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TokenRefusal {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)
    }
}

impl oauth2::ErrorResponse for TokenRefusal {}

/// What Salesforce adds to the standard token answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SalesforceFields {
    pub instance_url: String,
    /// The identity URL, `https://login.salesforce.com/id/{orgId}/{userId}`.
    pub id: String,
    #[serde(default)]
    pub issued_at: Option<IssuedAt>,
    #[serde(default)]
    pub signature: Option<String>,
}
impl ExtraTokenFields for SalesforceFields {}

/// Documented as a string of milliseconds; a number is accepted too rather than failing a sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(super) enum IssuedAt {
    Text(String),
    Number(i64),
}

impl IssuedAt {
    fn millis(&self) -> Option<i64> {
        match self {
            IssuedAt::Text(s) => s.trim().parse().ok(),
            IssuedAt::Number(n) => Some(*n),
        }
    }
}

pub(super) type Tokens = StandardTokenResponse<SalesforceFields, BasicTokenType>;
type OAuthClient = oauth2::Client<
    TokenRefusal,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The start of a sign-in: where to send the browser, and what to keep until the callback.
#[derive(Debug)]
pub struct AuthorizeRequest {
    pub url: String,
    pub state: String,
    pub verifier: Secret,
}

/// Tokens for one user of one org.
#[derive(Debug, Clone)]
pub struct SalesforceGrant {
    pub access_token: Secret,
    /// Present after the code exchange, and after a refresh only when the org rotates refresh tokens
    /// (then the old one is already dead: store this one).
    pub refresh_token: Option<Secret>,
    /// The org's API base (`https://mycompany.my.salesforce.com`).
    pub instance_url: String,
    pub identity_url: String,
    /// When Salesforce issued the access token, epoch milliseconds.
    pub issued_at_ms: Option<i64>,
}

/// Who a token's user is, from the identity URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub organization_id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A token endpoint refusal (HTTP 400 OAuth object `{"error","error_description"}`), or no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Salesforce refused: {error}: {description}")]
    Refused { error: String, description: String },
    #[error("Salesforce could not be reached: {0}")]
    Unreachable(String),
    #[error("Salesforce answered oddly: {0}")]
    Unexpected(String),
}

impl AuthError {
    /// `invalid_grant` (revoked, expired from disuse, more than five grants) → GrantRevoked;
    /// `invalid_client` / `unauthorized_client` → ClientCredentialsInvalid; no answer or a 5xx →
    /// Unreachable. An answer we cannot read is not evidence against the grant, so it is Unreachable too.
    pub fn diagnosis(&self) -> Diagnosis {
        match self {
            AuthError::Refused { error, .. } => Diagnosis::from_token_error(error, None),
            AuthError::Unreachable(_) | AuthError::Unexpected(_) => Diagnosis::Unreachable,
        }
    }
}

/// Salesforce's OAuth 2.0 web server flow for one connected app.
#[derive(Clone)]
pub struct SalesforceOAuth {
    oauth: OAuthClient,
    http: TokenHttp,
    /// Plain HTTP is accepted for the URLs a token answer names only when the login URL is plain HTTP
    /// itself (a test's stub server; the sandbox speaks HTTPS).
    allow_http: bool,
}

impl SalesforceOAuth {
    /// `login_url`: https://login.salesforce.com, https://test.salesforce.com, a My Domain URL, or the
    /// sandbox base URL.
    pub fn new(
        login_url: &str,
        client_id: &str,
        client_secret: &Secret,
        redirect_url: &str,
        tls: &TlsTrust,
    ) -> Result<SalesforceOAuth, String> {
        let login = login_url.trim_end_matches('/');
        let scheme = url::Url::parse(login)
            .map_err(|e| format!("login URL {login:?}: {e}"))?
            .scheme()
            .to_string();
        if scheme != "https" && scheme != "http" {
            return Err(format!("login URL {login:?}: not an http(s) URL"));
        }
        let oauth = oauth2::Client::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_string()))
            .set_auth_uri(
                AuthUrl::new(format!("{login}/services/oauth2/authorize"))
                    .map_err(|e| e.to_string())?,
            )
            .set_token_uri(
                TokenUrl::new(format!("{login}/services/oauth2/token"))
                    .map_err(|e| e.to_string())?,
            )
            .set_redirect_uri(
                RedirectUrl::new(redirect_url.to_string()).map_err(|e| e.to_string())?,
            )
            // Salesforce takes Basic too, but the body is what its documentation shows.
            .set_auth_type(oauth2::AuthType::RequestBody);
        let http = tls
            .client_builder()
            // Following redirects from the token endpoint opens the door to SSRF, and a redirect of the
            // identity URL to another host would drop the token anyway.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(SalesforceOAuth {
            oauth,
            http: TokenHttp(http),
            allow_http: scheme == "http",
        })
    }

    /// The authorize URL: `response_type=code`, `client_id`, `redirect_uri`, scope `api refresh_token`,
    /// `state`, and a PKCE `code_challenge` (S256). Keep the state and the verifier until the callback.
    pub fn authorize_url(&self) -> AuthorizeRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("api".into()))
            .add_scope(Scope::new("refresh_token".into()))
            .set_pkce_challenge(challenge)
            .url();
        AuthorizeRequest {
            url: url.to_string(),
            state: state.secret().clone(),
            verifier: Secret::new(verifier.secret().clone()),
        }
    }

    /// Exchanges the callback's code (with the PKCE verifier kept since [`Self::authorize_url`]).
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &Secret,
    ) -> Result<SalesforceGrant, AuthError> {
        let tokens = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_string()))
            .request_async(&self.http)
            .await
            .map_err(auth_error)?;
        self.grant(tokens)
    }

    /// A new access token from a refresh token. `refresh_token` is in the answer only when the org
    /// rotates them; otherwise keep using the old one.
    pub async fn refresh(&self, refresh_token: &Secret) -> Result<SalesforceGrant, AuthError> {
        let rt = RefreshToken::new(refresh_token.expose().to_string());
        let tokens = self
            .oauth
            .exchange_refresh_token(&rt)
            .request_async(&self.http)
            .await
            .map_err(auth_error)?;
        self.grant(tokens)
    }

    /// Who the token's user is: GET the identity URL (the grant's `identity_url`).
    pub async fn identity(
        &self,
        access_token: &Secret,
        identity_url: &str,
    ) -> Result<Identity, CallError> {
        if !self.trusted(identity_url) {
            return Err(CallError::Unexpected(format!(
                "identity URL {identity_url:?}"
            )));
        }
        let response = self
            .http
            .0
            .get(identity_url)
            .bearer_auth(access_token.expose())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(CallError::from_transport)?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let headers = response.headers().clone();
            let body = response.text().await.unwrap_or_default();
            // The identity service says `403 Bad_OAuth_Token` where the REST API says 401; treat it as
            // such so the caller refreshes instead of reporting missing access.
            if status == 403 && body.trim() == "Bad_OAuth_Token" {
                return Err(CallError::Unauthorized("Bad_OAuth_Token".into()));
            }
            return Err(call_error(status, &headers, &body));
        }
        let body = crate::clients::http::json(response).await?;
        identity_of(&body, identity_url)
    }

    fn trusted(&self, url: &str) -> bool {
        url::Url::parse(url)
            .is_ok_and(|u| u.scheme() == "https" || (self.allow_http && u.scheme() == "http"))
    }

    fn grant(&self, tokens: Tokens) -> Result<SalesforceGrant, AuthError> {
        let extra = tokens.extra_fields();
        for (what, url) in [("instance_url", &extra.instance_url), ("id", &extra.id)] {
            if !self.trusted(url) {
                return Err(AuthError::Unexpected(format!("{what} {url:?}")));
            }
        }
        Ok(grant_of(tokens))
    }
}

fn grant_of(tokens: Tokens) -> SalesforceGrant {
    let extra = tokens.extra_fields();
    SalesforceGrant {
        access_token: Secret::new(tokens.access_token().secret().clone()),
        refresh_token: tokens
            .refresh_token()
            .map(|t| Secret::new(t.secret().clone())),
        instance_url: extra.instance_url.trim_end_matches('/').to_string(),
        identity_url: extra.id.clone(),
        issued_at_ms: extra.issued_at.as_ref().and_then(IssuedAt::millis),
    }
}

/// The identity answer; the ids fall back to the URL's own `/id/{orgId}/{userId}`.
fn identity_of(body: &serde_json::Value, identity_url: &str) -> Result<Identity, CallError> {
    let text = |key: &str| {
        body[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut segments = identity_url.trim_end_matches('/').rsplit('/');
    let url_user = segments.next().map(str::to_string);
    let url_org = segments.next().map(str::to_string);
    let user_id = text("user_id")
        .or(url_user)
        .ok_or_else(|| CallError::Unexpected("an identity without user_id".into()))?;
    let organization_id = text("organization_id")
        .or(url_org)
        .ok_or_else(|| CallError::Unexpected("an identity without organization_id".into()))?;
    let username = text("username")
        .ok_or_else(|| CallError::Unexpected("an identity without username".into()))?;
    Ok(Identity {
        display_name: text("display_name").unwrap_or_else(|| username.clone()),
        user_id,
        organization_id,
        username,
        email: text("email"),
        first_name: text("first_name"),
        last_name: text("last_name"),
    })
}

fn auth_error(e: RequestTokenError<TokenHttpError, TokenRefusal>) -> AuthError {
    match e {
        RequestTokenError::ServerResponse(refusal) => AuthError::Refused {
            error: refusal.error,
            description: refusal.error_description.unwrap_or_default(),
        },
        RequestTokenError::Request(e) => AuthError::Unreachable(e.to_string()),
        // A serde message may quote the value it choked on, which may be a token: keep the path and
        // only the one message that cannot hold a value.
        RequestTokenError::Parse(e, _) => {
            let inner = e.inner().to_string();
            AuthError::Unexpected(if inner.starts_with("missing field") {
                format!("unreadable token answer: {inner}")
            } else {
                format!("unreadable token answer at {}", e.path())
            })
        }
        RequestTokenError::Other(message) => AuthError::Unexpected(message),
    }
}

/// The HTTP client the `oauth2` crate sends token requests through: reqwest without redirects, and a
/// 5xx reported as no answer (the crate would try to read an error page as an OAuth error).
#[derive(Clone)]
struct TokenHttp(reqwest::Client);

#[derive(Debug, thiserror::Error)]
pub(super) enum TokenHttpError {
    #[error("{0}")]
    Network(String),
    #[error("server error (HTTP {0})")]
    Server(u16),
}

impl<'c> AsyncHttpClient<'c> for TokenHttp {
    type Error = TokenHttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TokenHttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(transport)?;
            let response = self.0.execute(request).await.map_err(transport)?;
            let status = response.status();
            if status.is_server_error() {
                return Err(TokenHttpError::Server(status.as_u16()));
            }
            let mut builder = oauth2::http::Response::builder().status(status);
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await.map_err(transport)?;
            builder
                .body(body.to_vec())
                .map_err(|e| TokenHttpError::Network(e.to_string()))
        })
    }
}

fn transport(e: reqwest::Error) -> TokenHttpError {
    match CallError::from_transport(e) {
        CallError::Network(message) => TokenHttpError::Network(message),
        other => TokenHttpError::Network(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn oauth() -> SalesforceOAuth {
        SalesforceOAuth::new(
            "https://login.salesforce.com/",
            "3MVG9.consumer-key",
            &Secret::new("consumer-secret"),
            "https://cosell.example/connections/salesforce/callback",
            &TlsTrust::public_roots(),
        )
        .unwrap()
    }

    fn tokens(body: &str) -> Tokens {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn the_authorize_url_asks_for_api_and_refresh_with_pkce() {
        let start = oauth().authorize_url();
        let url = url::Url::parse(&start.url).unwrap();
        assert_eq!(
            url.as_str().split('?').next(),
            Some("https://login.salesforce.com/services/oauth2/authorize")
        );
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "3MVG9.consumer-key");
        assert_eq!(
            q["redirect_uri"],
            "https://cosell.example/connections/salesforce/callback"
        );
        assert_eq!(q["scope"], "api refresh_token");
        assert_eq!(q["state"], start.state);
        assert_eq!(q["code_challenge_method"], "S256");
        // The challenge is SHA-256 of the verifier, base64url without padding.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(start.verifier.expose().as_bytes());
        use base64::Engine;
        assert_eq!(
            q["code_challenge"],
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        );
        assert!(!format!("{start:?}").contains(start.verifier.expose()));
        assert_ne!(oauth().authorize_url().state, start.state);
    }

    #[test]
    fn the_code_answer_parses_without_expires_in() {
        let t = tokens(
            r#"{"access_token":"00DB0000000TfcR!AQQAQ","refresh_token":"5Aep861.rt","signature":"d/SxeYBxH0GSVko0HMgcUxuZy0PA2cDDz1u7g7JtDHw=",
                "scope":"refresh_token api","instance_url":"https://mycompany.my.salesforce.com/",
                "id":"https://login.salesforce.com/id/00DB0000000TfcRMAS/005B0000005Bk90IAC",
                "token_type":"Bearer","issued_at":"1558553873237"}"#,
        );
        let grant = oauth().grant(t).unwrap();
        assert_eq!(grant.access_token.expose(), "00DB0000000TfcR!AQQAQ");
        assert_eq!(
            grant.refresh_token.as_ref().map(Secret::expose),
            Some("5Aep861.rt")
        );
        assert_eq!(grant.instance_url, "https://mycompany.my.salesforce.com");
        assert_eq!(
            grant.identity_url,
            "https://login.salesforce.com/id/00DB0000000TfcRMAS/005B0000005Bk90IAC"
        );
        assert_eq!(grant.issued_at_ms, Some(1558553873237));
        assert!(!format!("{grant:?}").contains("AQQAQ"));
    }

    #[test]
    fn a_refresh_answer_without_refresh_token_leaves_the_old_one_in_use() {
        let t = tokens(
            r#"{"access_token":"00D!new","signature":"HfBA4=","scope":"refresh_token api id full",
                "instance_url":"https://xxxx.my.salesforce.com","id":"https://login.salesforce.com/id/00D/005",
                "token_type":"Bearer","issued_at":"1708050000000"}"#,
        );
        let grant = oauth().grant(t).unwrap();
        assert!(grant.refresh_token.is_none());
        assert_eq!(grant.issued_at_ms, Some(1708050000000));
        // A number, or nothing at all, is tolerated.
        let t = tokens(
            r#"{"access_token":"a","instance_url":"https://x.my.salesforce.com","id":"https://login.salesforce.com/id/1/2","token_type":"bearer","issued_at":17}"#,
        );
        assert_eq!(grant_of(t).issued_at_ms, Some(17));
        let t = tokens(
            r#"{"access_token":"a","instance_url":"https://x.my.salesforce.com","id":"https://login.salesforce.com/id/1/2","token_type":"Bearer"}"#,
        );
        assert_eq!(grant_of(t).issued_at_ms, None);
        // Without instance_url there is no API to call.
        assert!(
            serde_json::from_str::<Tokens>(
                r#"{"access_token":"a","id":"https://l/id/1/2","token_type":"Bearer"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn a_plain_http_instance_is_refused_unless_the_login_url_is_plain_http() {
        let body = r#"{"access_token":"a","instance_url":"http://evil.example","id":"https://login.salesforce.com/id/1/2","token_type":"Bearer"}"#;
        assert!(matches!(
            oauth().grant(tokens(body)),
            Err(AuthError::Unexpected(_))
        ));
        let sandbox = SalesforceOAuth::new(
            "http://127.0.0.1:4010",
            "id",
            &Secret::new("s"),
            "http://127.0.0.1:3000/cb",
            &TlsTrust::public_roots(),
        )
        .unwrap();
        assert!(sandbox.grant(tokens(body)).is_ok());
        assert!(
            SalesforceOAuth::new(
                "ftp://x",
                "id",
                &Secret::new("s"),
                "http://x/cb",
                &TlsTrust::public_roots()
            )
            .is_err()
        );
    }

    #[test]
    fn refusals_are_diagnosed_by_their_error_code() {
        let refused = |error: &str| AuthError::Refused {
            error: error.into(),
            description: "words that may change".into(),
        };
        assert_eq!(
            refused("invalid_grant").diagnosis(),
            Diagnosis::GrantRevoked
        );
        assert_eq!(
            refused("invalid_client").diagnosis(),
            Diagnosis::ClientCredentialsInvalid
        );
        assert_eq!(
            refused("unauthorized_client").diagnosis(),
            Diagnosis::ClientCredentialsInvalid
        );
        assert_eq!(
            refused("unsupported_grant_type").diagnosis(),
            Diagnosis::GrantRevoked
        );
        assert_eq!(
            AuthError::Unreachable("server error (HTTP 503)".into()).diagnosis(),
            Diagnosis::Unreachable
        );
    }

    #[test]
    fn identities_read_the_documented_fields_and_fall_back_to_the_url() {
        let url = "https://login.salesforce.com/id/00DB0000000TfcRMAS/005B0000005Bk90IAC";
        let full = serde_json::json!({
            "id": url, "user_id": "005B0000005Bk90IAC", "organization_id": "00DB0000000TfcRMAS",
            "username": "admin@contoso.test", "display_name": "Adele Vance", "email": "adele@contoso.test",
            "first_name": "Adele", "last_name": "Vance"
        });
        assert_eq!(
            identity_of(&full, url).unwrap(),
            Identity {
                user_id: "005B0000005Bk90IAC".into(),
                organization_id: "00DB0000000TfcRMAS".into(),
                username: "admin@contoso.test".into(),
                display_name: "Adele Vance".into(),
                email: Some("adele@contoso.test".into()),
                first_name: Some("Adele".into()),
                last_name: Some("Vance".into()),
            }
        );
        let sparse = serde_json::json!({"username": "u@x.test"});
        let id = identity_of(&sparse, url).unwrap();
        assert_eq!(id.user_id, "005B0000005Bk90IAC");
        assert_eq!(id.organization_id, "00DB0000000TfcRMAS");
        assert_eq!(id.display_name, "u@x.test");
        assert!(identity_of(&serde_json::json!({}), url).is_err());
    }
}
