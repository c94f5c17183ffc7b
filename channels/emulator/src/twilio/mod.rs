//! A local Twilio Messages API (SMS and Twilio WhatsApp senders).
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (HTTP Basic with the account's
//!   auth token or an API key) validates like Twilio and answers 201 with the Message
//!   resource, or Twilio's error body and code.
//! - After each accepted send the message moves `sent` → `delivered` (→ `read` on WhatsApp);
//!   a recipient marked undeliverable ends `undelivered` with 30003. Each step is posted,
//!   signed with `X-Twilio-Signature`, to the send's `StatusCallback`.
//! - [`TwilioEmulator::inbound`] posts a customer's message to the number's webhook, signed
//!   exactly like Twilio; STOP opts the customer out (21610 on later sends), and a WhatsApp
//!   customer's message opens the 24-hour window (63016 outside it without `ContentSid`).
//! - Senders: numbers added with [`TwilioEmulator::add_number`] (SMS),
//!   [`TwilioEmulator::add_whatsapp_sender`] and [`TwilioEmulator::add_messaging_service`].
//!   While no SMS number (WhatsApp sender) is added, any E.164 `From` on that channel counts
//!   as the account's own.

mod address;
mod auth;
mod callbacks;
mod control;
mod errors;
mod form;
mod inbound;
mod read;
mod send;
mod signature;
mod state;

pub mod segments;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::fault::{Fault, FaultQueue};
use crate::poster::{CallbackRecord, InboundResult, Poster, check_webhook_url};
use crate::server::{self, lock};
use crate::{Error, Result};

pub use callbacks::UNREACHABLE as UNDELIVERED_ERROR_CODE;
pub use inbound::{DEFAULT_PROFILE_NAME, InboundMedia};
pub use send::{MAX_BODY_CHARS, MAX_MEDIA};
pub use signature::{signature, signed_string};
pub use state::{CUSTOMER_LIMIT, MESSAGE_LIMIT};

use state::{Inner, TwilioState};

/// Account SID of [`TwilioSettings::default`] (the demo account).
pub const DEMO_ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Auth token of [`TwilioSettings::default`].
pub const DEMO_AUTH_TOKEN: &str = "emulator-twilio-auth-token";

/// The emulated account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwilioSettings {
    /// `AC` + 32 hex digits; the API path must name it and Basic auth uses it.
    pub account_sid: String,
    /// Authenticates API calls and signs every webhook.
    pub auth_token: String,
    /// An API key (`SK…` SID, secret) accepted for Basic auth as well.
    pub api_key: Option<(String, String)>,
    /// Where inbound SMS are posted (the number's "A message comes in" webhook).
    pub webhook_url: Option<String>,
    /// Where inbound messages of WhatsApp senders are posted.
    pub whatsapp_webhook_url: Option<String>,
}

impl Default for TwilioSettings {
    /// The demo account ([`DEMO_ACCOUNT_SID`], [`DEMO_AUTH_TOKEN`]), no API key, no webhooks.
    fn default() -> Self {
        TwilioSettings {
            account_sid: DEMO_ACCOUNT_SID.into(),
            auth_token: DEMO_AUTH_TOKEN.into(),
            api_key: None,
            webhook_url: None,
            whatsapp_webhook_url: None,
        }
    }
}

impl TwilioSettings {
    /// Checks the settings; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.account_sid.starts_with("AC") && crate::hex::is_hex(&self.account_sid[2..], 32)) {
            return Err(Error::invalid(
                "account_sid",
                "must be AC followed by 32 hex digits",
            ));
        }
        if self.auth_token.is_empty() {
            return Err(Error::invalid("auth_token", "must not be empty"));
        }
        if let Some((sid, secret)) = &self.api_key {
            if !(sid.starts_with("SK") && crate::hex::is_hex(&sid[2..], 32)) {
                return Err(Error::invalid(
                    "api_key",
                    "the SID must be SK followed by 32 hex digits",
                ));
            }
            if secret.is_empty() {
                return Err(Error::invalid("api_key", "the secret must not be empty"));
            }
        }
        if let Some(url) = &self.webhook_url {
            check_webhook_url("webhook_url", url)?;
        }
        if let Some(url) = &self.whatsapp_webhook_url {
            check_webhook_url("whatsapp_webhook_url", url)?;
        }
        Ok(())
    }
}

