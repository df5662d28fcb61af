//! An in-memory CRM behind the port, for the flows' unit tests: records as typed values, a version per
//! write, every operation logged, and failures to inject (a conflict on the next update, say). The
//! vendors' own behaviour is proven against the sandbox over HTTP; this tests the flows' decisions.

use super::{Changes, CrmError, CrmPort, WriteBack};
use crate::domain::codes::CurrencyCode;
use crate::domain::opportunity::{Customer, Opportunity, OpportunityState, Person};
use crate::domain::referral::{Address, OpportunityChanges, OpportunityDraft};
use crate::domain::system::Crm;
use crate::engine::context::Calls;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct State {
    pub opportunities: BTreeMap<String, Opportunity>,
    pub accounts: BTreeMap<String, Customer>,
    pub contacts: BTreeMap<String, Person>,
    /// ISO code → the CRM's currency id.
    pub currencies: BTreeMap<String, String>,
    /// What the flows asked, in order (`update opp-1`, `create account`…).
    pub log: Vec<String>,
    /// The next update answers this (a conflict, say) instead of writing.
    pub fail_next_update: Option<CrmError>,
    version: u64,
    ids: u64,
}

#[derive(Default)]
pub(crate) struct FakeCrm {
    pub state: Mutex<State>,
    /// Which CRM it plays (Dynamics 365 unless a test says otherwise): the flow catalogs differ.
    pub plays: Option<Crm>,
}

impl State {
    fn next_version(&mut self) -> String {
        self.version += 1;
        self.version.to_string()
    }

    fn next_id(&mut self, kind: &str) -> String {
        self.ids += 1;
        format!("{kind}-{}", self.ids)
    }

    fn log(&mut self, what: String) {
        self.log.push(what);
    }
}

impl FakeCrm {
    pub fn with(f: impl FnOnce(&mut State)) -> FakeCrm {
        let fake = FakeCrm::default();
        {
            let mut s = fake.lock();
            f(&mut s);
            // Versions written next come after every version the records were given.
            s.version = s
                .opportunities
                .values()
                .filter_map(|o| o.version.as_deref()?.parse().ok())
                .max()
                .unwrap_or(0);
        }
        fake
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// What the flows asked, in order.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }

    /// Whether the flows wrote anything.
    pub fn wrote(&self) -> bool {
        self.log()
            .iter()
            .any(|l| !l.starts_with("read") && !l.starts_with("find"))
    }
}

#[async_trait::async_trait]
impl CrmPort for FakeCrm {
    fn crm(&self) -> Crm {
        self.plays.unwrap_or(Crm::Dynamics365)
    }

    fn currency_fix(&self) -> &'static str {
        "Add it in the fake CRM, then resubmit."
    }

    fn cosell_fields(&self) -> super::cosell_fields::CoSellFields {
        super::cosell_fields::CoSellFields::defaults(self.crm())
    }

    fn set_cosell_fields(&self, _: super::cosell_fields::CoSellFields) {}

    async fn record_link(&self, _: &Calls<'_>, id: &str) -> Option<String> {
        Some(format!("fake://opportunity/{id}"))
    }

    async fn opportunity(&self, _: &Calls<'_>, id: &str) -> Result<Option<Opportunity>, CrmError> {
        let mut s = self.lock();
        s.log(format!("read {id}"));
        Ok(s.opportunities.get(id).cloned())
    }

    async fn opportunity_by_referral(
        &self,
        _: &Calls<'_>,
        referral_id: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        let mut s = self.lock();
        s.log(format!("find by referral {referral_id}"));
        Ok(s.opportunities
            .values()
            .find(|o| o.referral_id.as_deref() == Some(referral_id))
            .cloned())
    }

    async fn opportunity_in_full(
        &self,
        calls: &Calls<'_>,
        id: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        self.opportunity(calls, id).await
    }

