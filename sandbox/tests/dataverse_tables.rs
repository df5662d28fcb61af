//! The Dataverse emulator's tables (crm-apis.md §2.2–§2.7, §2.9; emulator-checklist.md §4), over HTTP:
//! create, lookups, upsert and ETags, queries, paging, change tracking, opportunity states, faults and
//! the control surface.

mod common;

use common::*;
use cosell_sandbox::Sandbox;
use cosell_sandbox::dataverse::{
    ACCOUNT_ADATUM, ACCOUNT_CONTOSO_PHARMA, ACCOUNT_FABRIKAM, ACCOUNT_LITWARE, CURRENCY_EUR,
    CURRENCY_USD, ORGANIZATION_URL,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const SCOPE: &str = "https://contoso-sandbox.crm.dynamics.com/user_impersonation offline_access";
const JSON_ODATA: &str = "application/json; odata.metadata=minimal";

struct Api {
    url: String,
    token: String,
    http: reqwest::Client,
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    fn rows(&self) -> &Vec<Value> {
        self.body["value"].as_array().expect("a collection")
    }

    fn etag(&self) -> String {
        self.body["@odata.etag"].as_str().expect("etag").to_string()
    }
}

impl Api {
    async fn new(sb: &Sandbox) -> Api {
        Api {
            url: format!("{}/api/data/v9.2", sb.base_url()),
            token: access_token(sb, "admin", SCOPE).await,
            http: client(sb),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/{path}", self.url)
        };
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("Accept", "application/json")
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], None).await
    }

    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(Method::GET, path, headers, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    async fn patch(&self, path: &str, headers: &[(&str, &str)], body: Value) -> Answer {
        self.send(Method::PATCH, path, headers, Some(body)).await
    }

    /// Creates a row and returns its id, read from `OData-EntityId` as a client must.
    async fn create(&self, set: &str, body: Value) -> String {
        let a = self.post(set, body).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
        let entity = a.header("odata-entityid").expect("OData-EntityId");
        let id = entity
            .rsplit_once('(')
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .unwrap();
        id.to_string()
    }
}

fn assert_error(a: &Answer, status: StatusCode, message_part: &str) {
    assert_eq!(a.status, status, "{a:?}");
    assert_eq!(a.header("content-type"), Some(JSON_ODATA), "{a:?}");
    assert!(a.body["error"]["code"].is_string(), "{a:?}");
    assert!(
        a.message().contains(message_part),
        "{:?} should contain {message_part:?}",
        a.message()
    );
}

fn version(etag: &str) -> u64 {
    etag.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .unwrap()
}

fn names(a: &Answer, column: &str) -> Vec<String> {
    a.rows()
        .iter()
        .map(|r| r[column].as_str().unwrap_or("<null>").to_string())
        .collect()
}

