//! Refuses state-changing requests sent by another site's page (CSRF), before any handler runs.
//!
//! Server functions and the sign-out form are plain POSTs (they must work without JavaScript), so a token
//! in a custom header is not an option. Browsers tell us where a request comes from: `Sec-Fetch-Site`
//! (all current browsers) and `Origin` (every cross-origin POST). A request with neither did not come from
//! a browser page, so it carries no ambient session cookie to abuse.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// `scheme` is the dashboard's, as people reach it (the public URL's: `https` behind a TLS proxy).
pub async fn refuse_cross_origin(
    State(scheme): State<String>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) {
        return next.run(request).await;
    }
    if let Err(reason) = same_origin(request.headers(), &scheme) {
        tracing::warn!(path = %request.uri().path(), reason, "cross-origin request refused");
        return (
            StatusCode::FORBIDDEN,
            "Refused: this request came from another website. Changes can only be made from the cosell dashboard itself.",
        )
            .into_response();
    }
    next.run(request).await
}

fn same_origin(headers: &HeaderMap, scheme: &str) -> Result<(), &'static str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match get("sec-fetch-site") {
        Some("same-origin") | Some("none") => return Ok(()),
        Some(_) => return Err("sec-fetch-site"),
        None => {}
    }
    let Some(origin) = get(header::ORIGIN.as_str()) else {
        return Ok(());
    };
    let host = get(header::HOST.as_str()).ok_or("no host")?;
    // An origin of another scheme is another origin (RFC 6454): https://host:port is not http://host:port.
    let origin_host = url::Url::parse(origin)
        .ok()
        .filter(|u| u.scheme().eq_ignore_ascii_case(scheme))
        .and_then(|u| {
            let host = u.host_str()?.to_string();
            Some(match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host,
            })
        })
        .ok_or("origin")?;
    if origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err("origin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn decides_by_fetch_metadata_then_origin() {
        let ok: &[&[(&str, &str)]] = &[
            &[("sec-fetch-site", "same-origin"), ("host", "a:3000")],
            &[("sec-fetch-site", "none")],
            &[("origin", "http://a:3000"), ("host", "a:3000")],
            &[("host", "a:3000")],
        ];
        for h in ok {
            assert!(same_origin(&headers(h), "http").is_ok(), "{h:?}");
        }
        let refused: &[&[(&str, &str)]] = &[
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "http://a:3000"),
                ("host", "a:3000"),
            ],
            &[("sec-fetch-site", "same-site")],
            &[("origin", "http://evil.example"), ("host", "a:3000")],
            &[("origin", "http://a:3001"), ("host", "a:3000")],
            &[("origin", "null"), ("host", "a:3000")],
            // Same host and port, another scheme: another origin.
            &[("origin", "https://a:3000"), ("host", "a:3000")],
        ];
        for h in refused {
            assert!(same_origin(&headers(h), "http").is_err(), "{h:?}");
        }
        // Behind a TLS proxy the dashboard's scheme is https: its own pages send https origins.
        let proxied = headers(&[
            ("origin", "https://cosell.example"),
            ("host", "cosell.example"),
        ]);
        assert!(same_origin(&proxied, "https").is_ok());
        assert!(same_origin(&proxied, "http").is_err());
    }
}
