//! The email channel: escalations carry either a transcript or the raw RFC 5322 thread.

mod html;
pub mod inbound;
mod inbound_config;
mod parse;
mod quote;

use chrono::{DateTime, Utc};

pub use inbound::{
    AttachmentInfo, AutoReply, InboundEmail, InboundParseError, ThreadToken, is_reply_token,
    parse_inbound, reply_tokens,
};
pub use inbound_config::{AppendAs, EmailInboundConfig, InboundCredentials};
pub use parse::{ParsedThread, parse_thread};

use serde_json::Value;

use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, Customer, EscalationInput,
    ReplyTarget, Route, normalize, reply,
};

/// The email channel. Prefers the Case path.
#[derive(Debug, Clone, Default)]
pub struct EmailChannel;

impl EmailChannel {
    #[must_use]
    pub fn new() -> Self {
        Self
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
        let EscalationInput {
            subject,
            customer,
            language,
            transcript,
            raw_email,
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

    /// Email does not deliver yet: sending by SMTP (`lettre`) comes with issue 8. When it
    /// does, a reply threads under the customer's message (`In-Reply-To` and `References` from
    /// [`Conversation::thread`], the subject kept with `Re:`), carries a `Reply-To` that routes
    /// the customer's answer back to the session, and is never split.
    fn capabilities(&self) -> Capabilities {
        Capabilities::receive_only()
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
}
