//! The outbound half of a channel: where a session's replies go ([`ReplyTarget`]), what one
//! message to the customer is ([`OutboundMessage`]), what came of sending it ([`Delivered`],
//! [`DeliveryError`]), and the rules a channel imposes on sending ([`Capabilities`]).
//! The inbound half is [`InboundRequest`] → [`InboundMessage`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::address::EmailAddress;

/// What the gateway must respect when it sends on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether this adapter sends messages to customers. The gateway never queues a delivery
    /// for an adapter that does not; it records that the customer could not be told.
    pub delivers: bool,
    /// Whether the adapter verifies and parses provider webhooks ([`crate::Channel::inbound`]).
    pub inbound: bool,
    /// The longest text one provider message may carry, in characters (`None`: no limit).
    pub max_message_chars: Option<usize>,
    /// How a longer text is cut into several messages.
    pub split: SplitRule,
    /// Whether the channel has typing indicators.
    pub typing_events: bool,
    /// Whether the channel reports that the customer read a message.
    pub read_receipts: bool,
    /// Free-form messages are refused this long after the customer's last message (WhatsApp:
    /// 24 hours); `None`: no window.
    pub reply_window: Option<Duration>,
    /// Whether the provider dedupes on our delivery id, so a retried delivery is never shown
    /// twice. Without it, a delivery whose outcome is unknown is not retried blindly.
    pub provider_dedupe: bool,
}

impl Capabilities {
    /// A channel that neither sends nor receives through Handoff (yet).
    #[must_use]
    pub fn receive_only() -> Self {
        Self {
            delivers: false,
            inbound: false,
            max_message_chars: None,
            split: SplitRule::Whole,
            typing_events: false,
            read_receipts: false,
            reply_window: None,
            provider_dedupe: false,
        }
    }
}

impl Capabilities {
    /// `text` cut into the messages this channel can carry: one when there is no limit or it
    /// fits; otherwise parts of at most [`Capabilities::max_message_chars`] characters, each cut
    /// after the last whitespace that keeps it within the limit (a word longer than the limit is
    /// cut between characters). [`SplitRule::SmsSegments`] counts SMS segments instead of
    /// characters (see [`crate::twilio::segments`]). Nothing is lost: the parts concatenate
    /// back to `text`.
    #[must_use]
    pub fn split_message(&self, text: &str) -> Vec<String> {
        if let SplitRule::SmsSegments { max_segments } = self.split {
            return crate::twilio::segments::split(text, max_segments);
        }
        let Some(max) = self.max_message_chars.filter(|&max| max > 0) else {
            return vec![text.to_owned()];
        };
        if self.split == SplitRule::Whole || text.chars().count() <= max {
            return vec![text.to_owned()];
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            // The byte offset just past `max` characters (or the whole rest).
            let window_end = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
            if window_end == rest.len() {
                parts.push(rest.to_owned());
                break;
            }
            let window = &rest[..window_end];
            let cut = window
                .char_indices()
                .filter(|(_, c)| c.is_whitespace())
                .map(|(i, c)| i + c.len_utf8())
                .next_back()
                .filter(|&cut| cut > 0)
                .unwrap_or(window_end);
            parts.push(rest[..cut].to_owned());
            rest = &rest[cut..];
        }
        parts
    }
}

/// How a text longer than [`Capabilities::max_message_chars`] is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitRule {
    /// Never split (no limit, or the provider splits itself).
    Whole,
    /// Split between words where possible, else between characters.
    Words,
    /// SMS: parts of at most `max_segments` segments each (GSM-7: 160 septets in one message,
    /// 153 per segment; UCS-2: 70 / 67 UTF-16 code units), cut after whitespace where
    /// possible; [`Capabilities::max_message_chars`] is not used.
    SmsSegments { max_segments: usize },
}

/// Where a session's outbound messages go, typed per channel and checked when the escalation is
/// accepted. Stored with the session as JSON (`{"type": "webhook", "url": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplyTarget {
    /// An HTTPS endpoint that receives Standard Webhooks (chat, bridge channels).
    Webhook { url: String },
    /// An email address (email sessions).
    Email { address: EmailAddress },
    /// An E.164 phone number (SMS, WhatsApp, voice follow-up).
    Phone { number: String },
    /// A bridge channel's own addressing, passed through untouched.
    Bridge { address: String },
    /// No push: the messages are served on the session's own event stream
    /// (`GET /v1/sessions/{id}/stream`), which a chat widget subscribes to.
    Stream,
}

