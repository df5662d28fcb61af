//! Salesforce behind the CRM port (crm-apis.md §3): REST and SOQL on the org's `instance_url`, the
//! co-sell fields of Microsoft's package ([`Fields`]), `SystemModstamp` as the record version, and
//! change detection by polling it (Salesforce offers no HTTP webhook for changes, §3.10).
//!
//! Salesforce has no ETag on records (§3.5, unconfirmed): an update is not guarded by the version read;
//! the change feed's echo check and the flows' "only what changed" writes keep clobbering to the window
//! between a run's read and its write.

mod position;
mod records;

/// The co-sell fields' API names on Opportunity.
pub type Fields = super::cosell_fields::CoSellFields;
pub use records::OrgShape;

use super::{Changes, CrmError, CrmPort, WriteBack};
use crate::clients::http::CallError;
use crate::clients::salesforce::{SalesforceClient, Subrequest, is_id, sobject_url, soql_literal};
use crate::crypto::Secret;
use crate::domain::codes::CurrencyCode;
use crate::domain::connection::Diagnosis;
use crate::domain::opportunity::{Opportunity, Person};
use crate::domain::referral::{Address, OpportunityChanges, OpportunityDraft};
use crate::domain::system::{Crm, System};
use crate::engine::context::Calls;
use position::Position;
use records::{date_text, opportunity, own_fields, person, related_fields, soql_datetime, text};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Mutex;

const SYSTEM: System = System::Crm(Crm::Salesforce);
/// The token cache's key for Salesforce (its tokens have no audience of their own).
const RESOURCE: &str = "salesforce";
/// How far back each poll reads again: a transaction may commit after a later one and carry an
/// earlier `SystemModstamp`; rows read twice are recognised by their version and cost nothing more.
const OVERLAP: time::Duration = time::Duration::minutes(2);
/// Stages a closed referral closes the opportunity with (standard stage names).
const WON: &str = "Closed Won";
const LOST: &str = "Closed Lost";
/// The stage of an opportunity a referral creates (StageName is required).
const FIRST_STAGE: &str = "Prospecting";

pub struct SalesforceAdapter {
    client: SalesforceClient,
    /// The co-sell fields' API names: the admin may rename them while cosell runs.
    fields: std::sync::RwLock<Fields>,
    /// Read once per process from the objects' describe.
    shape: Mutex<Option<OrgShape>>,
}

impl SalesforceAdapter {
    pub fn new(client: SalesforceClient, fields: Fields) -> SalesforceAdapter {
        SalesforceAdapter {
            client,
            fields: std::sync::RwLock::new(fields),
            shape: Mutex::new(None),
        }
    }

