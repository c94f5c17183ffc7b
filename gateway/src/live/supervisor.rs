//! The stream supervisor: one Server-Sent Events stream per live session (MIAW
//! has one stream per end-user token), held by exactly one replica through a
//! lease in `live_sessions`. Every third of `miaw.stream_lease_secs` it renews
//! the leases it holds, in one statement (a stream whose lease was taken is
//! stopped), and every `miaw.supervisor_interval_ms` it claims streams nobody
//! holds — new sessions, and those of a replica that died.
//!
//! Each event is applied in one transaction with the cursor (`Last-Event-Id`)
//! and fenced by the lease, so a restart or a dropped stream resumes exactly
//! after the last applied event: nothing lost, nothing twice. Pings change
//! nothing. The token is renewed (continuation token) before it expires and
//! whenever the stream answers 401; dropped streams reconnect with backoff.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use salesforce::miaw::{Backoff, EventStream, MiawError, MiawEvent, StreamEvent};

use super::Live;
use crate::escalation::mapper::live::event_effects;
use crate::escalation::request::EscalationPayload;
use crate::escalation::worker::Worker;
use crate::store::{LiveState, live_session, now_ms, session};

/// Streams claimed per round at most (the rest are claimed in the next rounds).
const CLAIM_BATCH: usize = 500;
/// A token is renewed this long before it expires at most — or, for short-lived
/// tokens, after two thirds of the life it had left when it was received.
const RENEW_BEFORE_MS: i64 = 60_000;

/// When to renew a token that expires at `exp` (epoch seconds), seen at `now_ms`.
fn renew_at_ms(exp: i64, now_ms: i64) -> i64 {
    let exp_ms = exp * 1000;
    let two_thirds = now_ms + (exp_ms - now_ms).max(0) * 2 / 3;
    two_thirds.max(exp_ms - RENEW_BEFORE_MS)
}

pub struct Supervisor {
    worker: Arc<Worker>,
    live: Arc<Live>,
    owner: String,
    /// Poked when a session gets its token, so its stream starts at once.
    pub wake: Arc<Notify>,
}

/// Why a stream task stopped.
enum Stop {
    /// The session is over (ended, or now a Case).
    Finished,
    /// Another replica holds the stream now, or this one is shutting down.
    Released,
}

impl Supervisor {
    pub fn new(worker: Arc<Worker>, live: Arc<Live>, wake: Arc<Notify>) -> Supervisor {
        let owner = worker.id.clone();
        Supervisor {
            worker,
            live,
            owner,
            wake,
        }
    }

