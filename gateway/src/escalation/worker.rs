//! The job worker: claims jobs, writes Cases, retries with backoff and jitter,
//! dead-letters what cannot succeed. Every attempt is recorded in the session's
//! events.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use salesforce::{Client, ErrorClass};

use super::case_writer::{CaseWriter, WriteFailed};
use super::gate::{CallOutcome, Gate, Permit};
use super::mapper;
use super::request::{EscalationPayload, SessionId};
use crate::config::Config;
use crate::store::{ClaimedJob, Store, now_ms};

/// Shared by the worker tasks.
pub struct Worker {
    pub store: Store,
    pub client: Client,
    pub config: Arc<Config>,
    /// Poked when a job is enqueued, so work starts without waiting for a poll.
    pub wake: Arc<Notify>,
    /// Circuit breaker and rate-limit pause, shared by every loop.
    pub gate: Arc<Gate>,
    pub id: String,
}

enum Outcome {
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
}

impl Worker {
    /// Runs `worker.concurrency` loops until `shutdown` is cancelled. A loop
    /// finishes the job in hand before it stops.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tasks = Vec::new();
        for n in 0..self.config.worker.concurrency {
            let worker = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tasks.push(tokio::spawn(
                async move { worker.run_loop(n, shutdown).await },
            ));
        }
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn run_loop(&self, n: usize, shutdown: CancellationToken) {
        let worker_id = format!("{}-{n}", self.id);
        let poll = Duration::from_millis(self.config.worker.poll_interval_ms);
        let lease_ms = (self.config.worker.lease_secs * 1000) as i64;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let permit = self.gate.permit();
            if let Permit::Wait(wait) = permit {
                tokio::select! {
                    _ = tokio::time::sleep(wait.min(poll * 4)) => {}
                    _ = shutdown.cancelled() => return,
                }
                continue;
            }
            match self.store.claim_job(&worker_id, lease_ms).await {
                Ok(Some(job)) => {
                    let outcome = self.handle(&job, &worker_id, permit).await;
                    self.gate.record(permit, outcome);
                }
                Ok(None) => {
                    self.gate.record(permit, CallOutcome::NoCall);
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(poll) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
                Err(e) => {
                    self.gate.record(permit, CallOutcome::NoCall);
                    tracing::warn!(error = %e, "Could not claim a job; the database may be unavailable.");
                    tokio::select! {
                        _ = tokio::time::sleep(poll * 4) => {}
                        _ = shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, session_id = %job.session_id, attempt = job.attempt))]
    async fn handle(&self, job: &ClaimedJob, worker_id: &str, permit: Permit) -> CallOutcome {
        let work = async {
            match job.kind.as_str() {
                super::CREATE_CASE_JOB => self.create_case(job).await,
                other => (
                    Outcome::Dead {
                        error: format!("unknown job kind '{other}'"),
                    },
                    CallOutcome::NoCall,
                ),
            }
        };
        // The lease is renewed while the attempt runs; if it is lost (another
        // worker took the job), the attempt is abandoned at once — exactly as if
        // this process had died — and the new owner reconciles.
        let (outcome, call) = tokio::select! {
            done = work => done,
            () = self.keep_lease(job, worker_id) => {
                tracing::warn!("Lost the job's lease mid-attempt; abandoning the attempt.");
                return CallOutcome::NoCall;
            }
        };
        // A probe that failed says Salesforce is still down, not that the job is bad.
        let outcome = match outcome {
            Outcome::Retry { after, error } if permit == Permit::Probe => {
                Outcome::Postpone { after, error }
            }
            other => other,
        };
        let result = match outcome {
            Outcome::Done => self.store.complete_job(job, worker_id).await,
            Outcome::Postpone { after, error } => {
                let run_at = now_ms() + after.as_millis() as i64;
                tracing::info!(
                    retry_in_ms = after.as_millis() as u64,
                    "Salesforce is unavailable; the job waits."
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
                let _ = self
                    .store
                    .record_attempt_failure(
                        &job.session_id,
                        0,
                        &error,
                        true,
                        "job.dead",
                        json!({"attempts": job.attempt, "error": error}),
                    )
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
        call
    }

    /// Renews the job's lease every third of its length; returns only when the
    /// lease is lost. A database error is retried: the lease may still be valid.
    async fn keep_lease(&self, job: &ClaimedJob, worker_id: &str) {
        let lease_ms = (self.config.worker.lease_secs * 1000) as i64;
        let every = Duration::from_millis((lease_ms / 3).max(1) as u64);
        loop {
            tokio::time::sleep(every).await;
            match self.store.renew_lease(job, worker_id, lease_ms).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "Could not renew the job's lease; trying again.")
                }
            }
        }
    }

    async fn create_case(&self, job: &ClaimedJob) -> (Outcome, CallOutcome) {
        let session = match self.store.session(&job.session_id).await {
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
                match self
                    .store
                    .record_case(
                        &session.id,
                        &written.case_id,
                        written.case_number.as_deref(),
                        written.comments_total,
                        written.calls,
                        data,
                    )
                    .await
                {
                    Ok(()) => (Outcome::Done, CallOutcome::Answered),
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
            Err(WriteFailed { error, calls }) => {
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
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
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
