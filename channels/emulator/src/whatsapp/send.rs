//! `POST /{version}/{phone_number_id}/messages`: Bearer token, the phone number id, faults,
//! then the body (text, template, media, other types; or a read mark), the 24-hour window,
//! and the answer; accepted messages get their status webhooks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Uri, header};
use serde_json::{Map, Value, json};

use crate::clock::window_open;
use crate::fault::Injected;
use crate::secret::constant_time_eq;
use crate::server::lock;
use crate::whatsapp::graph::GraphError;
use crate::whatsapp::state::{Inner, Stored, WhatsappState};
use crate::whatsapp::{statuses, wamid};

/// Longest `text.body`, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Longest `biz_opaque_callback_data`, in characters.
pub const MAX_CALLBACK_DATA_CHARS: usize = 512;

/// Message types accepted besides `text` and `template`.
const MEDIA_TYPES: [&str; 5] = ["image", "audio", "video", "document", "sticker"];
const OTHER_TYPES: [&str; 4] = ["interactive", "location", "contacts", "reaction"];

/// The send handler.
pub(crate) async fn send(
    State(state): State<Arc<WhatsappState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(api_major) = parse_version(&version) else {
        return GraphError::unknown_path(uri.path()).into_response();
    };
    if !authorized(&state, &headers, query.get("access_token")) {
        return GraphError::invalid_token().into_response();
    }
    if phone_number_id != state.phone_number_id {
        return GraphError::unknown_object(&phone_number_id).into_response();
    }
    let injected = lock(&state.faults).take();
    match injected {
        Injected::None => {}
        Injected::Delay(d) => tokio::time::sleep(d).await,
        Injected::RateLimit { retry_after_secs } => {
            tracing::info!("injected fault: 429 on send");
            return GraphError::rate_limited(retry_after_secs).into_response();
        }
        Injected::ServerError { status } => {
            tracing::info!(status, "injected fault: server error on send");
            return GraphError::server_error(status).into_response();
        }
    }
    let payload: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => map,
        _ => return GraphError::messaging_product().into_response(),
    };
    if payload.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return GraphError::messaging_product().into_response();
    }
    let now = state.clock.now();
    let mut inner = lock(&state.inner);
    if payload.get("status").is_some() {
        return match mark_read(&inner, &payload) {
            Ok(()) => Json(json!({"success": true})).into_response(),
            Err(e) => e.into_response(),
        };
    }
    let mut stored = match validate(&inner, &payload, now) {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(code = e.code, "send refused");
            return e.into_response();
        }
    };
    stored.api_major = api_major;
    let answer = json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": stored.to, "wa_id": stored.wa_id}],
        "messages": [message_entry(&stored)],
    });
    inner.push_message(stored.clone());
    let undeliverable = inner.undeliverable.contains(&stored.wa_id);
    let delay = inner.status_delay;
    drop(inner);
    tracing::info!(id = %stored.id, kind = %stored.message_type, "message accepted");
    statuses::schedule(&state, &stored.id, undeliverable, delay);
    Json(answer).into_response()
}

/// `{"id"}`, plus `"message_status": "accepted"` for a template (as Meta answers it).
fn message_entry(stored: &Stored) -> Value {
    if stored.message_type == "template" {
        json!({"id": stored.id, "message_status": "accepted"})
    } else {
        json!({"id": stored.id})
    }
}

/// `vNN.N` → NN.
fn parse_version(version: &str) -> Option<u32> {
    let (major, minor) = version.strip_prefix('v')?.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    if digits(major) && digits(minor) {
        major.parse().ok()
    } else {
        None
    }
}

/// `Authorization: Bearer <token>` or `?access_token=`.
fn authorized(state: &WhatsappState, headers: &HeaderMap, query_token: Option<&String>) -> bool {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    header_token
        .or_else(|| query_token.cloned())
        .is_some_and(|t| constant_time_eq(t.as_bytes(), state.access_token.as_bytes()))
}

