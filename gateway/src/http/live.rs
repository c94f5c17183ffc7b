//! Live sessions over HTTP (design §7.1): `POST /v1/sessions/{id}/messages`
//! (a customer message to the rep; split into parts the rep can receive, queued
//! behind the per-conversation send limit, never refused for it),
//! `POST /v1/sessions/{id}/close`, and `GET /v1/sessions/{id}/stream` — the
//! session's outbox as Server-Sent Events, the same envelopes the chat webhook
//! carries, resumable with `Last-Event-ID`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use channels::webhook::Envelope;

use super::AppState;
use super::auth::require;
use super::body::read_json;
use super::extract::Path;
use super::openapi::{
    BadRequest, Forbidden, IdempotencyKey, IdempotencyKeyReused, NotFound, PayloadTooLarge,
    RequestTimeout, ServerError, Unauthenticated, Unavailable, UnsupportedMediaType,
};
use super::schemas::{CloseAnswer, MessageAccepted, MessageRequest};
use crate::error::{ApiError, Problem};
use crate::escalation::mapper;
use crate::outbox::deliver::outbound_message;
use crate::store::{LiveState, Queued, Scope, delivery};

/// The longest customer message accepted (characters); longer ones are refused
/// (400 `message_too_long`). Up to it, a message is split into parts of
/// `miaw.max_message_chars`.
pub const MESSAGE_MAX_CHARS: usize = 32_000;
/// Deliveries read from the outbox per stream round.
const STREAM_BATCH: u64 = 100;
/// A stream re-reads the outbox this often even without a poke (another
/// replica may have written).
const STREAM_POLL: Duration = Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(message))
        .routes(routes!(close))
        .routes(routes!(stream))
}

/// Why a live operation cannot happen on a session that exists.
fn not_live(state: Option<LiveState>) -> ApiError {
    match state {
        Some(LiveState::Closing | LiveState::Ended) => ApiError::SessionClosed,
        Some(LiveState::Fallback) => ApiError::NotLive(
            "this session became a Case; the rep answers on the Case, not in a live chat".into(),
        ),
        _ => ApiError::NotLive(
            "this session is a Case, not a live chat; messages to the rep need a live session"
                .into(),
        ),
    }
}

/// A customer message to the rep of a live session: split into parts the rep can receive and
/// queued behind the conversation's send limit. The end keyword closes the session instead.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/messages",
    operation_id = "send_message",
    tag = "live",
    security(("bearer" = ["escalate"])),
    params(("id" = String, Path, description = "The session id."), IdempotencyKey),
    request_body(content = MessageRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued for the rep (`status: queued`), or the end keyword: the session is closing.", body = MessageAccepted),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, description = "`session_closed`: the live session is over; `session_not_live`: the session is a Case, not a live chat; `idempotency_key_in_flight`: a request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = IdempotencyKeyReused),
        (status = 429, description = "`too_many_queued_messages`: `miaw.max_queued_messages` messages already wait for the rep; retry after `Retry-After` seconds.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<MessageAccepted>), ApiError> {
    require(&state, &headers, Scope::Escalate).await?;
    let json = read_json(&headers, body, state.config.max_body_bytes).await?;
    let text = match json.get("text") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "invalid_text",
                Some("text".to_string()),
                "text is required: the customer's message",
            ));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_text",
                Some("text".to_string()),
                "text must be a string",
            ));
        }
    };
    if let Some(key) = json
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "text"))
    {
        return Err(ApiError::invalid(
            "unknown_field",
            Some(key.clone()),
            format!("unknown field {key}; a message takes only text"),
        ));
    }
    if text.contains('\0') {
        return Err(ApiError::invalid(
            "invalid_text",
            Some("text".to_string()),
            "text must not contain NUL characters",
        ));
    }
    let chars = text.chars().count();
    if chars > MESSAGE_MAX_CHARS {
        return Err(ApiError::invalid(
            "message_too_long",
            Some("text".to_string()),
            format!(
                "text is {chars} characters; at most {MESSAGE_MAX_CHARS} are accepted (longer messages are split into parts of {} for the rep)",
                state.config.miaw.max_message_chars
            ),
        ));
    }
    let Some(_session) = state.store.session(&id).await? else {
        return Err(ApiError::NotFound);
    };
    let miaw = &state.config.miaw;
    if text.trim().eq_ignore_ascii_case(miaw.end_keyword.trim()) {
        return match state
            .store
            .request_live_close(&id, "end_keyword", state.config.worker.max_attempts)
            .await?
        {
            Some(s) if s.accepts_messages() => {
                state.wake.notify_one();
                Ok((
                    StatusCode::ACCEPTED,
                    Json(MessageAccepted {
                        session_id: id,
                        status: "closing".into(),
                        ids: None,
                        parts: None,
                        ended: Some(true),
                    }),
                ))
            }
            other => Err(not_live(other)),
        };
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    let parts = mapper::live::customer_message_parts(&id, &request_id, &text, miaw);
    match state
        .store
        .queue_customer_message(
            &id,
            &parts,
            miaw.max_queued_messages,
            state.config.worker.max_attempts,
        )
        .await?
    {
        Queued::Queued => {
            state.wake.notify_one();
            Ok((
                StatusCode::ACCEPTED,
                Json(MessageAccepted {
                    ids: Some(parts.iter().map(|p| p.id.clone()).collect()),
                    parts: Some(parts.len()),
                    session_id: id,
                    status: "queued".into(),
                    ended: None,
                }),
            ))
        }
        Queued::NotLive(s) => Err(not_live(s)),
        Queued::Full => Err(ApiError::TooManyQueued(miaw.max_queued_messages)),
    }
}

