//! The chat channel: the AI product's own widget. At escalation it takes the transcript; rep
//! and system messages go back to the product's signed callback (`reply_to.webhook_url`) as
//! Standard Webhooks (design §7.1).

use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use crate::webhook::{Envelope, WebhookSecret, WebhookSender, check_webhook_url};
use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, Delivered, DeliveryError,
    EscalationInput, OutboundMessage, ReplyTarget, Route, SplitRule, normalize,
};

/// The chat adapter. Without a webhook secret it cannot sign, so it does not deliver and
/// refuses a `reply_to` at accept time rather than accept a session it could never answer.
#[derive(Debug, Clone)]
pub struct ChatChannel {
    secret: Option<WebhookSecret>,
    sender: WebhookSender,
    allow_private: bool,
}

/// `reply_to` of a chat escalation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatReplyTo {
    webhook_url: String,
}

impl ChatChannel {
    /// A chat channel signing with `secret`; `allow_private` admits loopback and private
    /// webhook URLs (tests, the sandbox).
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`] when the HTTP client cannot be built.
    pub fn new(secret: Option<WebhookSecret>, allow_private: bool) -> Result<Self, ChannelError> {
        let sender =
            WebhookSender::new(allow_private).map_err(|e| ChannelError::InvalidConfig {
                setting: "channels.chat".into(),
                reason: format!("the webhook HTTP client could not be built: {e}"),
            })?;
        Ok(Self {
            secret,
            sender,
            allow_private,
        })
    }

    fn invalid(field: &str, reason: impl Into<String>) -> ChannelError {
        ChannelError::InvalidReplyTo {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

#[async_trait::async_trait]
impl Channel for ChatChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Chat
    }

    fn preferred_route(&self) -> Route {
        Route::Messaging
    }

    /// Chat delivers through the product's webhook (`reply_to.webhook_url`, signed with the
    /// configured secret; the `webhook-id` is the delivery id, which Standard Webhooks receivers
    /// dedupe on), or, without a `reply_to`, to the session's own event stream.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Always: to the webhook when a secret is configured, else to the session stream.
            delivers: true,
            // Webhook receivers dedupe on `webhook-id`; the stream serves each row once.
            provider_dedupe: true,
            split: SplitRule::Whole,
            ..Capabilities::receive_only()
        }
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        normalize::transcript_conversation(&ChannelKind::Chat, input)
    }

    fn reply_target(
        &self,
        reply_to: Option<&Value>,
        _conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        // Without a webhook the messages are served on the session's stream.
        let Some(value) = reply_to else {
            return Ok(Some(ReplyTarget::Stream));
        };
        if self.secret.is_none() {
            return Err(Self::invalid(
                "reply_to",
                "this gateway cannot deliver chat replies: set channels.chat.webhook_secret",
            ));
        }
        let reply: ChatReplyTo = ChatReplyTo::deserialize(value).map_err(|_| {
            Self::invalid(
                "reply_to",
                "reply_to for chat must be {\"webhook_url\": \"https://…\"} and nothing else",
            )
        })?;
        let url = check_webhook_url(&reply.webhook_url, self.allow_private)
            .map_err(|problem| Self::invalid("reply_to.webhook_url", format!("{problem}")))?;
        Ok(Some(ReplyTarget::Webhook {
            url: url.to_string(),
        }))
    }

    async fn deliver(
        &self,
        target: &ReplyTarget,
        message: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        // The session stream reads the outbox itself: nothing to push.
        if *target == ReplyTarget::Stream {
            return Ok(Delivered { provider_id: None });
        }
        let Some(secret) = &self.secret else {
            return Err(DeliveryError::Unsupported {
                channel: "chat".into(),
            });
        };
        let ReplyTarget::Webhook { url } = target else {
            return Err(DeliveryError::Permanent {
                message: "a chat reply needs a webhook target".into(),
            });
        };
        let url = check_webhook_url(url, self.allow_private).map_err(|problem| {
            DeliveryError::Permanent {
                message: format!("the webhook URL {problem}"),
            }
        })?;
        let body = Envelope::new(message, None).to_bytes();
        self.sender
            .post(&url, secret, &message.id, body, Utc::now())
            .await
    }
}

#[cfg(test)]
mod normalize_tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::{Customer, Role, Turn};

    fn chat() -> ChatChannel {
        ChatChannel::new(None, false).unwrap()
    }

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
    fn normalizes_a_transcript() {
        let conversation = chat()
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
        let chat = chat();
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
