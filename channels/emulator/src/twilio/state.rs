//! What the Twilio emulator remembers: its account, senders, messages, opt-outs and windows.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::fault::FaultQueue;
use crate::poster::{Poster, SignedRequest};
use crate::twilio::address::{self, Channel};

/// Twilio's API version, in paths and payloads.
pub(crate) const API_VERSION: &str = "2010-04-01";

/// Most messages kept (oldest dropped first).
pub const MESSAGE_LIMIT: usize = 10_000;

/// Most distinct customers tracked for windows, opt-outs and profile names.
pub const CUSTOMER_LIMIT: usize = 100_000;

/// One message resource (sent by the API or received from a customer).
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub(crate) sid: String,
    pub(crate) inbound: bool,
    /// The sender used (for a Messaging Service send: the number chosen from its pool).
    pub(crate) from: String,
    /// Whether `from` shows in the resource yet (a Messaging Service send shows `null` until
    /// the sender is picked, i.e. until it is `sent`).
    pub(crate) from_shown: bool,
    pub(crate) to: String,
    pub(crate) body: String,
    pub(crate) status: String,
    pub(crate) error_code: Option<u32>,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) media_urls: Vec<String>,
    pub(crate) num_segments: u32,
    pub(crate) status_callback: Option<String>,
    pub(crate) content_sid: Option<String>,
    pub(crate) content_variables: Option<String>,
    pub(crate) date_created: DateTime<Utc>,
    pub(crate) date_updated: DateTime<Utc>,
    pub(crate) date_sent: Option<DateTime<Utc>>,
}

/// Twilio's text for the asynchronous error codes the emulator reports.
pub(crate) fn error_message(code: u32) -> &'static str {
    match code {
        30003 => "Unreachable destination handset",
        _ => "Unknown error",
    }
}

impl Message {
    /// The Message resource as the API answers it.
    pub(crate) fn resource(&self, account_sid: &str) -> Value {
        let uri = format!(
            "/{API_VERSION}/Accounts/{account_sid}/Messages/{}.json",
            self.sid
        );
        let media = format!(
            "/{API_VERSION}/Accounts/{account_sid}/Messages/{}/Media.json",
            self.sid
        );
        json!({
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": self.date_created.to_rfc2822(),
            "date_sent": self.date_sent.map(|d| d.to_rfc2822()),
            "date_updated": self.date_updated.to_rfc2822(),
            "direction": if self.inbound { "inbound" } else { "outbound-api" },
            "error_code": self.error_code,
            "error_message": self.error_code.map(error_message),
            "from": if self.from_shown { Some(&self.from) } else { None },
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": self.media_urls.len().to_string(),
            "num_segments": self.num_segments.to_string(),
            "price": Value::Null,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": media},
            "to": self.to,
            "uri": uri,
        })
    }
}

/// Mutable emulator state.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) sms_webhook: Option<String>,
    pub(crate) whatsapp_webhook: Option<String>,
    /// SMS senders (E.164 numbers or alphanumeric sender ids). Empty: any E.164 `From`.
    pub(crate) numbers: BTreeSet<String>,
    /// WhatsApp senders (E.164, without the prefix). Empty: any `whatsapp:+E164` `From`.
    pub(crate) whatsapp_senders: BTreeSet<String>,
    /// Messaging Services: `MG…` → sender pool (addresses, `whatsapp:` prefixed or not).
    pub(crate) services: BTreeMap<String, Vec<String>>,
    /// Recipients whose messages end `undelivered` (30003), E.164.
    pub(crate) undeliverable: BTreeSet<String>,
    /// (our SMS sender, customer) pairs after the customer texted STOP.
    pub(crate) opt_outs: HashSet<(String, String)>,
    /// (our address, customer address) → emulator time of the customer's last message.
    pub(crate) last_inbound: HashMap<(String, String), DateTime<Utc>>,
    /// WhatsApp display names by WaId (digits).
    pub(crate) profile_names: HashMap<String, String>,
    pub(crate) messages: VecDeque<Message>,
    pub(crate) last_inbound_request: Option<SignedRequest>,
    pub(crate) status_delay: Duration,
}

impl Inner {
    /// Whether `from` (an address as given in `From`) is one of ours for its channel.
    pub(crate) fn owns_sender(&self, from: &str) -> bool {
        match address::parse(from) {
            Some((Channel::Whatsapp, number)) => {
                self.whatsapp_senders.is_empty() || self.whatsapp_senders.contains(number)
            }
            Some((Channel::Sms, number)) => {
                self.numbers.is_empty() || self.numbers.contains(number)
            }
            // An alphanumeric sender id only when configured as such.
            None => !from.starts_with(address::WHATSAPP_PREFIX) && self.numbers.contains(from),
        }
    }

    /// Whether `to` (an address we received on) is one of our senders.
    pub(crate) fn owns_address(&self, to: &str) -> bool {
        self.owns_sender(to)
            || self
                .services
                .values()
                .any(|pool| pool.iter().any(|a| a == to))
    }

    pub(crate) fn push_message(&mut self, message: Message) {
        if self.messages.len() >= MESSAGE_LIMIT {
            self.messages.pop_front();
        }
        self.messages.push_back(message);
    }

    pub(crate) fn message_mut(&mut self, sid: &str) -> Option<&mut Message> {
        self.messages.iter_mut().rev().find(|m| m.sid == sid)
    }

    /// How many distinct customers the bookkeeping maps hold (the larger map).
    pub(crate) fn tracked_customers(&self) -> usize {
        self.last_inbound
            .len()
            .max(self.opt_outs.len())
            .max(self.profile_names.len())
    }
}

/// Everything the Twilio handlers share.
pub(crate) struct TwilioState {
    pub(crate) account_sid: String,
    pub(crate) auth_token: String,
    pub(crate) api_key: Option<(String, String)>,
    pub(crate) url: String,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) faults: Mutex<FaultQueue>,
    pub(crate) clock: Clock,
    pub(crate) poster: Arc<Poster>,
}
