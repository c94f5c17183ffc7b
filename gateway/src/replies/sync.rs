//! The `sync_case_event` job: decides one recorded rep-reply event.
//!
//! The event's Case is matched to the newest session holding it (sessions that joined an
//! open Case share it). Then, in order: no session → `ignored_unknown_case`; not public →
//! `ignored_internal`; written by the gateway's own integration user (defence in depth: the
//! trigger skips those already) → `ignored_own_write`; nothing to say (no text, and HTML
//! with no text in it) → `ignored_empty`; a channel that does not deliver or a session
//! without a reply target → `ignored_no_target` with `customer.not_notified`; otherwise an
//! `agent.message` delivery (parts where the channel limits length) to the session's reply
//! target, with `case_reply.received`. The outcome, the delivery and the events are written
//! with the job's completion in one transaction; the delivery id is derived from the session
//! and the event id, so nothing is sent twice.

use serde_json::json;

use channels::OutboundKind;
use salesforce::events::CaseEvent;

use crate::escalation::worker::{Outcome, Worker};
use crate::outbox::notices::reply_target;
use crate::outbox::{delivery_id, split_for};
use crate::store::{CaseEventDecision, ClaimedJob, NewDelivery, OUTCOME_QUEUED, session};

impl Worker {
    pub(crate) async fn sync_case_event(&self, job: &ClaimedJob, event_id: &str) -> Outcome {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry {
            after: self.backoff(job.attempt, None),
            error: format!("database: {e}"),
        };
        let row = match self.store.case_event(event_id).await {
            Ok(Some(row)) => row,
            Ok(None) => {
                return Outcome::Dead {
                    error: "the job's event is not recorded".into(),
                };
            }
            Err(e) => return retry(&e),
        };
        if row.outcome != OUTCOME_QUEUED {
            return Outcome::Done;
        }
        let event: CaseEvent = match serde_json::from_str(&row.payload) {
            Ok(event) => event,
            Err(e) => {
                return Outcome::Dead {
                    error: format!("the stored event no longer parses: {e}"),
                };
            }
        };
        let session = match self.store.newest_session_for_case(&row.case_id).await {
            Ok(session) => session,
            Err(e) => return retry(&e),
        };
        let own_user = match super::own_identity(&self.client).await {
            Ok(identity) => identity.map(|(_, user)| user),
            Err(e) => {
                // Without knowing who we are we cannot tell our own writes apart: wait.
                return Outcome::Postpone {
                    after: self.backoff(job.attempt, e.retry_after()),
                    error: format!("could not read the integration user's identity: {e}"),
                };
            }
        };
        let decision = self.decide(&event, &row.source, session.as_ref(), own_user.as_ref());
        tracing::info!(
            event_id,
            outcome = decision.outcome,
            session_id = decision.session_id.as_deref().unwrap_or(""),
            "Rep-reply event decided."
        );
        match self
            .store
            .decide_case_event(
                job,
                &self.id,
                event_id,
                &decision,
                self.config.worker.max_attempts,
            )
            .await
        {
            Ok(true) => {
                self.replies.count_decided(&row.source, decision.outcome);
                if let (false, Some(session_id)) =
                    (decision.deliveries.is_empty(), &decision.session_id)
                {
                    self.wake.notify_one();
                    self.feed.publish(session_id);
                }
                Outcome::Finished
            }
            Ok(false) => {
                tracing::warn!("Lost the job's lease before recording the decision.");
                Outcome::Finished
            }
            Err(e) => retry(&e),
        }
    }

    fn decide(
        &self,
        event: &CaseEvent,
        source: &str,
        session: Option<&session::Model>,
        own_user: Option<&salesforce::SalesforceId>,
    ) -> CaseEventDecision {
        let data = |reason: Option<&str>| {
            let mut data = json!({
                "event_id": event.event_id.as_str(),
                "kind": event.kind.as_str(),
                "source": source,
            });
            if let Some(reason) = reason {
                data["reason"] = json!(reason);
            }
            data
        };
        let ignored = |outcome: &'static str, session: Option<&session::Model>, reason: &str| {
            CaseEventDecision {
                outcome,
                session_id: session.map(|s| s.id.clone()),
                deliveries: Vec::new(),
                events: vec![("case_reply.ignored", data(Some(reason)))],
            }
        };
        let Some(session) = session else {
            return ignored("ignored_unknown_case", None, "no session holds this Case");
        };
        if !event.is_public {
            return ignored(
                "ignored_internal",
                Some(session),
                "internal: not visible to the customer",
            );
        }
        if own_user.is_some_and(|me| *me == event.author.id) {
            return ignored(
                "ignored_own_write",
                Some(session),
                "written by the gateway's own integration user",
            );
        }
        let Some(text) = reply_text(event) else {
            return ignored("ignored_empty", Some(session), "the reply has no text");
        };
        let not_told = |reason: String| CaseEventDecision {
            outcome: "ignored_no_target",
            session_id: Some(session.id.clone()),
            deliveries: Vec::new(),
            events: vec![(
                "customer.not_notified",
                json!({"notice": "case_reply", "event_id": event.event_id.as_str(), "reason": reason}),
            )],
        };
        let deliverer = match crate::outbox::deliverer(&self.channels, &session.channel) {
            Ok(deliverer) => deliverer,
            Err(reason) => return not_told(reason),
        };
        let Some(target) = reply_target(&session.payload) else {
            return not_told("the escalation gave no reply_to".into());
        };
        let message = NewDelivery {
            id: delivery_id(
                &session.id,
                &format!("case_reply:{}", event.event_id.as_str()),
            ),
            session_id: session.id.clone(),
            channel: deliverer.kind().to_string(),
            kind: OutboundKind::AgentMessage,
            text,
            sender_name: event.author.name.clone(),
            target,
        };
        CaseEventDecision {
            outcome: "delivered",
            session_id: Some(session.id.clone()),
            deliveries: split_for(&deliverer.capabilities(), message),
            events: vec![("case_reply.received", data(None))],
        }
    }
}

/// The text to send: the plain body, or the HTML body as text when the plain one is empty.
fn reply_text(event: &CaseEvent) -> Option<String> {
    let plain = event
        .body
        .text
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if !plain.is_empty() {
        return Some(plain.to_string());
    }
    let html = event.body.html.as_deref().unwrap_or_default();
    let text = channels::email::html_to_text(html);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
