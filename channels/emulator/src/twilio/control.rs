//! `/__emulator/twilio/…`: the emulator's control routes (not Twilio's API; unauthenticated,
//! the emulator is a local tool). Errors answer `{"error": "…"}` naming the field.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use crate::control::{Advance, SETTLE_TIMEOUT, done, error, from_error, parse};
use crate::fault::Fault;
use crate::server::lock;
use crate::twilio::inbound::{self, InboundMedia};
use crate::twilio::state::TwilioState;

pub(crate) fn routes() -> axum::Router<Arc<TwilioState>> {
    axum::Router::new()
        .route("/__emulator/twilio/messages", get(messages))
        .route("/__emulator/twilio/callbacks", get(callbacks))
        .route("/__emulator/twilio/inbound", post(inbound))
        .route("/__emulator/twilio/replay", post(replay))
        .route(
            "/__emulator/twilio/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
        .route("/__emulator/twilio/webhooks", put(webhooks))
        .route("/__emulator/twilio/numbers", post(number))
        .route("/__emulator/twilio/whatsapp-senders", post(whatsapp_sender))
        .route("/__emulator/twilio/messaging-services", post(service))
        .route("/__emulator/twilio/undeliverable", post(undeliverable))
        .route("/__emulator/twilio/profile-names", post(profile_name))
        .route("/__emulator/twilio/clock", post(clock))
        .route("/__emulator/twilio/settled", get(settled))
}

async fn messages(State(state): State<Arc<TwilioState>>) -> Response {
    Json(super::sent(&state)).into_response()
}

async fn callbacks(State(state): State<Arc<TwilioState>>) -> Response {
    Json(state.poster.records()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundBody {
    from: String,
    to: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    media: Vec<InboundMedia>,
}

async fn inbound(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    let req: InboundBody = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return resp.into_response(),
    };
    match inbound::deliver(&state, &req.from, &req.to, &req.body, &req.media).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => from_error(e),
    }
}

async fn replay(State(state): State<Arc<TwilioState>>) -> Response {
    match inbound::replay(&state).await {
        Ok(result) => Json(result).into_response(),
        Err(e) => from_error(e),
    }
}

async fn faults(State(state): State<Arc<TwilioState>>) -> Response {
    Json(lock(&state.faults).pending()).into_response()
}

async fn add_fault(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    let fault: Fault = match parse(&body) {
        Ok(f) => f,
        Err(resp) => return resp.into_response(),
    };
    let mut queue = lock(&state.faults);
    match queue.push(fault) {
        Ok(()) => Json(queue.pending()).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

async fn clear_faults(State(state): State<Arc<TwilioState>>) -> StatusCode {
    lock(&state.faults).clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Webhooks {
    #[serde(default)]
    sms: Option<String>,
    #[serde(default)]
    whatsapp: Option<String>,
}

/// Replaces both webhooks (a missing one is cleared).
async fn webhooks(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    let req: Webhooks = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return resp.into_response(),
    };
    let result = super::set_webhook(&state, false, req.sms)
        .and_then(|()| super::set_webhook(&state, true, req.whatsapp));
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => from_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Number {
    number: String,
}

async fn number(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    match parse::<Number>(&body) {
        Ok(n) => done(super::add_number(&state, &n.number)),
        Err(resp) => resp.into_response(),
    }
}

async fn whatsapp_sender(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    match parse::<Number>(&body) {
        Ok(n) => done(super::add_whatsapp_sender(&state, &n.number)),
        Err(resp) => resp.into_response(),
    }
}

async fn undeliverable(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    match parse::<Number>(&body) {
        Ok(n) => done(super::mark_undeliverable(&state, &n.number)),
        Err(resp) => resp.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Service {
    sid: String,
    senders: Vec<String>,
}

async fn service(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    match parse::<Service>(&body) {
        Ok(s) => done(super::add_messaging_service(&state, &s.sid, s.senders)),
        Err(resp) => resp.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileName {
    wa_id: String,
    name: String,
}

async fn profile_name(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    match parse::<ProfileName>(&body) {
        Ok(p) => done(super::set_profile_name(&state, &p.wa_id, &p.name)),
        Err(resp) => resp.into_response(),
    }
}

async fn clock(State(state): State<Arc<TwilioState>>, body: Bytes) -> Response {
    match parse::<Advance>(&body) {
        Ok(a) => {
            state.clock.advance(Duration::from_secs(a.advance_secs));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(resp) => resp.into_response(),
    }
}

/// Waits (at most 30 s) until every status progression started so far has finished.
async fn settled(State(state): State<Arc<TwilioState>>) -> Response {
    match tokio::time::timeout(SETTLE_TIMEOUT, state.poster.settled()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "callbacks still running after 30 s",
        ),
    }
}