    async fn match_account(
        &self,
        _: &Calls<'_>,
        name: &str,
        postal_code: &str,
    ) -> Result<Option<String>, CrmError> {
        let mut s = self.lock();
        s.log(format!("find account {name} {postal_code}"));
        Ok(s.accounts
            .values()
            .find(|a| {
                a.name.eq_ignore_ascii_case(name)
                    && a.postal_code.as_deref().unwrap_or_default() == postal_code
            })
            .map(|a| a.id.clone()))
    }

    async fn create_account(
        &self,
        _: &Calls<'_>,
        name: &str,
        address: &Address,
    ) -> Result<String, CrmError> {
        let mut s = self.lock();
        let id = s.next_id("account");
        s.log(format!("create {id}"));
        s.accounts.insert(
            id.clone(),
            Customer {
                id: id.clone(),
                name: name.into(),
                country: address.country.clone(),
                postal_code: address.postal_code.clone(),
                ..Default::default()
            },
        );
        Ok(id)
    }

    async fn known_contacts(
        &self,
        _: &Calls<'_>,
        emails: &[String],
    ) -> Result<Vec<String>, CrmError> {
        let mut s = self.lock();
        s.log(format!("find contacts {}", emails.join(", ")));
        Ok(emails
            .iter()
            .filter(|e| {
                s.contacts.values().any(|c| {
                    c.email
                        .as_deref()
                        .is_some_and(|m| m.eq_ignore_ascii_case(e))
                })
            })
            .map(|e| e.to_ascii_lowercase())
            .collect())
    }

    async fn create_contact(
        &self,
        _: &Calls<'_>,
        contact: &Person,
        _account_id: &str,
    ) -> Result<String, CrmError> {
        let mut s = self.lock();
        let id = s.next_id("contact");
        s.log(format!("create {id}"));
        s.contacts.insert(id.clone(), contact.clone());
        Ok(id)
    }

    async fn find_currency(&self, _: &Calls<'_>, code: &str) -> Result<Option<String>, CrmError> {
        let mut s = self.lock();
        s.log(format!("find currency {code}"));
        Ok(s.currencies.get(code).cloned())
    }

    async fn currencies(&self, _: &Calls<'_>) -> Result<Vec<CurrencyCode>, CrmError> {
        let mut s = self.lock();
        s.log("read currencies".into());
        Ok(s.currencies
            .keys()
            .filter_map(|c| CurrencyCode::parse(c))
            .collect())
    }

    async fn create_opportunity(
        &self,
        calls: &Calls<'_>,
        draft: &OpportunityDraft,
        customer: &super::Customer,
        currency_id: Option<&str>,
    ) -> Result<super::Written, CrmError> {
        let (account_id, made) = customer.made_one_by_one(self, calls).await?;
        let account_id = account_id.as_str();
        let mut s = self.lock();
        let id = s.next_id("opportunity");
        s.log(format!("create {id}"));
        let version = s.next_version();
        s.opportunities.insert(
            id.clone(),
            Opportunity {
                id: id.clone(),
                name: draft.name.clone(),
                sync: true,
                referral_id: Some(draft.referral_id.clone()),
                referral_link: Some(draft.referral_link.clone()),
                deal_value: draft.deal_value,
                closing_date: draft.closing_date,
                notes: draft.notes.clone(),
                account_id: Some(account_id.into()),
                currency_id: currency_id.map(str::to_string),
                version: Some(version.clone()),
                ..Default::default()
            },
        );
        Ok(super::Written { id, version, made })
    }

