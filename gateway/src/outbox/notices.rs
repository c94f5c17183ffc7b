//! Notices the gateway sends on its own: today, telling a customer whose chat
//! (or SMS, WhatsApp, voice, bridge) session became a Case that their request
//! went to the support team, with the CaseNumber.

use serde_json::json;

use channels::{OutboundKind, ReplyTarget, Route};

use crate::escalation::worker::Worker;
use crate::store::{NewDelivery, session};

/// The outbox purpose (and event name part) of the Case notice.
pub const CASE_CREATED: &str = "case_created";

impl Worker {
    /// After a session's Case is recorded: when the session's route fell back
    /// from messaging to a Case, queue a `system.message` with the CaseNumber if
    /// the channel delivers and the escalation gave a reply target; otherwise
    /// record that the customer was not told, and why. Idempotent.
    pub(crate) async fn notify_case_created(
        &self,
        session: &session::Model,
        case_number: Option<&str>,
    ) -> Result<(), sea_orm::DbErr> {
        let Some(channel) = self
            .channels
            .resolve(&session.channel)
            .ok()
            .and_then(|kind| self.channels.get(&kind))
        else {
            return self
                .not_told(session, "the session's channel is not configured")
                .await;
        };
        let fell_back = channel.preferred_route() == Route::Messaging && session.route == "case";
        if !fell_back {
            // The channel prefers a Case (email): the customer's own thread
            // carries the rep's answer; there is nothing to announce.
            return Ok(());
        }
        if !channel.capabilities().delivers {
            let reason = format!(
                "channel `{}` cannot send messages to customers",
                session.channel
            );
            return self.not_told(session, &reason).await;
        }
        let Some(target) = reply_target(channel.as_ref(), &session.payload) else {
            return self
                .not_told(session, "the escalation gave no reply_to")
                .await;
        };
        let Some(case_number) = case_number else {
            return self
                .not_told(session, "Salesforce did not return the CaseNumber")
                .await;
        };
        let new = NewDelivery {
            id: super::delivery_id(&session.id, CASE_CREATED),
            session_id: session.id.clone(),
            channel: session.channel.clone(),
            kind: OutboundKind::SystemMessage,
            text: self
                .config
                .notices
                .case_created
                .replace("{case_number}", case_number),
            sender_name: None,
            target,
        };
        if self
            .store
            .enqueue_delivery(&new, self.config.worker.max_attempts)
            .await?
        {
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn not_told(&self, session: &session::Model, reason: &str) -> Result<(), sea_orm::DbErr> {
        self.store
            .add_event(
                &session.id,
                "customer.not_notified",
                json!({"notice": CASE_CREATED, "reason": reason}),
            )
            .await
    }
}

/// The reply target stored with the session (`reply_to` in its payload): the
/// typed target when it was stored parsed, else what the caller sent, checked by
/// the channel adapter again.
fn reply_target(channel: &dyn channels::Channel, payload: &str) -> Option<ReplyTarget> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    let reply_to = value.get("reply_to").filter(|v| !v.is_null())?;
    if let Ok(target) = serde_json::from_value::<ReplyTarget>(reply_to.clone()) {
        return Some(target);
    }
    let conversation: channels::Conversation =
        serde_json::from_value(value.get("conversation")?.clone()).ok()?;
    channel.reply_target(Some(reply_to), &conversation).ok()?
}
