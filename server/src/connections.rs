//! `POST /connections/{system}/connect` and `GET /connections/callback`: an admin connects Partner Center
//! or Dynamics 365 by consenting in the browser (authorization code + PKCE + `offline_access`). The
//! refresh token is sealed at rest and never leaves the server; the page only ever sees the account.
//!
//! Partner Center's consent names both of its audiences (the Referrals API and the webhook registration
//! API); Entra's refresh token then redeems for each (crm-apis.md §1.3).

use crate::pending;
use crate::startup::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cosell::clients::partner_center::referrals::AUDIENCE as REFERRALS;
use cosell::clients::partner_center::webhook_registration::AUDIENCE as WEBHOOKS;
use cosell::crypto::Secret;
use cosell::domain::connection::System;
use cosell::domain::runs::AuditAction;
use cosell::domain::system::Crm;
use cosell::domain::{Access, SignedInUser};
use cosell::store::{NewAuditEvent, NewConnection};
use cosell_app::auth::server::SESSION_USER;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::Session;

/// Consents in flight in this browser.
const PENDING: pending::Pending = pending::Pending {
    key: "pending_connections",
    ttl_seconds: 15 * 60,
    max: 4,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connections/{system}/connect", post(connect))
        .route("/connections/callback", get(callback))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Consent {
    system: System,
    verifier: String,
    started_at: i64,
    /// Where the admin started from, and goes back to.
    #[serde(default)]
    back: Back,
}

/// The page a consent goes back to: the Connections page, or the Overview's guided setup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Back {
    #[default]
    Connections,
    Overview,
}

impl Back {
    fn path(self) -> &'static str {
        match self {
            Back::Connections => "/connections",
            Back::Overview => "/",
        }
    }
}

/// `?return_to=overview`: the guided setup's Connect buttons.
#[derive(Debug, Default, Deserialize)]
struct ConnectParams {
    return_to: Option<String>,
}

impl pending::Started for Consent {
    fn started_at(&self) -> i64 {
        self.started_at
    }
}

#[derive(Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back to the Connections page with a message for the admin (the page shows it).
fn back(query: &[(&str, &str)]) -> Response {
    back_to(Back::Connections, query)
}

/// Back to where the admin started, with a message for them (both pages show it).
fn back_to(to: Back, query: &[(&str, &str)]) -> Response {
    let q = serde_urlencoded::to_string(query).unwrap_or_default();
    Redirect::to(&format!("{}?{q}", to.path())).into_response()
}

fn consent_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

async fn admin(session: &Session) -> Option<SignedInUser> {
    let user: SignedInUser = session.get(SESSION_USER).await.ok().flatten()?;
    user.access.allows(Access::Admin).then_some(user)
}

/// The scopes of a consent: every audience the flows will use with this connection.
fn scopes(app: &AppState, system: System) -> Option<Vec<String>> {
    match system {
        System::PartnerCenter => Some(vec![
            format!("{REFERRALS}/user_impersonation"),
            format!("{WEBHOOKS}/user_impersonation"),
        ]),
        System::Crm(Crm::Dynamics365) => app
            .engine
            .endpoints()
            .dynamics_resource
            .as_ref()
            .map(|r| vec![format!("{r}/user_impersonation")]),
        System::Crm(Crm::Salesforce) => None,
    }
}

