//! A phone channel of the tests' own, registered as a plugin, that behaves like SMS where the
//! gateway can tell: customers are E.164 numbers, texts are short, `STOP`/`START`/`HELP` are
//! keywords, unknown senders get a polite answer, and a second channel can deliver through it
//! (as voice delivers through SMS). Its webhooks are Standard Webhooks whose signature covers
//! the URL the gateway says it was called at and the body (as Twilio's covers the URL), so a
//! test proves the gateway rebuilt that URL exactly. What it "sends" is kept for the test.

use std::sync::{Arc, Mutex};

use channels::webhook::WebhookSecret;
use channels::{
    BridgeChannel, Capabilities, Channel, ChannelError, ChannelKind, Conversation, Delivered,
    DeliveryError, EscalationInput, InboundEvent, InboundMessage, InboundRequest, Keyword,
    KeywordConfig, Media, OutboundMessage, ProviderStatus, ReplyTarget, Route, SplitRule,
    StatusUpdate,
};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The answer to an unknown sender.
pub const UNKNOWN_SENDER_REPLY: &str = "We could not find an open conversation for this number. Please start a new chat on our website.";
/// The answer to an opt-in keyword.
pub const OPT_IN_REPLY: &str = "You will receive our messages again.";

/// One message the channel sent.
#[derive(Debug, Clone)]
pub struct Sent {
    pub target: ReplyTarget,
    pub message: OutboundMessage,
    pub provider_id: String,
}

/// A test phone channel.
pub struct TextLine {
    name: String,
    secret: WebhookSecret,
    normalizer: BridgeChannel,
    keywords: KeywordConfig,
    through: Option<ChannelKind>,
    /// What it sent, oldest first.
    pub sent: Arc<Mutex<Vec<Sent>>>,
}

/// A message in the channel's webhook body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireMessage {
    pub id: String,
    pub from: String,
    #[serde(default)]
    pub to: Option<String>,
    pub text: String,
    #[serde(default)]
    pub media: Vec<Media>,
    pub at: DateTime<Utc>,
}

/// A status report in the channel's webhook body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireStatus {
    pub id: String,
    #[serde(default)]
    pub delivery_id: Option<String>,
    pub status: ProviderStatus,
    #[serde(default)]
    pub error_code: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WireBody {
    #[serde(default)]
    pub messages: Vec<WireMessage>,
    #[serde(default)]
    pub statuses: Vec<WireStatus>,
}

fn secret(whsec: &str) -> WebhookSecret {
    WebhookSecret::parse(&SecretString::from(whsec.to_string())).expect("a whsec_ secret")
}

/// What is signed: the URL, a line break, the body.
pub fn signed_content(url: &str, body: &[u8]) -> Vec<u8> {
    let mut content = url.as_bytes().to_vec();
    content.push(b'\n');
    content.extend_from_slice(body);
    content
}

