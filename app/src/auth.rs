//! Who is signed in, and the role checks every server function makes.

use crate::error::AppError;
use cosell::domain::{RoleNames, SignedInUser};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The signed-in person and the role names this installation expects (to explain a missing role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user: SignedInUser,
    pub roles: RoleNames,
}

/// Who is signed in, if anyone. Needs no role: the no-role page is built from it.
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Option<Me>, AppError> {
    let ctx = server::context()?;
    Ok(server::current_user().await?.map(|user| Me {
        user,
        roles: ctx.roles.clone(),
    }))
}

#[cfg(feature = "ssr")]
pub mod server {
    //! Server-side half: the session key the sign-in handler writes, and the checks.

    use super::*;
    use cosell::domain::Access;
    use cosell::store::Store;
    use leptos_axum::ResponseOptions;
    use tower_sessions::Session;

    /// Where the sign-in handler keeps the [`SignedInUser`] in the session.
    pub const SESSION_USER: &str = "user";

    /// What server functions get from the server that hosts them.
    #[derive(Clone)]
    pub struct ServerContext {
        pub store: Store,
        pub roles: RoleNames,
        pub engine: std::sync::Arc<cosell::engine::Engine>,
        pub sealing_key: cosell::crypto::SealingKey,
        /// Where Partner Center must send webhooks: this server's receiver.
        pub callback_url: String,
    }

    pub fn context() -> Result<ServerContext, AppError> {
        use_context::<ServerContext>().ok_or_else(|| {
            tracing::error!("ServerContext missing from the Leptos context");
            AppError::Internal
        })
    }

    /// Logs the detail, returns the user-safe error.
    pub fn internal(detail: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %detail, "server function failed");
        AppError::Internal
    }

    /// An admin action's refusal as the user reads it; a database failure logged and hidden.
    pub fn action_error(e: cosell::engine::admin::ActionError) -> AppError {
        match e {
            cosell::engine::admin::ActionError::Refused(why) => AppError::Invalid(why),
            cosell::engine::admin::ActionError::Store(e) => internal(e),
        }
    }

    /// The user of this request's session. A session ended by "sign out everywhere" is flushed here.
    pub async fn current_user() -> Result<Option<SignedInUser>, AppError> {
        let ctx = context()?;
        let session: Session = leptos_axum::extract().await.map_err(internal)?;
        let Some(user) = session
            .get::<SignedInUser>(SESSION_USER)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        if ctx
            .store
            .is_session_revoked(&user)
            .await
            .map_err(internal)?
        {
            session.flush().await.map_err(internal)?;
            return Ok(None);
        }
        Ok(Some(user))
    }

    /// The signed-in user, if their role allows `needed`; otherwise a refusal saying which role is missing.
    pub async fn require(needed: Access) -> Result<SignedInUser, AppError> {
        let Some(user) = current_user().await? else {
            set_status(axum::http::StatusCode::UNAUTHORIZED);
            return Err(AppError::NotSignedIn);
        };
        if !user.access.allows(needed) {
            tracing::warn!(user = %user.object_id, have = ?user.access, needed = ?needed, "refused: role");
            set_status(axum::http::StatusCode::FORBIDDEN);
            return Err(AppError::Forbidden {
                needed: needed.label().to_string(),
                have: user.access.label().to_string(),
            });
        }
        Ok(user)
    }

    /// Sets the HTTP status of a refusal, except for plain form posts (JavaScript off): those are answered
    /// with a redirect back to the page, which shows the error, and a non-3xx status would break it.
    fn set_status(status: axum::http::StatusCode) {
        let plain_form_post = use_context::<axum::http::request::Parts>()
            .and_then(|parts| {
                parts
                    .headers
                    .get(axum::http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.contains("text/html"))
            })
            .unwrap_or(false);
        if !plain_form_post && let Some(options) = use_context::<ResponseOptions>() {
            options.set_status(status);
        }
    }
}
