//! Microsoft Entra ID emulator (v2 endpoints), after `shared/reference/crm-apis.md` §1 and
//! `emulator-checklist.md` §1.
//!
//! Served paths (`{tenant}` is the tenant id, its domain, `common` or `organizations`):
//! - `GET  /{tenant}/v2.0/.well-known/openid-configuration`
//! - `GET  /{tenant}/discovery/v2.0/keys`
//! - `GET  /{tenant}/oauth2/v2.0/authorize` — a page where a person picks a demo user; `POST` signs in
//! - `POST /{tenant}/oauth2/v2.0/token` — `authorization_code` (PKCE), `refresh_token` (rotation),
//!   `client_credentials`
//! - `GET  /{tenant}/oauth2/v2.0/logout` — the end-session endpoint
//! - `POST /{tenant}/oauth2/token` — the legacy v1 endpoint the Partner Center referral docs use:
//!   `resource=`, `password` and `refresh_token` grants, numbers as strings
//!
//! Errors use Entra's shapes: token errors are HTTP 400 JSON with an `AADSTSnnnnn:` description and
//! `error_codes`; authorize errors redirect with `error` + `error_description`, except an unknown client or
//! a redirect URI that does not match, which show an error page and never redirect.

mod authorize;
mod errors;
mod keys;
mod logout;
mod token;

use crate::clock::Clock;
use axum::Router;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

pub use keys::SigningKeys;

/// The demo tenant.
pub const TENANT_ID: &str = "4f1a2b3c-5d6e-4f70-8a9b-0c1d2e3f4a5b";
pub const TENANT_DOMAIN: &str = "contoso-sandbox.onmicrosoft.com";
/// The app registration the cosell dashboard signs people in with.
pub const DASHBOARD_CLIENT_ID: &str = "0d1e2f3a-4b5c-4d6e-8f70-112233445566";
/// Every demo user's password for the v1 password grant (ROPC). Sandbox only.
pub const SANDBOX_PASSWORD: &str = "sandbox-password";
/// A sandbox-only secret: it opens nothing outside this emulator.
pub const DASHBOARD_CLIENT_SECRET: &str = "sandbox-dashboard-secret";
/// App-role values defined on the dashboard's app registration.
pub const ADMIN_ROLE: &str = "Cosell.Admin";
pub const VIEWER_ROLE: &str = "Cosell.Viewer";
/// Microsoft Graph's application id: the audience of access tokens asked for with OIDC scopes only.
const GRAPH_AUDIENCE: &str = "00000003-0000-0000-c000-000000000000";

const CODE_LIFETIME_SECONDS: i64 = 600;
const TOKEN_LIFETIME_SECONDS: i64 = 3599;

/// A person who can sign in on the emulator's authorize page.
#[derive(Debug, Clone, Serialize)]
pub struct DemoUser {
    /// Short handle used by the picker and the control API (`admin`, `viewer`, …).
    pub key: String,
    pub object_id: String,
    pub name: String,
    pub username: String,
    /// App roles assigned to this user on the dashboard's app registration.
    pub dashboard_roles: Vec<String>,
    /// Partner Center roles (`Referrals Admin`, `Referrals User`); the Referrals API requires one.
    pub partner_center_roles: Vec<String>,
    /// Dataverse security roles, by role template id; `None`: not a user of the Dataverse organization.
    pub dataverse_roles: Option<Vec<String>>,
    pub password_expired: bool,
    /// What the picker says about this user.
    pub description: String,
}

#[derive(Debug, Clone)]
struct AppRegistration {
    client_id: String,
    secret: String,
    name: String,
    redirect_uris: Vec<String>,
}

/// Where an expired password is reported. The reference pairs AADSTS50055 with `invalid_grant` (a token
/// endpoint error) but marks the mapping unconfirmed; an interactive sign-in may instead come back to the
/// redirect URI with an error. Both are emulated; the token endpoint is the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiredPasswordAt {
    #[default]
    Token,
    Authorize,
}

/// Ways the next id_token can be wrong, so that a client's verification is put to the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdTokenFault {
    /// Valid claims, signature altered.
    BadSignature,
    /// Signed by a key that the JWKS does not publish.
    UnknownKey,
    WrongAudience,
    WrongIssuer,
    /// Expired ten minutes ago.
    Expired,
    /// The `nonce` is not the one the client sent.
    WrongNonce,
}

/// Fields left out of a control request take their defaults (no fault).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Applied once, to the next id_token minted.
    pub next_id_token: Option<IdTokenFault>,
    pub expired_password_at: ExpiredPasswordAt,
    /// Rotation normally leaves the old refresh token usable; this revokes it on use.
    pub revoke_refresh_token_on_rotation: bool,
    /// `invalid_client` is documented as 400; some cases are reported as 401 (unconfirmed).
    pub invalid_client_status_401: bool,
}

#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    nonce: Option<String>,
    challenge: Option<(String, ChallengeMethod)>,
    user_key: String,
    issued_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChallengeMethod {
    S256,
    Plain,
}

