//! Salesforce emulator: OAuth 2.0 web server flow and the REST API of one org, "Contoso Sandbox"
//! (crm-apis.md §3, emulator-checklist.md §5). `instance_url` and the login URL are both the sandbox's
//! base URL.
//!
//! - `GET|POST /services/oauth2/authorize` — a page where a person picks a demo user (`oauth.rs`);
//!   `POST /services/oauth2/token` — `authorization_code` (PKCE S256) and `refresh_token` (rotation is a
//!   switch); `GET|POST /services/oauth2/revoke`; `GET /id/{orgId}/{userId}` (`identity.rs`);
//! - `GET /services/data/` lists versions; under `/services/data/vXX.X/` (v50.0 up): `sobjects` (create,
//!   read, update, upsert by `Referral_Identifier__c`, delete, describe), `query` and `queryAll` over a
//!   SOQL subset (`soql/`, `query.rs`), `composite` (`composite.rs`), `limits` (`limits.rs`).
//!
//! Every REST answer carries `Sforce-Limit-Info`; errors are arrays (`errors.rs`). The org's switches are
//! [`Settings`]; tests and scripts act as Salesforce users through [`Salesforce`]'s methods or
//! `/_control/salesforce/…` (`control.rs`). The shared fault rules ([`crate::faults`]) apply to every path
//! here. What the seeded org holds is described in `seed.rs`.

pub(crate) mod composite;
pub mod control;
mod countries;
mod describe;
mod errors;
mod identity;
mod ids;
mod limits;
mod oauth;
mod objects;
mod paging;
pub(crate) mod query;
pub(crate) mod records;
mod rest;
mod rules;
mod schema;
mod seed;
mod soql;
mod token;

use crate::clock::Clock;
use axum::Router;
use axum::routing::{any, get};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use time::OffsetDateTime;

pub use schema::{HELP_VALUES, fields};
pub use seed::{
    ACCOUNT_FABRIKAM, ACCOUNT_NORTHWIND, ACCOUNT_TAILSPIN, ACCOUNT_WIDE_WORLD, CONTACT_HANS,
    CONTACT_NANCY, CONTACT_OLIVIA, OPPORTUNITY_HELP_NO_CONTACT, OPPORTUNITY_HELP_WITH_CONTACT,
    OPPORTUNITY_NO_SOLUTION, OPPORTUNITY_READY, OPPORTUNITY_WITH_PRODUCTS, OPPORTUNITY_WON, ORG_ID,
    USER_ADMIN, USER_REVOKED, USER_STANDARD,
};

/// The connected app's consumer key and secret the emulator accepts. Sandbox only.
pub const SALESFORCE_CLIENT_ID: &str = "3MVG9sandbox.cosell.ConnectedApp.ConsumerKey";
pub const SALESFORCE_CLIENT_SECRET: &str = "sandbox-salesforce-consumer-secret";
/// The API version the reference documents clients with; every version from v50.0 to this is served.
pub const LATEST_API_VERSION: u32 = 66;
pub const OLDEST_API_VERSION: u32 = 50;

/// The org's switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// `CurrencyIsoCode` and `CurrencyType` exist (default on); off, the org has one currency, USD.
    pub multi_currency: bool,
    /// `BillingCountryCode`/`BillingStateCode`/`MailingCountryCode` exist (default on).
    pub state_country_picklists: bool,
    /// A refresh returns a new refresh token and retires the old one (default off).
    pub refresh_rotation: bool,
    /// The org's daily API allocation (default 15,000, Developer Edition's).
    pub daily_api_max: u64,
    /// Access-token lifetime on the sandbox clock (default 2 hours, the org's default session timeout).
    pub session_seconds: i64,
    /// An upsert that updates answers 200 with `{"id","success","errors","created":false}` (documented
    /// from v46.0) instead of 204 (default off; the reference allows both, unconfirmed which one applies).
    pub upsert_update_200: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            multi_currency: true,
            state_country_picklists: true,
            refresh_rotation: false,
            daily_api_max: 15_000,
            session_seconds: 2 * 3600,
            upsert_update_200: false,
        }
    }
}

/// A person who can sign in on the emulator's authorize page.
#[derive(Debug, Clone, Serialize)]
pub struct DemoUser {
    /// Short handle used by the picker and the control API (`admin`, `standard`, `revoked`).
    pub key: String,
    /// The User id (`005…`).
    pub id: String,
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub profile: String,
    /// What the picker says about this user.
    pub description: String,
}

/// The org's data and sessions, behind one lock (a composite request holds it throughout, which is what
/// makes its `allOrNone` rollback simple).
pub(crate) struct Org {
    pub settings: Settings,
    pub store: records::Store,
    pub usage: limits::Usage,
    pub grants: oauth::Grants,
    pub cursors: query::Cursors,
    pub redirect_uris: Vec<String>,
}

struct Inner {
    base_url: String,
    clock: Clock,
    org: Mutex<Org>,
}

/// Handle on the emulator, shared by its HTTP handlers and by the process that hosts it.
#[derive(Clone)]
pub struct Salesforce {
    inner: Arc<Inner>,
}

impl Salesforce {
    /// The seeded "Contoso Sandbox" org.
    pub fn new(base_url: String, clock: Clock) -> Salesforce {
        let now = clock.now();
        let mut org = Org {
            settings: Settings::default(),
            store: records::Store::default(),
            usage: limits::Usage::new(now),
            grants: oauth::Grants::default(),
            cursors: query::Cursors::default(),
            redirect_uris: Vec::new(),
        };
        seed::seed(&mut org, now);
        Salesforce {
            inner: Arc::new(Inner {
                base_url,
                clock,
                org: Mutex::new(org),
            }),
        }
    }

