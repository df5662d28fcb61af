//! `/{tenant}/oauth2/v2.0/authorize`: validates the request as Entra does, then shows a page where a person
//! picks a demo user (there are no passwords in the sandbox). Picking one issues a single-use code.

use super::{ChallengeMethod, CodeGrant, Entra, ExpiredPasswordAt, errors, tenant_is_known};
use crate::html::{escape, page};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    client_id: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    response_mode: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    user: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ResponseMode {
    Query,
    FormPost,
}

struct Valid {
    client_id: String,
    app_name: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    nonce: Option<String>,
    challenge: Option<(String, ChallengeMethod)>,
    mode: ResponseMode,
}

#[expect(
    clippy::result_large_err,
    reason = "an early return of a ready HTTP response is the axum idiom; one per request"
)]
fn validate(entra: &Entra, tenant: &str, p: &AuthorizeParams) -> Result<Valid, Response> {
    let now = entra.now();
    if !tenant_is_known(tenant) {
        return Err(errors::error_page(
            90002,
            &format!("Tenant '{tenant}' not found."),
            now,
        ));
    }
    let Some(client_id) = p.client_id.clone().filter(|c| !c.is_empty()) else {
        return Err(errors::error_page(
            900144,
            "The request body must contain the following parameter: 'client_id'.",
            now,
        ));
    };
    let (app_name, registered) = {
        let state = entra.state();
        match state.clients.get(&client_id) {
            Some(app) => (app.name.clone(), app.redirect_uris.clone()),
            None => {
                return Err(errors::error_page(
                    700016,
                    &format!(
                        "Application with identifier '{client_id}' was not found in the directory '{}'.",
                        super::TENANT_DOMAIN
                    ),
                    now,
                ));
            }
        }
    };
    let redirect_uri = p.redirect_uri.clone().unwrap_or_default();
    // Exact match, as Entra requires; a mismatch is shown here and never redirected to.
    if !registered.contains(&redirect_uri) {
        return Err(errors::error_page(
            50011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
            ),
            now,
        ));
    }
    let state = p.state.clone();
    let fail = |error: &str, code: u32, message: &str| {
        errors::redirect_error(&redirect_uri, error, code, message, state.as_deref(), now)
    };
    match p.response_type.as_deref() {
        Some("code") => {}
        Some(other) => {
            return Err(fail(
                "unsupported_response_type",
                700054,
                &format!("response_type '{other}' is not enabled for the application."),
            ));
        }
        None => {
            return Err(fail(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'response_type'.",
            ));
        }
    }
    let mode = match p.response_mode.as_deref() {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            return Err(fail(
                "invalid_request",
                900144,
                &format!(
                    "The provided value for the input parameter 'response_mode' is not valid: '{other}'."
                ),
            ));
        }
    };
    let scopes: Vec<String> = p
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return Err(fail(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        ));
    }
    // Scopes of several resources are consented together; the code redeems for the first one.
    let challenge = match (&p.code_challenge, p.code_challenge_method.as_deref()) {
        (None, _) => None,
        (Some(c), Some("S256")) => Some((c.clone(), ChallengeMethod::S256)),
        // No method means plain (RFC 7636 §4.3), as Entra documents.
        (Some(c), None | Some("plain")) => Some((c.clone(), ChallengeMethod::Plain)),
        (Some(_), Some(other)) => {
            return Err(fail(
                "invalid_request",
                501491,
                &format!("Invalid code_challenge_method '{other}'."),
            ));
        }
    };
    Ok(Valid {
        client_id,
        app_name,
        redirect_uri,
        scopes,
        state,
        nonce: p.nonce.clone(),
        challenge,
        mode,
    })
}

pub async fn show(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    match validate(&entra, &tenant, &params) {
        Ok(valid) => picker(&entra, &tenant, &params, &valid, None, StatusCode::OK),
        Err(response) => response,
    }
}

fn picker(
    entra: &Entra,
    tenant: &str,
    params: &AuthorizeParams,
    valid: &Valid,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let hidden: String = [
        ("client_id", &params.client_id),
        ("response_type", &params.response_type),
        ("redirect_uri", &params.redirect_uri),
        ("response_mode", &params.response_mode),
        ("scope", &params.scope),
        ("state", &params.state),
        ("nonce", &params.nonce),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
        ("prompt", &params.prompt),
        ("login_hint", &params.login_hint),
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
    let buttons: String = entra
        .users()
        .iter()
        .map(|u| {
            format!(
                r#"<button type="submit" name="user" value="{key}" data-user="{key}">{name}<small>{username}</small><small>{description}</small></button>"#,
                key = escape(&u.key),
                name = escape(&u.name),
                username = escape(&u.username),
                description = escape(&u.description),
            )
        })
        .collect();
    let error = error
        .map(|e| format!(r#"<p class="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Pick an account</h1><p>to continue to <strong>{app}</strong></p>{error}
<form method="post" action="/{tenant}/oauth2/v2.0/authorize">{hidden}{buttons}</form>"#,
        app = escape(&valid.app_name),
        tenant = escape(tenant),
    );
    (status, Html(page("Sign in to your account", &body))).into_response()
}

pub async fn sign_in(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
    Form(form): Form<SignInForm>,
) -> Response {
    let valid = match validate(&entra, &tenant, &form.params) {
        Ok(v) => v,
        Err(response) => return response,
    };
    let user = form
        .user
        .as_deref()
        .and_then(|key| entra.users().into_iter().find(|u| u.key == key));
    let Some(user) = user else {
        return picker(
            &entra,
            &tenant,
            &form.params,
            &valid,
            Some("That account doesn't exist. Pick one of the accounts below."),
            StatusCode::BAD_REQUEST,
        );
    };
    let now = entra.now();
    if user.password_expired && entra.faults().expired_password_at == ExpiredPasswordAt::Authorize {
        return errors::redirect_error(
            &valid.redirect_uri,
            "interaction_required",
            50055,
            "The password is expired.",
            valid.state.as_deref(),
            now,
        );
    }
    let code = super::random_token(96);
    entra.state().codes.insert(
        code.clone(),
        CodeGrant {
            client_id: valid.client_id.clone(),
            redirect_uri: valid.redirect_uri.clone(),
            scopes: valid.scopes.clone(),
            nonce: valid.nonce.clone(),
            challenge: valid.challenge.clone(),
            user_key: user.key.clone(),
            issued_at: now,
        },
    );
    match valid.mode {
        ResponseMode::Query => {
            let mut url = url::Url::parse(&valid.redirect_uri).expect("registered URIs are URLs");
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("code", &code);
                if let Some(state) = &valid.state {
                    q.append_pair("state", state);
                }
            }
            errors::found(url.as_str())
        }
        ResponseMode::FormPost => {
            let state = valid
                .state
                .as_ref()
                .map(|s| {
                    format!(
                        r#"<input type="hidden" name="state" value="{}">"#,
                        escape(s)
                    )
                })
                .unwrap_or_default();
            let body = format!(
                r#"<h1>Signing you in…</h1><form method="post" action="{action}"><input type="hidden" name="code" value="{code}">{state}<button type="submit">Continue</button></form>
<script>document.forms[0].submit()</script>"#,
                action = escape(&valid.redirect_uri),
            );
            Html(page("Working…", &body)).into_response()
        }
    }
}
