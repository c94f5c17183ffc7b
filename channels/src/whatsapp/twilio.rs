//! WhatsApp through Twilio's WhatsApp senders (`provider = "twilio"`): the same Messages API,
//! webhook signature and status callbacks as SMS, with `whatsapp:` addresses, WhatsApp's
//! 24-hour window, and a Content Template (`ContentSid`) outside it.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::{Map, Value, json};

use super::window;
use crate::twilio::{AddressPrefix, Content, TwilioMessaging};
use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, Delivered, DeliveryError,
    EscalationInput, InboundAck, InboundEvent, InboundRequest, Keyword, KeywordConfig,
    OutboundMessage, ReplyTarget, Route, SmsConfig, SplitRule, normalize, reply,
};

/// Twilio takes at most 1,600 characters in a WhatsApp `Body`; longer replies are split.
pub const TWILIO_WHATSAPP_MAX_CHARS: usize = 1_600;

/// `[channels.whatsapp] provider = "twilio"`: the SMS channel's Twilio settings (`account_sid`,
/// `auth_token`, `from` or `messaging_service_sid`, `numbers`, `api_url`, `timeout_secs`,
/// `unknown_sender_reply`, `keywords`; numbers without the `whatsapp:` prefix), plus the
/// approved Content Template sent outside the 24-hour window.
#[derive(Debug, Clone)]
pub struct TwilioWhatsappConfig {
    /// The shared Twilio settings, checked as the SMS channel checks them.
    pub twilio: SmsConfig,
    /// The approved Content Template (`HX…`) sent when the window is closed; without one such
    /// a reply fails and the rep is told.
    pub content_sid: Option<String>,
    /// The template variable that carries the reply's text (`"1"` for `{{1}}`); none: the
    /// template is sent without variables.
    pub content_variable: Option<String>,
}

impl<'de> Deserialize<'de> for TwilioWhatsappConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut table = Map::<String, Value>::deserialize(deserializer)?;
        table.remove("provider");
        let text = |table: &mut Map<String, Value>, key: &str| match table.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(de::Error::custom(format!("`{key}` must be a string"))),
        };
        let content_sid = text(&mut table, "content_sid")?;
        let content_variable = text(&mut table, "content_variable")?;
        if table.contains_key("max_segments") {
            return Err(de::Error::custom(
                "`max_segments` is an SMS setting; WhatsApp messages are not sent in segments",
            ));
        }
        let twilio = SmsConfig::deserialize(Value::Object(table)).map_err(de::Error::custom)?;
        Ok(Self {
            twilio,
            content_sid,
            content_variable,
        })
    }
}