    /// Both the login URL and the `instance_url` tokens name.
    pub fn instance_url(&self) -> &str {
        &self.inner.base_url
    }

    pub fn users(&self) -> Vec<DemoUser> {
        seed::demo_users()
    }

    /// Adds a callback URL to the connected app (the host learns its own address only once bound).
    pub fn register_redirect_uri(&self, uri: &str) {
        let mut org = self.org();
        if !org.redirect_uris.iter().any(|u| u == uri) {
            org.redirect_uris.push(uri.to_string());
        }
    }

    pub fn settings(&self) -> Settings {
        self.org().settings.clone()
    }

    pub fn set_settings(&self, settings: Settings) {
        self.org().settings = settings;
    }

    pub fn set_multi_currency(&self, on: bool) {
        self.org().settings.multi_currency = on;
    }

    pub fn set_state_country_picklists(&self, on: bool) {
        self.org().settings.state_country_picklists = on;
    }

    pub fn set_refresh_rotation(&self, on: bool) {
        self.org().settings.refresh_rotation = on;
    }

    pub fn set_daily_api_max(&self, max: u64) {
        self.org().settings.daily_api_max = max;
    }

    /// API calls counted today (sandbox-clock day).
    pub fn api_used(&self) -> u64 {
        let now = self.now();
        let mut org = self.org();
        org.usage.roll(now);
        org.usage.used
    }

    pub fn set_api_used(&self, used: u64) {
        let now = self.now();
        let mut org = self.org();
        org.usage.roll(now);
        org.usage.used = used;
    }

    /// Expires every access token now (refresh tokens stay valid).
    pub fn expire_sessions(&self) -> usize {
        self.org().grants.expire_sessions()
    }

    /// Revokes a demo user's refresh tokens and sessions, as an admin would; the number revoked.
    pub fn revoke_refresh_tokens(&self, user_key: &str) -> usize {
        let Some(user) = seed::demo_users().into_iter().find(|u| u.key == user_key) else {
            return 0;
        };
        self.org().grants.revoke_user(&user.id)
    }

    // ---- In-process API: tests act as Salesforce users and look at the org's records. ----

    /// The live records of an object as the REST API returns them (every field the org has, with
    /// `attributes`), oldest first; empty for an unknown object.
    pub fn rows(&self, object: &str) -> Vec<Value> {
        let org = self.org();
        let Some(o) = schema::find(object, &org.settings) else {
            return Vec::new();
        };
        org.store
            .live(o)
            .map(|(id, _)| org.render(o, id, None, LATEST_API_VERSION))
            .collect()
    }

    /// One record (deleted ones too, with `IsDeleted: true`) as the REST API returns it.
    pub fn row(&self, object: &str, id: &str) -> Option<Value> {
        let org = self.org();
        let o = schema::find(object, &org.settings)?;
        let id = ids::normalize(id)?;
        let row = org.store.get(&id)?;
        (row.object == o.name).then(|| org.render(o, &id, None, LATEST_API_VERSION))
    }

    /// Creates a record as the demo admin does in Salesforce's UI (owner: the admin unless `OwnerId` is
    /// given); returns the id. Panics when the record is not valid (a test's mistake).
    pub fn insert(&self, object: &str, record: Value) -> String {
        self.try_insert(object, record)
            .unwrap_or_else(|e| panic!("Salesforce insert into {object}: {e}"))
    }

    /// Creates a record as the demo admin; the error is the REST API's message.
    pub fn try_insert(&self, object: &str, record: Value) -> Result<String, String> {
        self.as_admin(object, |org, o, now| {
            let fields = record.as_object().ok_or("a record is a JSON object")?;
            org.create(o, fields, USER_ADMIN, now, records::Via::Ui)
                .map_err(|e| e.message)
        })
    }

    /// Changes a record as the demo admin does (a new `SystemModstamp`, `LastModifiedById` the admin).
    pub fn update(&self, object: &str, id: &str, patch: Value) -> Result<(), String> {
        self.as_admin(object, |org, o, now| {
            let fields = patch.as_object().ok_or("a patch is a JSON object")?;
            org.update(o, id, fields, USER_ADMIN, now, records::Via::Ui)
                .map_err(|e| e.message)
        })
    }

    /// Deletes a record as the demo admin does (it stays for `queryAll` with `IsDeleted = true`).
    pub fn delete(&self, object: &str, id: &str) -> bool {
        self.as_admin(object, |org, o, now| {
            org.delete(o, id, USER_ADMIN, now).map_err(|e| e.message)
        })
        .is_ok()
    }

    fn as_admin<T>(
        &self,
        object: &str,
        f: impl FnOnce(&mut Org, &'static schema::Object, OffsetDateTime) -> Result<T, String>,
    ) -> Result<T, String> {
        let now = self.now();
        let mut org = self.org();
        let o = schema::find(object, &org.settings)
            .ok_or_else(|| format!("sObject type '{object}' is not supported."))?;
        f(&mut org, o, now)
    }

    pub(crate) fn org(&self) -> MutexGuard<'_, Org> {
        // A panic while holding the lock must not take the whole emulator down with it.
        self.inner.org.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.inner.base_url
    }
}

pub fn routes(sf: Salesforce) -> Router {
    Router::new()
        .route(
            "/services/oauth2/authorize",
            get(oauth::show).post(oauth::sign_in),
        )
        .route("/services/oauth2/token", axum::routing::post(oauth::token))
        .route("/services/oauth2/revoke", any(oauth::revoke))
        .route("/id/{org}/{user}", get(identity::identity))
        .route("/services/data", get(rest::versions))
        .route("/services/data/", get(rest::versions))
        .route("/services/data/{*rest}", any(rest::dispatch))
        .with_state(sf)
}
