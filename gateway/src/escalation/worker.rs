//! The job worker. One dispatcher claims as many due jobs as there are free
//! permits — for jobs that call Salesforce (only while the breaker lets them),
//! [`ATTEMPTS_PER_SALESFORCE_SLOT`] × `salesforce.max_concurrency`, with the
//! client holding calls in flight to `max_concurrency`; for channel deliveries,
//! `worker.concurrency` — and runs each attempt in its own task. An attempt retries with
//! backoff and jitter or dead-letters what cannot succeed; a panic fails that
//! attempt only. Every attempt is recorded in the session's events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use salesforce::{Client, ErrorClass};

use super::case_writer::{CaseWriter, WriteError, WriteFailed};
use super::gate::{CallOutcome, Gate, Permit, Ticket};
use super::mapper;
use super::request::{EscalationPayload, SessionId};
use crate::config::Config;
use crate::jobs::clock::Clock;
use crate::jobs::fence::Fence;
use crate::jobs::{JobClass, JobKind};
use crate::outbox::notices::Notice;
use crate::store::{
    ABANDONED_ERROR, AbandonedJob, CaseRecord, ClaimedJob, DeliveryState, Store, now_ms,
};

/// Shared by the dispatcher and every attempt.
pub struct Worker {
    pub store: Store,
    pub client: Client,
    pub config: Arc<Config>,
    /// Poked when a job is enqueued, so work starts without waiting for a poll.
    pub wake: Arc<Notify>,
    /// Circuit breaker and rate-limit pause for Salesforce work.
    pub gate: Arc<Gate>,
    /// The channel adapters deliveries go through.
    pub channels: Arc<channels::Registry>,
    /// Reads time for lease fences.
    pub clock: Arc<dyn Clock>,
    pub id: String,
    /// Live messaging (MIAW), when `[miaw]` is enabled.
    pub live: Option<Arc<crate::live::Live>>,
    /// Poked when a live session gets its token, so its stream starts at once.
    pub streams_wake: Arc<Notify>,
    /// Tells stream subscribers a session has new deliveries.
    pub feed: crate::outbox::feed::Feed,
    /// Rep replies: the counters the sync and poll jobs keep.
    pub replies: Arc<crate::replies::Replies>,
}

pub(crate) enum Outcome {
    Done,
    /// Try again later; the attempt counts toward `max_attempts`.
    Retry {
        after: Duration,
        error: String,
    },
    /// Try again later without spending an attempt: Salesforce is rate-limiting
    /// or down, which says nothing about this job.
    Postpone {
        after: Duration,
        error: String,
    },
    Dead {
        error: String,
    },
    /// The lease is not certainly ours any more: leave the job alone, exactly
    /// as if this process had died; whoever claims it next reconciles.
    Abandon,
    /// The handler already finished the job in its own transaction.
    Finished,
}

/// Salesforce attempts in flight per `salesforce.max_concurrency`. The client's
/// own semaphore keeps Salesforce *calls* in flight at `max_concurrency`; twice as
/// many attempts let one attempt's database work (reading the session, recording
/// the Case, finishing the job) overlap another's call, so the calls in flight
/// stay at the limit instead of idling while the database is written.
pub const ATTEMPTS_PER_SALESFORCE_SLOT: usize = 2;

/// Permits for each class of job.
struct Pools {
    salesforce: Arc<Semaphore>,
    salesforce_size: usize,
    channel: Arc<Semaphore>,
    channel_size: usize,
    /// Poked when an attempt ends and frees its permit.
    freed: Arc<Notify>,
}

