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
use crate::domain::runs::FailureCause;
use crate::domain::system::{Crm, System};
use std::time::Duration;

/// A record cosell created, and its version as the change feed will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub id: String,
    pub version: String,
    /// The customer made with it, when it was new.
    pub made: Option<MadeCustomer>,
}

/// The account a new opportunity is for.
#[derive(Debug, Clone, PartialEq)]
pub enum Customer {
    /// An account the CRM has.
    Existing(String),
    /// No account matched: one is made with the opportunity, with its contacts.
    New(NewCustomer),
}

/// An account to make, and the contacts to make with it (e-mails the CRM does not have).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCustomer {
    pub name: String,
    pub address: Address,
    pub contacts: Vec<Person>,
}

/// The account and contacts made for a new customer: ids, and each contact's e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MadeCustomer {
    pub account_id: String,
    pub contacts: Vec<(String, String)>,
}

impl Customer {
    /// The account id, making the account and its contacts first, one call each, when it is new: for a
    /// CRM that cannot make them with the opportunity in one call.
    pub(crate) async fn made_one_by_one(
        &self,
        port: &dyn CrmPort,
        calls: &Calls<'_>,
    ) -> Result<(String, Option<MadeCustomer>), CrmError> {
        let new = match self {
            Customer::Existing(id) => return Ok((id.clone(), None)),
            Customer::New(new) => new,
        };
        let account_id = port.create_account(calls, &new.name, &new.address).await?;
        let mut contacts = Vec::new();
        for person in &new.contacts {
            let id = port.create_contact(calls, person, &account_id).await?;
            contacts.push((person.email.clone().unwrap_or_default(), id));
        }
        Ok((
            account_id.clone(),
            Some(MadeCustomer {
                account_id,
                contacts,
            }),
        ))
    }
}

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
        system: System,
        diagnosis: Diagnosis,
        message: String,
    },
    /// Nobody connected the CRM yet.
    #[error("{message}")]
    NotConnected { system: System, message: String },
    /// No CRM is configured in this instance.
    #[error("{0}")]
    NotConfigured(String),
    /// Refused for good (bad data, an unexpected answer): fix the cause, then resubmit.
    #[error("{0}")]
    Permanent(String),
    /// The run lost its lease to another worker: nothing more was sent.
    #[error("another worker has taken the run over")]
    LeaseLost,
}

impl CrmError {
    /// The failure of one call, in CRM-neutral terms.
    pub fn from_call(failure: CallFailure) -> CrmError {
        match failure {
            CallFailure::Stop(StepError::Transient(message, retry_after)) => CrmError::Transient {
                message,
                retry_after,
            },
            CallFailure::Stop(StepError::Permanent(_, message)) => CrmError::Permanent(message),
            CallFailure::Stop(StepError::Paused(message, wait)) => {
                CrmError::AllocationSpent { message, wait }
            }
            CallFailure::Stop(StepError::LeaseLost) => CrmError::LeaseLost,
            CallFailure::Stop(StepError::AwaitingPerson {
                system,
                diagnosis,
                message,
            }) => CrmError::Refused {
                system,
                diagnosis,
                message,
            },
            CallFailure::NoToken(problem) => {
                let message = format!("{problem}. {}", problem.fix());
                match problem {
                    TokenProblem::NotConnected(system) => {
                        CrmError::NotConnected { system, message }
                    }
                    p if p.is_transient() => CrmError::Transient {
                        message,
                        retry_after: None,
                    },
                    TokenProblem::Diagnosed(system, diagnosis) => CrmError::Refused {
                        system,
                        diagnosis,
                        message,
                    },
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
                        system,
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
            CrmError::NotConnected { .. } => Diagnosis::ConsentMissing,
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
            CrmError::LeaseLost => StepError::LeaseLost,
            CrmError::Refused {
                system,
                diagnosis,
                message,
            } => StepError::AwaitingPerson {
                system,
                diagnosis,
                message,
            },
            CrmError::NotConnected { system, message } => StepError::AwaitingPerson {
                system,
                diagnosis: Diagnosis::ConsentMissing,
                message,
            },
            CrmError::NotFound(message) => StepError::Permanent(FailureCause::Data, message),
            CrmError::NotConfigured(message) => {
                StepError::Permanent(FailureCause::Connection, message)
            }
            CrmError::Conflict(message) | CrmError::Permanent(message) => {
                StepError::Permanent(FailureCause::Refused, message)
            }
        }
    }
}

/// An account the change feed saw changed, at its version then.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountChange {
    pub id: String,
    pub version: Option<String>,
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

    /// Which of these e-mail addresses the CRM's contacts have (lower case), in one call.
    async fn known_contacts(
        &self,
        calls: &Calls<'_>,
        emails: &[String],
    ) -> Result<Vec<String>, CrmError>;

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

    /// A new opportunity of the customer from a referral, "Sync with Partner Center" on, with the
    /// customer's account and contacts when they are new: its id, the version the create gave it (so the
    /// change feed knows it for cosell's own write), and what was made with it.
    async fn create_opportunity(
        &self,
        calls: &Calls<'_>,
        draft: &OpportunityDraft,
        customer: &Customer,
        currency_id: Option<&str>,
    ) -> Result<Written, CrmError>;

    /// Writes the changes, guarded by the version read (a [`CrmError::Conflict`] when it moved on); the
    /// version the write gave the opportunity.
    async fn update_opportunity(
        &self,
        calls: &Calls<'_>,
        opportunity: &Opportunity,
        changes: &OpportunityChanges,
    ) -> Result<String, CrmError>;

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

    /// The accounts whose name or address changed since `position`, with their versions.
    async fn account_changes(
        &self,
        calls: &Calls<'_>,
        position: Option<&str>,
    ) -> Result<Changes<AccountChange>, CrmError>;

    /// Whether a record at version `earlier` was surely written before one at version `later` (each
    /// CRM's versions have their own order; false when it cannot tell).
    fn written_before(&self, earlier: &str, later: &str) -> bool;

    /// Who the connection's account is, and whether its role lets it run the connector; what was
    /// checked, in words, or the diagnosis.
    async fn check(&self, calls: &Calls<'_>) -> Result<String, CrmError>;
}
