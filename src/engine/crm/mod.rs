//! The CRM port: everything the flows ask of a CRM, in CRM-neutral typed values. Each operation is one
//! or more API calls made through [`Calls`] (in a run: steps, counted, timed; outside one: counted), and
//! answers a [`CrmError`] the flows can act on without knowing the vendor.
//!
//! Dynamics 365 plugs in as [`dynamics::DynamicsAdapter`]; a second CRM is another implementation of
//! [`CrmPort`], chosen where the engine is built. Column names, lookups, state codes, change-feed
//! positions and version formats stay inside the adapter.

pub mod cosell_fields;
pub mod dynamics;
#[cfg(test)]
pub(crate) mod fake;
pub mod salesforce;

use super::context::{CallFailure, Calls, StepError, refusal_message};
use super::tokens::TokenProblem;
use crate::clients::http::CallError;
use crate::domain::codes::CurrencyCode;
use crate::domain::connection::Diagnosis;
use crate::domain::opportunity::{Opportunity, Person};
use crate::domain::referral::{Address, OpportunityChanges, OpportunityDraft};
use crate::domain::system::{Crm, System};
use std::time::Duration;

/// Why a CRM operation gave no answer, whatever the CRM. Every message says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CrmError {
    /// Try again later (after at least the duration, if the CRM said).
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// The CRM's daily API allocation is spent: wait, without counting it as a failed attempt.
    #[error("{message}")]
    AllocationSpent { message: String, wait: Duration },
    /// The record changed since it was read (optimistic concurrency).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// The CRM (or its sign-in) refused access; the diagnosis says why and how to fix it.
    #[error("{message}")]
    Refused {
        diagnosis: Diagnosis,
        message: String,
    },
    /// Nobody connected the CRM yet.
    #[error("{0}")]
    NotConnected(String),
    /// No CRM is configured in this instance.
    #[error("{0}")]
    NotConfigured(String),
    /// Refused for good (bad data, an unexpected answer): fix the cause, then resubmit.
    #[error("{0}")]
    Permanent(String),
}

impl CrmError {
    /// The failure of one call, in CRM-neutral terms.
    pub fn from_call(failure: CallFailure) -> CrmError {
        match failure {
            CallFailure::Stop(StepError::Transient(message, retry_after)) => CrmError::Transient {
                message,
                retry_after,
            },
            CallFailure::Stop(StepError::Permanent(message)) => CrmError::Permanent(message),
            CallFailure::Stop(StepError::Paused(message, wait)) => {
                CrmError::AllocationSpent { message, wait }
            }
            CallFailure::NoToken(problem) => {
                let message = format!("{problem}. {}", problem.fix());
                match problem {
                    TokenProblem::NotConnected(_) => CrmError::NotConnected(message),
                    p if p.is_transient() => CrmError::Transient {
                        message,
                        retry_after: None,
                    },
                    TokenProblem::Diagnosed(_, diagnosis) => {
                        CrmError::Refused { diagnosis, message }
                    }
                    TokenProblem::Store(_) => CrmError::Transient {
                        message,
                        retry_after: None,
                    },
                }
            }
            failure @ CallFailure::Transient(_, CallError::AllocationSpent(_)) => {
                match failure.into_step_error() {
                    StepError::Paused(message, wait) => CrmError::AllocationSpent { message, wait },
                    other => CrmError::Permanent(format!("{other:?}")),
                }
            }
            CallFailure::Transient(system, e) => CrmError::Transient {
                message: format!("{}: {e}", system.label()),
                retry_after: e.retry_after(),
            },
            CallFailure::Refused(system, ref e) => {
                let message = refusal_message(system, e);
                match e {
                    CallError::NotFound(_) => CrmError::NotFound(message),
                    CallError::PreconditionFailed(_) => CrmError::Conflict(message),
                    CallError::Forbidden(_) | CallError::Unauthorized(_) => CrmError::Refused {
                        diagnosis: failure.diagnosis(),
                        message,
                    },
                    _ => CrmError::Permanent(message),
                }
            }
        }
    }

    /// What the connection check shows for it.
    pub fn diagnosis(&self) -> Diagnosis {
        match self {
            CrmError::Refused { diagnosis, .. } => *diagnosis,
            CrmError::NotConnected(_) => Diagnosis::ConsentMissing,
            _ => Diagnosis::Unreachable,
        }
    }
}

impl From<CallFailure> for CrmError {
    fn from(failure: CallFailure) -> CrmError {
        CrmError::from_call(failure)
    }
}

impl From<CrmError> for StepError {
    fn from(e: CrmError) -> StepError {
        match e {
            CrmError::Transient {
                message,
                retry_after,
            } => StepError::Transient(message, retry_after),
            CrmError::AllocationSpent { message, wait } => StepError::Paused(message, wait),
            other => StepError::Permanent(other.to_string()),
        }
    }
}

/// What changed in the CRM since a position, and where to resume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes<T> {
    pub changed: Vec<T>,
    /// Ids of records deleted since.
    pub deleted: Vec<String>,
    /// Where the next read resumes (opaque: each CRM has its own).
    pub position: String,
    /// The position had expired: this is everything, read again (compare it with what you knew).
    pub restarted: bool,
}

/// What to write on an opportunity about its referral: the referral's id and link, and the one-line
/// result sellers read on the record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBack {
    pub referral: Option<(String, String)>,
    pub note: Option<String>,
}

