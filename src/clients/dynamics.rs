//! The Dataverse Web API of a Dynamics 365 organization (crm-apis.md §2). Audience: the organization URL.
//!
//! Writes to existing rows send `If-Match` (an ETag or `*`): a PATCH without it is an upsert and would
//! silently recreate a row someone deleted.

use crate::clients::http::{self, CallError};
use crate::crypto::Secret;
use serde_json::{Map, Value};

#[derive(Clone)]
pub struct DynamicsClient {
    http: reqwest::Client,
    /// `https://{org}.crm.dynamics.com/api/data/v9.2` (or the sandbox).
    api: String,
}

/// A string literal for `$filter`: quotes doubled (crm-apis.md §2.5).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Ids are GUIDs; anything else never reaches a URL.
pub fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

impl DynamicsClient {
    pub fn new(http: reqwest::Client, api: &str) -> DynamicsClient {
        DynamicsClient {
            http,
            api: api.trim_end_matches('/').to_string(),
        }
    }

    fn get(&self, token: &Secret, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, token, path)
            .header("Accept", "application/json")
    }

    /// A Web API request of `path` with the token and the OData version headers every call carries.
    fn request(
        &self,
        method: reqwest::Method,
        token: &Secret,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/{path}", self.api))
            .bearer_auth(token.expose())
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
    }

    /// The signed-in user's Dataverse id (`WhoAmI`).
    pub async fn who_am_i(&self, token: &Secret) -> Result<String, CallError> {
        let body = http::json(http::send(self.get(token, "WhoAmI()")).await?).await?;
        body["UserId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CallError::Unexpected("WhoAmI without UserId".into()))
    }

    /// Role template ids of the user's directly assigned roles (crm-apis.md §2.8).
    pub async fn role_templates(
        &self,
        token: &Secret,
        user_id: &str,
    ) -> Result<Vec<String>, CallError> {
        if !is_guid(user_id) {
            return Err(CallError::Unexpected(format!("user id {user_id:?}")));
        }
        let body = http::json(
            http::send(self.get(
                token,
                &format!(
                    "systemusers({user_id})/systemuserroles_association?$select=name,roleid,_roletemplateid_value"
                ),
            ))
            .await?,
        )
        .await?;
        Ok(rows(&body)
            .iter()
            .filter_map(|r| r["_roletemplateid_value"].as_str().map(str::to_string))
            .collect())
    }

    /// One row, or None when it does not exist.
    pub async fn row(
        &self,
        token: &Secret,
        set: &str,
        id: &str,
        select: &str,
    ) -> Result<Option<Value>, CallError> {
        self.fetch_row(token, set, id, select, None).await
    }

    /// One row with the labels of its choices (`x@OData.Community.Display.V1.FormattedValue`), or None.
    pub async fn row_with_labels(
        &self,
        token: &Secret,
        set: &str,
        id: &str,
        select: &str,
    ) -> Result<Option<Value>, CallError> {
        self.fetch_row(token, set, id, select, Some(FORMATTED))
            .await
    }

    async fn fetch_row(
        &self,
        token: &Secret,
        set: &str,
        id: &str,
        select: &str,
        prefer: Option<&str>,
    ) -> Result<Option<Value>, CallError> {
        if !is_guid(id) {
            return Ok(None);
        }
        let mut request = self
            .get(token, &format!("{set}({id})"))
            .query(&[("$select", select)]);
        if let Some(prefer) = prefer {
            request = request.header("Prefer", prefer);
        }
        match http::send(request).await {
            Ok(r) => Ok(Some(http::json(r).await?)),
            Err(CallError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first row matching every `column eq 'value'`, case-insensitively as Dataverse compares.
    pub async fn find(
        &self,
        token: &Secret,
        set: &str,
        key: &str,
        matching: &[(&str, &str)],
    ) -> Result<Option<String>, CallError> {
        let filter = matching
            .iter()
            // Dataverse keeps an empty text column as null: match it as such, or a customer without a
            // postal code would never match and get a new account on every run.
            .map(|(column, value)| match value.trim() {
                "" => format!("{column} eq null"),
                v => format!("{column} eq {}", literal(v)),
            })
            .collect::<Vec<_>>()
            .join(" and ");
        let request =
            self.get(token, set)
                .query(&[("$select", key), ("$filter", &filter), ("$top", "1")]);
        let body = http::json(http::send(request).await?).await?;
        Ok(rows(&body)
            .first()
            .and_then(|r| r[key].as_str())
            .map(str::to_string))
    }

    /// Creates a row and returns its id, read from `OData-EntityId` (crm-apis.md §2.3).
    pub async fn create(
        &self,
        token: &Secret,
        set: &str,
        fields: &Map<String, Value>,
    ) -> Result<String, CallError> {
        let response =
            http::send(self.request(reqwest::Method::POST, token, set).json(fields)).await?;
        let entity = response
            .headers()
            .get("OData-EntityId")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        entity
            .rsplit_once('(')
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .filter(|id| is_guid(id))
            .map(str::to_string)
            .ok_or_else(|| {
                CallError::Unexpected(format!("create answered OData-EntityId {entity:?}"))
            })
    }

    /// Creates a row and reads back its id and version in the same call (`Prefer: return=representation`
    /// with `$select` of the key only: a 201 with the row's `@odata.etag`).
    pub async fn create_versioned(
        &self,
        token: &Secret,
        set: &str,
        key: &str,
        fields: &Map<String, Value>,
    ) -> Result<(String, String), CallError> {
        let response = http::send(
            self.request(reqwest::Method::POST, token, set)
                .query(&[("$select", key)])
                .header("Prefer", "return=representation")
                .json(fields),
        )
        .await?;
        let row = http::json(response).await?;
        let id = row
            .get(key)
            .and_then(Value::as_str)
            .filter(|id| is_guid(id))
            .map(str::to_string)
            .ok_or_else(|| CallError::Unexpected(format!("a create answered without {key}")))?;
        let version = version_of(&row)
            .ok_or_else(|| CallError::Unexpected("a create without @odata.etag".into()))?;
        Ok((id, version))
    }

    /// Closes an opportunity as won (`WinOpportunity`) or lost (`LoseOpportunity`, status 4 Canceled).
    pub async fn close_opportunity(
        &self,
        token: &Secret,
        id: &str,
        won: bool,
    ) -> Result<(), CallError> {
        let (action, status, subject) = if won {
            ("WinOpportunity", 3, "Won in Partner Center")
        } else {
            ("LoseOpportunity", 4, "Closed in Partner Center")
        };
        let body = serde_json::json!({
            "Status": status,
            "OpportunityClose": {
                "subject": subject,
                "opportunityid@odata.bind": format!("/opportunities({id})"),
            }
        });
        http::send(
            self.http
                .post(format!("{}/{action}", self.api))
                .bearer_auth(token.expose())
                .json(&body),
        )
        .await
        .map(|_| ())
    }
}

/// What changed in a table since a delta link (or every row, the first time), and where to resume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    pub rows: Vec<Value>,
    /// Ids of rows deleted since.
    pub deleted: Vec<String>,
    pub delta_link: String,
    /// Requests it took (each counts against the day's API calls).
    pub pages: i64,
}

/// The row version Dataverse puts in `@odata.etag` (`W/"12345"`).
pub fn version_of(row: &Value) -> Option<String> {
    row["@odata.etag"]
        .as_str()
        .and_then(|e| e.strip_prefix("W/\""))
        .and_then(|e| e.strip_suffix('"'))
        .map(str::to_string)
        .or_else(|| row["versionnumber"].as_i64().map(|v| v.to_string()))
}

const FORMATTED: &str = "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"";

impl DynamicsClient {
    /// The rows of one query (a single page: for small, bounded results).
    pub async fn query(
        &self,
        token: &Secret,
        set: &str,
        options: &[(&str, &str)],
    ) -> Result<Vec<Value>, CallError> {
        let body = http::json(http::send(self.get(token, set).query(options)).await?).await?;
        Ok(rows(&body).to_vec())
    }

    /// Updates an existing row and returns the version it now has (to recognise our own write when the
    /// change feed reports it).
    pub async fn update_versioned(
        &self,
        token: &Secret,
        set: &str,
        id: &str,
        key: &str,
        fields: &Map<String, Value>,
        if_match: &str,
    ) -> Result<String, CallError> {
        if !is_guid(id) {
            return Err(CallError::NotFound(format!("{set} id {id:?}")));
        }
        let response = http::send(
            self.request(reqwest::Method::PATCH, token, &format!("{set}({id})"))
                .query(&[("$select", key)])
                .header("If-Match", if_match)
                .header("Prefer", "return=representation")
                .json(fields),
        )
        .await?;
        let row = http::json(response).await?;
        version_of(&row)
            .ok_or_else(|| CallError::Unexpected("an update without @odata.etag".into()))
    }

    /// What changed in `set` since `delta_link` (None: every row, and a first delta link), following
    /// every page (crm-apis.md §2.6), with the labels of choices as a read gives them. A link that
    /// does not point at this organization is refused.
    pub async fn changes(
        &self,
        token: &Secret,
        set: &str,
        select: &str,
        delta_link: Option<&str>,
    ) -> Result<ChangeSet, CallError> {
        let mut request = match delta_link {
            Some(link) if link.starts_with(&format!("{}/{set}", self.api)) => self
                .http
                .get(link)
                .bearer_auth(token.expose())
                .header("Accept", "application/json")
                .header("OData-MaxVersion", "4.0")
                .header("OData-Version", "4.0"),
            Some(link) => {
                return Err(CallError::Unexpected(format!(
                    "a delta link outside the organization: {link}"
                )));
            }
            None => self.get(token, set).query(&[("$select", select)]),
        };
        let mut out = ChangeSet::default();
        loop {
            out.pages += 1;
            let body = http::json(
                http::send(request.header(
                    "Prefer",
                    format!("odata.track-changes,odata.maxpagesize=500,{FORMATTED}"),
                ))
                .await?,
            )
            .await?;
            for row in rows(&body) {
                if row["@odata.context"]
                    .as_str()
                    .is_some_and(|c| c.ends_with("$deletedEntity"))
                {
                    if let Some(id) = row["id"].as_str() {
                        out.deleted.push(id.to_string());
                    }
                } else {
                    out.rows.push(row.clone());
                }
            }
            match (
                body["@odata.nextLink"].as_str(),
                body["@odata.deltaLink"].as_str(),
            ) {
                (Some(next), _) if next.starts_with(&self.api) => {
                    request = self
                        .http
                        .get(next)
                        .bearer_auth(token.expose())
                        .header("Accept", "application/json");
                }
                (_, Some(delta)) => {
                    out.delta_link = delta.to_string();
                    return Ok(out);
                }
                _ => {
                    return Err(CallError::Unexpected(
                        "a change-tracking answer without a delta link".into(),
                    ));
                }
            }
        }
    }
}

fn rows(body: &Value) -> &[Value] {
    body["value"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes_and_guids_are_checked() {
        assert_eq!(literal("O'Brien"), "'O''Brien'");
        assert!(is_guid("627090ff-40a3-4053-8790-584edc5be201"));
        assert!(!is_guid("627090ff-40a3-4053-8790-584edc5be20"));
        assert!(!is_guid("x) or (1 eq 1"));
    }
}
