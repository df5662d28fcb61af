//! The Salesforce emulator's SOQL (`query`, `queryAll`, paging) and composite requests
//! (shared/reference/crm-apis.md §3.6, §3.10–3.11; emulator-checklist.md §5), over real HTTP.

mod common;

use common::salesforce::{Api, error_code};
use common::{client, sandbox};
use cosell_sandbox::salesforce::{
    ACCOUNT_TAILSPIN, OPPORTUNITY_READY, USER_ADMIN, USER_STANDARD, fields,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn soql_relationships_operators_and_order() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    let rows = api
        .records("SELECT Name, Account.Name, Account.BillingCountryCode, Owner.Email, Owner.Name FROM Opportunity WHERE StageName != 'Closed Won' AND Account.Name LIKE 'north%' ORDER BY Amount DESC")
        .await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["Name"], "Northwind Azure migration");
    assert_eq!(rows[0]["Account"]["Name"], "Northwind Traders");
    assert_eq!(rows[0]["Account"]["BillingCountryCode"], "US");
    assert_eq!(rows[0]["Account"]["attributes"]["type"], "Account");
    assert!(rows[0]["Owner"]["Email"].as_str().unwrap().contains('@'));
    assert!(rows[0].get("Id").is_none(), "only what is selected");

    let rows = api.records(&format!("SELECT Id, Account.Name FROM Contact WHERE AccountId = null OR AccountId IN ('{ACCOUNT_TAILSPIN}')")).await;
    assert!(rows.is_empty(), "Tailspin has no contacts");
    let id = sb
        .salesforce()
        .insert("Contact", json!({ "LastName": "Loner" }));
    let rows = api
        .records("SELECT Id, Account.Name FROM Contact WHERE LastName = 'LONER'")
        .await;
    assert_eq!(rows[0]["Id"], id, "string comparison is case-insensitive");
    assert_eq!(rows[0]["Account"], Value::Null);

    let rows = api
        .records("SELECT Name FROM Opportunity WHERE (Amount > 40000 AND Amount <= 120000) AND NOT CurrencyIsoCode IN ('GBP') ORDER BY Name ASC LIMIT 2")
        .await;
    let names: Vec<&str> = rows.iter().map(|r| r["Name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Fabrikam data platform", "Tailspin Copilot rollout"]
    );
    let rows = api
        .records(&format!(
            "SELECT Name FROM Opportunity WHERE {} NOT IN ('ProofOfConceptOrDemo') AND {} != null",
            fields::HELP,
            fields::HELP
        ))
        .await;
    assert_eq!(rows.len(), 1);
    let rows = api
        .records("SELECT Name FROM Opportunity WHERE Name LIKE '%\\'%' OR Description = 'It\\\\s'")
        .await;
    assert!(rows.is_empty());
    let rows = api
        .records(&format!(
            "SELECT Name FROM Opportunity WHERE {} = null ORDER BY CloseDate NULLS LAST",
            fields::SOLUTIONS
        ))
        .await;
    assert_eq!(rows[0]["Name"], "Fabrikam data platform");
    let count = api
        .query("SELECT COUNT() FROM Opportunity WHERE CloseDate > 2000-01-01")
        .await
        .1;
    assert_eq!(
        (
            count["totalSize"].as_u64(),
            count["records"].as_array().map(Vec::len)
        ),
        (Some(6), Some(0))
    );

    // Permission checks, as a connection test makes them.
    let users = api
        .records(&format!("SELECT Id, Name, Profile.Name, Profile.PermissionsModifyAllData FROM User WHERE Id = '{USER_STANDARD}'"))
        .await;
    assert_eq!(users[0]["Profile"]["Name"], "Standard User");
    assert_eq!(users[0]["Profile"]["PermissionsModifyAllData"], false);
    let sets = api
        .records(&format!("SELECT PermissionSet.Name, PermissionSet.IsOwnedByProfile, PermissionSet.PermissionsModifyAllData, PermissionSet.PermissionsApiEnabled FROM PermissionSetAssignment WHERE AssigneeId = '{USER_STANDARD}'"))
        .await;
    assert_eq!(sets.len(), 2);
    assert!(
        sets.iter()
            .all(|s| s["PermissionSet"]["PermissionsModifyAllData"] == false)
    );
    assert!(
        sets.iter()
            .any(|s| s["PermissionSet"]["IsOwnedByProfile"] == true)
    );
    let admins = api
        .records(&format!("SELECT PermissionSet.PermissionsModifyAllData FROM PermissionSetAssignment WHERE AssigneeId = '{USER_ADMIN}' AND PermissionSet.IsOwnedByProfile = true"))
        .await;
    assert_eq!(admins[0]["PermissionSet"]["PermissionsModifyAllData"], true);
    let stages = api.records("SELECT MasterLabel, IsClosed, IsWon FROM OpportunityStage WHERE IsActive = true ORDER BY SortOrder").await;
    assert_eq!(stages.len(), 10);
    assert_eq!(stages[8]["MasterLabel"], "Closed Won");
    let currencies = api
        .records("SELECT IsoCode FROM CurrencyType WHERE IsCorporate = true")
        .await;
    assert_eq!(currencies[0]["IsoCode"], "USD");
}

