//! `POST /services/oauth2/token` (crm-apis.md §3.2, §3.3): `authorization_code` (single use, 15 minutes,
//! PKCE S256) and `refresh_token`. Answers have Salesforce's shape: no `expires_in`, `issued_at` in epoch
//! milliseconds as a string, `instance_url`, the identity URL as `id`; errors are 400 OAuth objects.

use super::errors::{no_store, oauth as oauth_error};
use super::oauth::{Refresh, Session, random};
use super::{
    ORG_ID, Org, SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET, Salesforce, USER_REVOKED,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use time::OffsetDateTime;

/// Authorization codes live 15 minutes.
const CODE_LIFETIME_SECONDS: i64 = 15 * 60;

type Form = HashMap<String, String>;

fn bad(error: &str, description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

pub(crate) async fn token(
    State(sf): State<Salesforce>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: Form = serde_urlencoded::from_str(&body).unwrap_or_default();
    match form.get("grant_type").map(String::as_str) {
        None => return bad("invalid_request", "grant type is missing"),
        Some("authorization_code" | "refresh_token") => {}
        Some(_) => return bad("unsupported_grant_type", "grant type not supported"),
    }
    if !client_authenticates(&headers, &form) {
        return bad("invalid_client", "invalid client credentials");
    }
    let now = sf.now();
    let base = sf.base_url().to_string();
    let mut org = sf.org();
    let result = if form["grant_type"] == "authorization_code" {
        authorization_code(&mut org, &form, now)
    } else {
        refresh_token(&mut org, &form)
    };
    match result {
        Ok(g) => issue(&mut org, &base, g, now),
        Err(r) => r,
    }
}

/// The consumer key and secret, in the body or as HTTP Basic (whose parts are form-encoded).
fn client_authenticates(headers: &HeaderMap, form: &Form) -> bool {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
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
    let (id, secret) = match basic {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            form.get("client_id").cloned(),
            form.get("client_secret").cloned(),
        ),
    };
    id.as_deref() == Some(SALESFORCE_CLIENT_ID)
        && secret.as_deref() == Some(SALESFORCE_CLIENT_SECRET)
}

/// What a grant yields.
struct Granted {
    user_id: String,
    scopes: Vec<String>,
    /// A refresh token to hand out.
    refresh: Option<String>,
    /// The refresh token the session descends from (revoking it ends the session).
    parent: Option<String>,
}

#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom"
)]
fn authorization_code(
    org: &mut Org,
    form: &Form,
    now: OffsetDateTime,
) -> Result<Granted, Response> {
    // Unknown and spent codes: wording unconfirmed.
    let invalid = || bad("invalid_grant", "invalid authorization code");
    let code = form.get("code").ok_or_else(invalid)?;
    if org.grants.spent_codes.contains(code) {
        return Err(invalid());
    }
    let grant = org.grants.codes.remove(code).ok_or_else(invalid)?;
    // Once presented, a code is spent, whatever happens next.
    org.grants.spent_codes.insert(code.clone());
    if (now - grant.issued).whole_seconds() > CODE_LIFETIME_SECONDS {
        return Err(bad("invalid_grant", "authorization code expired"));
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return Err(bad(
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ));
    }
    if let Some(challenge) = &grant.challenge {
        let verifier = form
            .get("code_verifier")
            .map(String::as_str)
            .unwrap_or_default();
        if verifier.is_empty()
            || URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge
        {
            // invalid_grant is documented for a missing verifier; the description is unconfirmed.
            return Err(bad("invalid_grant", "invalid code verifier"));
        }
    }
    let refresh = grant
        .scopes
        .iter()
        .any(|s| s == "refresh_token" || s == "offline_access")
        .then(|| new_refresh(org, &grant.user_id, &grant.scopes));
    Ok(Granted {
        user_id: grant.user_id,
        scopes: grant.scopes,
        parent: refresh.clone(),
        refresh,
    })
}

fn new_refresh(org: &mut Org, user_id: &str, scopes: &[String]) -> String {
    let token = format!("5Aep861{}", random(80));
    org.grants.refresh.insert(
        token.clone(),
        Refresh {
            user_id: user_id.to_string(),
            scopes: scopes.to_vec(),
            // The `revoked` demo user stands for an app an admin revoked: every refresh fails.
            revoked: user_id == USER_REVOKED,
        },
    );
    token
}

#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom"
)]
fn refresh_token(org: &mut Org, form: &Form) -> Result<Granted, Response> {
    let expired = || bad("invalid_grant", "expired access/refresh token");
    let token = form.get("refresh_token").ok_or_else(expired)?;
    let grant = org
        .grants
        .refresh
        .get(token)
        .filter(|g| !g.revoked)
        .ok_or_else(expired)?;
    let (user_id, scopes) = (grant.user_id.clone(), grant.scopes.clone());
    // Without rotation the refresh token stays as it is and is not repeated in the answer.
    let refresh = if org.settings.refresh_rotation {
        org.grants
            .refresh
            .get_mut(token)
            .expect("found above")
            .revoked = true;
        Some(new_refresh(org, &user_id, &scopes))
    } else {
        None
    };
    Ok(Granted {
        user_id,
        scopes,
        parent: Some(refresh.clone().unwrap_or_else(|| token.clone())),
        refresh,
    })
}

/// `base64(HMAC-SHA256(client secret, id + issued_at))` (crm-apis.md §3.2, unconfirmed).
fn signature(id: &str, issued_at: &str) -> String {
    let key = SALESFORCE_CLIENT_SECRET.as_bytes();
    let pad = |byte: u8| {
        let mut block = [byte; 64];
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
        block
    };
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(id.as_bytes())
        .chain_update(issued_at.as_bytes())
        .finalize();
    let mac = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    STANDARD.encode(mac)
}

fn issue(org: &mut Org, base: &str, g: Granted, now: OffsetDateTime) -> Response {
    let Granted {
        user_id,
        scopes,
        refresh,
        parent,
    } = g;
    // `00D…!AQ…`: the org id, then an opaque session part.
    let access = format!("{}!AQ{}", &ORG_ID[..15], random(96));
    let issued_at = (now.unix_timestamp_nanos() / 1_000_000).to_string();
    let id = format!("{base}/id/{ORG_ID}/{user_id}");
    org.grants.sessions.insert(
        access.clone(),
        Session {
            user_id: user_id.clone(),
            scopes: scopes.clone(),
            issued: now,
            expired: false,
            refresh: parent,
        },
    );
    let mut body = json!({
        "access_token": access,
        "signature": signature(&id, &issued_at),
        "scope": scopes.join(" "),
        "instance_url": base,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    let mut r = axum::Json(body).into_response();
    no_store(&mut r);
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_is_hmac_sha256_keyed_with_the_secret() {
        // Python: base64(hmac.new(secret, id + issued_at, sha256).digest()).
        assert_eq!(
            super::signature("https://x/id/00D/005", "1558553873237"),
            "UU1YQ2JGd/gvl+KQDc9NH3YH4XsXjrCIzx+ouafg9OE="
        );
    }
}
