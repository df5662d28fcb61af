//! The client against a tiny in-process stub of Salesforce: paging, composite, the token endpoint and the
//! identity URL over real HTTP. Behaviour in depth is the sandbox emulator's job; this only checks that
//! the requests go where they should and the answers are read as documented.

use super::*;
use crate::clients::http::CallError;
use crate::clients::tls::TlsTrust;
use crate::crypto::Secret;
use axum::extract::{Form, Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const LIMIT: &str = "Sforce-Limit-Info";

async fn stub() -> String {
    let app = Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/id/{org}/{user}", get(identity))
        .route("/services/data/v62.0/query", get(query_first))
        .route("/services/data/v62.0/query/{locator}", get(query_more))
        .route(
            "/services/data/v62.0/sobjects/Opportunity/{id}",
            get(missing),
        )
        .route("/services/data/v62.0/composite", post(composite));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn token(Form(f): Form<HashMap<String, String>>) -> axum::response::Response {
    let base = json!({
        "access_token": "00D!access", "signature": "sig=", "scope": "refresh_token api",
        "instance_url": "http://127.0.0.1:1", "id": "http://127.0.0.1:1/id/00D000000000001AAA/005000000000001AAA",
        "token_type": "Bearer", "issued_at": "1708050000000"
    });
    match (f["grant_type"].as_str(), f.get("refresh_token").map(String::as_str)) {
        ("authorization_code", _) => {
            assert_eq!(f["code"], "the-code");
            assert_eq!(f["code_verifier"], "the-verifier");
            assert_eq!(f["redirect_uri"], "http://127.0.0.1:3000/cb");
            assert_eq!(f["client_secret"], "s3cret");
            let mut body = base;
            body["refresh_token"] = json!("5Aep.rt");
            Json(body).into_response()
        }
        ("refresh_token", Some("rt-ok")) => Json(base).into_response(),
        ("refresh_token", Some("rt-revoked")) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "expired access/refresh token"})),
        )
            .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/html")],
            "<html>maintenance</html>",
        )
            .into_response(),
    }
}

async fn identity(
    headers: HeaderMap,
    Path((org, user)): Path<(String, String)>,
) -> axum::response::Response {
    if headers["authorization"] != "Bearer 00D!access" {
        return (StatusCode::FORBIDDEN, "Bad_OAuth_Token").into_response();
    }
    Json(
        json!({"user_id": user, "organization_id": org, "username": "admin@contoso.test",
        "display_name": "Adele Vance", "email": "adele@contoso.test"}),
    )
    .into_response()
}

async fn query_first(Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    assert_eq!(
        q["q"],
        "SELECT Id FROM Opportunity WHERE Name = 'O\\'Brien'"
    );
    (
        [(LIMIT, "api-usage=5/15000")],
        Json(json!({"totalSize": 3, "done": false,
            "nextRecordsUrl": "/services/data/v62.0/query/01gRO0000016PIAYA2-2",
            "records": [{"attributes": {"type": "Opportunity"}, "Id": "006000000000001AAA"},
                        {"attributes": {"type": "Opportunity"}, "Id": "006000000000002AAA"}]})),
    )
}

async fn query_more(
    Path(locator): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    assert_eq!(locator, "01gRO0000016PIAYA2-2");
    assert!(q.is_empty(), "nextRecordsUrl is followed as is");
    (
        [(
            LIMIT,
            "api-usage=6/15000; per-app-api-usage=2/250(appName=cosell)",
        )],
        Json(json!({"totalSize": 3, "done": true,
            "records": [{"attributes": {"type": "Opportunity"}, "Id": "006000000000003AAA"}]})),
    )
}

async fn missing() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        [(LIMIT, "api-usage=7/15000")],
        Json(
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        ),
    )
}

