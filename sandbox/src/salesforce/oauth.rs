//! `/services/oauth2/authorize`: validates the request, then shows a page where a person picks a demo
//! user (no passwords in the sandbox) or denies access; `/services/oauth2/revoke`; and the grants and
//! sessions the token endpoint (`token.rs`) issues.

use super::errors::oauth as oauth_error;
use super::{SALESFORCE_CLIENT_ID, Salesforce, seed};
use crate::html::{escape, page_of};
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

pub(crate) use super::token::token;

/// Scopes the connected app is configured with; asked for without `scope`, it grants these.
const APP_SCOPES: &[&str] = &[
    "api",
    "refresh_token",
    "offline_access",
    "id",
    "openid",
    "web",
    "full",
];
const DEFAULT_SCOPES: &str = "api refresh_token id";

pub(crate) struct Code {
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub challenge: Option<String>,
    pub user_id: String,
    pub issued: OffsetDateTime,
}

pub(crate) struct Refresh {
    pub user_id: String,
    pub scopes: Vec<String>,
    pub revoked: bool,
}

pub(crate) struct Session {
    pub user_id: String,
    pub scopes: Vec<String>,
    pub issued: OffsetDateTime,
    pub expired: bool,
    /// The refresh token this session came from (revoking it ends the session).
    pub refresh: Option<String>,
}

#[derive(Default)]
pub(crate) struct Grants {
    pub codes: HashMap<String, Code>,
    pub spent_codes: HashSet<String>,
    pub refresh: HashMap<String, Refresh>,
    pub sessions: HashMap<String, Session>,
}

impl Grants {
    /// A live session for this access token.
    pub(crate) fn session(
        &self,
        token: &str,
        now: OffsetDateTime,
        lifetime: i64,
    ) -> Option<&Session> {
        self.sessions
            .get(token)
            .filter(|s| !s.expired && (now - s.issued).whole_seconds() < lifetime)
    }

    pub(crate) fn expire_sessions(&mut self) -> usize {
        self.sessions
            .values_mut()
            .filter(|s| !s.expired)
            .map(|s| s.expired = true)
            .count()
    }

    pub(crate) fn revoke_user(&mut self, user_id: &str) -> usize {
        let mut n = 0;
        for grant in self
            .refresh
            .values_mut()
            .filter(|g| g.user_id == user_id && !g.revoked)
        {
            grant.revoked = true;
            n += 1;
        }
        for s in self.sessions.values_mut().filter(|s| s.user_id == user_id) {
            s.expired = true;
        }
        n
    }
}

pub(crate) fn random(len: usize) -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AuthorizeParams {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
    display: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    user: Option<String>,
    deny: Option<String>,
}

struct Valid {
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    challenge: Option<String>,
}

/// The page Salesforce shows instead of redirecting to a URL it cannot trust.
fn error_page(error: &str, description: &str) -> Response {
    let body = format!(
        r#"<h1>Authorization error</h1><p class="error" id="oauth-error"><code>error={}</code></p><p>{}</p>"#,
        escape(error),
        escape(description)
    );
    (
        StatusCode::BAD_REQUEST,
        Html(page_of("Salesforce emulator", "Authorization error", &body)),
    )
        .into_response()
}