    fn fields(&self) -> Fields {
        self.fields
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One REST call as a step: the token, the instance URL, counted, one refresh on a 401.
    async fn call<T, F, Fut>(&self, calls: &Calls<'_>, step: &str, f: F) -> Result<T, CrmError>
    where
        F: Fn(Secret, String) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let instance = calls
            .instance_url(SYSTEM)
            .await
            .map_err(CrmError::from_call)?;
        calls
            .call(step, SYSTEM, RESOURCE, |t| f(t, instance.clone()))
            .await
            .map_err(CrmError::from_call)
    }

    async fn query(
        &self,
        calls: &Calls<'_>,
        step: &str,
        soql: &str,
    ) -> Result<Vec<Value>, CrmError> {
        let records = self
            .call(calls, step, |t, i| async move {
                self.client.query(&t, &i, soql).await
            })
            .await?;
        // The first batch was counted with the call; the batches it followed are calls too.
        calls
            .count_more(SYSTEM, records.requests - 1)
            .await
            .map_err(CrmError::from_call)?;
        Ok(records.records)
    }

    async fn first_id(
        &self,
        calls: &Calls<'_>,
        step: &str,
        soql: &str,
    ) -> Result<Option<String>, CrmError> {
        Ok(self
            .query(calls, step, soql)
            .await?
            .first()
            .and_then(|r| text(r, "Id")))
    }

    /// Which optional features and co-sell fields the org has (two describes, the first time).
    async fn shape(&self, calls: &Calls<'_>) -> Result<OrgShape, CrmError> {
        if let Some(shape) = self.lock().clone() {
            return Ok(shape);
        }
        let describe = |object: &'static str| async move {
            self.call(calls, &format!("Describe {object}"), |t, i| async move {
                self.client.describe_fields(&t, &i, object).await
            })
            .await
        };
        let opportunity = describe("Opportunity").await?;
        let account = describe("Account").await?;
        let multi_currency = opportunity.iter().any(|f| f == "CurrencyIsoCode");
        let org_currency = if multi_currency {
            None
        } else {
            self.query(
                calls,
                "Read the org's currency",
                "SELECT DefaultCurrencyIsoCode FROM Organization",
            )
            .await?
            .first()
            .and_then(|o| text(o, "DefaultCurrencyIsoCode"))
        };
        let shape = OrgShape {
            multi_currency,
            org_currency,
            country_codes: account.iter().any(|f| f == "BillingCountryCode"),
            missing: self
                .fields()
                .all()
                .into_iter()
                .filter(|f| !opportunity.iter().any(|o| o == f))
                .map(str::to_string)
                .collect(),
        };
        *self.lock() = Some(shape.clone());
        Ok(shape)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<OrgShape>> {
        self.shape.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first opportunity matching `condition`, with its own fields.
    async fn one_opportunity(
        &self,
        calls: &Calls<'_>,
        step: &str,
        condition: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        let shape = self.shape(calls).await?;
        let fields = self.fields();
        let soql = format!(
            "SELECT {} FROM Opportunity WHERE {condition} LIMIT 1",
            own_fields(&fields, &shape)
        );
        Ok(self
            .query(calls, step, &soql)
            .await?
            .first()
            .and_then(|r| opportunity(&fields, r)))
    }

    /// Writes fields and reads the `SystemModstamp` the write produced, as one API call (composite).
    async fn write(
        &self,
        calls: &Calls<'_>,
        step: &str,
        id: &str,
        fields: Map<String, Value>,
    ) -> Result<String, CrmError> {
        let id = checked(id)?;
        let write = Subrequest {
            method: "PATCH",
            url: sobject_url("Opportunity", Some(id)),
            reference_id: "write".into(),
            body: Some(Value::Object(fields)),
        };
        self.write_and_read(calls, step, write, id)
            .await
            .map(|(_, version)| version)
    }

    /// `write`, then a read of the record (`id` may be a reference to the write's answer, `@{…}`) with
    /// the fields the change feed reads, as one API call (composite): the record's id and its version
    /// as the feed will see it.
    async fn write_and_read(
        &self,
        calls: &Calls<'_>,
        step: &str,
        write: Subrequest,
        id: &str,
    ) -> Result<(String, String), CrmError> {
        let shape = self.shape(calls).await?;
        let requests = [
            write,
            Subrequest {
                method: "GET",
                url: format!(
                    "{}?fields={}",
                    sobject_url("Opportunity", Some(id)),
                    own_fields(&self.fields(), &shape).replace(' ', "")
                ),
                reference_id: "read".into(),
                body: None,
            },
        ];
        let answers = self
            .call(calls, step, |t, i| {
                let requests = &requests;
                async move { self.client.composite(&t, &i, requests).await }
            })
            .await?;
        answers
            .iter()
            .find(|a| a.reference_id == "read")
            .and_then(|a| {
                Some((
                    a.body["Id"].as_str()?.to_string(),
                    records::version(&a.body)?,
                ))
            })
            .ok_or_else(|| {
                CrmError::Permanent(
                    "Salesforce answered the write without the record's Id and SystemModstamp."
                        .into(),
                )
            })
    }

    async fn changed_since(
        &self,
        calls: &Calls<'_>,
        object: &str,
        select: &str,
        position: Option<&str>,
    ) -> Result<Changes<Value>, CrmError> {
        let previous = position.and_then(Position::parse);
        let since = previous
            .as_ref()
            .and_then(|p| soql_datetime(&p.stamp, OVERLAP));
        let filter = since
            .as_deref()
            .map(|s| format!(" WHERE SystemModstamp >= {s}"))
            .unwrap_or_default();
        let rows = self
            .query(
                calls,
                "Read the CRM's changes",
                &format!("SELECT {select} FROM {object}{filter} ORDER BY SystemModstamp, Id"),
            )
            .await?;
        let deleted = match &since {
            // The first read mirrors what exists: nothing was deleted since nothing.
            None => Vec::new(),
            Some(s) => {
                let soql = format!(
                    "SELECT Id FROM {object} WHERE IsDeleted = true AND SystemModstamp >= {s}"
                );
                let rows = self
                    .call(calls, "Read the CRM's deletions", |t, i| {
                        let soql = &soql;
                        async move { self.client.query_all(&t, &i, soql).await }
                    })
                    .await?;
                rows.records.iter().filter_map(|r| text(r, "Id")).collect()
            }
        };
        let keys: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    text(r, "Id").unwrap_or_default(),
                    records::version(r).unwrap_or_default(),
                )
            })
            .collect();
        let (fresh, mut next) = Position::advance(previous.as_ref(), &keys, |stamp| {
            stamp_before(stamp, OVERLAP)
        });
        if next.stamp.is_empty() {
            // An empty org: start from now.
            next.stamp = now_stamp();
        }
        let changed = fresh.into_iter().map(|i| rows[i].clone()).collect();
        let position = next.to_string();
        Ok(Changes {
            changed,
            deleted,
            position,
            restarted: false,
        })
    }
}

