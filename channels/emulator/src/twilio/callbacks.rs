//! Status progression of an accepted message (`sent` → `delivered` [→ `read` on WhatsApp], or
//! `sent` → `undelivered` 30003 for a recipient marked undeliverable), each step stored and,
//! when the send named a `StatusCallback`, posted there signed, in order, in the background.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use http::{HeaderName, HeaderValue, Method, header};

use crate::poster::{CallbackKind, SignedRequest};
use crate::server::lock;
use crate::twilio::address::{self, Channel};
use crate::twilio::form;
use crate::twilio::signature::signature;
use crate::twilio::state::{API_VERSION, Message, TwilioState};

/// The error code of an undeliverable recipient (Twilio 30003, "Unreachable destination
/// handset").
pub const UNREACHABLE: u32 = 30003;

/// The header Twilio signs webhooks with.
pub(crate) const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The statuses a message goes through after `queued`, with the failure code of the last.
fn steps(message: &Message, undeliverable: bool) -> Vec<(&'static str, Option<u32>)> {
    if undeliverable {
        return vec![("sent", None), ("undelivered", Some(UNREACHABLE))];
    }
    match address::channel_of(&message.to) {
        Channel::Sms => vec![("sent", None), ("delivered", None)],
        Channel::Whatsapp => vec![("sent", None), ("delivered", None), ("read", None)],
    }
}

/// Starts the background progression of `message`.
pub(crate) fn schedule(state: &Arc<TwilioState>, message: &Message) {
    let (undeliverable, delay) = {
        let inner = lock(&state.inner);
        let number = address::parse(&message.to).map(|(_, n)| n.to_string());
        (
            number.is_some_and(|n| inner.undeliverable.contains(&n)),
            inner.status_delay,
        )
    };
    let steps = steps(message, undeliverable);
    let state = state.clone();
    let sid = message.sid.clone();
    state.poster.clone().spawn(async move {
        for (status, error_code) in steps {
            tokio::time::sleep(delay).await;
            let Some(message) = advance(&state, &sid, status, error_code) else {
                return;
            };
            if let Some(url) = &message.status_callback {
                let req = status_request(&state, &message, url);
                // A failed callback is logged; Twilio does not retry status callbacks.
                let _ = state
                    .poster
                    .send(&req, CallbackKind::Status, Some(status))
                    .await;
            }
        }
    });
}

/// Stores the new status; `None` when the message is gone (evicted).
fn advance(
    state: &TwilioState,
    sid: &str,
    status: &str,
    error_code: Option<u32>,
) -> Option<Message> {
    let mut inner = lock(&state.inner);
    let message = inner.message_mut(sid)?;
    let now = Utc::now();
    message.status = status.to_string();
    message.error_code = error_code;
    message.date_updated = now;
    if status == "sent" {
        message.date_sent = Some(now);
        message.from_shown = true;
    }
    Some(message.clone())
}

/// The signed status callback form for the message's current status.
fn status_request(state: &TwilioState, message: &Message, url: &str) -> SignedRequest {
    let mut params: Vec<(String, String)> = vec![
        ("SmsSid".into(), message.sid.clone()),
        ("SmsStatus".into(), message.status.clone()),
        ("MessageStatus".into(), message.status.clone()),
        ("To".into(), message.to.clone()),
    ];
    if let Some(service) = &message.messaging_service_sid {
        params.push(("MessagingServiceSid".into(), service.clone()));
    }
    params.push(("MessageSid".into(), message.sid.clone()));
    params.push(("AccountSid".into(), state.account_sid.clone()));
    params.push(("From".into(), message.from.clone()));
    params.push(("ApiVersion".into(), API_VERSION.into()));
    if let Some(code) = message.error_code {
        params.push(("ErrorCode".into(), code.to_string()));
    }
    signed_form(state, url, &params, &message.sid)
}

/// A form post of `params` to `url`, signed with the account's auth token.
pub(crate) fn signed_form(
    state: &TwilioState,
    url: &str,
    params: &[(String, String)],
    message_id: &str,
) -> SignedRequest {
    let sig = signature(&state.auth_token, url, params);
    let mut headers = vec![(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    )];
    if let Ok(value) = HeaderValue::from_str(&sig) {
        headers.push((HeaderName::from_static(SIGNATURE_HEADER), value));
    }
    if let Ok(value) =
        HeaderValue::from_str(&format!("{}-{}", crate::ids::random_hex(16), message_id))
    {
        headers.push((HeaderName::from_static("i-twilio-idempotency-token"), value));
    }
    SignedRequest {
        method: Method::POST,
        url: url.to_string(),
        headers,
        body: Bytes::from(form::encode(params)),
        message_id: message_id.to_string(),
    }
}
