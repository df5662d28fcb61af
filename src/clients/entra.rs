//! Delegated OAuth 2.0 against Microsoft Entra ID (v2) for connections: the consent redirect (authorization
//! code + PKCE + `offline_access`), the code exchange, and refresh with rotation (crm-apis.md §1.2–1.5).
//!
//! Built on `oauth2` with an Entra-shaped error type, so that failures are judged by their AADSTS number
//! (`error_codes`), never by the human text.

use crate::clients::tls::TlsTrust;
use crate::crypto::Secret;
use crate::domain::connection::Diagnosis;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Entra's token error body (crm-apis.md §1.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntraError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u32>,
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error_codes.first() {
            Some(code) => write!(f, "{} (AADSTS{code})", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

impl oauth2::ErrorResponse for EntraError {}

/// The `id_token` that comes with the tokens when `openid` was asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default)]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OAuthClient = oauth2::Client<
    EntraError,
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

/// Why Entra did not give us a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("Entra ID refused: {0}")]
    Refused(EntraError),
    #[error("Entra ID could not be reached or answered oddly: {0}")]
    Unreachable(String),
}

impl TokenError {
    pub fn diagnosis(&self) -> Diagnosis {
        match self {
            TokenError::Refused(e) => {
                Diagnosis::from_token_error(&e.error, e.error_codes.first().copied())
            }
            TokenError::Unreachable(_) => Diagnosis::Unreachable,
        }
    }
}

/// Who consented, read from the id_token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub username: String,
    pub object_id: String,
    pub tenant_id: String,
}

/// A fresh access token, and the refresh token that replaces the one used.
#[derive(Debug)]
pub struct Grant {
    pub access_token: Secret,
    pub expires_in: Duration,
    pub refresh_token: Option<Secret>,
    pub account: Option<Account>,
}

/// A consent in progress: where to send the browser, and what to keep for the way back.
pub struct ConsentStart {
    pub url: url::Url,
    pub state: String,
    pub pkce_verifier: Secret,
}

#[derive(Clone)]
pub struct EntraClient {
    oauth: OAuthClient,
    client_id: String,
    http: reqwest::Client,
}

impl EntraClient {
    /// `authority` is `https://login.microsoftonline.com/{tenant}` (or the sandbox's equivalent, whose CA
    /// `tls` then trusts).
    pub fn new(
        authority: &str,
        client_id: &str,
        client_secret: &Secret,
        redirect_url: &str,
        tls: &TlsTrust,
    ) -> Result<EntraClient, String> {
        let authority = authority.trim_end_matches('/');
        let oauth = oauth2::Client::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(client_secret.expose().to_string()))
            .set_auth_uri(
                AuthUrl::new(format!("{authority}/oauth2/v2.0/authorize"))
                    .map_err(|e| e.to_string())?,
            )
            .set_token_uri(
                TokenUrl::new(format!("{authority}/oauth2/v2.0/token"))
                    .map_err(|e| e.to_string())?,
            )
            .set_redirect_uri(
                RedirectUrl::new(redirect_url.to_string()).map_err(|e| e.to_string())?,
            )
            // Entra takes the secret in the body; Basic works too but the body is what its docs show.
            .set_auth_type(oauth2::AuthType::RequestBody);
        let http = tls
            .client_builder()
            // Following redirects from the token endpoint opens the door to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(EntraClient {
            oauth,
            client_id: client_id.to_string(),
            http,
        })
    }

    /// The authorize URL for a consent to `scopes` (plus `openid profile offline_access`), with PKCE S256.
    /// `prompt=select_account`: the admin chooses which account the connection runs as.
    pub fn start_consent(&self, scopes: &[String]) -> ConsentStart {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .add_extra_param("prompt", "select_account");
        for scope in ["openid", "profile", "offline_access"]
            .into_iter()
            .map(str::to_string)
            .chain(scopes.iter().cloned())
        {
            request = request.add_scope(Scope::new(scope));
        }
        let (url, state) = request.url();
        ConsentStart {
            url,
            state: state.secret().clone(),
            pkce_verifier: Secret::new(verifier.secret().clone()),
        }
    }

    pub async fn exchange_code(&self, code: &str, verifier: &Secret) -> Result<Grant, TokenError> {
        let tokens = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose().to_string()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(self.grant(tokens))
    }

    /// Redeems a refresh token for an access token to `scope`'s resource. Entra answers with a new refresh
    /// token every time: the caller must store it and drop the old one.
    pub async fn refresh(&self, refresh_token: &Secret, scope: &str) -> Result<Grant, TokenError> {
        let rt = RefreshToken::new(refresh_token.expose().to_string());
        let tokens = self
            .oauth
            .exchange_refresh_token(&rt)
            .add_scope(Scope::new(scope.to_string()))
            .add_scope(Scope::new("offline_access".into()))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        Ok(self.grant(tokens))
    }

    fn grant(&self, tokens: Tokens) -> Grant {
        Grant {
            access_token: Secret::new(tokens.access_token().secret().clone()),
            expires_in: tokens.expires_in().unwrap_or(Duration::from_secs(3599)),
            refresh_token: tokens
                .refresh_token()
                .map(|t| Secret::new(t.secret().clone())),
            account: tokens
                .extra_fields()
                .id_token
                .as_deref()
                .and_then(|t| account_of(t, &self.client_id)),
        }
    }
}

fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, EntraError>,
) -> TokenError {
    match e {
        RequestTokenError::ServerResponse(err) => TokenError::Refused(err),
        RequestTokenError::Request(err) => TokenError::Unreachable(err.to_string()),
        RequestTokenError::Parse(err, _) => {
            TokenError::Unreachable(format!("unreadable answer: {err}"))
        }
        RequestTokenError::Other(err) => TokenError::Unreachable(err),
    }
}

/// The account named by an id_token received directly from the token endpoint over the back channel.
/// OpenID Connect Core §3.1.3.7 lets a client skip the signature check for such a token (it came from the
/// issuer over TLS, authenticated by our client secret); we still require it to be addressed to us.
fn account_of(id_token: &str, client_id: &str) -> Option<Account> {
    #[derive(Deserialize)]
    struct Claims {
        aud: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        preferred_username: Option<String>,
        oid: String,
        tid: String,
    }
    let payload = id_token.split('.').nth(1)?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    if claims.aud != client_id {
        return None;
    }
    let username = claims.preferred_username.unwrap_or_default();
    Some(Account {
        name: claims.name.unwrap_or_else(|| username.clone()),
        username,
        object_id: claims.oid,
        tenant_id: claims.tid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        )
    }

    #[test]
    fn the_account_comes_from_an_id_token_addressed_to_us() {
        let token = jwt(serde_json::json!({
            "aud": "me", "name": "Adele Vance", "preferred_username": "adele@contoso.test",
            "oid": "o1", "tid": "t1"
        }));
        assert_eq!(
            account_of(&token, "me"),
            Some(Account {
                name: "Adele Vance".into(),
                username: "adele@contoso.test".into(),
                object_id: "o1".into(),
                tenant_id: "t1".into()
            })
        );
        assert_eq!(account_of(&token, "someone-else"), None);
        assert_eq!(account_of("garbage", "me"), None);
    }

    #[test]
    fn refusals_are_judged_by_their_aadsts_number() {
        let refused = |error: &str, codes: Vec<u32>| {
            TokenError::Refused(EntraError {
                error: error.into(),
                error_description: Some("AADSTS…: words that may change".into()),
                error_codes: codes,
            })
        };
        assert_eq!(
            refused("invalid_grant", vec![50055]).diagnosis(),
            Diagnosis::PasswordExpired
        );
        assert_eq!(
            refused("invalid_grant", vec![50173]).diagnosis(),
            Diagnosis::GrantRevoked
        );
        assert_eq!(
            TokenError::Unreachable("timeout".into()).diagnosis(),
            Diagnosis::Unreachable
        );
    }
}