/// Now, as Salesforce writes a `SystemModstamp`.
fn now_stamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].000+0000"
        ))
        .unwrap_or_default()
}

/// A `SystemModstamp` moved back by `by`, in the same form (so stamps compare as text).
fn stamp_before(stamp: &str, by: time::Duration) -> String {
    let Some(at) = stamp.get(..19).and_then(|s| {
        time::PrimitiveDateTime::parse(
            s,
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        )
        .ok()
    }) else {
        return String::new();
    };
    (at - by)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].000+0000"
        ))
        .unwrap_or_default()
}

/// Ids go into URLs and queries only when they look like Salesforce ids.
fn checked(id: &str) -> Result<&str, CrmError> {
    if is_id(id) {
        Ok(id)
    } else {
        Err(CrmError::NotFound(format!(
            "“{id}” is not a Salesforce record id."
        )))
    }
}

#[async_trait::async_trait]
impl CrmPort for SalesforceAdapter {
    fn crm(&self) -> Crm {
        Crm::Salesforce
    }

    /// The org's usage as Salesforce reported it on the last response (`Sforce-Limit-Info`).
    fn api_usage(&self) -> Option<(i64, i64)> {
        self.client.last_usage().map(|u| (u.used, u.max))
    }

    fn cosell_fields(&self) -> Fields {
        self.fields()
    }

    fn set_cosell_fields(&self, fields: Fields) {
        *self.fields.write().unwrap_or_else(|p| p.into_inner()) = fields;
        // The check reads the org's describe again for the new names.
        *self.lock() = None;
    }

