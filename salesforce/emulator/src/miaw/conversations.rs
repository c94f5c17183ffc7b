//! The conversation endpoints of the custom-client API (`/iamessage/api/v2/conversation…`).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::entries::Entry;
use super::faults::Operation;
use super::limits::{MINUTE, RollingWindow};
use super::tokens::{Claims, authenticate};
use super::{Conversation, FILE_LIMIT, FileMeta, Inner, MiawError, Status, multipart, records};
use crate::config::MiawConfig;
use crate::server::AppState;

/// Largest file `sendFile` takes (miaw.md §3.6).
pub const MAX_FILE_BYTES: usize = 5 * 1024 * 1024;

const UUID_MESSAGE: &str =
    "Specify the conversationId in UUID format. The UUID must be in lowercase.";

type Answer = Result<Response, MiawError>;

fn answer(result: Answer) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A lowercase, hyphenated RFC 4122 UUID of any version 1–8 (so the gateway's UUIDv5 ids pass).
pub(crate) fn is_lowercase_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 36 {
        return false;
    }
    for (i, &c) in b.iter().enumerate() {
        let ok = match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        };
        if !ok {
            return false;
        }
    }
    matches!(b[14], b'1'..=b'8') && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// Takes a planned failure of `op`.
fn fault(state: &AppState, op: Operation) -> Result<(), MiawError> {
    match state.miaw.lock().faults.take(op) {
        Some(status) => Err(MiawError::injected(status)),
        None => Ok(()),
    }
}

/// The caller's conversation (404 for an unknown one or another end user's).
fn owned<'a>(
    inner: &'a mut Inner,
    id: &str,
    claims: &Claims,
) -> Result<&'a mut Conversation, MiawError> {
    inner
        .conversation_mut(id)
        .filter(|c| c.subject == claims.sub)
        .ok_or_else(MiawError::not_found)
}

/// Keeps configured routing attributes, drops the others (returned), refuses values over
/// their maximum length.
fn routing_attributes(
    config: &MiawConfig,
    given: Option<&Map<String, Value>>,
) -> Result<(BTreeMap<String, String>, Vec<String>), MiawError> {
    let mut kept = BTreeMap::new();
    let mut dropped = Vec::new();
    for (key, value) in given.into_iter().flatten() {
        let Some(param) = config.custom_parameters.iter().find(|p| p.name == *key) else {
            dropped.push(key.clone());
            continue;
        };
        let text = match value {
            Value::String(s) => s.clone(),
            _ => {
                return Err(MiawError::bad_request(format!(
                    "routingAttributes.{key} must be a string."
                )));
            }
        };
        if text.chars().count() > param.max_length {
            return Err(MiawError::bad_request(format!(
                "routingAttributes.{key} is longer than its maximum length of {}.",
                param.max_length
            )));
        }
        kept.insert(key.clone(), text);
    }
    Ok((kept, dropped))
}

/// Routes the conversation's current session: to the queue when agents are available,
/// otherwise a `NoAgentsAvailable` routing failure.
pub(crate) fn route(inner: &mut Inner, id: &str, routing_type: &str, config: &MiawConfig) {
    let available = inner.agents_available;
    if let Some(c) = inner.conversation_mut(id) {
        c.routing_status = if available { "ROUTED" } else { "NEEDS_ROUTING" };
    }
    let reason = (!available).then_some("NoAgentsAvailable");
    inner.record(id, Entry::routing(routing_type, reason), config);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    conversation_id: Option<String>,
    es_developer_name: Option<String>,
    routing_attributes: Option<Map<String, Value>>,
    language: Option<String>,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, MiawError> {
    serde_json::from_slice(body)
        .map_err(|e| MiawError::bad_request(format!("Invalid request body: {e}")))
}

fn check_deployment(config: &MiawConfig, name: Option<&str>) -> Result<(), MiawError> {
    match name {
        Some(n) if config.deployments.iter().any(|d| d == n) => Ok(()),
        _ => Err(MiawError::bad_request(
            "Specify a valid esDeveloperName: the API name of an Embedded Service deployment of type Custom Client.",
        )),
    }
}

/// `POST /conversation`: 201 with an empty body; the same id again by the same end user is
/// 201 again and changes nothing; by another end user 409.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(create_inner(&state, &headers, &body))
}

