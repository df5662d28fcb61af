//! The sandbox control surface, for tests and for people trying the product:
//!
//! - `GET  /_control/entra/users` — the demo users
//! - `GET  /_control/entra/faults`, `POST /_control/entra/faults` — read / replace the Entra faults
//!   (JSON [`crate::entra::Faults`], e.g. `{"next_id_token":"bad_signature"}`)
//! - `POST /_control/entra/rotate-keys` — publish a new signing key and sign with it
//! - `POST /_control/entra/users/{key}/revoke-grants` — revoke a user's refresh tokens (AADSTS50173)
//! - `POST /_control/clock/advance` — `{"seconds": 700}` moves the emulators' clock forward

use crate::clock::Clock;
use crate::entra::{Entra, Faults};
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::sync::Arc;

pub struct ControlState {
    pub entra: Entra,
    pub clock: Clock,
}

type S = State<Arc<ControlState>>;

pub fn routes(state: Arc<ControlState>) -> Router {
    Router::new()
        .route("/entra/users", get(users))
        .route("/entra/faults", get(get_faults).post(set_faults))
        .route("/entra/rotate-keys", post(rotate_keys))
        .route("/entra/users/{key}/revoke-grants", post(revoke_grants))
        .route("/clock/advance", post(advance_clock))
        .with_state(state)
}

async fn users(State(s): S) -> Json<serde_json::Value> {
    Json(serde_json::json!(s.entra.users()))
}

async fn get_faults(State(s): S) -> Json<Faults> {
    Json(s.entra.faults())
}

async fn set_faults(State(s): S, Json(faults): Json<Faults>) -> Json<Faults> {
    s.entra.set_faults(faults);
    Json(s.entra.faults())
}

async fn rotate_keys(State(s): S) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "kid": s.entra.rotate_signing_key() }))
}

async fn revoke_grants(State(s): S, Path(key): Path<String>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "revoked": s.entra.revoke_user_grants(&key) }))
}

#[derive(Deserialize)]
struct Advance {
    seconds: i64,
}

async fn advance_clock(State(s): S, Json(a): Json<Advance>) -> Json<serde_json::Value> {
    s.clock.advance(a.seconds);
    Json(serde_json::json!({ "now": s.clock.now().unix_timestamp() }))
}
