//! Salesforce REST calls over HTTPS as a demo user, for the Salesforce emulator tests.

use super::client;
use cosell_sandbox::Sandbox;
use cosell_sandbox::salesforce::ACCOUNT_NORTHWIND;
use cosell_sandbox::testing::salesforce_access_token;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub struct Api {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn new(sb: &Sandbox, user: &str) -> Api {
        Api {
            base: format!("{}/services/data/v62.0", sb.base_url()),
            token: salesforce_access_token(sb, user).await,
            http: client(sb),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .http
            .clone()
            .request(method, format!("{}/{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, None).await
    }

    pub async fn query(&self, soql: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .clone()
            .get(format!("{}/query", self.base))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// The records of a query that must succeed.
    pub async fn records(&self, soql: &str) -> Vec<Value> {
        let (status, body) = self.query(soql).await;
        assert_eq!(status, StatusCode::OK, "{soql}: {body}");
        body["records"].as_array().unwrap().clone()
    }
}

pub fn error_code(body: &Value) -> &str {
    body[0]["errorCode"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error array: {body}"))
}

pub fn opportunity(name: &str) -> Value {
    json!({ "Name": name, "StageName": "Prospecting", "CloseDate": "2027-01-31", "AccountId": ACCOUNT_NORTHWIND })
}
