//! Refuses a server-function call whose form carries a field the function does not take, a field twice,
//! or a value too long, with a 400 naming it (see [`cosell_app::api_fields`]), before anything runs.
//! `server_fn` ignores unknown fields, so without this an admin's typo or a forged field would pass
//! silently.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use cosell_app::api_fields::{MAX_FIELD_BYTES, check_fields, fields_of};
use cosell_app::error::AppError;

/// A whole form: every field at its longest, and then some.
const MAX_FORM_BYTES: usize = 8 * MAX_FIELD_BYTES;

/// Reads the body of every call to a listed function, whatever its `Content-Type` says: `server_fn`
/// decodes the body as a form without looking at that header, so a check that trusted it could be
/// stepped round by declaring `text/plain`.
pub async fn refuse_unexpected_fields(request: Request, next: Next) -> Response {
    let Some(fields) = request
        .uri()
        .path()
        .strip_prefix("/api/")
        .and_then(fields_of)
    else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return refuse(format!("the form is larger than {MAX_FORM_BYTES} bytes"));
    };
    if let Err(why) = check(fields, &bytes) {
        return refuse(why);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn check(fields: &[&str], form: &[u8]) -> Result<(), String> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(form).into_owned().collect();
    check_fields(fields, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

fn refuse(why: String) -> Response {
    crate::api_status::respond(&AppError::Request(why))
}