/// `{"messaging_product":"whatsapp","status":"read","message_id":"wamid.…"}`.
fn mark_read(inner: &Inner, payload: &Map<String, Value>) -> Result<(), GraphError> {
    if payload.get("status").and_then(Value::as_str) != Some("read") {
        return Err(GraphError::invalid_parameter("Param status must be 'read'"));
    }
    let id = payload
        .get("message_id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::missing("Parameter 'message_id' is required"))?;
    if !inner.inbound_ids.iter().any(|known| known == id) {
        return Err(GraphError::invalid_parameter("Invalid message_id"));
    }
    Ok(())
}

/// The customer's wa_id from `to`: digits with an optional leading `+`, 1 to 15 of them.
fn wa_id_of(to: &str) -> Option<String> {
    let digits = to.strip_prefix('+').unwrap_or(to);
    ((1..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0'))
    .then(|| digits.to_string())
}

fn str_field<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn validate(
    inner: &Inner,
    payload: &Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Stored, GraphError> {
    if let Some(kind) = payload.get("recipient_type")
        && kind.as_str() != Some("individual")
    {
        return Err(GraphError::invalid_parameter(
            "Param recipient_type must be 'individual'",
        ));
    }
    let to = payload
        .get("to")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| GraphError::missing("Parameter 'to' is required"))?;
    let wa_id =
        wa_id_of(to).ok_or_else(|| GraphError::invalid_parameter("Invalid parameter 'to'"))?;
    let message_type = match payload.get("type") {
        None => "text",
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(GraphError::invalid_parameter("Param type must be a string")),
    };
    let biz = match payload.get("biz_opaque_callback_data") {
        None => None,
        Some(Value::String(s)) if s.chars().count() <= MAX_CALLBACK_DATA_CHARS => Some(s.clone()),
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "Param biz_opaque_callback_data must be a string of at most 512 characters",
            ));
        }
    };
    let context_message_id = match payload.get("context") {
        None => None,
        Some(ctx) => Some(
            str_field(ctx, "message_id")
                .ok_or_else(|| GraphError::missing("Parameter 'context.message_id' is required"))?
                .to_string(),
        ),
    };
    let object = payload.get(message_type).filter(|v| v.is_object());
    let mut text = None;
    let mut template = None;
    let mut template_language = None;
    match message_type {
        "text" => {
            let body = object
                .and_then(|o| str_field(o, "body"))
                .ok_or_else(|| GraphError::missing("Parameter 'text.body' is required"))?;
            if body.chars().count() > MAX_TEXT_CHARS {
                return Err(GraphError::invalid_parameter(
                    "Param text['body'] must be at most 4096 characters long.",
                ));
            }
            text = Some(body.to_string());
        }
        "template" => {
            let object =
                object.ok_or_else(|| GraphError::missing("Parameter 'template' is required"))?;
            let name = str_field(object, "name")
                .ok_or_else(|| GraphError::missing("Parameter 'template.name' is required"))?;
            let language = object
                .get("language")
                .and_then(|l| str_field(l, "code"))
                .ok_or_else(|| {
                    GraphError::missing("Parameter 'template.language.code' is required")
                })?;
            if !inner.templates.contains(name) {
                return Err(GraphError::template_missing(name, language));
            }
            template = Some(name.to_string());
            template_language = Some(language.to_string());
        }
        t if MEDIA_TYPES.contains(&t) => {
            let object = object
                .ok_or_else(|| GraphError::missing(format!("Parameter '{t}' is required")))?;
            match (str_field(object, "link"), str_field(object, "id")) {
                (Some(link), _) => {
                    let ok = url::Url::parse(link)
                        .ok()
                        .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
                    if !ok {
                        return Err(GraphError::invalid_parameter(format!(
                            "Param {t}['link'] must be an http(s) URL"
                        )));
                    }
                }
                (None, Some(_)) => {}
                (None, None) => {
                    return Err(GraphError::missing(format!(
                        "Parameter '{t}.link' or '{t}.id' is required"
                    )));
                }
            }
        }
        t if OTHER_TYPES.contains(&t) => {
            if object.is_none() {
                return Err(GraphError::missing(format!("Parameter '{t}' is required")));
            }
        }
        other => {
            return Err(GraphError::invalid_parameter(format!(
                "Param type must be one of {{AUDIO, CONTACTS, DOCUMENT, IMAGE, INTERACTIVE, LOCATION, REACTION, STICKER, TEMPLATE, TEXT, VIDEO}} - got \"{}\".",
                other.chars().take(64).collect::<String>()
            )));
        }
    }
    if message_type != "template" && !window_open(inner.last_inbound.get(&wa_id).copied(), now) {
        return Err(GraphError::re_engagement());
    }
    Ok(Stored {
        id: wamid::new(&wa_id, false),
        to: to.to_string(),
        wa_id,
        message_type: message_type.to_string(),
        text,
        template,
        template_language,
        biz_opaque_callback_data: biz,
        context_message_id,
        status: "accepted".into(),
        error_code: None,
        payload: Value::Object(payload.clone()),
        api_major: 0,
        accepted_at: chrono::Utc::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_wa_ids() {
        assert_eq!(parse_version("v21.0"), Some(21));
        assert_eq!(parse_version("v24.0"), Some(24));
        for bad in ["21.0", "v21", "vx.0", "v.0", "v1234.0"] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        assert_eq!(wa_id_of("+16505551234").as_deref(), Some("16505551234"));
        assert_eq!(wa_id_of("16505551234").as_deref(), Some("16505551234"));
        for bad in [
            "",
            "+",
            "0123",
            "1650555123456789",
            "1650-555",
            "whatsapp:+1650",
        ] {
            assert_eq!(wa_id_of(bad), None, "{bad}");
        }
    }
}
