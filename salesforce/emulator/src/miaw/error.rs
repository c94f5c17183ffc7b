//! The MIAW API's error answer: a status and `{"message": …}` (miaw.md §3.14), with
//! `Retry-After` on 429.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

/// An error answer of the MIAW API: `{"message": …}` with a status.
#[derive(Debug)]
pub(crate) struct MiawError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

impl MiawError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        MiawError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "The conversation does not exist for this end user.",
        )
    }

    /// An injected failure.
    pub(crate) fn injected(status: u16) -> Self {
        Self::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Injected failure (emulator fault plan).",
        )
    }

    pub(crate) fn rate_limited(wait: std::time::Duration, what: &str) -> Self {
        MiawError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("Rate limit exceeded: {what}. Try again later."),
            retry_after: Some(wait.as_secs().max(1)),
        }
    }
}

impl IntoResponse for MiawError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(json!({"message": self.message}))).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = http::HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        resp
    }
}
