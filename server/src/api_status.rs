//! Gives each server-function error its HTTP status. `server_fn` answers every error with 500; a
//! refusal the caller can fix (bad or missing input) is a 400, an unknown session a 401, a missing role
//! a 403, and only cosell's own failures stay 500. The body (the error, as the browser shows it) is
//! kept as it is.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use cosell_app::error::AppError;

/// Server functions live under this path.
const API: &str = "/api/";
/// Error bodies are a sentence or two: anything larger is not one of ours.
const MAX_ERROR_BODY: usize = 64 * 1024;

pub async fn error_status(request: Request, next: Next) -> Response {
    let is_api = request.uri().path().starts_with(API);
    let response = next.run(request).await;
    if !is_api || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        parts.status = StatusCode::INTERNAL_SERVER_ERROR;
        return Response::from_parts(parts, Body::empty());
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = status_of(&error);
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// An error answered as server functions answer it: its status, and the error as JSON.
pub fn respond(error: &AppError) -> Response {
    let body = serde_json::to_string(error).unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status_of(error);
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::Invalid(_) | AppError::Request(_) => StatusCode::BAD_REQUEST,
        AppError::NotSignedIn => StatusCode::UNAUTHORIZED,
        AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
        AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status() {
        assert_eq!(
            status_of(&AppError::Invalid("x".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status_of(&AppError::Request("x".into())),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status_of(&AppError::NotSignedIn), StatusCode::UNAUTHORIZED);
        assert_eq!(
            status_of(&AppError::Forbidden {
                needed: "a".into(),
                have: "b".into()
            }),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_of(&AppError::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
