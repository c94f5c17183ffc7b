//! A local WhatsApp Cloud API (Meta Graph API, `messages` endpoint and webhooks).
//!
//! - `POST /{version}/{phone_number_id}/messages` with `Authorization: Bearer <token>`:
//!   text, template (approved names only), media and other types, read marks; Graph error
//!   bodies with Meta's codes (190, 100, 131008, 131047, 132001, 130429, …).
//! - A free-form message (anything but a template) needs the customer's last message to be
//!   less than 24 hours old (emulator clock, see [`WhatsappEmulator::advance_clock`]),
//!   else 400 with 131047.
//! - Accepted messages get `statuses[]` webhooks (`sent`, `delivered`, `read`; `failed` with
//!   131026 for recipients marked undeliverable) with `biz_opaque_callback_data`, signed with
//!   `X-Hub-Signature-256`, in Meta's envelope.
//! - [`WhatsappEmulator::inbound_text`] / [`WhatsappEmulator::inbound`] post customers'
//!   messages the same way; [`WhatsappEmulator::verify_webhook`] performs the handshake.

mod ascii;
mod control;
mod envelope;
mod graph;
mod inbound;
mod send;
mod signature;
mod state;
mod statuses;
mod wamid;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::fault::{Fault, FaultQueue};
use crate::poster::{CallbackRecord, InboundResult, Poster, check_webhook_url};
use crate::server::{self, lock};
use crate::{Error, Result};

pub use inbound::{DEFAULT_PROFILE_NAME, MAX_INBOUND_TEXT_CHARS};
pub use send::{MAX_CALLBACK_DATA_CHARS, MAX_TEXT_CHARS};
pub use signature::{SIGNATURE_HEADER, signature};
pub use state::{CUSTOMER_LIMIT, MESSAGE_LIMIT};

use state::{Inner, WhatsappState};

/// Phone number id of [`WhatsappSettings::default`].
pub const DEMO_PHONE_NUMBER_ID: &str = "106540352242922";
/// Access token of [`WhatsappSettings::default`].
pub const DEMO_ACCESS_TOKEN: &str = "emulator-whatsapp-access-token";
/// App secret of [`WhatsappSettings::default`] (signs webhooks).
pub const DEMO_APP_SECRET: &str = "emulator-whatsapp-app-secret";
/// Verify token of [`WhatsappSettings::default`] (the handshake).
pub const DEMO_VERIFY_TOKEN: &str = "emulator-whatsapp-verify-token";
/// The business's display number sent in `metadata` (default).
pub const DEFAULT_DISPLAY_PHONE_NUMBER: &str = "15550783881";
/// The WhatsApp Business Account id sent as `entry[].id` (default).
pub const DEFAULT_WABA_ID: &str = "102290129340398";

/// The emulated business phone number and app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsappSettings {
    /// The number's id in the path (digits).
    pub phone_number_id: String,
    /// The Bearer token the API accepts.
    pub access_token: String,
    /// Signs webhook bodies (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// Sent in the verification handshake.
    pub verify_token: String,
    /// The app's webhook (messages and statuses).
    pub webhook_url: Option<String>,
    /// Approved template names.
    pub templates: Vec<String>,
}

impl Default for WhatsappSettings {
    /// The demo number and app ([`DEMO_PHONE_NUMBER_ID`] …), no webhook, no templates.
    fn default() -> Self {
        WhatsappSettings {
            phone_number_id: DEMO_PHONE_NUMBER_ID.into(),
            access_token: DEMO_ACCESS_TOKEN.into(),
            app_secret: DEMO_APP_SECRET.into(),
            verify_token: DEMO_VERIFY_TOKEN.into(),
            webhook_url: None,
            templates: Vec::new(),
        }
    }
}

/// Most approved templates.
const TEMPLATE_LIMIT: usize = 1000;

impl WhatsappSettings {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<()> {
        let id = &self.phone_number_id;
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("phone_number_id", "must be 1 to 32 digits"));
        }
        for (field, value) in [
            ("access_token", &self.access_token),
            ("app_secret", &self.app_secret),
            ("verify_token", &self.verify_token),
        ] {
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err(Error::invalid(
                    field,
                    "must be non-empty, without control characters",
                ));
            }
        }
        if let Some(url) = &self.webhook_url {
            check_webhook_url("webhook_url", url)?;
        }
        if self.templates.len() > TEMPLATE_LIMIT {
            return Err(Error::invalid("templates", "at most 1000 templates"));
        }
        for name in &self.templates {
            check_template_name(name)?;
        }
        Ok(())
    }
}

/// Meta template names: lower-case letters, digits and underscores, at most 512 characters.
fn check_template_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "templates",
            format!("'{name}' is not a template name (a-z, 0-9, _; at most 512)"),
        ))
    }
}

