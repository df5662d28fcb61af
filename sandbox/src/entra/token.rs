//! `/{tenant}/oauth2/v2.0/token`: authorization_code (single use, 10 minutes, PKCE), refresh_token (rotated
//! on every use), client_credentials (`…/.default`, never a refresh token).

use super::{
    ChallengeMethod, DemoUser, Entra, IdTokenFault, RefreshGrant, State as EntraState, TENANT_ID,
    errors, random_token, resource_of, scope_resource, scopes_for, tenant_is_known,
};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use time::OffsetDateTime;

type Form = HashMap<String, String>;

fn bad(entra: &Entra, error: &str, code: u32, message: &str) -> Response {
    errors::token_error(StatusCode::BAD_REQUEST, error, code, message, entra.now())
}

pub async fn token(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !tenant_is_known(&tenant) {
        return bad(
            &entra,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form: Form = match serde_urlencoded::from_str(&body) {
        Ok(f) if is_form => f,
        _ => {
            return bad(
                &entra,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
    };
    let client_id = match authenticate_client(&entra, &headers, &form) {
        Ok(id) => id,
        Err(response) => return response,
    };
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(&entra, &client_id, &form),
        Some("refresh_token") => refresh_token(&entra, &client_id, &form),
        Some("client_credentials") => client_credentials(&entra, &client_id, &form),
        Some(other) => bad(
            &entra,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
        None => bad(
            &entra,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        ),
    }
}

/// Client credentials in the body (`client_secret_post`) or HTTP Basic (`client_secret_basic`, whose parts
/// are form-urlencoded before base64, RFC 6749 §2.3.1).
#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom; one per request"
)]
fn authenticate_client(
    entra: &Entra,
    headers: &HeaderMap,
    form: &Form,
) -> Result<String, Response> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (client_id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    let Some(client_id) = client_id else {
        return Err(bad(
            entra,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        ));
    };
    let status = if entra.faults().invalid_client_status_401 {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let expected = entra
        .state()
        .clients
        .get(&client_id)
        .map(|c| c.secret.clone());
    match (expected, secret) {
        (None, _) => Err(errors::token_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                super::TENANT_DOMAIN
            ),
            entra.now(),
        )),
        (Some(_), None) => Err(errors::token_error(
            status,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            entra.now(),
        )),
        (Some(expected), Some(given)) if expected != given => Err(errors::token_error(
            status,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            entra.now(),
        )),
        _ => Ok(client_id),
    }
}

fn authorization_code(entra: &Entra, client_id: &str, form: &Form) -> Response {
    let now = entra.now();
    let Some(code) = form.get("code") else {
        return bad(
            entra,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'code'.",
        );
    };
    let mut state = entra.state();
    if state.redeemed_codes.contains(code) {
        return bad(
            entra,
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
        );
    }
    let Some(grant) = state.codes.remove(code) else {
        return bad(
            entra,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        );
    };
    // Once presented, a code is spent, whatever happens next.
    state.redeemed_codes.insert(code.clone());
    if now - grant.issued_at > time::Duration::seconds(super::CODE_LIFETIME_SECONDS) {
        return bad(
            entra,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        );
    }
    if grant.client_id != client_id {
        return bad(
            entra,
            "invalid_grant",
            70000,
            "The provided authorization code was issued to a different client.",
        );
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        // Unconfirmed which AADSTS code Entra uses here; 50011 is its redirect-URI mismatch code.
        return bad(
            entra,
            "invalid_grant",
            50011,
            "The redirect URI specified in the request does not match the redirect URI used to request the authorization code.",
        );
    }
    if let Some((challenge, method)) = &grant.challenge {
        let verifier = form
            .get("code_verifier")
            .map(String::as_str)
            .unwrap_or_default();
        let derived = match method {
            ChallengeMethod::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            ChallengeMethod::Plain => verifier.to_string(),
        };
        if verifier.is_empty() || derived != *challenge {
            return bad(
                entra,
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            );
        }
    }
    let user = match granted_user(entra, &state, &grant.user_key) {
        Ok(user) => user,
        Err(response) => return response,
    };
    if user.password_expired {
        // The reference pairs AADSTS50055 with invalid_grant (mapping unconfirmed).
        return bad(entra, "invalid_grant", 50055, "The password is expired.");
    }
    issue(
        &mut state,
        entra,
        client_id,
        &user,
        (&grant.scopes, &grant.scopes),
        grant.nonce.as_deref(),
        now,
    )
}

fn refresh_token(entra: &Entra, client_id: &str, form: &Form) -> Response {
    let now = entra.now();
    let Some(token) = form.get("refresh_token") else {
        return bad(
            entra,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'refresh_token'.",
        );
    };
    let mut state = entra.state();
    let grant = match usable_grant(entra, &state, token, client_id) {
        Ok(grant) => grant,
        Err(response) => return response,
    };
    let requested: Vec<String> = match form.get("scope") {
        Some(s) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => grant.scopes.clone(),
    };
    if let Some(extra) = requested.iter().find(|s| !grant.scopes.contains(s)) {
        return bad(
            entra,
            "invalid_grant",
            65001,
            &format!(
                "The user or administrator has not consented to use the application with ID '{client_id}'. Send an interactive authorization request for this user and resource. Scope: {extra}"
            ),
        );
    }
    let user = match granted_user(entra, &state, &grant.user_key) {
        Ok(user) => user,
        Err(response) => return response,
    };
    if user.password_expired {
        // What a long-running connection meets when its account's password expires (FAQ: "check for an
        // expired Partner Center user password"); the error mapping is unconfirmed, as at sign-in.
        return bad(entra, "invalid_grant", 50055, "The password is expired.");
    }
    retire_on_rotation(&mut state, token);
    issue(
        &mut state,
        entra,
        client_id,
        &user,
        (&requested, &grant.scopes),
        None,
        now,
    )
}

fn client_credentials(entra: &Entra, client_id: &str, form: &Form) -> Response {
    let now = entra.now();
    let scope = form.get("scope").cloned().unwrap_or_default();
    let resource = match scope.strip_suffix("/.default") {
        Some(r) if !r.is_empty() && !scope.contains(' ') => r.to_string(),
        _ => {
            return bad(
                entra,
                "invalid_scope",
                1002012,
                &format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            );
        }
    };
    let state = entra.state();
    let claims = serde_json::json!({
        "aud": resource,
        "iss": entra.issuer(),
        "iat": now.unix_timestamp(),
        "nbf": now.unix_timestamp(),
        "exp": now.unix_timestamp() + super::TOKEN_LIFETIME_SECONDS,
        "appid": client_id,
        "azp": client_id,
        "oid": format!("sp-{client_id}"),
        "sub": format!("sp-{client_id}"),
        "tid": TENANT_ID,
        "idtyp": "app",
        "ver": "2.0",
        "uti": random_token(22),
    });
    let access_token = state.keys.current().sign(&claims);
    token_response(serde_json::json!({
        "token_type": "Bearer",
        "expires_in": super::TOKEN_LIFETIME_SECONDS,
        "ext_expires_in": super::TOKEN_LIFETIME_SECONDS,
        "access_token": access_token,
    }))
}

/// Mints the token response for a user: an access token for the one resource asked for (Microsoft Graph
/// when only OIDC scopes were), an id_token with `openid`, a new refresh token with `offline_access`
/// carrying the whole consent (`consented`), whichever of its resources this token is for.
fn issue(
    state: &mut EntraState,
    entra: &Entra,
    client_id: &str,
    user: &DemoUser,
    (scopes, consented): (&[String], &[String]),
    nonce: Option<&str>,
    now: OffsetDateTime,
) -> Response {
    let resource = resource_of(scopes).unwrap_or_else(|| super::GRAPH_AUDIENCE.to_string());
    let iat = now.unix_timestamp();
    let exp = iat + super::TOKEN_LIFETIME_SECONDS;
    let roles: Vec<String> = if client_id == super::DASHBOARD_CLIENT_ID {
        user.dashboard_roles.clone()
    } else {
        Vec::new()
    };
    let for_resource = scopes_for(scopes, &resource);
    let delegated: Vec<&str> = for_resource
        .iter()
        .map(|s| s.rsplit('/').next().unwrap_or(s))
        .collect();
    let access_claims = serde_json::json!({
        "aud": resource,
        "iss": entra.issuer(),
        "iat": iat, "nbf": iat, "exp": exp,
        "oid": user.object_id,
        "tid": TENANT_ID,
        "sub": pairwise_sub(&user.object_id, &resource),
        "upn": user.username,
        "name": user.name,
        "scp": if delegated.is_empty() { "openid profile email".to_string() } else { delegated.join(" ") },
        "amr": ["pwd", "mfa"],
        "azp": client_id,
        "ver": "2.0",
        "uti": random_token(22),
    });
    let access_token = state.keys.current().sign(&access_claims);
    let mut body = serde_json::json!({
        "token_type": "Bearer",
        "scope": scopes
            .iter()
            .filter(|s| s.as_str() != "offline_access" && (scope_resource(s).is_none() || scope_resource(s).as_deref() == Some(resource.as_str())))
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        "expires_in": super::TOKEN_LIFETIME_SECONDS,
        "ext_expires_in": super::TOKEN_LIFETIME_SECONDS,
        "access_token": access_token,
    });
    if scopes.iter().any(|s| s == "openid") {
        body["id_token"] =
            serde_json::Value::String(id_token(state, entra, client_id, user, &roles, nonce, now));
    }
    if scopes.iter().any(|s| s == "offline_access") {
        // The refresh token carries the whole consent, not just this token's resource.
        let token = mint_refresh_token(state, client_id, user, consented.to_vec());
        body["refresh_token"] = serde_json::Value::String(token);
    }
    token_response(body)
}

fn id_token(
    state: &mut EntraState,
    entra: &Entra,
    client_id: &str,
    user: &DemoUser,
    roles: &[String],
    nonce: Option<&str>,
    now: OffsetDateTime,
) -> String {
    let fault = state.faults.next_id_token.take();
    let iat = now.unix_timestamp();
    let mut claims = serde_json::json!({
        "aud": client_id,
        "iss": entra.issuer(),
        "iat": iat, "nbf": iat, "exp": iat + 3600,
        "oid": user.object_id,
        "tid": TENANT_ID,
        "sub": pairwise_sub(&user.object_id, client_id),
        "name": user.name,
        "preferred_username": user.username,
        "ver": "2.0",
        "uti": random_token(22),
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = nonce.into();
    }
    // Entra leaves `roles` out entirely when none are assigned.
    if !roles.is_empty() {
        claims["roles"] = serde_json::json!(roles);
    }
    match fault {
        Some(IdTokenFault::WrongAudience) => {
            claims["aud"] = "11112222-bbbb-3333-cccc-4444dddd5555".into()
        }
        Some(IdTokenFault::WrongIssuer) => {
            claims["iss"] =
                "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0".into()
        }
        Some(IdTokenFault::Expired) => {
            claims["iat"] = (iat - 4200).into();
            claims["nbf"] = (iat - 4200).into();
            claims["exp"] = (iat - 600).into();
        }
        Some(IdTokenFault::WrongNonce) => claims["nonce"] = "not-the-nonce-you-sent".into(),
        _ => {}
    }
    match fault {
        Some(IdTokenFault::UnknownKey) => state.keys.outsider().sign(&claims),
        Some(IdTokenFault::BadSignature) => {
            let token = state.keys.current().sign(&claims);
            let (rest, signature) = token.rsplit_once('.').expect("JWT has three parts");
            let mut sig = URL_SAFE_NO_PAD
                .decode(signature)
                .expect("signature is base64url");
            sig[0] ^= 0x55;
            format!("{rest}.{}", URL_SAFE_NO_PAD.encode(sig))
        }
        _ => state.keys.current().sign(&claims),
    }
}

/// The person a code or refresh token was granted to (they may have been removed since).
#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom; one per request"
)]
fn granted_user(entra: &Entra, state: &EntraState, key: &str) -> Result<DemoUser, Response> {
    state
        .users
        .iter()
        .find(|u| u.key == key)
        .cloned()
        .ok_or_else(|| {
            bad(
                entra,
                "invalid_grant",
                50034,
                "The user account does not exist in the directory.",
            )
        })
}

