//! The email channel: escalations carry either a transcript or the raw RFC 5322 thread; rep
//! replies go back over SMTP ([`outgoing`] builds them, [`send`] sends them).

mod config;
mod html;
pub mod inbound;
mod inbound_config;
mod outgoing;
mod parse;
mod quote;
mod send;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use config::{EmailConfig, SmtpConfig, SmtpTls};
pub use html::html_to_text;
pub use inbound::{
    AttachmentInfo, AutoReply, InboundEmail, InboundParseError, ThreadToken, is_reply_token,
    parse_inbound, reply_tokens,
};
pub use inbound_config::{AppendAs, EmailInboundConfig, InboundCredentials};
pub use outgoing::DEFAULT_SUBJECT;
pub use parse::{ParsedThread, parse_thread};

use serde_json::Value;

use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, Customer, Delivered,
    DeliveryError, EscalationInput, OutboundMessage, ReplyTarget, Route, SplitRule, normalize,
    reply,
};

/// The email channel. Prefers the Case path. Built from [`EmailConfig`]; without its `smtp`
/// table it takes escalations but does not deliver.
#[derive(Debug, Clone, Default)]
pub struct EmailChannel {
    outgoing: Option<Arc<Outgoing>>,
}

/// What sending needs: the configured addresses and the relay.
#[derive(Debug)]
struct Outgoing {
    composer: outgoing::Composer,
    sender: send::SmtpSender,
}

impl EmailChannel {
    /// An email channel that does not deliver (no SMTP relay configured).
    #[must_use]
    pub fn new() -> Self {
        Self { outgoing: None }
    }

    /// Connects to the configured relay and logs in, without sending anything (for
    /// `handoff doctor`).
    ///
    /// # Errors
    /// [`DeliveryError::Unsupported`] without an SMTP relay; otherwise what a send would have
    /// met (refused connection, TLS, login refused).
    pub async fn check_smtp(&self) -> Result<(), DeliveryError> {
        match &self.outgoing {
            None => Err(DeliveryError::Unsupported {
                channel: "email".into(),
            }),
            Some(outgoing) => outgoing.sender.check().await,
        }
    }

    /// [`Channel::normalize`] with an explicit clock: `now` dates messages without a usable
    /// `Date` header when no earlier message has one.
    ///
    /// # Errors
    /// As [`Channel::normalize`].
    pub fn normalize_at(
        &self,
        input: EscalationInput,
        now: DateTime<Utc>,
    ) -> Result<Conversation, ChannelError> {
        normalize::refuse_voice_fields(&ChannelKind::Email, &input)?;
        let EscalationInput {
            subject,
            customer,
            language,
            transcript,
            raw_email,
            ..
        } = input;
        let language = normalize::language(&language)?;
        let customer = normalize::customer(customer);
        let subject = normalize::non_blank(subject);
        match (transcript, raw_email) {
            (Some(_), Some(_)) => Err(ChannelError::TranscriptAndRawEmail),
            (None, None) => Err(ChannelError::MissingConversation),
            (Some(turns), None) => Ok(Conversation {
                subject,
                customer,
                language,
                turns: normalize::transcript(turns)?,
                thread: None,
                voice: None,
            }),
            (None, Some(raw)) => {
                let parsed = parse_thread(&raw, now)?;
                Ok(Conversation {
                    subject: subject.or(parsed.subject),
                    customer: Customer {
                        name: customer.name.or(parsed.customer.name),
                        email: customer.email.or(parsed.customer.email),
                        phone: customer.phone,
                    },
                    language,
                    turns: parsed.turns,
                    thread: parsed.thread,
                    voice: None,
                })
            }
        }
    }
}

#[async_trait::async_trait]
impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn preferred_route(&self) -> Route {
        Route::Case
    }

    /// Email delivers when an SMTP relay is configured (`[channels.email.smtp]`). A reply threads
    /// under the customer's message (`In-Reply-To` and `References` from the message's
    /// [`crate::EmailContext`], the subject kept with one `Re:`), carries a `Reply-To` that
    /// routes the customer's answer back to the session, and is never split. Relays do not
    /// dedupe, so a send whose outcome is unknown is not retried blindly.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delivers: self.outgoing.is_some(),
            split: SplitRule::Whole,
            max_message_chars: None,
            provider_dedupe: false,
            ..Capabilities::receive_only()
        }
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        self.normalize_at(input, Utc::now())
    }

    /// `{"email": …}`, defaulting to the customer's address.
    fn reply_target(
        &self,
        reply_to: Option<&Value>,
        conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        reply::email(reply_to, conversation)
    }

    /// Sends the reply through the relay; [`Delivered::provider_id`] is its `Message-ID`
    /// without angle brackets.
    async fn deliver(
        &self,
        target: &ReplyTarget,
        message: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let Some(outgoing) = &self.outgoing else {
            return Err(DeliveryError::Unsupported {
                channel: "email".into(),
            });
        };
        let ReplyTarget::Email { address } = target else {
            return Err(DeliveryError::Permanent {
                message: "an email reply needs an email target".into(),
            });
        };
        let (email, message_id) = outgoing.composer.compose(address, message)?;
        outgoing.sender.send(&email).await?;
        Ok(Delivered {
            provider_id: Some(message_id),
        })
    }
}
