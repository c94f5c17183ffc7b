//! The `DeliverMessage` handler: one attempt at sending an outbox row through
//! its channel adapter. Exactly once, or visibly failed: the same delivery id on
//! every attempt; a retry only when the provider dedupes on it or the request
//! certainly never left; a delivery whose outcome is unknown on a channel that
//! cannot dedupe is marked failed rather than sent a second time.

use std::time::Duration;

use serde_json::json;

use channels::{ChannelKind, DeliveryError, OutboundKind, OutboundMessage, ReplyTarget};

use crate::escalation::worker::{Outcome, Worker};
use crate::store::{ClaimedJob, DeliveryState, FailureNote, delivery};

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
        let (Ok(target), Some(mut message)) = (
            serde_json::from_str::<ReplyTarget>(&row.target),
            outbound_message(&row),
        ) else {
            let error = "the stored delivery no longer parses".to_string();
            return self.failed(&row, error, job).await;
        };
        let is_email = channel.kind() == ChannelKind::Email;
        // A session's messages reach the customer in the order they were
        // written: wait for an earlier one still on its way (briefly while it
        // is being sent, longer while it waits for a retry).
        match self.store.earlier_unsettled_delivery(&row).await {
            Ok(None) => {}
            Ok(Some(state)) => {
                let after = if state == DeliveryState::Sending {
                    Duration::from_millis(25)
                } else {
                    Duration::from_secs(1)
                };
                return Outcome::Postpone {
                    after,
                    error: "waiting for an earlier message to this customer".into(),
                };
            }
            Err(e) => {
                return Outcome::Retry {
                    after: self.backoff(job.attempt, None),
                    error: format!("database: {e}"),
                };
            }
        }
        if is_email {
            match self.email_context(&row).await {
                Ok(context) => message.email = Some(context),
                Err(e) => {
                    return Outcome::Retry {
                        after: self.backoff(job.attempt, None),
                        error: format!("database: {e}"),
                    };
                }
            }
        }
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
                let finished = match (is_email, delivered.provider_id.as_deref()) {
                    // The reply's Message-ID joins the session's thread, so the customer's
                    // answer (In-Reply-To) finds the session.
                    (true, Some(message_id)) => {
                        self.store
                            .finish_email_sent(&row.id, &row.session_id, message_id, data)
                            .await
                    }
                    _ => {
                        self.store
                            .finish_delivery_attempt(
                                &row.id,
                                DeliveryState::Sent,
                                delivered.provider_id.as_deref(),
                                None,
                                Some((&row.session_id, "delivery.sent", data)),
                            )
                            .await
                    }
                };
                match finished {
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
            Err(
                e @ (DeliveryError::Permanent { .. }
                | DeliveryError::Unsupported { .. }
                | DeliveryError::WindowClosed { .. }
                | DeliveryError::OptedOut),
            ) => self.failed(&row, e.to_string(), job).await,
        }
    }

    fn channel_for(&self, row: &delivery::Model) -> Option<std::sync::Arc<dyn channels::Channel>> {
        let kind = self.channels.resolve(&row.channel).ok()?;
        self.channels.get(&kind)
    }

    /// Marks the delivery failed for good, with a `delivery.failed` event. The
    /// job is done: the failure is visible on the delivery and in the timeline,
    /// and sending again would not help (or could send twice). An email reply
    /// on a session that goes to a Case also leaves a note there for the rep,
    /// in the same transaction.
    async fn failed(&self, row: &delivery::Model, error: String, job: &ClaimedJob) -> Outcome {
        tracing::warn!(delivery_id = %row.id, "Delivery failed.");
        let data = json!({"delivery_id": row.id, "error": error});
        let note = if row.channel == ChannelKind::Email.as_str() {
            match self.store.session(&row.session_id).await {
                Ok(session) => session.and_then(|s| self.delivery_failed_note(&s, row, &error)),
                Err(e) => {
                    return Outcome::Retry {
                        after: self.backoff(job.attempt, None),
                        error: format!("database: {e}"),
                    };
                }
            }
        } else {
            None
        };
        match self
            .store
            .finish_delivery_failed_with_note(
                &row.id,
                &row.session_id,
                &error,
                data,
                note.as_ref().map(|(note_id, body)| FailureNote {
                    note_id,
                    kind: super::email::DELIVERY_FAILED_NOTE,
                    body,
                }),
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

pub(crate) fn outbound_message(row: &delivery::Model) -> Option<OutboundMessage> {
    let kind: OutboundKind = serde_json::from_value(json!(row.kind)).ok()?;
    Some(OutboundMessage {
        id: row.id.clone(),
        session_id: row.session_id.clone(),
        kind,
        text: row.text.clone(),
        sender_name: row.sender_name.clone(),
        at: chrono::DateTime::from_timestamp_millis(row.created_at)?,
        email: None,
        customer_last_message_at: None,
        status_callback: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use channels::{
        Capabilities, Channel, ChannelError, ChannelKind, Conversation, Delivered, EscalationInput,
        Route,
    };
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::escalation::gate::{Gate, GateConfig};
    use crate::jobs::clock::SystemClock;
    use crate::store::{NewDelivery, Store};

    /// A provider that cannot dedupe (like an SMS API without idempotency keys)
    /// and whose every send times out after the request went out.
    struct NoDedupe {
        sends: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Channel for NoDedupe {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Plugin("nodedupe".into())
        }
        fn preferred_route(&self) -> Route {
            Route::Messaging
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                delivers: true,
                provider_dedupe: false,
                ..Capabilities::receive_only()
            }
        }
        fn normalize(&self, _: EscalationInput) -> Result<Conversation, ChannelError> {
            Err(ChannelError::InvalidPluginName)
        }
        async fn deliver(
            &self,
            _: &ReplyTarget,
            _: &OutboundMessage,
        ) -> Result<Delivered, DeliveryError> {
            self.sends.fetch_add(1, Ordering::SeqCst);
            Err(DeliveryError::Retryable {
                message: "timed out waiting for the provider".into(),
                retry_after: None,
                sent: true,
            })
        }
    }

    async fn worker(channel: Arc<NoDedupe>) -> (Arc<Worker>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::defaults();
        config.database_url = format!("sqlite://{}?mode=rwc", dir.path().join("o.db").display());
        config.worker.poll_interval_ms = 20;
        let store = Store::open(&config.database_url).await.unwrap();
        let client = salesforce::Client::new(salesforce::ClientConfig {
            login_url: "http://127.0.0.1:9".into(),
            api_version: "v66.0".into(),
            credentials: salesforce::Credentials::ClientCredentials {
                client_id: "unused".into(),
                client_secret: "unused".to_string().into(),
            },
            timeout: Duration::from_secs(1),
            max_concurrency: 1,
        })
        .unwrap();
        let mut registry = channels::Registry::builtin();
        registry.register_plugin(channel).unwrap();
        let worker = Worker {
            store,
            client,
            config: Arc::new(config),
            wake: Arc::new(tokio::sync::Notify::new()),
            gate: Arc::new(Gate::new(GateConfig {
                failure_threshold: 5,
                open_for: Duration::from_secs(10),
                rate_limit_pause: Duration::from_secs(60),
            })),
            channels: Arc::new(registry),
            clock: Arc::new(SystemClock),
            id: "test-worker".into(),
            live: None,
            streams_wake: Arc::new(tokio::sync::Notify::new()),
            feed: crate::outbox::feed::Feed::new(),
            replies: Arc::new(crate::replies::Replies::default()),
        };
        (Arc::new(worker), dir)
    }

    fn notice(id: &str) -> NewDelivery {
        NewDelivery {
            id: id.into(),
            session_id: "s-1".into(),
            channel: "nodedupe".into(),
            kind: OutboundKind::SystemMessage,
            text: "Your request is case 00001001.".into(),
            sender_name: None,
            target: ReplyTarget::Bridge {
                address: "user-1".into(),
            },
        }
    }

    async fn settled(worker: &Worker, id: &str) -> delivery::Model {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let row = worker.store.delivery(id).await.unwrap().unwrap();
            if row.state == "failed" || row.state == "sent" {
                return row;
            }
            assert!(Instant::now() < deadline, "delivery still {}", row.state);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A provider that may have received a message but cannot dedupe must not
    /// get it again: the customer would see it twice. The delivery fails
    /// visibly after one send, saying why.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unknown_outcome_without_provider_dedupe_is_not_resent() {
        let channel = Arc::new(NoDedupe {
            sends: AtomicUsize::new(0),
        });
        let (worker, _dir) = worker(Arc::clone(&channel)).await;
        assert!(
            worker
                .store
                .enqueue_delivery(&notice("dlv_a"), 5)
                .await
                .unwrap()
        );
        assert!(
            !worker
                .store
                .enqueue_delivery(&notice("dlv_a"), 5)
                .await
                .unwrap(),
            "enqueueing the same delivery id again writes nothing"
        );
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(Arc::clone(&worker).run(shutdown.clone()));
        let row = settled(&worker, "dlv_a").await;
        assert_eq!(row.state, "failed");
        assert_eq!(row.attempts, 1);
        assert!(
            row.last_error
                .as_deref()
                .unwrap()
                .starts_with(OUTCOME_UNKNOWN),
            "{:?}",
            row.last_error
        );
        assert_eq!(channel.sends.load(Ordering::SeqCst), 1);
        shutdown.cancel();
        running.await.unwrap();
    }

    /// A process that died while sending leaves the delivery `sending`: the
    /// next attempt cannot know whether it arrived and, without provider
    /// dedupe, does not send it again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_delivery_left_sending_by_a_dead_process_is_not_resent() {
        let channel = Arc::new(NoDedupe {
            sends: AtomicUsize::new(0),
        });
        let (worker, _dir) = worker(Arc::clone(&channel)).await;
        worker
            .store
            .enqueue_delivery(&notice("dlv_b"), 5)
            .await
            .unwrap();
        worker.store.start_delivery_attempt("dlv_b").await.unwrap();
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(Arc::clone(&worker).run(shutdown.clone()));
        let row = settled(&worker, "dlv_b").await;
        assert_eq!(row.state, "failed");
        assert_eq!(row.last_error.as_deref(), Some(OUTCOME_UNKNOWN));
        assert_eq!(channel.sends.load(Ordering::SeqCst), 0);
        shutdown.cancel();
        running.await.unwrap();
    }
}
