#![forbid(unsafe_code)]
//! Channel adapters for Handoff behind one trait.
//!
//! A [`Channel`] turns what an AI support product sends when it escalates (an
//! [`EscalationInput`]) into the one [`Conversation`] model, and says which Salesforce path it
//! prefers. Channels are looked up by [`ChannelKind`] in a [`Registry`] built from configuration.
//! This crate knows neither Salesforce nor the database.

mod address;
mod bridge;
mod chat;
mod config;
mod delivery;
pub mod email;
mod error;
mod keywords;
mod messaging;
mod model;
mod normalize;
mod registry;
mod reply;
mod sms;
pub mod twilio;
pub mod voice;
pub mod webhook;
pub mod whatsapp;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use address::{EmailAddress, EmailAddressError};
pub use bridge::BridgeChannel;
pub use chat::ChatChannel;
pub use config::{BridgeConfig, BuiltInConfig, ChannelConfig, ChatConfig};
pub use delivery::{
    Capabilities, Delivered, DeliveryError, EmailContext, InboundAck, InboundEvent, InboundMessage,
    InboundRequest, Media, OutboundKind, OutboundMessage, ProviderStatus, ReplyTarget, SplitRule,
    StatusUpdate,
};
pub use email::{EmailChannel, EmailConfig, EmailInboundConfig, SmtpConfig, SmtpTls};
pub use error::{ChannelError, RawEmailProblem};
pub use keywords::{Keyword, KeywordConfig};
pub use messaging::MessagingChannel;
pub use model::{Conversation, Customer, EmailThread, Role, Turn};
pub use registry::Registry;
pub use reply::is_e164;
pub use sms::{SmsChannel, SmsConfig};
pub use voice::{
    FollowUp, VoiceChannel, VoiceConfig, VoiceFormat, VoiceInfo, VoiceMode, VoiceTranscript,
};
pub use whatsapp::{WhatsappChannel, WhatsappConfig};

/// Which channel a conversation came through.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelKind {
    Email,
    Chat,
    Sms,
    Whatsapp,
    Voice,
    /// A configured bridge channel, by its configured name.
    Plugin(String),
}

impl ChannelKind {
    /// The built-in channels, in the order they are listed to users.
    pub const BUILT_IN: [ChannelKind; 5] = [
        ChannelKind::Email,
        ChannelKind::Chat,
        ChannelKind::Sms,
        ChannelKind::Whatsapp,
        ChannelKind::Voice,
    ];

    /// A plugin channel name: 1–64 of `a-z`, `0-9`, `_`, `-`, starting with a letter, and not
    /// the name of a built-in channel.
    ///
    /// # Errors
    /// [`ChannelError::InvalidPluginName`].
    pub fn plugin(name: &str) -> Result<Self, ChannelError> {
        let well_formed = (1..=64).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !well_formed || name.parse::<ChannelKind>().is_ok() {
            return Err(ChannelError::InvalidPluginName);
        }
        Ok(Self::Plugin(name.to_owned()))
    }

    /// A channel name as stored with a session: a built-in name, else a plugin name. Whether
    /// the plugin is still configured is the [`Registry`]'s business.
    ///
    /// # Errors
    /// [`ChannelError::InvalidPluginName`] for a name that is neither.
    pub fn from_name(name: &str) -> Result<Self, ChannelError> {
        name.parse().or_else(|_| Self::plugin(name))
    }

    /// The wire name (`email`, `chat`, `sms`, `whatsapp`, `voice`, or the plugin's name).
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Email => "email",
            Self::Chat => "chat",
            Self::Sms => "sms",
            Self::Whatsapp => "whatsapp",
            Self::Voice => "voice",
            Self::Plugin(name) => name,
        }
    }

    /// The built-in names joined for error messages.
    pub(crate) fn built_in_names() -> String {
        Self::BUILT_IN
            .iter()
            .map(ChannelKind::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Parses a built-in channel name; plugin names are resolved by [`Registry::resolve`].
impl FromStr for ChannelKind {
    type Err = ChannelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::BUILT_IN
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| ChannelError::UnknownChannel {
                name: printable_prefix(s),
                valid: Self::built_in_names(),
            })
    }
}

/// At most 64 characters of `s`, control characters replaced, for echoing a name in an error.
pub(crate) fn printable_prefix(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ChannelKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The Salesforce path an escalation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// A Case with the transcript as internal CaseComments.
    Case,
    /// A live Messaging for In-App and Web conversation.
    Messaging,
}

