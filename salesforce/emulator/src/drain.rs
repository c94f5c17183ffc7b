//! Reads every request body before any handler answers.
//!
//! Several answers (the 404 fallback, 401, an unknown API version, token-endpoint errors) are
//! decided from the head alone. Sent while a chunked body was still arriving, they made hyper
//! close a socket with unread data, which the kernel turns into a reset, and the client's next
//! request on that pooled connection failed. Buffering the body (bounded) first keeps the
//! connection reusable; a body over the bound gets 413 with `Connection: close`.

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::error::SfError;

/// Largest request body accepted (Salesforce allows 50 MB of JSON for blobs).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Middleware: buffer the body, then run the handler on the buffered request.
pub(crate) async fn drain_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => {
            let error = SfError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "JSON_PARSER_ERROR",
                "Request body too large",
            );
            let mut resp = (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
                error.rest_body().to_string(),
            )
                .into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}
