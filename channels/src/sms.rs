//! The SMS channel over Twilio: escalations carry the bot's transcript; with an account
//! configured, rep replies go out through the Messages API (split into messages of at most
//! `max_segments` SMS segments), the customer's texts come in through the signed messaging
//! webhook, and Twilio's status callbacks report on what was sent. Without an account the
//! channel still accepts escalations but neither sends nor receives.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use crate::twilio::{
    AddressPrefix, Content, DEFAULT_API_URL, TwilioMessaging, TwilioSender, TwilioSettings,
    read_secret,
};
use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, Delivered, DeliveryError,
    EscalationInput, InboundAck, InboundEvent, InboundRequest, Keyword, KeywordConfig,
    OutboundMessage, ReplyTarget, Route, SplitRule, normalize, reply,
};

/// The most segments one message may have: Twilio takes at most 1,600 characters, and ten
/// GSM-7 segments (1,530 septets) stay within that.
pub const MAX_SEGMENTS: usize = 10;
/// The longest configured answer (unknown sender reply, help text), in characters.
pub const MAX_ANSWER_CHARS: usize = 1_600;

/// `[channels.sms]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// The Twilio account (`AC…`): needed to send and to receive.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// Signs Twilio's webhooks; authenticates API calls unless an API key is set.
    #[serde(default)]
    pub auth_token: Option<SecretString>,
    #[serde(default)]
    pub auth_token_file: Option<PathBuf>,
    /// An API key (`SK…`) to call the API with instead of the auth token.
    #[serde(default)]
    pub api_key_sid: Option<String>,
    #[serde(default)]
    pub api_key_secret: Option<SecretString>,
    #[serde(default)]
    pub api_key_secret_file: Option<PathBuf>,
    /// The number messages are sent from (E.164); or `messaging_service_sid`.
    #[serde(default)]
    pub from: Option<String>,
    /// A Messaging Service (`MG…`) that picks the sending number; or `from`.
    #[serde(default)]
    pub messaging_service_sid: Option<String>,
    /// Our numbers: a customer's message must be addressed to one (default: `[from]`).
    #[serde(default)]
    pub numbers: Vec<String>,
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// At most this many SMS segments per message; longer texts are split.
    #[serde(default = "default_max_segments")]
    pub max_segments: usize,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Sent to someone who texts without an open session (`None`: not answered).
    #[serde(default)]
    pub unknown_sender_reply: Option<String>,
    #[serde(default)]
    pub keywords: KeywordConfig,
}

fn enabled() -> bool {
    true
}

fn default_api_url() -> String {
    DEFAULT_API_URL.to_owned()
}

fn default_max_segments() -> usize {
    MAX_SEGMENTS
}

fn default_timeout_secs() -> u64 {
    10
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            account_sid: None,
            auth_token: None,
            auth_token_file: None,
            api_key_sid: None,
            api_key_secret: None,
            api_key_secret_file: None,
            from: None,
            messaging_service_sid: None,
            numbers: Vec::new(),
            api_url: default_api_url(),
            max_segments: default_max_segments(),
            timeout_secs: default_timeout_secs(),
            unknown_sender_reply: None,
            keywords: KeywordConfig::default(),
        }
    }
}

