//! Salesforce's two error shapes (crm-apis.md §3.3, §3.7): the REST API answers with a JSON **array**
//! `[{"message","errorCode","fields"?}]`, the OAuth endpoints with an **object** `{"error","error_description"}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A REST error: the status and the array's one item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SfError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<Vec<String>>,
}

impl SfError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> SfError {
        SfError {
            status,
            code,
            message: message.into(),
            fields: None,
        }
    }

    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> SfError {
        SfError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn with_fields(mut self, fields: &[&str]) -> SfError {
        self.fields = Some(fields.iter().map(|f| f.to_string()).collect());
        self
    }

    pub(crate) fn not_found() -> SfError {
        SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    pub(crate) fn invalid_session() -> SfError {
        SfError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    pub(crate) fn body(&self) -> Value {
        let mut item = json!({ "message": self.message, "errorCode": self.code });
        if let Some(fields) = &self.fields {
            item["fields"] = json!(fields);
        }
        json!([item])
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

/// A token-endpoint error: HTTP 400 (unless told otherwise) with the OAuth object.
pub(crate) fn oauth(status: StatusCode, error: &str, description: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    no_store(&mut r);
    r
}

pub(crate) fn no_store(r: &mut Response) {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache,must-revalidate,max-age=0,no-store,private"),
    );
}