#[tokio::test]
async fn soql_polls_on_system_modstamp() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    let before = sb
        .salesforce()
        .row("Opportunity", OPPORTUNITY_READY)
        .unwrap()["SystemModstamp"]
        .as_str()
        .unwrap()
        .to_string();
    sb.clock().advance(5);
    sb.salesforce()
        .update(
            "Opportunity",
            OPPORTUNITY_READY,
            json!({ fields::SYNC: true }),
        )
        .unwrap();
    let since = before.replace(".000+0000", "Z");
    let rows = api.records(&format!("SELECT Id, SystemModstamp FROM Opportunity WHERE SystemModstamp > {since} ORDER BY SystemModstamp")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Id"], OPPORTUNITY_READY);
    let rows = api
        .records(&format!(
            "SELECT Id FROM Opportunity WHERE SystemModstamp > {before}"
        ))
        .await;
    assert_eq!(rows.len(), 1, "Salesforce's own format is a literal too");
}

#[tokio::test]
async fn soql_refuses_what_it_does_not_understand() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    for (soql, code) in [
        (
            "SELECT Id FROM Opportunity WHERE Name = 'a' AND Amount > 1 OR Amount < 0",
            "MALFORMED_QUERY",
        ),
        (
            "SELECT Id FROM Opportunity LIMIT 5 OFFSET 5",
            "MALFORMED_QUERY",
        ),
        (
            "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
            "MALFORMED_QUERY",
        ),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate = TODAY",
            "MALFORMED_QUERY",
        ),
        ("SELECT COUNT(Id) FROM Opportunity", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM Opportunity GROUP BY StageName",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY"),
        ("SELECT Nope FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Accnt.Name FROM Opportunity", "INVALID_FIELD"),
        (
            "SELECT Id FROM Opportunity WHERE CloseDate > '2026-01-01'",
            "INVALID_FIELD",
        ),
        (
            "SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-01-01",
            "INVALID_FIELD",
        ),
        (
            "SELECT Id FROM Opportunity WHERE Id = 'abc'",
            "INVALID_QUERY_FILTER_OPERATOR",
        ),
        ("SELECT Id FROM Opportunty", "INVALID_TYPE"),
    ] {
        let (status, body) = api.query(soql).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{soql}");
        assert_eq!(error_code(&body), code, "{soql}: {body}");
    }
    let (_, body) = api.query("SELECT Id FROM Opportunity WHERE").await;
    let message = body[0]["message"].as_str().unwrap();
    assert!(
        message.contains("ERROR at Row:1:Column:33") && message.contains("unexpected token: <EOF>"),
        "{message}"
    );
}