/// A message accepted by `POST …/Messages.json`, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentMessage {
    /// `SM…` (`MM…` with media).
    pub sid: String,
    /// The sender used (for a Messaging Service send, the pool's number chosen).
    pub from: String,
    /// The recipient as given (`+E164` or `whatsapp:+E164`).
    pub to: String,
    /// `Body` (empty for a media-only or `ContentSid` send).
    pub body: String,
    /// `queued`, `sent`, `delivered`, `read`, `undelivered`.
    pub status: String,
    /// `StatusCallback` of the send.
    pub status_callback: Option<String>,
    /// SMS segments (GSM-7 / UCS-2); 1 on WhatsApp.
    pub num_segments: u32,
    /// `ContentSid` of a template send.
    pub content_sid: Option<String>,
    /// `ContentVariables` as sent (a JSON object).
    pub content_variables: Option<String>,
    /// `MessagingServiceSid` of the send.
    pub messaging_service_sid: Option<String>,
    /// `MediaUrl` values.
    pub media_urls: Vec<String>,
    /// Set when the message failed (30003).
    pub error_code: Option<u32>,
    /// When the API accepted the message (`date_created`: wall clock, not the emulator
    /// clock; microseconds).
    pub date_created: chrono::DateTime<chrono::Utc>,
}

