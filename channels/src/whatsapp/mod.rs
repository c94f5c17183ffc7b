//! The WhatsApp channel over Meta's WhatsApp Cloud API.
//!
//! - **Handshake**: `GET /channels/whatsapp/inbound?hub.mode=subscribe&hub.verify_token=…&
//!   hub.challenge=…` is answered with the challenge when the token is ours
//!   ([`handshake`](crate::Channel::handshake)).
//! - **Inbound**: webhook bodies are verified against `X-Hub-Signature-256` (HMAC-SHA256 of
//!   the raw body with the app secret) before anything is parsed, then every `messages`
//!   change for our phone number id becomes customer messages and delivery statuses.
//! - **Outbound**: `POST {api_url}/{api_version}/{phone_number_id}/messages` with the access
//!   token; free-form text inside the 24-hour customer-service window, the configured
//!   approved template outside it (or [`DeliveryError::WindowClosed`] without one). The
//!   delivery id travels as `biz_opaque_callback_data` and comes back on the statuses.

mod cloud_api;
mod config;
mod handshake;
mod message;
mod signature;
mod twilio;
mod webhook;
mod window;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use cloud_api::{RATE_LIMITS, RE_ENGAGEMENT, TOKEN_INVALID};
pub use config::{
    CloudApiConfig, DEFAULT_API_URL, DEFAULT_API_VERSION, DEFAULT_MAX_EVENT_AGE_SECS,
    TemplateConfig, WhatsappConfig,
};
pub use handshake::MAX_CHALLENGE_CHARS;
pub use message::MAX_TEXT_CHARS;
pub use signature::{AppSecret, SIGNATURE_HEADER};
pub use twilio::{TWILIO_WHATSAPP_MAX_CHARS, TwilioWhatsappChannel, TwilioWhatsappConfig};
pub use webhook::MAX_EVENTS;
pub use window::{TEMPLATE_PARAMETER_MAX_CHARS, WHATSAPP_REPLY_WINDOW};

use self::cloud_api::{CloudApi, Content, SendError};
use self::signature::VerifyToken;
use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, Delivered, DeliveryError,
    EscalationInput, InboundEvent, InboundRequest, Keyword, KeywordConfig, OutboundMessage,
    ReplyTarget, Route, SplitRule, is_e164, normalize, reply,
};

/// The WhatsApp Cloud API's limit on a text message body, in characters.
pub const WHATSAPP_MAX_CHARS: usize = 4_096;

/// The approved template sent outside the customer-service window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    name: String,
    language: String,
    body_parameter: bool,
}

/// What a checked configuration hands the adapter.
struct Parts {
    phone_number_id: Option<String>,
    api: Option<CloudApi>,
    app_secret: Option<AppSecret>,
    verify_token: Option<VerifyToken>,
    template: Option<Template>,
    max_event_age: chrono::Duration,
    unknown_sender_reply: Option<String>,
    keywords: KeywordConfig,
}

/// The WhatsApp adapter (Cloud API). Built from [`WhatsappConfig`]; without credentials it
/// takes escalations but neither delivers nor receives.
#[derive(Debug, Clone)]
pub struct WhatsappChannel {
    phone_number_id: Option<String>,
    api: Option<CloudApi>,
    app_secret: Option<AppSecret>,
    verify_token: Option<VerifyToken>,
    template: Option<Template>,
    max_event_age: chrono::Duration,
    unknown_sender_reply: Option<String>,
    keywords: KeywordConfig,
    clock: fn() -> DateTime<Utc>,
}

impl WhatsappChannel {
    fn new(parts: Parts) -> Self {
        Self {
            phone_number_id: parts.phone_number_id,
            api: parts.api,
            app_secret: parts.app_secret,
            verify_token: parts.verify_token,
            template: parts.template,
            max_event_age: parts.max_event_age,
            unknown_sender_reply: parts.unknown_sender_reply,
            keywords: parts.keywords,
            clock: Utc::now,
        }
    }

