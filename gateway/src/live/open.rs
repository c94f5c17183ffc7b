//! The `open_conversation` handler: the end user's token (stored before
//! anything else, so a retry and the stream use the same end user), then the
//! conversation with its routing attributes under the session's UUIDv5 id, so a
//! retry can never open a second one. Then the session waits for a rep: the
//! messages to the rep are queued and the customer is told. MIAW unavailable
//! past `miaw.open_deadline_secs`, or refusing the conversation, makes a Case.

use serde_json::json;

use salesforce::miaw::{AccessToken, ConversationId, MiawError};
use secrecy::ExposeSecret;

use crate::escalation::mapper::live::{self as mapping, EventContext};
use crate::escalation::request::EscalationPayload;
use crate::escalation::worker::{Outcome, Worker};
use crate::live::Live;
use crate::store::{ClaimedJob, LiveState, live_session, now_ms, session};

impl Worker {
    pub(crate) async fn open_conversation(&self, job: &ClaimedJob, session_id: &str) -> Outcome {
        let (session, row) = match self.live_rows(session_id).await {
            Ok(Some(rows)) => rows,
            Ok(None) => return Outcome::Done,
            Err(e) => return self.db_retry(job, e),
        };
        if LiveState::parse(&row.state) != Some(LiveState::Opening) {
            return Outcome::Done;
        }
        let Some(live) = self.live.clone() else {
            return self
                .fall_back(job, session_id, "live messaging is not configured")
                .await;
        };
        if now_ms() > row.deadline_at {
            return self
                .fall_back(
                    job,
                    session_id,
                    "live messaging stayed unavailable past miaw.open_deadline_secs",
                )
                .await;
        }
        let payload: EscalationPayload = match serde_json::from_str(&session.payload) {
            Ok(p) => p,
            Err(e) => {
                return Outcome::Dead {
                    error: format!("the stored escalation does not parse: {e}"),
                };
            }
        };
        let token = match self.live_token(&live, &row, &payload).await {
            Ok(token) => token,
            Err(e) => return self.open_failed(job, session_id, e).await,
        };
        let conversation = ConversationId::for_session(session_id);
        let authenticated = payload.verified_subject.is_some() && live.signer.is_some();
        let (attributes, dropped) = mapping::routing_attributes(
            session_id,
            &session.channel,
            &payload,
            &self.config.miaw,
            authenticated,
        );
        let language = crate::live::salesforce_language(&payload.conversation.language);
        if let Err(e) = live
            .client
            .create_conversation(&token, &conversation, &attributes, Some(&language))
            .await
        {
            return self.open_failed(job, session_id, e).await;
        }
        let mut events = vec![(
            "live.opened",
            json!({
                "conversation_id": conversation.to_string(),
                "routing_attributes": attributes.keys().collect::<Vec<_>>(),
                "consumer_type": if authenticated { "authenticated" } else { "anonymous" },
            }),
        )];
        if !dropped.is_empty() {
            events.push((
                "routing.attributes_dropped",
                mapping::dropped_attributes_event(&dropped),
            ));
        }
        let notices =
            self.with_event_context(&session, &payload, &row, "", |ctx| ctx.opened_notices());
        match self
            .store
            .mark_conversation_open(
                session_id,
                &notices,
                events,
                self.config.worker.max_attempts,
            )
            .await
        {
            Ok(_) => {
                self.wake.notify_one();
                self.feed.publish(session_id);
                tracing::info!("Live conversation opened.");
                Outcome::Done
            }
            Err(e) => self.db_retry(job, e),
        }
    }

    /// The session's token: the stored one (renewed when it is about to
    /// expire), or a new one — stored before it is used.
    async fn live_token(
        &self,
        live: &Live,
        row: &live_session::Model,
        payload: &EscalationPayload,
    ) -> Result<String, MiawError> {
        if let Some(token) = &row.token {
            // Good for at least the calls of this attempt; a 401 renews it anyway.
            let fresh = row
                .token_expires_at
                .is_none_or(|exp| exp * 1000 > now_ms() + 1_000);
            if fresh {
                return Ok(token.clone());
            }
            let renewed = live.client.continuation_token(token).await?;
            self.keep_token(&row.session_id, &renewed, false).await?;
            return Ok(renewed.token.expose_secret().to_string());
        }
        let token = match (&payload.verified_subject, &live.signer) {
            (Some(subject), Some(signer)) => {
                let identity = signer.sign(subject)?;
                live.client.authenticated_token(&identity).await?
            }
            _ => live.client.unauthenticated_token().await?,
        };
        self.keep_token(&row.session_id, &token, true).await?;
        // The stream starts now, before the conversation exists: nothing it
        // says is missed (it replays from the token's lastEventId anyway).
        self.streams_wake.notify_one();
        Ok(token.token.expose_secret().to_string())
    }

