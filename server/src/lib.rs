//! cosell-server: the `cosell` binary — configuration, the axum router, sign-in, sessions, operations
//! endpoints and, with `--sandbox`, the in-process emulators.

mod api_input;
mod api_status;
pub mod config;
mod connections;
mod detached;
mod error_page;
pub mod live;
mod ops;
mod pending;
pub mod sandbox_link;
mod security;
pub mod signin;
pub mod startup;
pub mod telemetry;
pub mod webhooks;
