//! The live-messaging channels (chat, SMS, WhatsApp, voice): at escalation they take the
//! transcript the AI product kept. Chat's delivery lives in [`crate::ChatChannel`].

use std::time::Duration;

use serde_json::Value;

use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, EscalationInput, ReplyTarget,
    Route, SplitRule, normalize, reply,
};

/// Twilio concatenates an SMS of up to 1,600 characters; longer texts are split by us.
pub const SMS_MAX_CHARS: usize = 1_600;
/// The WhatsApp Cloud API's limit on a text message body.
pub const WHATSAPP_MAX_CHARS: usize = 4_096;
/// WhatsApp's customer service window: free-form messages only within 24 hours of the
/// customer's last message (templates outside it).
pub const WHATSAPP_REPLY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);

/// A channel that escalates to live messaging and accepts a `transcript` only.
#[derive(Debug, Clone)]
pub struct MessagingChannel {
    kind: ChannelKind,
}

impl MessagingChannel {
    #[must_use]
    pub fn chat() -> Self {
        Self {
            kind: ChannelKind::Chat,
        }
    }

    #[must_use]
    pub fn sms() -> Self {
        Self {
            kind: ChannelKind::Sms,
        }
    }

    #[must_use]
    pub fn whatsapp() -> Self {
        Self {
            kind: ChannelKind::Whatsapp,
        }
    }

    #[must_use]
    pub fn voice() -> Self {
        Self {
            kind: ChannelKind::Voice,
        }
    }
}

#[async_trait::async_trait]
impl Channel for MessagingChannel {
    fn kind(&self) -> ChannelKind {
        self.kind.clone()
    }

    fn preferred_route(&self) -> Route {
        Route::Messaging
    }

    /// SMS: 1,600 characters a message, split between words. WhatsApp: 4,096 characters,
    /// split between words, and free-form replies only within 24 hours of the customer's last
    /// message. Voice: nothing is sent on the call; follow-ups go by SMS or email. None of
    /// these delivers yet (the Twilio and Meta senders come with their channels).
    fn capabilities(&self) -> Capabilities {
        let base = Capabilities::receive_only();
        match self.kind {
            ChannelKind::Sms => Capabilities {
                max_message_chars: Some(SMS_MAX_CHARS),
                split: SplitRule::Words,
                ..base
            },
            ChannelKind::Whatsapp => Capabilities {
                max_message_chars: Some(WHATSAPP_MAX_CHARS),
                split: SplitRule::Words,
                reply_window: Some(WHATSAPP_REPLY_WINDOW),
                ..base
            },
            _ => base,
        }
    }

    /// `{"phone": "+E.164"}` for SMS, WhatsApp and voice, defaulting to the customer's phone.
    fn reply_target(
        &self,
        reply_to: Option<&Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        match self.kind {
            ChannelKind::Sms | ChannelKind::Whatsapp | ChannelKind::Voice => {
                reply::phone(self.kind.as_str(), reply_to, conversation)
            }
            _ => match reply_to {
                None => Ok(None),
                Some(_) => Err(ChannelError::ReplyToNotSupported {
                    channel: self.kind.to_string(),
                }),
            },
        }
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        normalize::transcript_conversation(&self.kind, input)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::{Customer, Role, Turn};

    fn turn(role: Role, text: &str) -> Turn {
        Turn {
            role,
            text: text.to_owned(),
            at: Utc.with_ymd_and_hms(2026, 11, 16, 9, 0, 0).unwrap(),
            offset_ms: None,
        }
    }

    fn input(transcript: Option<Vec<Turn>>) -> EscalationInput {
        EscalationInput {
            subject: Some(" Card declined ".into()),
            customer: Customer {
                name: Some("Ann".into()),
                email: None,
                phone: Some("+15551234567".into()),
            },
            language: "en".into(),
            transcript,
            ..EscalationInput::default()
        }
    }

    #[test]
    fn each_messaging_channel_prefers_messaging() {
        for (channel, kind) in [
            (MessagingChannel::chat(), ChannelKind::Chat),
            (MessagingChannel::sms(), ChannelKind::Sms),
            (MessagingChannel::whatsapp(), ChannelKind::Whatsapp),
            (MessagingChannel::voice(), ChannelKind::Voice),
        ] {
            assert_eq!(channel.kind(), kind);
            assert_eq!(channel.preferred_route(), Route::Messaging);
        }
    }

    #[test]
    fn capabilities_follow_each_provider() {
        let sms = MessagingChannel::sms().capabilities();
        assert_eq!(sms.max_message_chars, Some(1_600));
        assert_eq!(sms.split, SplitRule::Words);
        assert!(!sms.delivers);
        let whatsapp = MessagingChannel::whatsapp().capabilities();
        assert_eq!(whatsapp.max_message_chars, Some(4_096));
        assert_eq!(
            whatsapp.reply_window,
            Some(Duration::from_secs(24 * 60 * 60))
        );
        assert_eq!(
            MessagingChannel::voice().capabilities(),
            Capabilities::receive_only()
        );
    }

    #[test]
    fn normalizes_a_transcript() {
        let conversation = MessagingChannel::sms()
            .normalize(input(Some(vec![
                turn(Role::Customer, "  my card was declined \n"),
                turn(Role::Bot, "Let me get a human."),
            ])))
            .unwrap();
        assert_eq!(conversation.subject.as_deref(), Some("Card declined"));
        assert_eq!(conversation.customer.phone.as_deref(), Some("+15551234567"));
        assert_eq!(conversation.turns.len(), 2);
        assert_eq!(conversation.turns[0].text, "my card was declined");
        assert_eq!(conversation.turns[1].role, Role::Bot);
        assert_eq!(conversation.thread, None);
    }

    #[test]
    fn refuses_bad_input_with_code_and_field() {
        let chat = MessagingChannel::chat();
        let cases: Vec<(EscalationInput, &str, &str)> = vec![
            (input(None), "missing_transcript", "transcript"),
            (input(Some(vec![])), "empty_transcript", "transcript"),
            (
                input(Some(vec![
                    turn(Role::Customer, "hello"),
                    turn(Role::Bot, "ok"),
                    turn(Role::Customer, "fine"),
                    turn(Role::Customer, " \n\t"),
                ])),
                "empty_turn_text",
                "transcript[3].text",
            ),
            (
                EscalationInput {
                    raw_email: Some(vec!["From: a@b.example\r\n\r\nhi".into()]),
                    ..input(Some(vec![turn(Role::Customer, "hello")]))
                },
                "raw_email_not_supported",
                "raw_email",
            ),
            (
                EscalationInput {
                    language: "en_US".into(),
                    ..input(Some(vec![turn(Role::Customer, "hello")]))
                },
                "invalid_language",
                "language",
            ),
        ];
        for (input, code, field) in cases {
            let err = chat.normalize(input).unwrap_err();
            assert_eq!((err.code(), err.field().as_deref()), (code, Some(field)));
        }
        let err = chat
            .normalize(EscalationInput {
                raw_email: Some(vec![]),
                ..input(None)
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the chat channel does not accept `raw_email`; send a `transcript`"
        );
    }
}