/// A message accepted by the API, as it stands now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentMessage {
    /// `wamid.…`.
    pub id: String,
    /// `to` as sent.
    pub to: String,
    /// The recipient's wa_id (digits).
    pub wa_id: String,
    /// `text`, `template`, `image`, …
    pub message_type: String,
    /// `text.body` of a text message.
    pub text: Option<String>,
    /// `template.name` of a template message.
    pub template: Option<String>,
    /// `template.language.code`.
    pub template_language: Option<String>,
    /// Echoed on the status webhooks.
    pub biz_opaque_callback_data: Option<String>,
    /// `context.message_id` (a quoted reply).
    pub context_message_id: Option<String>,
    /// `accepted`, then `sent`, `delivered`, `read`, or `failed`.
    pub status: String,
    /// 131026 when `failed`.
    pub error_code: Option<u32>,
    /// The request body as received.
    pub payload: serde_json::Value,
    /// When the API accepted the message (wall clock, not the emulator clock; microseconds).
    pub accepted_at: chrono::DateTime<chrono::Utc>,
}

/// A running WhatsApp Cloud emulator. Dropping it stops the server and its background
/// webhooks.
pub struct WhatsappEmulator {
    state: Arc<WhatsappState>,
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl WhatsappEmulator {
    /// Starts an emulator on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// If the settings are invalid or no port can be bound (a test set-up error).
    pub async fn spawn(settings: WhatsappSettings) -> WhatsappEmulator {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the WhatsApp emulator");
        Self::serve(settings, listener)
            .await
            .unwrap_or_else(|e| panic!("cannot start the WhatsApp emulator: {e}"))
    }

    /// Starts an emulator on `listener`.
    pub async fn serve(
        settings: WhatsappSettings,
        listener: TcpListener,
    ) -> Result<WhatsappEmulator> {
        settings.validate()?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::invalid("listener", e.to_string()))?;
        let cancel = CancellationToken::new();
        let inner = Inner {
            webhook: settings.webhook_url,
            templates: settings.templates.into_iter().collect::<BTreeSet<_>>(),
            status_delay: Duration::from_millis(10),
            ..Inner::default()
        };
        let state = Arc::new(WhatsappState {
            phone_number_id: settings.phone_number_id,
            display_phone_number: DEFAULT_DISPLAY_PHONE_NUMBER.into(),
            waba_id: DEFAULT_WABA_ID.into(),
            access_token: settings.access_token,
            app_secret: settings.app_secret,
            verify_token: settings.verify_token,
            url: server::base_url(addr),
            inner: Mutex::new(inner),
            faults: Mutex::new(FaultQueue::default()),
            clock: Clock::default(),
            poster: Arc::new(Poster::new("facebookexternalua", cancel.clone())),
        });
        let task = server::serve(listener, router(state.clone()), cancel.clone());
        Ok(WhatsappEmulator {
            state,
            addr,
            cancel,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`: the `api_url` for the WhatsApp adapter.
    pub fn url(&self) -> String {
        self.state.url.clone()
    }

    /// The socket address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The phone number id in the API path.
    pub fn phone_number_id(&self) -> &str {
        &self.state.phone_number_id
    }

    /// Every message accepted by the API, oldest first (at most [`MESSAGE_LIMIT`] kept).
    pub fn sent(&self) -> Vec<SentMessage> {
        sent(&self.state)
    }

    /// Posts a customer's text message from `from_wa_id` (digits, or `+` and digits).
    /// Answers the webhook's HTTP status and the message's `wamid`.
    pub async fn inbound_text(&self, from_wa_id: &str, text: &str) -> Result<InboundResult> {
        inbound::deliver_text(&self.state, from_wa_id, text).await
    }

    /// Posts any customer message, given as a `messages[]` entry (`from` and `type`
    /// required; `id` and `timestamp` filled in when missing), e.g.
    /// `{"from": "15551234567", "type": "image", "image": {"id": "…", "mime_type": "image/jpeg"}}`.
    pub async fn inbound(&self, message_json: serde_json::Value) -> Result<InboundResult> {
        inbound::deliver(&self.state, message_json).await
    }

    /// Sends the last inbound request again, byte for byte (a duplicate delivery).
    pub async fn replay_last_inbound(&self) -> Result<InboundResult> {
        inbound::replay(&self.state).await
    }

    /// Performs the verification handshake with the configured verify token: true when the
    /// webhook answered 200 with exactly the challenge.
    pub async fn verify_webhook(&self) -> Result<bool> {
        inbound::verify(&self.state, &self.state.verify_token).await
    }

    /// The handshake with another token (a webhook must refuse it).
    pub async fn verify_webhook_with_token(&self, token: &str) -> Result<bool> {
        inbound::verify(&self.state, token).await
    }

    /// Sets the app's webhook.
    ///
    /// # Panics
    /// If `url` is not an absolute http(s) URL.
    pub fn set_webhook(&self, url: impl Into<String>) {
        set_webhook(&self.state, Some(url.into())).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Approves one more template name (a-z, 0-9, `_`).
    pub fn add_template(&self, name: &str) -> Result<()> {
        add_template(&self.state, name)
    }

    /// Messages to `wa_id` (1 to 15 digits) end `failed` with 131026.
    pub fn mark_undeliverable(&self, wa_id: &str) -> Result<()> {
        mark_undeliverable(&self.state, wa_id)
    }

    /// The `profile.name` (1 to 256 characters) sent with messages from `wa_id`.
    pub fn set_profile_name(&self, wa_id: &str, name: &str) -> Result<()> {
        set_profile_name(&self.state, wa_id, name)
    }

    /// Queues a fault for the next sends.
    ///
    /// # Panics
    /// If the fault is invalid (see [`Fault::validate`]) or 100 are already queued.
    pub fn fault(&self, fault: Fault) {
        lock(&self.state.faults)
            .push(fault)
            .unwrap_or_else(|e| panic!("invalid fault: {e}"));
    }

    /// Drops every queued fault.
    pub fn clear_faults(&self) {
        lock(&self.state.faults).clear();
    }

    /// Ages every customer-service window by `by` (the emulator clock moves forward).
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// The pause before each status webhook (default 10 ms).
    pub fn set_status_delay(&self, delay: Duration) {
        lock(&self.state.inner).status_delay = delay;
    }

    /// Every webhook request made (messages, replays, statuses, handshakes), oldest first.
    pub fn callbacks(&self) -> Vec<CallbackRecord> {
        self.state.poster.records()
    }

    /// Waits until every status sequence started so far has finished.
    pub async fn settled(&self) {
        self.state.poster.settled().await;
    }

    /// Stops the server and background webhooks, and waits for the server to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for WhatsappEmulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn router(state: Arc<WhatsappState>) -> Router {
    Router::new()
        .merge(control::routes())
        .route("/{version}/{phone_number_id}/messages", post(send::send))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(server::buffer_body))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    graph::GraphError::unknown_path(req.uri().path()).into_response()
}

fn sent(state: &WhatsappState) -> Vec<SentMessage> {
    lock(&state.inner)
        .messages
        .iter()
        .map(|m| SentMessage {
            id: m.id.clone(),
            to: m.to.clone(),
            wa_id: m.wa_id.clone(),
            message_type: m.message_type.clone(),
            text: m.text.clone(),
            template: m.template.clone(),
            template_language: m.template_language.clone(),
            biz_opaque_callback_data: m.biz_opaque_callback_data.clone(),
            context_message_id: m.context_message_id.clone(),
            status: m.status.clone(),
            error_code: m.error_code,
            payload: m.payload.clone(),
            accepted_at: m.accepted_at,
        })
        .collect()
}

fn set_webhook(state: &WhatsappState, url: Option<String>) -> Result<()> {
    if let Some(u) = &url {
        check_webhook_url("webhook_url", u)?;
    }
    lock(&state.inner).webhook = url;
    Ok(())
}

fn add_template(state: &WhatsappState, name: &str) -> Result<()> {
    check_template_name(name)?;
    let mut inner = lock(&state.inner);
    if inner.templates.len() >= TEMPLATE_LIMIT {
        return Err(Error::LimitReached("templates"));
    }
    inner.templates.insert(name.to_string());
    Ok(())
}

fn mark_undeliverable(state: &WhatsappState, wa_id: &str) -> Result<()> {
    let wa_id = inbound::wa_id("wa_id", wa_id)?;
    let mut inner = lock(&state.inner);
    if inner.undeliverable.len() >= CUSTOMER_LIMIT {
        return Err(Error::LimitReached("undeliverable numbers"));
    }
    inner.undeliverable.insert(wa_id);
    Ok(())
}

fn set_profile_name(state: &WhatsappState, wa_id: &str, name: &str) -> Result<()> {
    let wa_id = inbound::wa_id("wa_id", wa_id)?;
    if name.is_empty() || name.chars().count() > 256 {
        return Err(Error::invalid("name", "must be 1 to 256 characters"));
    }
    let mut inner = lock(&state.inner);
    if !inner.profile_names.contains_key(&wa_id) && inner.tracked_customers() >= CUSTOMER_LIMIT {
        return Err(Error::LimitReached("customers tracked"));
    }
    inner.profile_names.insert(wa_id, name.to_string());
    Ok(())
}
