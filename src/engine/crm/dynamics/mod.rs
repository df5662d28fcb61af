//! Dynamics 365 behind the CRM port: every Dataverse detail the flows once knew (table and column
//! names, `@odata.bind` lookups, state codes, row versions as ETags, delta links) lives here and in the
//! Dataverse client (crm-apis.md §2).
//!
//! The co-sell solution's custom columns (`msp_*`) are not confirmed by the reference: their names are
//! settings ([`Columns`], `COSELL_DYNAMICS_COLUMNS`), with the names the sandbox uses as defaults.

mod columns;
mod rows;

use super::cosell_fields::CoSellFields;
use super::{Changes, CrmError, CrmPort, WriteBack};
use crate::clients::dynamics::DynamicsClient;
use crate::clients::http::CallError;
use crate::crypto::Secret;
use crate::domain::codes::CurrencyCode;
use crate::domain::connection::Diagnosis;
use crate::domain::opportunity::{Customer, Opportunity, Person};
use crate::domain::referral::{Address, OpportunityChanges, OpportunityDraft};
use crate::domain::system::{Crm, System};
use crate::engine::context::{CallFailure, Calls};
pub use columns::Columns;
use columns::{ACCOUNT_COLUMNS, ACCOUNT_FEED_COLUMNS, Selects};
use rows::{person, text, with_id};
use serde_json::{Map, Value, json};
use std::future::Future;

const SYSTEM: System = System::Crm(Crm::Dynamics365);

/// Dataverse role template ids that may run the connector (crm-apis.md §2.8). Compare template ids,
/// never role ids or names: those differ per business unit.
pub const ADMIN_ROLE_TEMPLATES: [&str; 2] = [
    "627090ff-40a3-4053-8790-584edc5be201", // System Administrator
    "119f245c-3cc8-4b62-b31c-d1a046ced15d", // System Customizer
];

pub struct DynamicsAdapter {
    client: DynamicsClient,
    /// The organization URL: the token audience.
    resource: String,
    /// The co-sell columns' names: the admin may rename them while cosell runs.
    columns: std::sync::RwLock<Columns>,
}

impl DynamicsAdapter {
    pub fn new(client: DynamicsClient, resource: &str, columns: Columns) -> DynamicsAdapter {
        DynamicsAdapter {
            client,
            resource: resource.to_string(),
            columns: std::sync::RwLock::new(columns),
        }
    }