/// Ends a live session: the conversation is closed in Salesforce and the customer told.
/// Closing twice is not an error.
#[utoipa::path(
    post,
    path = "/v1/sessions/{id}/close",
    operation_id = "close_session",
    tag = "live",
    security(("bearer" = ["escalate"])),
    params(("id" = String, Path, description = "The session id."), IdempotencyKey),
    responses(
        (status = 200, description = "The session had already ended (`status: closed`).", body = CloseAnswer),
        (status = 202, description = "The session is closing (`status: closing`).", body = CloseAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, description = "`session_not_live`: the session is a Case, not a live chat; `idempotency_key_in_flight`: a request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = IdempotencyKeyReused),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn close(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CloseAnswer>), ApiError> {
    require(&state, &headers, Scope::Escalate).await?;
    if state.store.session(&id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    match state
        .store
        .request_live_close(&id, "api", state.config.worker.max_attempts)
        .await?
    {
        Some(s) if s.accepts_messages() => {
            state.wake.notify_one();
            Ok((
                StatusCode::ACCEPTED,
                Json(CloseAnswer {
                    session_id: id,
                    status: "closing".into(),
                }),
            ))
        }
        // Closing twice is not an error: the session ends (or has ended) either way.
        Some(LiveState::Closing) => Ok((
            StatusCode::ACCEPTED,
            Json(CloseAnswer {
                session_id: id,
                status: "closing".into(),
            }),
        )),
        Some(LiveState::Ended) => Ok((
            StatusCode::OK,
            Json(CloseAnswer {
                session_id: id,
                status: "closed".into(),
            }),
        )),
        other => Err(not_live(other)),
    }
}

/// `<created_at>-<delivery id>`: the outbox order, so `Last-Event-ID` resumes after it.
fn event_id(row: &delivery::Model) -> String {
    format!("{}-{}", row.created_at, row.id)
}

fn parse_event_id(raw: &str) -> Option<(i64, String)> {
    let (at, id) = raw.split_once('-')?;
    let at: i64 = at.parse().ok()?;
    (id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| (at, id.to_string()))
}

/// The session's outbox as Server-Sent Events: the envelopes the chat webhook carries
/// (`{"id", "type", "session_id", "data": {"text", "sender_name", "at"}}`), the event name
/// being the `type`. `Last-Event-ID` resumes after an event this stream sent; the stream ends
/// after `session.closed`.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/stream",
    operation_id = "session_stream",
    tag = "live",
    security(("bearer" = ["read"])),
    params(
        ("id" = String, Path, description = "The session id."),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (an `id` this stream sent: `<created_at>-<delivery id>`)."),
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream` (keep-alive comments every 15 s) until the session closes.", body = String, content_type = "text/event-stream"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = ServerError),
        (status = 503, description = "`too_many_streams`: `http.max_session_streams` streams are open; or the gateway is overloaded or its database unavailable. Retry after `Retry-After` seconds.", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
    )
)]
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    if state.store.session(&id).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let mut cursor = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(raw)) => Some(parse_event_id(raw).ok_or_else(|| {
            ApiError::invalid(
                "invalid_last_event_id",
                Some("Last-Event-ID".to_string()),
                "Last-Event-ID must be an id this stream sent",
            )
        })?),
        Some(Err(_)) => {
            return Err(ApiError::invalid(
                "invalid_last_event_id",
                Some("Last-Event-ID".to_string()),
                "Last-Event-ID must be an id this stream sent",
            ));
        }
    };
    let permit = Arc::clone(&state.session_streams)
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyStreams)?;
    let mut pokes = state.feed.subscribe();
    let store = state.store.clone();
    let events = async_stream(move |tx| async move {
        let _permit = permit;
        loop {
            let after = cursor.as_ref().map(|(at, id)| (*at, id.as_str()));
            let rows = match store.deliveries_page(&id, after, STREAM_BATCH).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "Session stream could not read the outbox; retrying.");
                    Vec::new()
                }
            };
            let full = rows.len() as u64 == STREAM_BATCH;
            let mut closed = false;
            for row in rows {
                cursor = Some((row.created_at, row.id.clone()));
                let Some(message) = outbound_message(&row) else {
                    continue;
                };
                closed |= message.kind == channels::OutboundKind::SessionClosed;
                let data =
                    String::from_utf8(Envelope::new(&message, None).to_bytes()).unwrap_or_default();
                let event = Event::default()
                    .id(event_id(&row))
                    .event(message.kind.as_str())
                    .data(data);
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            if closed {
                return;
            }
            if full {
                continue;
            }
            let wait = tokio::time::sleep(STREAM_POLL);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    poke = pokes.recv() => match poke {
                        Ok(session) if *session == *id => break,
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return,
                    },
                    () = tx.closed() => return,
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A stream fed by a task through a small channel (bounded: the task waits
/// for a slow reader). The task ends when the reader goes away.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_ids_round_trip_and_refuse_junk() {
        assert_eq!(
            super::parse_event_id("1733100000000-dlv_0a1b"),
            Some((1_733_100_000_000, "dlv_0a1b".to_string()))
        );
        assert_eq!(super::parse_event_id("x-dlv"), None);
        assert_eq!(super::parse_event_id("12-dlv;drop"), None);
        assert_eq!(super::parse_event_id("12"), None);
    }
}