impl WriteBack {
    /// The fields to write, named as the CRM names them.
    pub fn fields(
        &self,
        names: &cosell_fields::CoSellFields,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut fields = serde_json::Map::new();
        if let Some((referral_id, link)) = &self.referral {
            fields.insert(names.referral_id.clone(), referral_id.as_str().into());
            fields.insert(names.referral_link.clone(), link.as_str().into());
        }
        if let Some(note) = &self.note {
            fields.insert(names.audit.clone(), note.as_str().into());
        }
        fields
    }
}

/// Everything the flows ask of a CRM.
#[async_trait::async_trait]
pub trait CrmPort: Send + Sync {
    /// Which CRM this is.
    fn crm(&self) -> Crm;

    fn system(&self) -> System {
        System::Crm(self.crm())
    }

    /// How an admin adds a missing currency in this CRM, in one sentence.
    fn currency_fix(&self) -> &'static str;

    /// The names this CRM gives the co-sell fields.
    fn cosell_fields(&self) -> cosell_fields::CoSellFields;

    /// Uses these names from now on (the admin renamed them on the Mapping page).
    fn set_cosell_fields(&self, fields: cosell_fields::CoSellFields);

    /// Where a person opens the record in the CRM's own pages (no API call).
    async fn record_link(&self, calls: &Calls<'_>, id: &str) -> Option<String>;

    /// The CRM's own count of today's API calls and its daily allocation, as it last reported them
    /// (None when the CRM does not report one).
    fn api_usage(&self) -> Option<(i64, i64)> {
        None
    }

    /// The opportunity's own fields (one read: lookups as ids, no account, contact or owner); None
    /// when it does not exist.
    async fn opportunity(
        &self,
        calls: &Calls<'_>,
        id: &str,
    ) -> Result<Option<Opportunity>, CrmError>;

    /// The opportunity that carries this referral id, as [`CrmPort::opportunity`] reads it.
    async fn opportunity_by_referral(
        &self,
        calls: &Calls<'_>,
        referral_id: &str,
    ) -> Result<Option<Opportunity>, CrmError>;

    /// The opportunity with everything the rules need: its customer account with the address as the
    /// CRM holds it, contact, owner with name, e-mail and phone, currency, and cosell's last note.
    async fn opportunity_in_full(
        &self,
        calls: &Calls<'_>,
        id: &str,
    ) -> Result<Option<Opportunity>, CrmError>;

    /// The account of this name and postal code (documented match rule; an empty postal code matches
    /// an account without one).
    async fn match_account(
        &self,
        calls: &Calls<'_>,
        name: &str,
        postal_code: &str,
    ) -> Result<Option<String>, CrmError>;

    async fn create_account(
        &self,
        calls: &Calls<'_>,
        name: &str,
        address: &Address,
    ) -> Result<String, CrmError>;

    /// The contact with this e-mail address, if any.
    async fn find_contact(
        &self,
        calls: &Calls<'_>,
        email: &str,
    ) -> Result<Option<String>, CrmError>;

    /// A contact of the account (its e-mail must be set).
    async fn create_contact(
        &self,
        calls: &Calls<'_>,
        contact: &Person,
        account_id: &str,
    ) -> Result<String, CrmError>;

    /// The CRM's id of a configured currency, None when it is not configured.
    async fn find_currency(
        &self,
        calls: &Calls<'_>,
        code: &str,
    ) -> Result<Option<String>, CrmError>;

    /// The currencies configured in the CRM.
    async fn currencies(&self, calls: &Calls<'_>) -> Result<Vec<CurrencyCode>, CrmError>;

    /// A new opportunity of the account from a referral, "Sync with Partner Center" on; its id.
    async fn create_opportunity(
        &self,
        calls: &Calls<'_>,
        draft: &OpportunityDraft,
        account_id: &str,
        currency_id: Option<&str>,
    ) -> Result<String, CrmError>;

    /// Writes the changes, guarded by the version read (a [`CrmError::Conflict`] when it moved on).
    async fn update_opportunity(
        &self,
        calls: &Calls<'_>,
        opportunity: &Opportunity,
        changes: &OpportunityChanges,
    ) -> Result<(), CrmError>;

    /// Closes the opportunity as won or lost.
    async fn close_opportunity(
        &self,
        calls: &Calls<'_>,
        id: &str,
        won: bool,
    ) -> Result<(), CrmError>;

    /// Writes the referral's id and link and the note; the version the record now has (so the change
    /// feed can recognise the write as cosell's own).
    async fn write_back(
        &self,
        calls: &Calls<'_>,
        id: &str,
        write: &WriteBack,
    ) -> Result<String, CrmError>;

    /// Switches "Sync with Partner Center"; the version the record now has.
    async fn set_sync(&self, calls: &Calls<'_>, id: &str, on: bool) -> Result<String, CrmError>;

    /// Opportunities changed or deleted since `position` (None: all of them, and a first position),
    /// as change-feed rows: id, name, state, sync flag, referral, account and version. An expired
    /// position reads everything again.
    async fn opportunity_changes(
        &self,
        calls: &Calls<'_>,
        position: Option<&str>,
    ) -> Result<Changes<Opportunity>, CrmError>;

    /// Ids of the accounts whose name or address changed since `position`.
    async fn account_changes(
        &self,
        calls: &Calls<'_>,
        position: Option<&str>,
    ) -> Result<Changes<String>, CrmError>;

    /// Who the connection's account is, and whether its role lets it run the connector; what was
    /// checked, in words, or the diagnosis.
    async fn check(&self, calls: &Calls<'_>) -> Result<String, CrmError>;
}
