//! Connecting Partner Center and Dynamics 365 through OAuth consent, over HTTP against the sandbox.

use crate::helpers::*;
use cosell::domain::connection::{Diagnosis, System};
use reqwest::StatusCode;

fn query(location: &str, name: &str) -> Option<String> {
    param(&format!("http://x{location}"), name)
}

#[tokio::test]
async fn an_admin_connects_both_systems_as_the_chosen_account() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    let back = app.connect(&admin, "partner_center", "admin").await;
    assert_eq!(
        query(&back, "connected").as_deref(),
        Some("partner_center"),
        "{back}"
    );
    let back = app.connect(&admin, "dynamics365", "admin").await;
    assert_eq!(
        query(&back, "connected").as_deref(),
        Some("dynamics365"),
        "{back}"
    );

    let key = app.engine_key();
    for system in [System::PartnerCenter, System::DYNAMICS_365] {
        let c = app
            .store
            .connection(system, &key)
            .await
            .unwrap()
            .expect("saved");
        assert_eq!(c.account_username, "adele@contoso-sandbox.onmicrosoft.com");
        assert_eq!(c.diagnosis, None);
    }
    // Both Partner Center audiences come from the one consent; the check passed for each.
    assert!(
        app.engine
            .check_connection(System::PartnerCenter)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        app.engine
            .check_connection(System::DYNAMICS_365)
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test]
async fn an_account_without_the_roles_is_diagnosed_at_once() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    // Lee Gu is a cosell admin but neither a Referrals admin nor a CRM administrator.
    let back = app.connect(&admin, "partner_center", "lacking").await;
    let error = query(&back, "error").expect("an error for the page");
    assert!(error.contains("Referrals admin"), "{error}");
    assert!(error.contains("Reconnect"), "{error}");
    let back = app.connect(&admin, "dynamics365", "lacking").await;
    let error = query(&back, "error").unwrap();
    assert!(
        error.contains("System Administrator or System Customizer"),
        "{error}"
    );
    let key = app.engine_key();
    for system in [System::PartnerCenter, System::DYNAMICS_365] {
        let c = app.store.connection(system, &key).await.unwrap().unwrap();
        assert_eq!(c.diagnosis, Some(Diagnosis::MissingRole), "{system:?}");
    }
    // Alex is not a user of the Dynamics organization at all.
    let back = app.connect(&admin, "dynamics365", "norole").await;
    assert!(
        query(&back, "error").unwrap().contains("not a user"),
        "{back}"
    );
}

#[tokio::test]
async fn an_expired_password_or_revoked_consent_becomes_a_diagnosis() {
    let app = TestApp::spawn().await;
    let admin = app.signed_in("admin").await;
    app.connect(&admin, "partner_center", "admin").await;
    app.connect(&admin, "dynamics365", "admin").await;
    let key = app.engine_key();

    app.control_ok(
        "/entra/users/admin/password",
        serde_json::json!({ "expired": true }),
    )
    .await;
    app.engine.tokens().forget(System::PartnerCenter);
    assert_eq!(
        app.engine
            .check_connection(System::PartnerCenter)
            .await
            .unwrap(),
        Err(Diagnosis::PasswordExpired)
    );
    let c = app
        .store
        .connection(System::PartnerCenter, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.diagnosis, Some(Diagnosis::PasswordExpired));

    // A renewed password and a reconnect clear it.
    app.control_ok(
        "/entra/users/admin/password",
        serde_json::json!({ "expired": false }),
    )
    .await;
    app.connect(&admin, "partner_center", "admin").await;
    let c = app
        .store
        .connection(System::PartnerCenter, &key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.diagnosis, None);

    app.world.entra().revoke_user_grants("admin");
    app.engine.tokens().forget(System::DYNAMICS_365);
    assert_eq!(
        app.engine
            .check_connection(System::DYNAMICS_365)
            .await
            .unwrap(),
        Err(Diagnosis::GrantRevoked)
    );
}

#[tokio::test]
async fn only_admins_connect_and_a_forged_callback_stores_nothing() {
    let app = TestApp::spawn().await;
    let viewer = app.signed_in("viewer").await;
    let r = viewer
        .post(app.url("/connections/partner_center/connect"))
        .header("Origin", &app.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r).unwrap();
    assert!(to.starts_with("/connections?error="), "{to}");

    let admin = app.signed_in("admin").await;
    let r = admin
        .get(app.url("/connections/callback?code=stolen&state=made-up"))
        .send()
        .await
        .unwrap();
    assert!(location(&r).unwrap().contains("error="));
    let key = app.engine_key();
    assert!(
        app.store
            .connection(System::PartnerCenter, &key)
            .await
            .unwrap()
            .is_none()
    );

    // Cross-site posts are refused before anything happens.
    let r = admin
        .post(app.url("/connections/partner_center/connect"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
