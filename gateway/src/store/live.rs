//! Live sessions (MIAW): the conversation row with its token, stream cursor and
//! stream lease, and the queue of messages to the rep. Every stream event is
//! applied in one transaction with the cursor move, fenced by the lease: a
//! replica that lost the stream cannot write, and a replayed event finds its
//! effects already there (their ids are derived from the event).

use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
    Value as DbValue,
};
use serde_json::Value;

use super::entities::{live_message, live_session, session};
use super::jobs::{insert_job, numbered};
use super::outbox::{enqueue_delivery_in, event_row};
use super::{NewDelivery, Store, now_ms};
use crate::jobs::JobKind;

/// Where a live session stands (`live_sessions.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    /// Accepted; the conversation is being opened.
    Opening,
    /// The conversation is open and waiting for a rep.
    Waiting,
    /// A rep has joined.
    Active,
    /// The customer (or the API) asked to end it; the end is being sent.
    Closing,
    /// Over: the rep or the customer ended it.
    Ended,
    /// It became a Case instead (office hours, no agents, MIAW unavailable).
    Fallback,
}

impl LiveState {
    pub const STREAMING: [LiveState; 4] = [
        LiveState::Opening,
        LiveState::Waiting,
        LiveState::Active,
        LiveState::Closing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LiveState::Opening => "opening",
            LiveState::Waiting => "waiting",
            LiveState::Active => "active",
            LiveState::Closing => "closing",
            LiveState::Ended => "ended",
            LiveState::Fallback => "fallback",
        }
    }

    pub fn parse(s: &str) -> Option<LiveState> {
        [
            LiveState::Opening,
            LiveState::Waiting,
            LiveState::Active,
            LiveState::Closing,
            LiveState::Ended,
            LiveState::Fallback,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    /// Whether the customer can still write to the rep.
    pub fn accepts_messages(self) -> bool {
        matches!(
            self,
            LiveState::Opening | LiveState::Waiting | LiveState::Active
        )
    }
}

/// Kinds of `live_messages` rows.
pub mod message_kind {
    pub const OPENING: &str = "opening";
    pub const CUSTOMER: &str = "customer";
    pub const FILE: &str = "file";
    /// Handoff telling the rep something (a reply that could not be delivered).
    pub const NOTICE: &str = "notice";
}

/// A message to the rep, queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLiveMessage {
    pub id: String,
    pub kind: &'static str,
    pub text: String,
}

/// What accepting a live escalation writes besides the session.
#[derive(Debug, Clone)]
pub struct NewLive {
    pub conversation_id: String,
    pub deadline_at: i64,
    pub messages: Vec<NewLiveMessage>,
}

/// Everything one stream event changes, written with the cursor in one transaction.
#[derive(Debug, Default)]
pub struct Effects {
    pub state: Option<LiveState>,
    /// `Some(None)` clears the rep's name.
    pub rep_name: Option<Option<String>>,
    pub messaging_session_id: Option<String>,
    pub deliveries: Vec<NewDelivery>,
    pub events: Vec<(&'static str, Value)>,
    /// Live message ids Salesforce echoed back (sent for certain).
    pub echoed: Vec<String>,
    /// The session becomes a Case (its `create_case` job is queued).
    pub fallback: bool,
    /// The session's status, when it changes (`closed`).
    pub session_status: Option<&'static str>,
    /// Erase the token (the conversation is over).
    pub forget_token: bool,
}

/// What happened to a customer message.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    Queued,
    /// The session is not live (never was, or is over): the state it is in.
    NotLive(Option<LiveState>),
    /// The session's queue to the rep is full.
    Full,
}

impl Store {
    pub async fn live_session(
        &self,
        session_id: &str,
    ) -> Result<Option<live_session::Model>, DbErr> {
        live_session::Entity::find_by_id(session_id.to_string())
            .one(&self.db)
            .await
    }

    /// The live session by its MIAW conversation id.
    pub async fn live_session_by_conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<live_session::Model>, DbErr> {
        live_session::Entity::find()
            .filter(live_session::Column::ConversationId.eq(conversation_id))
            .one(&self.db)
            .await
    }

