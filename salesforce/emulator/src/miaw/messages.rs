//! Sending into a conversation: text messages, files (multipart), typing indicators and
//! receipts (`/iamessage/api/v2/conversation/{id}/message|file|entry|acknowledge-entries`).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::conversations::{
    Answer, answer, check_deployment, fault, owned, parse, route, routing_attributes,
};
use super::entries::Entry;
use super::faults::Operation;
use super::limits::MINUTE;
use super::tokens::Claims;
use super::{FILE_LIMIT, FileMeta, Inner, MiawError, Status, multipart, records};
use crate::server::AppState;

/// Largest file `sendFile` takes (miaw.md §3.6).
pub const MAX_FILE_BYTES: usize = 5 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageBody {
    message: Option<Map<String, Value>>,
    es_developer_name: Option<String>,
    #[serde(default)]
    is_new_messaging_session: bool,
    routing_attributes: Option<Map<String, Value>>,
    language: Option<String>,
}

fn accepted(id: &str, at_ms: i64) -> Response {
    (
        StatusCode::ACCEPTED,
        Json(json!({"conversationEntries": [{"id": id, "clientTimestamp": at_ms}]})),
    )
        .into_response()
}

/// What a message (text or file) asks for, checked the same way for both.
struct Incoming {
    id: String,
    text: Option<String>,
    in_reply_to: Option<String>,
    new_session: bool,
    routing_attributes: Option<Map<String, Value>>,
    language: Option<String>,
}

enum Admitted {
    /// The message id was seen before: answer 202 again, nothing new.
    Duplicate(i64),
    New,
}

/// Dedupe, closed conversation (409), ended session (417 unless a new session is asked for,
/// which starts and routes one), and the per-conversation rate limit (429).
fn admit(
    state: &AppState,
    inner: &mut Inner,
    id: &str,
    claims: &Claims,
    m: &Incoming,
) -> Result<Admitted, MiawError> {
    let config = &state.miaw.config;
    let c = owned(inner, id, claims)?;
    if c.message_ids.contains(&m.id) {
        let at = c
            .entries
            .iter()
            .rev()
            .find(|e| e.client_message_id() == Some(m.id.as_str()))
            .map_or(0, |e| e.at_ms);
        return Ok(Admitted::Duplicate(at));
    }
    if c.status == Status::Closed {
        return Err(MiawError::new(
            StatusCode::CONFLICT,
            "The conversation is closed. Create a new conversation to send messages.",
        ));
    }
    let ended = c.status == Status::Ended;
    if ended && !m.new_session {
        return Err(MiawError::new(
            StatusCode::EXPECTATION_FAILED,
            "No active messaging session. Resend the message with isNewMessagingSession set to true.",
        ));
    }
    let (kept, dropped) = if ended {
        routing_attributes(config, m.routing_attributes.as_ref())?
    } else {
        Default::default()
    };
    let c = owned(inner, id, claims)?;
    c.sent
        .try_hit(Instant::now(), config.messages_per_minute, MINUTE)
        .map_err(|wait| MiawError::rate_limited(wait, "messages per conversation"))?;
    if ended {
        let session = records::create_session(state, &c.record_id);
        c.session_id = session;
        c.status = Status::Waiting;
        c.rep = None;
        c.routing_attributes = kept;
        c.dropped_attributes = dropped;
        if m.language.is_some() {
            c.language.clone_from(&m.language);
        }
        route(inner, id, "Initial", config);
    }
    Ok(Admitted::New)
}

/// `POST /conversation/{id}/message`: 202 `{"conversationEntries":[{id, clientTimestamp}]}`
/// and the end user's echo on the stream.
pub(crate) async fn send_message(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    claims: Claims,
    body: Bytes,
) -> Response {
    answer(send_message_inner(&state, &id, &claims, &body))
}

fn string_field(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_string)
}