impl Worker {
    /// Dispatches jobs until `shutdown` is cancelled, then lets the attempts in
    /// flight finish.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let salesforce_size = self.config.salesforce.max_concurrency * ATTEMPTS_PER_SALESFORCE_SLOT;
        let channel_size = self.config.worker.concurrency;
        let pools = Pools {
            salesforce: Arc::new(Semaphore::new(salesforce_size)),
            salesforce_size,
            channel: Arc::new(Semaphore::new(channel_size)),
            channel_size,
            freed: Arc::new(Notify::new()),
        };
        let poll = Duration::from_millis(self.config.worker.poll_interval_ms);
        let mut attempts = JoinSet::new();
        let mut last_sweep: Option<Instant> = None;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while attempts.try_join_next().is_some() {}
            let mut wait = poll;
            if last_sweep.is_none_or(|at| at.elapsed() >= poll) {
                last_sweep = Some(Instant::now());
                match self.store.bury_abandoned_jobs().await {
                    Ok(buried) => {
                        for job in buried {
                            self.record_abandoned(job).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Could not look for abandoned jobs; the database may be unavailable.");
                    }
                }
            }
            for class in [JobClass::Salesforce, JobClass::Channel] {
                match self.dispatch(class, &pools, &mut attempts).await {
                    Ok(None) => {}
                    Ok(Some(gate_wait)) => wait = wait.min(gate_wait),
                    Err(e) => {
                        tracing::warn!(error = %e, "Could not claim jobs; the database may be unavailable.");
                        wait = poll * 4;
                    }
                }
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = pools.freed.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        while attempts.join_next().await.is_some() {}
    }

    /// Claims as many jobs of `class` as there are free permits and starts an
    /// attempt for each. `Some(wait)`: the breaker holds Salesforce work that long.
    async fn dispatch(
        self: &Arc<Self>,
        class: JobClass,
        pools: &Pools,
        attempts: &mut JoinSet<()>,
    ) -> Result<Option<Duration>, sea_orm::DbErr> {
        let (pool, size) = match class {
            JobClass::Salesforce => (&pools.salesforce, pools.salesforce_size),
            JobClass::Channel => (&pools.channel, pools.channel_size),
        };
        // Claim in batches of at least a quarter of the pool while it is busy:
        // one claim statement (one commit) serves several jobs, and the attempts
        // still in flight keep Salesforce busy meanwhile. An idle pool claims at once.
        let free = pool.available_permits();
        if free == 0 || free < (size / 4).max(1) {
            return Ok(None);
        }
        let mut first_ticket = match class {
            JobClass::Salesforce => match self.gate.ticket() {
                Ok(ticket) => Some(ticket),
                Err(wait) => return Ok(Some(wait)),
            },
            JobClass::Channel => None,
        };
        let limit = match &first_ticket {
            Some(ticket) if ticket.permit() == Permit::Probe => 1,
            _ => free,
        };
        let lease = Duration::from_secs(self.config.worker.lease_secs);
        let taken_at = self.clock.now();
        // An error drops the ticket, which reports that no call was made.
        let jobs = self
            .store
            .claim_jobs(&self.id, lease.as_millis() as i64, class, limit)
            .await?;
        for job in jobs {
            let ticket = match class {
                JobClass::Salesforce => Some(
                    first_ticket
                        .take()
                        .unwrap_or_else(|| self.gate.ticket_for(Permit::Go)),
                ),
                JobClass::Channel => None,
            };
            let permit = Arc::clone(pool)
                .try_acquire_owned()
                .expect("claimed no more jobs than free permits");
            let fence = Fence::new(Arc::clone(&self.clock), taken_at, lease);
            self.spawn_attempt(attempts, job, fence, ticket, permit, &pools.freed);
        }
        Ok(None)
    }

    /// Runs one attempt in its own task. If it panics, the attempt is recorded
    /// as failed and retried (or dead-lettered) like any other failure; the
    /// ticket it held reports "no call" as it unwinds, releasing a probe.
    fn spawn_attempt(
        self: &Arc<Self>,
        attempts: &mut JoinSet<()>,
        job: ClaimedJob,
        fence: Fence,
        ticket: Option<Ticket>,
        permit: OwnedSemaphorePermit,
        freed: &Arc<Notify>,
    ) {
        let worker = Arc::clone(self);
        let freed = Arc::clone(freed);
        attempts.spawn(async move {
            let _permit = permit;
            let inner = {
                let worker = Arc::clone(&worker);
                let job = job.clone();
                tokio::spawn(async move { worker.attempt(&job, fence, ticket).await })
            };
            if let Err(e) = inner.await
                && e.is_panic()
            {
                worker
                    .after_panic(&job, panic_message(e.into_panic()))
                    .await;
            }
            freed.notify_one();
        });
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, session_id = %job.session_id, attempt = job.attempt))]
    async fn attempt(&self, job: &ClaimedJob, fence: Fence, ticket: Option<Ticket>) {
        let probing = ticket.as_ref().is_some_and(|t| t.permit() == Permit::Probe);
        let work = async {
            match &job.kind {
                Ok(kind) => self.run_kind(kind, job, &fence).await,
                Err(undecodable) => (
                    Outcome::Dead {
                        error: undecodable.to_string(),
                    },
                    CallOutcome::NoCall,
                ),
            }
        };
        // The lease is renewed while the attempt runs; if it is lost (another
        // worker took the job) or lapses while renewals fail, the attempt is
        // abandoned at once — exactly as if this process had died — and the
        // next owner reconciles.
        let (outcome, call) = tokio::select! {
            done = work => done,
            () = self.keep_lease(job, &fence) => (Outcome::Abandon, CallOutcome::NoCall),
        };
        // A probe that failed says Salesforce is still down, not that the job is bad.
        let outcome = match outcome {
            Outcome::Retry { after, error } if probing => Outcome::Postpone { after, error },
            other => other,
        };
        self.finish(job, outcome).await;
        if let Some(ticket) = ticket {
            ticket.record(call);
        }
    }

    /// One handler per job kind.
    async fn run_kind(
        &self,
        kind: &JobKind,
        job: &ClaimedJob,
        fence: &Fence,
    ) -> (Outcome, CallOutcome) {
        match kind {
            JobKind::CreateCase { session_id } => self.create_case(job, session_id, fence).await,
            JobKind::DeliverMessage { delivery_id } => (
                self.deliver_message(job, delivery_id).await,
                CallOutcome::NoCall,
            ),
            JobKind::OpenConversation { session_id } => (
                self.open_conversation(job, session_id).await,
                CallOutcome::NoCall,
            ),
            JobKind::SendToRep { session_id } => {
                (self.send_to_rep(job, session_id).await, CallOutcome::NoCall)
            }
            JobKind::EndConversation { session_id } => (
                self.end_conversation(job, session_id).await,
                CallOutcome::NoCall,
            ),
            JobKind::SyncCaseEvent { event_id } => (
                self.sync_case_event(job, event_id).await,
                CallOutcome::NoCall,
            ),
            JobKind::PollCaseReplies {} => self.poll_case_replies(job).await,
            JobKind::WriteCaseNote { note_id } => self.write_case_note(job, note_id, fence).await,
            #[cfg(test)]
            JobKind::Panic { .. } => panic!("a test job that panics"),
        }
    }

    /// Records how a claimed job ended — only if this worker still holds it.
    async fn finish(&self, job: &ClaimedJob, outcome: Outcome) {
        let worker_id = self.id.as_str();
        let result = match outcome {
            Outcome::Abandon => {
                tracing::warn!("The job's lease is not certainly held; abandoning the attempt.");
                return;
            }
            Outcome::Finished => return,
            Outcome::Done => self.store.complete_job(job, worker_id).await,
            Outcome::Postpone { after, error } => {
                let run_at = now_ms() + after.as_millis() as i64;
                // A short wait ends before the next poll: wake the dispatcher then.
                if after < Duration::from_millis(self.config.worker.poll_interval_ms) {
                    let wake = Arc::clone(&self.wake);
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        wake.notify_one();
                    });
                }
                // The reason is ours (a fixed text or a Salesforce/MIAW status), never a body.
                tracing::info!(
                    retry_in_ms = after.as_millis() as u64,
                    reason = %error,
                    "The job waits without spending an attempt."
                );
                self.store
                    .requeue_job(job, worker_id, run_at, &error, false)
                    .await
            }
            Outcome::Retry { after, error } if job.attempt < job.max_attempts => {
                let run_at = now_ms() + after.as_millis() as i64;
                tracing::info!(
                    retry_in_ms = after.as_millis() as u64,
                    "Attempt failed; retrying later."
                );
                self.store
                    .requeue_job(job, worker_id, run_at, &error, true)
                    .await
            }
            Outcome::Retry { error, .. } | Outcome::Dead { error } => {
                tracing::warn!("Job dead-lettered.");
                let data = json!({"job_id": job.id, "attempts": job.attempt, "error": error});
                self.record_dead(&job.kind, &job.session_id, &error, data)
                    .await;
                self.store.bury_job(job, worker_id, &error).await
            }
        };
        match result {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("Lost the job's lease before finishing; another worker owns it now.")
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not record the job's outcome; it will run again after its lease.")
            }
        }
    }

    /// The `job.dead` event; a Case job's session is marked failed, a delivery
    /// job's delivery is marked failed (the session itself is fine).
    async fn record_dead(
        &self,
        kind: &Result<JobKind, crate::jobs::UndecodableJob>,
        session_id: &str,
        error: &str,
        data: serde_json::Value,
    ) {
        let recorded = match kind {
            Ok(JobKind::DeliverMessage { delivery_id }) => {
                let failed = json!({"delivery_id": delivery_id, "error": error});
                let _ = self
                    .store
                    .finish_delivery_attempt(
                        delivery_id,
                        DeliveryState::Failed,
                        None,
                        Some(error),
                        Some((session_id, "delivery.failed", failed)),
                    )
                    .await;
                self.store.add_event(session_id, "job.dead", data).await
            }
            _ => {
                self.store
                    .record_attempt_failure(session_id, 0, error, true, "job.dead", data)
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "Could not record the dead job on its session.");
        }
    }

    /// A job the claim dead-lettered because every attempt was abandoned.
    async fn record_abandoned(&self, job: AbandonedJob) {
        tracing::warn!(
            job_id = job.id,
            attempts = job.attempts,
            "Job dead-lettered: every attempt was abandoned."
        );
        let data = json!({
            "job_id": job.id,
            "attempts": job.attempts,
            "abandoned": true,
            "error": ABANDONED_ERROR,
        });
        self.record_dead(&job.kind, &job.session_id, ABANDONED_ERROR, data)
            .await;
    }

    /// An attempt panicked: a bug, not a verdict on the job. Recorded as a failed
    /// attempt and retried with backoff until `max_attempts`, then dead-lettered.
    async fn after_panic(&self, job: &ClaimedJob, message: String) {
        tracing::error!(
            job_id = job.id,
            session_id = %job.session_id,
            attempt = job.attempt,
            "A job attempt panicked; the attempt failed."
        );
        let error = format!("the attempt panicked: {message}");
        let _ = self
            .store
            .add_event(
                &job.session_id,
                "job.attempt_failed",
                json!({"job_id": job.id, "attempt": job.attempt, "error": error}),
            )
            .await;
        let after = self.backoff(job.attempt, None);
        self.finish(job, Outcome::Retry { after, error }).await;
    }

    /// Renews the job's lease every third of its length. Returns when the lease
    /// is lost, or when renewals keep failing (the database is unreachable) and
    /// the lease has run out: past that moment another replica may hold the job.
    async fn keep_lease(&self, job: &ClaimedJob, fence: &Fence) {
        let lease = Duration::from_secs(self.config.worker.lease_secs);
        let every = lease / 3;
        loop {
            tokio::time::sleep(every).await;
            let sent_at = self.clock.now();
            match self
                .store
                .renew_lease(job, &self.id, lease.as_millis() as i64)
                .await
            {
                Ok(true) => fence.renewed(sent_at, lease),
                Ok(false) => {
                    fence.lose();
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Could not renew the job's lease; trying again.");
                    if fence.check().is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn create_case(
        &self,
        job: &ClaimedJob,
        session_id: &str,
        fence: &Fence,
    ) -> (Outcome, CallOutcome) {
        let session = match self.store.session(session_id).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                let error = "the job's session does not exist".into();
                return (Outcome::Dead { error }, CallOutcome::NoCall);
            }
            Err(e) => {
                let outcome = Outcome::Retry {
                    after: self.backoff(job.attempt, None),
                    error: format!("database: {e}"),
                };
                return (outcome, CallOutcome::NoCall);
            }
        };
        let payload: EscalationPayload = match serde_json::from_str(&session.payload) {
            Ok(p) => p,
            Err(e) => {
                let error = format!("the stored escalation no longer parses: {e}");
                return (Outcome::Dead { error }, CallOutcome::NoCall);
            }
        };
        let (Ok(session_id), Ok(channel)) = (
            SessionId::parse(&session.id),
            channels::ChannelKind::from_name(&session.channel),
        ) else {
            let error = "the stored session id or channel no longer parses".into();
            return (Outcome::Dead { error }, CallOutcome::NoCall);
        };

        match self.open_case_to_join(job, &session, fence).await {
            Ok(Some(open)) => return self.join_case(job, &session, &payload, open).await,
            Ok(None) => {}
            Err(stop) => return stop,
        }
        let fields = mapper::case_fields(&self.config.case, &channel, &session_id, &payload);
        let comments = mapper::pack_comments(&payload.conversation.turns);
        let _ = self
            .store
            .add_event(
                &session.id,
                "case.attempt",
                json!({"attempt": job.attempt, "comments": comments.len()}),
            )
            .await;
        let writer = CaseWriter {
            client: &self.client,
            external_id_field: &self.config.case.external_id_field,
            fence,
        };
        match writer
            .write(session_id.as_str(), &fields, &comments, job.attempt > 1)
            .await
        {
            Ok(written) => {
                tracing::info!(
                    case_id = %written.case_id,
                    comments = written.comments_total,
                    calls = written.calls,
                    "Case written."
                );
                let data = json!({
                    "case_id": written.case_id.as_str(),
                    "case_number": written.case_number,
                    "comments": written.comments_total,
                    "comments_written_now": written.comments_written_now,
                    "salesforce_calls": written.calls,
                    "reconciled": written.reconciled,
                    "attempt": job.attempt,
                });
                let record = CaseRecord {
                    session_id: &session.id,
                    case_id: &written.case_id,
                    case_number: written.case_number.as_deref(),
                    comments: written.comments_total,
                    salesforce_calls: written.calls,
                    event_data: data,
                    joined: None,
                };
                let notice = self.case_notice(&session, written.case_number.as_deref());
                // One transaction: the Case on the session, the notice to the
                // customer (or why there is none), and the job done.
                match self
                    .store
                    .finish_case_job(
                        job,
                        &self.id,
                        &record,
                        &notice,
                        self.config.worker.max_attempts,
                    )
                    .await
                {
                    Ok(true) => {
                        if matches!(notice, Notice::Send(_)) {
                            self.wake.notify_one();
                        }
                        (Outcome::Finished, CallOutcome::Answered)
                    }
                    Ok(false) => {
                        tracing::warn!(
                            "Lost the job's lease before recording the Case; the new owner records it."
                        );
                        (Outcome::Finished, CallOutcome::Answered)
                    }
                    // Salesforce has it; recording failed. The retry reconciles
                    // (finds the Case, writes nothing) and records again.
                    Err(e) => (
                        Outcome::Retry {
                            after: self.backoff(job.attempt, None),
                            error: format!("database: {e}"),
                        },
                        CallOutcome::Answered,
                    ),
                }
            }
            Err(WriteFailed {
                error: WriteError::Fenced(fenced),
                calls,
            }) => {
                tracing::warn!(error = %fenced, calls, "Stopped the Case write before its next call.");
                (Outcome::Abandon, CallOutcome::NoCall)
            }
            Err(WriteFailed {
                error: WriteError::Salesforce(error),
                calls,
            }) => {
                let class = error.class();
                let message = error.to_string();
                tracing::warn!(
                    error_code = error.code().unwrap_or("none"),
                    class = ?class,
                    "Salesforce refused or failed the Case write."
                );
                let _ = self
                    .store
                    .record_attempt_failure(
                        &session.id,
                        calls,
                        &message,
                        false,
                        "case.attempt_failed",
                        json!({
                            "attempt": job.attempt,
                            "class": format!("{class:?}").to_lowercase(),
                            "error_code": error.code(),
                            "error": message,
                            "salesforce_calls": calls,
                        }),
                    )
                    .await;
                let after = self.backoff(job.attempt, error.retry_after());
                let outcome = match class {
                    ErrorClass::Permanent => Outcome::Dead { error: message },
                    ErrorClass::RateLimit => Outcome::Postpone {
                        after,
                        error: message,
                    },
                    ErrorClass::Retryable | ErrorClass::Auth => Outcome::Retry {
                        after,
                        error: message,
                    },
                };
                (outcome, CallOutcome::Failed(class))
            }
        }
    }

    /// Exponential backoff with jitter (50–100 % of the step), at least `Retry-After`.
    pub(crate) fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let cfg = &self.config.worker;
        let step = cfg
            .retry_base_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
            .min(cfg.retry_max_ms);
        let jittered = rand::rng().random_range(step / 2..=step.max(1));
        let wait = Duration::from_millis(jittered);
        match retry_after {
            Some(ra) if ra > wait => ra,
            _ => wait,
        }
    }
}