/// What an AI product sends when it escalates, before any channel has looked at it.
/// The gateway has already checked `session_id`, `channel`, `priority` and the like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationInput {
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub customer: Customer,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default)]
    pub transcript: Option<Vec<Turn>>,
    /// RFC 5322 messages, oldest first (email only).
    #[serde(default)]
    pub raw_email: Option<Vec<String>>,
    /// A call transcript as a voice platform produced it (voice only; instead of `transcript`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_transcript: Option<VoiceTranscript>,
    /// The voice transcript's speaker labels → roles (`customer`, `bot`, `agent`, `system`),
    /// over the channel's configured defaults (voice only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speakers: Option<BTreeMap<String, String>>,
    /// How the call was handed over (voice only; default [`VoiceMode::Logged`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_mode: Option<VoiceMode>,
}

/// An input with nothing but the default language: a base for `..Default::default()`.
impl Default for EscalationInput {
    fn default() -> Self {
        Self {
            subject: None,
            customer: Customer::default(),
            language: default_language(),
            transcript: None,
            raw_email: None,
            voice_transcript: None,
            speakers: None,
            voice_mode: None,
        }
    }
}

fn default_language() -> String {
    "en".to_owned()
}

/// One channel adapter: everything Handoff knows about a channel lives behind this trait.
///
/// The gateway calls [`normalize`](Channel::normalize) and [`reply_target`](Channel::reply_target)
/// when an escalation is accepted, [`inbound`](Channel::inbound) when the provider posts a
/// webhook, and [`deliver`](Channel::deliver) from a durable job for each outbox row, respecting
/// [`capabilities`](Channel::capabilities).
#[async_trait::async_trait]
pub trait Channel: Send + Sync + 'static {
    fn kind(&self) -> ChannelKind;

    /// The Salesforce path this channel prefers (email → Case, others → Messaging).
    fn preferred_route(&self) -> Route;

    /// The rules the gateway must respect when sending on this channel.
    fn capabilities(&self) -> Capabilities {
        Capabilities::receive_only()
    }

    /// Turn what the AI product sent into the conversation model.
    ///
    /// # Errors
    /// A [`ChannelError`] whose `code()` and `field()` say what is wrong with the input.
    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError>;

    /// Checks the escalation's `reply_to` (absent: `None`) against this channel's addressing,
    /// at accept time, so a delivery never fails later for a target known to be bad. The
    /// conversation supplies defaults (an email session replies to the customer's address).
    ///
    /// # Errors
    /// A [`ChannelError`] naming the `reply_to` field.
    fn reply_target(
        &self,
        reply_to: Option<&serde_json::Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        let _ = conversation;
        match reply_to {
            None => Ok(None),
            Some(_) => Err(ChannelError::ReplyToNotSupported {
                channel: self.kind().to_string(),
            }),
        }
    }

    /// Verifies a provider webhook (signature, timestamp) and parses what it carries: customer
    /// messages and reports on messages we sent. Nothing is parsed before the signature
    /// verifies; parsing is linear in the body and bounded.
    ///
    /// # Errors
    /// [`ChannelError::InboundNotSupported`] for a channel without inbound webhooks; a
    /// signature or parse error otherwise.
    async fn inbound(&self, request: &InboundRequest) -> Result<Vec<InboundEvent>, ChannelError> {
        let _ = request;
        Err(ChannelError::InboundNotSupported {
            channel: self.kind().to_string(),
        })
    }

    /// What the gateway answers a provider webhook once its events are durable (Twilio:
    /// an empty TwiML `<Response/>`).
    fn inbound_ack(&self) -> InboundAck {
        InboundAck::default()
    }

    /// A provider's subscription handshake (WhatsApp: `GET ?hub.mode=subscribe&hub.verify_token=
    /// …&hub.challenge=…`): the body to answer with when the query proves the provider knows
    /// our verify token.
    ///
    /// # Errors
    /// [`ChannelError::InboundNotSupported`] for a channel without one;
    /// [`ChannelError::WebhookNotVerified`] for a wrong token or mode.
    fn handshake(&self, query: &[(String, String)]) -> Result<String, ChannelError> {
        let _ = query;
        Err(ChannelError::InboundNotSupported {
            channel: self.kind().to_string(),
        })
    }

    /// What a customer's inbound message asks of the channel itself, when it is a keyword
    /// (SMS `STOP`, `START`, `HELP`), with the answer to send the customer if any (the help
    /// text): the gateway then acts on it and does not pass it to the rep.
    fn keyword(&self, text: &str) -> Option<(Keyword, Option<String>)> {
        let _ = text;
        None
    }

    /// The polite answer to a message from someone with no open session on this channel,
    /// when one is configured (`None`: the message is recorded and not answered).
    fn unknown_sender_reply(&self) -> Option<String> {
        None
    }

    /// Another channel that carries this one's messages to the customer (voice: the caller's
    /// SMS), or `None` when this adapter delivers itself (or not at all). The gateway sends a
    /// session's outbox rows through [`Registry::deliverer`].
    fn delivers_through(&self) -> Option<ChannelKind> {
        None
    }

    /// Sends one message to the customer at `target`.
    ///
    /// # Errors
    /// [`DeliveryError`]: unsupported, retryable (with whether the request went out) or permanent.
    async fn deliver(
        &self,
        target: &ReplyTarget,
        message: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let _ = (target, message);
        Err(DeliveryError::Unsupported {
            channel: self.kind().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_round_trip() {
        for kind in ChannelKind::BUILT_IN {
            assert_eq!(kind.as_str().parse::<ChannelKind>().unwrap(), kind);
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = "fax".parse::<ChannelKind>().unwrap_err();
        assert_eq!(err.code(), "unknown_channel");
        assert_eq!(err.field().as_deref(), Some("channel"));
        assert_eq!(
            err.to_string(),
            "unknown channel `fax`; valid channels are: email, chat, sms, whatsapp, voice"
        );
        // Names are exact: no case folding, no whitespace trimming.
        assert!("Email".parse::<ChannelKind>().is_err());
        assert!(" sms".parse::<ChannelKind>().is_err());
    }

    #[test]
    fn unknown_name_echo_is_bounded_and_printable() {
        let long = format!("a\n{}", "b".repeat(500));
        let ChannelError::UnknownChannel { name, .. } = long.parse::<ChannelKind>().unwrap_err()
        else {
            panic!("wrong error");
        };
        assert_eq!(name.chars().count(), 64);
        assert!(name.starts_with("a\u{fffd}b"));
    }

    #[test]
    fn plugin_names_are_checked() {
        assert_eq!(
            ChannelKind::plugin("line-bridge").unwrap(),
            ChannelKind::Plugin("line-bridge".to_owned())
        );
        assert_eq!(ChannelKind::plugin("teams_2").unwrap().as_str(), "teams_2");
        for bad in ["", "email", "Line", "2line", "li ne", &"x".repeat(65)] {
            let err = ChannelKind::plugin(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_channel_name", "{bad:?}");
            assert_eq!(err.field().as_deref(), Some("channel"));
        }
    }

    #[test]
    fn stored_names_read_back_built_in_or_plugin() {
        assert_eq!(ChannelKind::from_name("sms").unwrap(), ChannelKind::Sms);
        assert_eq!(
            ChannelKind::from_name("line").unwrap(),
            ChannelKind::Plugin("line".into())
        );
        assert!(ChannelKind::from_name("Not A Name").is_err());
    }

    #[test]
    fn route_and_role_wire_names() {
        assert_eq!(serde_json::to_string(&Route::Case).unwrap(), "\"case\"");
        assert_eq!(
            serde_json::to_string(&Route::Messaging).unwrap(),
            "\"messaging\""
        );
        for (role, name) in [
            (Role::Customer, "customer"),
            (Role::Bot, "bot"),
            (Role::Agent, "agent"),
            (Role::System, "system"),
        ] {
            assert_eq!(serde_json::to_string(&role).unwrap(), format!("\"{name}\""));
            assert_eq!(role.to_string(), name);
        }
    }

    #[test]
    fn escalation_input_defaults_language_and_parses_turns() {
        let input: EscalationInput = serde_json::from_str(
            r#"{"customer":{"email":"Ann@Example.com"},
                "transcript":[{"role":"customer","text":"hi","at":"2026-11-16T09:00:00+01:00"}]}"#,
        )
        .unwrap();
        assert_eq!(input.language, "en");
        assert_eq!(input.customer.email.unwrap().as_str(), "Ann@example.com");
        let turns = input.transcript.unwrap();
        assert_eq!(turns[0].role, Role::Customer);
        assert_eq!(turns[0].at.to_rfc3339(), "2026-11-16T08:00:00+00:00");
    }
}
