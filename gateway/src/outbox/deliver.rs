//! The `DeliverMessage` handler: one attempt at sending an outbox row through
//! the adapter that delivers for its channel ([`channels::Registry::deliverer`]:
//! a voice session's rows go by SMS). Exactly once, or visibly failed: the same
//! delivery id on every attempt; a retry only when the provider dedupes on it or
//! the request certainly never left; a delivery whose outcome is unknown on a
//! channel that cannot dedupe is marked failed rather than sent a second time.
//! A customer who opted out gets nothing (the provider is not called), and a
//! reply the customer's side refuses (opted out, reply window closed) or that
//! may not have reached them (outcome unknown) is told to the rep
//! ([`super::rep_notice`]).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use channels::{Channel, ChannelKind, DeliveryError, OutboundKind, OutboundMessage, ReplyTarget};

use super::rep_notice::{self, Deliverer, Refusal, RepNotice};
use crate::escalation::worker::{Outcome, Worker};
use crate::store::{
    ClaimedJob, DeliveryState, FailureNote, INBOUND_SESSION_PREFIX, Refused, RepNoticeWrite,
    delivery,
};

/// `last_error` of a delivery that may have been sent and was not resent.
pub const OUTCOME_UNKNOWN: &str = "outcome unknown; not resent to avoid a duplicate";

/// The URL a provider reports a message's delivery status to, `{public_url}/channels/<name>/
/// status`, for the built-in channels that take one per message (SMS, WhatsApp: Twilio's
/// `StatusCallback`); `None` without a public URL and for every other channel.
pub fn status_callback(public_url: Option<&str>, deliverer: &ChannelKind) -> Option<String> {
    let base = public_url?.trim().trim_end_matches('/');
    if base.is_empty() || !matches!(deliverer, ChannelKind::Sms | ChannelKind::Whatsapp) {
        return None;
    }
    Some(format!("{base}/channels/{}/status", deliverer.as_str()))
}