/// The names of the accounts `filter` selects, by name.
async fn account_names(api: &Api, filter: String) -> Vec<String> {
    let a = api
        .get(&format!(
            "accounts?$select=name&$filter={filter}&$orderby=name"
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{filter}: {a:?}");
    names(&a, "name")
}

/// The opportunities the sandbox starts with (demo data for the dashboard).
const SEEDED_OPPORTUNITIES: usize = 3;

#[tokio::test]
async fn create_answers_204_with_entity_id_or_201_with_the_row() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let a = api
        .post(
            "opportunities",
            json!({ "name": "Contoso – Azure migration", "estimatedvalue": 125000,
                    "estimatedclosedate": "2025-09-30" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(a.body, Value::Null);
    let entity = a.header("odata-entityid").unwrap();
    let id = entity
        .strip_prefix(&format!("{}/opportunities(", api.url))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap();
    assert_eq!(
        sb.dataverse().row("opportunities", id).unwrap()["name"],
        "Contoso – Azure migration"
    );

    let a = api
        .send(
            Method::POST,
            "opportunities?$select=name,estimatedvalue",
            &[("Prefer", "return=representation")],
            Some(
                json!({ "name": "Fabrikam expansion", "estimatedvalue": 5000.555,
                         "description": "not selected" }),
            ),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    assert_eq!(
        a.header("preference-applied"),
        Some("return=representation")
    );
    assert!(
        a.header("odata-entityid").is_none(),
        "no OData-EntityId with a representation"
    );
    assert_eq!(
        a.body["@odata.context"],
        format!(
            "{}/$metadata#opportunities(name,estimatedvalue)/$entity",
            api.url
        )
    );
    assert!(a.etag().starts_with("W/\""));
    assert_eq!(a.body["name"], "Fabrikam expansion");
    assert_eq!(a.body["estimatedvalue"], 5000.56, "money has precision 2");
    assert_eq!(
        a.body["_transactioncurrencyid_value"], CURRENCY_USD,
        "money implies the currency (the base currency by default)"
    );
    assert!(
        a.body["opportunityid"].is_string(),
        "the key always comes back"
    );
    assert!(a.body.get("description").is_none(), "$select honoured");
    assert_eq!(
        sb.dataverse()
            .row("opportunities", a.body["opportunityid"].as_str().unwrap())
            .unwrap()["msp_syncwithpartnercenter"],
        false,
        "Sync with Partner Center defaults to off"
    );
}

#[tokio::test]
async fn lookups_bind_and_read_back_as_values_with_annotations() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let me = api.get("WhoAmI()").await.body["UserId"]
        .as_str()
        .unwrap()
        .to_string();
    let contact = api
        .create(
            "contacts",
            json!({ "firstname": "Ana", "lastname": "Bowman", "emailaddress1": "ana@fabrikam.example",
                    "parentcustomerid_account@odata.bind": format!("/accounts({ACCOUNT_FABRIKAM})") }),
        )
        .await;
    let id = api
        .create(
            "opportunities",
            json!({
                "name": "Fabrikam – data platform", "estimatedvalue": 40000,
                "customerid_account@odata.bind": format!("/accounts({ACCOUNT_FABRIKAM})"),
                "parentaccountid@odata.bind": format!("accounts({ACCOUNT_FABRIKAM})"),
                "parentcontactid@odata.bind": format!("/contacts({contact})"),
                // The absolute form is accepted too.
                "transactioncurrencyid@odata.bind": format!("{ORGANIZATION_URL}/api/data/v9.2/transactioncurrencies({CURRENCY_EUR})"),
                "salesstage": 1,
            }),
        )
        .await;
    let a = api.get(&format!("opportunities({id})")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body["@odata.context"],
        format!("{}/$metadata#opportunities/$entity", api.url)
    );
    assert_eq!(a.body["_customerid_value"], ACCOUNT_FABRIKAM);
    assert_eq!(a.body["_parentaccountid_value"], ACCOUNT_FABRIKAM);
    assert_eq!(a.body["_parentcontactid_value"], contact.as_str());
    assert_eq!(a.body["_transactioncurrencyid_value"], CURRENCY_EUR);
    assert_eq!(a.body["_ownerid_value"], me.as_str(), "the caller owns it");
    assert_eq!(a.body["exchangerate"], 0.92);
    assert!(a.body.get("customerid_account@odata.bind").is_none());
    assert!(
        a.body.as_object().unwrap().contains_key("description") && a.body["description"].is_null(),
        "without $select every column comes back, empty ones as null"
    );
    let contact_row = api.get(&format!("contacts({contact})")).await;
    assert_eq!(
        contact_row.body["_parentcustomerid_value"],
        ACCOUNT_FABRIKAM
    );
    assert_eq!(contact_row.body["fullname"], "Ana Bowman");

    let a = api
        .get_with(
            &format!("opportunities({id})?$select=name,statecode,statuscode,salesstage,_customerid_value,estimatedvalue"),
            &[("Prefer", "odata.include-annotations=\"*\"")],
        )
        .await;
    assert_eq!(
        a.header("preference-applied"),
        Some("odata.include-annotations=\"*\"")
    );
    let f = "@OData.Community.Display.V1.FormattedValue";
    assert_eq!(a.body[format!("statecode{f}")], "Open");
    assert_eq!(a.body[format!("statuscode{f}")], "In Progress");
    assert_eq!(a.body[format!("salesstage{f}")], "Develop");
    assert_eq!(a.body[format!("estimatedvalue{f}")], "€40,000.00");
    assert_eq!(
        a.body["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "account"
    );
    assert_eq!(a.body[format!("_customerid_value{f}")], "Fabrikam, Inc.");
    assert!(
        a.body.get(format!("description{f}").as_str()).is_none()
            && a.body.get("description").is_none(),
        "annotations only for what is selected"
    );

    let a = api
        .get_with(
            &format!("opportunities({id})?$select=_customerid_value,statecode"),
            &[(
                "Prefer",
                "odata.include-annotations=\"Microsoft.Dynamics.CRM.lookuplogicalname\"",
            )],
        )
        .await;
    assert_eq!(
        a.body["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"],
        "account"
    );
    assert!(
        a.body.get(format!("statecode{f}").as_str()).is_none(),
        "only the annotations asked for"
    );
}

#[tokio::test]
async fn bad_binds_and_unknown_columns_are_refused() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let before = sb.dataverse().rows("opportunities").len();
    let missing = "00000000-0000-0000-0000-000000000001";
    let cases = [
        (
            json!({ "name": "x", "customerid_account@odata.bind": format!("/accounts({missing})") }),
            format!("account With Id = {missing} Does Not Exist"),
        ),
        (
            json!({ "name": "x", "customerid_account@odata.bind": "/accounts(42)" }),
            "is not a valid entity reference".to_string(),
        ),
        (
            json!({ "name": "x", "transactioncurrencyid@odata.bind": format!("/accounts({ACCOUNT_FABRIKAM})") }),
            "cannot be bound to 'transactioncurrencyid'".to_string(),
        ),
        (
            json!({ "name": "x", "customerid@odata.bind": format!("/accounts({ACCOUNT_FABRIKAM})") }),
            "An undeclared property 'customerid' which only has property annotations".to_string(),
        ),
        (
            json!({ "name": "x", "nosuchcolumn": 1 }),
            "Invalid property 'nosuchcolumn' was found in entity 'Microsoft.Dynamics.CRM.opportunity'."
                .to_string(),
        ),
        (
            json!({ "name": "x", "_customerid_value": ACCOUNT_FABRIKAM }),
            "Use Navigation properties instead".to_string(),
        ),
        (
            json!({ "name": "x", "estimatedvalue": "lots" }),
            "Cannot convert the literal '\"lots\"' to the expected type 'Edm.Decimal'.".to_string(),
        ),
        (
            json!({ "name": "x", "estimatedclosedate": "2025-09-30T00:00:00Z" }),
            "Edm.Date".to_string(),
        ),
        (
            json!({ "name": "x".repeat(301) }),
            "exceeded the maximum allowed length of '300'".to_string(),
        ),
        (
            json!({ "name": "x", "salesstage": 9 }),
            "outside the valid range".to_string(),
        ),
        (
            json!({ "name": "x", "closeprobability": 101 }),
            "outside the valid range".to_string(),
        ),
    ];
    for (body, message) in cases {
        let a = api.post("opportunities", body.clone()).await;
        assert_error(&a, StatusCode::BAD_REQUEST, &message);
    }
    assert_eq!(
        sb.dataverse().rows("opportunities").len(),
        before,
        "nothing was created"
    );
    // Application-required columns are not enforced by the Web API: an opportunity without a name,
    // customer or currency is created.
    api.create("opportunities", json!({ "description": "bare" }))
        .await;
}

#[tokio::test]
async fn patch_upserts_unless_if_match_and_if_none_match_forbids_updates() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let id = "1b2c3d4e-0000-4000-8000-00000000abcd";

    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[("If-Match", "*")],
            json!({ "name": "Only if it exists" }),
        )
        .await;
    assert_error(
        &a,
        StatusCode::NOT_FOUND,
        &format!("opportunity With Id = {id} Does Not Exist"),
    );
    assert_eq!(a.body["error"]["code"], "0x80040217");
    assert!(sb.dataverse().row("opportunities", id).is_none());

    // Without If-Match, PATCH is an upsert: the row is created with that id.
    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[],
            json!({ "name": "Upserted" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    assert_eq!(
        sb.dataverse().row("opportunities", id).unwrap()["name"],
        "Upserted"
    );

    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[("If-None-Match", "*")],
            json!({ "name": "Insert only" }),
        )
        .await;
    assert_error(
        &a,
        StatusCode::PRECONDITION_FAILED,
        "A record with matching key values already exists.",
    );
    assert_eq!(
        sb.dataverse().row("opportunities", id).unwrap()["name"],
        "Upserted"
    );

    let other = "1b2c3d4e-0000-4000-8000-00000000abce";
    let a = api
        .send(
            Method::PATCH,
            &format!("opportunities({other})"),
            &[("If-None-Match", "*"), ("Prefer", "return=representation")],
            Some(json!({ "name": "Inserted" })),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    assert_eq!(a.body["opportunityid"], other);

    // The same with If-Match: * on the existing row updates it.
    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[("If-Match", "*")],
            json!({ "name": "Updated" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(
        sb.dataverse().row("opportunities", id).unwrap()["name"],
        "Updated"
    );
}

#[tokio::test]
async fn etags_bump_on_every_write_and_stale_ones_fail() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let before = sb.clock().now();
    let id = api
        .create("opportunities", json!({ "name": "Versioned" }))
        .await;
    let first = api.get(&format!("opportunities({id})")).await;
    let e1 = first.etag();
    assert_eq!(version(&e1), first.body["versionnumber"].as_u64().unwrap());
    let created = time::OffsetDateTime::parse(
        first.body["createdon"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        (created - before).whole_seconds().abs() <= 2,
        "createdon from the emulator clock"
    );

    // One organization-wide counter: a write elsewhere moves it too.
    api.create("accounts", json!({ "name": "Elsewhere" })).await;
    sb.clock().advance(3000);
    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[("If-Match", &e1)],
            json!({ "estimatedvalue": 150000 }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    assert!(
        a.header("odata-entityid")
            .unwrap()
            .ends_with(&format!("({id})"))
    );
    let second = api.get(&format!("opportunities({id})")).await;
    let e2 = second.etag();
    assert!(version(&e2) > version(&e1) + 1, "{e1} → {e2}");
    assert_ne!(second.body["modifiedon"], first.body["modifiedon"]);
    assert_eq!(second.body["createdon"], first.body["createdon"]);

    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[("If-Match", &e1)],
            json!({ "estimatedvalue": 1 }),
        )
        .await;
    assert_error(
        &a,
        StatusCode::PRECONDITION_FAILED,
        "The version of the existing record doesn't match the RowVersion property provided.",
    );
    assert_eq!(a.body["error"]["code"], "0x80060882");

    let a = api
        .send(
            Method::PATCH,
            &format!("opportunities({id})?$select=estimatedvalue"),
            &[("If-Match", &e2), ("Prefer", "return=representation")],
            Some(json!({ "estimatedvalue": 160000 })),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["estimatedvalue"], 160000.0);
    let e3 = a.etag();
    assert!(version(&e3) > version(&e2));

    // Conditional GET: 304 while the ETag matches, the row once it changed.
    let a = api
        .get_with(&format!("opportunities({id})"), &[("If-None-Match", &e3)])
        .await;
    assert_eq!(a.status, StatusCode::NOT_MODIFIED);
    assert_eq!(a.body, Value::Null);
    let a = api
        .get_with(&format!("opportunities({id})"), &[("If-None-Match", &e2)])
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .get_with(
            &format!("opportunities({id})"),
            &[
                ("If-None-Match", &e3),
                ("Prefer", "odata.include-annotations=\"*\""),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "no 304 with annotations");
    let a = api
        .get_with(
            &format!("opportunities({id})"),
            &[("If-None-Match", "null")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);

    // An edit by a CRM user moves the ETag too.
    sb.dataverse()
        .update("opportunities", &id, json!({ "stepname": "2-Develop" }))
        .unwrap();
    let a = api
        .get_with(&format!("opportunities({id})"), &[("If-None-Match", &e3)])
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(version(&a.etag()) > version(&e3));
}

#[tokio::test]
async fn delete_answers_204_then_404() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let id = api.create("contacts", json!({ "lastname": "Gone" })).await;
    let e = api.get(&format!("contacts({id})")).await.etag();
    api.patch(
        &format!("contacts({id})"),
        &[],
        json!({ "firstname": "Soon" }),
    )
    .await;
    let a = api
        .send(
            Method::DELETE,
            &format!("contacts({id})"),
            &[("If-Match", &e)],
            None,
        )
        .await;
    assert_error(&a, StatusCode::PRECONDITION_FAILED, "RowVersion");
    let a = api
        .send(Method::DELETE, &format!("contacts({id})"), &[], None)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = api
        .send(Method::DELETE, &format!("contacts({id})"), &[], None)
        .await;
    assert_error(
        &a,
        StatusCode::NOT_FOUND,
        &format!("contact With Id = {id} Does Not Exist"),
    );
    assert_error(
        &api.get(&format!("contacts({id})")).await,
        StatusCode::NOT_FOUND,
        "Does Not Exist",
    );
}

/// Equalities on text are answered from an index of the stored text (so lookups do not slow down as
/// tables grow); it follows every write: a rename, a delete, a deep insert refused half-way.
#[tokio::test]
async fn text_equalities_follow_every_write() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let named = |name: &str| account_names(&api, format!("name eq '{name}'"));
    let id = api.create("accounts", json!({ "name": "Before" })).await;
    assert_eq!(named("before").await, ["Before"]);
    api.patch(&format!("accounts({id})"), &[], json!({ "name": "After" }))
        .await;
    assert!(named("Before").await.is_empty());
    assert_eq!(named("AFTER").await, ["After"]);
    api.create("accounts", json!({ "name": "After" })).await;
    assert_eq!(named("After").await, ["After", "After"]);
    api.send(Method::DELETE, &format!("accounts({id})"), &[], None)
        .await;
    assert_eq!(named("After").await, ["After"]);
    // A deep insert whose nested row is refused makes nothing, its account included.
    let a = api
        .post(
            "accounts",
            json!({ "name": "Half-way", "contact_customer_accounts": [{ "nosuchcolumn": 1 }] }),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{a:?}");
    assert!(named("Half-way").await.is_empty());
}

#[tokio::test]
async fn filters_compare_case_insensitively_with_the_documented_operators() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let names_for = |filter: &'static str| account_names(&api, filter.to_string());
    assert_eq!(
        names_for("name eq 'FABRIKAM, INC.'").await,
        ["Fabrikam, Inc."]
    );
    assert_eq!(
        names_for("address1_country eq 'united states' or address1_country eq 'Deutschland'").await,
        ["Adatum Corporation", "Fabrikam, Inc."]
    );
    assert_eq!(
        names_for("revenue ge 12500000 and revenue lt 250000000").await,
        ["Contoso Pharmaceuticals", "Litware, Inc."]
    );
    assert_eq!(names_for("revenue gt 80000000").await, ["Fabrikam, Inc."]);
    assert_eq!(names_for("revenue le 12500000").await, ["Litware, Inc."]);
    assert_eq!(names_for("revenue eq null").await, ["Adatum Corporation"]);
    assert_eq!(
        names_for("not (revenue eq null) and (contains(name,'inc') or startswith(name,'contoso'))")
            .await,
        ["Contoso Pharmaceuticals", "Fabrikam, Inc.", "Litware, Inc."]
    );
    assert_eq!(
        names_for("endswith(address1_country,'of america') and address1_postalcode ne '98052'")
            .await,
        ["Litware, Inc."]
    );

    let a = api
        .get(&format!(
            "contacts?$select=fullname&$filter=_parentcustomerid_value eq {ACCOUNT_FABRIKAM}&$orderby=lastname"
        ))
        .await;
    assert_eq!(names(&a, "fullname"), ["Mia Johnson", "Ray Tanaka"]);
    let a = api
        .get("contacts?$select=fullname&$filter=lastname eq 'o''brien'")
        .await;
    assert_eq!(names(&a, "fullname"), ["Oliver O'Brien"]);

    api.create(
        "opportunities",
        json!({ "name": "Synced", "msp_syncwithpartnercenter": true, "estimatedclosedate": "2025-09-30" }),
    )
    .await;
    api.create(
        "opportunities",
        json!({ "name": "Not synced", "estimatedclosedate": "2025-12-31" }),
    )
    .await;
    let a = api
        .get("opportunities?$select=name&$filter=msp_syncwithpartnercenter eq true")
        .await;
    assert_eq!(names(&a, "name"), ["Synced"]);
    let a = api
        .get("opportunities?$select=name&$filter=estimatedclosedate gt 2025-10-01 and estimatedclosedate lt 2026-01-01 and statecode eq 0")
        .await;
    assert_eq!(names(&a, "name"), ["Not synced"]);

    // Refused, never silently ignored.
    for (filter, message) in [
        (
            format!("_parentaccountid_value eq '{ACCOUNT_FABRIKAM}'"),
            "A binary operator with incompatible types was detected. Found operand types 'Edm.Guid' and 'Edm.String'",
        ),
        (
            "primarycontactid/fullname eq 'Ray Tanaka'".to_string(),
            "navigation paths",
        ),
        (
            "Microsoft.Dynamics.CRM.LastXHours(PropertyName='modifiedon',PropertyValue=12)"
                .to_string(),
            "the function 'Microsoft.Dynamics.CRM.LastXHours'",
        ),
        (
            "Name eq 'x'".to_string(),
            "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'.",
        ),
        ("name eq 'x' or".to_string(), "Syntax error"),
        ("revenue eq 'many'".to_string(), "incompatible types"),
    ] {
        let a = api
            .get(&format!("accounts?$filter={}", filter.replace('&', "%26")))
            .await;
        assert_error(&a, StatusCode::BAD_REQUEST, message);
    }
    // The documented example of a wrong property name.
    let a = api.get("accounts?$select=Name").await;
    assert_error(
        &a,
        StatusCode::BAD_REQUEST,
        "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'.",
    );
    assert_eq!(a.body["error"]["code"], "0x0");
}

#[tokio::test]
async fn select_orderby_top_and_count() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let a = api
        .get("accounts?$select=name,revenue&$orderby=revenue desc,name asc&$top=2&$count=true")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(
        a.body["@odata.context"],
        format!("{}/$metadata#accounts(name,revenue)", api.url)
    );
    assert_eq!(
        a.body["@odata.count"], 4,
        "the count is of all matches, not the page"
    );
    assert_eq!(
        names(&a, "name"),
        ["Fabrikam, Inc.", "Contoso Pharmaceuticals"]
    );
    assert!(
        a.body.get("@odata.nextLink").is_none(),
        "$top alone does not page"
    );
    let row = &a.rows()[0];
    assert_eq!(
        row["accountid"], ACCOUNT_FABRIKAM,
        "the key always comes back"
    );
    assert_eq!(row["revenue"], 250000000.0);
    assert_eq!(
        row["_transactioncurrencyid_value"], CURRENCY_USD,
        "a money column brings its currency"
    );
    assert!(row["@odata.etag"].is_string());
    assert!(row.get("address1_country").is_none());
    assert!(row.get("address1_country").is_none());

    // Empty values sort first ascending; several keys.
    let a = api
        .get("accounts?$select=name&$orderby=revenue,name desc")
        .await;
    assert_eq!(
        names(&a, "name"),
        [
            "Adatum Corporation",
            "Litware, Inc.",
            "Contoso Pharmaceuticals",
            "Fabrikam, Inc."
        ]
    );
    let a = api
        .get("transactioncurrencies?$select=isocurrencycode,exchangerate,currencysymbol,currencyname&$orderby=isocurrencycode")
        .await;
    assert_eq!(names(&a, "isocurrencycode"), ["EUR", "GBP", "USD"]);
    assert_eq!(a.rows()[2]["exchangerate"], 1.0);
    assert_eq!(a.rows()[0]["currencysymbol"], "€");
    assert_eq!(a.rows()[1]["currencyname"], "Pound Sterling");

    assert_error(
        &api.get("accounts?$orderby=nosuch desc").await,
        StatusCode::BAD_REQUEST,
        "Could not find a property named 'nosuch'",
    );
    assert_error(
        &api.get("accounts?$top=lots").await,
        StatusCode::BAD_REQUEST,
        "Invalid value 'lots' for $top query option found.",
    );
}

#[tokio::test]
async fn paging_follows_next_links_verbatim_and_ignores_top() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    for i in 0..7 {
        api.create(
            "opportunities",
            json!({ "name": format!("Paging {i}"), "estimatedvalue": 1000 * i }),
        )
        .await;
    }
    let prefer = [("Prefer", "odata.maxpagesize=3")];
    let first = "opportunities?$select=name&$filter=startswith(name,'Paging')&$orderby=name desc&$top=1&$count=true";
    let mut a = api.get_with(first, &prefer).await;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        assert_eq!(a.header("preference-applied"), Some("odata.maxpagesize=3"));
        // Counted when each page is served: one more after the row added below.
        assert_eq!(a.body["@odata.count"], if pages == 0 { 7 } else { 8 });
        pages += 1;
        seen.extend(names(&a, "name"));
        if pages == 1 {
            // A row added between pages before the cursor does not shift the next pages.
            api.create("opportunities", json!({ "name": "Paging 99" }))
                .await;
        }
        let Some(next) = a.body["@odata.nextLink"].as_str() else {
            break;
        };
        assert!(next.starts_with(&format!("{}/opportunities?", api.url)));
        let token = query(next, "$skiptoken").expect("a $skiptoken");
        assert!(
            token.starts_with(&format!(
                "<cookie pagenumber=\"{}\" pagingcookie=\"",
                pages + 1
            )),
            "{token}"
        );
        assert!(token.ends_with("istracking=\"False\" />"), "{token}");
        assert!(query(next, "$skip").is_none());
        a = api.get_with(next, &prefer).await;
    }
    assert_eq!(pages, 3, "3 + 3 + 1 rows: $top is ignored with maxpagesize");
    assert_eq!(
        seen,
        (0..7)
            .rev()
            .map(|i| format!("Paging {i}"))
            .collect::<Vec<_>>()
    );

    // Without an $orderby, pages follow the primary key, still without gaps or repeats.
    let mut a = api
        .get_with(
            "opportunities?$select=name",
            &[("Prefer", "odata.maxpagesize=2")],
        )
        .await;
    let mut ids = Vec::new();
    loop {
        ids.extend(names(&a, "opportunityid"));
        let Some(next) = a.body["@odata.nextLink"].as_str() else {
            break;
        };
        a = api
            .get_with(next, &[("Prefer", "odata.maxpagesize=2")])
            .await;
    }
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);
    assert_eq!(
        ids.len(),
        8 + SEEDED_OPPORTUNITIES,
        "the 8 made here and the seeded ones"
    );

    let a = api
        .get_with(
            "opportunities?$select=name&$skiptoken=%3Ccookie%20pagenumber%3D%222%22%20%2F%3E",
            &prefer,
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "$skiptoken");
    let a = api.get("opportunities?$skip=2").await;
    assert_error(&a, StatusCode::BAD_REQUEST, "$skip");
}

#[tokio::test]
async fn default_page_is_5000_and_count_is_capped() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    for i in 0..5001 {
        sb.dataverse()
            .insert("contacts", json!({ "lastname": format!("Bulk {i:04}") }));
    }
    let a = api
        .get("contacts?$select=lastname&$count=true&$filter=startswith(lastname,'Bulk')&$orderby=lastname")
        .await;
    assert_eq!(a.rows().len(), 5000);
    assert_eq!(
        a.body["@odata.count"], 5000,
        "@odata.count is capped at 5000"
    );
    let next = a.body["@odata.nextLink"].as_str().expect("a next page");
    let a = api.get(next).await;
    assert_eq!(names(&a, "lastname"), ["Bulk 5000"]);
    assert!(a.body.get("@odata.nextLink").is_none());
    let a = api
        .get_with(
            "contacts?$select=lastname",
            &[("Prefer", "odata.maxpagesize=9000")],
        )
        .await;
    assert_eq!(a.rows().len(), 5000, "5000 is also the maximum");
}

#[tokio::test]
async fn change_tracking_returns_changes_and_deletions_since_the_token() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let track = [("Prefer", "odata.track-changes")];
    let a = api
        .get_with("accounts?$select=name,address1_country", &track)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.header("preference-applied"), Some("odata.track-changes"));
    assert_eq!(a.rows().len(), 4, "the initial request returns every row");
    let delta = a.body["@odata.deltaLink"].as_str().unwrap().to_string();
    assert!(
        delta.starts_with(&format!(
            "{}/accounts?$select=name%2Caddress1_country&$deltatoken=",
            api.url
        )),
        "{delta}"
    );
    let token = query(&delta, "$deltatoken").unwrap();
    let (version, at) = token.split_once('!').unwrap();
    assert!(version.parse::<u64>().is_ok(), "{token}");
    assert!(
        time::PrimitiveDateTime::parse(
            at,
            time::macros::format_description!("[month]/[day]/[year] [hour]:[minute]:[second]")
        )
        .is_ok(),
        "{token}"
    );

    // A CRM user edits one account, the API deletes another and creates a third.
    sb.dataverse()
        .update(
            "accounts",
            ACCOUNT_ADATUM,
            json!({ "address1_country": "Germany" }),
        )
        .unwrap();
    let a = api
        .send(
            Method::DELETE,
            &format!("accounts({ACCOUNT_LITWARE})"),
            &[],
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let created = api
        .create("accounts", json!({ "name": "Northwind Traders" }))
        .await;

    let a = api.get_with(&delta, &track).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(
        a.body["@odata.context"],
        format!(
            "{}/$metadata#accounts(name,address1_country)/$delta",
            api.url
        )
    );
    let rows = a.rows();
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let adatum = rows
        .iter()
        .find(|r| r["accountid"] == ACCOUNT_ADATUM)
        .unwrap();
    assert_eq!(adatum["address1_country"], "Germany");
    assert_eq!(
        adatum["name"], "Adatum Corporation",
        "changed rows come in full"
    );
    assert!(adatum["@odata.etag"].is_string());
    assert!(rows.iter().any(|r| r["accountid"] == created.as_str()));
    let deleted = rows.iter().find(|r| r["reason"] == "deleted").unwrap();
    assert_eq!(
        deleted,
        &json!({
            "@odata.context": format!("{}/$metadata#accounts/$deletedEntity", api.url),
            "id": ACCOUNT_LITWARE,
            "reason": "deleted",
        })
    );
    assert!(
        !rows.iter().any(|r| r["accountid"] == ACCOUNT_FABRIKAM),
        "unchanged rows are left out"
    );
    let next = a.body["@odata.deltaLink"].as_str().unwrap().to_string();
    assert_ne!(next, delta);
    let a = api.get_with(&next, &track).await;
    assert_eq!(a.rows().len(), 0, "nothing changed since");

    for option in [
        "$filter=name eq 'x'",
        "$orderby=name",
        "$top=1",
        "$expand=primarycontactid($select=fullname)",
    ] {
        let key = option.split('=').next().unwrap();
        let a = api.get_with(&format!("accounts?{option}"), &track).await;
        assert_error(
            &a,
            StatusCode::BAD_REQUEST,
            &format!(
                "The \"{key}\" query parameter isn't supported when Change Tracking is enabled."
            ),
        );
    }
    let a = api
        .get_with("accounts?$deltatoken=not-a-token", &track)
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "$deltatoken");

    // Tokens last 7 days on the emulator clock.
    sb.clock().advance(8 * 24 * 3600);
    let api = Api::new(&sb).await;
    let a = api.get_with(&next, &track).await;
    assert_error(&a, StatusCode::BAD_REQUEST, "expired");
}

