//! The rep console (`/__emulator/miaw/…`): what a human rep does in the Service Console,
//! driven over HTTP by tests, the demo and `sf-emulator rep …`. Not Salesforce's API;
//! unauthenticated (the emulator is a local tool); snake_case JSON; errors `{"message"}`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::conversations::end_session;
use super::entries::Entry;
use super::faults::MiawFaults;
use super::{Conversation, Inner, MiawError, Rep, RoutingStatus, Status, records};
use crate::server::AppState;

type Answer = Result<Response, MiawError>;

fn answer(result: Answer) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn summary(c: &Conversation) -> Value {
    json!({
        "conversation_id": c.id,
        "messaging_session_id": c.session_id,
        "deployment": c.deployment,
        "status": c.status.as_str(),
        "routing_status": c.routing_status.as_str(),
        "routing_attributes": c.routing_attributes,
        "dropped_attributes": c.dropped_attributes,
        "language": c.language,
        "rep_name": c.rep.as_ref().map(|r| r.name.clone()),
        // The end user's subject: `…/ANON/…` or, verified, `…/AUTH/{issuer}/uid:{sub}`.
        "end_user": c.subject,
        "created_at": c.created_at,
    })
}

fn detail(c: &Conversation) -> Value {
    let mut v = summary(c);
    v["entries"] = c.entries.iter().map(Entry::console).collect();
    v["files"] = c
        .files
        .iter()
        .map(|f| json!({"name": f.name, "content_type": f.content_type, "size": f.size}))
        .collect();
    v
}

fn unknown() -> MiawError {
    MiawError::new(StatusCode::NOT_FOUND, "No conversation with this id.")
}

fn conflict(message: &str) -> MiawError {
    MiawError::new(StatusCode::CONFLICT, message)
}

/// A stable `005…` User id for a rep name.
pub(crate) fn rep(name: &str) -> Rep {
    // FNV-1a: the same name gets the same id in every run.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    Rep {
        name: name.to_string(),
        user_id: crate::ids::mint("005", h % 13_537_086_546_263_552),
    }
}

#[derive(Deserialize)]
struct RepBody {
    rep_name: Option<String>,
}

#[derive(Deserialize)]
struct TextBody {
    text: Option<String>,
}

fn rep_name(body: &[u8]) -> Result<String, MiawError> {
    let b: RepBody = serde_json::from_slice(body)
        .map_err(|e| MiawError::bad_request(format!("Send {{\"rep_name\": \"…\"}}: {e}")))?;
    b.rep_name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| MiawError::bad_request("rep_name is required."))
}

fn conversation<'a>(inner: &'a mut Inner, id: &str) -> Result<&'a mut Conversation, MiawError> {
    inner.conversation_mut(id).ok_or_else(unknown)
}

/// The conversation's current rep, or 409.
fn current_rep(c: &Conversation, what: &str) -> Result<Rep, MiawError> {
    match (&c.rep, c.status) {
        (Some(rep), Status::Active) => Ok(rep.clone()),
        _ => Err(conflict(&format!(
            "No rep has accepted this conversation ({}); accept it before you {what}.",
            c.status.as_str()
        ))),
    }
}

/// `GET /__emulator/miaw/conversations`
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Response {
    let inner = state.miaw.lock();
    let list: Vec<Value> = inner.conversations().map(summary).collect();
    Json(json!({"conversations": list})).into_response()
}

/// `GET /__emulator/miaw/conversations/{id}`
pub(crate) async fn show(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let inner = state.miaw.lock();
    match inner.conversation(&id) {
        Some(c) => Json(detail(c)).into_response(),
        None => unknown().into_response(),
    }
}

/// `POST …/{id}/accept {"rep_name"}`: the rep joins; the session becomes Active.
pub(crate) async fn accept(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answer((|| {
        let name = rep_name(&body)?;
        let config = &state.miaw.config;
        let mut inner = state.miaw.lock();
        let c = conversation(&mut inner, &id)?;
        if c.status != Status::Waiting {
            return Err(conflict(&format!(
                "Only a waiting conversation can be accepted; this one is {}.",
                c.status.as_str()
            )));
        }
        let rep = rep(&name);
        c.rep = Some(rep.clone());
        c.status = Status::Active;
        c.routing_status = RoutingStatus::Routed;
        records::set_session_status(&state, &c.session_id, "Active", None);
        inner.record(&id, Entry::participant("add", &rep), config);
        let c = conversation(&mut inner, &id)?;
        let entry = Entry::session_status(c, "Active", None);
        inner.record(&id, entry, config);
        Ok(Json(summary(conversation(&mut inner, &id)?)).into_response())
    })())
}

