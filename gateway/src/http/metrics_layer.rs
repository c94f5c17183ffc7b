//! Times every HTTP request into `handoff_http_request_seconds{route,method,status}`, and
//! `POST /v1/escalations` also into `handoff_accept_seconds{status}` (see `crate::metrics`).
//!
//! Labels are bounded: `route` is the matched route *template* (`/v1/sessions/{id}`), never
//! the URI, whose path and query carry session ids, emails and phone numbers; a request no
//! route matched is `unmatched`. `method` is one of the standard methods or `other` (a client
//! may send any token as a method). `status` is the status code the gateway answered.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::{ACCEPT_SECONDS, HTTP_REQUEST_SECONDS};

/// The route template of the escalation intake.
const ACCEPT_ROUTE: &str = "/v1/escalations";

/// Middleware: runs the request and records how long the answer took.
pub(crate) async fn record(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    if route == ACCEPT_ROUTE && method == "POST" {
        metrics::histogram!(ACCEPT_SECONDS, "status" => status.clone()).record(seconds);
    }
    metrics::histogram!(
        HTTP_REQUEST_SECONDS,
        "route" => route,
        "method" => method,
        "status" => status
    )
    .record(seconds);
    response
}

/// The `method` label: a standard method's name, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        for m in ["PROPFIND", "X-SESSION-1234", "BREW"] {
            assert_eq!(
                method_label(&Method::from_bytes(m.as_bytes()).unwrap()),
                "other"
            );
        }
    }
}
