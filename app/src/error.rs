//! The one error type server functions return. Each variant is a sentence a person can act on; details
//! (SQL, HTTP, stack) are logged on the server and never sent to the browser.

use serde::{Deserialize, Serialize};
use server_fn::codec::JsonEncoding;
use server_fn::error::{FromServerFnError, ServerFnErrorErr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("You are not signed in, or your session has ended. Sign in again to continue.")]
    NotSignedIn,
    #[error(
        "This action needs the {needed} role; you are signed in as {have}. Ask an Entra ID administrator to assign you the {needed} role, then sign in again."
    )]
    Forbidden { needed: String, have: String },
    #[error("{0}")]
    Invalid(String),
    #[error("Something went wrong on our side and it has been logged. Try again in a moment.")]
    Internal,
    #[error("The request could not be completed: {0}")]
    Request(String),
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Request(value.to_string())
    }
}
