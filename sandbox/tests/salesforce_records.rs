//! The Salesforce emulator's sObject endpoints: create, read, update, upsert, delete, describe, the
//! org's switches and the control API (shared/reference/crm-apis.md §3.5, §3.7, §3.9;
//! emulator-checklist.md §5), over real HTTP.

mod common;

use common::salesforce::{Api, error_code, opportunity};
use common::{client, sandbox};
use cosell_sandbox::salesforce::{
    ACCOUNT_WIDE_WORLD, OPPORTUNITY_READY, OPPORTUNITY_WITH_PRODUCTS, USER_ADMIN, USER_STANDARD,
    fields,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn create_read_update_delete_and_the_audit_fields() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "standard").await;
    let (status, created) = api
        .send(
            Method::POST,
            "sobjects/Opportunity/",
            Some(opportunity("New deal")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["success"], true);
    assert_eq!(created["errors"], json!([]));
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("006") && id.len() == 18, "{id}");

    let (status, row) = api.get(&format!("sobjects/Opportunity/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(row["attributes"]["type"], "Opportunity");
    assert_eq!(
        row["attributes"]["url"],
        format!("/services/data/v62.0/sobjects/Opportunity/{id}")
    );
    assert_eq!(row["OwnerId"], USER_STANDARD);
    assert_eq!(row["CreatedById"], USER_STANDARD);
    assert_eq!(row[fields::SYNC], false);
    assert_eq!(row["IsClosed"], false);
    assert_eq!(row["Probability"], 10.0, "the stage's default probability");
    let stamp = row["SystemModstamp"].as_str().unwrap().to_string();
    assert!(stamp.ends_with(".000+0000") && stamp.len() == 28, "{stamp}");
    assert_eq!(row["LastModifiedDate"], stamp);

    let (_, some) = api
        .get(&format!("sobjects/Opportunity/{id}?fields=Name,StageName"))
        .await;
    assert_eq!(
        some.as_object().unwrap().len(),
        3,
        "attributes and the two fields: {some}"
    );

    sb.clock().advance(90);
    let admin = Api::new(&sb, "admin").await;
    let (status, _) = admin
        .send(
            Method::PATCH,
            &format!("sobjects/Opportunity/{id}"),
            Some(json!({ "StageName": "Closed Won" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let row = sb.salesforce().row("Opportunity", &id).unwrap();
    assert_eq!(row["IsWon"], true);
    assert_eq!(row["IsClosed"], true);
    assert_eq!(row["LastModifiedById"], USER_ADMIN);
    assert!(row["SystemModstamp"].as_str().unwrap() > stamp.as_str());
    assert_eq!(row["CreatedById"], USER_STANDARD);

    // POST with ?_HttpMethod=PATCH for clients that cannot send PATCH; 15-character ids work too.
    let (status, _) = admin
        .send(
            Method::POST,
            &format!("sobjects/Opportunity/{}?_HttpMethod=PATCH", &id[..15]),
            Some(json!({ "Description": "via POST" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        sb.salesforce().row("Opportunity", &id).unwrap()["Description"],
        "via POST"
    );

    let (status, _) = admin
        .send(Method::DELETE, &format!("sobjects/Opportunity/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = admin.get(&format!("sobjects/Opportunity/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!([{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}])
    );
    let kept = sb.salesforce().row("Opportunity", &id).unwrap();
    assert_eq!(kept["IsDeleted"], true);
}

#[tokio::test]
async fn writes_are_checked_as_salesforce_checks_them() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    let cases = [
        (json!({ "Name": "x" }), "REQUIRED_FIELD_MISSING"),
        (
            json!({ "Id": OPPORTUNITY_READY, "Name": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01" }),
            "INVALID_FIELD",
        ),
        (
            json!({ "Nmae": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01" }),
            "INVALID_FIELD",
        ),
        (
            json!({ "Name": "x", "StageName": "Dreaming", "CloseDate": "2027-01-01" }),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        (
            json!({ "Name": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01", fields::HELP: "Please" }),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        (
            json!({ "Name": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01", "CurrencyIsoCode": "XYZ" }),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ),
        (
            json!({ "Name": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01", "IsWon": true }),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
        ),
        (
            json!({ "Name": "x", "StageName": "Prospecting", "CloseDate": "31/01/2027" }),
            "JSON_PARSER_ERROR",
        ),
        (
            json!({ "Name": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01", fields::REFERRAL_ID: "r".repeat(101) }),
            "STRING_TOO_LONG",
        ),
        (
            json!({ "Name": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01", "AccountId": "0015J0000000999QAA" }),
            "INVALID_CROSS_REFERENCE_KEY",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) = api
            .send(Method::POST, "sobjects/Opportunity", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&answer), code, "{body}: {answer}");
    }
    let (_, answer) = api
        .send(
            Method::POST,
            "sobjects/Opportunity",
            Some(json!({ "Description": "x" })),
        )
        .await;
    assert_eq!(
        answer[0]["message"],
        "Required fields are missing: [Name, StageName, CloseDate]"
    );
    assert_eq!(
        answer[0]["fields"],
        json!(["Name", "StageName", "CloseDate"])
    );
    let (_, answer) = api
        .send(
            Method::POST,
            "sobjects/Opportunity",
            Some(json!({ "Id": "006", "Name": "x" })),
        )
        .await;
    assert_eq!(
        answer[0]["message"],
        "The Id field should not be specified in the sobject data."
    );

    // With products, the amount is theirs: a write to it is ignored, silently.
    let (status, _) = api
        .send(
            Method::PATCH,
            &format!("sobjects/Opportunity/{OPPORTUNITY_WITH_PRODUCTS}"),
            Some(json!({ "Amount": 1, "Description": "d" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let row = sb
        .salesforce()
        .row("Opportunity", OPPORTUNITY_WITH_PRODUCTS)
        .unwrap();
    assert_eq!(row["Amount"], 36000.0);
    assert_eq!(row["Description"], "d");
    let (_, body) = api.get("sobjects/Opportunity/006000000000000AAA").await;
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn upsert_by_referral_identifier() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    let path = format!("sobjects/Opportunity/{}/REF-1", fields::REFERRAL_ID);
    let (status, body) = api
        .send(
            Method::PATCH,
            &path,
            Some(opportunity("From Partner Center")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(
        sb.salesforce().row("Opportunity", &id).unwrap()[fields::REFERRAL_ID],
        "REF-1"
    );
    let (status, _) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "Description": "again" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    sb.salesforce()
        .set_settings(cosell_sandbox::salesforce::Settings {
            upsert_update_200: true,
            ..sb.salesforce().settings()
        });
    let (status, body) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "Description": "third" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["created"], false);
    sb.salesforce().insert("Opportunity", json!({ "Name": "Twin", "StageName": "Prospecting", "CloseDate": "2027-01-01", fields::REFERRAL_ID: "REF-1" }));
    let (status, body) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "Description": "which?" })),
        )
        .await;
    assert_eq!(status, StatusCode::MULTIPLE_CHOICES);
    assert_eq!(body.as_array().unwrap().len(), 2);
    let (status, _) = api
        .send(
            Method::PATCH,
            "sobjects/Opportunity/Name/x",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn describe_shows_only_what_the_org_has() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    let names = |body: &Value| -> Vec<String> {
        body["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, opp) = api.get("sobjects/Opportunity/describe").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opp["name"], "Opportunity");
    let sync = opp["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == fields::SYNC)
        .unwrap();
    assert_eq!(sync["type"], "boolean");
    assert_eq!(sync["custom"], true);
    assert!(sync["label"].is_string());
    let referral = opp["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == fields::REFERRAL_ID)
        .unwrap();
    assert_eq!(referral["externalId"], true);
    assert!(names(&opp).contains(&"CurrencyIsoCode".to_string()));
    let (_, account) = api.get("sobjects/Account/describe").await;
    assert!(names(&account).contains(&"BillingCountryCode".to_string()));

    sb.salesforce().set_multi_currency(false);
    sb.salesforce().set_state_country_picklists(false);
    let (_, opp) = api.get("sobjects/Opportunity/describe").await;
    assert!(!names(&opp).contains(&"CurrencyIsoCode".to_string()));
    let (_, account) = api.get("sobjects/Account/describe").await;
    assert!(!names(&account).contains(&"BillingCountryCode".to_string()));
    assert!(names(&account).contains(&"BillingCountry".to_string()));
}

#[tokio::test]
async fn switches_change_what_exists() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    // With picklists on, a code sets the country's name and a typed name sets the code.
    let id = sb.salesforce().insert(
        "Account",
        json!({ "Name": "Coho Winery", "BillingCountryCode": "FR" }),
    );
    assert_eq!(
        sb.salesforce().row("Account", &id).unwrap()["BillingCountry"],
        "France"
    );
    let (status, body) = api
        .send(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({ "BillingCountry": "germany" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let row = sb.salesforce().row("Account", &id).unwrap();
    assert_eq!(
        (
            row["BillingCountryCode"].as_str(),
            row["BillingCountry"].as_str()
        ),
        (Some("DE"), Some("Germany"))
    );
    let (_, body) = api
        .send(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({ "BillingCountry": "Atlantis" })),
        )
        .await;
    assert_eq!(error_code(&body), "FIELD_INTEGRITY_EXCEPTION");
    // The seeded free-text country was never converted.
    let rows = api.records(&format!("SELECT BillingCountry, BillingCountryCode FROM Account WHERE Id = '{ACCOUNT_WIDE_WORLD}'")).await;
    assert_eq!(
        (
            rows[0]["BillingCountry"].as_str(),
            &rows[0]["BillingCountryCode"]
        ),
        (Some("U.K."), &Value::Null)
    );

    sb.salesforce().set_multi_currency(false);
    sb.salesforce().set_state_country_picklists(false);
    let (status, body) = api
        .query("SELECT Id, CurrencyIsoCode FROM Opportunity")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "INVALID_FIELD");
    let (_, body) = api.query("SELECT IsoCode FROM CurrencyType").await;
    assert_eq!(error_code(&body), "INVALID_TYPE");
    let (_, body) = api.query("SELECT BillingCountryCode FROM Account").await;
    assert_eq!(error_code(&body), "INVALID_FIELD");
    let (_, body) = api
        .send(Method::POST, "sobjects/Opportunity", Some(json!({ "Name": "x", "StageName": "Prospecting", "CloseDate": "2027-01-01", "CurrencyIsoCode": "USD" })))
        .await;
    assert_eq!(error_code(&body), "INVALID_FIELD");
    let org = api
        .records("SELECT DefaultCurrencyIsoCode FROM Organization")
        .await;
    assert_eq!(org[0]["DefaultCurrencyIsoCode"], "USD");
    let (status, _) = api
        .send(
            Method::PATCH,
            &format!("sobjects/Account/{id}"),
            Some(json!({ "BillingCountry": "Atlantis" })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "free text without picklists"
    );
}

#[tokio::test]
async fn control_api_acts_as_a_salesforce_user() {
    let sb = sandbox().await;
    let control = format!("{}/_control/salesforce", sb.control_url());
    let rows: Value = client(&sb)
        .get(format!("{control}/Opportunity"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter().all(|r| r[fields::SYNC] == false),
        "nothing shared yet"
    );
    let r = client(&sb)
        .post(format!("{control}/Opportunity"))
        .json(&json!({ "Name": "Scripted", "StageName": "Qualification", "CloseDate": "2027-03-01", "OwnerId": USER_STANDARD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let row: Value = client(&sb)
        .patch(format!("{control}/Opportunity/{id}"))
        .json(&json!({ fields::SYNC: true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(row[fields::SYNC], true);
    assert_eq!(row["OwnerId"], USER_STANDARD);
    assert_eq!(row["LastModifiedById"], USER_ADMIN);
    let bad = client(&sb)
        .post(format!("{control}/Opportunity"))
        .json(&json!({ "Name": "No stage" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let gone = client(&sb)
        .delete(format!("{control}/Opportunity/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let rows: Value = client(&sb)
        .get(format!("{control}/Opportunity"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 6, "live records only");
    let settings: Value = client(&sb)
        .post(format!("{control}/settings"))
        .json(&json!({ "multi_currency": false, "refresh_rotation": true }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["multi_currency"], false);
    assert_eq!(settings["refresh_rotation"], true);
    assert_eq!(settings["state_country_picklists"], true, "untouched");
    assert_eq!(
        client(&sb)
            .get(format!("{control}/Nothing"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}