/// A refresh token that exists, is not revoked, and was issued to this client.
#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom; one per request"
)]
fn usable_grant(
    entra: &Entra,
    state: &EntraState,
    token: &str,
    client_id: &str,
) -> Result<RefreshGrant, Response> {
    let grant = state.refresh_tokens.get(token).cloned().ok_or_else(|| {
        bad(
            entra,
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid.",
        )
    })?;
    if grant.revoked {
        return Err(bad(
            entra,
            "invalid_grant",
            50173,
            "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
        ));
    }
    if grant.client_id != client_id {
        return Err(bad(
            entra,
            "invalid_grant",
            70000,
            "The refresh token was issued to a different client.",
        ));
    }
    Ok(grant)
}

/// Rotation leaves the used token valid, unless the fault says to revoke it.
fn retire_on_rotation(state: &mut EntraState, token: &str) {
    if state.faults.revoke_refresh_token_on_rotation
        && let Some(old) = state.refresh_tokens.get_mut(token)
    {
        old.revoked = true;
    }
}

fn mint_refresh_token(
    state: &mut EntraState,
    client_id: &str,
    user: &DemoUser,
    scopes: Vec<String>,
) -> String {
    let token = format!("0.{}", random_token(120));
    state.refresh_tokens.insert(
        token.clone(),
        RefreshGrant {
            client_id: client_id.to_string(),
            user_key: user.key.clone(),
            scopes,
            revoked: false,
        },
    );
    token
}

