//! The Partner Center Referrals API emulator against partner-center.md §1, over real HTTP.

mod common;

use common::*;
use cosell_sandbox::Sandbox;
use reqwest::StatusCode;
use serde_json::{Value, json};

const SCOPE: &str = "https://api.partner.microsoft.com/user_impersonation offline_access";

struct Api {
    sb: Sandbox,
    token: String,
    http: reqwest::Client,
}

impl Api {
    async fn new() -> Api {
        let sb = sandbox().await;
        let token = access_token(&sb, "admin", SCOPE).await;
        let http = client(&sb);
        Api { sb, token, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1.0/engagements/referrals{path}", self.sb.base_url())
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http.get(url).bearer_auth(&self.token)
    }

    /// The referral list, asked for with another token than the admin's.
    async fn list_as(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(""))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn create(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(""))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn created(&self, body: &Value) -> Value {
        let r = self.create(body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }

    async fn patch(&self, id: &str, ops: Value, if_match: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .patch(self.url(&format!("/{id}")))
            .bearer_auth(&self.token)
            .json(&ops);
        if let Some(etag) = if_match {
            req = req.header("if-match", etag);
        }
        req.send().await.unwrap()
    }

    async fn fetch(&self, id: &str) -> Value {
        self.get(&self.url(&format!("/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn count(&self) -> u64 {
        let body: Value = self
            .get(&self.url(""))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["@odata.count"].as_u64().unwrap()
    }
}

fn deal(name: &str) -> Value {
    json!({
        "name": name,
        "type": "Independent",
        "externalReferenceId": "crm-1",
        "customerProfile": {
            "name": "Contoso Customer Inc",
            "address": { "addressLine1": "One Microsoft Way", "city": "Redmond", "state": "WA",
                         "postalCode": "98052", "country": "US" },
            "team": [{ "firstName": "Sue", "lastName": "Smith", "phoneNumber": "1234567890",
                       "email": "sue.smith@contoso.com" }]
        },
        "consent": { "consentToToShareInfoWithOthers": true, "consentToContact": true,
                     "consentToShareReferralWithMicrosoftSellers": true },
        "details": { "dealValue": 50000, "currency": "USD", "closingDateTime": "2027-11-14T00:00:00Z",
                     "requirements": { "solutions": [{ "id": "SOL-34104-EBB", "type": "Name", "name": "Contoso ERP" }] } },
        "team": [{ "firstName": "John", "lastName": "Doe", "phoneNumber": "1231231234", "email": "john.doe@contoso.com" }],
        "inviteContext": { "assistanceRequestCode": "ProofOfConceptOrDemo" }
    })
}

#[tokio::test]
async fn tokens_must_be_for_this_api_and_a_referrals_user() {
    let api = Api::new().await;
    let no_token = api.http.get(api.url("")).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert!(
        no_token.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // A Microsoft Graph token (OIDC scopes only), and one for the webhook host: wrong audiences.
    for scope in [
        "openid profile",
        "https://api.partnercenter.microsoft.com/user_impersonation",
    ] {
        let other = access_token(&api.sb, "admin", scope).await;
        let r = api.list_as(&other).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{scope}");
    }
    // Right audience, but Megan holds no Partner Center referrals role.
    let megan = access_token(&api.sb, "viewer", SCOPE).await;
    let r = api.list_as(&megan).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Expired: move the clock past the token's lifetime.
    api.sb.clock().advance(3600);
    assert_eq!(
        api.get(&api.url("")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_valid_referral_is_created_with_the_server_fields() {
    let api = Api::new().await;
    let r = api.created(&deal("Contoso ERP rollout")).await;
    for field in [
        "id",
        "engagementId",
        "organizationId",
        "organizationName",
        "createdDateTime",
        "updatedDateTime",
        "acceptedDateTime",
    ] {
        assert!(r[field].is_string(), "{field} in {r}");
    }
    assert_eq!(r["status"], "Active");
    assert_eq!(r["substatus"], "Accepted");
    assert_eq!(r["direction"], "Outgoing");
    let etag = r["eTag"].as_str().unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "quoted strong ETag: {etag}"
    );
    assert!(
        r["links"]["self"]["uri"]
            .as_str()
            .unwrap()
            .ends_with(r["id"].as_str().unwrap())
    );
    let fetched = api.fetch(r["id"].as_str().unwrap()).await;
    assert_eq!(fetched["name"], "Contoso ERP rollout");
    assert!(fetched["@odata.context"].is_string());
}

#[tokio::test]
async fn pascal_case_input_is_accepted_and_camel_case_returned() {
    let api = Api::new().await;
    let mut body = deal("Pascal");
    body["Consent"] = body["consent"].take();
    body.as_object_mut().unwrap().remove("consent");
    let r = api.created(&body).await;
    assert_eq!(r["consent"]["consentToToShareInfoWithOthers"], true);
    assert!(r.get("Consent").is_none());
}

#[tokio::test]
async fn invalid_referrals_are_refused_with_every_problem_and_nothing_is_stored() {
    let api = Api::new().await;
    let mut bad = deal("x");
    bad.as_object_mut().unwrap().remove("consent");
    bad["customerProfile"]["address"]["country"] = "United States".into();
    bad["customerProfile"]["team"] = json!([]);
    bad["details"]["requirements"]["solutions"] = json!([]);
    let r = api.create(&bad).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let message = r.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    for needle in [
        "consent is required",
        "2-letter ISO 3166",
        "at least one solution",
        "customer contact",
    ] {
        assert!(message.contains(needle), "{needle} in {message}");
    }
    let r = api
        .http
        .post(api.url(""))
        .bearer_auth(&api.token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(api.count().await, 0);
}

#[tokio::test]
async fn a_retried_create_with_the_same_request_id_creates_once() {
    let api = Api::new().await;
    let send = || {
        api.http
            .post(api.url(""))
            .bearer_auth(&api.token)
            .header("MS-RequestId", "9a1b7c3e-0000-4000-8000-000000000001")
            .json(&deal("Once"))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    let second: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(api.count().await, 1);
}

#[tokio::test]
async fn patch_updates_with_if_match_and_answers_412_on_a_stale_etag() {
    let api = Api::new().await;
    let r = api.created(&deal("Patch me")).await;
    let id = r["id"].as_str().unwrap();
    let etag = r["eTag"].as_str().unwrap().to_string();

    // The documented sample sends dealValue as a string.
    let ok = api
        .patch(
            id,
            json!([{ "op": "replace", "path": "/details/dealValue", "value": "10000" }]),
            Some(&etag),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let now = api.fetch(id).await;
    assert_eq!(now["details"]["dealValue"], json!(10000.0));
    assert_ne!(
        now["eTag"].as_str().unwrap(),
        etag,
        "a new eTag after a change"
    );

    let stale = api
        .patch(
            id,
            json!([{ "op": "replace", "path": "/name", "value": "Lost update" }]),
            Some(&etag),
        )
        .await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(api.fetch(id).await["name"], "Patch me", "nothing changed");

    // Without If-Match there is no concurrency check; Prefer returns the referral.
    let r = api
        .http
        .patch(api.url(&format!("/{id}")))
        .bearer_auth(&api.token)
        .header("prefer", "return=representation")
        .json(&json!([{ "op": "add", "path": "/team/-", "value": { "firstName": "Jane", "lastName": "Doe", "phoneNumber": "1", "email": "jane@contoso.com" } }]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["team"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn patch_allows_only_replace_and_add_and_guards_server_fields() {
    let api = Api::new().await;
    let r = api.created(&deal("Guarded")).await;
    let id = r["id"].as_str().unwrap();
    for ops in [
        json!([{ "op": "remove", "path": "/name" }]),
        json!([{ "op": "replace", "path": "/id", "value": "mine" }]),
        json!([{ "op": "replace", "path": "/eTag", "value": "\"x\"" }]),
        json!([{ "op": "replace", "path": "/customerProfile/address/country", "value": "DE" }]),
        json!([{ "op": "replace", "path": "/nope/deeper", "value": 1 }]),
        json!({ "op": "replace" }),
    ] {
        let r = api.patch(id, ops.clone(), None).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{ops}");
    }
    assert_eq!(api.fetch(id).await["eTag"], r["eTag"], "nothing changed");
    let missing = api
        .patch("00000000-0000-0000-0000-000000000000", json!([]), None)
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn status_changes_follow_the_model_and_closed_is_final() {
    let api = Api::new().await;
    let r = api.created(&deal("Lifecycle")).await;
    let id = r["id"].as_str().unwrap();
    let back = api.patch(id, json!([{ "op": "replace", "path": "/status", "value": "New" }, { "op": "replace", "path": "/substatus", "value": "Pending" }]), None).await;
    assert_eq!(
        back.status(),
        StatusCode::BAD_REQUEST,
        "Active cannot go back to New"
    );
    let wrong_pair = api.patch(id, json!([{ "op": "replace", "path": "/status", "value": "Closed" }, { "op": "replace", "path": "/substatus", "value": "Accepted" }]), None).await;
    assert_eq!(wrong_pair.status(), StatusCode::BAD_REQUEST);
    let won = api.patch(id, json!([{ "op": "replace", "path": "/status", "value": "Closed" }, { "op": "replace", "path": "/substatus", "value": "Won" }]), None).await;
    assert_eq!(won.status(), StatusCode::NO_CONTENT);
    let closed = api.fetch(id).await;
    assert!(closed["closedDateTime"].is_string());
    let after = api
        .patch(
            id,
            json!([{ "op": "replace", "path": "/name", "value": "Too late" }]),
            None,
        )
        .await;
    assert_eq!(after.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn lists_filter_sort_select_and_page_through_opaque_next_links() {
    let api = Api::new().await;
    for i in 0..5 {
        api.created(&deal(&format!("Deal {i}"))).await;
    }
    let incoming = api.sb.partner_center().seller_creates(
        json!({ "name": "From Microsoft", "customerProfile": { "address": { "country": "DE" } } }),
    );
    assert_eq!(incoming["direction"], "Incoming");
    assert_eq!(incoming["status"], "New");

    // The documented sample for inbound co-sell.
    let url = format!(
        "{}?$top=10&$filter=(type eq 'Shared' and direction eq 'Incoming')&$orderby=createdDateTime desc",
        api.url("")
    );
    let body: Value = api.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["name"], "From Microsoft");

    let url = format!(
        "{}?$filter=customerProfile/address/country eq 'US' and team/any(t:t/email eq 'john.doe@contoso.com')&$select=id,name",
        api.url("")
    );
    let body: Value = api.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["@odata.count"], 5);
    assert_eq!(
        body["value"][0].as_object().unwrap().len(),
        2,
        "$select keeps only the named fields"
    );

    // Pages of two, followed verbatim. The documented link says http://, which the API does not
    // serve: it redirects (308) to the same URL over HTTPS, as the service's front door would.
    let mut next = Some(format!("{}?$top=2&$orderby=createdDateTime", api.url("")));
    let mut names = Vec::new();
    let mut pages = 0;
    while let Some(mut url) = next {
        if url.starts_with("http://") {
            let r = api.get(&url).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
            let to = r.headers()["location"].to_str().unwrap();
            assert_eq!(to, url.replacen("http://", "https://", 1));
            url = to.to_string();
        }
        let body: Value = api.get(&url).send().await.unwrap().json().await.unwrap();
        names.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_string()),
        );
        next = body["@odata.nextLink"].as_str().map(str::to_string);
        if let Some(link) = &next {
            assert!(
                link.starts_with("http://") && link.contains("/v1.0/referrals?$skiptoken="),
                "{link}"
            );
        }
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "Deal 0",
            "Deal 1",
            "Deal 2",
            "Deal 3",
            "Deal 4",
            "From Microsoft"
        ]
    );

    for bad in [
        "$orderby=name",
        "$filter=status ne 'New'",
        "$top=0",
        "$skiptoken=forged",
    ] {
        let r = api
            .get(&format!("{}?{bad}", api.url("")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn unanswered_incoming_referrals_expire_after_fourteen_days() {
    let api = Api::new().await;
    let r = api.sb.partner_center().seller_creates(json!({}));
    let id = r["id"].as_str().unwrap();
    api.sb.clock().advance(14 * 24 * 3600 + 1);
    // A fresh token: the old one expired with the clock.
    let token = access_token(&api.sb, "admin", SCOPE).await;
    let body: Value = api
        .http
        .get(api.url(&format!("/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "Closed");
    assert_eq!(body["substatus"], "Expired");
}

#[tokio::test]
async fn the_seller_console_creates_and_updates_over_http() {
    let api = Api::new().await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!(
            "{}/_control/partner-center/referrals",
            api.sb.control_url()
        ))
        .json(&json!({ "name": "Seller deal", "details": { "dealValue": 1200 } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["details"]["currency"], "USD",
        "defaults fill what the seller left out"
    );
    let r = http
        .patch(format!("{}/_control/partner-center/referrals/{id}", api.sb.control_url()))
        .json(&json!([{ "op": "replace", "path": "/status", "value": "Active" }, { "op": "replace", "path": "/substatus", "value": "Accepted" }]))
        .send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(api.fetch(id).await["status"], "Active");
}

#[tokio::test]
async fn injected_faults_apply_to_the_next_matching_calls_only() {
    let api = Api::new().await;
    let http = reqwest::Client::new();
    http.post(format!("{}/_control/faults", api.sb.control_url()))
        .json(&json!({ "method": "GET", "path_contains": "/engagements/referrals", "status": 429, "retry_after": 7, "times": 2 }))
        .send().await.unwrap();
    for _ in 0..2 {
        let r = api.get(&api.url("")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "7");
    }
    assert_eq!(
        api.get(&api.url("")).send().await.unwrap().status(),
        StatusCode::OK
    );

    http.post(format!("{}/_control/faults", api.sb.control_url()))
        .json(&json!({ "path_contains": "/engagements/referrals", "status": 503, "body": { "code": "ServiceUnavailable" } }))
        .send().await.unwrap();
    let r = api.create(&deal("During an outage")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        api.count().await,
        0,
        "a replaced answer never reaches the emulator"
    );
    // The control surface itself is never faulted.
    let list: Value = http
        .get(format!("{}/_control/faults", api.sb.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn app_plus_user_calls_need_mfa_since_april_2026() {
    let api = Api::new().await;
    // The documented password grant (v1) cannot do MFA: its token is refused.
    let body: Value = api
        .http
        .post(format!(
            "{}/{}/oauth2/token",
            api.sb.base_url(),
            cosell_sandbox::entra::TENANT_ID
        ))
        .form(&[
            ("client_id", cosell_sandbox::entra::DASHBOARD_CLIENT_ID),
            (
                "client_secret",
                cosell_sandbox::entra::DASHBOARD_CLIENT_SECRET,
            ),
            ("grant_type", "password"),
            ("resource", "https://api.partner.microsoft.com"),
            ("username", "adele@contoso-sandbox.onmicrosoft.com"),
            ("password", cosell_sandbox::entra::SANDBOX_PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pwd_only = body["access_token"].as_str().unwrap();
    let r = api.list_as(pwd_only).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("multi-factor")
    );
    // The interactive sign-in (authorization code) carries mfa and is accepted.
    assert_eq!(
        api.get(&api.url("")).send().await.unwrap().status(),
        StatusCode::OK
    );
}
