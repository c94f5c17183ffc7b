#![forbid(unsafe_code)]
//! Local stand-ins for two messaging providers, for tests, the demo and users' own CI:
//!
//! - [`twilio`]: Twilio's Messages API (`/2010-04-01/Accounts/{AccountSid}/Messages.json`)
//!   with Twilio's validation and error codes, signed status callbacks, signed inbound
//!   webhooks (SMS and Twilio WhatsApp senders), STOP handling and the WhatsApp 24-hour
//!   window.
//! - [`whatsapp`]: Meta's WhatsApp Cloud API (`/{version}/{phone_number_id}/messages`) with
//!   Graph errors, the 24-hour customer-service window, approved templates, signed status and
//!   message webhooks and the verification handshake.
//!
//! Both sign their webhooks with their own implementation of the providers' algorithms (this
//! crate depends on no other Handoff crate), so a test against them checks the gateway's
//! verifiers independently. Each emulator listens on its own port; tests spawn them on port 0:
//!
//! ```no_run
//! # async fn demo() {
//! use channel_emulator::twilio::{TwilioEmulator, TwilioSettings};
//! let twilio = TwilioEmulator::spawn(TwilioSettings {
//!     webhook_url: Some("http://127.0.0.1:8080/channels/sms/inbound".into()),
//!     ..TwilioSettings::default()
//! })
//! .await;
//! let result = twilio.inbound("+14155550100", "+15550100000", "Hello", &[]).await;
//! # let _ = result;
//! # }
//! ```
//!
//! See `docs/channels/emulators.md` for the routes and what is faithful or simplified.

pub mod twilio;
pub mod whatsapp;

mod clock;
mod control;
mod error;
mod fault;
mod hex;
mod ids;
mod poster;
mod secret;
mod server;

pub use error::{Error, Result};
pub use fault::Fault;
pub use poster::{CallbackKind, CallbackRecord, InboundResult};
