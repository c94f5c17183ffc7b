//! What the WhatsApp Cloud emulator remembers.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::fault::FaultQueue;
use crate::poster::{Poster, SignedRequest};

/// Most messages (and inbound ids) kept, oldest dropped first.
pub const MESSAGE_LIMIT: usize = 10_000;

/// Most distinct customers tracked for windows and profile names.
pub const CUSTOMER_LIMIT: usize = 100_000;

/// A message accepted by `POST /{version}/{phone_number_id}/messages`.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) id: String,
    pub(crate) to: String,
    pub(crate) wa_id: String,
    pub(crate) message_type: String,
    pub(crate) text: Option<String>,
    pub(crate) template: Option<String>,
    pub(crate) template_language: Option<String>,
    pub(crate) biz_opaque_callback_data: Option<String>,
    pub(crate) context_message_id: Option<String>,
    pub(crate) status: String,
    pub(crate) error_code: Option<u32>,
    pub(crate) payload: serde_json::Value,
    /// The Graph version the send used (statuses omit `conversation` from v24.0).
    pub(crate) api_major: u32,
    /// When the API accepted it (wall clock, not the emulator clock).
    pub(crate) accepted_at: DateTime<Utc>,
}

/// Mutable emulator state.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) webhook: Option<String>,
    pub(crate) templates: BTreeSet<String>,
    /// wa_id → emulator time of the customer's last message.
    pub(crate) last_inbound: HashMap<String, DateTime<Utc>>,
    pub(crate) undeliverable: BTreeSet<String>,
    pub(crate) profile_names: HashMap<String, String>,
    pub(crate) messages: VecDeque<Stored>,
    /// Ids of customer messages (for `"status": "read"` marks).
    pub(crate) inbound_ids: VecDeque<String>,
    pub(crate) last_inbound_request: Option<SignedRequest>,
    pub(crate) status_delay: Duration,
}

impl Inner {
    pub(crate) fn push_message(&mut self, message: Stored) {
        if self.messages.len() >= MESSAGE_LIMIT {
            self.messages.pop_front();
        }
        self.messages.push_back(message);
    }

    pub(crate) fn push_inbound_id(&mut self, id: String) {
        if self.inbound_ids.len() >= MESSAGE_LIMIT {
            self.inbound_ids.pop_front();
        }
        self.inbound_ids.push_back(id);
    }

    pub(crate) fn message_mut(&mut self, id: &str) -> Option<&mut Stored> {
        self.messages.iter_mut().rev().find(|m| m.id == id)
    }

    pub(crate) fn tracked_customers(&self) -> usize {
        self.last_inbound.len().max(self.profile_names.len())
    }
}

/// Everything the WhatsApp handlers share.
pub(crate) struct WhatsappState {
    pub(crate) phone_number_id: String,
    pub(crate) display_phone_number: String,
    pub(crate) waba_id: String,
    pub(crate) access_token: String,
    pub(crate) app_secret: String,
    pub(crate) verify_token: String,
    pub(crate) url: String,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) faults: Mutex<FaultQueue>,
    pub(crate) clock: Clock,
    pub(crate) poster: Arc<Poster>,
}
