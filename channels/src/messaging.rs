//! The live-messaging channels (chat, SMS, WhatsApp, voice): at escalation they take the
//! transcript the AI product kept.

use crate::{Channel, ChannelError, ChannelKind, Conversation, EscalationInput, Route, normalize};

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

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        if input.raw_email.is_some() {
            return Err(ChannelError::RawEmailNotSupported {
                channel: self.kind.to_string(),
            });
        }
        let language = normalize::language(&input.language)?;
        let turns =
            normalize::transcript(input.transcript.ok_or(ChannelError::MissingTranscript)?)?;
        Ok(Conversation {
            subject: normalize::non_blank(input.subject),
            customer: normalize::customer(input.customer),
            language,
            turns,
            thread: None,
        })
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
            raw_email: None,
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