#[derive(Debug, Clone)]
struct RefreshGrant {
    client_id: String,
    user_key: String,
    scopes: Vec<String>,
    revoked: bool,
}

struct State {
    keys: SigningKeys,
    clients: HashMap<String, AppRegistration>,
    users: Vec<DemoUser>,
    codes: HashMap<String, CodeGrant>,
    redeemed_codes: HashSet<String>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    faults: Faults,
}

struct Inner {
    base_url: String,
    clock: Clock,
    state: Mutex<State>,
}

/// Handle on the emulator, shared by its HTTP handlers and by the process that hosts it.
#[derive(Clone)]
pub struct Entra {
    inner: Arc<Inner>,
}

impl Entra {
    /// The demo tenant: the dashboard app registration and four people.
    pub fn seeded(base_url: String, clock: Clock) -> Entra {
        let dashboard = AppRegistration {
            client_id: DASHBOARD_CLIENT_ID.into(),
            secret: DASHBOARD_CLIENT_SECRET.into(),
            name: "cosell dashboard".into(),
            redirect_uris: Vec::new(),
        };
        let state = State {
            keys: SigningKeys::generate(),
            clients: HashMap::from([(dashboard.client_id.clone(), dashboard)]),
            users: demo_users(),
            codes: HashMap::new(),
            redeemed_codes: HashSet::new(),
            refresh_tokens: HashMap::new(),
            faults: Faults::default(),
        };
        Entra {
            inner: Arc::new(Inner {
                base_url,
                clock,
                state: Mutex::new(state),
            }),
        }
    }

    /// `https://login.microsoftonline.com/{tid}/v2.0`, with this emulator's base URL.
    pub fn issuer(&self) -> String {
        format!("{}/{TENANT_ID}/v2.0", self.inner.base_url)
    }

    /// The issuer of tokens from the v1 endpoint, as Entra writes it.
    pub fn issuer_v1(&self) -> String {
        format!("https://sts.windows.net/{TENANT_ID}/")
    }

    pub fn users(&self) -> Vec<DemoUser> {
        self.state().users.clone()
    }

    /// Adds a redirect URI to an app registration (the host learns its own address only once bound);
    /// false when there is no app registration `client_id`.
    pub fn register_redirect_uri(&self, client_id: &str, uri: &str) -> bool {
        let mut state = self.state();
        let Some(app) = state.clients.get_mut(client_id) else {
            return false;
        };
        if !app.redirect_uris.iter().any(|u| u == uri) {
            app.redirect_uris.push(uri.to_string());
        }
        true
    }

    pub fn faults(&self) -> Faults {
        self.state().faults.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state().faults = faults;
    }

    /// Verifies an access token minted by this emulator for `audience` (each emulated API checks that its
    /// tokens were meant for it). Returns the claims.
    pub fn verify_access_token(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<serde_json::Value, String> {
        let now = self.now().unix_timestamp();
        let issuers = [self.issuer(), self.issuer_v1()];
        self.state().keys.verify(token, audience, &issuers, now)
    }

    /// The demo user an object id belongs to.
    pub fn user_by_object_id(&self, object_id: &str) -> Option<DemoUser> {
        self.state()
            .users
            .iter()
            .find(|u| u.object_id == object_id)
            .cloned()
    }

    /// Publishes a new signing key and signs with it from now on; the old key stays in the JWKS.
    pub fn rotate_signing_key(&self) -> String {
        self.state().keys.rotate()
    }

    /// Expires (or renews) a user's password; false when there is no such user.
    pub fn set_password_expired(&self, user_key: &str, expired: bool) -> bool {
        let mut state = self.state();
        match state.users.iter_mut().find(|u| u.key == user_key) {
            Some(user) => {
                user.password_expired = expired;
                true
            }
            None => false,
        }
    }

    /// Revokes every refresh token a user holds (password change, admin revoke: AADSTS50173 on use).
    pub fn revoke_user_grants(&self, user_key: &str) -> usize {
        let mut state = self.state();
        let mut n = 0;
        for grant in state.refresh_tokens.values_mut() {
            if grant.user_key == user_key && !grant.revoked {
                grant.revoked = true;
                n += 1;
            }
        }
        n
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not take the whole emulator down with it.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    fn base_url(&self) -> &str {
        &self.inner.base_url
    }
}

/// Partner Center role that may create, read and update all of the partner's referrals.
pub const REFERRALS_ADMIN: &str = "Referrals Admin";

struct Seed {
    key: &'static str,
    n: u8,
    name: &'static str,
    login: &'static str,
    dashboard: &'static [&'static str],
    partner_center: &'static [&'static str],
    dataverse: Option<&'static [&'static str]>,
    expired: bool,
    about: &'static str,
}

use crate::dataverse::{BASIC_USER, SYSTEM_ADMINISTRATOR, SYSTEM_CUSTOMIZER};