    pub(crate) async fn keep_token(
        &self,
        session_id: &str,
        token: &AccessToken,
        first: bool,
    ) -> Result<(), MiawError> {
        self.store
            .store_live_token(
                session_id,
                token.token.expose_secret(),
                token.expires_at,
                if first {
                    token.last_event_id.as_deref()
                } else {
                    None
                },
            )
            .await
            .map_err(|e| MiawError::Unavailable {
                status: None,
                message: format!("could not store the token: {e}"),
            })
    }

    async fn open_failed(&self, job: &ClaimedJob, session_id: &str, error: MiawError) -> Outcome {
        if error.is_retryable() {
            let after = match &error {
                MiawError::RateLimited { retry_after } => self.backoff(job.attempt, *retry_after),
                _ => self.backoff(job.attempt, None),
            };
            let _ = self
                .store
                .add_event(
                    session_id,
                    "live.open_failed",
                    json!({"attempt": job.attempt, "error": error.to_string(), "retrying": true}),
                )
                .await;
            // Waiting spends no attempt: the deadline decides when to stop.
            return Outcome::Postpone {
                after,
                error: error.to_string(),
            };
        }
        let reason = format!("live messaging refused the conversation: {error}");
        self.fall_back(job, session_id, &reason).await
    }

    async fn fall_back(&self, job: &ClaimedJob, session_id: &str, reason: &str) -> Outcome {
        match self
            .store
            .fall_back_to_case(session_id, reason, self.config.worker.max_attempts)
            .await
        {
            Ok(_) => {
                tracing::info!("Live session falls back to a Case.");
                self.wake.notify_one();
                Outcome::Done
            }
            Err(e) => self.db_retry(job, e),
        }
    }

    pub(crate) fn db_retry(&self, job: &ClaimedJob, e: sea_orm::DbErr) -> Outcome {
        Outcome::Retry {
            after: self.backoff(job.attempt, None),
            error: format!("database: {e}"),
        }
    }

    /// The session and its live row.
    pub(crate) async fn live_rows(
        &self,
        session_id: &str,
    ) -> Result<Option<(session::Model, live_session::Model)>, sea_orm::DbErr> {
        let Some(session) = self.store.session(session_id).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .live_session(session_id)
            .await?
            .map(|row| (session, row)))
    }

    /// Runs `f` with the mapping context of a session (the channel that delivers
    /// for it, its language, reply target and the localized texts).
    pub(crate) fn with_event_context<T>(
        &self,
        session: &session::Model,
        payload: &EscalationPayload,
        row: &live_session::Model,
        event_id: &str,
        f: impl FnOnce(&EventContext<'_>) -> T,
    ) -> T {
        // The customer is told through the adapter that carries this channel's messages
        // (voice: the caller's SMS); none that delivers: nothing is queued.
        let deliverer = crate::outbox::deliverer(&self.channels, &session.channel).ok();
        let capabilities = deliverer
            .as_ref()
            .map(|c| c.capabilities())
            .unwrap_or_else(channels::Capabilities::receive_only);
        let deliverer_name = deliverer
            .as_ref()
            .map_or_else(|| session.channel.clone(), |c| c.kind().to_string());
        let fallback_messages;
        let messages = match &self.live {
            Some(live) => &live.messages,
            None => {
                fallback_messages =
                    crate::live::messages::LocalizedMessages::new(&self.config.miaw.messages);
                &fallback_messages
            }
        };
        let ctx = EventContext {
            event_id,
            session_id: &session.id,
            channel: &deliverer_name,
            language: &session.language,
            state: LiveState::parse(&row.state).unwrap_or(LiveState::Ended),
            rep_name: row.rep_name.as_deref(),
            conversation_id: &row.conversation_id,
            target: payload.reply_to.as_ref(),
            capabilities: &capabilities,
            messages,
            end_keyword: &self.config.miaw.end_keyword,
        };
        f(&ctx)
    }
}
