//! Several writes as one API call (`POST /composite` with `allOrNone`, crm-apis.md §3.6): an opportunity and
//! its account and contact land together or not at all, for the price of one call.

use super::API_VERSION;
use super::errors::{RestError, classify};
use super::rest::{SalesforceClient, base};
use crate::clients::http::{self, CallError};
use crate::crypto::Secret;
use serde_json::{Map, Value, json};

/// Salesforce's limit per composite request.
const MAX_SUBREQUESTS: usize = 25;

/// One subrequest. `url` is relative, from `/services/data/…` (see [`sobject_url`]); it may name an
/// earlier subrequest's result (`@{refAccount.id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Subrequest {
    pub method: &'static str,
    pub url: String,
    pub reference_id: String,
    pub body: Option<Value>,
}

/// One subresponse, in the order of the subrequests.
#[derive(Debug, Clone, PartialEq)]
pub struct Subresponse {
    pub status: u16,
    pub body: Value,
    pub reference_id: String,
}

/// `/services/data/v62.0/sobjects/Opportunity` or `…/sobjects/Opportunity/006…`. Callers pass checked
/// names and ids (or `@{ref.id}` references); this only assembles.
pub fn sobject_url(object: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => format!("/services/data/{API_VERSION}/sobjects/{object}/{id}"),
        None => format!("/services/data/{API_VERSION}/sobjects/{object}"),
    }
}

impl Subrequest {
    /// A create; a later subrequest reads its id as `@{reference_id.id}`.
    pub fn create(object: &str, reference_id: &str, fields: &Map<String, Value>) -> Subrequest {
        Subrequest {
            method: "POST",
            url: sobject_url(object, None),
            reference_id: reference_id.to_string(),
            body: Some(Value::Object(fields.clone())),
        }
    }

    /// An update of an existing record (or of one created earlier in the request, by reference).
    pub fn update(
        object: &str,
        id: &str,
        reference_id: &str,
        fields: &Map<String, Value>,
    ) -> Subrequest {
        Subrequest {
            method: "PATCH",
            url: sobject_url(object, Some(id)),
            reference_id: reference_id.to_string(),
            body: Some(Value::Object(fields.clone())),
        }
    }
}

impl SalesforceClient {
    /// Several writes as one API call, all or none: each subresponse's status and body, in order. When
    /// a subrequest fails, the whole call is an error carrying the first real error (the others only say
    /// `PROCESSING_HALTED`), prefixed with its reference id and classified like a top-level answer:
    /// usually [`CallError::Rejected`], but a missing record is `NotFound` and record contention
    /// (`UNABLE_TO_LOCK_ROW`) stays retryable.
    pub async fn composite(
        &self,
        token: &Secret,
        instance: &str,
        requests: &[Subrequest],
    ) -> Result<Vec<Subresponse>, CallError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        if requests.len() > MAX_SUBREQUESTS {
            return Err(CallError::Unexpected(format!(
                "a composite request holds at most {MAX_SUBREQUESTS} subrequests, not {}",
                requests.len()
            )));
        }
        // A subrequest URL is appended to the instance, and nothing but the data API may be reached.
        if let Some(bad) = requests
            .iter()
            .find(|r| !r.url.starts_with("/services/data/"))
        {
            return Err(CallError::Unexpected(format!(
                "a composite subrequest URL {:?}",
                bad.url
            )));
        }
        let body = json!({
            "allOrNone": true,
            "compositeRequest": requests.iter().map(|r| {
                let mut sub = json!({"method": r.method, "url": r.url, "referenceId": r.reference_id});
                if let Some(body) = &r.body {
                    sub["body"] = body.clone();
                }
                sub
            }).collect::<Vec<_>>(),
        });
        let request = self
            .http
            .post(format!(
                "{}/services/data/{API_VERSION}/composite",
                base(instance)
            ))
            .bearer_auth(token.expose())
            .json(&body);
        let answer = http::json(self.send(request).await?).await?;
        let responses = parse_composite(&answer)?;
        match first_real_error(&responses) {
            Some(e) => Err(e),
            None => Ok(responses),
        }
    }
}

