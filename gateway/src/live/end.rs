//! The `end_conversation` handler: ends the messaging session and closes the
//! conversation on Salesforce's side (either may already be over: that is
//! success), then — for a session the customer ended — tells the customer once
//! and forgets the token. A session that fell back to a Case only has its
//! conversation closed.

use salesforce::miaw::{ConversationId, MiawError};

use crate::escalation::request::EscalationPayload;
use crate::escalation::worker::{Outcome, Worker};
use crate::store::{ClaimedJob, Effects, LiveState};

impl Worker {
    pub(crate) async fn end_conversation(&self, job: &ClaimedJob, session_id: &str) -> Outcome {
        let (session, row) = match self.live_rows(session_id).await {
            Ok(Some(rows)) => rows,
            Ok(None) => return Outcome::Done,
            Err(e) => return self.db_retry(job, e),
        };
        let state = LiveState::parse(&row.state);
        if let (Some(live), Some(token)) = (self.live.clone(), row.token.clone()) {
            let conversation = match ConversationId::parse(&row.conversation_id) {
                Ok(c) => c,
                Err(e) => {
                    return Outcome::Dead {
                        error: format!("stored conversation id: {e}"),
                    };
                }
            };
            for step in [true, false] {
                let result = if step {
                    live.client.end_session(&token, &conversation).await
                } else {
                    live.client.close_conversation(&token, &conversation).await
                };
                match result {
                    Ok(()) => {}
                    // Already ended or closed, or never opened: nothing left to end.
                    Err(MiawError::Rejected { .. } | MiawError::SessionEnded) => {}
                    Err(e) if e.is_retryable() || matches!(e, MiawError::Unauthorized { .. }) => {
                        return Outcome::Retry {
                            after: self.backoff(job.attempt, None),
                            error: e.to_string(),
                        };
                    }
                    Err(e) => {
                        return Outcome::Dead {
                            error: e.to_string(),
                        };
                    }
                }
            }
        }
        let effects = match state {
            Some(LiveState::Closing) => {
                let payload: Option<EscalationPayload> =
                    serde_json::from_str(&session.payload).ok();
                match payload {
                    Some(payload) => self.with_event_context(&session, &payload, &row, "", |ctx| {
                        ctx.closed_effects("customer")
                    }),
                    None => Effects {
                        state: Some(LiveState::Ended),
                        session_status: Some("closed"),
                        forget_token: true,
                        ..Effects::default()
                    },
                }
            }
            _ => Effects {
                forget_token: true,
                ..Effects::default()
            },
        };
        match self
            .store
            .end_live_session(session_id, effects, self.config.worker.max_attempts)
            .await
        {
            Ok(()) => {
                self.wake.notify_one();
                self.feed.publish(session_id);
                Outcome::Done
            }
            Err(e) => self.db_retry(job, e),
        }
    }
}