fn create_inner(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Answer {
    let claims = authenticate(state, headers)?;
    fault(state, Operation::CreateConversation)?;
    let req: CreateBody = parse(body)?;
    let id = req.conversation_id.unwrap_or_default();
    if !is_lowercase_uuid(&id) {
        return Err(MiawError::bad_request(UUID_MESSAGE));
    }
    let config = &state.miaw.config;
    check_deployment(config, req.es_developer_name.as_deref())?;
    let (kept, dropped) = routing_attributes(config, req.routing_attributes.as_ref())?;
    let mut inner = state.miaw.lock();
    if let Some(existing) = inner.conversation(&id) {
        if existing.subject == claims.sub {
            return Ok(StatusCode::CREATED.into_response());
        }
        return Err(MiawError::new(
            StatusCode::CONFLICT,
            "A conversation with this conversationId already exists.",
        ));
    }
    if !inner.make_room(config.max_conversations) {
        return Err(MiawError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The emulator holds miaw.max_conversations open conversations; close some or raise the limit.",
        ));
    }
    let record_id = records::create_conversation(state, &id);
    let session_id = records::create_session(state, &record_id);
    let now = chrono::Utc::now();
    inner.insert_conversation(Conversation {
        id: id.clone(),
        subject: claims.sub.clone(),
        deployment: req.es_developer_name.unwrap_or_default(),
        record_id,
        session_id,
        status: Status::Waiting,
        routing_status: "INITIAL",
        routing_attributes: kept,
        dropped_attributes: dropped,
        language: req.language,
        rep: None,
        created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        created_ms: now.timestamp_millis(),
        entries: VecDeque::new(),
        message_ids: HashSet::new(),
        files: VecDeque::new(),
        sent: RollingWindow::default(),
    });
    route(&mut inner, &id, "Initial", config);
    tracing::info!(conversation = %id, "MIAW conversation created");
    Ok(StatusCode::CREATED.into_response())
}

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
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(send_message_inner(&state, &id, &headers, &body))
}

fn string_field(m: &Map<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(Value::as_str).map(str::to_string)
}

fn send_message_inner(state: &AppState, id: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let claims = authenticate(state, headers)?;
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
    if let Admitted::Duplicate(at) = admit(state, &mut inner, id, &claims, &incoming)? {
        return Ok(accepted(&incoming.id, at));
    }
    let c = owned(&mut inner, id, &claims)?;
    let entry = Entry::end_user_message(
        c,
        &incoming.id,
        incoming.text.as_deref(),
        None,
        incoming.in_reply_to.as_deref(),
    );
    let at = entry.at_ms;
    inner.record(id, entry, &state.miaw.config);
    Ok(accepted(&incoming.id, at))
}

/// `POST /conversation/{id}/file` (multipart: `messageEntry` JSON + `fileData`), at most 5 MB.
pub(crate) async fn send_file(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(send_file_inner(&state, &id, &headers, &body))
}

fn send_file_inner(state: &AppState, id: &str, headers: &HeaderMap, body: &[u8]) -> Answer {
    let claims = authenticate(state, headers)?;
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
    if let Admitted::Duplicate(at) = admit(state, &mut inner, id, &claims, &incoming)? {
        return Ok(accepted(&incoming.id, at));
    }
    let c = owned(&mut inner, id, &claims)?;
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
    Ok(accepted(&incoming.id, at))
}

/// `POST /conversation/{id}/entry`: typing indicators (202; reps see them, the stream does not).
pub(crate) async fn typing(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer((|| {
        let claims = authenticate(&state, &headers)?;
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
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer((|| {
        let claims = authenticate(&state, &headers)?;
        let req: Map<String, Value> = parse(&body)?;
        if !req.get("acks").is_some_and(Value::is_array) {
            return Err(MiawError::bad_request("acks must be an array."));
        }
        owned(&mut state.miaw.lock(), &id, &claims)?;
        Ok(StatusCode::ACCEPTED.into_response())
    })())
}

/// Ends the current session (by `role`): status Ended, the record updated, the event emitted.
/// Returns false when it had already ended.
pub(crate) fn end_session(state: &AppState, inner: &mut Inner, id: &str, role: &str) -> bool {
    let Some(c) = inner.conversation_mut(id) else {
        return false;
    };
    if matches!(c.status, Status::Ended | Status::Closed) {
        return false;
    }
    c.status = Status::Ended;
    c.routing_status = "NEEDS_ROUTING";
    records::set_session_status(state, &c.session_id, "Ended", Some(role));
    let entry = Entry::session_status(c, "Ended", Some(role));
    inner.record(id, entry, &state.miaw.config);
    true
}

/// `DELETE /conversation/{id}/session?esDeveloperName=`: 204 (again 204 once ended).
pub(crate) async fn end_session_route(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let claims = authenticate(&state, &headers)?;
        fault(&state, Operation::EndSession)?;
        let mut inner = state.miaw.lock();
        let c = owned(&mut inner, &id, &claims)?;
        if let Some(rep) = c.rep.take() {
            inner.record(&id, Entry::participant("remove", &rep), &state.miaw.config);
        }
        end_session(&state, &mut inner, &id, "EndUser");
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

/// `DELETE /conversation/{id}?esDeveloperName=`: 204; ends an open session first, then
/// `CONVERSATION_CLOSE_CONVERSATION`. Closing a closed conversation is 204 again.
pub(crate) async fn close(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let claims = authenticate(&state, &headers)?;
        fault(&state, Operation::CloseConversation)?;
        let mut inner = state.miaw.lock();
        let c = owned(&mut inner, &id, &claims)?;
        if c.status == Status::Closed {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        if let Some(rep) = c.rep.take() {
            inner.record(&id, Entry::participant("remove", &rep), &state.miaw.config);
        }
        end_session(&state, &mut inner, &id, "EndUser");
        if let Some(c) = inner.conversation_mut(&id) {
            c.status = Status::Closed;
            let entry = Entry::close(c);
            inner.record(&id, entry, &state.miaw.config);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })())
}

/// `GET /conversation/{id}`: `{conversationId, routingStatus}`.
pub(crate) async fn routing_status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let claims = authenticate(&state, &headers)?;
        let mut inner = state.miaw.lock();
        let c = owned(&mut inner, &id, &claims)?;
        Ok(
            Json(json!({"conversationId": c.id, "routingStatus": c.routing_status}))
                .into_response(),
        )
    })())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntriesQuery {
    limit: Option<usize>,
    direction: Option<String>,
    start_timestamp: Option<i64>,
    end_timestamp: Option<i64>,
    entry_type_filter: Option<String>,
}

