//! Customers' messages (wrapped in the webhook envelope with `contacts`/`profile`/`metadata`,
//! signed, posted), replays, and the `GET` verification handshake.

use std::sync::Arc;

use http::{HeaderValue, Method, header};
use serde_json::{Map, Value};

use crate::poster::{CallbackKind, InboundResult, SignedRequest};
use crate::server::lock;
use crate::whatsapp::envelope::{self, Business, InboundMessage, Payload, TextBody, TextMessage};
use crate::whatsapp::state::{CUSTOMER_LIMIT, WhatsappState};
use crate::whatsapp::wamid;
use crate::{Error, Result};

/// Display name sent in `contacts[].profile.name` when none was set for the wa_id.
pub const DEFAULT_PROFILE_NAME: &str = "Customer";

/// Longest customer text accepted (WhatsApp's own limit on a user message).
pub const MAX_INBOUND_TEXT_CHARS: usize = 65_536;

/// Largest message JSON accepted by [`deliver`], serialized.
const MAX_MESSAGE_JSON_BYTES: usize = 256 * 1024;

/// A wa_id: 1 to 15 digits, not starting with 0 (a leading `+` is dropped).
pub(crate) fn wa_id(field: &'static str, value: &str) -> Result<String> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if (1..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
    {
        Ok(digits.to_string())
    } else {
        Err(Error::invalid(field, "must be a WhatsApp id (1-15 digits)"))
    }
}

/// Posts a customer's text message.
pub(crate) async fn deliver_text(
    state: &Arc<WhatsappState>,
    from: &str,
    text: &str,
) -> Result<InboundResult> {
    let from = wa_id("from_wa_id", from)?;
    if text.is_empty() || text.chars().count() > MAX_INBOUND_TEXT_CHARS {
        return Err(Error::invalid("text", "must be 1 to 65536 characters"));
    }
    let message = InboundMessage::Text(TextMessage {
        id: wamid::new(&from, true),
        timestamp: chrono::Utc::now().timestamp().to_string(),
        from: from.clone(),
        text: TextBody {
            body: text.to_string(),
        },
        kind: "text",
    });
    post(state, &from, message).await
}

/// Posts any customer message given as a `messages[]` entry. `from` and `type` are required;
/// `id` and `timestamp` are filled in when missing.
pub(crate) async fn deliver(state: &Arc<WhatsappState>, message: Value) -> Result<InboundResult> {
    let Value::Object(mut message) = message else {
        return Err(Error::invalid("message", "must be a JSON object"));
    };
    let from = match message.get("from") {
        Some(Value::String(s)) => wa_id("message.from", s)?,
        _ => return Err(Error::invalid("message.from", "must be a string of digits")),
    };
    message.insert("from".into(), Value::String(from.clone()));
    if !message.get("type").is_some_and(Value::is_string) {
        return Err(Error::invalid("message.type", "must be a string"));
    }
    fill(&mut message, "id", || wamid::new(&from, true))?;
    fill(&mut message, "timestamp", || {
        chrono::Utc::now().timestamp().to_string()
    })?;
    let message = Value::Object(message);
    let size = serde_json::to_vec(&message)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_MESSAGE_JSON_BYTES {
        return Err(Error::invalid("message", "larger than 256 KiB"));
    }
    post(state, &from, InboundMessage::Other(message)).await
}

/// Sets `key` to `make()` when absent; refuses a present non-string value.
fn fill(
    message: &mut Map<String, Value>,
    key: &'static str,
    make: impl FnOnce() -> String,
) -> Result<()> {
    match message.get(key) {
        None => {
            message.insert(key.into(), Value::String(make()));
            Ok(())
        }
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        Some(_) => Err(Error::invalid(
            if key == "id" {
                "message.id"
            } else {
                "message.timestamp"
            },
            "must be a non-empty string",
        )),
    }
}

fn message_id(message: &InboundMessage) -> String {
    match message {
        InboundMessage::Text(t) => t.id.clone(),
        InboundMessage::Other(v) => v
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    }
}

async fn post(
    state: &Arc<WhatsappState>,
    from: &str,
    message: InboundMessage,
) -> Result<InboundResult> {
    let id = message_id(&message);
    let request = {
        let mut inner = lock(&state.inner);
        let url = inner
            .webhook
            .clone()
            .ok_or(Error::NoWebhook("WhatsApp Cloud"))?;
        if !inner.last_inbound.contains_key(from) && inner.tracked_customers() >= CUSTOMER_LIMIT {
            return Err(Error::LimitReached("customers tracked"));
        }
        inner
            .last_inbound
            .insert(from.to_string(), state.clock.now());
        inner.push_inbound_id(id.clone());
        let name = inner
            .profile_names
            .get(from)
            .cloned()
            .unwrap_or_else(|| DEFAULT_PROFILE_NAME.to_string());
        let business = Business {
            waba_id: &state.waba_id,
            display_phone_number: &state.display_phone_number,
            phone_number_id: &state.phone_number_id,
        };
        let body = envelope::body(
            &business,
            &Payload::Message {
                name: &name,
                wa_id: from,
                message: &message,
            },
        );
        let request = envelope::signed_post(&state.app_secret, &url, body, &id);
        inner.last_inbound_request = Some(request.clone());
        request
    };
    send(state, &request, CallbackKind::Inbound).await
}

/// Sends the last inbound request again, byte for byte.
pub(crate) async fn replay(state: &Arc<WhatsappState>) -> Result<InboundResult> {
    let request = lock(&state.inner)
        .last_inbound_request
        .clone()
        .ok_or(Error::NothingToReplay)?;
    send(state, &request, CallbackKind::Replay).await
}

async fn send(
    state: &WhatsappState,
    request: &SignedRequest,
    kind: CallbackKind,
) -> Result<InboundResult> {
    let answer = state.poster.send(request, kind, None).await?;
    Ok(InboundResult {
        status: answer.status,
        sid: request.message_id.clone(),
        body: answer.body,
        content_type: answer.content_type,
    })
}

/// Meta's verification request: `GET <webhook>?hub.mode=subscribe&hub.challenge=<random>&
/// hub.verify_token=<token>`; true when the answer is 200 with exactly the challenge.
pub(crate) async fn verify(state: &WhatsappState, token: &str) -> Result<bool> {
    let webhook = lock(&state.inner)
        .webhook
        .clone()
        .ok_or(Error::NoWebhook("WhatsApp Cloud"))?;
    let mut url =
        url::Url::parse(&webhook).map_err(|e| Error::invalid("webhook_url", e.to_string()))?;
    let challenge = crate::ids::random_digits(10);
    url.query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", &challenge)
        .append_pair("hub.verify_token", token);
    let request = SignedRequest {
        method: Method::GET,
        url: url.to_string(),
        headers: vec![(header::ACCEPT, HeaderValue::from_static("*/*"))],
        body: bytes::Bytes::new(),
        message_id: String::new(),
    };
    let answer = state
        .poster
        .send(&request, CallbackKind::Handshake, None)
        .await?;
    Ok(answer.status == 200 && answer.body == challenge)
}
