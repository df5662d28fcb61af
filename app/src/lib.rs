#![recursion_limit = "256"]
//! cosell-app: the dashboard's pages and server functions.
//!
//! Server functions are thin: authorize (each one checks the signed-in user's role itself), then call the
//! `cosell` core. Every page works without JavaScript (`<ActionForm>` posts) and hydrates when it is on.

pub mod api_fields;
pub mod auth;
pub mod error;
mod layout;
pub mod live;
pub mod pages;
mod shell;

pub use shell::{App, shell};

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
