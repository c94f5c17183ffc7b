//! The conversation endpoints of the custom-client API (`/iamessage/api/v2/conversation…`):
//! create, end session, close, routing status, transcript, list. Messages are in `messages.rs`.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::entries::Entry;
use super::faults::Operation;
use super::limits::RollingWindow;
use super::tokens::Claims;
use super::{Conversation, Inner, MiawError, RoutingStatus, Status, records};
use crate::config::MiawConfig;
use crate::server::AppState;

const UUID_MESSAGE: &str =
    "Specify the conversationId in UUID format. The UUID must be in lowercase.";

pub(super) type Answer = Result<Response, MiawError>;

pub(super) fn answer(result: Answer) -> Response {
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
pub(super) fn fault(state: &AppState, op: Operation) -> Result<(), MiawError> {
    match state.miaw.lock().faults.take(op) {
        Some(status) => Err(MiawError::injected(status)),
        None => Ok(()),
    }
}

/// The caller's conversation (404 for an unknown one or another end user's).
pub(super) fn owned<'a>(
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
pub(super) fn routing_attributes(
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
        c.routing_status = if available {
            RoutingStatus::Routed
        } else {
            RoutingStatus::NeedsRouting
        };
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

pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, MiawError> {
    serde_json::from_slice(body)
        .map_err(|e| MiawError::bad_request(format!("Invalid request body: {e}")))
}

pub(super) fn check_deployment(config: &MiawConfig, name: Option<&str>) -> Result<(), MiawError> {
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
    claims: Claims,
    body: Bytes,
) -> Response {
    answer(create_inner(&state, claims, &body))
}

fn create_inner(state: &AppState, claims: Claims, body: &[u8]) -> Answer {
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
        routing_status: RoutingStatus::Initial,
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
    c.routing_status = RoutingStatus::NeedsRouting;
    records::set_session_status(state, &c.session_id, "Ended", Some(role));
    let entry = Entry::session_status(c, "Ended", Some(role));
    inner.record(id, entry, &state.miaw.config);
    true
}

/// `DELETE /conversation/{id}/session?esDeveloperName=`: 204 (again 204 once ended).
pub(crate) async fn end_session_route(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    claims: Claims,
) -> Response {
    answer((|| {
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
    claims: Claims,
) -> Response {
    answer((|| {
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
    claims: Claims,
) -> Response {
    answer((|| {
        let mut inner = state.miaw.lock();
        let c = owned(&mut inner, &id, &claims)?;
        Ok(
            Json(json!({"conversationId": c.id, "routingStatus": c.routing_status.as_str()}))
                .into_response(),
        )
    })())
}

/// Query parameters whose rejection is a MIAW error (`{"message"}`), not axum's plain text.
pub(crate) struct MiawQuery<T>(pub(crate) T);

impl<T, S> FromRequestParts<S> for MiawQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = MiawError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| MiawQuery(q))
            .map_err(|e| MiawError::bad_request(format!("Invalid query: {}", e.body_text())))
    }
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
    claims: Claims,
    MiawQuery(q): MiawQuery<EntriesQuery>,
) -> Response {
    answer((|| {
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
    claims: Claims,
    MiawQuery(q): MiawQuery<ListQuery>,
) -> Response {
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
    Json(json!({"openConversationsFound": open, "conversations": list})).into_response()
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