/// The text a panic carried, if it was a string.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".into())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use sea_orm::{ActiveModelTrait, Set};
    use serde_json::json;

    use crate::escalation::gate::{CallOutcome, Permit};
    use crate::jobs::JobKind;
    use crate::store::{Scope, job, now_ms};

    /// A panic inside an attempt used to kill its worker loop for good, and if
    /// the attempt was the breaker's probe, the gate stayed half-open with the
    /// probe "in flight" forever: no Salesforce job was claimed again while
    /// `/readyz` said 200. Now each attempt runs in its own task: the panic fails
    /// that attempt (recorded in the session's events, retried, then
    /// dead-lettered), the probe is released, and the next job runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_probe_fails_its_attempt_and_work_goes_on() {
        let emulator = sf_emulator::spawn(
            sf_emulator::EmulatorConfig::default(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::defaults();
        config.database_url = format!("sqlite://{}?mode=rwc", dir.path().join("h.db").display());
        config.salesforce.login_url = emulator.url();
        let app = emulator.config().connected_apps[0].clone();
        config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
            client_id: app.client_id,
            client_secret: app.client_secret.into(),
        });
        config.salesforce.breaker_failure_threshold = 1;
        config.salesforce.breaker_open_secs = 0;
        config.worker.max_attempts = 2;
        config.worker.retry_base_ms = 20;
        config.worker.retry_max_ms = 40;
        config.worker.poll_interval_ms = 20;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let application = crate::Application::build(config, listener).await.unwrap();
        let state = application.state().clone();
        let store = state.store.clone();
        // The breaker is open (for zero seconds): the first job claimed is the probe.
        state.gate.record(
            Permit::Go,
            CallOutcome::Failed(salesforce::ErrorClass::Retryable),
        );
        assert_eq!(state.gate.snapshot().state, "open");
        let panic_job = JobKind::Panic {
            session_id: "panics-1".into(),
        };
        let t = now_ms();
        let inserted = job::ActiveModel {
            kind: Set(panic_job.name().into()),
            session_id: Set("panics-1".into()),
            state: Set("queued".into()),
            attempts: Set(0),
            max_attempts: Set(2),
            run_at: Set(t - 1000),
            created_at: Set(t),
            updated_at: Set(t),
            payload: Set(Some(panic_job.payload_json())),
            ..Default::default()
        }
        .insert(store.connection())
        .await
        .unwrap();
        let token = store
            .create_token("t", &[Scope::Escalate])
            .await
            .unwrap()
            .secret;
        let running = application.spawn().unwrap();
        let status = reqwest::Client::new()
            .post(format!("{}/v1/escalations", running.url()))
            .bearer_auth(token)
            .json(&json!({"session_id": "after-panic-1", "channel": "email",
                "customer": {"email": "ann@example.com"},
                "transcript": [{"role": "customer", "text": "hi", "at": "2026-11-22T09:00:00Z"}]}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);

        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let panicked = store.job(inserted.id).await.unwrap().unwrap();
            let escalated = store.session("after-panic-1").await.unwrap().unwrap();
            if panicked.state == "dead" && escalated.status == "escalated" {
                assert_eq!(panicked.attempts, 2);
                assert!(
                    panicked.last_error.as_deref().is_some_and(
                        |e| e.starts_with("the attempt panicked: a test job that panics")
                    ),
                    "{:?}",
                    panicked.last_error
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "panic job {} and session {}; gate {:?}",
                panicked.state,
                escalated.status,
                state.gate.snapshot()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let kinds: Vec<String> = store
            .events("panics-1")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            ["job.attempt_failed", "job.attempt_failed", "job.dead"]
        );
        assert_eq!(state.gate.snapshot().state, "closed");
        assert_eq!(emulator.records("Case").len(), 1);
        running.stop().await;
        emulator.shutdown().await;
    }
}