    fn columns(&self) -> Columns {
        self.columns
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn call<T, F, Fut>(&self, calls: &Calls<'_>, step: &str, f: F) -> Result<T, CrmError>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        calls
            .call(step, SYSTEM, &self.resource, f)
            .await
            .map_err(CrmError::from_call)
    }

    async fn row(
        &self,
        calls: &Calls<'_>,
        step: &str,
        set: &str,
        id: Option<String>,
        select: &str,
    ) -> Result<Option<Value>, CrmError> {
        let Some(id) = id else { return Ok(None) };
        self.call(calls, step, |t| {
            let id = id.clone();
            async move { self.client.row(&t, set, &id, select).await }
        })
        .await
    }

    async fn find(
        &self,
        calls: &Calls<'_>,
        step: &str,
        (set, key): (&str, &str),
        matching: &[(&str, &str)],
    ) -> Result<Option<String>, CrmError> {
        self.call(calls, step, |t| async move {
            self.client.find(&t, set, key, matching).await
        })
        .await
    }

    async fn create(
        &self,
        calls: &Calls<'_>,
        step: &str,
        set: &str,
        fields: &Map<String, Value>,
    ) -> Result<String, CrmError> {
        self.call(calls, step, |t| async move {
            self.client.create(&t, set, fields).await
        })
        .await
    }

    /// Writes columns of an open or closed opportunity whatever its version; the version it now has.
    async fn write(
        &self,
        calls: &Calls<'_>,
        step: &str,
        id: &str,
        fields: &Map<String, Value>,
    ) -> Result<String, CrmError> {
        self.call(calls, step, |t| async move {
            self.client
                .update_versioned(&t, "opportunities", id, "opportunityid", fields, "*")
                .await
        })
        .await
    }

    /// One table's changes since `position`, following every page; an expired delta link (kept 7
    /// days, crm-apis.md §2.7) reads everything again.
    async fn changes(
        &self,
        calls: &Calls<'_>,
        set: &str,
        columns: &str,
        position: Option<&str>,
    ) -> Result<(crate::clients::dynamics::ChangeSet, bool), CrmError> {
        // A delta link keeps the columns it was made with: once cosell tracks others (a release that
        // reads more, a co-sell column renamed), its rows would lack them. Read everything again.
        let mut restarted = position.is_some_and(|link| !tracks(link, columns));
        let mut position = position.filter(|_| !restarted);
        loop {
            let fetched = calls
                .call(
                    "Read the CRM's changes",
                    SYSTEM,
                    &self.resource,
                    |t| async move { self.client.changes(&t, set, columns, position).await },
                )
                .await;
            match fetched {
                Err(CallFailure::Refused(_, CallError::Rejected { message, .. }))
                    if position.is_some() =>
                {
                    tracing::warn!(%set, %message, "CRM change feed: delta link refused, reading everything again");
                    position = None;
                    restarted = true;
                }
                Err(e) => return Err(CrmError::from_call(e)),
                Ok(changes) => {
                    // The first page was counted with the call; the pages it followed are calls too.
                    calls
                        .count_more(SYSTEM, changes.pages - 1)
                        .await
                        .map_err(CrmError::from_call)?;
                    return Ok((changes, restarted));
                }
            }
        }
    }
}

/// Whether a delta link reads these columns (in any order); a link that names none is taken at its
/// word.
fn tracks(link: &str, columns: &str) -> bool {
    let set = |list: &str| {
        list.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let Ok(url) = url::Url::parse(link) else {
        return true;
    };
    url.query_pairs()
        .find(|(k, _)| k == "$select")
        .is_none_or(|(_, select)| set(&select) == set(columns))
}

#[async_trait::async_trait]
impl CrmPort for DynamicsAdapter {
    fn crm(&self) -> Crm {
        Crm::Dynamics365
    }

    fn currency_fix(&self) -> &'static str {
        "Add it (Settings → Business Management → Currencies), then resubmit."
    }

    fn cosell_fields(&self) -> CoSellFields {
        self.columns()
    }

    fn set_cosell_fields(&self, fields: CoSellFields) {
        *self.columns.write().unwrap_or_else(|p| p.into_inner()) = fields;
    }

    /// The organization's record form (the Unified Interface opens it from this address).
    async fn record_link(&self, _: &Calls<'_>, id: &str) -> Option<String> {
        crate::clients::dynamics::is_guid(id).then(|| {
            format!(
                "{}/main.aspx?etn=opportunity&pagetype=entityrecord&id={id}",
                self.resource.trim_end_matches('/')
            )
        })
    }

    async fn opportunity(
        &self,
        calls: &Calls<'_>,
        id: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        let columns = self.columns().own();
        let row = self
            .call(calls, "Find the opportunity by CRM id", |t| {
                let columns = &columns;
                async move {
                    self.client
                        .row_with_labels(&t, "opportunities", id, columns)
                        .await
                }
            })
            .await?;
        Ok(row.as_ref().and_then(|r| {
            // A row read by id carries no id column unless selected: it is the one asked for.
            let mut o = self.columns().opportunity(&with_id(r, id))?;
            o.id = id.to_string();
            Some(o)
        }))
    }

    async fn opportunity_by_referral(
        &self,
        calls: &Calls<'_>,
        referral_id: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        let found = self
            .find(
                calls,
                "Find the opportunity by referral id",
                ("opportunities", "opportunityid"),
                &[(&self.columns().referral_id, referral_id)],
            )
            .await?;
        match found {
            Some(id) => self.opportunity(calls, &id).await,
            None => Ok(None),
        }
    }

    async fn opportunity_in_full(
        &self,
        calls: &Calls<'_>,
        id: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        let columns = self.columns().full();
        let Some(row) = self
            .call(calls, "Read the opportunity", |t| {
                let columns = &columns;
                async move {
                    self.client
                        .row_with_labels(&t, "opportunities", id, columns)
                        .await
                }
            })
            .await?
        else {
            return Ok(None);
        };
        let row = with_id(&row, id);
        // The customer is an account, or a contact whose account is the parent account.
        let mut account = self
            .row(
                calls,
                "Read the customer account",
                "accounts",
                text(&row, "_customerid_value"),
                ACCOUNT_COLUMNS,
            )
            .await?;
        if account.is_none() {
            account = self
                .row(
                    calls,
                    "Read the parent account",
                    "accounts",
                    text(&row, "_parentaccountid_value"),
                    ACCOUNT_COLUMNS,
                )
                .await?;
        }
        let contact_id = text(&row, "_parentcontactid_value").or_else(|| {
            account
                .as_ref()
                .and_then(|a| text(a, "_primarycontactid_value"))
        });
        let contact = self
            .row(
                calls,
                "Read the customer contact",
                "contacts",
                contact_id,
                "firstname,lastname,emailaddress1,telephone1,mobilephone",
            )
            .await?;
        let currency = self
            .row(
                calls,
                "Read the currency",
                "transactioncurrencies",
                text(&row, "_transactioncurrencyid_value"),
                "isocurrencycode",
            )
            .await?;
        let owner = self
            .row(
                calls,
                "Read the owner",
                "systemusers",
                text(&row, "_ownerid_value"),
                "firstname,lastname,internalemailaddress,address1_telephone1,mobilephone",
            )
            .await?;
        let Some(own) = self.columns().opportunity(&row) else {
            return Ok(None);
        };
        Ok(Some(Opportunity {
            currency: currency.as_ref().and_then(|c| text(c, "isocurrencycode")),
            account_id: account
                .as_ref()
                .and_then(|a| text(a, "accountid"))
                .or(own.account_id.clone()),
            customer: account.as_ref().map(|a| Customer {
                id: text(a, "accountid").unwrap_or_default(),
                name: a["name"].as_str().unwrap_or_default().to_string(),
                country: text(a, "address1_country"),
                postal_code: text(a, "address1_postalcode"),
                city: text(a, "address1_city"),
                state: text(a, "address1_stateorprovince"),
                address_line1: text(a, "address1_line1"),
            }),
            contact: contact
                .as_ref()
                .map(|c| person(c, "emailaddress1", &["telephone1", "mobilephone"])),
            owner: owner.as_ref().map(|o| {
                person(
                    o,
                    "internalemailaddress",
                    &["address1_telephone1", "mobilephone"],
                )
            }),
            ..own
        }))
    }

    async fn match_account(
        &self,
        calls: &Calls<'_>,
        name: &str,
        postal_code: &str,
    ) -> Result<Option<String>, CrmError> {
        self.find(
            calls,
            "Match the account by name and postal code",
            ("accounts", "accountid"),
            &[("name", name), ("address1_postalcode", postal_code)],
        )
        .await
    }

    async fn create_account(
        &self,
        calls: &Calls<'_>,
        name: &str,
        address: &Address,
    ) -> Result<String, CrmError> {
        let fields = account_fields(name, address);
        self.create(calls, "Create the account", "accounts", &fields)
            .await
    }

    async fn known_contacts(
        &self,
        calls: &Calls<'_>,
        emails: &[String],
    ) -> Result<Vec<String>, CrmError> {
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        // One query for the whole team (strings compare case-insensitively, crm-apis.md §2.5).
        let filter = emails
            .iter()
            .map(|e| format!("emailaddress1 eq {}", crate::clients::dynamics::literal(e)))
            .collect::<Vec<_>>()
            .join(" or ");
        let rows = self
            .call(calls, "Find the contacts by e-mail", |t| {
                let filter = &filter;
                async move {
                    self.client
                        .query(
                            &t,
                            "contacts",
                            &[("$select", "emailaddress1"), ("$filter", filter)],
                        )
                        .await
                }
            })
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r["emailaddress1"].as_str())
            .map(str::to_ascii_lowercase)
            .collect())
    }

    async fn create_contact(
        &self,
        calls: &Calls<'_>,
        contact: &Person,
        account_id: &str,
    ) -> Result<String, CrmError> {
        let mut fields = contact_fields(contact);
        fields.insert(
            "parentcustomerid_account@odata.bind".into(),
            json!(format!("/accounts({account_id})")),
        );
        self.create(calls, "Create the contact", "contacts", &fields)
            .await
    }

    async fn find_currency(
        &self,
        calls: &Calls<'_>,
        code: &str,
    ) -> Result<Option<String>, CrmError> {
        self.find(
            calls,
            "Find the currency",
            ("transactioncurrencies", "transactioncurrencyid"),
            &[("isocurrencycode", code)],
        )
        .await
    }

    async fn currencies(&self, calls: &Calls<'_>) -> Result<Vec<CurrencyCode>, CrmError> {
        let rows = self
            .call(calls, "Read the CRM's currencies", |t| async move {
                self.client
                    .query(
                        &t,
                        "transactioncurrencies",
                        &[("$select", "isocurrencycode")],
                    )
                    .await
            })
            .await?;
        Ok(rows
            .iter()
            .filter_map(|c| c["isocurrencycode"].as_str().and_then(CurrencyCode::parse))
            .collect())
    }

    async fn create_opportunity(
        &self,
        calls: &Calls<'_>,
        draft: &OpportunityDraft,
        customer: &super::Customer,
        currency_id: Option<&str>,
    ) -> Result<super::Written, CrmError> {
        let mut fields = self
            .columns()
            .write(&draft.changes(&Opportunity::default(), currency_id));
        let made = match customer {
            super::Customer::Existing(account_id) => {
                fields.insert(
                    "customerid_account@odata.bind".into(),
                    json!(format!("/accounts({account_id})")),
                );
                None
            }
            // A deep insert: the account and its contacts are made with the opportunity, in one call
            // and one transaction. Their ids are cosell's (Dataverse takes a primary key given on
            // create), so they are known without reading them back.
            super::Customer::New(new) => {
                let account_id = uuid::Uuid::new_v4().to_string();
                let mut account = account_fields(&new.name, &new.address);
                account.insert("accountid".into(), json!(account_id));
                let mut contacts = Vec::new();
                let mut rows = Vec::new();
                for person in &new.contacts {
                    let id = uuid::Uuid::new_v4().to_string();
                    let mut row = contact_fields(person);
                    row.insert("contactid".into(), json!(id));
                    rows.push(Value::Object(row));
                    contacts.push((person.email.clone().unwrap_or_default(), id));
                }
                if !rows.is_empty() {
                    account.insert("contact_customer_accounts".into(), Value::Array(rows));
                }
                fields.insert("customerid_account".into(), Value::Object(account));
                Some(super::MadeCustomer {
                    account_id,
                    contacts,
                })
            }
        };
        let fields = &fields;
        // The new row comes back with its version in the same call (`return=representation`).
        let (id, version) = self
            .call(calls, "Create the opportunity", |t| async move {
                self.client
                    .create_versioned(&t, "opportunities", "opportunityid", fields)
                    .await
            })
            .await?;
        Ok(super::Written { id, version, made })
    }

    async fn update_opportunity(
        &self,
        calls: &Calls<'_>,
        opportunity: &Opportunity,
        changes: &OpportunityChanges,
    ) -> Result<String, CrmError> {
        let fields = self.columns().write(changes);
        // Guarded by the version read: if someone wrote in between, the caller reads again rather than
        // overwrite their change.
        let e_tag = opportunity
            .version
            .as_deref()
            .map_or_else(|| "*".to_string(), |v| format!("W/\"{v}\""));
        let id = opportunity.id.as_str();
        self.call(calls, "Update the opportunity", |t| {
            let (fields, e_tag) = (&fields, &e_tag);
            async move {
                self.client
                    .update_versioned(&t, "opportunities", id, "opportunityid", fields, e_tag)
                    .await
            }
        })
        .await
    }

    async fn close_opportunity(
        &self,
        calls: &Calls<'_>,
        id: &str,
        won: bool,
    ) -> Result<(), CrmError> {
        let step = if won {
            "Close the opportunity as won"
        } else {
            "Close the opportunity as lost"
        };
        self.call(calls, step, |t| async move {
            self.client.close_opportunity(&t, id, won).await
        })
        .await
    }

    async fn write_back(
        &self,
        calls: &Calls<'_>,
        id: &str,
        write: &WriteBack,
    ) -> Result<String, CrmError> {
        let fields = write.fields(&self.columns());
        self.write(calls, "Write the result on the opportunity", id, &fields)
            .await
    }

    async fn set_sync(&self, calls: &Calls<'_>, id: &str, on: bool) -> Result<String, CrmError> {
        let mut fields = Map::new();
        fields.insert(self.columns().sync.clone(), json!(on));
        self.write(calls, "Switch Sync with Partner Center", id, &fields)
            .await
    }

    async fn opportunity_changes(
        &self,
        calls: &Calls<'_>,
        position: Option<&str>,
    ) -> Result<Changes<Opportunity>, CrmError> {
        let (set, restarted) = self
            .changes(calls, "opportunities", &self.columns().feed(), position)
            .await?;
        Ok(Changes {
            changed: set
                .rows
                .iter()
                .filter_map(|r| self.columns().opportunity(r))
                .collect(),
            deleted: set.deleted,
            position: set.delta_link,
            restarted,
        })
    }

    async fn account_changes(
        &self,
        calls: &Calls<'_>,
        position: Option<&str>,
    ) -> Result<Changes<super::AccountChange>, CrmError> {
        let (set, restarted) = self
            .changes(calls, "accounts", ACCOUNT_FEED_COLUMNS, position)
            .await?;
        Ok(Changes {
            changed: set
                .rows
                .iter()
                .filter_map(|a| {
                    Some(super::AccountChange {
                        id: text(a, "accountid")?,
                        version: crate::clients::dynamics::version_of(a),
                    })
                })
                .collect(),
            deleted: set.deleted,
            position: set.delta_link,
            restarted,
        })
    }

    /// Row versions are one counter for the whole organization (a rowversion): a smaller one was
    /// written first.
    fn written_before(&self, earlier: &str, later: &str) -> bool {
        match (earlier.parse::<u64>(), later.parse::<u64>()) {
            (Ok(a), Ok(b)) => a < b,
            _ => false,
        }
    }

    async fn check(&self, calls: &Calls<'_>) -> Result<String, CrmError> {
        let user = self
            .call(calls, "Who am I", |t| async move {
                self.client.who_am_i(&t).await
            })
            .await
            .map_err(|e| match e {
                // Signed in, yet not a user of this organization.
                CrmError::Refused {
                    system,
                    diagnosis: Diagnosis::MissingRole,
                    message,
                } => CrmError::Refused {
                    system,
                    diagnosis: Diagnosis::NotAMember,
                    message,
                },
                other => other,
            })?;
        let user = &user;
        let roles = self
            .call(calls, "Read the user's roles", |t| async move {
                self.client.role_templates(&t, user).await
            })
            .await?;
        if !roles_sufficient(&roles) {
            return Err(CrmError::Refused {
                system: SYSTEM,
                diagnosis: Diagnosis::MissingRole,
                message: Diagnosis::MissingRole.headline(SYSTEM),
            });
        }
        Ok("Dynamics 365 answered: the account holds the System Administrator or System Customizer role.".into())
    }
}

