//! A server function runs to its end even when the browser goes away in the middle of the call (a click
//! followed at once by a navigation cancels the browser's fetch, and the connection with it). Otherwise
//! the handler would be dropped where it stood: a sync switch written to the CRM, say, and the run that
//! must follow it never queued.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn run_to_completion(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    // A task of its own is not dropped with the connection; this handler only waits for it.
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "a server function did not finish");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
