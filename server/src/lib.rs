//! cosell-server: the `cosell` binary — configuration, the axum router, sign-in, sessions, operations
//! endpoints and, with `--sandbox`, the in-process emulators.

mod api_status;
pub mod config;
mod connections;
mod error_page;
mod ops;
mod pending;
mod security;
pub mod signin;
pub mod startup;
pub mod telemetry;
pub mod webhooks;