/// Whether a Dataverse user's role template ids allow running the connector.
pub fn roles_sufficient<S: AsRef<str>>(role_templates: &[S]) -> bool {
    role_templates.iter().any(|t| {
        ADMIN_ROLE_TEMPLATES
            .iter()
            .any(|ok| ok.eq_ignore_ascii_case(t.as_ref()))
    })
}

/// An account's columns. address1_country keeps the ISO code the referral carries: the column is free
/// text (crm-apis.md §2.9).
fn account_fields(name: &str, address: &Address) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("name".into(), json!(name));
    for (column, value) in [
        ("address1_line1", &address.address_line1),
        ("address1_city", &address.city),
        ("address1_stateorprovince", &address.state),
        ("address1_postalcode", &address.postal_code),
        ("address1_country", &address.country),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            fields.insert(column.into(), json!(v));
        }
    }
    fields
}

/// A contact's columns (its account is bound by the caller, or is the one it is made with).
fn contact_fields(contact: &Person) -> Map<String, Value> {
    let mut fields = Map::new();
    for (column, value) in [
        ("firstname", &contact.first_name),
        ("lastname", &contact.last_name),
        ("emailaddress1", &contact.email),
        ("telephone1", &contact.phone),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            fields.insert(column.into(), json!(v));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_judged_by_template_id() {
        assert!(roles_sufficient(&["627090FF-40A3-4053-8790-584EDC5BE201"]));
        assert!(roles_sufficient(&[
            "236750cd-45ae-4939-ab12-b24b920ced93",
            "119f245c-3cc8-4b62-b31c-d1a046ced15d"
        ]));
        assert!(!roles_sufficient(&["236750cd-45ae-4939-ab12-b24b920ced93"]));
        assert!(!roles_sufficient::<&str>(&[]));
    }

    #[test]
    fn a_delta_link_made_with_other_columns_is_not_followed() {
        let columns = Columns::dynamics().feed();
        let link = |select: &str| {
            let mut url =
                url::Url::parse("https://org.crm.dynamics.com/api/data/v9.2/opportunities")
                    .unwrap();
            url.query_pairs_mut()
                .append_pair("$select", select)
                .append_pair("$deltatoken", "919042!08/22/2027");
            url.to_string()
        };
        assert!(tracks(&link(&columns), &columns));
        let reordered: Vec<&str> = columns.split(',').rev().collect();
        assert!(tracks(&link(&reordered.join(",")), &columns));
        let before = "name,statecode,msp_syncwithpartnercenter,msp_referralidentifier,msp_referrallink,_customerid_value";
        assert!(!tracks(&link(before), &columns));
        assert!(tracks(
            "https://org.crm.dynamics.com/api/data/v9.2/opportunities?$deltatoken=1",
            &columns
        ));
    }
}