    /// Stores the end user's token (and, the first time, its `lastEventId` as the
    /// stream cursor, so the stream replays everything from before the conversation).
    pub async fn store_live_token(
        &self,
        session_id: &str,
        token: &str,
        expires_at: Option<i64>,
        last_event_id: Option<&str>,
    ) -> Result<(), DbErr> {
        let mut update = live_session::Entity::update_many()
            .col_expr(live_session::Column::Token, Expr::value(token))
            .col_expr(
                live_session::Column::TokenExpiresAt,
                Expr::value(expires_at),
            )
            .col_expr(live_session::Column::UpdatedAt, Expr::value(now_ms()));
        if let Some(id) = last_event_id {
            update = update.col_expr(
                live_session::Column::LastEventId,
                Expr::col(live_session::Column::LastEventId).if_null(id),
            );
        }
        update
            .filter(live_session::Column::SessionId.eq(session_id))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// The conversation exists: waiting for a rep. Queues the messages to the rep
    /// and tells the customer, once (only from `opening`).
    pub async fn mark_conversation_open(
        &self,
        session_id: &str,
        notices: &[NewDelivery],
        events: Vec<(&'static str, Value)>,
        max_attempts: u32,
    ) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let moved = live_session::Entity::update_many()
            .col_expr(
                live_session::Column::State,
                Expr::value(LiveState::Waiting.as_str()),
            )
            .col_expr(live_session::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(live_session::Column::SessionId.eq(session_id))
            .filter(live_session::Column::State.eq(LiveState::Opening.as_str()))
            .exec(&txn)
            .await?
            .rows_affected;
        if moved == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        set_session_status(&txn, session_id, "live").await?;
        for (kind, data) in events {
            event_row(session_id, kind, data).insert(&txn).await?;
        }
        for notice in notices {
            enqueue_delivery_in(&txn, notice, max_attempts).await?;
        }
        let send = JobKind::SendToRep {
            session_id: session_id.to_string(),
        };
        insert_job(&txn, &send, session_id, max_attempts).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// The live session becomes a Case: the route changes, a `create_case` job is
    /// queued and the `route.fallback` event says why — once.
    pub async fn fall_back_to_case(
        &self,
        session_id: &str,
        reason: &str,
        max_attempts: u32,
    ) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let done = fall_back_in(&txn, session_id, reason, None, max_attempts).await?;
        txn.commit().await?;
        Ok(done)
    }

    /// Queues a customer message (its parts) for the rep, if the session is live.
    pub async fn queue_customer_message(
        &self,
        session_id: &str,
        parts: &[NewLiveMessage],
        max_queued: usize,
        max_attempts: u32,
    ) -> Result<Queued, DbErr> {
        let txn = self.db.begin().await?;
        let queued = queue_customer_message_in(
            &txn,
            session_id,
            parts,
            max_queued,
            max_attempts,
            serde_json::Map::new(),
        )
        .await?;
        if queued == Queued::Queued {
            txn.commit().await?;
        } else {
            txn.rollback().await?;
        }
        Ok(queued)
    }

    /// Asks for the live session to end (customer or API): `closing`, with an
    /// `end_conversation` job. Answers the state it was in; only a live session moves.
    pub async fn request_live_close(
        &self,
        session_id: &str,
        why: &str,
        max_attempts: u32,
    ) -> Result<Option<LiveState>, DbErr> {
        let txn = self.db.begin().await?;
        let state = request_live_close_in(&txn, session_id, why, max_attempts).await?;
        if state.is_some_and(LiveState::accepts_messages) {
            txn.commit().await?;
        } else {
            txn.rollback().await?;
        }
        Ok(state)
    }

    /// The messages still to send to the rep, oldest first (at most `limit`).
    pub async fn queued_live_messages(
        &self,
        session_id: &str,
        limit: u64,
    ) -> Result<Vec<live_message::Model>, DbErr> {
        live_message::Entity::find()
            .filter(live_message::Column::SessionId.eq(session_id))
            .filter(live_message::Column::State.eq("queued"))
            .order_by_asc(live_message::Column::Seq)
            .limit(limit)
            .all(&self.db)
            .await
    }

    /// Customer messages sent to the rep since `since_ms` (the per-minute budget).
    pub async fn live_messages_sent_since(
        &self,
        session_id: &str,
        since_ms: i64,
    ) -> Result<u64, DbErr> {
        use sea_orm::PaginatorTrait;
        live_message::Entity::find()
            .filter(live_message::Column::SessionId.eq(session_id))
            .filter(live_message::Column::State.eq("sent"))
            .filter(live_message::Column::Kind.eq(message_kind::CUSTOMER))
            .filter(live_message::Column::UpdatedAt.gte(since_ms))
            .count(&self.db)
            .await
    }

    /// Counts an attempt at sending a message to the rep.
    pub async fn count_live_message_attempt(&self, id: &str) -> Result<(), DbErr> {
        live_message::Entity::update_many()
            .col_expr(
                live_message::Column::Attempts,
                Expr::col(live_message::Column::Attempts).add(1),
            )
            .filter(live_message::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Marks a message to the rep sent (or failed), with its event.
    pub async fn finish_live_message(
        &self,
        session_id: &str,
        id: &str,
        sent: bool,
        event: (&str, Value),
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        live_message::Entity::update_many()
            .col_expr(
                live_message::Column::State,
                Expr::value(if sent { "sent" } else { "failed" }),
            )
            .col_expr(live_message::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(live_message::Column::Id.eq(id))
            .filter(live_message::Column::State.eq("queued"))
            .exec(&txn)
            .await?;
        event_row(session_id, event.0, event.1).insert(&txn).await?;
        txn.commit().await
    }

    /// Ends the live session from our side (after the end was sent), telling the customer once.
    pub async fn end_live_session(
        &self,
        session_id: &str,
        effects: Effects,
        max_attempts: u32,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        write_effects(&txn, session_id, effects, max_attempts).await?;
        txn.commit().await
    }

    /// Claims up to `limit` live streams nobody holds (or whose holder's lease ran
    /// out) for `owner`. PostgreSQL skips rows other replicas are claiming.
    pub async fn claim_live_streams(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<live_session::Model>, DbErr> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let backend = self.backend();
        let lock = match backend {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let states = streaming_states();
        let sql = numbered(
            backend,
            &format!(
                "UPDATE live_sessions SET owner = $1, lease_until = $2 \
                 WHERE session_id IN (SELECT session_id FROM live_sessions \
                   WHERE state IN ({states}) AND token IS NOT NULL \
                     AND (owner IS NULL OR lease_until < $3) \
                   ORDER BY updated_at LIMIT $4{lock}) \
                 RETURNING session_id"
            ),
        );
        let stmt = Statement::from_sql_and_values(
            backend,
            sql,
            [
                DbValue::from(owner.to_string()),
                DbValue::from(now + lease_ms),
                DbValue::from(now),
                DbValue::from(limit as i64),
            ],
        );
        let rows = self.db.query_all_raw(stmt).await?;
        let ids: Vec<String> = rows
            .iter()
            .map(|row| row.try_get::<String>("", "session_id"))
            .collect::<Result<_, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        live_session::Entity::find()
            .filter(live_session::Column::SessionId.is_in(ids))
            .filter(live_session::Column::Owner.eq(owner))
            .all(&self.db)
            .await
    }

    /// Renews every lease `owner` holds that has not run out; answers the
    /// session ids still held.
    pub async fn renew_live_streams(
        &self,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Vec<String>, DbErr> {
        let now = now_ms();
        let backend = self.backend();
        let states = streaming_states();
        let sql = numbered(
            backend,
            &format!(
                "UPDATE live_sessions SET lease_until = $1 \
                 WHERE owner = $2 AND lease_until >= $3 AND state IN ({states}) \
                 RETURNING session_id"
            ),
        );
        let stmt = Statement::from_sql_and_values(
            backend,
            sql,
            [
                DbValue::from(now + lease_ms),
                DbValue::from(owner.to_string()),
                DbValue::from(now),
            ],
        );
        let rows = self.db.query_all_raw(stmt).await?;
        rows.iter()
            .map(|row| row.try_get::<String>("", "session_id"))
            .collect()
    }

    /// Lets go of a stream (shutdown, or the session ended).
    pub async fn release_live_stream(&self, session_id: &str, owner: &str) -> Result<(), DbErr> {
        live_session::Entity::update_many()
            .col_expr(
                live_session::Column::Owner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                live_session::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .filter(live_session::Column::SessionId.eq(session_id))
            .filter(live_session::Column::Owner.eq(owner))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Applies one stream event: its effects and the cursor move, in one
    /// transaction, only while `owner` holds the stream. `Ok(false)`: the lease
    /// is gone; nothing was written.
    pub async fn apply_stream_event(
        &self,
        session_id: &str,
        owner: &str,
        event_id: Option<&str>,
        effects: Effects,
        max_attempts: u32,
    ) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        let mut fence = live_session::Entity::update_many()
            .col_expr(live_session::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(live_session::Column::SessionId.eq(session_id))
            .filter(live_session::Column::Owner.eq(owner))
            .filter(live_session::Column::LeaseUntil.gte(now_ms()));
        if let Some(id) = event_id {
            fence = fence.col_expr(live_session::Column::LastEventId, Expr::value(id));
        }
        if fence.exec(&txn).await?.rows_affected == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        write_effects(&txn, session_id, effects, max_attempts).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Replaces the token after a renewal (continuation token).
    pub async fn replace_live_token(
        &self,
        session_id: &str,
        token: &str,
        expires_at: Option<i64>,
    ) -> Result<(), DbErr> {
        self.store_live_token(session_id, token, expires_at, None)
            .await
    }

    /// Live sessions per state (metrics, the bench).
    pub async fn count_live_sessions(&self, state: LiveState) -> Result<u64, DbErr> {
        use sea_orm::PaginatorTrait;
        live_session::Entity::find()
            .filter(live_session::Column::State.eq(state.as_str()))
            .count(&self.db)
            .await
    }
}

/// [`Store::queue_customer_message`] inside the caller's transaction: writes nothing unless
/// it answers [`Queued::Queued`]. `extra` is added to the `customer.message` event's data.
pub(super) async fn queue_customer_message_in(
    txn: &DatabaseTransaction,
    session_id: &str,
    parts: &[NewLiveMessage],
    max_queued: usize,
    max_attempts: u32,
    extra: serde_json::Map<String, Value>,
) -> Result<Queued, DbErr> {
    let state = live_state_in(txn, session_id).await?;
    if !state.is_some_and(LiveState::accepts_messages) {
        return Ok(Queued::NotLive(state));
    }
    let waiting = {
        use sea_orm::PaginatorTrait;
        live_message::Entity::find()
            .filter(live_message::Column::SessionId.eq(session_id))
            .filter(live_message::Column::State.eq("queued"))
            .count(txn)
            .await?
    };
    if waiting as usize + parts.len() > max_queued {
        return Ok(Queued::Full);
    }
    insert_live_messages(txn, session_id, parts).await?;
    let mut data = serde_json::Map::new();
    data.insert("parts".into(), parts.len().into());
    data.insert(
        "ids".into(),
        parts.iter().map(|p| Value::from(p.id.as_str())).collect(),
    );
    data.extend(extra);
    event_row(session_id, "customer.message", Value::Object(data))
        .insert(txn)
        .await?;
    let send = JobKind::SendToRep {
        session_id: session_id.to_string(),
    };
    insert_job(txn, &send, session_id, max_attempts).await?;
    Ok(Queued::Queued)
}

/// [`Store::request_live_close`] inside the caller's transaction: writes nothing unless the
/// state it answers accepts messages.
pub(super) async fn request_live_close_in(
    txn: &DatabaseTransaction,
    session_id: &str,
    why: &str,
    max_attempts: u32,
) -> Result<Option<LiveState>, DbErr> {
    let state = live_state_in(txn, session_id).await?;
    if !state.is_some_and(LiveState::accepts_messages) {
        return Ok(state);
    }
    live_session::Entity::update_many()
        .col_expr(
            live_session::Column::State,
            Expr::value(LiveState::Closing.as_str()),
        )
        .col_expr(live_session::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(live_session::Column::SessionId.eq(session_id))
        .exec(txn)
        .await?;
    event_row(
        session_id,
        "live.close_requested",
        serde_json::json!({"by": why}),
    )
    .insert(txn)
    .await?;
    let job = JobKind::EndConversation {
        session_id: session_id.to_string(),
    };
    insert_job(txn, &job, session_id, max_attempts).await?;
    Ok(state)
}

/// Where the session's live row stands, read inside the caller's transaction.
async fn live_state_in(
    txn: &DatabaseTransaction,
    session_id: &str,
) -> Result<Option<LiveState>, DbErr> {
    Ok(live_session::Entity::find_by_id(session_id.to_string())
        .one(txn)
        .await?
        .and_then(|l| LiveState::parse(&l.state)))
}

/// `'opening', 'waiting', …` (constants, never user input).
fn streaming_states() -> String {
    LiveState::STREAMING
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn insert_live_messages(
    txn: &DatabaseTransaction,
    session_id: &str,
    parts: &[NewLiveMessage],
) -> Result<(), DbErr> {
    let t = now_ms();
    for part in parts {
        live_message::ActiveModel {
            id: Set(part.id.clone()),
            session_id: Set(session_id.to_string()),
            kind: Set(part.kind.to_string()),
            text: Set(part.text.clone()),
            state: Set("queued".into()),
            attempts: Set(0),
            created_at: Set(t),
            updated_at: Set(t),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// The live row and opening messages of a newly accepted live escalation.
pub(super) async fn insert_live_session(
    txn: &DatabaseTransaction,
    session_id: &str,
    live: &NewLive,
) -> Result<(), DbErr> {
    let t = now_ms();
    live_session::ActiveModel {
        session_id: Set(session_id.to_string()),
        conversation_id: Set(live.conversation_id.clone()),
        token: Set(None),
        token_expires_at: Set(None),
        last_event_id: Set(None),
        state: Set(LiveState::Opening.as_str().into()),
        rep_name: Set(None),
        owner: Set(None),
        lease_until: Set(None),
        deadline_at: Set(live.deadline_at),
        created_at: Set(t),
        updated_at: Set(t),
    }
    .insert(txn)
    .await?;
    insert_live_messages(txn, session_id, &live.messages).await
}

async fn set_session_status<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    status: &str,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::Status, Expr::value(status))
        .col_expr(session::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(session::Column::Id.eq(session_id))
        .exec(db)
        .await
        .map(|_| ())
}

async fn fall_back_in(
    txn: &DatabaseTransaction,
    session_id: &str,
    reason: &str,
    owner: Option<&str>,
    max_attempts: u32,
) -> Result<bool, DbErr> {
    let mut update = live_session::Entity::update_many()
        .col_expr(
            live_session::Column::State,
            Expr::value(LiveState::Fallback.as_str()),
        )
        .col_expr(live_session::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(live_session::Column::SessionId.eq(session_id))
        .filter(
            Condition::any()
                .add(live_session::Column::State.eq(LiveState::Opening.as_str()))
                .add(live_session::Column::State.eq(LiveState::Waiting.as_str())),
        );
    if let Some(owner) = owner {
        update = update.filter(live_session::Column::Owner.eq(owner));
    }
    if update.exec(txn).await?.rows_affected == 0 {
        return Ok(false);
    }
    session::Entity::update_many()
        .col_expr(session::Column::Route, Expr::value("case"))
        .col_expr(session::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
        .filter(session::Column::Id.eq(session_id))
        .exec(txn)
        .await?;
    event_row(
        session_id,
        "route.fallback",
        serde_json::json!({"preferred": "messaging", "route": "case", "reason": reason}),
    )
    .insert(txn)
    .await?;
    let job = JobKind::CreateCase {
        session_id: session_id.to_string(),
    };
    insert_job(txn, &job, session_id, max_attempts).await?;
    let end = JobKind::EndConversation {
        session_id: session_id.to_string(),
    };
    insert_job(txn, &end, session_id, max_attempts).await?;
    Ok(true)
}

async fn write_effects(
    txn: &DatabaseTransaction,
    session_id: &str,
    effects: Effects,
    max_attempts: u32,
) -> Result<(), DbErr> {
    if effects.fallback {
        let reason = effects
            .events
            .iter()
            .find(|(kind, _)| *kind == "live.routing_failed")
            .and_then(|(_, data)| data.get("reason").and_then(Value::as_str))
            .unwrap_or("live messaging could not route the conversation")
            .to_string();
        fall_back_in(txn, session_id, &reason, None, max_attempts).await?;
    }
    let mut live = live_session::Entity::update_many()
        .col_expr(live_session::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(live_session::Column::SessionId.eq(session_id));
    if let Some(state) = effects.state {
        live = live.col_expr(live_session::Column::State, Expr::value(state.as_str()));
        if state == LiveState::Active || state == LiveState::Waiting {
            // Never revive a session that is over.
            live = live.filter(live_session::Column::State.is_in([
                LiveState::Opening.as_str(),
                LiveState::Waiting.as_str(),
                LiveState::Active.as_str(),
            ]));
        }
    }
    if let Some(rep) = effects.rep_name {
        live = live.col_expr(live_session::Column::RepName, Expr::value(rep));
    }
    if effects.forget_token {
        live = live
            .col_expr(
                live_session::Column::Token,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                live_session::Column::Owner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                live_session::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            );
    }
    live.exec(txn).await?;
    if let Some(id) = &effects.messaging_session_id {
        session::Entity::update_many()
            .col_expr(
                session::Column::SalesforceMessagingSessionId,
                Expr::value(id.as_str()),
            )
            .col_expr(session::Column::UpdatedAt, Expr::value(chrono::Utc::now()))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::SalesforceMessagingSessionId.is_null())
            .exec(txn)
            .await?;
    }
    if let Some(status) = effects.session_status {
        set_session_status(txn, session_id, status).await?;
    }
    if !effects.echoed.is_empty() {
        live_message::Entity::update_many()
            .col_expr(live_message::Column::State, Expr::value("sent"))
            .col_expr(live_message::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(live_message::Column::Id.is_in(effects.echoed.clone()))
            .filter(live_message::Column::State.eq("queued"))
            .exec(txn)
            .await?;
    }
    for (kind, data) in effects.events {
        event_row(session_id, kind, data).insert(txn).await?;
    }
    for delivery in &effects.deliveries {
        enqueue_delivery_in(txn, delivery, max_attempts).await?;
    }
    Ok(())
}