#[tokio::test]
async fn paging_with_batch_size_and_query_all_with_deletes() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    for n in 0..450 {
        sb.salesforce().insert(
            "Contact",
            json!({ "LastName": format!("Bulk {n:03}"), "AccountId": ACCOUNT_TAILSPIN }),
        );
    }
    let soql = "SELECT Id, LastName FROM Contact WHERE LastName LIKE 'Bulk%' ORDER BY LastName";
    let first = client(&sb)
        .get(format!("{}/query", api.base))
        .query(&[("q", soql)])
        .header("Sforce-Query-Options", "batchSize=200")
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    let mut page: Value = first.json().await.unwrap();
    assert_eq!(page["totalSize"], 450);
    let mut seen = Vec::new();
    loop {
        let records = page["records"].as_array().unwrap();
        assert!(records.len() <= 200);
        seen.extend(
            records
                .iter()
                .map(|r| r["LastName"].as_str().unwrap().to_string()),
        );
        if page["done"] == true {
            assert!(page.get("nextRecordsUrl").is_none());
            break;
        }
        let next = page["nextRecordsUrl"].as_str().unwrap().to_string();
        assert!(next.starts_with("/services/data/v62.0/query/01g"), "{next}");
        page = client(&sb)
            .get(format!("{}{next}", sb.base_url()))
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(seen.len(), 450);
    assert_eq!(seen[449], "Bulk 449");
    // Without the header, one batch of up to 2,000.
    let (_, body) = api.query(soql).await;
    assert_eq!(body["done"], true);

    let (_, body) = api
        .send(
            Method::DELETE,
            &format!("sobjects/Account/{ACCOUNT_TAILSPIN}"),
            None,
        )
        .await;
    assert_eq!(body, Value::Null);
    assert_eq!(
        api.records(soql).await.len(),
        0,
        "deleting an account deletes its contacts"
    );
    let all = client(&sb)
        .get(format!("{}/queryAll", api.base))
        .query(&[(
            "q",
            "SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true",
        )])
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(all["records"][0]["Id"], ACCOUNT_TAILSPIN);
    assert_eq!(all["records"][0]["IsDeleted"], true);
    assert!(
        api.records("SELECT Id FROM Account WHERE IsDeleted = true")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn composite_resolves_references_and_rolls_back_all_or_none() {
    let sb = sandbox().await;
    let api = Api::new(&sb, "admin").await;
    let used = sb.salesforce().api_used();
    let request = |all_or_none: bool, stage: &str| {
        json!({ "allOrNone": all_or_none, "compositeRequest": [
            { "method": "POST", "url": "/services/data/v62.0/sobjects/Account", "referenceId": "refAccount",
              "body": { "Name": "Composite Co", "BillingCountryCode": "NL" } },
            { "method": "POST", "url": "/services/data/v62.0/sobjects/Opportunity", "referenceId": "refOpp",
              "body": { "Name": "Composite deal", "StageName": stage, "CloseDate": "2027-02-01", "AccountId": "@{refAccount.id}" } },
            { "method": "GET", "url": "/services/data/v62.0/sobjects/Opportunity/@{refOpp.id}?fields=Name,AccountId", "referenceId": "refRead" },
        ]})
    };
    let (status, body) = api
        .send(
            Method::POST,
            "composite",
            Some(request(true, "Prospecting")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let responses = body["compositeResponse"].as_array().unwrap();
    assert_eq!(responses[0]["httpStatusCode"], 201);
    assert!(responses[0]["httpHeaders"]["Location"].is_string());
    assert_eq!(responses[2]["httpStatusCode"], 200);
    assert_eq!(
        responses[2]["body"]["AccountId"],
        responses[0]["body"]["id"]
    );
    assert_eq!(responses[2]["referenceId"], "refRead");
    assert_eq!(
        sb.salesforce().api_used(),
        used + 1,
        "the whole composite is one API call"
    );

    let accounts = sb.salesforce().rows("Account").len();
    let (status, body) = api
        .send(Method::POST, "composite", Some(request(true, "Dreaming")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let codes: Vec<(u64, &str)> = body["compositeResponse"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["httpStatusCode"].as_u64().unwrap(),
                r["body"][0]["errorCode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [
            (400, "PROCESSING_HALTED"),
            (400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
            (400, "PROCESSING_HALTED")
        ]
    );
    assert_eq!(
        sb.salesforce().rows("Account").len(),
        accounts,
        "rolled back"
    );

    let (_, body) = api
        .send(Method::POST, "composite", Some(request(false, "Dreaming")))
        .await;
    let responses = body["compositeResponse"].as_array().unwrap();
    assert_eq!(responses[0]["httpStatusCode"], 201);
    assert_eq!(
        responses[2]["body"][0]["errorCode"], "PROCESSING_HALTED",
        "refers to a failed subrequest"
    );
    assert_eq!(sb.salesforce().rows("Account").len(), accounts + 1);

    let (_, body) = api
        .send(Method::POST, "composite", Some(json!({ "compositeRequest": [
            { "method": "GET", "url": "/services/data/v62.0/limits", "referenceId": "r", "httpHeaders": { "Authorization": "Bearer x" } }
        ]})))
        .await;
    assert_eq!(body["compositeResponse"][0]["httpStatusCode"], 400);
    let too_many: Vec<Value> = (0..26)
        .map(|i| json!({ "method": "GET", "url": "/services/data/v62.0/limits", "referenceId": format!("r{i}") }))
        .collect();
    let (status, _) = api
        .send(
            Method::POST,
            "composite",
            Some(json!({ "compositeRequest": too_many })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
