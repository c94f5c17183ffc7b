//! Helpers shared by the `/__emulator/…` control routes of both emulators.

use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::Error;

/// `{"error": "…"}` with `status`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

/// The HTTP answer for an API error: 400 bad input, 409 missing set-up or a full emulator,
/// 502 when the webhook could not be reached.
pub(crate) fn from_error(e: Error) -> Response {
    let status = match e {
        Error::InvalidInput { .. } | Error::NothingToReplay => StatusCode::BAD_REQUEST,
        Error::NoWebhook(_) | Error::LimitReached(_) => StatusCode::CONFLICT,
        Error::Request(_) => StatusCode::BAD_GATEWAY,
    };
    error(status, e)
}

/// A control body that is not the expected JSON: 400 with serde's message (which names the
/// field).
pub(crate) struct BadJson(serde_json::Error);

impl IntoResponse for BadJson {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, self.0)
    }
}

/// Parses a JSON control body.
pub(crate) fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, BadJson> {
    serde_json::from_slice(body).map_err(BadJson)
}

/// 204 on success.
pub(crate) fn done(result: crate::Result<()>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => from_error(e),
    }
}

/// `{"advance_secs": N}` for the clock routes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Advance {
    pub(crate) advance_secs: u64,
}

/// How long the `settled` routes wait.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
