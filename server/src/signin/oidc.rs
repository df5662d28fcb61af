//! OpenID Connect authorization code + PKCE against Microsoft Entra ID (v2), with `openidconnect`.
//!
//! Discovery (and with it the JWKS) is fetched lazily and cached for a day, as Entra's `Cache-Control`
//! allows; a signature that does not verify triggers one refetch, so signing-key rotation is followed.

use super::error::{SignInError, TokenProblem, aadsts_code};
use cosell::clients::tls::TlsTrust;
use cosell::domain::{Access, RoleNames, SignedInUser};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClaimsVerificationError, Client, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// The Entra claims we read beyond the standard ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntraClaims {
    oid: Option<String>,
    tid: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}
impl AdditionalClaims for EntraClaims {}

type EntraTokenResponse = StandardTokenResponse<
    IdTokenFields<
        EntraClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
type EntraClient = Client<
    EntraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    EntraTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

const DISCOVERY_TTL: Duration = Duration::from_secs(24 * 3600);
/// A sign-in not finished within this time must be started again.
pub const PENDING_TTL_SECONDS: i64 = 15 * 60;

/// What the browser's session remembers between the redirect out and the callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    pub started_at: i64,
}

/// The query of the redirect back from Entra ID.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub struct SignIn {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: ClientSecret,
    redirect: RedirectUrl,
    roles: RoleNames,
    http: reqwest::Client,
    provider: RwLock<Option<(EntraClient, Instant)>>,
}

impl SignIn {
    pub fn new(
        issuer: &str,
        client_id: String,
        client_secret: String,
        redirect: &str,
        roles: RoleNames,
        tls: &TlsTrust,
    ) -> Result<SignIn, String> {
        let http = tls
            .client_builder()
            // Following redirects from the identity provider opens the door to SSRF.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(SignIn {
            issuer: IssuerUrl::new(issuer.to_string()).map_err(|e| format!("issuer: {e}"))?,
            client_id: ClientId::new(client_id),
            client_secret: ClientSecret::new(client_secret),
            redirect: RedirectUrl::new(redirect.to_string())
                .map_err(|e| format!("redirect URL: {e}"))?,
            roles,
            http,
            provider: RwLock::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    pub fn redirect_url(&self) -> &str {
        self.redirect.as_str()
    }

    async fn client(&self, refresh: bool) -> Result<EntraClient, SignInError> {
        if !refresh
            && let Some((client, at)) = self.provider.read().await.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(client.clone());
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| {
                SignInError::ProviderUnreachable(format!(
                    "discovery of {}: {e}",
                    self.issuer.as_str()
                ))
            })?;
        let client: EntraClient = Client::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            Some(self.client_secret.clone()),
        )
        .set_redirect_uri(self.redirect.clone());
        *self.provider.write().await = Some((client.clone(), Instant::now()));
        Ok(client)
    }

    /// Where to send the browser, the `state` to key the pending sign-in by, and what to remember.
    pub async fn start(
        &self,
        return_to: String,
        now: i64,
    ) -> Result<(String, String, Pending), SignInError> {
        let client = self.client(false).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .add_extra_param("response_mode", "query")
            .set_pkce_challenge(challenge)
            .url();
        Ok((
            url.to_string(),
            state.secret().clone(),
            Pending {
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                return_to,
                started_at: now,
            },
        ))
    }

    /// Completes a sign-in whose `state` already matched `pending`.
    pub async fn finish(
        &self,
        pending: Pending,
        params: CallbackParams,
        now_ms: i64,
    ) -> Result<SignedInUser, SignInError> {
        if let Some(error) = params.error {
            let description = params.error_description.unwrap_or_default();
            let aadsts = aadsts_code(&description);
            if aadsts == Some(50055) {
                return Err(SignInError::PasswordExpired);
            }
            return Err(SignInError::ProviderRefused {
                error,
                aadsts,
                description,
            });
        }
        let Some(code) = params.code else {
            return Err(SignInError::ProviderRefused {
                error: "no code".into(),
                aadsts: None,
                description: "the redirect carried neither a code nor an error".into(),
            });
        };
        let client = self.client(false).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SignInError::Internal(format!("token endpoint not configured: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    let description = r.error_description().cloned().unwrap_or_default();
                    let aadsts = aadsts_code(&description);
                    if aadsts == Some(50055) {
                        SignInError::PasswordExpired
                    } else {
                        SignInError::CodeRejected {
                            error: r.error().to_string(),
                            aadsts,
                            description,
                        }
                    }
                }
                other => SignInError::ProviderUnreachable(format!("token endpoint: {other}")),
            })?;
        let id_token = token
            .extra_fields()
            .id_token()
            .ok_or(SignInError::TokenInvalid(TokenProblem::Missing))?;
        let nonce = Nonce::new(pending.nonce);
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(claims) => claims.clone(),
            Err(ClaimsVerificationError::SignatureVerification(first)) => {
                // Perhaps Entra rotated its keys since we cached the JWKS: look again, once.
                tracing::info!(error = %first, "id_token signature did not verify; refetching keys");
                let fresh = self.client(true).await?;
                id_token
                    .claims(&fresh.id_token_verifier(), &nonce)
                    .map_err(|e| SignInError::TokenInvalid(classify(&e)))?
                    .clone()
            }
            Err(e) => return Err(SignInError::TokenInvalid(classify(&e))),
        };
        let extra = claims.additional_claims();
        let (Some(tenant_id), Some(object_id)) = (extra.tid.clone(), extra.oid.clone()) else {
            return Err(SignInError::TokenInvalid(TokenProblem::Claims));
        };
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_default();
        let username = claims
            .preferred_username()
            .map(|u| u.to_string())
            .unwrap_or_default();
        Ok(SignedInUser {
            name: if name.is_empty() {
                username.clone()
            } else {
                name
            },
            username,
            access: Access::from_roles(&extra.roles, &self.roles),
            tenant_id,
            object_id,
            signed_in_at_ms: now_ms,
        })
    }
}

fn classify(e: &ClaimsVerificationError) -> TokenProblem {
    match e {
        ClaimsVerificationError::SignatureVerification(_) => TokenProblem::Signature,
        ClaimsVerificationError::InvalidAudience(_) => TokenProblem::Audience,
        ClaimsVerificationError::InvalidIssuer(_) => TokenProblem::Issuer,
        ClaimsVerificationError::Expired(_) => TokenProblem::Expired,
        ClaimsVerificationError::InvalidNonce(_) => TokenProblem::Nonce,
        _ => TokenProblem::Malformed,
    }
}