/// `POST …/{id}/messages {"text"}`: the rep writes; 202 `{"id"}`.
pub(crate) async fn message(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answer((|| {
        let b: TextBody = serde_json::from_slice(&body)
            .map_err(|e| MiawError::bad_request(format!("Send {{\"text\": \"…\"}}: {e}")))?;
        let text = b
            .text
            .filter(|t| !t.is_empty())
            .ok_or_else(|| MiawError::bad_request("text is required."))?;
        let mut inner = state.miaw.lock();
        let c = conversation(&mut inner, &id)?;
        let rep = current_rep(c, "send a message")?;
        let entry = Entry::agent_message(c, &rep, &text);
        let entry_id = entry.id.clone();
        inner.record(&id, entry, &state.miaw.config);
        Ok((StatusCode::ACCEPTED, Json(json!({"id": entry_id}))).into_response())
    })())
}

/// `POST …/{id}/transfer {"rep_name"}`: routing status TRANSFER, the old rep leaves, the new
/// one joins, routing status ROUTED.
pub(crate) async fn transfer(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answer((|| {
        let name = rep_name(&body)?;
        let config = &state.miaw.config;
        let mut inner = state.miaw.lock();
        let c = conversation(&mut inner, &id)?;
        let old = current_rep(c, "transfer it")?;
        let new = rep(&name);
        c.routing_status = RoutingStatus::Transfer;
        inner.record(&id, Entry::routing("Transfer", None), config);
        inner.record(&id, Entry::participant("remove", &old), config);
        inner.record(&id, Entry::participant("add", &new), config);
        let c = conversation(&mut inner, &id)?;
        c.rep = Some(new);
        c.routing_status = RoutingStatus::Routed;
        Ok(Json(summary(c)).into_response())
    })())
}

/// `POST …/{id}/leave`: the rep leaves without ending the session; it waits to be re-routed.
pub(crate) async fn leave(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    answer((|| {
        let mut inner = state.miaw.lock();
        let c = conversation(&mut inner, &id)?;
        let old = current_rep(c, "leave")?;
        c.rep = None;
        c.status = Status::Waiting;
        c.routing_status = RoutingStatus::NeedsRouting;
        records::set_session_status(&state, &c.session_id, "Waiting", None);
        inner.record(&id, Entry::participant("remove", &old), &state.miaw.config);
        Ok(Json(summary(conversation(&mut inner, &id)?)).into_response())
    })())
}

/// `POST …/{id}/close`: the rep ends the chat (session Ended by Agent).
pub(crate) async fn close(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    answer((|| {
        let mut inner = state.miaw.lock();
        let c = conversation(&mut inner, &id)?;
        let old = current_rep(c, "close it")?;
        c.rep = None;
        inner.record(&id, Entry::participant("remove", &old), &state.miaw.config);
        end_session(&state, &mut inner, &id, "Agent");
        Ok(Json(summary(conversation(&mut inner, &id)?)).into_response())
    })())
}

#[derive(Deserialize)]
struct Availability {
    agents_available: bool,
}

/// `PUT /__emulator/miaw/availability {"agents_available": bool}`: how new sessions route.
pub(crate) async fn availability(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Availability>(&body) {
        Ok(a) => {
            state.miaw.lock().agents_available = a.agents_available;
            Json(json!({"agents_available": a.agents_available})).into_response()
        }
        Err(e) => MiawError::bad_request(format!("Send {{\"agents_available\": true|false}}: {e}"))
            .into_response(),
    }
}

/// `GET /__emulator/miaw/faults`
pub(crate) async fn get_faults(State(state): State<Arc<AppState>>) -> Response {
    Json(state.miaw.lock().faults.clone()).into_response()
}

/// `PUT /__emulator/miaw/faults` (replaces the plan).
pub(crate) async fn put_faults(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let faults: MiawFaults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return MiawError::bad_request(format!("Invalid fault plan: {e}")).into_response();
        }
    };
    if let Err(e) = faults.validate() {
        return MiawError::bad_request(e).into_response();
    }
    tracing::info!(?faults, "MIAW fault plan replaced");
    state.miaw.set_faults(faults.clone());
    Json(faults).into_response()
}

/// `DELETE /__emulator/miaw/faults`
pub(crate) async fn clear_faults(State(state): State<Arc<AppState>>) -> Response {
    state.miaw.set_faults(MiawFaults::default());
    StatusCode::NO_CONTENT.into_response()
}

impl super::Miaw {
    /// Replaces the MIAW fault plan.
    pub(crate) fn set_faults(&self, faults: MiawFaults) {
        self.delay_events_ms
            .store(faults.delay_events_ms, Ordering::Relaxed);
        self.lock().faults = faults;
    }
}