/// The Standard Webhooks headers for `body` posted to `url`, at Unix time `timestamp`.
pub fn sign(
    whsec: &str,
    url: &str,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    vec![
        ("webhook-id".into(), webhook_id.into()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        (
            "webhook-signature".into(),
            secret(whsec).sign(webhook_id, timestamp, &signed_content(url, body)),
        ),
    ]
}

impl TextLine {
    /// The phone channel `name`, verifying webhooks with `whsec`.
    pub fn new(name: &str, whsec: &str) -> TextLine {
        let kind = ChannelKind::plugin(name).expect("a plugin name");
        TextLine {
            name: name.to_string(),
            secret: secret(whsec),
            normalizer: BridgeChannel::new(
                kind,
                "https://textline.example.com/out".parse().expect("url"),
                secret(whsec),
                Route::Messaging,
                false,
            )
            .expect("normalizer"),
            keywords: KeywordConfig::default(),
            through: None,
            sent: Arc::default(),
        }
    }

    /// A channel without webhooks or sending of its own that delivers through `through`
    /// (as voice delivers through SMS).
    pub fn delivering_through(name: &str, whsec: &str, through: &str) -> TextLine {
        TextLine {
            through: Some(ChannelKind::plugin(through).expect("a plugin name")),
            ..TextLine::new(name, whsec)
        }
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().expect("sent").clone()
    }
}

fn bad(field: String) -> ChannelError {
    ChannelError::InvalidInbound {
        field,
        reason: "not what the textline channel sends".into(),
    }
}

#[async_trait::async_trait]
impl Channel for TextLine {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Plugin(self.name.clone())
    }

    fn preferred_route(&self) -> Route {
        Route::Messaging
    }

    fn capabilities(&self) -> Capabilities {
        let own = self.through.is_none();
        Capabilities {
            delivers: own,
            inbound: own,
            max_message_chars: Some(160),
            split: SplitRule::Words,
            provider_dedupe: true,
            ..Capabilities::receive_only()
        }
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        self.normalizer.normalize(input)
    }

    fn reply_target(
        &self,
        _reply_to: Option<&serde_json::Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        Ok(conversation
            .customer
            .phone
            .clone()
            .filter(|p| channels::is_e164(p))
            .map(|number| ReplyTarget::Phone { number }))
    }

    async fn inbound(&self, request: &InboundRequest) -> Result<Vec<InboundEvent>, ChannelError> {
        if self.through.is_some() {
            return Err(ChannelError::InboundNotSupported {
                channel: self.name.clone(),
            });
        }
        let header = |name: &'static str| {
            request
                .header(name)
                .ok_or(channels::webhook::VerifyError::MissingHeader(name))
        };
        let verify = || {
            self.secret.verify(
                header("webhook-id")?,
                header("webhook-timestamp")?,
                header("webhook-signature")?,
                &signed_content(&request.url, &request.body),
                request.received_at,
            )
        };
        verify().map_err(ChannelError::WebhookNotVerified)?;
        let body: WireBody =
            serde_json::from_slice(&request.body).map_err(|_| bad("messages".into()))?;
        let mut events = Vec::new();
        for (i, m) in body.messages.into_iter().enumerate() {
            if !channels::is_e164(&m.from) {
                return Err(bad(format!("messages[{i}].from")));
            }
            events.push(InboundEvent::Message(InboundMessage {
                provider_message_id: m.id,
                session_id: None,
                from: Some(m.from),
                to: m.to,
                sender_name: None,
                text: m.text,
                media: m.media,
                at: m.at,
            }));
        }
        for s in body.statuses {
            events.push(InboundEvent::Status(StatusUpdate {
                provider_message_id: s.id,
                delivery_id: s.delivery_id,
                status: s.status,
                error_code: s.error_code,
                at: s.at,
            }));
        }
        Ok(events)
    }

    fn keyword(&self, text: &str) -> Option<(Keyword, Option<String>)> {
        let keyword = self.keywords.classify(text)?;
        let answer = match keyword {
            Keyword::OptOut => None,
            Keyword::OptIn => Some(OPT_IN_REPLY.to_string()),
            Keyword::Help => Some(self.keywords.help_text.clone()),
        };
        Some((keyword, answer))
    }

    fn unknown_sender_reply(&self) -> Option<String> {
        self.through
            .is_none()
            .then(|| UNKNOWN_SENDER_REPLY.to_string())
    }

    fn delivers_through(&self) -> Option<ChannelKind> {
        self.through.clone()
    }

    async fn deliver(
        &self,
        target: &ReplyTarget,
        message: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        if self.through.is_some() {
            return Err(DeliveryError::Unsupported {
                channel: self.name.clone(),
            });
        }
        let mut sent = self.sent.lock().expect("sent");
        let provider_id = format!("TL{:04}", sent.len() + 1);
        sent.push(Sent {
            target: target.clone(),
            message: message.clone(),
            provider_id: provider_id.clone(),
        });
        Ok(Delivered {
            provider_id: Some(provider_id),
        })
    }
}