impl TwilioWhatsappConfig {
    /// Builds the adapter configured under `[channels.<name>]`.
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`] naming `channels.<name>.<key>`.
    pub fn build(&self, name: &str) -> Result<TwilioWhatsappChannel, ChannelError> {
        let invalid = |key: &str, reason: &str| ChannelError::InvalidConfig {
            setting: format!("channels.{name}.{key}"),
            reason: reason.to_owned(),
        };
        // The SMS checks (answers' lengths, keywords, account) hold for WhatsApp too.
        let checked = self.twilio.build(name)?;
        let content_sid = match self.content_sid.as_deref().map(str::trim) {
            None => None,
            Some(sid)
                if sid.len() == 34
                    && sid.starts_with("HX")
                    && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Some(sid.to_owned())
            }
            Some(_) => {
                return Err(invalid(
                    "content_sid",
                    "must be an approved Content Template's sid: HX and 32 hexadecimal digits",
                ));
            }
        };
        let content_variable = match self.content_variable.as_deref().map(str::trim) {
            None => None,
            Some(_) if content_sid.is_none() => {
                return Err(invalid(
                    "content_variable",
                    "a template variable needs the template: set content_sid",
                ));
            }
            Some(v) if (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()) => {
                Some(v.to_owned())
            }
            Some(_) => {
                return Err(invalid(
                    "content_variable",
                    "must be the template variable's name, such as \"1\" for {{1}}",
                ));
            }
        };
        Ok(TwilioWhatsappChannel {
            twilio: self.twilio.twilio(name, AddressPrefix::Whatsapp)?,
            keywords: self.twilio.keywords.clone(),
            unknown_sender_reply: checked.unknown_sender_reply(),
            content_sid,
            content_variable,
            clock: chrono::Utc::now,
        })
    }
}

/// The WhatsApp adapter over a Twilio WhatsApp sender.
#[derive(Debug, Clone)]
pub struct TwilioWhatsappChannel {
    /// `None`: no Twilio account configured (receive-only).
    twilio: Option<TwilioMessaging>,
    keywords: KeywordConfig,
    unknown_sender_reply: Option<String>,
    content_sid: Option<String>,
    content_variable: Option<String>,
    clock: fn() -> chrono::DateTime<chrono::Utc>,
}

impl TwilioWhatsappChannel {
    /// The same adapter reading the time from `clock` when it judges the 24-hour window (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> chrono::DateTime<chrono::Utc>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends the configured template (the window is closed), or says why not.
    async fn send_template(
        &self,
        twilio: &TwilioMessaging,
        number: &str,
        message: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let Some(content_sid) = &self.content_sid else {
            return Err(DeliveryError::WindowClosed {
                message: "more than 24 hours have passed since the customer last wrote on \
                          WhatsApp (or they never did), and no approved template is configured \
                          (channels.whatsapp.content_sid): the customer must write first"
                    .into(),
            });
        };
        let variables = self.content_variable.as_ref().map(|name| {
            json!({ name.as_str(): window::template_parameter(&message.text) }).to_string()
        });
        tracing::info!(delivery_id = %message.id, "WhatsApp window closed: sending the template.");
        twilio
            .send(
                number,
                Content::Template {
                    content_sid,
                    variables: variables.as_deref(),
                },
                &message.id,
                message.status_callback.as_deref(),
            )
            .await
    }
}

#[async_trait::async_trait]
impl Channel for TwilioWhatsappChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Whatsapp
    }

    fn preferred_route(&self) -> Route {
        Route::Messaging
    }

    /// With an account: sends and receives, 1,600 characters a message split between words,
    /// free-form text only within 24 hours of the customer's last message. Twilio does not
    /// dedupe on our id, so a send whose outcome is unknown is not repeated.
    fn capabilities(&self) -> Capabilities {
        let configured = self.twilio.is_some();
        Capabilities {
            delivers: configured,
            inbound: configured,
            max_message_chars: Some(TWILIO_WHATSAPP_MAX_CHARS),
            split: SplitRule::Words,
            reply_window: Some(window::WHATSAPP_REPLY_WINDOW),
            provider_dedupe: false,
            ..Capabilities::receive_only()
        }
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        normalize::transcript_conversation(&ChannelKind::Whatsapp, input)
    }

    fn reply_target(
        &self,
        reply_to: Option<&Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        reply::phone(ChannelKind::Whatsapp.as_str(), reply_to, conversation)
    }

    async fn inbound(&self, request: &InboundRequest) -> Result<Vec<InboundEvent>, ChannelError> {
        match &self.twilio {
            Some(twilio) => twilio.inbound(request),
            None => Err(ChannelError::InboundNotSupported {
                channel: ChannelKind::Whatsapp.to_string(),
            }),
        }
    }

    fn inbound_ack(&self) -> InboundAck {
        TwilioMessaging::ack()
    }

    /// As on SMS: opt-out and opt-in are acted on silently, help answers the help text.
    fn keyword(&self, text: &str) -> Option<(Keyword, Option<String>)> {
        let keyword = self.keywords.classify(text)?;
        let answer = (keyword == Keyword::Help)
            .then(|| self.keywords.help_text.trim().to_owned())
            .filter(|t| !t.is_empty());
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
                channel: ChannelKind::Whatsapp.to_string(),
            });
        };
        let ReplyTarget::Phone { number } = target else {
            return Err(DeliveryError::Permanent {
                message: "a WhatsApp message needs a phone number target".into(),
            });
        };
        if message.text.chars().count() > TWILIO_WHATSAPP_MAX_CHARS {
            return Err(DeliveryError::Permanent {
                message: "the message is longer than Twilio's 1600 characters for WhatsApp".into(),
            });
        }
        if window::is_open(message.customer_last_message_at, (self.clock)()) {
            match twilio
                .send(
                    number,
                    Content::Text(&message.text),
                    &message.id,
                    message.status_callback.as_deref(),
                )
                .await
            {
                // 63016: Twilio saw the window closed although our clock did not.
                Err(DeliveryError::WindowClosed { .. }) => {}
                other => return other,
            }
        }
        self.send_template(twilio, number, message).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::{ChannelConfig, OutboundKind, WhatsappConfig};

    fn config(extra: Value) -> Result<ChannelConfig, serde_json::Error> {
        let mut table = json!({
            "type": "whatsapp",
            "provider": "twilio",
            "account_sid": "AC0123456789abcdef0123456789abcdef",
            "auth_token": "0123456789abcdef0123456789abcdef",
            "from": "+15550100000",
        });
        for (k, v) in extra.as_object().unwrap() {
            table[k] = v.clone();
        }
        serde_json::from_value(table)
    }

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
    }

    fn message(last: Option<DateTime<Utc>>) -> OutboundMessage {
        OutboundMessage {
            id: "dlv_1".into(),
            session_id: "s-1".into(),
            kind: OutboundKind::AgentMessage,
            text: "Your replacement ships today.".into(),
            sender_name: None,
            at: noon(),
            email: None,
            customer_last_message_at: last,
            status_callback: None,
        }
    }

    #[test]
    fn the_twilio_provider_reads_the_sms_settings_and_the_template() {
        let ChannelConfig::Whatsapp(whatsapp) = config(json!({
            "content_sid": "HX0123456789abcdef0123456789abcdef",
            "content_variable": "1",
        }))
        .unwrap() else {
            panic!("a whatsapp table");
        };
        let channel = whatsapp.build("whatsapp").unwrap();
        let caps = channel.capabilities();
        assert!(caps.delivers && caps.inbound);
        assert_eq!(caps.max_message_chars, Some(TWILIO_WHATSAPP_MAX_CHARS));
        assert_eq!(caps.reply_window, Some(window::WHATSAPP_REPLY_WINDOW));
        assert_eq!(channel.kind(), ChannelKind::Whatsapp);
        assert_eq!(
            channel.inbound_ack().content_type,
            TwilioMessaging::ack().content_type
        );
    }

    #[test]
    fn bad_settings_are_named() {
        for (extra, setting) in [
            (
                json!({"content_sid": "HX12"}),
                "channels.whatsapp.content_sid",
            ),
            (
                json!({"content_variable": "1"}),
                "channels.whatsapp.content_variable",
            ),
            (json!({"from": "5550100000"}), "channels.whatsapp.from"),
        ] {
            let ChannelConfig::Whatsapp(WhatsappConfig::Twilio(whatsapp)) =
                config(extra.clone()).unwrap()
            else {
                panic!("a twilio whatsapp table");
            };
            let err = whatsapp.build("whatsapp").unwrap_err();
            assert_eq!(err.field().as_deref(), Some(setting), "{extra}");
        }
        let err = config(json!({"max_segments": 3})).unwrap_err();
        assert!(err.to_string().contains("max_segments"), "{err}");
        let err = config(json!({"phone_number_id": "123"})).unwrap_err();
        assert!(err.to_string().contains("phone_number_id"), "{err}");
    }

    #[tokio::test]
    async fn a_closed_window_without_a_template_is_refused_before_any_call() {
        let ChannelConfig::Whatsapp(WhatsappConfig::Twilio(whatsapp)) = config(json!({
            // Nothing listens here: a call would fail as a connection error, not WindowClosed.
            "api_url": "http://127.0.0.1:9",
        }))
        .unwrap() else {
            panic!("a whatsapp table");
        };
        let channel = whatsapp.build("whatsapp").unwrap().with_clock(noon);
        let target = ReplyTarget::Phone {
            number: "+15550107788".into(),
        };
        let stale = Some(noon() - chrono::Duration::hours(25));
        for last in [stale, None] {
            let err = channel.deliver(&target, &message(last)).await.unwrap_err();
            assert!(
                matches!(err, DeliveryError::WindowClosed { .. }),
                "{last:?}: {err:?}"
            );
        }
        // Inside the window the call is made (and fails here, as nothing listens).
        let fresh = Some(noon() - chrono::Duration::hours(1));
        let err = channel.deliver(&target, &message(fresh)).await.unwrap_err();
        assert!(
            matches!(err, DeliveryError::Retryable { sent: false, .. }),
            "{err:?}"
        );
    }
}
