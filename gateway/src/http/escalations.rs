//! `POST /v1/escalations`: accept, store durably, answer 202.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};

use channels::{ChannelKind, Route};

use super::AppState;
use super::auth::require;
use super::body::read_json;
use super::sessions::SessionView;
use crate::error::ApiError;
use crate::escalation::{CREATE_CASE_JOB, request};
use crate::store::{Accepted, Scope};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/escalations", post(escalate))
}

#[tracing::instrument(skip_all, fields(session_id, channel))]
async fn escalate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    require(&state, &headers, Scope::Escalate).await?;
    let json = read_json(&headers, body, state.config.max_body_bytes).await?;

    let registry = &state.channels;
    let escalation = request::parse(
        &json,
        |kind, input| {
            let channel = registry.get(kind).ok_or_else(|| {
                ApiError::invalid(
                    "unknown_channel",
                    Some("channel".into()),
                    "channel is not enabled",
                )
            })?;
            channel
                .normalize(input)
                .map_err(|e| ApiError::invalid(e.code(), e.field(), e.to_string()))
        },
        |name| {
            let kind: ChannelKind = name.parse().map_err(|e: channels::ChannelError| {
                ApiError::invalid("unknown_channel", Some("channel".into()), e.to_string())
            })?;
            if registry.get(&kind).is_none() {
                return Err(ApiError::invalid(
                    "unknown_channel",
                    Some("channel".into()),
                    format!("channel '{name}' is not enabled on this gateway"),
                ));
            }
            Ok(kind)
        },
    )?;
    tracing::Span::current()
        .record("session_id", escalation.session_id.as_str())
        .record("channel", escalation.channel.to_string());

    // Live messaging (MIAW) is not configured on this gateway, so every channel
    // takes the Case path — the design's fallback for when messaging is unavailable.
    let preferred = registry
        .get(&escalation.channel)
        .map(|c| c.preferred_route())
        .unwrap_or(Route::Case);
    let route = "case";

    let fallback = (preferred == Route::Messaging).then(|| {
        (
            "route.fallback",
            serde_json::json!({
                "preferred": "messaging",
                "route": "case",
                "reason": "live messaging is not configured",
            }),
        )
    });
    let accepted = state
        .store
        .accept_escalation(
            &escalation,
            route,
            CREATE_CASE_JOB,
            state.config.worker.max_attempts,
            fallback,
        )
        .await?;
    match accepted {
        Accepted::New(session) => {
            state.wake.notify_waiters();
            tracing::info!("Escalation accepted.");
            Ok((StatusCode::ACCEPTED, Json(SessionView::from(session))))
        }
        Accepted::Same(session) => Ok((StatusCode::ACCEPTED, Json(SessionView::from(session)))),
        Accepted::Conflict => Err(ApiError::Conflict(
            "this session_id was already escalated with a different body".into(),
        )),
        Accepted::CaseInsensitiveConflict => Err(ApiError::SessionIdConflict),
    }
}
