//! RS256 signing keys, the JWKS that publishes them, and the discovery document.

use super::{Entra, TENANT_ID, errors, tenant_is_known};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::RsaPrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;

pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    n: String,
    e: String,
}

impl SigningKey {
    fn generate() -> SigningKey {
        let private =
            RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key generation");
        let der = private.to_pkcs1_der().expect("PKCS#1 encoding");
        SigningKey {
            kid: super::random_token(27),
            encoding: EncodingKey::from_rsa_der(der.as_bytes()),
            n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        }
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("JWT signing")
    }
}

/// Published keys; the newest signs. Rotation keeps the previous key published, as Entra does.
pub struct SigningKeys {
    published: Vec<SigningKey>,
    /// A key that is never published, for the "unknown key" fault. Made on first use.
    outsider: Option<SigningKey>,
}

impl SigningKeys {
    pub fn generate() -> SigningKeys {
        SigningKeys {
            published: vec![SigningKey::generate()],
            outsider: None,
        }
    }

    pub fn current(&self) -> &SigningKey {
        self.published.last().expect("at least one key")
    }

    pub fn outsider(&mut self) -> &SigningKey {
        self.outsider.get_or_insert_with(SigningKey::generate)
    }

    /// Returns the new key's id.
    pub fn rotate(&mut self) -> String {
        self.published.push(SigningKey::generate());
        if self.published.len() > 2 {
            self.published.remove(0);
        }
        self.current().kid.clone()
    }

    /// Verifies an RS256 token signed by one of the published keys, for `audience` and `issuer`, valid at
    /// `now` (the emulators' clock, not the wall clock). Returns its claims.
    pub fn verify(
        &self,
        token: &str,
        audience: &str,
        issuers: &[String],
        now: i64,
    ) -> Result<serde_json::Value, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        let kid = header.kid.ok_or("token has no kid")?;
        let key = self
            .published
            .iter()
            .find(|k| k.kid == kid)
            .ok_or("token signed by an unknown key")?;
        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&key.n, &key.e)
            .map_err(|e| e.to_string())?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(issuers);
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &decoding, &validation)
            .map_err(|e| format!("token rejected: {e}"))?;
        let exp = data.claims["exp"].as_i64().ok_or("token has no exp")?;
        if exp <= now {
            return Err("token expired".into());
        }
        Ok(data.claims)
    }

    fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .published
            .iter()
            .map(|k| {
                serde_json::json!({"kty": "RSA", "use": "sig", "kid": k.kid, "n": k.n, "e": k.e})
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

fn json_with_cache(value: serde_json::Value) -> Response {
    let mut response = axum::Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn unknown_tenant(entra: &Entra, tenant: &str) -> Response {
    errors::token_error(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
        entra.now(),
    )
}

pub async fn discovery(State(entra): State<Entra>, Path(tenant): Path<String>) -> Response {
    if !tenant_is_known(&tenant) {
        return unknown_tenant(&entra, &tenant);
    }
    let base = entra.base_url();
    // Quirk kept from Entra: multi-tenant authorities publish a templated issuer, which strict OIDC
    // clients reject. cosell must be configured with a tenant-specific authority.
    let issuer_tenant = if tenant == "common" || tenant == "organizations" {
        "{tenantid}"
    } else {
        TENANT_ID
    };
    json_with_cache(serde_json::json!({
        "issuer": format!("{base}/{issuer_tenant}/v2.0"),
        "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "end_session_endpoint": format!("{base}/{tenant}/oauth2/v2.0/logout"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
            "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "request_uri_parameter_supported": false,
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
    }))
}

pub async fn jwks(State(entra): State<Entra>, Path(tenant): Path<String>) -> Response {
    if !tenant_is_known(&tenant) {
        return unknown_tenant(&entra, &tenant);
    }
    json_with_cache(entra.state().keys.jwks())
}
