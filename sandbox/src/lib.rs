//! cosell-sandbox: faithful local emulators of the outside world cosell talks to.
//!
//! It shares no code with cosell's own clients on purpose: an emulator written from the vendors'
//! documentation (see `shared/reference/`) is what catches a client's mistakes.
//!
//! Everything is served over real HTTPS on one loopback listener, with a certificate from the sandbox's
//! own CA ([`Sandbox::tls_ca_pem`]; see [`tls`]); the same port also answers plain HTTP, for the control
//! API only:
//! - `/{tenant}/…` — Microsoft Entra ID (v2 OpenID Connect + OAuth 2.0), see [`entra`];
//! - `/v1.0/engagements/referrals…` — the Partner Center Referrals API, see [`partner_center`];
//! - `/api/data/v9.2/…` — the Dataverse Web API (Dynamics 365), see [`dataverse`];
//! - `/services/oauth2/{authorize,token,revoke}`, `/id/{orgId}/{userId}` and `/services/data/…` —
//!   Salesforce OAuth and REST API (sObjects, SOQL `query`/`queryAll`, `composite`, `limits`), with the
//!   sandbox base URL as both login URL and `instance_url`, see [`salesforce`];
//! - `/_control/…` — the control surface tests and scripts use to act as a Microsoft seller, inject
//!   faults (see [`faults`]), read the request journal (see [`journal`]) and move the clock, see [`control`]; `/_control/salesforce/…` acts as a Salesforce user and
//!   flips the org's switches (multi-currency, state and country picklists, refresh-token rotation, API
//!   allocation), see [`salesforce`]; `/_control/tls/ca` hands out the CA. The control API answers over
//!   HTTPS and plain HTTP ([`Sandbox::control_url`]); the emulated APIs over HTTPS only
//!   ([`Sandbox::base_url`]).

pub mod clock;
pub mod control;
pub mod dataverse;
pub mod entra;
pub mod faults;
mod html;
pub mod journal;
mod odata_lexer;
pub mod partner_center;
pub mod salesforce;
pub mod testing;
pub mod tls;

use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use clock::Clock;
pub use dataverse::Dataverse;
pub use entra::{DemoUser, Entra};
pub use faults::{FaultKind, FaultRule, FaultTag, Faults};
pub use journal::{Api, Journal, JournalEntry, JournalFilter};
pub use partner_center::PartnerCenter;
pub use salesforce::Salesforce;

/// A running sandbox. Dropping it (or calling [`Sandbox::shutdown`]) stops the listener.
pub struct Sandbox {
    addr: SocketAddr,
    entra: Entra,
    partner_center: PartnerCenter,
    dataverse: Dataverse,
    salesforce: Salesforce,
    faults: Faults,
    journal: Journal,
    clock: Clock,
    tls_ca_pem: String,
    stop: watch::Sender<bool>,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port), seeds the demo data and starts serving: the emulated
    /// APIs over HTTPS, with a certificate of a CA made for this sandbox, the control API over both.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let tls = tls::SandboxTls::generate(addr);
        let base_url = format!("https://{addr}");
        let clock = Clock::default();
        let entra = Entra::seeded(base_url.clone(), clock.clone());
        let partner_center = PartnerCenter::new(base_url.clone(), entra.clone(), clock.clone());
        let dataverse = Dataverse::new(base_url.clone(), entra.clone(), clock.clone());
        let salesforce = Salesforce::new(base_url.clone(), clock.clone());
        let faults = Faults::default();
        let journal = Journal::new(clock.clone());
        let app = router(control::ControlState {
            base_url: base_url.clone(),
            tls_ca_pem: tls.ca_pem().to_string(),
            entra: entra.clone(),
            partner_center: partner_center.clone(),
            dataverse: dataverse.clone(),
            salesforce: salesforce.clone(),
            faults: faults.clone(),
            journal: journal.clone(),
            clock: clock.clone(),
        });
        let (stop, mut stopped) = watch::channel(false);
        let listener = tls::DualListener::new(listener, &tls, stopped.clone())?;
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<tls::Transport>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
            {
                tracing::error!(error = %e, "sandbox listener failed");
            }
        });
        Ok(Sandbox {
            addr,
            entra,
            partner_center,
            dataverse,
            salesforce,
            faults,
            journal,
            clock,
            tls_ca_pem: tls.ca_pem().to_string(),
            stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the emulated APIs are: `https://{addr}`. Clients must trust [`Sandbox::tls_ca_pem`].
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The same listener over plain HTTP, `http://{addr}`: for the control API (`/_control/…`), which
    /// needs no CA. The emulated APIs redirect plain requests to HTTPS.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The CA (PEM) that issued the listener's certificate, made for this sandbox at its start; also
    /// served at `GET /_control/tls/ca`.
    pub fn tls_ca_pem(&self) -> &str {
        &self.tls_ca_pem
    }

    pub fn entra(&self) -> &Entra {
        &self.entra
    }

    pub fn partner_center(&self) -> &PartnerCenter {
        &self.partner_center
    }

    /// The Dataverse organization (the same rows the Web API serves).
    pub fn dataverse(&self) -> &Dataverse {
        &self.dataverse
    }

    /// The Salesforce org (the same records the REST API serves).
    pub fn salesforce(&self) -> &Salesforce {
        &self.salesforce
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Every request the emulated APIs were sent (not the control surface's), with its answer.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn router(state: control::ControlState) -> Router {
    // Faults apply to the emulated APIs, never to the control surface; the journal, outermost, records
    // every call to them with the answer made, a fault rule's included.
    let apis = Router::new()
        .merge(entra::routes(state.entra.clone()))
        .merge(partner_center::routes(state.partner_center.clone()))
        .merge(dataverse::routes(state.dataverse.clone()))
        .merge(salesforce::routes(state.salesforce.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.faults.clone(),
            faults::inject,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.journal.clone(),
            journal::record,
        ))
        .layer(axum::middleware::from_fn(tls::require_tls));
    let salesforce_control = salesforce::control::routes(state.salesforce.clone());
    apis.nest(
        "/_control",
        control::routes(Arc::new(state)).merge(salesforce_control),
    )
}