    async fn update_opportunity(
        &self,
        _: &Calls<'_>,
        opportunity: &Opportunity,
        changes: &OpportunityChanges,
    ) -> Result<String, CrmError> {
        let mut s = self.lock();
        s.log(format!(
            "update {} {}",
            opportunity.id,
            changes.fields().join(", ")
        ));
        if let Some(e) = s.fail_next_update.take() {
            return Err(e);
        }
        let version = s.next_version();
        let Some(o) = s.opportunities.get_mut(&opportunity.id) else {
            return Err(CrmError::NotFound(format!("no {}", opportunity.id)));
        };
        if o.version != opportunity.version {
            return Err(CrmError::Conflict(format!("{} moved on", o.id)));
        }
        let c = changes.clone();
        o.name = c.name.unwrap_or(o.name.clone());
        o.deal_value = c.deal_value.or(o.deal_value);
        o.closing_date = c.closing_date.or(o.closing_date);
        o.notes = c.notes.or(o.notes.clone());
        o.sync = c.sync.unwrap_or(o.sync);
        o.referral_id = c.referral_id.or(o.referral_id.clone());
        o.referral_link = c.referral_link.or(o.referral_link.clone());
        o.currency_id = c.currency_id.or(o.currency_id.clone());
        o.version = Some(version.clone());
        Ok(version)
    }

    async fn close_opportunity(&self, _: &Calls<'_>, id: &str, won: bool) -> Result<(), CrmError> {
        let mut s = self.lock();
        s.log(format!("close {id} {}", if won { "won" } else { "lost" }));
        let version = s.next_version();
        let o = s
            .opportunities
            .get_mut(id)
            .ok_or_else(|| CrmError::NotFound(format!("no {id}")))?;
        o.state = if won {
            OpportunityState::Won
        } else {
            OpportunityState::Lost
        };
        o.version = Some(version);
        Ok(())
    }

    async fn write_back(
        &self,
        _: &Calls<'_>,
        id: &str,
        write: &WriteBack,
    ) -> Result<String, CrmError> {
        let mut s = self.lock();
        s.log(format!("write back {id}"));
        let version = s.next_version();
        let o = s
            .opportunities
            .get_mut(id)
            .ok_or_else(|| CrmError::NotFound(format!("no {id}")))?;
        if let Some((referral, link)) = &write.referral {
            o.referral_id = Some(referral.clone());
            o.referral_link = Some(link.clone());
        }
        if let Some(note) = &write.note {
            o.note = Some(note.clone());
        }
        o.version = Some(version.clone());
        Ok(version)
    }

    async fn set_sync(&self, _: &Calls<'_>, id: &str, on: bool) -> Result<String, CrmError> {
        let mut s = self.lock();
        s.log(format!("set sync {id} {on}"));
        let version = s.next_version();
        let o = s
            .opportunities
            .get_mut(id)
            .ok_or_else(|| CrmError::NotFound(format!("no {id}")))?;
        o.sync = on;
        o.version = Some(version.clone());
        Ok(version)
    }

    /// Every opportunity whose version is past the position (a number).
    async fn opportunity_changes(
        &self,
        _: &Calls<'_>,
        position: Option<&str>,
    ) -> Result<Changes<Opportunity>, CrmError> {
        let mut s = self.lock();
        s.log("read changes".into());
        let since: u64 = position.and_then(|p| p.parse().ok()).unwrap_or(0);
        Ok(Changes {
            changed: s
                .opportunities
                .values()
                .filter(|o| {
                    o.version
                        .as_deref()
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|v| v > since)
                })
                .cloned()
                .collect(),
            deleted: vec![],
            position: s.version.to_string(),
            restarted: false,
        })
    }

    async fn account_changes(
        &self,
        _: &Calls<'_>,
        _position: Option<&str>,
    ) -> Result<Changes<super::AccountChange>, CrmError> {
        let s = self.lock();
        Ok(Changes {
            position: s.version.to_string(),
            ..Default::default()
        })
    }

    fn written_before(&self, earlier: &str, later: &str) -> bool {
        matches!((earlier.parse::<u64>(), later.parse::<u64>()), (Ok(a), Ok(b)) if a < b)
    }

    async fn check(&self, _: &Calls<'_>) -> Result<String, CrmError> {
        Ok("The fake CRM answered.".into())
    }
}