/// `GET /conversation/{id}/entries`: `limit` (default 20, at most 50), `direction`
/// (`FromStart` default, `FromEnd`), `startTimestamp`/`endTimestamp` (ms), `entryTypeFilter`.
pub(crate) async fn entries(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<EntriesQuery>,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let claims = authenticate(&state, &headers)?;
        let limit = q.limit.unwrap_or(20).clamp(1, 50);
        let from_end = match q.direction.as_deref() {
            None | Some("FromStart") => false,
            Some("FromEnd") => true,
            Some(_) => {
                return Err(MiawError::bad_request(
                    "direction must be FromStart or FromEnd.",
                ));
            }
        };
        let types: Option<Vec<&str>> = q
            .entry_type_filter
            .as_deref()
            .map(|f| f.split(',').map(str::trim).collect());
        let mut inner = state.miaw.lock();
        let c = owned(&mut inner, &id, &claims)?;
        let keep = |e: &&Entry| {
            q.start_timestamp.is_none_or(|t| e.at_ms >= t)
                && q.end_timestamp.is_none_or(|t| e.at_ms <= t)
                && types.as_ref().is_none_or(|t| t.contains(&e.entry_type))
        };
        let list: Vec<Value> = if from_end {
            c.entries
                .iter()
                .rev()
                .filter(keep)
                .take(limit)
                .map(Entry::transcript)
                .collect()
        } else {
            c.entries
                .iter()
                .filter(keep)
                .take(limit)
                .map(Entry::transcript)
                .collect()
        };
        Ok(Json(json!({"conversationEntries": list})).into_response())
    })())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListQuery {
    incl_closed_convs: Option<bool>,
    limit: Option<usize>,
}

/// `GET /conversation/list?inclClosedConvs=&limit=`: the end user's conversations, newest first.
pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    answer((|| {
        let claims = authenticate(&state, &headers)?;
        let limit = q.limit.unwrap_or(20).clamp(1, 50);
        let closed = q.incl_closed_convs.unwrap_or(false);
        let inner = state.miaw.lock();
        let mine: Vec<&Conversation> = inner
            .conversations()
            .filter(|c| c.subject == claims.sub)
            .collect();
        let open = mine.iter().filter(|c| c.status != Status::Closed).count();
        let list: Vec<Value> = mine
            .iter()
            .rev()
            .filter(|c| closed || c.status != Status::Closed)
            .take(limit)
            .map(|c| json!({"conversationId": c.id, "startTimestamp": c.created_ms}))
            .collect();
        Ok(Json(json!({"openConversationsFound": open, "conversations": list})).into_response())
    })())
}

#[cfg(test)]
mod tests {
    use super::is_lowercase_uuid;

    #[test]
    fn uuid_rules() {
        assert!(is_lowercase_uuid("0db1b9a6-96bf-46bd-b088-182d05522e90"));
        // UUIDv5 (the gateway derives ids from its session ids).
        assert!(is_lowercase_uuid("886313e1-3b8a-5372-9b90-0c9aee199e5d"));
        assert!(!is_lowercase_uuid("0DB1B9A6-96BF-46BD-B088-182D05522E90"));
        assert!(!is_lowercase_uuid("0db1b9a696bf46bdb088182d05522e90"));
        assert!(!is_lowercase_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(!is_lowercase_uuid("0db1b9a6-96bf-46bd-c088-182d05522e90"));
    }
}