async fn connect(
    State(app): State<AppState>,
    session: Session,
    Path(system): Path<String>,
    Query(params): Query<ConnectParams>,
) -> Response {
    let to = match params.return_to.as_deref() {
        Some("overview") => Back::Overview,
        _ => Back::Connections,
    };
    let back = |query: &[(&str, &str)]| back_to(to, query);
    let Some(user) = admin(&session).await else {
        return back(&[(
            "error",
            "Only a cosell admin can connect systems. Sign in as one.",
        )]);
    };
    let Some(system) = System::from_code(&system) else {
        return back(&[("error", "There is no such system to connect.")]);
    };
    if let System::Crm(crm) = system
        && crm != app.engine.crm()
    {
        return back(&[(
            "error",
            &format!(
                "This instance syncs with {}: start cosell with --crm {} to connect {}.",
                app.engine.crm().label(),
                crm.as_code(),
                crm.label()
            ),
        )]);
    }
    if system == System::SALESFORCE {
        return connect_salesforce(&app, &session, &user, to).await;
    }
    let Some(scopes) = scopes(&app, system) else {
        return back(&[(
            "error",
            "Dynamics 365 is not configured: set COSELL_DYNAMICS_URL to your organization URL and restart cosell.",
        )]);
    };
    let start = app.engine.tokens().entra().start_consent(&scopes);
    let now = consent_now();
    let consent = Consent {
        system,
        verifier: start.pkce_verifier.expose().to_string(),
        started_at: now,
        back: to,
    };
    if let Err(e) = PENDING
        .push(&session, start.state.clone(), consent, now)
        .await
    {
        tracing::error!(error = %e, "session store failed");
        return back(&[("error", "cosell could not start the connection; try again.")]);
    }
    tracing::info!(user = %user.object_id, system = system.as_code(), "connection consent started");
    Redirect::to(start.url.as_str()).into_response()
}

/// Salesforce's own web server flow with PKCE (crm-apis.md §3.2): the consent in flight is kept like
/// Entra's, under its `state`.
async fn connect_salesforce(
    app: &AppState,
    session: &Session,
    user: &SignedInUser,
    to: Back,
) -> Response {
    let back = |query: &[(&str, &str)]| back_to(to, query);
    let Some(oauth) = app.engine.tokens().salesforce() else {
        return back(&[(
            "error",
            "No Salesforce connected app is configured: set COSELL_SALESFORCE_CLIENT_ID and COSELL_SALESFORCE_CLIENT_SECRET and restart cosell.",
        )]);
    };
    let start = oauth.authorize_url();
    let now = consent_now();
    let consent = Consent {
        system: System::SALESFORCE,
        verifier: start.verifier.expose().to_string(),
        started_at: now,
        back: to,
    };
    if let Err(e) = PENDING
        .push(session, start.state.clone(), consent, now)
        .await
    {
        tracing::error!(error = %e, "session store failed");
        return back(&[("error", "cosell could not start the connection; try again.")]);
    }
    tracing::info!(user = %user.object_id, system = "salesforce", "connection consent started");
    Redirect::to(&start.url).into_response()
}

/// The connection a Salesforce callback's code gives: its refresh token, its user, its org's URL.
async fn salesforce_connection(
    app: &AppState,
    code: &str,
    verifier: Secret,
    by: &str,
) -> Result<NewConnection, String> {
    let system = System::SALESFORCE;
    let oauth = app
        .engine
        .tokens()
        .salesforce()
        .ok_or("No Salesforce connected app is configured.")?;
    let grant = oauth.exchange_code(code, &verifier).await.map_err(|e| {
        tracing::warn!(error = %e, "Salesforce code exchange failed");
        let d = e.diagnosis();
        format!("{}. {}", d.headline(system), d.fix(system))
    })?;
    let refresh_token = grant.refresh_token.clone().ok_or(
        "Salesforce granted no refresh token, so cosell could not keep the connection. Add the scope “Perform requests at any time (refresh_token, offline_access)” to the connected app, then Connect again.",
    )?;
    let me = oauth
        .identity(&grant.access_token, &grant.identity_url)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "Salesforce identity failed");
            format!("Salesforce did not say who signed in ({e}). Connect again.")
        })?;
    Ok(NewConnection {
        system,
        account_name: me.display_name,
        account_username: me.username,
        account_object_id: me.user_id,
        tenant_id: me.organization_id,
        instance_url: Some(grant.instance_url),
        refresh_token,
        connected_by: by.to_string(),
    })
}

