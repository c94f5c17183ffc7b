//! `POST /salesforce/events`: a rep-reply event from the shipped Apex trigger (contract §1).
//!
//! Read at most [`MAX_EVENT_BYTES`] (413 beyond), authenticate (401 `invalid_signature`,
//! nothing written — the same answer for every reason, including an event for another org),
//! parse (400 `invalid_event`, the field named), then record the event and its
//! `sync_case_event` job in one transaction: 202 `{"status":"accepted"}`, or 200
//! `{"status":"duplicate"}` for an event id already recorded (nothing written).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use salesforce::events::CaseEvent;

use crate::error::ApiError;
use crate::http::AppState;
use crate::http::body::read_bytes;

/// Largest event body accepted (1 MiB): a CaseComment holds at most 4,000 bytes and an
/// EmailMessage body 32,000 characters (131,072 in some orgs), HTML and text together.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/salesforce/events", post(receive))
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !state.config.case_replies.push {
        return Err(ApiError::NotFound);
    }
    let bytes = read_bytes(&headers, body, MAX_EVENT_BYTES).await?;
    let now = chrono::Utc::now().timestamp();
    if let Err(reason) = state.replies.authenticate(&headers, &bytes, now) {
        // The reason is ours (which check failed), never a header value.
        tracing::warn!(reason = %reason, "Refused a rep-reply event: not authenticated.");
        return Err(ApiError::InvalidSignature);
    }
    let event = CaseEvent::parse(&bytes)
        .map_err(|e| ApiError::invalid("invalid_event", Some(e.field), e.detail))?;
    if !state.replies.org_allowed(&event) {
        tracing::warn!(
            event_id = %event.event_id.as_str(),
            "Refused a rep-reply event for another org."
        );
        return Err(ApiError::InvalidSignature);
    }
    let new = state
        .store
        .record_case_events(
            std::slice::from_ref(&event),
            "push",
            state.config.worker.max_attempts,
        )
        .await?;
    tracing::info!(
        event_id = %event.event_id.as_str(),
        kind = event.kind.as_str(),
        duplicate = new == 0,
        "Rep-reply event received."
    );
    if new == 0 {
        return Ok((StatusCode::OK, Json(json!({"status": "duplicate"}))).into_response());
    }
    state.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "accepted"}))).into_response())
}