/// A running Twilio emulator. Dropping it stops the server and its background callbacks.
pub struct TwilioEmulator {
    state: Arc<TwilioState>,
    addr: SocketAddr,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TwilioEmulator {
    /// Starts an emulator on `127.0.0.1` with a free port.
    ///
    /// # Panics
    /// If the settings are invalid or no port can be bound (a test set-up error).
    pub async fn spawn(settings: TwilioSettings) -> TwilioEmulator {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0 for the Twilio emulator");
        Self::serve(settings, listener)
            .await
            .unwrap_or_else(|e| panic!("cannot start the Twilio emulator: {e}"))
    }

    /// Starts an emulator on `listener`.
    pub async fn serve(settings: TwilioSettings, listener: TcpListener) -> Result<TwilioEmulator> {
        settings.validate()?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::invalid("listener", e.to_string()))?;
        let cancel = CancellationToken::new();
        let inner = Inner {
            sms_webhook: settings.webhook_url,
            whatsapp_webhook: settings.whatsapp_webhook_url,
            status_delay: Duration::from_millis(10),
            ..Inner::default()
        };
        let state = Arc::new(TwilioState {
            account_sid: settings.account_sid,
            auth_token: settings.auth_token,
            api_key: settings.api_key,
            url: server::base_url(addr),
            inner: Mutex::new(inner),
            faults: Mutex::new(FaultQueue::default()),
            clock: Clock::default(),
            poster: Arc::new(Poster::new("TwilioProxy/1.1", cancel.clone())),
        });
        let task = server::serve(listener, router(state.clone()), cancel.clone());
        Ok(TwilioEmulator {
            state,
            addr,
            cancel,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`: the `api_url` for the SMS adapter.
    pub fn url(&self) -> String {
        self.state.url.clone()
    }

    /// The socket address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The emulated account's SID.
    pub fn account_sid(&self) -> &str {
        &self.state.account_sid
    }

    /// Every message accepted by the API, oldest first (at most [`MESSAGE_LIMIT`] kept).
    pub fn sent(&self) -> Vec<SentMessage> {
        sent(&self.state)
    }

    /// Posts a customer's message (`from` → our `to`, each `+E164` or `whatsapp:+E164`) to the
    /// webhook of `to`'s channel, signed like Twilio. `media` holds (URL, MIME type) pairs.
    /// Answers the webhook's HTTP status and the `MessageSid`.
    pub async fn inbound(
        &self,
        from: &str,
        to: &str,
        body: &str,
        media: &[(&str, &str)],
    ) -> Result<InboundResult> {
        let media: Vec<InboundMedia> = media
            .iter()
            .map(|(url, content_type)| InboundMedia {
                url: (*url).to_string(),
                content_type: (*content_type).to_string(),
            })
            .collect();
        inbound::deliver(&self.state, from, to, body, &media).await
    }

    /// Sends the last inbound request again, byte for byte (a duplicate delivery).
    pub async fn replay_last_inbound(&self) -> Result<InboundResult> {
        inbound::replay(&self.state).await
    }

    /// Sets the SMS inbound webhook.
    ///
    /// # Panics
    /// If `url` is not an absolute http(s) URL.
    pub fn set_webhook(&self, url: impl Into<String>) {
        set_webhook(&self.state, false, Some(url.into())).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sets the inbound webhook of WhatsApp senders.
    ///
    /// # Panics
    /// If `url` is not an absolute http(s) URL.
    pub fn set_whatsapp_webhook(&self, url: impl Into<String>) {
        set_webhook(&self.state, true, Some(url.into())).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Adds an SMS sender of the account (`+E164`, or an alphanumeric sender id of 1 to 11
    /// letters, digits and spaces); an error names the field otherwise.
    pub fn add_number(&self, number: &str) -> Result<()> {
        add_number(&self.state, number)
    }

    /// Adds a WhatsApp sender (`+E164` or `whatsapp:+E164`).
    pub fn add_whatsapp_sender(&self, number: &str) -> Result<()> {
        add_whatsapp_sender(&self.state, number)
    }

    /// Adds a Messaging Service (`MG` + 32 hex) with its sender pool (`+E164` SMS numbers,
    /// `whatsapp:+E164` senders); a send through it uses the pool's first sender on the
    /// recipient's channel.
    pub fn add_messaging_service(&self, sid: &str, senders: &[&str]) -> Result<()> {
        let senders: Vec<String> = senders.iter().map(|s| (*s).to_string()).collect();
        add_messaging_service(&self.state, sid, senders)
    }

    /// Messages to `number` (E.164, with or without `whatsapp:`) end `undelivered` (30003).
    pub fn mark_undeliverable(&self, number: &str) -> Result<()> {
        mark_undeliverable(&self.state, number)
    }

    /// The `ProfileName` sent with WhatsApp messages from `wa_id` (digits, or `+E164`).
    pub fn set_profile_name(&self, wa_id: &str, name: &str) -> Result<()> {
        set_profile_name(&self.state, wa_id, name)
    }

    /// Whether `customer` texted STOP to our `number` (and not START since).
    pub fn is_opted_out(&self, number: &str, customer: &str) -> bool {
        lock(&self.state.inner)
            .opt_outs
            .contains(&(number.to_string(), customer.to_string()))
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

    /// Ages every WhatsApp window by `by` (the emulator clock moves forward).
    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// The pause before each status step (default 10 ms).
    pub fn set_status_delay(&self, delay: Duration) {
        lock(&self.state.inner).status_delay = delay;
    }

    /// Every webhook request made (inbound, replays, status callbacks), oldest first.
    pub fn callbacks(&self) -> Vec<CallbackRecord> {
        self.state.poster.records()
    }

    /// Waits until every status progression started so far has finished.
    pub async fn settled(&self) {
        self.state.poster.settled().await;
    }

    /// Stops the server and background callbacks, and waits for the server to end.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for TwilioEmulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn router(state: Arc<TwilioState>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(send::create).get(read::list),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Messages/{file}",
            get(read::fetch),
        )
        .merge(control::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(server::buffer_body))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    errors::TwilioError::not_found(req.uri().path()).into_response()
}

fn sent(state: &TwilioState) -> Vec<SentMessage> {
    lock(&state.inner)
        .messages
        .iter()
        .filter(|m| !m.inbound)
        .map(|m| SentMessage {
            sid: m.sid.clone(),
            from: m.from.clone(),
            to: m.to.clone(),
            body: m.body.clone(),
            status: m.status.clone(),
            status_callback: m.status_callback.clone(),
            num_segments: m.num_segments,
            content_sid: m.content_sid.clone(),
            content_variables: m.content_variables.clone(),
            messaging_service_sid: m.messaging_service_sid.clone(),
            media_urls: m.media_urls.clone(),
            error_code: m.error_code,
            date_created: m.date_created,
        })
        .collect()
}

fn set_webhook(state: &TwilioState, whatsapp: bool, url: Option<String>) -> Result<()> {
    let field = if whatsapp {
        "whatsapp_webhook_url"
    } else {
        "webhook_url"
    };
    if let Some(u) = &url {
        check_webhook_url(field, u)?;
    }
    let mut inner = lock(&state.inner);
    if whatsapp {
        inner.whatsapp_webhook = url;
    } else {
        inner.sms_webhook = url;
    }
    Ok(())
}

/// An E.164 number with an optional `whatsapp:` prefix, returned without it.
fn bare_e164<'a>(field: &'static str, number: &'a str) -> Result<&'a str> {
    let bare = number
        .strip_prefix(address::WHATSAPP_PREFIX)
        .unwrap_or(number);
    if address::is_e164(bare) {
        Ok(bare)
    } else {
        Err(Error::invalid(
            field,
            "must be an E.164 number (+ and digits)",
        ))
    }
}

/// Most senders (numbers, WhatsApp senders, services) configured.
const SENDER_LIMIT: usize = 1000;

fn add_number(state: &TwilioState, number: &str) -> Result<()> {
    let alphanumeric = (1..=11).contains(&number.len())
        && number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && number.bytes().any(|b| b.is_ascii_alphabetic());
    if !address::is_e164(number) && !alphanumeric {
        return Err(Error::invalid(
            "number",
            "must be +E164 or an alphanumeric sender id (1-11 letters, digits, spaces)",
        ));
    }
    let mut inner = lock(&state.inner);
    if inner.numbers.len() >= SENDER_LIMIT {
        return Err(Error::LimitReached("numbers"));
    }
    inner.numbers.insert(number.to_string());
    Ok(())
}

fn add_whatsapp_sender(state: &TwilioState, number: &str) -> Result<()> {
    let bare = bare_e164("number", number)?;
    let mut inner = lock(&state.inner);
    if inner.whatsapp_senders.len() >= SENDER_LIMIT {
        return Err(Error::LimitReached("WhatsApp senders"));
    }
    inner.whatsapp_senders.insert(bare.to_string());
    Ok(())
}

fn add_messaging_service(state: &TwilioState, sid: &str, senders: Vec<String>) -> Result<()> {
    if !(sid.starts_with("MG") && crate::hex::is_hex(&sid[2..], 32)) {
        return Err(Error::invalid(
            "sid",
            "must be MG followed by 32 hex digits",
        ));
    }
    if senders.is_empty() || senders.len() > 100 {
        return Err(Error::invalid("senders", "must list 1 to 100 senders"));
    }
    if let Some(bad) = senders.iter().find(|s| address::parse(s).is_none()) {
        return Err(Error::invalid(
            "senders",
            format!("'{bad}' is not +E164 or whatsapp:+E164"),
        ));
    }
    let mut inner = lock(&state.inner);
    if inner.services.len() >= SENDER_LIMIT {
        return Err(Error::LimitReached("messaging services"));
    }
    inner.services.insert(sid.to_string(), senders);
    Ok(())
}

fn mark_undeliverable(state: &TwilioState, number: &str) -> Result<()> {
    let bare = bare_e164("number", number)?;
    let mut inner = lock(&state.inner);
    if inner.undeliverable.len() >= CUSTOMER_LIMIT {
        return Err(Error::LimitReached("undeliverable numbers"));
    }
    inner.undeliverable.insert(bare.to_string());
    Ok(())
}

fn set_profile_name(state: &TwilioState, wa_id: &str, name: &str) -> Result<()> {
    let digits = wa_id.trim_start_matches('+');
    if !address::is_e164(&format!("+{digits}")) {
        return Err(Error::invalid("wa_id", "must be the number's digits"));
    }
    if name.is_empty() || name.chars().count() > 256 {
        return Err(Error::invalid("name", "must be 1 to 256 characters"));
    }
    let mut inner = lock(&state.inner);
    if !inner.profile_names.contains_key(digits) && inner.tracked_customers() >= CUSTOMER_LIMIT {
        return Err(Error::LimitReached("customers tracked"));
    }
    inner
        .profile_names
        .insert(digits.to_string(), name.to_string());
    Ok(())
}
