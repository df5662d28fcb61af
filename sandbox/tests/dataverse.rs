//! The Dataverse emulator's identity surface (crm-apis.md §2.1, §2.2, §2.8), over HTTP.

mod common;

use common::*;
use cosell_sandbox::Sandbox;
use cosell_sandbox::dataverse::{
    BASIC_USER, ORGANIZATION_URL, SYSTEM_ADMINISTRATOR, SYSTEM_CUSTOMIZER,
};
use reqwest::StatusCode;
use serde_json::Value;

const SCOPE: &str = "https://contoso-sandbox.crm.dynamics.com/user_impersonation offline_access";

async fn get(
    sb: &Sandbox,
    url: &str,
    token: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = client(sb)
        .get(url)
        .bearer_auth(token)
        .header("OData-MaxVersion", "4.0")
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

/// The roles (template ids) a user holds, found the way a connection test finds them.
async fn role_templates(sb: &Sandbox, api: &str, token: &str) -> Vec<String> {
    let (status, _, me) = get(sb, &format!("{api}/WhoAmI()"), token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let user_id = me["UserId"].as_str().unwrap();
    let url = format!(
        "{api}/systemusers({user_id})/systemuserroles_association?$select=name,roleid,_roletemplateid_value"
    );
    let (_, _, roles) = get(sb, &url, token).await;
    roles["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["_roletemplateid_value"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn who_am_i_and_roles_by_template_id() {
    let sb = sandbox().await;
    let api = format!("{}/api/data/v9.2", sb.base_url());
    let token = access_token(&sb, "admin", SCOPE).await;
    let (status, headers, me) = get(&sb, &format!("{api}/WhoAmI()"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["odata-version"], "4.0");
    for field in ["BusinessUnitId", "UserId", "OrganizationId"] {
        assert!(me[field].is_string(), "{field}");
    }
    let user_id = me["UserId"].as_str().unwrap();
    assert_ne!(
        user_id, "a1d4e1e5-0000-4000-8000-000000000001",
        "a system user id is not the Entra object id"
    );

    let url = format!(
        "{api}/systemusers({user_id})/systemuserroles_association?$select=name,roleid,_roletemplateid_value"
    );
    let (_, _, roles) = get(&sb, &url, &token).await;
    let role = &roles["value"][0];
    assert_eq!(role["_roletemplateid_value"], SYSTEM_ADMINISTRATOR);
    assert_eq!(role["name"], "System Administrator");
    assert_ne!(
        role["roleid"], SYSTEM_ADMINISTRATOR,
        "role ids differ per business unit: compare template ids"
    );

    let lee = access_token(&sb, "lacking", SCOPE).await;
    assert_eq!(role_templates(&sb, &api, &lee).await, [BASIC_USER]);
    let megan = access_token(&sb, "viewer", SCOPE).await;
    assert!(
        !role_templates(&sb, &api, &megan)
            .await
            .iter()
            .any(|t| t == SYSTEM_ADMINISTRATOR || t == SYSTEM_CUSTOMIZER)
    );
}

#[tokio::test]
async fn system_users_by_object_id_with_select() {
    let sb = sandbox().await;
    let api = format!("{}/api/data/v9.2", sb.base_url());
    let token = access_token(&sb, "admin", SCOPE).await;
    let url = format!(
        "{api}/systemusers?$filter=azureactivedirectoryobjectid eq a1d4e1e5-0000-4000-8000-000000000005&$select=fullname"
    );
    let (status, _, body) = get(&sb, &url, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = body["value"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["fullname"], "Lee Gu");
    assert!(
        rows[0]["systemuserid"].is_string(),
        "the primary key always comes back"
    );
    assert!(
        rows[0].get("domainname").is_none(),
        "$select leaves the rest out"
    );
    assert!(rows[0]["@odata.etag"].as_str().unwrap().starts_with("W/\""));
    // Alex is not a member of the organization: no row.
    let url = format!(
        "{api}/systemusers?$filter=azureactivedirectoryobjectid eq a1d4e1e5-0000-4000-8000-000000000003"
    );
    assert_eq!(
        get(&sb, &url, &token).await.2["value"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn errors_have_dataverse_shapes() {
    let sb = sandbox().await;
    let api = format!("{}/api/data/v9.2", sb.base_url());
    let token = access_token(&sb, "admin", SCOPE).await;

    let missing = "00000000-0000-0000-0000-000000000001";
    let (status, headers, body) = get(&sb, &format!("{api}/systemusers({missing})"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        headers["content-type"],
        "application/json; odata.metadata=minimal"
    );
    assert_eq!(
        body["error"]["message"],
        format!("systemuser With Id = {missing} Does Not Exist")
    );

    // A Partner Center token is for another audience.
    let pc = access_token(
        &sb,
        "admin",
        "https://api.partner.microsoft.com/user_impersonation",
    )
    .await;
    let (status, headers, body) = get(&sb, &format!("{api}/WhoAmI()"), &pc).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(&format!("resource_id={ORGANIZATION_URL}"))
    );
    assert!(body["error"]["message"].is_string());
    let r = client(&sb)
        .get(format!("{api}/WhoAmI()"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Signed in to Entra, but not a user of this organization.
    let alex = access_token(&sb, "norole", SCOPE).await;
    let (status, _, body) = get(&sb, &format!("{api}/WhoAmI()"), &alex).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"]["message"],
        "The user is not a member of the organization."
    );

    // Tokens live an hour.
    sb.clock().advance(3600);
    let (status, _, body) = get(&sb, &format!("{api}/WhoAmI()"), &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "ExpiredAuthTicket");

    let fresh = access_token(&sb, "admin", SCOPE).await;
    let (status, _, _) = get(&sb, &format!("{api}/opportunitiez"), &fresh).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