fn parse_composite(answer: &Value) -> Result<Vec<Subresponse>, CallError> {
    let items = answer["compositeResponse"].as_array().ok_or_else(|| {
        CallError::Unexpected("a composite answer without compositeResponse".into())
    })?;
    items
        .iter()
        .map(|item| {
            Ok(Subresponse {
                status: item["httpStatusCode"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or_else(|| {
                        CallError::Unexpected("a composite subresponse without a status".into())
                    })?,
                body: item["body"].clone(),
                reference_id: item["referenceId"].as_str().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Under allOrNone every subrequest after a failure (and every one rolled back) reports
/// `PROCESSING_HALTED`; the cause is the first failure that says something else.
fn first_real_error(responses: &[Subresponse]) -> Option<CallError> {
    let failed: Vec<(&Subresponse, Option<RestError>)> = responses
        .iter()
        .filter(|r| r.status >= 300)
        .map(|r| (r, RestError::from_body(&r.body)))
        .collect();
    let (response, error) = failed
        .iter()
        .find(|(_, e)| {
            e.as_ref()
                .is_some_and(|e| e.code.as_deref() != Some("PROCESSING_HALTED"))
        })
        .or(failed.first())?;
    let what = error
        .as_ref()
        .map(RestError::render)
        .unwrap_or_else(|| format!("HTTP {}", response.status));
    Some(classify(
        response.status,
        None,
        error.as_ref().and_then(|e| e.code.as_deref()),
        format!("{}: {what}", response.reference_id),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(status: u16, reference_id: &str, body: Value) -> Subresponse {
        Subresponse {
            status,
            body,
            reference_id: reference_id.into(),
        }
    }

    #[test]
    fn urls_and_helpers_name_the_data_api() {
        assert_eq!(
            sobject_url("Opportunity", Some("006RO00000AbCdEYAQ")),
            "/services/data/v62.0/sobjects/Opportunity/006RO00000AbCdEYAQ"
        );
        assert_eq!(
            sobject_url("Account", None),
            "/services/data/v62.0/sobjects/Account"
        );
        let mut fields = Map::new();
        fields.insert("AccountId".into(), json!("@{refAccount.id}"));
        let update = Subrequest::update("Opportunity", "006RO00000AbCdEYAQ", "refOpp", &fields);
        assert_eq!(update.method, "PATCH");
        assert_eq!(update.body, Some(json!({"AccountId": "@{refAccount.id}"})));
    }

    #[test]
    fn answers_parse_in_order_and_the_first_real_error_wins() {
        let ok = json!({"compositeResponse": [
            {"body": {"id": "001RO00000AbCdEYAQ", "success": true, "errors": []},
             "httpHeaders": {"Location": "/services/data/v62.0/sobjects/Account/001RO00000AbCdEYAQ"},
             "httpStatusCode": 201, "referenceId": "refAccount"},
            {"body": null, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "refOpp"}
        ]});
        let parsed = parse_composite(&ok).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].status, 201);
        assert_eq!(parsed[0].body["id"], "001RO00000AbCdEYAQ");
        assert_eq!(parsed[1].reference_id, "refOpp");
        assert_eq!(first_real_error(&parsed), None);

        let halted = json!([{"errorCode": "PROCESSING_HALTED",
            "message": "The transaction was rolled back since another operation in the same transaction failed."}]);
        let failed = vec![
            sub(400, "refAccount", halted.clone()),
            sub(
                400,
                "refOpp",
                json!([{"errorCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [CloseDate]", "fields": ["CloseDate"]}]),
            ),
            sub(400, "refContact", halted),
        ];
        assert_eq!(
            first_real_error(&failed),
            Some(CallError::Rejected {
                status: 400,
                message: "refOpp: REQUIRED_FIELD_MISSING: Required fields are missing: [CloseDate] (fields: CloseDate)".into()
            })
        );
        let contended = vec![sub(
            400,
            "refOpp",
            json!([{"errorCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access"}]),
        )];
        assert!(first_real_error(&contended).unwrap().is_transient());
        assert!(matches!(
            first_real_error(&[sub(
                404,
                "refOpp",
                json!([{"errorCode": "NOT_FOUND", "message": "gone"}])
            )]),
            Some(CallError::NotFound(_))
        ));
        assert!(parse_composite(&json!({"x": 1})).is_err());
    }
}
