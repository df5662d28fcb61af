//! A plain, self-contained error page for the sign-in routes (they run outside the Leptos app).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn render(status: StatusCode, code: &str, title: &str, advice: &str) -> Response {
    let body = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · cosell</title><link rel="stylesheet" href="/pkg/cosell.css"></head>
<body><header class="top"><a class="brand" href="/">cosell</a></header>
<main><section class="card" id="sign-in-error" data-code="{code}"><h1>{title}</h1><p>{advice}</p>
<p><a class="button primary" href="/auth/sign-in">Sign in again</a> <a href="/">Back to cosell</a></p></section></main></body></html>"#,
        title = escape(title),
        advice = escape(advice),
        code = escape(code),
    );
    (status, Html(body)).into_response()
}