impl Worker {
    pub(crate) async fn deliver_message(&self, job: &ClaimedJob, delivery_id: &str) -> Outcome {
        let row = match self.store.delivery(delivery_id).await {
            Ok(Some(row)) => row,
            Ok(None) => {
                return Outcome::Dead {
                    error: format!("delivery {delivery_id} does not exist"),
                };
            }
            Err(e) => return self.delivery_db_retry(job, e),
        };
        match DeliveryState::parse(&row.state) {
            Some(DeliveryState::Sent) => return Outcome::Done,
            Some(DeliveryState::Queued | DeliveryState::Failed) => {}
            Some(DeliveryState::Sending) | None => {
                // An earlier attempt died while sending: it may have arrived.
                let channel = self.channel_for(&row);
                let dedupes = channel
                    .as_ref()
                    .is_some_and(|c| c.capabilities().provider_dedupe);
                if !dedupes {
                    return self
                        .outcome_unknown(&row, channel.as_deref(), None, job)
                        .await;
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
                channel: channel.kind().to_string(),
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
        let kind = channel.kind();
        let deliverer = Deliverer {
            kind: kind.clone(),
            reply_window: capabilities.reply_window,
        };
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
            Err(e) => return self.delivery_db_retry(job, e),
        }
        // Nothing reaches a customer who opted out of the delivering channel.
        if let ReplyTarget::Phone { number } = &target {
            match self.store.opted_out(kind.as_str(), number).await {
                Ok(false) => {}
                Ok(true) => {
                    return self
                        .refused(&row, &deliverer, Refusal::OptedOut, None, job)
                        .await;
                }
                Err(e) => return self.delivery_db_retry(job, e),
            }
        }
        message.customer_last_message_at = match self.customer_last_message_ms(&row).await {
            Ok(at) => at.and_then(chrono::DateTime::from_timestamp_millis),
            Err(e) => return self.delivery_db_retry(job, e),
        };
        message.status_callback = status_callback(self.config.public_url.as_deref(), &kind);
        let is_email = kind == ChannelKind::Email;
        if is_email {
            match self.email_context(&row).await {
                Ok(context) => message.email = Some(context),
                Err(e) => return self.delivery_db_retry(job, e),
            }
        }
        let attempt = match self.store.start_delivery_attempt(&row.id).await {
            Ok(n) => n,
            Err(e) => return self.delivery_db_retry(job, e),
        };
        match channel.deliver(&target, &message).await {
            Ok(delivered) => {
                tracing::info!(delivery_id = %row.id, attempt, "Delivered to the customer.");
                crate::metrics::record_delivery(&row.channel, row.created_at);
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
                    Err(e) => self.delivery_db_retry(job, e),
                }
            }
            Err(DeliveryError::Retryable {
                message,
                retry_after,
                sent,
            }) => {
                if sent && !capabilities.provider_dedupe {
                    return self
                        .outcome_unknown(&row, Some(channel.as_ref()), Some(message), job)
                        .await;
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
            Err(DeliveryError::WindowClosed { message }) => {
                let refusal = Refusal::WindowClosed {
                    provider_message: message,
                };
                self.refused(&row, &deliverer, refusal, None, job).await
            }
            Err(DeliveryError::OptedOut) => {
                // The provider knows it (Twilio 21610): remember it, so nothing more is sent.
                let number = match &target {
                    ReplyTarget::Phone { number } => Some(number.as_str()),
                    _ => None,
                };
                let opt_out = number.map(|n| (kind.as_str(), n));
                self.refused(&row, &deliverer, Refusal::OptedOut, opt_out, job)
                    .await
            }
            Err(e @ (DeliveryError::Permanent { .. } | DeliveryError::Unsupported { .. })) => {
                self.failed(&row, e.to_string(), job).await
            }
        }
    }

    /// When the customer last wrote (epoch ms), for reply windows: the session's
    /// `customer_last_message_at`; for an answer outside any session (help, opt-in, an unknown
    /// sender: session id `inbound:<inbound id>`) the time the message it answers arrived —
    /// the customer has just written, so WhatsApp's window is open.
    async fn customer_last_message_ms(
        &self,
        row: &delivery::Model,
    ) -> Result<Option<i64>, sea_orm::DbErr> {
        if let Some(inbound_id) = row.session_id.strip_prefix(INBOUND_SESSION_PREFIX) {
            let answered = self.store.inbound_message(inbound_id).await?;
            return Ok(answered.map(|m| m.received_at));
        }
        let session = self.store.session(&row.session_id).await?;
        Ok(session.and_then(|s| s.customer_last_message_at))
    }

    /// The adapter that delivers a row: its `channel` is the delivering channel's name
    /// (older rows may name the session's channel, which leads to it the same way).
    fn channel_for(&self, row: &delivery::Model) -> Option<Arc<dyn Channel>> {
        let kind = self.channels.resolve(&row.channel).ok()?;
        self.channels.deliverer(&kind)
    }

    /// A send that may have reached a provider that cannot dedupe: failed, never repeated
    /// (`last_error` [`OUTCOME_UNKNOWN`], with the adapter's `detail`), and the rep told that
    /// the customer may not have it — in the conversation or on the Case, once
    /// ([`Refusal::OutcomeUnknown`]). Email tells the rep through its own failure note.
    async fn outcome_unknown(
        &self,
        row: &delivery::Model,
        channel: Option<&dyn Channel>,
        detail: Option<String>,
        job: &ClaimedJob,
    ) -> Outcome {
        match channel {
            Some(channel) if channel.kind() != ChannelKind::Email => {
                let deliverer = Deliverer {
                    kind: channel.kind(),
                    reply_window: channel.capabilities().reply_window,
                };
                let refusal = Refusal::OutcomeUnknown { detail };
                self.refused(row, &deliverer, refusal, None, job).await
            }
            _ => {
                let error = match detail {
                    Some(detail) => format!("{OUTCOME_UNKNOWN} ({detail})"),
                    None => OUTCOME_UNKNOWN.into(),
                };
                self.failed(row, error, job).await
            }
        }
    }

    fn delivery_db_retry(&self, job: &ClaimedJob, e: sea_orm::DbErr) -> Outcome {
        Outcome::Retry {
            after: self.backoff(job.attempt, None),
            error: format!("database: {e}"),
        }
    }

    /// Marks a delivery the customer's side refused (or whose outcome is unknown) failed for
    /// good and tells the rep once ([`rep_notice::decide`]), recording the opt-out when
    /// `opt_out` is given — in one transaction. The provider is not asked again.
    async fn refused(
        &self,
        row: &delivery::Model,
        deliverer: &Deliverer,
        refusal: Refusal,
        opt_out: Option<(&str, &str)>,
        job: &ClaimedJob,
    ) -> Outcome {
        let session = match self.store.session(&row.session_id).await {
            Ok(session) => session,
            Err(e) => return self.delivery_db_retry(job, e),
        };
        let live = match session.as_ref() {
            Some(s) => match self.store.live_session(&s.id).await {
                Ok(live) => live,
                Err(e) => return self.delivery_db_retry(job, e),
            },
            None => None,
        };
        let notice = rep_notice::decide(&refusal, deliverer, row, session.as_ref(), live.as_ref());
        let error = deliverer.last_error(&refusal);
        tracing::warn!(
            delivery_id = %row.id,
            channel = %deliverer.kind,
            reason = refusal.reason(),
            "Delivery failed for good; telling the rep."
        );
        let data = json!({"delivery_id": row.id, "error": error, "reason": refusal.reason()});
        let write = match &notice {
            RepNotice::Conversation(message) => RepNoticeWrite::Conversation(message.clone()),
            RepNotice::CaseNote {
                note_id,
                kind,
                body,
            } => RepNoticeWrite::CaseNote(FailureNote {
                note_id,
                kind,
                body,
            }),
            RepNotice::NotTold(reason) => RepNoticeWrite::NotTold(reason),
        };
        let result = self
            .store
            .finish_delivery_refused(Refused {
                delivery_id: &row.id,
                session_id: &row.session_id,
                error: &error,
                data,
                notice: write,
                opt_out,
                max_attempts: self.config.worker.max_attempts,
            })
            .await;
        match result {
            Ok(told) => {
                tracing::info!(delivery_id = %row.id, rep_told = told.as_str(), "Delivery failure recorded.");
                Outcome::Done
            }
            Err(e) => self.delivery_db_retry(job, e),
        }
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
                Err(e) => return self.delivery_db_retry(job, e),
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
            Err(e) => self.delivery_db_retry(job, e),
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
        worker_with(vec![channel], |_| {}).await
    }

    async fn worker_with(
        plugins: Vec<Arc<dyn Channel>>,
        adjust: impl FnOnce(&mut crate::Config),
    ) -> (Arc<Worker>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::defaults();
        config.database_url = format!("sqlite://{}?mode=rwc", dir.path().join("o.db").display());
        config.worker.poll_interval_ms = 20;
        config.worker.retry_base_ms = 20;
        config.worker.retry_max_ms = 200;
        adjust(&mut config);
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
        for channel in plugins {
            registry.register_plugin(channel).unwrap();
        }
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

    /// A provider played by the test: each call takes the next scripted answer (then
    /// succeeds), and every call is recorded with what the gateway filled in.
    struct Scripted {
        name: &'static str,
        delivers: bool,
        through: Option<&'static str>,
        script: std::sync::Mutex<std::collections::VecDeque<Result<(), DeliveryError>>>,
        calls: std::sync::Mutex<Vec<OutboundMessage>>,
    }

    impl Scripted {
        fn new(name: &'static str, script: Vec<Result<(), DeliveryError>>) -> Arc<Scripted> {
            Arc::new(Scripted {
                name,
                delivers: true,
                through: None,
                script: std::sync::Mutex::new(script.into()),
                calls: std::sync::Mutex::new(Vec::new()),
            })
        }

        /// (delivery id, answered Ok) of every call, in order.
        fn call_ids(&self) -> Vec<String> {
            self.calls
                .lock()
                .unwrap()
                .iter()
                .map(|m| m.id.clone())
                .collect()
        }
    }

    #[async_trait::async_trait]
    impl Channel for Scripted {
        fn kind(&self) -> ChannelKind {
            ChannelKind::Plugin(self.name.into())
        }
        fn preferred_route(&self) -> Route {
            Route::Messaging
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                delivers: self.delivers,
                provider_dedupe: true,
                ..Capabilities::receive_only()
            }
        }
        fn delivers_through(&self) -> Option<ChannelKind> {
            self.through.map(|t| ChannelKind::Plugin(t.into()))
        }
        fn normalize(&self, _: EscalationInput) -> Result<Conversation, ChannelError> {
            Err(ChannelError::InvalidPluginName)
        }
        async fn deliver(
            &self,
            _: &ReplyTarget,
            message: &OutboundMessage,
        ) -> Result<Delivered, DeliveryError> {
            self.calls.lock().unwrap().push(message.clone());
            let next = self.script.lock().unwrap().pop_front();
            match next {
                Some(Err(e)) => Err(e),
                _ => Ok(Delivered {
                    provider_id: Some(format!("P-{}", message.id)),
                }),
            }
        }
    }

    fn to(channel: &str, id: &str, session: &str) -> NewDelivery {
        NewDelivery {
            id: id.into(),
            session_id: session.into(),
            channel: channel.into(),
            kind: OutboundKind::AgentMessage,
            text: format!("message {id}"),
            sender_name: None,
            target: ReplyTarget::Phone {
                number: "+15550107788".into(),
            },
        }
    }

    /// A 429 with Retry-After, then a 5xx, then success: the message is sent once, and the
    /// message written after it waits behind it (never overtakes it) and is sent once too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rate_limited_message_is_sent_once_and_the_next_waits_behind_it() {
        let provider = Scripted::new(
            "ratelimited",
            vec![
                Err(DeliveryError::Retryable {
                    message: "HTTP 429".into(),
                    retry_after: Some(Duration::from_millis(150)),
                    sent: false,
                }),
                Err(DeliveryError::Retryable {
                    message: "HTTP 503".into(),
                    retry_after: None,
                    sent: false,
                }),
            ],
        );
        let (worker, _dir) = worker_with(vec![provider.clone()], |_| {}).await;
        for id in ["dlv_first", "dlv_second"] {
            assert!(
                worker
                    .store
                    .enqueue_delivery(&to("ratelimited", id, "s-order"), 5)
                    .await
                    .unwrap()
            );
        }
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(Arc::clone(&worker).run(shutdown.clone()));
        let first = settled(&worker, "dlv_first").await;
        let second = settled(&worker, "dlv_second").await;
        shutdown.cancel();
        running.await.unwrap();
        assert_eq!((first.state.as_str(), first.attempts), ("sent", 3));
        assert_eq!(first.provider_id.as_deref(), Some("P-dlv_first"));
        assert_eq!((second.state.as_str(), second.attempts), ("sent", 1));
        assert_eq!(
            provider.call_ids(),
            ["dlv_first", "dlv_first", "dlv_first", "dlv_second"],
            "the first is tried until it is sent, and only then the second"
        );
    }

    /// A row naming a channel that delivers through another goes out through that one, and
    /// only the built-in SMS and WhatsApp senders get a status callback URL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_row_goes_through_its_channels_deliverer() {
        let textline = Scripted::new("textline", Vec::new());
        let callline = Arc::new(Scripted {
            name: "callline",
            delivers: false,
            through: Some("textline"),
            script: std::sync::Mutex::new(Default::default()),
            calls: std::sync::Mutex::new(Vec::new()),
        });
        let (worker, _dir) = worker_with(vec![textline.clone(), callline.clone()], |c| {
            c.public_url = Some("https://handoff.example.com/".into());
        })
        .await;
        worker
            .store
            .enqueue_delivery(&to("callline", "dlv_via", "s-via"), 5)
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(Arc::clone(&worker).run(shutdown.clone()));
        let row = settled(&worker, "dlv_via").await;
        shutdown.cancel();
        running.await.unwrap();
        assert_eq!(row.state, "sent");
        assert_eq!(textline.call_ids(), ["dlv_via"]);
        assert!(callline.call_ids().is_empty());
        let sent = textline.calls.lock().unwrap()[0].clone();
        assert_eq!(
            sent.status_callback, None,
            "a plugin gets no Twilio callback"
        );
        assert_eq!(sent.customer_last_message_at, None, "no session row");
    }

    #[test]
    fn status_callbacks_are_for_built_in_sms_and_whatsapp_with_a_public_url() {
        let url = Some("https://handoff.example.com/");
        assert_eq!(
            status_callback(url, &ChannelKind::Sms).as_deref(),
            Some("https://handoff.example.com/channels/sms/status")
        );
        assert_eq!(
            status_callback(Some("https://h.example.com/base"), &ChannelKind::Whatsapp).as_deref(),
            Some("https://h.example.com/base/channels/whatsapp/status")
        );
        for kind in [
            ChannelKind::Email,
            ChannelKind::Chat,
            ChannelKind::Voice,
            ChannelKind::Plugin("line".into()),
        ] {
            assert_eq!(status_callback(url, &kind), None, "{kind}");
        }
        assert_eq!(status_callback(None, &ChannelKind::Sms), None);
        assert_eq!(status_callback(Some(" "), &ChannelKind::Sms), None);
    }
}
