//! The email channel: escalations carry either a transcript or the raw RFC 5322 thread.

mod html;
mod parse;
mod quote;

use chrono::{DateTime, Utc};

pub use parse::{ParsedThread, parse_thread};

use crate::{
    Channel, ChannelError, ChannelKind, Conversation, Customer, EscalationInput, Route, normalize,
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

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        self.normalize_at(input, Utc::now())
    }
}
