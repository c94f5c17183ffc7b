//! The `DeliverMessage` handler: one attempt at sending an outbox row through
//! its channel adapter. Exactly once, or visibly failed: the same delivery id on
//! every attempt; a retry only when the provider dedupes on it or the request
//! certainly never left; a delivery whose outcome is unknown on a channel that
//! cannot dedupe is marked failed rather than sent a second time.

use serde_json::json;

use channels::{DeliveryError, OutboundKind, OutboundMessage, ReplyTarget};

use crate::escalation::worker::{Outcome, Worker};
use crate::store::{ClaimedJob, DeliveryState, delivery};

/// `last_error` of a delivery that may have been sent and was not resent.
pub const OUTCOME_UNKNOWN: &str = "outcome unknown; not resent to avoid a duplicate";

impl Worker {
    pub(crate) async fn deliver_message(&self, job: &ClaimedJob, delivery_id: &str) -> Outcome {
        let row = match self.store.delivery(delivery_id).await {
            Ok(Some(row)) => row,
            Ok(None) => {
                return Outcome::Dead {
                    error: format!("delivery {delivery_id} does not exist"),
                };
            }
            Err(e) => {
                return Outcome::Retry {
                    after: self.backoff(job.attempt, None),
                    error: format!("database: {e}"),
                };
            }
        };
        match DeliveryState::parse(&row.state) {
            Some(DeliveryState::Sent) => return Outcome::Done,
            Some(DeliveryState::Queued | DeliveryState::Failed) => {}
            Some(DeliveryState::Sending) | None => {
                // An earlier attempt died while sending: it may have arrived.
                let dedupes = self
                    .channel_for(&row)
                    .is_some_and(|c| c.capabilities().provider_dedupe);
                if !dedupes {
                    return self.failed(&row, OUTCOME_UNKNOWN.into(), job).await;
                }
            }
        }
        let Some(channel) = self.channel_for(&row) else {
            let error = format!("channel `{}` is not configured", row.channel);
            return self.failed(&row, error, job).await;
        };
        let capabilities = channel.capabilities();
        if !capabilities.delivers {
            let error = DeliveryError::Unsupported {
                channel: row.channel.clone(),
            }
            .to_string();
            return self.failed(&row, error, job).await;
        }
        let (Ok(target), Some(message)) = (
            serde_json::from_str::<ReplyTarget>(&row.target),
            outbound_message(&row),
        ) else {
            let error = "the stored delivery no longer parses".to_string();
            return self.failed(&row, error, job).await;
        };
        let attempt = match self.store.start_delivery_attempt(&row.id).await {
            Ok(n) => n,
            Err(e) => {
                return Outcome::Retry {
                    after: self.backoff(job.attempt, None),
                    error: format!("database: {e}"),
                };
            }
        };
        match channel.deliver(&target, &message).await {
            Ok(delivered) => {
                tracing::info!(delivery_id = %row.id, attempt, "Delivered to the customer.");
                let data = json!({
                    "delivery_id": row.id,
                    "provider_id": delivered.provider_id,
                    "attempts": attempt,
                });
                match self
                    .store
                    .finish_delivery_attempt(
                        &row.id,
                        DeliveryState::Sent,
                        delivered.provider_id.as_deref(),
                        None,
                        Some((&row.session_id, "delivery.sent", data)),
                    )
                    .await
                {
                    Ok(()) => Outcome::Done,
                    // Left `sending`: the next attempt treats it as possibly sent.
                    Err(e) => Outcome::Retry {
                        after: self.backoff(job.attempt, None),
                        error: format!("database: {e}"),
                    },
                }
            }
            Err(DeliveryError::Retryable {
                message,
                retry_after,
                sent,
            }) => {
                if sent && !capabilities.provider_dedupe {
                    let error = format!("{OUTCOME_UNKNOWN} ({message})");
                    return self.failed(&row, error, job).await;
                }
                if job.attempt >= job.max_attempts {
                    let error = format!("gave up after {attempt} attempts: {message}");
                    return self.failed(&row, error, job).await;
                }
                tracing::info!(delivery_id = %row.id, attempt, "Delivery failed for now; retrying later.");
                let data = json!({"delivery_id": row.id, "attempt": attempt, "error": message});
                let _ = self
                    .store
                    .finish_delivery_attempt(
                        &row.id,
                        DeliveryState::Queued,
                        None,
                        Some(&message),
                        Some((&row.session_id, "delivery.attempt_failed", data)),
                    )
                    .await;
                Outcome::Retry {
                    after: self.backoff(job.attempt, retry_after),
                    error: message,
                }
            }
            Err(e @ (DeliveryError::Permanent { .. } | DeliveryError::Unsupported { .. })) => {
                self.failed(&row, e.to_string(), job).await
            }
        }
    }

    fn channel_for(&self, row: &delivery::Model) -> Option<std::sync::Arc<dyn channels::Channel>> {
        let kind = self.channels.resolve(&row.channel).ok()?;
        self.channels.get(&kind)
    }

    /// Marks the delivery failed for good, with a `delivery.failed` event. The
    /// job is done: the failure is visible on the delivery and in the timeline,
    /// and sending again would not help (or could send twice).
    async fn failed(&self, row: &delivery::Model, error: String, job: &ClaimedJob) -> Outcome {
        tracing::warn!(delivery_id = %row.id, "Delivery failed.");
        let data = json!({"delivery_id": row.id, "error": error});
        match self
            .store
            .finish_delivery_attempt(
                &row.id,
                DeliveryState::Failed,
                None,
                Some(&error),
                Some((&row.session_id, "delivery.failed", data)),
            )
            .await
        {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Retry {
                after: self.backoff(job.attempt, None),
                error: format!("database: {e}"),
            },
        }
    }
}

fn outbound_message(row: &delivery::Model) -> Option<OutboundMessage> {
    let kind: OutboundKind = serde_json::from_value(json!(row.kind)).ok()?;
    Some(OutboundMessage {
        id: row.id.clone(),
        session_id: row.session_id.clone(),
        kind,
        text: row.text.clone(),
        sender_name: row.sender_name.clone(),
        at: chrono::DateTime::from_timestamp_millis(row.created_at)?,
    })
}