#[tokio::test]
async fn opportunities_close_by_the_actions_and_stay_read_only() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let id = api
        .create(
            "opportunities",
            json!({ "name": "To win", "estimatedvalue": 90000, "estimatedclosedate": "2025-09-30" }),
        )
        .await;
    let lost = api
        .create("opportunities", json!({ "name": "To lose" }))
        .await;
    let row = api.get(&format!("opportunities({id})")).await.body;
    assert_eq!(
        (row["statecode"].clone(), row["statuscode"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(
        row["estimatedclosedate"], "2025-09-30",
        "date-only reads back as a date"
    );

    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[],
            json!({ "statuscode": 2 }),
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::NO_CONTENT,
        "On Hold is a status of Open"
    );
    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[],
            json!({ "statecode": 0, "statuscode": 3 }),
        )
        .await;
    assert_error(
        &a,
        StatusCode::BAD_REQUEST,
        "3 is not a valid status code for state code OpportunityState.Open",
    );
    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[],
            json!({ "statecode": 1, "statuscode": 3 }),
        )
        .await;
    assert_error(
        &a,
        StatusCode::BAD_REQUEST,
        "WinOpportunity or LoseOpportunity",
    );

    let a = api
        .post(
            "WinOpportunity",
            json!({ "Status": 3, "OpportunityClose": {
                "subject": "Won Opportunity",
                "opportunityid@odata.bind": format!("{ORGANIZATION_URL}/api/data/v9.2/opportunities({id})")
            } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    let row = api
        .get_with(
            &format!(
                "opportunities({id})?$select=statecode,statuscode,actualclosedate,actualvalue"
            ),
            &[(
                "Prefer",
                "odata.include-annotations=\"OData.Community.Display.V1.FormattedValue\"",
            )],
        )
        .await
        .body;
    assert_eq!(row["statecode"], 1);
    assert_eq!(row["statuscode"], 3);
    assert_eq!(
        row["statecode@OData.Community.Display.V1.FormattedValue"],
        "Won"
    );
    assert_eq!(row["actualvalue"], 90000.0);
    let today = sb.clock().now().date().to_string();
    assert_eq!(row["actualclosedate"], today.as_str());

    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[],
            json!({ "name": "Edited after the win" }),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "read-only");
    let a = api
        .post(
            "WinOpportunity",
            json!({ "Status": 3, "OpportunityClose": { "subject": "again",
                "opportunityid@odata.bind": format!("/opportunities({id})") } }),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "already closed");

    let a = api
        .post(
            "LoseOpportunity",
            json!({ "Status": 3, "OpportunityClose": { "subject": "Lost",
                "opportunityid@odata.bind": format!("/opportunities({lost})") } }),
        )
        .await;
    assert_error(&a, StatusCode::BAD_REQUEST, "not a valid status code");
    let a = api
        .post(
            "LoseOpportunity",
            json!({ "Status": 5, "OpportunityClose": { "subject": "Out-sold",
                "opportunityid@odata.bind": format!("/opportunities({lost})") } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    let row = sb.dataverse().row("opportunities", &lost).unwrap();
    assert_eq!(
        (row["statecode"].clone(), row["statuscode"].clone()),
        (json!(2), json!(5))
    );
    let missing = "00000000-0000-0000-0000-00000000beef";
    let a = api
        .post(
            "LoseOpportunity",
            json!({ "Status": 4, "OpportunityClose": { "subject": "x",
                "opportunityid@odata.bind": format!("/opportunities({missing})") } }),
        )
        .await;
    assert_error(
        &a,
        StatusCode::NOT_FOUND,
        &format!("opportunity With Id = {missing} Does Not Exist"),
    );
    let a = api.get("WinOpportunity").await;
    assert_error(
        &a,
        StatusCode::NOT_FOUND,
        "No HTTP resource was found that matches the request URI",
    );

    // Reopening is a change of state to Open; then the opportunity is editable again.
    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[],
            json!({ "statecode": 0, "statuscode": 1 }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[],
            json!({ "name": "Reopened" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");

    // The switch for the unconfirmed behaviour: closing by PATCH allowed.
    sb.dataverse().set_close_by_patch(true);
    let a = api
        .patch(
            &format!("opportunities({id})"),
            &[],
            json!({ "statecode": 2 }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    let row = sb.dataverse().row("opportunities", &id).unwrap();
    assert_eq!(
        (row["statecode"].clone(), row["statuscode"].clone()),
        (json!(2), json!(4)),
        "Lost's default status is Canceled"
    );
}

#[tokio::test]
async fn tables_need_an_organization_token() {
    let sb = sandbox().await;
    let url = format!("{}/api/data/v9.2/opportunities", sb.base_url());
    let r = client(&sb).get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );
    let r = client(&sb)
        .post(&url)
        .json(&json!({ "name": "sneaky" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let pc = access_token(
        &sb,
        "admin",
        "https://api.partner.microsoft.com/user_impersonation",
    )
    .await;
    let r = client(&sb).get(&url).bearer_auth(pc).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sb.dataverse().rows("opportunities").len(),
        SEEDED_OPPORTUNITIES,
        "nothing was written"
    );
}

#[tokio::test]
async fn throttling_fault_carries_the_dataverse_body_and_retry_after() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let body = json!({ "error": { "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 6000 over time window of 300 seconds." } });
    let r = client(&sb)
        .post(format!("{}/_control/faults", sb.control_url()))
        .json(
            &json!({ "method": "GET", "path_contains": "/api/data/v9.2/accounts",
                       "status": 429, "retry_after": 20, "body": body, "times": 1 }),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let a = api.get("accounts?$select=name").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(a.header("retry-after"), Some("20"));
    assert_eq!(a.body, body);
    let a = api.get("accounts?$select=name").await;
    assert_eq!(a.status, StatusCode::OK, "the rule applied once");
}

#[tokio::test]
async fn control_endpoints_act_as_a_crm_user() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let control = format!("{}/_control/dataverse", sb.control_url());
    let r = client(&sb)
        .post(format!("{control}/opportunities"))
        .json(&json!({ "name": "Entered in Dynamics", "estimatedvalue": 30000,
                       "customerid_account@odata.bind": format!("/accounts({ACCOUNT_CONTOSO_PHARMA})"),
                       "msp_syncwithpartnercenter": true,
                       "msp_microsoftsolutions": "1-2CZ5XMB,1-3FX1HYL" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let a = api.get(&format!("opportunities({id})")).await;
    assert_eq!(a.body["name"], "Entered in Dynamics");
    assert_eq!(a.body["_customerid_value"], ACCOUNT_CONTOSO_PHARMA);
    assert_eq!(a.body["msp_microsoftsolutions"], "1-2CZ5XMB,1-3FX1HYL");
    assert!(a.body["_ownerid_value"].is_string(), "a CRM user owns it");
    let e1 = a.etag();

    let rows: Vec<Value> = client(&sb)
        .get(format!("{control}/opportunities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["opportunityid"] == id.as_str())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["@odata.etag"], e1.as_str());

    let r = client(&sb)
        .patch(format!("{control}/opportunities/{id}"))
        .json(
            &json!({ "msp_howcanmicrosofthelp": "Architecture guidance", "estimatedvalue": 35000 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let row: Value = r.json().await.unwrap();
    assert!(version(row["@odata.etag"].as_str().unwrap()) > version(&e1));
    let a = api.get(&format!("opportunities({id})")).await;
    assert_eq!(a.body["msp_howcanmicrosofthelp"], "Architecture guidance");
    assert_eq!(a.body["estimatedvalue"], 35000.0);

    let r = client(&sb)
        .patch(format!("{control}/opportunities/{id}"))
        .json(&json!({ "nosuch": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("nosuch")
    );

    // The UI's "Close as Won".
    let r = client(&sb)
        .patch(format!("{control}/opportunities/{id}"))
        .json(&json!({ "statecode": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let row: Value = r.json().await.unwrap();
    assert_eq!(
        (row["statecode"].clone(), row["statuscode"].clone()),
        (json!(1), json!(3))
    );

    let r = client(&sb)
        .get(format!("{control}/nosuchset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = client(&sb)
        .delete(format!("{control}/opportunities/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = client(&sb)
        .get(format!("{control}/opportunities/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_error(
        &api.get(&format!("opportunities({id})")).await,
        StatusCode::NOT_FOUND,
        "Does Not Exist",
    );
}

#[tokio::test]
async fn in_process_api_reads_and_writes_the_same_rows() {
    let sb = sandbox().await;
    let dv = sb.dataverse();
    let currencies = dv.rows("transactioncurrencies");
    let codes: Vec<&str> = currencies
        .iter()
        .map(|c| c["isocurrencycode"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 3);
    for code in ["USD", "EUR", "GBP"] {
        assert!(codes.contains(&code));
    }
    let accounts = dv.rows("accounts");
    let countries: Vec<&str> = accounts
        .iter()
        .map(|a| a["address1_country"].as_str().unwrap())
        .map(|c| match c {
            "United States" | "United States of America" | "United Kingdom" | "Deutschland" => c,
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(countries.len(), 4, "free-text countries, not ISO codes");
    assert!(dv.rows("contacts").len() >= 5);
    assert!(dv.rows("nosuchset").is_empty());

    let id = dv.insert(
        "opportunities",
        json!({ "name": "In-process", "customerid_account@odata.bind": format!("/accounts({ACCOUNT_FABRIKAM})") }),
    );
    let row = dv.row("opportunities", &id).unwrap();
    assert_eq!(row["_customerid_value"], ACCOUNT_FABRIKAM);
    let v1 = version(row["@odata.etag"].as_str().unwrap());
    dv.update("opportunities", &id, json!({ "msp_referralid": "abc-123" }))
        .unwrap();
    let row = dv.row("opportunities", &id).unwrap();
    assert_eq!(row["msp_referralid"], "abc-123");
    assert!(version(row["@odata.etag"].as_str().unwrap()) > v1);
    assert!(
        dv.update(
            "opportunities",
            "00000000-0000-0000-0000-000000000000",
            json!({ "name": "x" })
        )
        .unwrap_err()
        .contains("Does Not Exist")
    );
    assert!(dv
        .try_insert("opportunities", json!({ "customerid_account@odata.bind": "/accounts(00000000-0000-0000-0000-000000000000)" }))
        .is_err());

    // What the API sees is what the in-process API wrote.
    let api = Api::new(&sb).await;
    let a = api
        .get("opportunities?$select=name&$filter=msp_referralid eq 'ABC-123'")
        .await;
    assert_eq!(names(&a, "name"), ["In-process"]);
    assert!(dv.delete("opportunities", &id));
    assert!(!dv.delete("opportunities", &id));
}

#[tokio::test]
async fn a_deep_insert_makes_the_related_rows_in_one_call_or_none_of_them() {
    let sb = sandbox().await;
    let api = Api::new(&sb).await;
    let (account, contact) = (
        "7a0c0a2e-0000-4000-8000-0000000000a1",
        "7a0c0a2e-0000-4000-8000-0000000000c1",
    );
    let created = api
        .post(
            "opportunities?$select=opportunityid",
            json!({
                "name": "Deep",
                "customerid_account": {
                    "accountid": account, "name": "Northwind", "address1_postalcode": "98052",
                    "contact_customer_accounts": [
                        { "contactid": contact, "lastname": "Ng", "emailaddress1": "ada@northwind.example" }
                    ]
                }
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::NO_CONTENT, "{created:?}");
    let id = created
        .header("odata-entityid")
        .and_then(|e| e.rsplit_once('('))
        .map(|(_, rest)| rest.trim_end_matches(')').to_string())
        .unwrap();
    let opportunity = api.get(&format!("opportunities({id})")).await;
    assert_eq!(opportunity.body["_customerid_value"], account);
    let person = api.get(&format!("contacts({contact})")).await;
    assert_eq!(
        person.body["_parentcustomerid_value"], account,
        "{person:?}"
    );

    // A nested row refused (an unknown column): nothing of the call is kept.
    let accounts = api.get("accounts?$select=accountid").await.rows().len();
    let refused = api
        .post(
            "opportunities",
            json!({
                "name": "Half",
                "customerid_account": {
                    "name": "Tailspin",
                    "contact_customer_accounts": [ { "lastname": "Li", "nosuchcolumn": 1 } ]
                }
            }),
        )
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "nosuchcolumn");
    assert_eq!(
        api.get("accounts?$select=accountid").await.rows().len(),
        accounts
    );
    assert!(
        api.get("accounts?$filter=name eq 'Tailspin'")
            .await
            .rows()
            .is_empty(),
        "the account made before the refusal is taken back"
    );

    // A navigation property the table does not have.
    let unknown = api
        .post(
            "opportunities",
            json!({ "name": "X", "nosuchnav": { "name": "Y" } }),
        )
        .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "does not exist on type");
}
