//! `POST /v1/escalations`: accept, store durably, answer 202.

use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use tokio::sync::Semaphore;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use channels::Registry;

use super::AppState;
use super::auth::require;
use super::body::read_json;
use super::openapi::{
    BadRequest, Forbidden, IdempotencyKey, IdempotencyKeyReused, PayloadTooLarge, RequestTimeout,
    ServerError, Unauthenticated, Unavailable, UnsupportedMediaType,
};
use super::schemas::EscalationRequest;
use super::sessions::SessionView;
use crate::error::{ApiError, Problem};
use crate::escalation::request::{self, Escalation};
use crate::escalation::{CREATE_CASE_JOB, mapper, route, voice};
use crate::store::{Accepted, NewLive, Scope, now_ms};
use salesforce::miaw::ConversationId;

/// Raw emails and voice transcripts are parsed on the blocking pool, at most this many at once
/// (one per core), so a burst of large or hostile ones neither stalls the runtime's workers
/// (health checks, other requests) nor queues unbounded CPU work.
static PARSE_PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    Arc::new(Semaphore::new(cores))
});

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(escalate))
}

/// Escalate a conversation to a human rep. The session is stored durably, with its first job,
/// before the answer; the same `session_id` with the same body answers the same session again.
#[utoipa::path(
    post,
    path = "/v1/escalations",
    operation_id = "escalate",
    tag = "escalations",
    security(("bearer" = ["escalate"])),
    params(IdempotencyKey),
    request_body(content = EscalationRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted: the session, durable before this answer.", body = SessionView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 408, response = RequestTimeout),
        (status = 409, description = "`session_conflict`: this `session_id` was escalated with a different body; `session_id_conflict`: another session's id equals it ignoring letter case; `idempotency_key_in_flight`: a request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = IdempotencyKeyReused),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(session_id, channel))]
async fn escalate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    require(&state, &headers, Scope::Escalate).await?;
    let json = read_json(&headers, body, state.config.max_body_bytes).await?;

    let heavy = ["raw_email", "voice_transcript"]
        .iter()
        .any(|key| json.get(key).is_some_and(|v| !v.is_null()));
    let escalation = if heavy {
        let permit = Arc::clone(&PARSE_PERMITS)
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(format!("parse permits closed: {e}")))?;
        let registry = Arc::clone(&state.channels);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            parse(&registry, &json)
        })
        .await
        .map_err(|e| ApiError::Internal(format!("escalation parsing failed: {e}")))??
    } else {
        parse(&state.channels, &json)?
    };
    tracing::Span::current()
        .record("session_id", escalation.session_id.as_str())
        .record("channel", escalation.channel.to_string());

    let preferred = state
        .channels
        .get(&escalation.channel)
        .map_or(channels::Route::Case, |c| c.preferred_route());
    let channel_name = escalation.channel.to_string();
    let miaw = &state.config.miaw;
    if miaw.routes(&channel_name) {
        // Salesforce refuses a routing attribute longer than its parameter's
        // Maximum Length: refuse it now rather than accept what cannot open.
        for (key, value) in &escalation.payload.attributes {
            if miaw.allowed_attributes.contains(key)
                && value.chars().count() > miaw.attribute_max_chars
            {
                return Err(ApiError::invalid(
                    "invalid_attributes",
                    Some(format!("attributes.{key}")),
                    format!(
                        "attributes.{key} is a routing attribute and may be at most {} characters (miaw.attribute_max_chars)",
                        miaw.attribute_max_chars
                    ),
                ));
            }
        }
    }
    let live = match &state.live {
        None => route::Live::Off,
        Some(_) if !state.config.miaw.routes(&channel_name) => route::Live::NotForChannel,
        Some(live) if !live.hours.is_open(chrono::Utc::now()) => route::Live::Closed,
        Some(_) => route::Live::Open,
    };
    let choice = route::choose(preferred, live);
    let new_live = (choice.route == channels::Route::Messaging).then(|| {
        let session_id = escalation.session_id.as_str();
        NewLive {
            conversation_id: ConversationId::for_session(session_id).to_string(),
            deadline_at: now_ms() + (state.config.miaw.open_deadline_secs * 1000) as i64,
            messages: mapper::live::opening_messages(
                session_id,
                &escalation.payload,
                &state.config.miaw,
            ),
        }
    });
    let events: Vec<(&'static str, Value)> = choice
        .fallback_event()
        .into_iter()
        .chain(voice::follow_up_event(&state.channels, &escalation))
        .collect();
    let accepted = state
        .store
        .accept_escalation(
            &escalation,
            choice.route_name(),
            CREATE_CASE_JOB,
            state.config.worker.max_attempts,
            events,
            new_live.as_ref(),
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

/// The body as the named channel reads it: its conversation and its checked `reply_to`.
fn parse(registry: &Registry, json: &Value) -> Result<Escalation, ApiError> {
    let invalid = |e: channels::ChannelError| ApiError::invalid(e.code(), e.field(), e.to_string());
    request::parse_with_reply_to(
        json,
        |kind, input, reply_to| {
            let channel = registry.get(kind).ok_or_else(|| {
                ApiError::invalid(
                    "unknown_channel",
                    Some("channel".into()),
                    "channel is not enabled",
                )
            })?;
            let conversation = channel.normalize(input).map_err(invalid)?;
            let target = channel
                .reply_target(reply_to, &conversation)
                .map_err(invalid)?;
            Ok((conversation, target))
        },
        |name| registry.resolve(name).map_err(invalid),
    )
}
