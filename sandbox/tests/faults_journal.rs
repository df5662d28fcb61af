//! Fault rules as a client sees them, and the request journal, over real HTTP.

mod common;

use common::{client, sandbox};
use cosell_sandbox::entra::TENANT_ID;
use cosell_sandbox::{Api, FaultKind, FaultRule, FaultTag, JournalEntry, JournalFilter, Sandbox};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// An emulated endpoint that needs no token and answers JSON.
fn discovery(sb: &Sandbox) -> String {
    format!(
        "{}/{TENANT_ID}/v2.0/.well-known/openid-configuration",
        sb.base_url()
    )
}

/// Adds a fault rule through the control API, as a separate process would.
async fn add_fault(sb: &Sandbox, rule: Value) {
    let r = client(sb)
        .post(format!("{}/_control/faults", sb.control_url()))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{rule}: {}",
        r.text().await.unwrap()
    );
}

/// The journal through the control API, with `query` as its filter.
async fn journal(sb: &Sandbox, query: &str) -> Vec<JournalEntry> {
    let r = client(sb)
        .get(format!("{}/_control/journal{query}", sb.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_reset_drops_the_connection_without_an_answer() {
    let sb = sandbox().await;
    add_fault(
        &sb,
        json!({ "method": "GET", "path_contains": "/.well-known/openid-configuration", "kind": "reset" }),
    )
    .await;
    let err = client(&sb)
        .get(discovery(&sb))
        .send()
        .await
        .expect_err("no HTTP answer");
    assert!(err.status().is_none(), "no status: {err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(
        err.is_request(),
        "a failed request, not a refused connection: {err:?}"
    );

    let r = client(&sb).get(discovery(&sb)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the rule applied once");

    let entries = sb
        .journal()
        .entries(&JournalFilter::default().path_contains("openid-configuration"));
    let seen: Vec<_> = entries.iter().map(|e| (e.status, e.fault)).collect();
    assert_eq!(
        seen,
        [(None, Some(FaultTag::Reset)), (Some(200), None)],
        "the journal shows the reset as no status"
    );
}

#[tokio::test]
async fn malformed_json_is_a_200_whose_body_does_not_parse() {
    let sb = sandbox().await;
    add_fault(
        &sb,
        json!({ "path_contains": "/openid-configuration", "kind": "malformed_json" }),
    )
    .await;
    let r = client(&sb).get(discovery(&sb)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let err = r.json::<Value>().await.expect_err("cut short");
    assert!(err.is_decode(), "{err:?}");
    let doc: Value = client(&sb)
        .get(discovery(&sb))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], sb.entra().issuer(), "the rule applied once");
}

#[tokio::test]
async fn a_gateway_error_page_is_html() {
    let sb = sandbox().await;
    add_fault(
        &sb,
        json!({ "path_contains": "/openid-configuration", "kind": "html_error_page" }),
    )
    .await;
    add_fault(
        &sb,
        json!({ "path_contains": "/openid-configuration", "kind": "html_error_page", "status": 503, "retry_after": 30 }),
    )
    .await;
    let r = client(&sb).get(discovery(&sb)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(r.headers()["content-type"], "text/html");
    let page = r.text().await.unwrap();
    assert!(page.contains("<title>502 Bad Gateway</title>"), "{page}");
    assert!(serde_json::from_str::<Value>(&page).is_err());

    let r = client(&sb).get(discovery(&sb)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "30");
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("<h1>503 Service Unavailable</h1>")
    );
}

#[tokio::test]
async fn a_slow_body_outlasts_a_short_time_out_but_not_a_long_one() {
    let sb = sandbox().await;
    sb.faults().add(
        FaultRule::new("/openid-configuration", FaultKind::SlowBody)
            .delay_ms(3_000)
            .times(2),
    );
    let impatient = cosell_sandbox::testing::client_builder(&sb)
        .timeout(Duration::from_millis(1_500))
        .build()
        .unwrap();
    let patient = cosell_sandbox::testing::client_builder(&sb)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let short = async {
        let mut r = impatient.get(discovery(&sb)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "the headers come at once");
        let first = r.chunk().await.unwrap().expect("the first half at once");
        assert!(!first.is_empty());
        r.chunk().await.expect_err("the rest comes too late")
    };
    let long = async {
        patient
            .get(discovery(&sb))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let (err, doc) = tokio::join!(short, long);
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(doc["issuer"], sb.entra().issuer(), "the whole body, late");
}

#[tokio::test]
async fn an_nth_rule_lets_the_calls_before_it_through() {
    let sb = sandbox().await;
    add_fault(
        &sb,
        json!({ "method": "GET", "path_contains": "/openid-configuration", "status": 503, "nth": 2 }),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            client(&sb)
                .get(discovery(&sb))
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::OK
        ]
    );
}

#[tokio::test]
async fn fault_rules_list_in_their_json_shape_and_nonsense_is_refused() {
    let sb = sandbox().await;
    add_fault(
        &sb,
        json!({ "path_contains": "/referrals", "kind": "slow_body", "delay_ms": 500, "nth": 3 }),
    )
    .await;
    let list: Value = client(&sb)
        .get(format!("{}/_control/faults", sb.control_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list,
        json!([{ "path_contains": "/referrals", "kind": "slow_body", "delay_ms": 500, "nth": 3, "times": 1 }])
    );
    let r = client(&sb)
        .post(format!("{}/_control/faults", sb.control_url()))
        .json(&json!({ "path_contains": "/referrals", "kind": "reset", "status": 500 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("takes no `status`"));
    assert_eq!(sb.faults().list().len(), 1, "nothing was added");
}

#[tokio::test]
async fn the_journal_records_what_each_api_was_sent_and_answered() {
    let sb = sandbox().await;
    let url = format!(
        "{}/v1.0/engagements/referrals/r-1?$select=id",
        sb.base_url()
    );
    let r = client(&sb)
        .patch(&url)
        .header("If-Match", "W/\"3\"")
        .header("MS-RequestId", "11111111-2222-3333-4444-555555555555")
        .header("MS-CorrelationId", "corr-9")
        .header("Prefer", "return=representation")
        .bearer_auth("not-a-real-token")
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    let answered = r.status().as_u16();
    client(&sb).get(discovery(&sb)).send().await.unwrap();

    let all = sb.journal().all();
    assert_eq!(all.len(), 2, "{all:?}");
    let patch = &all[0];
    assert_eq!(patch.api, Api::PartnerCenter);
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.path, "/v1.0/engagements/referrals/r-1");
    assert_eq!(patch.query.as_deref(), Some("$select=id"));
    assert_eq!(patch.if_match.as_deref(), Some("W/\"3\""));
    assert_eq!(
        patch.ms_request_id.as_deref(),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(patch.ms_correlation_id.as_deref(), Some("corr-9"));
    assert_eq!(patch.prefer.as_deref(), Some("return=representation"));
    assert!(patch.authorization);
    assert_eq!(patch.status, Some(answered));
    assert_eq!(patch.fault, None);

    let get = &all[1];
    assert_eq!(get.api, Api::Entra);
    assert!(get.seq > patch.seq);
    assert!(!get.authorization);
    assert_eq!(
        (get.query.as_deref(), get.if_match.as_deref()),
        (None, None)
    );
    assert_eq!(get.status, Some(200));

    // The same through the control API, as JSON; the token itself is nowhere.
    let raw: Value = client(&sb)
        .get(format!(
            "{}/_control/journal?api=partner_center",
            sb.control_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw[0]["api"], "partner_center");
    assert_eq!(raw[0]["if_match"], "W/\"3\"");
    assert_eq!(raw[0]["authorization"], true);
    assert_eq!(raw[0]["status"], answered);
    assert!(raw[0]["at"].is_string());
    assert!(!raw.to_string().contains("not-a-real-token"));

    // A path no emulator serves is journaled as such.
    let r = client(&sb)
        .get(format!("{}/v1.0/engagement/referrals", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let last = sb.journal().all().pop().unwrap();
    assert_eq!(
        (last.api, last.status),
        (Api::Unknown, Some(404)),
        "{last:?}"
    );
}

#[tokio::test]
async fn the_control_surface_is_not_journaled() {
    let sb = sandbox().await;
    for path in ["faults", "journal", "entra/users", "salesforce/settings"] {
        let r = client(&sb)
            .get(format!("{}/_control/{path}", sb.control_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let r = client(&sb)
        .get(format!("{}/_control/no-such-thing", sb.control_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(sb.journal().all(), [], "control calls leave no entries");
    assert_eq!(sb.journal().last_seq(), 0);
}

#[tokio::test]
async fn injected_faults_are_journaled_with_the_answer_they_made() {
    let sb = sandbox().await;
    sb.faults().add(
        FaultRule::new("/engagements/referrals", FaultKind::status(503))
            .method("POST")
            .nth(2),
    );
    let url = format!("{}/v1.0/engagements/referrals", sb.base_url());
    let mut answered = Vec::new();
    for _ in 0..3 {
        let r = client(&sb)
            .post(&url)
            .bearer_auth("not-a-real-token")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        answered.push((Some(r.status().as_u16()), r.status() == 503));
    }
    let journaled: Vec<_> = sb
        .journal()
        .entries(&JournalFilter::default().method("post"))
        .iter()
        .map(|e| (e.status, e.fault == Some(FaultTag::Status)))
        .collect();
    assert_eq!(journaled, answered);
    assert_eq!(answered[1], (Some(503), true));
    assert!(!answered[0].1 && !answered[2].1, "{answered:?}");
}

#[tokio::test]
async fn a_test_can_wait_for_a_fault_to_be_met_and_for_its_call_to_be_journaled() {
    let sb = sandbox().await;
    add_fault(
        &sb,
        json!({ "method": "GET", "path_contains": "/.well-known/openid-configuration", "delay_ms": 300, "times": 1 }),
    )
    .await;
    let faulted = JournalFilter::default()
        .path_contains("openid-configuration")
        .faulted(true);
    assert!(
        sb.journal()
            .wait_for(&faulted, Duration::from_millis(50))
            .await
            .is_empty(),
        "nothing to wait for yet: empty once the time is up"
    );
    assert!(
        !sb.faults().wait_until_used(Duration::from_millis(50)).await,
        "the rule is still waiting for its call"
    );

    let call = tokio::spawn({
        let http = client(&sb);
        let url = discovery(&sb);
        async move { http.get(url).send().await.unwrap().status() }
    });
    // The rule is used as the held call arrives, before its answer: the journal has it only once answered.
    assert!(sb.faults().wait_until_used(Duration::from_secs(20)).await);
    let seen = sb
        .journal()
        .wait_for(&faulted, Duration::from_secs(20))
        .await;
    assert_eq!(call.await.unwrap(), StatusCode::OK);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].fault, Some(FaultTag::Delay));

    client(&sb).get(discovery(&sb)).send().await.unwrap();
    assert_eq!(
        journal(&sb, "?path_contains=openid-configuration&faulted=false")
            .await
            .len(),
        1,
        "the call after it, not faulted"
    );
}

#[tokio::test]
async fn the_journal_filters_and_clears() {
    let sb = sandbox().await;
    let base = sb.base_url();
    let http = client(&sb);
    http.get(discovery(&sb)).send().await.unwrap();
    http.get(format!("{base}/v1.0/engagements/referrals"))
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/v1.0/engagements/referrals"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let mark = sb.journal().last_seq();
    http.post(format!("{base}/webhooks/v1/registration"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    http.get(format!("{base}/api/data/v9.2/accounts"))
        .send()
        .await
        .unwrap();
    http.get(format!("{base}/services/data/v62.0/limits"))
        .send()
        .await
        .unwrap();

    let paths = |entries: Vec<JournalEntry>| -> Vec<(String, String)> {
        entries.into_iter().map(|e| (e.method, e.path)).collect()
    };
    let pair = |m: &str, p: &str| (m.to_string(), p.to_string());
    assert_eq!(
        paths(journal(&sb, "?api=partner_center&method=POST").await),
        [
            pair("POST", "/v1.0/engagements/referrals"),
            pair("POST", "/webhooks/v1/registration")
        ]
    );
    assert_eq!(
        paths(journal(&sb, "?api=partner_center&path_contains=/referrals").await),
        [
            pair("GET", "/v1.0/engagements/referrals"),
            pair("POST", "/v1.0/engagements/referrals")
        ]
    );
    assert_eq!(
        paths(journal(&sb, &format!("?since={mark}")).await),
        [
            pair("POST", "/webhooks/v1/registration"),
            pair("GET", "/api/data/v9.2/accounts"),
            pair("GET", "/services/data/v62.0/limits")
        ]
    );
    assert_eq!(
        paths(
            sb.journal()
                .entries(&JournalFilter::default().api(Api::Dataverse).since(mark))
        ),
        [pair("GET", "/api/data/v9.2/accounts")]
    );
    assert_eq!(
        paths(journal(&sb, "?api=salesforce&method=get").await),
        [pair("GET", "/services/data/v62.0/limits")]
    );
    assert_eq!(journal(&sb, "").await.len(), 6);
    let r = http
        .get(format!("{base}/_control/journal?api=nowhere"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "an unknown api");

    let r = http
        .delete(format!("{base}/_control/journal"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(journal(&sb, "").await, []);
    http.get(discovery(&sb)).send().await.unwrap();
    let after = journal(&sb, "").await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].seq, 7, "numbering goes on after a clear");
}

#[tokio::test]
async fn a_lost_answer_comes_after_the_work_is_done() {
    let sb = sandbox().await;
    let token = cosell_sandbox::testing::salesforce_access_token(&sb, "admin").await;
    add_fault(
        &sb,
        json!({ "method": "POST", "path_contains": "/sobjects/Account", "kind": "answer_lost" }),
    )
    .await;
    let before = sb.salesforce().rows("Account").len();
    let err = client(&sb)
        .post(format!(
            "{}/services/data/v62.0/sobjects/Account",
            sb.base_url()
        ))
        .bearer_auth(&token)
        .json(&json!({ "Name": "Lost answer Ltd" }))
        .send()
        .await
        .expect_err("no HTTP answer");
    assert!(err.status().is_none(), "no status: {err:?}");
    let accounts = sb.salesforce().rows("Account");
    assert_eq!(accounts.len(), before + 1, "the create happened");
    assert!(accounts.iter().any(|a| a["Name"] == "Lost answer Ltd"));
}

#[tokio::test]
async fn a_malformed_answer_is_the_emulators_own_cut_short() {
    let sb = sandbox().await;
    let token = cosell_sandbox::testing::salesforce_access_token(&sb, "admin").await;
    add_fault(
        &sb,
        json!({ "method": "POST", "path_contains": "/sobjects/Account", "kind": "malformed_json" }),
    )
    .await;
    let r = client(&sb)
        .post(format!(
            "{}/services/data/v62.0/sobjects/Account",
            sb.base_url()
        ))
        .bearer_auth(&token)
        .json(&json!({ "Name": "Garbled Ltd" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "the emulator's own status");
    assert!(r.json::<Value>().await.unwrap_err().is_decode());
    assert!(
        sb.salesforce()
            .rows("Account")
            .iter()
            .any(|a| a["Name"] == "Garbled Ltd"),
        "the create happened"
    );
}