    fn currency_fix(&self) -> &'static str {
        "Turn on multiple currencies and activate it (Setup → Company Settings → Manage Currencies), then resubmit."
    }

    /// The record's Lightning page on the org's own domain.
    async fn record_link(&self, calls: &Calls<'_>, id: &str) -> Option<String> {
        let instance = calls.instance_url(SYSTEM).await.ok()?;
        is_id(id).then(|| {
            format!(
                "{}/lightning/r/Opportunity/{id}/view",
                instance.trim_end_matches('/')
            )
        })
    }

    async fn opportunity(
        &self,
        calls: &Calls<'_>,
        id: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        if !is_id(id) {
            return Ok(None);
        }
        self.one_opportunity(
            calls,
            "Find the opportunity by CRM id",
            &format!("Id = {}", soql_literal(id)),
        )
        .await
    }

    async fn opportunity_by_referral(
        &self,
        calls: &Calls<'_>,
        referral_id: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        let condition = format!(
            "{} = {}",
            self.fields().referral_id,
            soql_literal(referral_id)
        );
        self.one_opportunity(calls, "Find the opportunity by referral id", &condition)
            .await
    }

    async fn opportunity_in_full(
        &self,
        calls: &Calls<'_>,
        id: &str,
    ) -> Result<Option<Opportunity>, CrmError> {
        if !is_id(id) {
            return Ok(None);
        }
        let shape = self.shape(calls).await?;
        let soql = format!(
            "SELECT {}, {} FROM Opportunity WHERE Id = {}",
            own_fields(&self.fields(), &shape),
            related_fields(&shape),
            soql_literal(id)
        );
        let Some(mut o) = self
            .query(calls, "Read the opportunity", &soql)
            .await?
            .first()
            .and_then(|r| opportunity(&self.fields(), r))
        else {
            return Ok(None);
        };
        if !shape.multi_currency {
            o.currency = shape.org_currency.clone();
        }
        // The customer contact: the account's first contact (the package's primary-contact rule is
        // not documented).
        if let Some(account) = o.account_id.clone().filter(|a| is_id(a)) {
            let soql = format!(
                "SELECT FirstName, LastName, Email, Phone FROM Contact WHERE AccountId = {} ORDER BY CreatedDate LIMIT 1",
                soql_literal(&account)
            );
            o.contact = self
                .query(calls, "Read the customer contact", &soql)
                .await?
                .first()
                .map(person);
        }
        Ok(Some(o))
    }

    async fn match_account(
        &self,
        calls: &Calls<'_>,
        name: &str,
        postal_code: &str,
    ) -> Result<Option<String>, CrmError> {
        let postal = match postal_code.trim() {
            "" => "null".to_string(),
            p => soql_literal(p),
        };
        let soql = format!(
            "SELECT Id FROM Account WHERE Name = {} AND BillingPostalCode = {postal} LIMIT 1",
            soql_literal(name)
        );
        self.first_id(calls, "Match the account by name and postal code", &soql)
            .await
    }

    async fn create_account(
        &self,
        calls: &Calls<'_>,
        name: &str,
        address: &Address,
    ) -> Result<String, CrmError> {
        let shape = self.shape(calls).await?;
        let country = if shape.country_codes {
            "BillingCountryCode"
        } else {
            "BillingCountry"
        };
        let mut fields = Map::new();
        fields.insert("Name".into(), json!(name));
        for (field, value) in [
            ("BillingStreet", &address.address_line1),
            ("BillingCity", &address.city),
            ("BillingState", &address.state),
            ("BillingPostalCode", &address.postal_code),
            (country, &address.country),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                fields.insert(field.into(), json!(v));
            }
        }
        let fields = &fields;
        self.call(calls, "Create the account", |t, i| async move {
            self.client.create(&t, &i, "Account", fields).await
        })
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
        let listed: Vec<String> = emails.iter().map(|e| soql_literal(e)).collect();
        let soql = format!(
            "SELECT Email FROM Contact WHERE Email IN ({})",
            listed.join(", ")
        );
        let rows = self
            .query(calls, "Find the contacts by e-mail", &soql)
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r["Email"].as_str())
            .map(str::to_ascii_lowercase)
            .collect())
    }

    async fn create_contact(
        &self,
        calls: &Calls<'_>,
        contact: &Person,
        account_id: &str,
    ) -> Result<String, CrmError> {
        let mut fields = Map::new();
        // LastName is required: a referral's team member may give only an e-mail address.
        let last = contact
            .last_name
            .clone()
            .or_else(|| contact.email.clone())
            .unwrap_or_else(|| "(unknown)".into());
        fields.insert("LastName".into(), json!(last));
        for (field, value) in [
            ("FirstName", &contact.first_name),
            ("Email", &contact.email),
            ("Phone", &contact.phone),
        ] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                fields.insert(field.into(), json!(v));
            }
        }
        fields.insert("AccountId".into(), json!(checked(account_id)?));
        let fields = &fields;
        self.call(calls, "Create the contact", |t, i| async move {
            self.client.create(&t, &i, "Contact", fields).await
        })
        .await
    }

    async fn find_currency(
        &self,
        calls: &Calls<'_>,
        code: &str,
    ) -> Result<Option<String>, CrmError> {
        Ok(self
            .currencies(calls)
            .await?
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(code))
            .map(|c| c.as_str().to_string()))
    }

    /// The active currencies of a multi-currency org; otherwise the org's one currency (none when the
    /// org does not say: the FAQ's "currency field is configured" rule then fails, with its fix).
    async fn currencies(&self, calls: &Calls<'_>) -> Result<Vec<CurrencyCode>, CrmError> {
        let shape = self.shape(calls).await?;
        if !shape.multi_currency {
            return Ok(shape
                .org_currency
                .as_deref()
                .and_then(CurrencyCode::parse)
                .into_iter()
                .collect());
        }
        let rows = self
            .query(
                calls,
                "Read the CRM's currencies",
                "SELECT IsoCode FROM CurrencyType WHERE IsActive = true",
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r["IsoCode"].as_str().and_then(CurrencyCode::parse))
            .collect())
    }

    async fn create_opportunity(
        &self,
        calls: &Calls<'_>,
        draft: &OpportunityDraft,
        customer: &super::Customer,
        currency_id: Option<&str>,
    ) -> Result<super::Written, CrmError> {
        let shape = self.shape(calls).await?;
        // The composite API could make the account and contacts in the same call; Salesforce's daily
        // allocation is large (crm-apis.md §3.8), so they are made one by one.
        let (account_id, made) = customer.made_one_by_one(self, calls).await?;
        let account_id = account_id.as_str();
        let mut fields = records::write(
            &self.fields(),
            &shape,
            &draft.changes(&Opportunity::default(), currency_id),
        );
        fields.insert("AccountId".into(), json!(checked(account_id)?));
        fields.insert("StageName".into(), json!(FIRST_STAGE));
        // CloseDate is required; a referral without one gets the end of the next quarter's first
        // month as a placeholder the seller corrects (Partner Center keeps its own date).
        fields.entry("CloseDate").or_insert_with(|| {
            json!(date_text(
                time::OffsetDateTime::now_utc().date() + time::Duration::days(90)
            ))
        });
        let create = Subrequest {
            method: "POST",
            url: sobject_url("Opportunity", None),
            reference_id: "create".into(),
            body: Some(Value::Object(fields)),
        };
        let (id, version) = self
            .write_and_read(calls, "Create the opportunity", create, "@{create.id}")
            .await?;
        Ok(super::Written { id, version, made })
    }

    async fn update_opportunity(
        &self,
        calls: &Calls<'_>,
        opportunity: &Opportunity,
        changes: &OpportunityChanges,
    ) -> Result<String, CrmError> {
        let shape = self.shape(calls).await?;
        let fields = records::write(&self.fields(), &shape, changes);
        self.write(calls, "Update the opportunity", &opportunity.id, fields)
            .await
    }

    async fn close_opportunity(
        &self,
        calls: &Calls<'_>,
        id: &str,
        won: bool,
    ) -> Result<(), CrmError> {
        let (step, stage) = if won {
            ("Close the opportunity as won", WON)
        } else {
            ("Close the opportunity as lost", LOST)
        };
        let id = checked(id)?;
        let mut fields = Map::new();
        fields.insert("StageName".into(), json!(stage));
        let fields = &fields;
        self.call(calls, step, |t, i| async move {
            self.client.update(&t, &i, "Opportunity", id, fields).await
        })
        .await
    }

    async fn write_back(
        &self,
        calls: &Calls<'_>,
        id: &str,
        write: &WriteBack,
    ) -> Result<String, CrmError> {
        let fields = write.fields(&self.fields());
        self.write(calls, "Write the result on the opportunity", id, fields)
            .await
    }

    async fn set_sync(&self, calls: &Calls<'_>, id: &str, on: bool) -> Result<String, CrmError> {
        let mut fields = Map::new();
        fields.insert(self.fields().sync.clone(), json!(on));
        self.write(calls, "Switch Sync with Partner Center", id, fields)
            .await
    }

    async fn opportunity_changes(
        &self,
        calls: &Calls<'_>,
        position: Option<&str>,
    ) -> Result<Changes<Opportunity>, CrmError> {
        let shape = self.shape(calls).await?;
        let changes = self
            .changed_since(
                calls,
                "Opportunity",
                &own_fields(&self.fields(), &shape),
                position,
            )
            .await?;
        Ok(Changes {
            changed: changes
                .changed
                .iter()
                .filter_map(|r| opportunity(&self.fields(), r))
                .collect(),
            deleted: changes.deleted,
            position: changes.position,
            restarted: changes.restarted,
        })
    }

    async fn account_changes(
        &self,
        calls: &Calls<'_>,
        position: Option<&str>,
    ) -> Result<Changes<super::AccountChange>, CrmError> {
        let changes = self
            .changed_since(calls, "Account", "Id, SystemModstamp", position)
            .await?;
        Ok(Changes {
            changed: changes
                .changed
                .iter()
                .filter_map(|r| {
                    Some(super::AccountChange {
                        id: text(r, "Id")?,
                        version: records::version(r),
                    })
                })
                .collect(),
            deleted: changes.deleted,
            position: changes.position,
            restarted: changes.restarted,
        })
    }

    /// Versions start with `SystemModstamp`, to the second (the same ISO form on every record): only
    /// an earlier second is surely earlier; two writes in one second cannot be ordered.
    fn written_before(&self, earlier: &str, later: &str) -> bool {
        position::stamped_before(earlier, later)
    }

    async fn check(&self, calls: &Calls<'_>) -> Result<String, CrmError> {
        // Who the connection's user is: the last segment of the identity URL, kept as the account's
        // object id when the connection was made.
        let user = calls
            .connected_account(SYSTEM)
            .await
            .map_err(CrmError::from_call)?;
        let user = checked(&user)?.to_string();
        let soql = format!(
            "SELECT PermissionSet.Name, PermissionSet.PermissionsModifyAllData FROM PermissionSetAssignment WHERE AssigneeId = {}",
            soql_literal(&user)
        );
        let grants = self
            .query(calls, "Read the user's permissions", &soql)
            .await?;
        let modify_all = grants
            .iter()
            .any(|g| g["PermissionSet"]["PermissionsModifyAllData"].as_bool() == Some(true));
        if !modify_all {
            return Err(CrmError::Refused {
                system: SYSTEM,
                diagnosis: Diagnosis::MissingRole,
                message: "The Salesforce user lacks the “Modify All Data” permission. Grant it through the user's profile or a permission set (Setup → Permission Sets → System Permissions), or Reconnect as a System Administrator.".into(),
            });
        }
        // Forget what was read of the org before: a reconnect may be to another org.
        *self.lock() = None;
        let shape = self.shape(calls).await?;
        if !shape.missing.is_empty() {
            return Err(CrmError::Refused {
                system: SYSTEM,
                diagnosis: Diagnosis::FieldsMissing,
                message: format!(
                    "The Salesforce org lacks the co-sell fields {} on Opportunity. Install Microsoft's co-sell package, or set the API names your org uses with COSELL_SALESFORCE_FIELDS.",
                    shape.missing.join(", ")
                ),
            });
        }
        Ok(
            "Salesforce answered: the user has Modify All Data and the org has the co-sell fields."
                .into(),
        )
    }
}
