//! Status webhooks of an accepted message: `sent` → `delivered` → `read`, or `failed` with
//! 131026 for a recipient marked undeliverable; each posted signed, in order, in the
//! background, carrying the send's `biz_opaque_callback_data`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::poster::CallbackKind;
use crate::server::lock;
use crate::whatsapp::envelope::{self, Business, Payload, StatusEntry};
use crate::whatsapp::state::{Stored, WhatsappState};

/// The error code of an undeliverable recipient.
pub(crate) const UNDELIVERABLE: u32 = 131026;

/// First Graph version whose statuses omit `conversation`.
const NO_CONVERSATION_FROM: u32 = 24;

/// Starts the background status sequence of message `id`.
pub(crate) fn schedule(state: &Arc<WhatsappState>, id: &str, undeliverable: bool, delay: Duration) {
    let steps: &'static [&'static str] = if undeliverable {
        &["failed"]
    } else {
        &["sent", "delivered", "read"]
    };
    let state = state.clone();
    let id = id.to_string();
    let conversation_id = crate::ids::random_hex(16);
    state.poster.clone().spawn(async move {
        for status in steps {
            tokio::time::sleep(delay).await;
            let (message, webhook) = {
                let mut inner = lock(&state.inner);
                let webhook = inner.webhook.clone();
                let Some(message) = inner.message_mut(&id) else {
                    return;
                };
                message.status = (*status).to_string();
                if *status == "failed" {
                    message.error_code = Some(UNDELIVERABLE);
                }
                (message.clone(), webhook)
            };
            let Some(url) = webhook else { continue };
            let entry = status_entry(&message, status, &conversation_id);
            let business = Business {
                waba_id: &state.waba_id,
                display_phone_number: &state.display_phone_number,
                phone_number_id: &state.phone_number_id,
            };
            let body = envelope::body(&business, &Payload::Status(&entry));
            let req = envelope::signed_post(&state.app_secret, &url, body, &message.id);
            // Failures are logged; the emulator does not retry (see the docs).
            let _ = state
                .poster
                .send(&req, CallbackKind::Status, Some(status))
                .await;
        }
    });
}

/// One `statuses[]` entry for `message` reaching `status`.
fn status_entry(message: &Stored, status: &str, conversation_id: &str) -> StatusEntry {
    let now = chrono::Utc::now().timestamp();
    let billable_step = matches!(status, "sent" | "delivered");
    let template = message.message_type == "template";
    let conversation = (billable_step && message.api_major < NO_CONVERSATION_FROM).then(|| {
        let origin = if template { "utility" } else { "service" };
        if status == "sent" {
            json!({
                "id": conversation_id,
                "expiration_timestamp": (now + 86_400).to_string(),
                "origin": {"type": origin},
            })
        } else {
            json!({"id": conversation_id, "origin": {"type": origin}})
        }
    });
    let pricing = billable_step.then(|| {
        if template {
            json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"})
        } else {
            json!({"billable": false, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"})
        }
    });
    let errors = (status == "failed").then(|| {
        json!([{
            "code": UNDELIVERABLE,
            "title": "Message undeliverable",
            "message": "Message undeliverable",
            "error_data": {"details": "Message Undeliverable."},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }])
    });
    StatusEntry {
        id: message.id.clone(),
        status: status.to_string(),
        timestamp: now.to_string(),
        recipient_id: message.wa_id.clone(),
        conversation,
        pricing,
        biz_opaque_callback_data: message.biz_opaque_callback_data.clone(),
        errors,
    }
}