#[rustfmt::skip]
const SEEDS: &[Seed] = &[
    Seed { key: "admin", n: 1, name: "Adele Vance", login: "adele", dashboard: &[ADMIN_ROLE],
           partner_center: &[REFERRALS_ADMIN], dataverse: Some(&[SYSTEM_ADMINISTRATOR]), expired: false,
           about: "Referrals admin (app role Cosell.Admin)" },
    Seed { key: "viewer", n: 2, name: "Megan Bowen", login: "megan", dashboard: &[VIEWER_ROLE],
           partner_center: &[], dataverse: Some(&[BASIC_USER]), expired: false,
           about: "Read-only (app role Cosell.Viewer)" },
    Seed { key: "norole", n: 3, name: "Alex Wilber", login: "alex", dashboard: &[],
           partner_center: &[], dataverse: None, expired: false,
           about: "Signed in, but no app role assigned" },
    Seed { key: "expired", n: 4, name: "Diego Siciliani", login: "diego", dashboard: &[ADMIN_ROLE],
           partner_center: &[REFERRALS_ADMIN], dataverse: Some(&[SYSTEM_CUSTOMIZER]), expired: true,
           about: "Password expired: sign-in fails with AADSTS50055" },
    Seed { key: "lacking", n: 5, name: "Lee Gu", login: "lee", dashboard: &[ADMIN_ROLE],
           partner_center: &[], dataverse: Some(&[BASIC_USER]), expired: false,
           about: "Dashboard admin without the Referrals admin or a CRM admin role" },
];

fn demo_users() -> Vec<DemoUser> {
    let strings = |v: &[&str]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    SEEDS
        .iter()
        .map(|s| DemoUser {
            key: s.key.to_string(),
            object_id: format!("a1d4e1e5-0000-4000-8000-{:012}", s.n),
            name: s.name.to_string(),
            username: format!("{}@{TENANT_DOMAIN}", s.login),
            dashboard_roles: strings(s.dashboard),
            partner_center_roles: strings(s.partner_center),
            dataverse_roles: s.dataverse.map(strings),
            password_expired: s.expired,
            description: s.about.to_string(),
        })
        .collect()
}

/// Resolves the `{tenant}` path segment. `common` and `organizations` are accepted as Entra does.
fn tenant_is_known(tenant: &str) -> bool {
    tenant == TENANT_ID
        || tenant.eq_ignore_ascii_case(TENANT_DOMAIN)
        || tenant == "common"
        || tenant == "organizations"
}

pub fn routes(entra: Entra) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(keys::discovery),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys::jwks))
        .route("/{tenant}/oauth2/v2.0/logout", get(logout::logout))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::show).post(authorize::sign_in),
        )
        .route(
            "/{tenant}/oauth2/token",
            axum::routing::post(token::token_v1),
        )
        .route(
            "/{tenant}/oauth2/v2.0/token",
            axum::routing::post(token::token),
        )
        .with_state(entra)
}

pub(crate) fn random_token(len: usize) -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The resource a scope belongs to, or None for the OIDC scopes.
/// `https://api.partner.microsoft.com/user_impersonation` → `https://api.partner.microsoft.com`;
/// a bare scope (`User.Read`) is Microsoft Graph's.
fn scope_resource(scope: &str) -> Option<String> {
    if matches!(scope, "openid" | "profile" | "email" | "offline_access") {
        return None;
    }
    Some(match scope.rfind('/') {
        Some(i) if scope.contains("://") => scope[..i].to_string(),
        _ => GRAPH_AUDIENCE.to_string(),
    })
}

/// The resource an access token is minted for: the first scope's. A consent may span several resources
/// (crm-apis.md §1.3: "if they span several resources, the first scope's resource wins"); the refresh
/// token then redeems for each of them, one resource per request.
fn resource_of(scopes: &[String]) -> Option<String> {
    scopes.iter().find_map(|s| scope_resource(s))
}

/// The scopes of `scopes` that belong to `resource` (the `scp` of a token for it).
fn scopes_for<'a>(scopes: &'a [String], resource: &str) -> Vec<&'a String> {
    scopes
        .iter()
        .filter(|s| scope_resource(s).as_deref() == Some(resource))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_scope_names_the_resource() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            resource_of(&s(&["openid", "profile", "offline_access"])),
            None
        );
        assert_eq!(
            resource_of(&s(&[
                "openid",
                "https://api.partner.microsoft.com/user_impersonation"
            ])),
            Some("https://api.partner.microsoft.com".into())
        );
        assert_eq!(resource_of(&s(&["User.Read"])), Some(GRAPH_AUDIENCE.into()));
        let both = s(&[
            "https://org.crm.dynamics.com/user_impersonation",
            "https://api.partner.microsoft.com/user_impersonation",
        ]);
        assert_eq!(
            resource_of(&both),
            Some("https://org.crm.dynamics.com".into())
        );
        assert_eq!(
            scopes_for(&both, "https://api.partner.microsoft.com"),
            vec![&both[1]]
        );
    }
}
