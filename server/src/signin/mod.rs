//! `/auth/sign-in`, `/auth/callback`, `/auth/sign-out`.
//!
//! The session id is rotated when a sign-in completes (no fixation) and the session is flushed at
//! sign-out. Pending sign-ins are keyed by `state`, so two tabs signing in at once both work.

mod error;
mod oidc;

pub use error::SignInError;
pub use oidc::SignIn;

use crate::error_page;
use crate::startup::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cosell_app::auth::server::SESSION_USER;
use oidc::{CallbackParams, PENDING_TTL_SECONDS, Pending};
use serde::Deserialize;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use tower_sessions::Session;

const SESSION_PENDING: &str = "pending_sign_ins";
/// At most this many sign-ins in flight per browser; the oldest is forgotten first.
const MAX_PENDING: usize = 5;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/sign-in", get(sign_in))
        .route("/auth/callback", get(callback))
        .route("/auth/sign-out", post(sign_out))
}

#[derive(Deserialize)]
struct SignInQuery {
    return_to: Option<String>,
}

/// Only paths on this site: never `//evil.example` or `https://…` (no open redirect).
fn safe_return_to(candidate: Option<String>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.starts_with("/auth/") =>
        {
            p
        }
        _ => "/".to_string(),
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn fail(e: SignInError) -> Response {
    match &e {
        SignInError::Internal(_) | SignInError::ProviderUnreachable(_) => {
            tracing::error!(error = %e, "sign-in failed")
        }
        _ => tracing::warn!(error = %e, code = e.code(), "sign-in refused"),
    }
    let (title, advice) = e.explain();
    error_page::render(e.status(), e.code(), title, &advice)
}

fn session_failed(e: tower_sessions::session::Error) -> Response {
    fail(SignInError::Internal(format!("session store: {e}")))
}

async fn sign_in(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<SignInQuery>,
) -> Response {
    let (url, state, pending) = match app.sign_in.start(safe_return_to(q.return_to), now()).await {
        Ok(started) => started,
        Err(e) => return fail(e),
    };
    let mut pendings: BTreeMap<String, Pending> = match session.get(SESSION_PENDING).await {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return session_failed(e),
    };
    pendings.retain(|_, p| now() - p.started_at < PENDING_TTL_SECONDS);
    while pendings.len() >= MAX_PENDING {
        let oldest = pendings
            .iter()
            .min_by_key(|(_, p)| p.started_at)
            .map(|(k, _)| k.clone())
            .expect("non-empty");
        pendings.remove(&oldest);
    }
    pendings.insert(state, pending);
    if let Err(e) = session.insert(SESSION_PENDING, &pendings).await {
        return session_failed(e);
    }
    Redirect::to(&url).into_response()
}

async fn callback(
    State(app): State<AppState>,
    session: Session,
    Query(params): Query<CallbackParams>,
) -> Response {
    let mut pendings: BTreeMap<String, Pending> = match session.get(SESSION_PENDING).await {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return session_failed(e),
    };
    pendings.retain(|_, p| now() - p.started_at < PENDING_TTL_SECONDS);
    let state = params.state.clone().unwrap_or_default();
    // A state is good for one answer, whatever the answer is.
    let pending = pendings.remove(&state);
    if let Err(e) = session.insert(SESSION_PENDING, &pendings).await {
        return session_failed(e);
    }
    let pending = match pending {
        Some(p) => p,
        None if pendings.is_empty() && state.is_empty() => {
            return fail(SignInError::NoPendingSignIn);
        }
        None if pendings.is_empty() => return fail(SignInError::NoPendingSignIn),
        None => return fail(SignInError::StateMismatch),
    };
    let return_to = pending.return_to.clone();
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let user = match app.sign_in.finish(pending, params, now_ms).await {
        Ok(user) => user,
        Err(e) => return fail(e),
    };
    // New identity, new session id: a session id planted before sign-in is worthless after it.
    if let Err(e) = session.cycle_id().await {
        return session_failed(e);
    }
    let _ = session.remove::<serde_json::Value>(SESSION_PENDING).await;
    if let Err(e) = session.insert(SESSION_USER, &user).await {
        return session_failed(e);
    }
    if let Err(e) = app.store.record_sign_in(&user).await {
        return fail(SignInError::Internal(format!("recording sign-in: {e}")));
    }
    tracing::info!(user = %user.object_id, tenant = %user.tenant_id, access = ?user.access, "signed in");
    Redirect::to(&return_to).into_response()
}

async fn sign_out(session: Session) -> Response {
    if let Err(e) = session.flush().await {
        return session_failed(e);
    }
    Redirect::to("/").into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_to_stays_on_this_site() {
        for (input, expected) in [
            (Some("/users"), "/users"),
            (Some("/users?x=1"), "/users?x=1"),
            (Some("//evil.example/x"), "/"),
            (Some("https://evil.example"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("/auth/sign-out"), "/"),
            (None, "/"),
        ] {
            assert_eq!(
                safe_return_to(input.map(String::from)),
                expected,
                "{input:?}"
            );
        }
    }
}
