//! cosell core: the domain (valid on wasm), and behind the `server` feature the store and secret sealing.
//!
//! Rules of the house: the domain knows no I/O; the store knows no HTTP; pages know no SQL.

pub mod domain;

#[cfg(feature = "server")]
pub mod clients;
#[cfg(feature = "server")]
pub mod crypto;
#[cfg(feature = "server")]
pub mod engine;
#[cfg(feature = "server")]
pub mod store;
