//! cosell-sandbox: faithful local emulators of the outside world cosell talks to.
//!
//! It shares no code with cosell's own clients on purpose: an emulator written from the vendors'
//! documentation (see `shared/reference/`) is what catches a client's mistakes.
//!
//! Everything is served over real HTTP on one loopback listener:
//! - `/{tenant}/…` — Microsoft Entra ID (v2 OpenID Connect + OAuth 2.0), see [`entra`];
//! - `/_control/…` — the control surface tests and scripts use to inject faults and move the clock.

pub mod clock;
pub mod control;
pub mod entra;
mod html;

use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use clock::Clock;
pub use entra::{DemoUser, Entra};

/// A running sandbox. Dropping it (or calling [`Sandbox::shutdown`]) stops the listener.
pub struct Sandbox {
    addr: SocketAddr,
    entra: Entra,
    clock: Clock,
    stop: watch::Sender<bool>,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port), seeds the demo data and starts serving.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let clock = Clock::default();
        let entra = Entra::seeded(base_url, clock.clone());
        let app = router(entra.clone(), clock.clone());
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "sandbox listener failed");
            }
        });
        Ok(Sandbox {
            addr,
            entra,
            clock,
            stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn entra(&self) -> &Entra {
        &self.entra
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

fn router(entra: Entra, clock: Clock) -> Router {
    Router::new().merge(entra::routes(entra.clone())).nest(
        "/_control",
        control::routes(Arc::new(control::ControlState { entra, clock })),
    )
}