fn send_message_inner(state: &AppState, id: &str, claims: &Claims, body: &[u8]) -> Answer {
    fault(state, Operation::SendMessage)?;
    let req: MessageBody = parse(body)?;
    check_deployment(&state.miaw.config, req.es_developer_name.as_deref())?;
    let message = req
        .message
        .ok_or_else(|| MiawError::bad_request("message is required."))?;
    let message_id = string_field(&message, "id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MiawError::bad_request("message.id is required."))?;
    let text = message
        .get("staticContent")
        .and_then(|c| c.get("text"))
        .and_then(Value::as_str)
        .ok_or_else(|| MiawError::bad_request("message.staticContent.text is required."))?
        .to_string();
    let incoming = Incoming {
        id: message_id,
        text: Some(text),
        in_reply_to: string_field(&message, "inReplyToMessageId"),
        new_session: req.is_new_messaging_session,
        routing_attributes: req.routing_attributes,
        language: req.language,
    };
    let mut inner = state.miaw.lock();
    if let Admitted::Duplicate(at) = admit(state, &mut inner, id, claims, &incoming)? {
        return Ok(accepted(&incoming.id, at));
    }
    let c = owned(&mut inner, id, claims)?;
    let entry = Entry::end_user_message(
        c,
        &incoming.id,
        incoming.text.as_deref(),
        None,
        incoming.in_reply_to.as_deref(),
    );
    let at = entry.at_ms;
    inner.record(id, entry, &state.miaw.config);
    if let Some(status) = inner.faults.take_after_commit(Operation::SendMessage) {
        return Err(MiawError::injected(status));
    }
    Ok(accepted(&incoming.id, at))
}

/// `POST /conversation/{id}/file` (multipart: `messageEntry` JSON + `fileData`), at most 5 MB.
pub(crate) async fn send_file(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    claims: Claims,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(send_file_inner(&state, &id, &claims, &headers, &body))
}

fn send_file_inner(
    state: &AppState,
    id: &str,
    claims: &Claims,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    fault(state, Operation::SendFile)?;
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parts = multipart::parse(content_type, body).map_err(MiawError::bad_request)?;
    let entry_part = parts
        .iter()
        .find(|p| p.name == "messageEntry")
        .ok_or_else(|| MiawError::bad_request("The messageEntry part is required."))?;
    let file = parts
        .iter()
        .find(|p| p.name == "fileData")
        .ok_or_else(|| MiawError::bad_request("The fileData part is required."))?;
    if file.body.len() > MAX_FILE_BYTES {
        return Err(MiawError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The file is larger than 5 MB.",
        ));
    }
    let req: MessageBody = parse(entry_part.body)?;
    check_deployment(&state.miaw.config, req.es_developer_name.as_deref())?;
    let message = req
        .message
        .ok_or_else(|| MiawError::bad_request("message is required."))?;
    let message_id = string_field(&message, "id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MiawError::bad_request("message.id is required."))?;
    let file_id = string_field(&message, "fileId").unwrap_or_else(|| message_id.clone());
    let name = file.filename.clone().unwrap_or_else(|| "file".to_string());
    let mime = file
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let incoming = Incoming {
        id: message_id,
        text: string_field(&message, "text").filter(|t| !t.is_empty()),
        in_reply_to: string_field(&message, "inReplyToMessageId"),
        new_session: req.is_new_messaging_session,
        routing_attributes: req.routing_attributes,
        language: req.language,
    };
    let mut inner = state.miaw.lock();
    if let Admitted::Duplicate(at) = admit(state, &mut inner, id, claims, &incoming)? {
        return Ok(accepted(&incoming.id, at));
    }
    let c = owned(&mut inner, id, claims)?;
    c.files.push_back(FileMeta {
        name: name.clone(),
        content_type: mime.clone(),
        size: file.body.len(),
    });
    while c.files.len() > FILE_LIMIT {
        c.files.pop_front();
    }
    let attachment = json!({"name": name, "id": file_id, "mimeType": mime, "url": null,
                            "referenceId": file_id, "attachmentUploadResult": null});
    let entry = Entry::end_user_message(
        c,
        &incoming.id,
        incoming.text.as_deref(),
        Some(attachment),
        incoming.in_reply_to.as_deref(),
    );
    let at = entry.at_ms;
    inner.record(id, entry, &state.miaw.config);
    if let Some(status) = inner.faults.take_after_commit(Operation::SendMessage) {
        return Err(MiawError::injected(status));
    }
    Ok(accepted(&incoming.id, at))
}

/// `POST /conversation/{id}/entry`: typing indicators (202; reps see them, the stream does not).
pub(crate) async fn typing(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    claims: Claims,
    body: Bytes,
) -> Response {
    answer((|| {
        let req: Map<String, Value> = parse(&body)?;
        match req.get("entryType").and_then(Value::as_str) {
            Some("TypingStartedIndicator" | "TypingStoppedIndicator") => {}
            _ => {
                return Err(MiawError::bad_request(
                    "entryType must be TypingStartedIndicator or TypingStoppedIndicator.",
                ));
            }
        }
        owned(&mut state.miaw.lock(), &id, &claims)?;
        Ok(StatusCode::ACCEPTED.into_response())
    })())
}

/// `POST /conversation/{id}/acknowledge-entries`: delivery/read receipts (202, recorded nowhere).
pub(crate) async fn acknowledge(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    claims: Claims,
    body: Bytes,
) -> Response {
    answer((|| {
        let req: Map<String, Value> = parse(&body)?;
        if !req.get("acks").is_some_and(Value::is_array) {
            return Err(MiawError::bad_request("acks must be an array."));
        }
        owned(&mut state.miaw.lock(), &id, &claims)?;
        Ok(StatusCode::ACCEPTED.into_response())
    })())
}