impl SmsConfig {
    /// Builds the channel named `name` (`sms`).
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`] naming `channels.<name>.<key>` and what to do.
    pub fn build(&self, name: &str) -> Result<SmsChannel, ChannelError> {
        let setting = |key: &str| format!("channels.{name}.{key}");
        let invalid = |key: &str, reason: &str| ChannelError::InvalidConfig {
            setting: setting(key),
            reason: reason.to_owned(),
        };
        if !(1..=MAX_SEGMENTS).contains(&self.max_segments) {
            return Err(invalid(
                "max_segments",
                "must be between 1 and 10 (Twilio takes at most 1,600 characters a message)",
            ));
        }
        let unknown_sender_reply = match self.unknown_sender_reply.as_deref().map(str::trim) {
            None => None,
            Some(text) if !text.is_empty() && text.chars().count() <= MAX_ANSWER_CHARS => {
                Some(text.to_owned())
            }
            Some(_) => {
                return Err(invalid(
                    "unknown_sender_reply",
                    "must be 1 to 1600 characters, or left out to not answer",
                ));
            }
        };
        if self.keywords.help_text.chars().count() > MAX_ANSWER_CHARS {
            return Err(invalid(
                "keywords.help_text",
                "must be at most 1600 characters",
            ));
        }
        let twilio = self.twilio(name, AddressPrefix::Bare)?;
        Ok(SmsChannel {
            twilio,
            max_segments: self.max_segments,
            keywords: self.keywords.clone(),
            unknown_sender_reply,
        })
    }

    /// The Twilio client when the account is configured; `None` when no Twilio setting is.
    /// `prefix` says how addresses are written (bare for SMS, `whatsapp:` for a WhatsApp
    /// sender, which shares these settings).
    pub(crate) fn twilio(
        &self,
        name: &str,
        prefix: AddressPrefix,
    ) -> Result<Option<TwilioMessaging>, ChannelError> {
        let setting = |key: &str| format!("channels.{name}.{key}");
        let invalid = |key: &str, reason: String| ChannelError::InvalidConfig {
            setting: setting(key),
            reason,
        };
        let auth_token = read_secret(
            self.auth_token.as_ref(),
            self.auth_token_file.as_deref(),
            &setting("auth_token"),
        )?;
        let api_key_secret = read_secret(
            self.api_key_secret.as_ref(),
            self.api_key_secret_file.as_deref(),
            &setting("api_key_secret"),
        )?;
        let (account_sid, auth_token) = match (self.account_sid.clone(), auth_token) {
            (Some(sid), Some(token)) => (sid, token),
            (None, None) => {
                let stray = [
                    ("from", self.from.is_some()),
                    (
                        "messaging_service_sid",
                        self.messaging_service_sid.is_some(),
                    ),
                    ("numbers", !self.numbers.is_empty()),
                    ("api_key_sid", self.api_key_sid.is_some()),
                    ("api_key_secret", api_key_secret.is_some()),
                ]
                .into_iter()
                .find(|(_, set)| *set);
                return match stray {
                    Some((key, _)) => Err(invalid(
                        "account_sid",
                        format!(
                            "`{key}` is set but the Twilio account is not: set account_sid and \
                             auth_token (or auth_token_file) to send and receive SMS"
                        ),
                    )),
                    None => Ok(None),
                };
            }
            (Some(_), None) => {
                return Err(invalid(
                    "auth_token",
                    "the account's auth token is needed with account_sid (it signs Twilio's \
                     webhooks): set auth_token or auth_token_file"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "account_sid",
                    "the account (AC…) is needed with auth_token".into(),
                ));
            }
        };
        let api_key = match (self.api_key_sid.clone(), api_key_secret) {
            (Some(sid), Some(secret)) => Some((sid, secret)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "api_key_secret",
                    "an API key needs its secret: set api_key_secret or api_key_secret_file".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "api_key_sid",
                    "an API key secret needs its sid (SK…)".into(),
                ));
            }
        };
        let sender = match (&self.from, &self.messaging_service_sid) {
            (Some(from), None) => TwilioSender::Number(from.clone()),
            (None, Some(service)) => TwilioSender::MessagingService(service.clone()),
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "messaging_service_sid",
                    "set either from or messaging_service_sid, not both".into(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "from",
                    "set the number to send from (from = \"+E.164\") or a Messaging Service \
                     (messaging_service_sid = \"MG…\")"
                        .into(),
                ));
            }
        };
        let numbers = match (&sender, self.numbers.is_empty()) {
            (TwilioSender::Number(from), true) => vec![from.clone()],
            _ => self.numbers.clone(),
        };
        TwilioMessaging::new(
            name,
            TwilioSettings {
                account_sid,
                auth_token,
                api_key,
                sender,
                numbers,
                api_url: self.api_url.clone(),
                timeout: Duration::from_secs(self.timeout_secs),
                prefix,
            },
        )
        .map(Some)
    }
}

/// The SMS channel.
#[derive(Debug, Clone)]
pub struct SmsChannel {
    /// `None`: no Twilio account configured (receive-only).
    twilio: Option<TwilioMessaging>,
    max_segments: usize,
    keywords: KeywordConfig,
    unknown_sender_reply: Option<String>,
}

#[async_trait::async_trait]
impl Channel for SmsChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn preferred_route(&self) -> Route {
        Route::Messaging
    }

    /// With an account: sends and receives, messages of at most `max_segments` SMS segments
    /// (Twilio does not dedupe on our id, so a send whose outcome is unknown is not repeated).
    /// Without: neither.
    fn capabilities(&self) -> Capabilities {
        let configured = self.twilio.is_some();
        Capabilities {
            delivers: configured,
            inbound: configured,
            max_message_chars: None,
            split: SplitRule::SmsSegments {
                max_segments: self.max_segments,
            },
            provider_dedupe: false,
            ..Capabilities::receive_only()
        }
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        normalize::transcript_conversation(&ChannelKind::Sms, input)
    }

    /// `{"phone": "+E.164"}`, defaulting to the customer's phone.
    fn reply_target(
        &self,
        reply_to: Option<&Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        reply::phone(ChannelKind::Sms.as_str(), reply_to, conversation)
    }

    async fn inbound(&self, request: &InboundRequest) -> Result<Vec<InboundEvent>, ChannelError> {
        match &self.twilio {
            Some(twilio) => twilio.inbound(request),
            None => Err(ChannelError::InboundNotSupported {
                channel: ChannelKind::Sms.to_string(),
            }),
        }
    }

    fn inbound_ack(&self) -> InboundAck {
        TwilioMessaging::ack()
    }

    /// Opt-out and opt-in keywords are acted on without an answer (Twilio's Advanced Opt-Out
    /// answers them on the carrier's behalf); help is answered with the configured text.
    fn keyword(&self, text: &str) -> Option<(Keyword, Option<String>)> {
        let keyword = self.keywords.classify(text)?;
        let answer = match keyword {
            Keyword::Help => Some(self.keywords.help_text.trim())
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            Keyword::OptOut | Keyword::OptIn => None,
        };
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
        let Some(twilio) = &self.twilio else {
            return Err(DeliveryError::Unsupported {
                channel: ChannelKind::Sms.to_string(),
            });
        };
        let ReplyTarget::Phone { number } = target else {
            return Err(DeliveryError::Permanent {
                message: "an SMS reply needs a phone number".into(),
            });
        };
        twilio
            .send(
                number,
                Content::Text(&message.text),
                &message.id,
                message.status_callback.as_deref(),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::{ChannelConfig, OutboundKind};

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

    fn configured(extra: Value) -> Value {
        let mut table = json!({
            "type": "sms",
            "account_sid": ACCOUNT,
            "auth_token": "0123456789abcdef0123456789abcdef",
            "from": "+15550100000",
        });
        for (k, v) in extra.as_object().unwrap() {
            table[k] = v.clone();
        }
        table
    }

    fn build(table: Value) -> Result<SmsChannel, ChannelError> {
        let ChannelConfig::Sms(config) = serde_json::from_value(table).unwrap() else {
            panic!("an sms table");
        };
        config.build("sms")
    }

    fn setting_of(table: Value) -> String {
        build(table).unwrap_err().field().unwrap()
    }

    #[test]
    fn without_an_account_the_channel_neither_sends_nor_receives() {
        for channel in [
            SmsConfig::default().build("sms").unwrap(),
            build(json!({"type": "sms"})).unwrap(),
        ] {
            let caps = channel.capabilities();
            assert!(!caps.delivers && !caps.inbound);
            assert_eq!(caps.split, SplitRule::SmsSegments { max_segments: 10 });
        }
    }

    #[tokio::test]
    async fn without_an_account_inbound_and_delivery_are_refused() {
        let channel = SmsConfig::default().build("sms").unwrap();
        let request = InboundRequest {
            url: "https://h/channels/sms/inbound".into(),
            headers: vec![],
            body: b"Body=hi".to_vec(),
            received_at: Utc::now(),
        };
        let err = channel.inbound(&request).await.unwrap_err();
        assert_eq!(err.code(), "inbound_not_supported");
        let message = OutboundMessage {
            id: "dlv_1".into(),
            session_id: "s-1".into(),
            kind: OutboundKind::AgentMessage,
            text: "hi".into(),
            sender_name: None,
            at: Utc::now(),
            email: None,
            customer_last_message_at: None,
            status_callback: None,
        };
        let target = ReplyTarget::Phone {
            number: "+15551234567".into(),
        };
        assert!(matches!(
            channel.deliver(&target, &message).await,
            Err(DeliveryError::Unsupported { .. })
        ));
    }

    #[test]
    fn with_an_account_the_channel_sends_and_receives_in_segments() {
        let channel = build(configured(json!({"max_segments": 3}))).unwrap();
        let caps = channel.capabilities();
        assert!(caps.delivers && caps.inbound && !caps.provider_dedupe);
        assert_eq!(caps.max_message_chars, None);
        assert_eq!(caps.split, SplitRule::SmsSegments { max_segments: 3 });
        assert_eq!(
            channel.inbound_ack().body,
            r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
        );
        assert_eq!(channel.inbound_ack().content_type, "text/xml");
        assert_eq!(channel.twilio.as_ref().unwrap().numbers(), ["+15550100000"]);
    }

    #[test]
    fn half_configured_accounts_are_refused_with_the_setting() {
        assert_eq!(
            setting_of(json!({"type": "sms", "from": "+15550100000"})),
            "channels.sms.account_sid"
        );
        assert_eq!(
            setting_of(json!({"type": "sms", "account_sid": ACCOUNT})),
            "channels.sms.auth_token"
        );
        assert_eq!(
            setting_of(json!({"type": "sms", "auth_token": "t"})),
            "channels.sms.account_sid"
        );
        let mut no_sender = configured(json!({}));
        no_sender.as_object_mut().unwrap().remove("from");
        assert_eq!(setting_of(no_sender), "channels.sms.from");
        assert_eq!(
            setting_of(configured(
                json!({"messaging_service_sid": format!("MG{}", &ACCOUNT[2..])})
            )),
            "channels.sms.messaging_service_sid"
        );
        assert_eq!(
            setting_of(configured(
                json!({"api_key_sid": format!("SK{}", &ACCOUNT[2..])})
            )),
            "channels.sms.api_key_secret"
        );
        assert_eq!(
            setting_of(configured(json!({"api_key_secret": "s"}))),
            "channels.sms.api_key_sid"
        );
        assert_eq!(
            setting_of(configured(json!({"max_segments": 11}))),
            "channels.sms.max_segments"
        );
        assert_eq!(
            setting_of(configured(json!({"max_segments": 0}))),
            "channels.sms.max_segments"
        );
        assert_eq!(
            setting_of(configured(json!({"unknown_sender_reply": "  "}))),
            "channels.sms.unknown_sender_reply"
        );
        assert_eq!(
            setting_of(configured(json!({"from": "+1555"}))),
            "channels.sms.from"
        );
        assert_eq!(
            setting_of(configured(json!({"auth_token_file": "/nonexistent/token"}))),
            "channels.sms.auth_token"
        );
        let err =
            serde_json::from_value::<ChannelConfig>(configured(json!({"form": "+1"}))).unwrap_err();
        assert!(err.to_string().contains("unknown field `form`"), "{err}");
    }

    #[test]
    fn a_messaging_service_needs_its_numbers_listed() {
        let mut table = configured(json!({
            "messaging_service_sid": format!("MG{}", &ACCOUNT[2..]),
        }));
        table.as_object_mut().unwrap().remove("from");
        assert_eq!(setting_of(table.clone()), "channels.sms.numbers");
        table["numbers"] = json!(["+15550100001", "+15550100002"]);
        let channel = build(table).unwrap();
        assert_eq!(
            channel.twilio.unwrap().numbers(),
            ["+15550100001", "+15550100002"]
        );
    }

    #[test]
    fn keywords_follow_the_config() {
        let channel = build(configured(json!({
            "keywords": {"help_text": "Reply STOP to stop.", "opt_out": ["STOP", "ARRET"]},
            "unknown_sender_reply": " Who is this? ",
        })))
        .unwrap();
        assert_eq!(
            channel.keyword(" help "),
            Some((Keyword::Help, Some("Reply STOP to stop.".into())))
        );
        assert_eq!(channel.keyword("arret"), Some((Keyword::OptOut, None)));
        assert_eq!(channel.keyword("START"), Some((Keyword::OptIn, None)));
        assert_eq!(channel.keyword("stop sending me the invoice"), None);
        assert_eq!(
            channel.unknown_sender_reply().as_deref(),
            Some("Who is this?")
        );
        assert_eq!(
            SmsConfig::default()
                .build("sms")
                .unwrap()
                .unknown_sender_reply(),
            None
        );
    }

    #[test]
    fn reply_targets_are_phone_numbers() {
        let channel = SmsConfig::default().build("sms").unwrap();
        let conversation = Conversation {
            subject: None,
            customer: crate::Customer {
                name: None,
                email: None,
                phone: Some("+15551234567".into()),
            },
            language: "en".into(),
            turns: vec![],
            thread: None,
            voice: None,
        };
        assert_eq!(
            channel.reply_target(None, &conversation).unwrap(),
            Some(ReplyTarget::Phone {
                number: "+15551234567".into()
            })
        );
        let err = channel
            .reply_target(Some(&json!({"phone": "555"})), &conversation)
            .unwrap_err();
        assert_eq!(err.field().as_deref(), Some("reply_to.phone"));
    }
}
