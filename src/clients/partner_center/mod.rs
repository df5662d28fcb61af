//! Microsoft Partner Center: the Referrals API and webhooks (`shared/reference/partner-center.md`).

pub mod referrals;
pub mod webhook_registration;
pub mod webhook_signature;
