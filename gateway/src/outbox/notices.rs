//! Notices the gateway sends on its own: today, telling a customer whose chat
//! (or SMS, WhatsApp, voice, bridge) session became a Case that their request
//! went to the support team, with the CaseNumber.

use serde_json::json;

use channels::{OutboundKind, ReplyTarget, Route};

use crate::escalation::worker::Worker;
use crate::store::{NewDelivery, session};

/// The outbox purpose (and event name part) of the Case notice.
pub const CASE_CREATED: &str = "case_created";

/// What to tell the customer once their Case exists.
#[derive(Debug, Clone)]
pub enum Notice {
    /// Queue these messages (one, or its parts where the channel limits length).
    Send(Vec<NewDelivery>),
    /// Record `customer.not_notified` with this reason.
    NotTold(String),
    /// Nothing to say (the channel prefers a Case: the customer's own thread
    /// carries the rep's answer).
    Nothing,
}

impl Notice {
    /// The `customer.not_notified` event data.
    pub fn not_told_event(reason: &str) -> serde_json::Value {
        json!({"notice": CASE_CREATED, "reason": reason})
    }
}

impl Worker {
    /// Decides the notice for a session whose Case was just written: when the
    /// route fell back from messaging to a Case, a `system.message` with the
    /// CaseNumber if the channel delivers (itself, or through the channel it
    /// [delivers through](super::deliverer)) and the escalation gave a reply target;
    /// otherwise why the customer is not told. The caller records it with the
    /// Case, in one transaction; the delivery id makes it idempotent.
    pub(crate) fn case_notice(
        &self,
        session: &session::Model,
        case_number: Option<&str>,
    ) -> Notice {
        let Some(channel) = self
            .channels
            .resolve(&session.channel)
            .ok()
            .and_then(|kind| self.channels.get(&kind))
        else {
            return Notice::NotTold("the session's channel is not configured".into());
        };
        let fell_back = channel.preferred_route() == Route::Messaging && session.route == "case";
        if !fell_back {
            return Notice::Nothing;
        }
        // The adapter that carries this channel's messages (voice: the caller's SMS).
        let deliverer = match super::deliverer(&self.channels, &session.channel) {
            Ok(deliverer) => deliverer,
            Err(reason) => return Notice::NotTold(reason),
        };
        let Some(target) = reply_target(&session.payload) else {
            return Notice::NotTold("the escalation gave no reply_to".into());
        };
        let Some(case_number) = case_number else {
            return Notice::NotTold("Salesforce did not return the CaseNumber".into());
        };
        let message = NewDelivery {
            id: super::delivery_id(&session.id, CASE_CREATED),
            session_id: session.id.clone(),
            channel: deliverer.kind().to_string(),
            kind: OutboundKind::SystemMessage,
            text: self
                .config
                .notices
                .case_created
                .replace("{case_number}", case_number),
            sender_name: None,
            target,
        };
        Notice::Send(super::split_for(&deliverer.capabilities(), message))
    }
}

/// The reply target stored with the session: the typed `reply_to` the channel checked when the
/// escalation was accepted (`None` when it gave none, or for a session whose payload retention
/// has erased).
pub(crate) fn reply_target(payload: &str) -> Option<ReplyTarget> {
    serde_json::from_str::<crate::escalation::request::EscalationPayload>(payload)
        .ok()?
        .reply_to
}
