//! `/__emulator/whatsapp/…`: the emulator's control routes (not Meta's API; unauthenticated,
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
use serde_json::{Value, json};

use crate::control::{Advance, SETTLE_TIMEOUT, done, error, from_error, parse};
use crate::fault::Fault;
use crate::server::lock;
use crate::whatsapp::inbound;
use crate::whatsapp::state::WhatsappState;

pub(crate) fn routes() -> axum::Router<Arc<WhatsappState>> {
    axum::Router::new()
        .route("/__emulator/whatsapp/messages", get(messages))
        .route("/__emulator/whatsapp/callbacks", get(callbacks))
        .route("/__emulator/whatsapp/inbound", post(inbound))
        .route("/__emulator/whatsapp/replay", post(replay))
        .route("/__emulator/whatsapp/verify", post(verify))
        .route(
            "/__emulator/whatsapp/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
        .route("/__emulator/whatsapp/webhook", put(webhook))
        .route("/__emulator/whatsapp/templates", post(template))
        .route("/__emulator/whatsapp/undeliverable", post(undeliverable))
        .route("/__emulator/whatsapp/profile-names", post(profile_name))
        .route("/__emulator/whatsapp/clock", post(clock))
        .route("/__emulator/whatsapp/settled", get(settled))
}

async fn messages(State(state): State<Arc<WhatsappState>>) -> Response {
    Json(super::sent(&state)).into_response()
}

async fn callbacks(State(state): State<Arc<WhatsappState>>) -> Response {
    Json(state.poster.records()).into_response()
}

/// `{"from": "<wa_id>", "text": "…"}` or `{"message": {…messages[] entry…}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundBody {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    message: Option<Value>,
}

async fn inbound(State(state): State<Arc<WhatsappState>>, body: Bytes) -> Response {
    let req: InboundBody = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return resp.into_response(),
    };
    let result = match (req.from, req.text, req.message) {
        (Some(from), Some(text), None) => inbound::deliver_text(&state, &from, &text).await,
        (None, None, Some(message)) => inbound::deliver(&state, message).await,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give either from and text, or message",
            );
        }
    };
    match result {
        Ok(r) => Json(r).into_response(),
        Err(e) => from_error(e),
    }
}

async fn replay(State(state): State<Arc<WhatsappState>>) -> Response {
    match inbound::replay(&state).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => from_error(e),
    }
}

/// `{}` (the configured token) or `{"verify_token": "…"}`; answers `{"echoed": bool}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    #[serde(default)]
    verify_token: Option<String>,
}

async fn verify(State(state): State<Arc<WhatsappState>>, body: Bytes) -> Response {
    let req: VerifyBody = if body.is_empty() {
        VerifyBody { verify_token: None }
    } else {
        match parse(&body) {
            Ok(r) => r,
            Err(resp) => return resp.into_response(),
        }
    };
    let token = req
        .verify_token
        .unwrap_or_else(|| state.verify_token.clone());
    match inbound::verify(&state, &token).await {
        Ok(echoed) => Json(json!({"echoed": echoed})).into_response(),
        Err(e) => from_error(e),
    }
}

async fn faults(State(state): State<Arc<WhatsappState>>) -> Response {
    Json(lock(&state.faults).pending()).into_response()
}

async fn add_fault(State(state): State<Arc<WhatsappState>>, body: Bytes) -> Response {
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

async fn clear_faults(State(state): State<Arc<WhatsappState>>) -> StatusCode {
    lock(&state.faults).clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Webhook {
    #[serde(default)]
    url: Option<String>,
}

/// Replaces the webhook (`{"url": null}` clears it).
async fn webhook(State(state): State<Arc<WhatsappState>>, body: Bytes) -> Response {
    match parse::<Webhook>(&body) {
        Ok(w) => done(super::set_webhook(&state, w.url)),
        Err(resp) => resp.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    name: String,
}

async fn template(State(state): State<Arc<WhatsappState>>, body: Bytes) -> Response {
    match parse::<Template>(&body) {
        Ok(t) => done(super::add_template(&state, &t.name)),
        Err(resp) => resp.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaId {
    wa_id: String,
}

async fn undeliverable(State(state): State<Arc<WhatsappState>>, body: Bytes) -> Response {
    match parse::<WaId>(&body) {
        Ok(w) => done(super::mark_undeliverable(&state, &w.wa_id)),
        Err(resp) => resp.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileName {
    wa_id: String,
    name: String,
}

async fn profile_name(State(state): State<Arc<WhatsappState>>, body: Bytes) -> Response {
    match parse::<ProfileName>(&body) {
        Ok(p) => done(super::set_profile_name(&state, &p.wa_id, &p.name)),
        Err(resp) => resp.into_response(),
    }
}

async fn clock(State(state): State<Arc<WhatsappState>>, body: Bytes) -> Response {
    match parse::<Advance>(&body) {
        Ok(a) => {
            state.clock.advance(Duration::from_secs(a.advance_secs));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(resp) => resp.into_response(),
    }
}

async fn settled(State(state): State<Arc<WhatsappState>>) -> Response {
    match tokio::time::timeout(SETTLE_TIMEOUT, state.poster.settled()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "webhooks still running after 30 s",
        ),
    }
}
