//! `/auth/sign-in`, `/auth/callback`, `/auth/sign-out`.
//!
//! The session id is rotated when a sign-in completes (no fixation) and the session is flushed at
//! sign-out. Pending sign-ins are keyed by `state`, so two tabs signing in at once both work.

mod error;
mod oidc;

pub use error::{SignInError, aadsts_code};
pub use oidc::SignIn;

use crate::startup::AppState;
use crate::{error_page, pending};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cosell_app::auth::server::SESSION_USER;
use oidc::{CallbackParams, PENDING_TTL_SECONDS, Pending};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_sessions::Session;

/// Sign-ins in flight in this browser: at most five, each for a limited time.
const PENDING: pending::Pending = pending::Pending {
    key: "pending_sign_ins",
    ttl_seconds: PENDING_TTL_SECONDS,
    max: 5,
};

impl pending::Started for Pending {
    fn started_at(&self) -> i64 {
        self.started_at
    }
}

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
    if let Err(e) = PENDING.push(&session, state, pending, now()).await {
        return session_failed(e);
    }
    Redirect::to(&url).into_response()
}

async fn callback(
    State(app): State<AppState>,
    session: Session,
    Query(params): Query<CallbackParams>,
) -> Response {
    // A state is good for one answer, whatever the answer is.
    let state = params.state.clone().unwrap_or_default();
    let taken = match PENDING.take::<Pending>(&session, &state, now()).await {
        Ok(t) => t,
        Err(e) => return session_failed(e),
    };
    let pending = match taken.item {
        Some(p) => p,
        None if taken.others => return fail(SignInError::StateMismatch),
        None => return fail(SignInError::NoPendingSignIn),
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
    let _ = session.remove::<serde_json::Value>(PENDING.key).await;
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