async fn callback(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<CallbackParams>,
) -> Response {
    let Some(user) = admin(&session).await else {
        return back(&[(
            "error",
            "Only a cosell admin can connect systems. Sign in as one.",
        )]);
    };
    let taken = PENDING
        .take::<Consent>(
            &session,
            q.state.as_deref().unwrap_or_default(),
            consent_now(),
        )
        .await;
    let Some(p) = taken.ok().and_then(|t| t.item) else {
        return back(&[(
            "error",
            "This connection attempt is unknown or expired. Start again with Connect.",
        )]);
    };
    let system = p.system;
    let to = p.back;
    let back = |query: &[(&str, &str)]| back_to(to, query);
    if system == System::SALESFORCE {
        if let Some(error) = q.error {
            tracing::warn!(%error, "Salesforce consent refused");
            return back(&[
                ("system", system.as_code()),
                (
                    "error",
                    "Salesforce did not grant access (the user denied it, or the connected app refused). Connect again, and choose Allow.",
                ),
            ]);
        }
        let Some(code) = q.code else {
            return back(&[(
                "error",
                "Salesforce sent no authorization code. Start again with Connect.",
            )]);
        };
        return match salesforce_connection(&app, &code, Secret::new(p.verifier), &user.object_id)
            .await
        {
            Ok(connection) => save_and_check(&app, &user, connection, to).await,
            Err(why) => back(&[("system", system.as_code()), ("error", &why)]),
        };
    }
    if let Some(error) = q.error {
        tracing::warn!(%error, description = q.error_description.as_deref().unwrap_or(""), "consent refused");
        let aadsts = q
            .error_description
            .as_deref()
            .and_then(crate::signin::aadsts_code);
        let d = cosell::domain::connection::Diagnosis::from_token_error(&error, aadsts);
        return back(&[
            ("system", system.as_code()),
            (
                "error",
                &format!("{}. {}", d.headline(system), d.fix(system)),
            ),
        ]);
    }
    let Some(code) = q.code else {
        return back(&[(
            "error",
            "Entra ID sent no authorization code. Start again with Connect.",
        )]);
    };
    let grant = match app
        .engine
        .tokens()
        .entra()
        .exchange_code(&code, &Secret::new(p.verifier))
        .await
    {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(error = %e, system = system.as_code(), "code exchange failed");
            let d = e.diagnosis();
            return back(&[
                ("system", system.as_code()),
                (
                    "error",
                    &format!("{}. {}", d.headline(system), d.fix(system)),
                ),
            ]);
        }
    };
    let (Some(refresh_token), Some(account)) = (grant.refresh_token, grant.account) else {
        return back(&[(
            "error",
            "Entra ID did not grant offline access, so cosell could not keep the connection. Ask your Entra administrator to allow offline_access for cosell.",
        )]);
    };
    let connection = NewConnection {
        system,
        account_name: account.name.clone(),
        account_username: account.username.clone(),
        account_object_id: account.object_id,
        tenant_id: account.tenant_id,
        instance_url: match system {
            System::Crm(Crm::Dynamics365) => app.engine.endpoints().dynamics_resource.clone(),
            _ => None,
        },
        refresh_token,
        connected_by: user.object_id.clone(),
    };
    save_and_check(&app, &user, connection, to).await
}

/// Keeps a new connection (its refresh token sealed), audits it and tests it at once, so a missing
/// role shows now rather than at the first sync.
async fn save_and_check(
    app: &AppState,
    user: &SignedInUser,
    connection: NewConnection,
    to: Back,
) -> Response {
    let back = |query: &[(&str, &str)]| back_to(to, query);
    let now = OffsetDateTime::now_utc();
    let system = connection.system;
    let username = connection.account_username.clone();
    let engine = &app.engine;
    if let Err(e) = engine
        .store()
        .save_connection(&connection, &app.sealing_key, now)
        .await
    {
        tracing::error!(error = %e, "could not save a connection");
        return back(&[("error", "cosell could not save the connection; try again.")]);
    }
    engine.tokens().forget(system);
    let _ = engine
        .store()
        .record_audit(
            &NewAuditEvent {
                actor: user.name.clone(),
                ..NewAuditEvent::new(
                    AuditAction::ConnectionConnected,
                    "connection",
                    system.as_code(),
                    format!("{} connected as {username}.", system.label()),
                )
            },
            now,
        )
        .await;
    match engine.check_connection(system).await {
        Ok(Ok(_)) => back(&[("connected", system.as_code())]),
        Ok(Err(d)) => back(&[
            ("system", system.as_code()),
            (
                "error",
                &format!("{}. {}", d.headline(system), d.fix(system)),
            ),
        ]),
        Err(e) => {
            tracing::error!(error = %e, "connection check failed");
            back(&[("connected", system.as_code())])
        }
    }
}
