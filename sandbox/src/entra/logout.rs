//! `GET /{tenant}/oauth2/v2.0/logout` (the discovery document's `end_session_endpoint`): ends the
//! emulator's notion of a sign-in session, then returns to `post_logout_redirect_uri` when it is one of the
//! app's registered redirect URIs, or shows a "signed out" page otherwise (Entra never redirects to an
//! unregistered address). The sandbox keeps no single-sign-on session, so nothing else changes.

use super::{Entra, errors, tenant_is_known};
use crate::html::page;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct LogoutParams {
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

pub async fn logout(
    State(entra): State<Entra>,
    Path(tenant): Path<String>,
    Query(q): Query<LogoutParams>,
) -> Response {
    if !tenant_is_known(&tenant) {
        return errors::error_page(90002, &format!("Tenant '{tenant}' not found."), entra.now());
    }
    let registered = |uri: &str| {
        entra
            .state()
            .clients
            .values()
            .any(|app| app.redirect_uris.iter().any(|u| u == uri))
    };
    if let Some(uri) = q
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| registered(u))
        && let Ok(mut url) = url::Url::parse(uri)
    {
        if let Some(state) = &q.state {
            url.query_pairs_mut().append_pair("state", state);
        }
        return errors::found(url.as_str());
    }
    let body = r#"<h1>You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>"#;
    Html(page("Sign out", body)).into_response()
}