/// What kind of message goes to the customer (the wire names of design §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutboundKind {
    #[serde(rename = "agent.joined")]
    AgentJoined,
    #[serde(rename = "agent.message")]
    AgentMessage,
    #[serde(rename = "agent.left")]
    AgentLeft,
    #[serde(rename = "system.message")]
    SystemMessage,
    #[serde(rename = "session.closed")]
    SessionClosed,
}

impl OutboundKind {
    /// The wire name (`agent.joined`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AgentJoined => "agent.joined",
            Self::AgentMessage => "agent.message",
            Self::AgentLeft => "agent.left",
            Self::SystemMessage => "system.message",
            Self::SessionClosed => "session.closed",
        }
    }
}

/// One message to the customer. `id` is the stable delivery id: the same on every retry, so a
/// provider (or webhook receiver) that dedupes never shows it twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub id: String,
    pub session_id: String,
    pub kind: OutboundKind,
    pub text: String,
    pub sender_name: Option<String>,
    pub at: DateTime<Utc>,
    /// How an email reply threads into the customer's mailbox; the gateway fills it for email
    /// deliveries, other channels ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailContext>,
    /// When the customer last wrote on this channel (their newest inbound message, else the
    /// newest customer turn of the escalation). Channels with a reply window (WhatsApp: 24
    /// hours) decide from it whether free-form text may still be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_last_message_at: Option<DateTime<Utc>>,
    /// The URL the provider should report this message's delivery status to
    /// (`{public_url}/channels/<name>/status`), when a public URL is configured. The adapter
    /// adds the delivery id so the report finds its outbox row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_callback: Option<String>,
}

/// What an email reply needs from the session to thread under the customer's own message and to
/// route their answer back. Message ids are without angle brackets; ids that are not well formed
/// are dropped when the message is built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailContext {
    /// The conversation's subject (the reply's is `Re: <subject>`).
    #[serde(default)]
    pub subject: Option<String>,
    /// The `Message-ID` of the customer's newest message.
    #[serde(default)]
    pub in_reply_to: Option<String>,
    /// The thread's ids, oldest first (`In-Reply-To` is appended when it is not the last).
    #[serde(default)]
    pub references: Vec<String>,
    /// The session's reply token, put into the configured `Reply-To` address.
    #[serde(default)]
    pub reply_token: Option<String>,
}

/// A message the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The provider's id for the message, when it gives one.
    pub provider_id: Option<String>,
}

/// Why a delivery did not happen. The texts never carry message bodies or addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The adapter does not send (see [`Capabilities::delivers`]).
    #[error("channel `{channel}` does not deliver messages")]
    Unsupported { channel: String },
    /// Worth trying again later (timeouts, 5xx, 429). `sent` is true when the request may have
    /// reached the provider, so the outcome is unknown.
    #[error("temporary delivery failure: {message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
        sent: bool,
    },
    /// Will never succeed as it stands (4xx other than 408/429, a bad target).
    #[error("delivery refused: {message}")]
    Permanent { message: String },
    /// The channel's reply window is closed (WhatsApp: more than 24 hours since the customer
    /// last wrote) and no approved template is configured to carry the message: only the
    /// customer can reopen it. The gateway tells the rep.
    #[error("reply window closed: {message}")]
    WindowClosed { message: String },
    /// The customer opted out of messages on this channel (SMS `STOP`); nothing is sent until
    /// they opt in again.
    #[error("the customer opted out of messages on this channel")]
    OptedOut,
}

/// A provider webhook as it reached the gateway.
#[derive(Debug, Clone)]
pub struct InboundRequest {
    /// The public URL the provider called (and signed), as configured, with the query.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub received_at: DateTime<Utc>,
}

impl InboundRequest {
    /// The first header named `name` (ASCII case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What one verified provider webhook carried: customer messages and delivery reports, in the
/// order the provider listed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum InboundEvent {
    Message(InboundMessage),
    Status(StatusUpdate),
}

/// One customer message parsed from a verified webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The provider's id for the message: the dedupe key (a replayed webhook is not a new message).
    pub provider_message_id: String,
    /// The Handoff session it belongs to, when the provider says so.
    pub session_id: Option<String>,
    /// The sender's address on the channel (email, E.164 number, bridge address).
    pub from: Option<String>,
    /// Our address the customer wrote to (our E.164 number, the WhatsApp phone-number id),
    /// when the provider says so: with `from` it finds the live session.
    #[serde(default)]
    pub to: Option<String>,
    /// The sender's display name on the channel (WhatsApp profile name), if given.
    #[serde(default)]
    pub sender_name: Option<String>,
    /// The message text; for a message without text (an image, a location) a short
    /// description such as `[location 52.52, 13.40]`, never empty.
    pub text: String,
    /// Attachments, listed for the rep (never downloaded by Handoff).
    #[serde(default)]
    pub media: Vec<Media>,
    pub at: DateTime<Utc>,
}

