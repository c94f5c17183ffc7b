//! The `send_to_rep` handler: posts the session's queued messages to the
//! conversation, oldest first, each under its own message id (the same on every
//! attempt; Salesforce echoes it back on the stream, which marks it sent too).
//! A message an earlier attempt may have sent is looked up in the conversation's
//! newest entries before it is sent again.
//! At most `miaw.messages_per_minute` customer messages a minute per
//! conversation: beyond that, and on 429, the rest wait (queued, never refused).

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use salesforce::miaw::{ConversationId, EntriesQuery, MiawError, OutgoingFile, OutgoingMessage};

use crate::escalation::worker::{Outcome, Worker};
use crate::store::{ClaimedJob, LiveState, message_kind, now_ms};

/// Messages sent per attempt at most; the job runs again for the rest.
const BATCH: u64 = 50;

impl Worker {
    pub(crate) async fn send_to_rep(&self, job: &ClaimedJob, session_id: &str) -> Outcome {
        let Some(live) = self.live.clone() else {
            return Outcome::Dead {
                error: "live messaging is not configured".into(),
            };
        };
        let row = match self.store.live_session(session_id).await {
            Ok(Some(row)) => row,
            Ok(None) => return Outcome::Done,
            Err(e) => return self.db_retry(job, e),
        };
        match LiveState::parse(&row.state) {
            Some(LiveState::Waiting | LiveState::Active) => {}
            // Not open yet: the opening job queues this session's sending again
            // when it is; wait without spending attempts meanwhile.
            Some(LiveState::Opening) => {
                return Outcome::Postpone {
                    after: Duration::from_secs(1),
                    error: "the conversation is not open yet".into(),
                };
            }
            _ => return Outcome::Done,
        }
        let Some(token) = row.token.clone() else {
            return Outcome::Done;
        };
        let conversation = match ConversationId::parse(&row.conversation_id) {
            Ok(c) => c,
            Err(e) => {
                return Outcome::Dead {
                    error: format!("stored conversation id: {e}"),
                };
            }
        };
        let queued = match self.store.queued_live_messages(session_id, BATCH).await {
            Ok(q) => q,
            Err(e) => return self.db_retry(job, e),
        };
        let budget = self.config.miaw.messages_per_minute as u64;
        let window_start = now_ms() - 60_000;
        let mut sent_in_window = match self
            .store
            .live_messages_sent_since(session_id, window_start)
            .await
        {
            Ok(n) => n,
            Err(e) => return self.db_retry(job, e),
        };
        let more = queued.len() as u64 == BATCH;
        for message in queued {
            if message.kind != message_kind::FILE && sent_in_window >= budget {
                tracing::info!("Per-conversation message budget spent; the rest wait.");
                return Outcome::Postpone {
                    after: Duration::from_secs(60 / budget.max(1)).max(Duration::from_secs(1)),
                    error: "per-conversation message budget spent (miaw.messages_per_minute)"
                        .into(),
                };
            }
            // An earlier attempt may have reached Salesforce with its answer lost:
            // read before resending (MIAW documents no dedupe on the message id).
            if message.attempts > 0 && message.kind != message_kind::FILE {
                let recent = EntriesQuery {
                    limit: Some(50),
                    direction_from_end: true,
                };
                match live
                    .client
                    .list_entries(&token, &conversation, &recent)
                    .await
                {
                    Ok(entries) if entries.iter().any(|e| e.id == message.id) => {
                        let event = (
                            "rep.sent",
                            json!({"message_id": message.id, "kind": message.kind, "found": true}),
                        );
                        if let Err(e) = self
                            .store
                            .finish_live_message(session_id, &message.id, true, event)
                            .await
                        {
                            return self.db_retry(job, e);
                        }
                        sent_in_window += 1;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) if e.is_retryable() => {
                        return Outcome::Retry {
                            after: self.backoff(job.attempt, None),
                            error: e.to_string(),
                        };
                    }
                    // Cannot tell (e.g. the token expired): send; the next attempt reads again.
                    Err(_) => {}
                }
            }
            if let Err(e) = self.store.count_live_message_attempt(&message.id).await {
                return self.db_retry(job, e);
            }
            let id = match Uuid::parse_str(&message.id) {
                Ok(id) => id,
                Err(e) => {
                    return Outcome::Dead {
                        error: format!("stored message id: {e}"),
                    };
                }
            };
            let result = if message.kind == message_kind::FILE {
                let file = OutgoingFile {
                    id,
                    file_name: format!("transcript-{}.txt", sanitize(session_id)),
                    content_type: "text/plain; charset=utf-8".into(),
                    bytes: message.text.clone().into_bytes(),
                    text: Some("The whole conversation so far".into()),
                };
                live.client
                    .send_file(&token, &conversation, &file)
                    .await
                    .map(|()| false)
            } else {
                let outgoing = OutgoingMessage {
                    id,
                    text: message.text.clone(),
                    routing_attributes: None,
                    language: None,
                };
                live.client
                    .send_message(&token, &conversation, &outgoing)
                    .await
                    .map(|sent| sent.reopened)
            };
            match result {
                Ok(reopened) => {
                    if message.kind != message_kind::FILE {
                        sent_in_window += 1;
                    }
                    let event = (
                        "rep.sent",
                        json!({"message_id": message.id, "kind": message.kind, "reopened": reopened}),
                    );
                    if let Err(e) = self
                        .store
                        .finish_live_message(session_id, &message.id, true, event)
                        .await
                    {
                        return self.db_retry(job, e);
                    }
                }
                Err(MiawError::RateLimited { retry_after }) => {
                    return Outcome::Postpone {
                        after: self.backoff(job.attempt, retry_after),
                        error: "live messaging is rate-limiting this conversation".into(),
                    };
                }
                Err(MiawError::Unauthorized { .. }) => {
                    return match live.client.continuation_token(&token).await {
                        Ok(renewed) => match self.keep_token(session_id, &renewed, false).await {
                            Ok(()) => Outcome::Retry {
                                after: Duration::from_millis(10),
                                error: "the token expired; renewed".into(),
                            },
                            Err(e) => Outcome::Retry {
                                after: self.backoff(job.attempt, None),
                                error: e.to_string(),
                            },
                        },
                        Err(e) => Outcome::Retry {
                            after: self.backoff(job.attempt, None),
                            error: format!("the token expired and could not be renewed: {e}"),
                        },
                    };
                }
                Err(e) if e.is_retryable() => {
                    return Outcome::Retry {
                        after: self.backoff(job.attempt, None),
                        error: e.to_string(),
                    };
                }
                Err(e) => {
                    // Refused for good (closed conversation, bad content): visible
                    // on the session, and the rest of the queue goes on.
                    let event = (
                        "rep.send_failed",
                        json!({"message_id": message.id, "error": e.to_string()}),
                    );
                    if let Err(e) = self
                        .store
                        .finish_live_message(session_id, &message.id, false, event)
                        .await
                    {
                        return self.db_retry(job, e);
                    }
                }
            }
        }
        if more {
            return Outcome::Retry {
                after: Duration::from_millis(1),
                error: "more messages queued".into(),
            };
        }
        Outcome::Done
    }
}

/// A session id as a file name part (session ids are already `A-Za-z0-9_.:-`).
fn sanitize(session_id: &str) -> String {
    session_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