async fn composite(Json(body): Json<Value>) -> Json<Value> {
    assert_eq!(body["allOrNone"], true);
    let subs = body["compositeRequest"].as_array().unwrap();
    let failing = subs.iter().any(|s| s["referenceId"] == "bad");
    Json(json!({"compositeResponse": subs.iter().map(|s| {
        let reference = s["referenceId"].clone();
        if !failing {
            json!({"body": {"id": "001000000000001AAA", "success": true, "errors": []},
                   "httpHeaders": {}, "httpStatusCode": 201, "referenceId": reference})
        } else if reference == "bad" {
            json!({"body": [{"errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Close date in the past", "fields": []}],
                   "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference})
        } else {
            json!({"body": [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed."}],
                   "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference})
        }
    }).collect::<Vec<_>>()}))
}

#[tokio::test]
async fn queries_follow_next_records_url_and_track_usage() {
    let base = stub().await;
    let client = SalesforceClient::new(reqwest::Client::new());
    let token = Secret::new("00D!access");
    assert_eq!(client.last_usage(), None);
    let soql = format!(
        "SELECT Id FROM Opportunity WHERE Name = {}",
        soql_literal("O'Brien")
    );
    let records = client
        .query(&token, &format!("{base}/"), &soql)
        .await
        .unwrap();
    assert_eq!(records.requests, 2);
    let ids: Vec<&str> = records
        .records
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "006000000000001AAA",
            "006000000000002AAA",
            "006000000000003AAA"
        ]
    );
    assert_eq!(
        client.last_usage(),
        Some(ApiUsage {
            used: 6,
            max: 15000
        })
    );

    // A 404 is None, and its usage header still counts.
    let shared = client.clone();
    assert_eq!(
        client
            .get(
                &token,
                &base,
                "Opportunity",
                "006000000000009AAA",
                &["Name"]
            )
            .await,
        Ok(None)
    );
    assert_eq!(
        shared.last_usage(),
        Some(ApiUsage {
            used: 7,
            max: 15000
        })
    );
}

#[tokio::test]
async fn composite_answers_come_back_in_order_or_as_the_first_real_error() {
    let base = stub().await;
    let client = SalesforceClient::new(reqwest::Client::new());
    let token = Secret::new("00D!access");
    let mut fields = Map::new();
    fields.insert("Name".into(), json!("Contoso"));
    let ok = client
        .composite(
            &token,
            &base,
            &[Subrequest::create("Account", "refAccount", &fields)],
        )
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(
        (ok[0].status, ok[0].reference_id.as_str()),
        (201, "refAccount")
    );
    assert_eq!(ok[0].body["id"], "001000000000001AAA");

    let failed = client
        .composite(
            &token,
            &base,
            &[
                Subrequest::create("Account", "refAccount", &fields),
                Subrequest::update("Opportunity", "006000000000001AAA", "bad", &fields),
            ],
        )
        .await;
    assert_eq!(
        failed,
        Err(CallError::Rejected {
            status: 400,
            message: "bad: FIELD_CUSTOM_VALIDATION_EXCEPTION: Close date in the past".into()
        })
    );
}

#[tokio::test]
async fn the_token_endpoint_grants_refreshes_and_refuses() {
    let base = stub().await;
    let oauth = SalesforceOAuth::new(
        &base,
        "key",
        &Secret::new("s3cret"),
        "http://127.0.0.1:3000/cb",
        &TlsTrust::public_roots(),
    )
    .unwrap();

    let grant = oauth
        .exchange_code("the-code", &Secret::new("the-verifier"))
        .await
        .unwrap();
    assert_eq!(
        grant.refresh_token.as_ref().map(Secret::expose),
        Some("5Aep.rt")
    );
    assert_eq!(grant.issued_at_ms, Some(1708050000000));

    let refreshed = oauth.refresh(&Secret::new("rt-ok")).await.unwrap();
    assert!(refreshed.refresh_token.is_none());
    assert_eq!(refreshed.instance_url, "http://127.0.0.1:1");

    let revoked = oauth.refresh(&Secret::new("rt-revoked")).await.unwrap_err();
    assert_eq!(
        revoked,
        AuthError::Refused {
            error: "invalid_grant".into(),
            description: "expired access/refresh token".into()
        }
    );
    assert_eq!(
        revoked.diagnosis(),
        crate::domain::connection::Diagnosis::GrantRevoked
    );

    let down = oauth.refresh(&Secret::new("rt-boom")).await.unwrap_err();
    assert!(matches!(down, AuthError::Unreachable(_)), "{down:?}");
    assert_eq!(
        down.diagnosis(),
        crate::domain::connection::Diagnosis::Unreachable
    );
}

#[tokio::test]
async fn the_identity_url_names_the_user_and_a_bad_token_asks_for_a_refresh() {
    let base = stub().await;
    let oauth = SalesforceOAuth::new(
        &base,
        "key",
        &Secret::new("s3cret"),
        "http://127.0.0.1:3000/cb",
        &TlsTrust::public_roots(),
    )
    .unwrap();
    let url = format!("{base}/id/00D000000000001AAA/005000000000001AAA");
    let me = oauth
        .identity(&Secret::new("00D!access"), &url)
        .await
        .unwrap();
    assert_eq!(me.user_id, "005000000000001AAA");
    assert_eq!(me.organization_id, "00D000000000001AAA");
    assert_eq!(me.display_name, "Adele Vance");
    assert_eq!(me.first_name, None);
    assert_eq!(
        oauth.identity(&Secret::new("stale"), &url).await,
        Err(CallError::Unauthorized("Bad_OAuth_Token".into()))
    );
}