    /// Supervises streams until `shutdown`, then lets go of every lease.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let cfg = &self.worker.config.miaw;
        let lease_ms = (cfg.stream_lease_secs * 1000) as i64;
        let interval = Duration::from_millis(cfg.supervisor_interval_ms);
        let mut tasks: JoinSet<String> = JoinSet::new();
        let mut by_task: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut running: HashMap<String, CancellationToken> = HashMap::new();
        let renew_every = Duration::from_millis(lease_ms as u64 / 3);
        let mut last_renewed: Option<std::time::Instant> = None;
        loop {
            while let Some(done) = tasks.try_join_next_with_id() {
                let id = match done {
                    Ok((task, _)) => by_task.remove(&task),
                    Err(e) => {
                        if e.is_panic() {
                            tracing::error!(
                                "A live stream task panicked; the stream is claimed again."
                            );
                        }
                        by_task.remove(&e.id())
                    }
                };
                if let Some(id) = id {
                    running.remove(&id);
                }
            }
            // Renewing is one UPDATE over every held row: do it every third of the
            // lease, not every round (claiming new streams stays every round).
            if last_renewed.is_none_or(|at: std::time::Instant| at.elapsed() >= renew_every) {
                match self
                    .worker
                    .store
                    .renew_live_streams(&self.owner, lease_ms)
                    .await
                {
                    Ok(held) => {
                        last_renewed = Some(std::time::Instant::now());
                        let held: HashSet<String> = held.into_iter().collect();
                        for (id, cancel) in &running {
                            if !held.contains(id) {
                                cancel.cancel();
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Could not renew live stream leases; the database may be unavailable.");
                    }
                }
            }
            let room = cfg
                .max_streams
                .saturating_sub(running.len())
                .min(CLAIM_BATCH);
            match self
                .worker
                .store
                .claim_live_streams(&self.owner, lease_ms, room)
                .await
            {
                Ok(rows) => {
                    for row in rows {
                        if running.contains_key(&row.session_id) {
                            continue;
                        }
                        let cancel = shutdown.child_token();
                        let id = row.session_id.clone();
                        running.insert(id.clone(), cancel.clone());
                        let this = Arc::clone(&self);
                        let returned = id.clone();
                        let handle = tasks.spawn(async move {
                            this.stream(row, cancel).await;
                            returned
                        });
                        by_task.insert(handle.id(), id);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Could not claim live streams; the database may be unavailable.");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.cancelled() => break,
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Holds one session's stream until it ends, the lease is lost, or shutdown.
    #[tracing::instrument(skip_all, fields(session_id = %row.session_id))]
    async fn stream(self: Arc<Self>, row: live_session::Model, cancel: CancellationToken) {
        let session_id = row.session_id.clone();
        let stop = self.follow(row, &cancel).await;
        if let Stop::Released = stop {
            let _ = self
                .worker
                .store
                .release_live_stream(&session_id, &self.owner)
                .await;
        }
    }

    async fn follow(&self, row: live_session::Model, cancel: &CancellationToken) -> Stop {
        let session_id = row.session_id.clone();
        let mut session = match self.worker.store.session(&session_id).await {
            Ok(Some(s)) => s,
            _ => return Stop::Released,
        };
        let Ok(mut payload) = serde_json::from_str::<EscalationPayload>(&session.payload) else {
            tracing::warn!(
                "The session's stored escalation does not parse; its stream is not followed."
            );
            return Stop::Released;
        };
        // The stream lives as long as the chat: keep what its events need (the
        // reply target, the session's id, channel and language), not the
        // transcript twice, or memory per live session grows with it.
        session.payload = String::new();
        payload.conversation.turns = Vec::new();
        payload.summary = None;
        let mut token = row.token.clone().unwrap_or_default();
        let mut expires = row.token_expires_at;
        let mut renew_at = expires.map(|exp| renew_at_ms(exp, now_ms()));
        let mut cursor = row.last_event_id.clone();
        let mut backoff = Backoff::new();
        loop {
            if cancel.is_cancelled() {
                return Stop::Released;
            }
            if renew_at.is_some_and(|at| at <= now_ms()) {
                match self.renew(&session_id, &mut token, &mut expires).await {
                    Renewal::Renewed => renew_at = expires.map(|exp| renew_at_ms(exp, now_ms())),
                    Renewal::Failed => {}
                    Renewal::Lost => return self.lose(&session, &payload).await,
                }
            }
            let connected = tokio::select! {
                r = self.live.client.subscribe(&token, cursor.as_deref()) => r,
                _ = cancel.cancelled() => return Stop::Released,
            };
            let renew_now = match connected {
                Ok(stream) => {
                    match self
                        .read(
                            &session,
                            &payload,
                            stream,
                            &mut cursor,
                            &mut backoff,
                            renew_at,
                            cancel,
                        )
                        .await
                    {
                        Read::Stop(stop) => return stop,
                        Read::Renew => true,
                        Read::Reconnect => false,
                    }
                }
                Err(MiawError::Unauthorized { .. }) => true,
                Err(e) => {
                    tracing::info!(error = %e, "Live stream could not connect; retrying.");
                    false
                }
            };
            if renew_now {
                match self.renew(&session_id, &mut token, &mut expires).await {
                    Renewal::Renewed => {
                        renew_at = expires.map(|exp| renew_at_ms(exp, now_ms()));
                        continue;
                    }
                    Renewal::Failed => {}
                    Renewal::Lost => return self.lose(&session, &payload).await,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                _ = cancel.cancelled() => return Stop::Released,
            }
        }
    }

    /// Reads events until the stream drops, the token must be renewed, or the session stops.
    #[allow(clippy::too_many_arguments)]
    async fn read(
        &self,
        session: &session::Model,
        payload: &EscalationPayload,
        mut stream: EventStream,
        cursor: &mut Option<String>,
        backoff: &mut Backoff,
        renew_at: Option<i64>,
        cancel: &CancellationToken,
    ) -> Read {
        let renew_in = renew_at
            .map(|at| Duration::from_millis((at - now_ms()).max(0) as u64))
            .unwrap_or(Duration::from_secs(86_400 * 365));
        let renew_at = tokio::time::sleep(renew_in);
        tokio::pin!(renew_at);
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                _ = &mut renew_at => return Read::Renew,
                _ = cancel.cancelled() => return Read::Stop(Stop::Released),
            };
            match item {
                None => return Read::Reconnect,
                Some(Err(MiawError::Unauthorized { .. })) => return Read::Renew,
                Some(Err(e)) => {
                    tracing::info!(error = %e, "Live stream dropped; reconnecting.");
                    return Read::Reconnect;
                }
                Some(Ok(event)) => {
                    backoff.reset();
                    if matches!(event.event, MiawEvent::Ping) {
                        continue;
                    }
                    match self.apply(session, payload, &event).await {
                        Ok(None) => {
                            if event.id.is_some() {
                                cursor.clone_from(&event.id);
                            }
                        }
                        Ok(Some(stop)) => return Read::Stop(stop),
                        Err(e) => {
                            // Not applied: reconnect from the last applied event.
                            tracing::warn!(error = %e, "Could not apply a live stream event; resuming from the last one applied.");
                            return Read::Reconnect;
                        }
                    }
                }
            }
        }
    }

    /// Applies one event with its cursor. `Some(stop)`: the stream is done.
    async fn apply(
        &self,
        session: &session::Model,
        payload: &EscalationPayload,
        event: &StreamEvent,
    ) -> Result<Option<Stop>, sea_orm::DbErr> {
        let Some(row) = self.worker.store.live_session(&session.id).await? else {
            return Ok(Some(Stop::Finished));
        };
        if row.owner.as_deref() != Some(self.owner.as_str()) {
            return Ok(Some(Stop::Released));
        }
        let event_id = event.id.as_deref().unwrap_or("");
        let effects = self
            .worker
            .with_event_context(session, payload, &row, event_id, |ctx| {
                event_effects(&event.event, ctx)
            });
        let finished = effects.fallback || effects.state == Some(LiveState::Ended);
        let wake = finished || !effects.deliveries.is_empty();
        let applied = self
            .worker
            .store
            .apply_stream_event(
                &session.id,
                &self.owner,
                event.id.as_deref(),
                effects,
                self.worker.config.worker.max_attempts,
            )
            .await?;
        if !applied {
            return Ok(Some(Stop::Released));
        }
        if wake {
            self.worker.wake.notify_one();
            self.worker.feed.publish(&session.id);
        }
        let over = !LiveState::parse(&row.state).is_some_and(|s| LiveState::STREAMING.contains(&s));
        Ok((finished || over).then_some(Stop::Finished))
    }

    /// Renews the token (continuation token) and stores it.
    async fn renew(
        &self,
        session_id: &str,
        token: &mut String,
        expires: &mut Option<i64>,
    ) -> Renewal {
        match self.live.client.continuation_token(token).await {
            Ok(renewed) => {
                if let Err(e) = self.worker.keep_token(session_id, &renewed, false).await {
                    tracing::warn!(error = %e, "Could not store the renewed token.");
                    return Renewal::Failed;
                }
                *token = renewed.token.expose_secret().to_string();
                *expires = renewed.expires_at;
                tracing::info!("Live token renewed.");
                Renewal::Renewed
            }
            // Refused, and past its own expiry: no token can reach this end user's
            // conversation any more (a continuation token needs a valid one).
            Err(MiawError::Unauthorized { .. })
                if expires.is_some_and(|exp| exp * 1000 <= now_ms()) =>
            {
                tracing::warn!("The live token expired and cannot be renewed; the chat is lost.");
                Renewal::Lost
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not renew the live token.");
                Renewal::Failed
            }
        }
    }

    /// The chat cannot go on (its token expired beyond renewal, e.g. after a long
    /// outage): it ends, the customer is told, and the timeline says why.
    async fn lose(&self, session: &session::Model, payload: &EscalationPayload) -> Stop {
        let Ok(Some(row)) = self.worker.store.live_session(&session.id).await else {
            return Stop::Released;
        };
        let mut effects = self
            .worker
            .with_event_context(session, payload, &row, "lost", |ctx| {
                ctx.closed_effects("token_expired")
            });
        effects.events.push((
            "live.lost",
            serde_json::json!({"reason": "the end user's token expired and could not be renewed"}),
        ));
        match self
            .worker
            .store
            .apply_stream_event(
                &session.id,
                &self.owner,
                None,
                effects,
                self.worker.config.worker.max_attempts,
            )
            .await
        {
            Ok(true) => {
                self.worker.wake.notify_one();
                self.worker.feed.publish(&session.id);
                Stop::Finished
            }
            _ => Stop::Released,
        }
    }
}

/// How a token renewal went.
enum Renewal {
    Renewed,
    /// Not now (transient): try again after a backoff.
    Failed,
    /// Never: the token expired and was refused.
    Lost,
}

enum Read {
    Stop(Stop),
    Renew,
    Reconnect,
}

#[cfg(test)]
mod tests {
    use super::renew_at_ms;

    #[test]
    fn tokens_are_renewed_a_minute_early_or_after_two_thirds_of_a_short_life() {
        let now = 1_000_000_000;
        // An hour left: renew a minute before expiry.
        assert_eq!(renew_at_ms(now / 1000 + 3600, now), now + 3_540_000);
        // Three seconds left: renew after two of them, not at once (no renewal storm).
        assert_eq!(renew_at_ms(now / 1000 + 3, now), now + 2_000);
        // Already expired: renew now.
        assert_eq!(renew_at_ms(now / 1000 - 5, now), now);
    }
}
