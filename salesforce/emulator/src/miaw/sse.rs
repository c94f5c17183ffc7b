//! `GET /eventrouter/v1/sse`: the end user's event stream.
//!
//! One stream per token (a second connection with the same token closes the first), replay of
//! the subject's logged events after `Last-Event-Id`, `event: ping` / `data: 0` every
//! `miaw.ping_secs`. Per stream: a bounded queue, one ping timer and a few words of state.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use super::faults::Operation;
use super::tokens::{authenticate, same_org};
use super::{Event, MiawError};
use crate::server::AppState;

/// One open stream.
struct Feed {
    state: Arc<AppState>,
    subject: String,
    conn: u64,
    replay: VecDeque<Arc<Event>>,
    rx: mpsc::Receiver<Arc<Event>>,
    ping: tokio::time::Interval,
    /// When the `drop_stream_every_secs` fault ends this stream.
    deadline: Option<Instant>,
    /// An event held back by `delay_events_ms`, and when it is due.
    held: Option<(Arc<Event>, Instant)>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.state
            .miaw
            .lock()
            .close_stream(&self.subject, self.conn);
    }
}

fn frame(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.id.to_string())
        .event(e.name)
        .data(&e.data)
}

async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Feed {
    /// The next frame, or `None` when the stream ends.
    async fn next(&mut self) -> Option<SseEvent> {
        if let Some(e) = self.replay.pop_front() {
            return Some(frame(&e));
        }
        let shutdown = self.state.miaw.shutdown.clone();
        loop {
            let due = self.held.as_ref().map(|(_, at)| *at);
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = until(self.deadline) => return None,
                _ = until(due) => {
                    let (e, _) = self.held.take()?;
                    return Some(frame(&e));
                }
                _ = self.ping.tick() => return Some(SseEvent::default().event("ping").data("0")),
                received = self.rx.recv(), if self.held.is_none() => {
                    let e = received?;
                    let delay = self.state.miaw.delay_events_ms.load(Ordering::Relaxed);
                    if delay == 0 {
                        return Some(frame(&e));
                    }
                    self.held = Some((e, Instant::now() + Duration::from_millis(delay)));
                }
            }
        }
    }
}

/// `GET /eventrouter/v1/sse` with `Authorization: Bearer`, `X-Org-Id` (15 or 18 characters)
/// and optionally `Last-Event-Id`.
pub(crate) async fn subscribe(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match open(state, &headers) {
        Ok(feed) => {
            let stream = futures_util::stream::unfold(feed, |mut feed| async move {
                let frame = feed.next().await?;
                Some((Ok::<_, Infallible>(frame), feed))
            });
            Sse::new(stream).into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn open(state: Arc<AppState>, headers: &HeaderMap) -> Result<Feed, MiawError> {
    let org = headers
        .get("x-org-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| MiawError::bad_request("The X-Org-Id header is required."))?
        .to_string();
    let claims = authenticate(&state, headers)?;
    if !same_org(&org, &state.config.org_id) || !same_org(&claims.org_id, &state.config.org_id) {
        return Err(MiawError::bad_request(
            "X-Org-Id does not name the org of the access token.",
        ));
    }
    let after = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) if v.trim().is_empty() => None,
        Some(Ok(v)) => Some(v.trim().parse::<u64>().map_err(|_| {
            MiawError::new(
                StatusCode::BAD_REQUEST,
                "Last-Event-Id must be an event id from this stream or the token answer.",
            )
        })?),
        Some(Err(_)) => return Err(MiawError::bad_request("Last-Event-Id is not valid text.")),
    };
    let config = &state.miaw.config;
    let (conn, replay, rx, drop_every) = {
        let mut inner = state.miaw.lock();
        if let Some(status) = inner.faults.take(Operation::Sse) {
            return Err(MiawError::injected(status));
        }
        let drop_every = inner.faults.drop_stream_every_secs;
        let (conn, replay, rx) =
            inner.open_stream(&claims.sub, &claims.jti, after, config.max_conversations);
        (conn, replay, rx, drop_every)
    };
    let period = Duration::from_secs(config.ping_secs);
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tracing::debug!(replayed = replay.len(), "MIAW stream opened");
    Ok(Feed {
        state: state.clone(),
        subject: claims.sub,
        conn,
        replay: replay.into(),
        rx,
        ping,
        deadline: drop_every.map(|s| Instant::now() + Duration::from_secs(s)),
        held: None,
    })
}