fn redirect(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(uri) else {
        return error_page("redirect_uri_mismatch", "redirect_uri must be a URL");
    };
    url.query_pairs_mut().extend_pairs(pairs);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom"
)]
fn validate(sf: &Salesforce, p: &AuthorizeParams) -> Result<Valid, Response> {
    if p.client_id.as_deref() != Some(SALESFORCE_CLIENT_ID) {
        return Err(error_page("invalid_client_id", "client identifier invalid"));
    }
    let redirect_uri = p.redirect_uri.clone().unwrap_or_default();
    if !sf.org().redirect_uris.contains(&redirect_uri) {
        return Err(error_page(
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ));
    }
    let state = p.state.clone();
    let fail = |error: &str, description: &str| {
        let mut pairs = vec![("error", error), ("error_description", description)];
        if let Some(s) = &state {
            pairs.push(("state", s));
        }
        redirect(&redirect_uri, &pairs)
    };
    if p.response_type.as_deref() != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "response type not supported",
        ));
    }
    let scopes: Vec<String> = p
        .scope
        .as_deref()
        .unwrap_or(DEFAULT_SCOPES)
        .split([' ', '+'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if scopes.iter().any(|s| !APP_SCOPES.contains(&s.as_str())) {
        return Err(fail("invalid_scope", "the requested scope is not allowed"));
    }
    // Salesforce documents S256 only. Wording of these errors unconfirmed (crm-apis.md §3.2).
    if p.code_challenge_method
        .as_deref()
        .is_some_and(|m| m != "S256")
    {
        return Err(fail("invalid_request", "invalid code_challenge_method"));
    }
    let challenge = p.code_challenge.clone().filter(|c| !c.is_empty());
    let well_formed = |c: &str| {
        (43..=128).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if challenge.as_deref().is_some_and(|c| !well_formed(c)) {
        return Err(fail("invalid_request", "invalid code challenge"));
    }
    Ok(Valid {
        redirect_uri,
        scopes,
        state,
        challenge,
    })
}

pub(crate) async fn show(
    State(sf): State<Salesforce>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    match validate(&sf, &params) {
        Ok(_) => picker(&params, None, StatusCode::OK),
        Err(r) => r,
    }
}

fn picker(params: &AuthorizeParams, error: Option<&str>, status: StatusCode) -> Response {
    let hidden: String = [
        ("client_id", &params.client_id),
        ("response_type", &params.response_type),
        ("redirect_uri", &params.redirect_uri),
        ("scope", &params.scope),
        ("state", &params.state),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
        ("prompt", &params.prompt),
        ("login_hint", &params.login_hint),
        ("display", &params.display),
    ]
    .iter()
    .filter_map(|(name, value)| {
        value.as_ref().map(|v| {
            format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                escape(v)
            )
        })
    })
    .collect();
    let buttons: String = seed::demo_users()
        .iter()
        .map(|u| {
            format!(
                r#"<button type="submit" name="user" value="{key}" data-user="{key}">{first} {last}<small>{username}</small><small>{about}</small></button>"#,
                key = escape(&u.key),
                first = escape(&u.first_name),
                last = escape(&u.last_name),
                username = escape(&u.username),
                about = escape(&u.description),
            )
        })
        .collect();
    let error = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Log in to Salesforce</h1><p>Contoso Sandbox: pick a user to allow access</p>{error}
<form method="post" action="/services/oauth2/authorize">{hidden}{buttons}<button type="submit" name="deny" value="1">Deny</button></form>"#
    );
    (
        status,
        Html(page_of("Salesforce emulator", "Login | Salesforce", &body)),
    )
        .into_response()
}

pub(crate) async fn sign_in(
    State(sf): State<Salesforce>,
    Form(form): Form<SignInForm>,
) -> Response {
    let valid = match validate(&sf, &form.params) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if form.deny.is_some() {
        pairs.push(("error", "access_denied".into()));
        pairs.push(("error_description", "end-user denied authorization".into()));
    } else {
        let Some(user) = form
            .user
            .as_deref()
            .and_then(|key| seed::demo_users().into_iter().find(|u| u.key == key))
        else {
            return picker(
                &form.params,
                Some("Pick one of the users below."),
                StatusCode::BAD_REQUEST,
            );
        };
        // Salesforce's codes are opaque and start like this.
        let code = format!("aPrx{}", random(80));
        let now = sf.now();
        sf.org().grants.codes.insert(
            code.clone(),
            Code {
                redirect_uri: valid.redirect_uri.clone(),
                scopes: valid.scopes.clone(),
                challenge: valid.challenge.clone(),
                user_id: user.id,
                issued: now,
            },
        );
        pairs.push(("code", code));
    }
    if let Some(s) = valid.state {
        pairs.push(("state", s));
    }
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    redirect(&valid.redirect_uri, &pairs)
}

#[derive(Deserialize)]
pub(crate) struct RevokeParams {
    token: Option<String>,
}

/// `token=` in the body (POST) or the query (GET). A refresh token takes its sessions with it.
/// Unknown tokens answer 400 `invalid_token` (unconfirmed).
pub(crate) async fn revoke(
    State(sf): State<Salesforce>,
    Query(query): Query<RevokeParams>,
    body: String,
) -> Response {
    let from_body = serde_urlencoded::from_str::<RevokeParams>(&body)
        .ok()
        .and_then(|p| p.token);
    let Some(token) = from_body.or(query.token) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is missing",
        );
    };
    let mut org = sf.org();
    let grants = &mut org.grants;
    if let Some(grant) = grants.refresh.get_mut(&token) {
        grant.revoked = true;
        for s in grants
            .sessions
            .values_mut()
            .filter(|s| s.refresh.as_deref() == Some(&token))
        {
            s.expired = true;
        }
        return StatusCode::OK.into_response();
    }
    if grants.sessions.remove(&token).is_some() {
        return StatusCode::OK.into_response();
    }
    oauth_error(StatusCode::BAD_REQUEST, "invalid_token", "invalid token")
}