/// `sub` is pairwise: stable for one user and one app, different across apps.
fn pairwise_sub(object_id: &str, audience: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{object_id}:{audience}").as_bytes()))
}

fn token_response(body: serde_json::Value) -> Response {
    let mut response = axum::Json(body).into_response();
    errors::no_store(&mut response);
    response
}

/// The v1 endpoint (`/{tenant}/oauth2/token`): `resource=` instead of `scope=`, the `password` grant
/// (ROPC, which cannot satisfy MFA: its tokens carry `amr: ["pwd"]` only) and `refresh_token`.
/// Quirk kept: every number in the response is a string (`"expires_in":"3599"`), and `resource` is echoed.
pub async fn token_v1(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !tenant_is_known(&tenant) {
        return bad(
            &entra,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found."),
        );
    }
    let form: Form = serde_urlencoded::from_str(&body).unwrap_or_default();
    let client_id = match authenticate_client(&entra, &headers, &form) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let Some(resource) = form.get("resource").filter(|r| !r.is_empty()).cloned() else {
        return bad(
            &entra,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'resource'.",
        );
    };
    let now = entra.now();
    let mut state = entra.state();
    let user = match form.get("grant_type").map(String::as_str) {
        Some("password") => {
            let username = form.get("username").cloned().unwrap_or_default();
            let Some(user) = state
                .users
                .iter()
                .find(|u| u.username.eq_ignore_ascii_case(&username))
                .cloned()
            else {
                return bad(
                    &entra,
                    "invalid_grant",
                    50034,
                    "The user account does not exist in the directory.",
                );
            };
            if form.get("password").map(String::as_str) != Some(super::SANDBOX_PASSWORD) {
                return bad(
                    &entra,
                    "invalid_grant",
                    50126,
                    "Error validating credentials due to invalid username or password.",
                );
            }
            if user.password_expired {
                return bad(&entra, "invalid_grant", 50055, "The password is expired.");
            }
            user
        }
        Some("refresh_token") => {
            let token = form.get("refresh_token").cloned().unwrap_or_default();
            let grant = match usable_grant(&entra, &state, &token, &client_id) {
                Ok(grant) => grant,
                Err(response) => return response,
            };
            if !grant
                .scopes
                .iter()
                .any(|s| scope_resource(s).as_deref() == Some(resource.as_str()))
            {
                return bad(
                    &entra,
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application for this resource.",
                );
            }
            let user = match granted_user(&entra, &state, &grant.user_key) {
                Ok(user) => user,
                Err(response) => return response,
            };
            retire_on_rotation(&mut state, &token);
            user
        }
        Some(other) => {
            return bad(
                &entra,
                "unsupported_grant_type",
                70003,
                &format!("The app requested an unsupported grant type '{other}'."),
            );
        }
        None => {
            return bad(
                &entra,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            );
        }
    };
    let iat = now.unix_timestamp();
    let exp = iat + super::TOKEN_LIFETIME_SECONDS;
    let claims = serde_json::json!({
        "aud": resource,
        "iss": entra.issuer_v1(),
        "iat": iat, "nbf": iat, "exp": exp,
        "oid": user.object_id,
        "tid": TENANT_ID,
        "upn": user.username,
        "unique_name": user.username,
        "name": user.name,
        "appid": client_id,
        "scp": "user_impersonation",
        // The sandbox models this endpoint as the docs use it, with the password grant, which cannot do MFA.
        "amr": ["pwd"],
        "ver": "1.0",
    });
    let access_token = state.keys.current().sign(&claims);
    let refresh = mint_refresh_token(
        &mut state,
        &client_id,
        &user,
        vec![format!("{resource}/user_impersonation")],
    );
    token_response(serde_json::json!({
        "token_type": "Bearer",
        "scope": "user_impersonation",
        "expires_in": super::TOKEN_LIFETIME_SECONDS.to_string(),
        "ext_expires_in": super::TOKEN_LIFETIME_SECONDS.to_string(),
        "expires_on": exp.to_string(),
        "not_before": iat.to_string(),
        "resource": resource,
        "access_token": access_token,
        "refresh_token": refresh,
    }))
}
