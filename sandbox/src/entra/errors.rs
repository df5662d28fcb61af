//! Entra's error shapes: token endpoint JSON, authorize redirects, and the error page shown instead of
//! redirecting when the client or redirect URI cannot be trusted.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use time::OffsetDateTime;
use time::macros::format_description;

fn timestamp(now: OffsetDateTime) -> String {
    now.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// `AADSTS{code}: {message}\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …`
fn description(code: u32, message: &str, trace: &str, correlation: &str, ts: &str) -> String {
    format!(
        "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}"
    )
}

/// A token endpoint error (HTTP 400 unless told otherwise).
pub fn token_error(
    status: StatusCode,
    error: &str,
    code: u32,
    message: &str,
    now: OffsetDateTime,
) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    let ts = timestamp(now);
    let body = serde_json::json!({
        "error": error,
        "error_description": description(code, message, &trace, &correlation, &ts),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    response
}

pub fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
}

/// Back to the client with `?error=…&error_description=…&state=…`.
pub fn redirect_error(
    redirect_uri: &str,
    error: &str,
    code: u32,
    message: &str,
    state: Option<&str>,
    now: OffsetDateTime,
) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    let desc = description(code, message, &trace, &correlation, &timestamp(now));
    let mut url = match url::Url::parse(redirect_uri) {
        Ok(u) => u,
        Err(_) => return error_page(900023, "The redirect URI is not a valid URL.", now),
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", error)
            .append_pair("error_description", &desc);
        if let Some(state) = state {
            q.append_pair("state", state);
        }
    }
    found(url.as_str())
}

/// Entra answers redirects with 302 Found.
pub fn found(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
    )
        .into_response()
}

/// The page Entra shows when it will not redirect (unknown app, redirect URI mismatch, unknown tenant).
pub fn error_page(code: u32, message: &str, now: OffsetDateTime) -> Response {
    let trace = uuid::Uuid::new_v4().to_string();
    let body = format!(
        r#"<h1>Sign in</h1><p class="error">Sorry, but we’re having trouble signing you in.</p>
<p id="aadsts"><code>AADSTS{code}: {}</code></p><small>Trace ID: {trace}<br>Timestamp: {}</small>"#,
        crate::html::escape(message),
        timestamp(now)
    );
    (
        StatusCode::BAD_REQUEST,
        Html(crate::html::page("Sign in to your account", &body)),
    )
        .into_response()
}
