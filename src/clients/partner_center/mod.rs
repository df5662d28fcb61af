//! Microsoft Partner Center: the Referrals API and webhooks (`shared/reference/partner-center.md`).

pub mod webhook_signature;