    /// The same adapter reading the time from `clock` when it decides whether the 24-hour
    /// window is open (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends `message` as the configured template (the window is closed), or says why not.
    async fn send_template(
        &self,
        api: &CloudApi,
        to: &str,
        message: &OutboundMessage,
        callback_data: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Delivered, DeliveryError> {
        let Some(template) = &self.template else {
            let why = if message.customer_last_message_at.is_some() {
                "more than 24 hours have passed since the customer last wrote on WhatsApp"
            } else {
                "the customer has not written on WhatsApp yet"
            };
            tracing::info!(
                delivery_id = %message.id,
                "WhatsApp window closed and no template configured."
            );
            return Err(DeliveryError::WindowClosed {
                message: format!(
                    "{why}, and no approved template is configured \
                     (channels.whatsapp.template): the customer must write first"
                ),
            });
        };
        let parameter = template
            .body_parameter
            .then(|| window::template_parameter(&message.text));
        let content = Content::Template {
            name: &template.name,
            language: &template.language,
            parameter: parameter.as_deref(),
        };
        tracing::info!(delivery_id = %message.id, "WhatsApp window closed: sending the template.");
        match api.send(to, content, callback_data, &message.id, now).await {
            Ok(delivered) => Ok(delivered),
            Err(SendError::Failed(error)) => Err(error),
            Err(SendError::ReEngagement) => Err(DeliveryError::WindowClosed {
                message: "WhatsApp refused the template as a re-engagement message (131047)".into(),
            }),
        }
    }
}

#[async_trait::async_trait]
impl Channel for WhatsappChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Whatsapp
    }

    fn preferred_route(&self) -> Route {
        Route::Messaging
    }

    /// 4,096 characters a message, split between words; free-form text only within 24 hours
    /// of the customer's last message. Meta does not dedupe sends, so a send whose outcome is
    /// unknown is not retried blindly.
    fn capabilities(&self) -> Capabilities {
        let delivers = self.api.is_some();
        let inbound = self.app_secret.is_some();
        Capabilities {
            delivers,
            inbound,
            max_message_chars: Some(WHATSAPP_MAX_CHARS),
            split: SplitRule::Words,
            typing_events: false,
            read_receipts: delivers && inbound,
            reply_window: Some(WHATSAPP_REPLY_WINDOW),
            provider_dedupe: false,
        }
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        normalize::transcript_conversation(&ChannelKind::Whatsapp, input)
    }

    /// `{"phone": "+E.164"}`, defaulting to the customer's phone.
    fn reply_target(
        &self,
        reply_to: Option<&Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        reply::phone("whatsapp", reply_to, conversation)
    }

    async fn inbound(&self, request: &InboundRequest) -> Result<Vec<InboundEvent>, ChannelError> {
        let (Some(secret), Some(phone_number_id)) = (&self.app_secret, &self.phone_number_id)
        else {
            return Err(ChannelError::InboundNotSupported {
                channel: "whatsapp".into(),
            });
        };
        secret
            .verify(request.header(SIGNATURE_HEADER), &request.body)
            .map_err(ChannelError::WebhookNotVerified)?;
        webhook::parse(
            &request.body,
            webhook::Context {
                phone_number_id,
                received_at: request.received_at,
                max_event_age: self.max_event_age,
            },
        )
    }

    fn handshake(&self, query: &[(String, String)]) -> Result<String, ChannelError> {
        let Some(token) = &self.verify_token else {
            return Err(ChannelError::InboundNotSupported {
                channel: "whatsapp".into(),
            });
        };
        handshake::answer(token, query).map_err(ChannelError::WebhookNotVerified)
    }

    /// `STOP`, `START`, `HELP` and the configured alternatives, also when sent as a reply to
    /// one of our messages; help is answered with the help text.
    fn keyword(&self, text: &str) -> Option<(Keyword, Option<String>)> {
        let keyword = self.keywords.classify(message::strip_reply_note(text))?;
        let answer = (keyword == Keyword::Help).then(|| self.keywords.help_text.trim().to_owned());
        Some((keyword, answer))
    }

    fn unknown_sender_reply(&self) -> Option<String> {
        self.unknown_sender_reply.clone()
    }

    async fn deliver(
        &self,
        target: &ReplyTarget,
        message: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let Some(api) = &self.api else {
            return Err(DeliveryError::Unsupported {
                channel: "whatsapp".into(),
            });
        };
        let ReplyTarget::Phone { number } = target else {
            return Err(DeliveryError::Permanent {
                message: "a WhatsApp message needs a phone number target".into(),
            });
        };
        let Some(to) = number.strip_prefix('+').filter(|_| is_e164(number)) else {
            return Err(DeliveryError::Permanent {
                message: "the target is not an E.164 phone number".into(),
            });
        };
        if message.text.trim().is_empty() {
            return Err(DeliveryError::Permanent {
                message: "an empty message cannot be sent on WhatsApp".into(),
            });
        }
        if message.text.chars().count() > WHATSAPP_MAX_CHARS {
            return Err(DeliveryError::Permanent {
                message: "the message is longer than WhatsApp's 4096 characters".into(),
            });
        }
        // Meta carries up to 512 characters back on the statuses; a longer id is not sent,
        // and the statuses then find the delivery by its wamid.
        let callback_data = Some(message.id.as_str()).filter(|id| webhook::is_provider_id(id));
        let now = (self.clock)();
        if window::is_open(message.customer_last_message_at, now) {
            match api
                .send(
                    to,
                    Content::Text(&message.text),
                    callback_data,
                    &message.id,
                    now,
                )
                .await
            {
                Ok(delivered) => return Ok(delivered),
                Err(SendError::Failed(error)) => return Err(error),
                Err(SendError::ReEngagement) => tracing::info!(
                    delivery_id = %message.id,
                    "WhatsApp answered 131047 inside the window we computed."
                ),
            }
        }
        self.send_template(api, to, message, callback_data, now)
            .await
    }
}

#[cfg(test)]
mod tests;