/// An attachment on an inbound message: where the provider keeps it and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// The provider's URL for it (Twilio `MediaUrlN`), or `media:<id>` for a provider that
    /// hands out ids (the WhatsApp Cloud API).
    pub url: String,
    pub content_type: Option<String>,
    pub filename: Option<String>,
}

/// A provider's report on a message we sent (Twilio status callback, WhatsApp `statuses[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUpdate {
    /// The provider's id for our message (Twilio `MessageSid`, WhatsApp `wamid…`).
    pub provider_message_id: String,
    /// Our delivery id, when the provider carries it back (the `delivery` query parameter of
    /// the Twilio status callback URL, WhatsApp `biz_opaque_callback_data`).
    pub delivery_id: Option<String>,
    pub status: ProviderStatus,
    /// The provider's error code for `failed` / `undelivered` (Twilio `ErrorCode`, WhatsApp
    /// `errors[0].code`).
    pub error_code: Option<String>,
    pub at: DateTime<Utc>,
}

/// Where a message we sent stands at the provider, in the order it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    Queued,
    Sent,
    Delivered,
    Read,
    Undelivered,
    Failed,
}

impl ProviderStatus {
    /// The wire name (`queued`, `sent`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }

    /// Whether the message did not reach the customer.
    #[must_use]
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Undelivered | Self::Failed)
    }
}

/// What the gateway answers a provider webhook that verified (Twilio expects TwiML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundAck {
    pub content_type: &'static str,
    pub body: String,
}

impl Default for InboundAck {
    fn default() -> Self {
        Self {
            content_type: "application/json",
            body: "{\"received\":true}".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(max: usize) -> Capabilities {
        Capabilities {
            max_message_chars: Some(max),
            split: SplitRule::Words,
            ..Capabilities::receive_only()
        }
    }

    #[test]
    fn short_texts_and_unlimited_channels_are_one_message() {
        assert_eq!(limited(10).split_message("hello"), ["hello"]);
        assert_eq!(limited(5).split_message("hello"), ["hello"]);
        let long = "word ".repeat(1_000);
        let unlimited = Capabilities::receive_only().split_message(&long);
        assert_eq!(unlimited.len(), 1);
        assert_eq!(unlimited[0], long);
        let whole = Capabilities {
            split: SplitRule::Whole,
            ..limited(10)
        };
        assert_eq!(whole.split_message(&long), [long]);
    }

    #[test]
    fn long_texts_are_cut_after_whitespace_within_the_limit() {
        let parts = limited(12).split_message("the quick brown fox jumps over");
        assert_eq!(parts, ["the quick ", "brown fox ", "jumps over"]);
    }

    #[test]
    fn sms_texts_are_split_by_segments() {
        let sms = Capabilities {
            split: SplitRule::SmsSegments { max_segments: 2 },
            ..Capabilities::receive_only()
        };
        let gsm = "word ".repeat(100); // 500 septets: 4 segments
        let parts = sms.split_message(&gsm);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts.concat(), gsm);
        assert!(
            parts
                .iter()
                .all(|p| crate::twilio::segments(p).1 <= 2 && p.ends_with(' '))
        );
        // UCS-2 text has less room: 2 × 67 code units a part.
        let cyrillic = "слово ".repeat(100);
        let parts = sms.split_message(&cyrillic);
        assert_eq!(parts.len(), 5);
        assert_eq!(parts.concat(), cyrillic);
        assert_eq!(sms.split_message("short"), ["short"]);
    }

    #[test]
    fn parts_fit_count_characters_not_bytes_and_lose_nothing() {
        // Multi-byte characters, a word longer than the limit, runs of spaces.
        let text = format!(
            "Grüße aus Köln — {} {}  ende",
            "ü".repeat(25),
            "日本語のテキスト".repeat(3)
        );
        for max in [1, 2, 7, 10, 16] {
            let parts = limited(max).split_message(&text);
            assert!(parts.iter().all(|p| !p.is_empty()), "{max}: {parts:?}");
            assert!(
                parts.iter().all(|p| p.chars().count() <= max),
                "{max}: {parts:?}"
            );
            assert_eq!(parts.concat(), text, "{max}");
        }
    }
}
