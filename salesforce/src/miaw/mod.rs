//! Salesforce Messaging for In-App and Web (MIAW, "Enhanced Chat"): the custom-client REST
//! API and its server-sent event stream, as `/work/shared/reference/miaw.md` describes them.
//!
//! One end user = one [`AccessToken`] = one [`EventStream`]. The gateway mints a token,
//! subscribes with the token's `lastEventId`, creates the conversation under a
//! [`ConversationId`] derived from its session, relays messages, and reads rep events from
//! the stream. The stream is one connection: the caller reconnects with [`Backoff`], a
//! continuation token after a 401, and the id of the last event it handled.
//!
//! ```no_run
//! # async fn demo() -> Result<(), salesforce::miaw::MiawError> {
//! use futures_util::StreamExt;
//! use salesforce::miaw::{ConversationId, MiawClient, MiawConfig, MiawEvent, Role};
//! use secrecy::ExposeSecret;
//! let client = MiawClient::new(MiawConfig::new(
//!     "https://acme.my.salesforce-scrt.com",
//!     "00D000000000001",
//!     "Handoff_Chat",
//! ))?;
//! let token = client.unauthenticated_token().await?;
//! let bearer = token.token.expose_secret();
//! let mut events = client.subscribe(bearer, token.last_event_id.as_deref()).await?;
//! let id = ConversationId::for_session("session-123");
//! client.create_conversation(bearer, &id, &Default::default(), Some("en_US")).await?;
//! while let Some(item) = events.next().await {
//!     if let MiawEvent::Message { role: Role::Agent, text, .. } = item?.event {
//!         let _reply = text;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod backoff;
mod client;
mod error;
mod events;
mod identity;
mod ids;
mod outgoing;
mod stream;
mod token;

pub use backoff::Backoff;
pub use client::{EntriesQuery, MiawClient, MiawConfig, RoutingStatus};
pub use error::MiawError;
pub use events::{
    Attachment, ConversationEntry, MiawEvent, ParticipantChange, Role, StreamEvent, parse_event,
};
pub use identity::IdentitySigner;
pub use ids::ConversationId;
pub use outgoing::{MAX_FILE_BYTES, OutgoingFile, OutgoingMessage, SentMessage};
pub use stream::{EventStream, FIELD_ALLOWANCE, HEARTBEAT_TIMEOUT, MAX_EVENT_DATA};
pub use token::AccessToken;
