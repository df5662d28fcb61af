//! Domain types. Parse at the edge into these; once you hold one, it is valid.

pub mod access;
pub mod alerts;
pub mod budget;
pub mod charts;
pub mod codes;
pub mod connection;
pub mod diagnostics;
pub mod flows;
pub mod mapping;
pub mod notification;
pub mod numbers;
pub mod opportunity;
pub mod referral;
pub mod retention;
pub mod runs;
pub mod system;

pub use access::{Access, RoleNames, SignedInUser, UserSummary};
