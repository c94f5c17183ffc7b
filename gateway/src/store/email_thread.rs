//! A session's email thread: the `Message-ID`s of both directions (`email_messages`), the
//! reply token of its `Reply-To` address (`sessions.reply_token`), and the way an email
//! delivery ends (its `Message-ID` recorded with the `sent` state; a failure noted on the Case).

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use serde_json::Value;

use super::case_notes::enqueue_case_note_in;
use super::outbox::{DeliveryState, finish_delivery_attempt_in};
use super::{Store, email_message, now_ms, session};

/// Thread ids read for one reply at most (the newest): `References` keeps the first and the
/// last ten anyway.
pub const THREAD_READ_LIMIT: u64 = 50;

/// Which way a thread message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailDirection {
    /// The customer's.
    In,
    /// Ours.
    Out,
}

impl EmailDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

/// A case note to queue with a delivery's failure.
#[derive(Debug, Clone)]
pub struct FailureNote<'a> {
    pub note_id: &'a str,
    pub kind: &'a str,
    pub body: &'a str,
}

impl Store {
    /// The newest [`THREAD_READ_LIMIT`] messages of a session's thread, oldest first.
    pub async fn email_thread(&self, session_id: &str) -> Result<Vec<email_message::Model>, DbErr> {
        let mut rows = email_message::Entity::find()
            .filter(email_message::Column::SessionId.eq(session_id))
            .order_by_desc(email_message::Column::Id)
            .limit(THREAD_READ_LIMIT)
            .all(&self.db)
            .await?;
        rows.reverse();
        Ok(rows)
    }

    /// Records a `Message-ID` of a session's thread; one already recorded for the session
    /// writes nothing and returns `false`.
    pub async fn record_email_message(
        &self,
        session_id: &str,
        message_id: &str,
        direction: EmailDirection,
    ) -> Result<bool, DbErr> {
        record_email_message_in(&self.db, session_id, message_id, direction).await
    }

    /// The session's reply token, storing `candidate` when it has none yet. The write is
    /// conditional (`… WHERE reply_token IS NULL`), so deliveries racing for a first token
    /// agree on whichever was stored first. `None` when the session does not exist.
    pub async fn ensure_reply_token(
        &self,
        session_id: &str,
        candidate: &str,
    ) -> Result<Option<String>, DbErr> {
        session::Entity::update_many()
            .col_expr(session::Column::ReplyToken, Expr::value(candidate))
            .filter(session::Column::Id.eq(session_id))
            .filter(session::Column::ReplyToken.is_null())
            .exec(&self.db)
            .await?;
        Ok(session::Entity::find_by_id(session_id.to_string())
            .select_only()
            .column(session::Column::ReplyToken)
            .into_tuple::<Option<String>>()
            .one(&self.db)
            .await?
            .flatten())
    }

    /// Marks an email delivery sent with its `Message-ID` (the provider id) and records that
    /// id in the session's thread (direction `out`), with the `delivery.sent` event, in one
    /// transaction.
    pub async fn finish_email_sent(
        &self,
        delivery_id: &str,
        session_id: &str,
        message_id: &str,
        data: Value,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        finish_delivery_attempt_in(
            &txn,
            delivery_id,
            DeliveryState::Sent,
            Some(message_id),
            None,
            Some((session_id, "delivery.sent", data)),
        )
        .await?;
        record_email_message_in(&txn, session_id, message_id, EmailDirection::Out).await?;
        txn.commit().await
    }

    /// Marks a delivery failed with its `delivery.failed` event and, when given, queues a note
    /// on the session's Case about it, in one transaction (the note id makes a second failure
    /// of the same delivery write no second note).
    pub async fn finish_delivery_failed_with_note(
        &self,
        delivery_id: &str,
        session_id: &str,
        error: &str,
        data: Value,
        note: Option<FailureNote<'_>>,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        if let Some(note) = note {
            enqueue_case_note_in(&txn, session_id, note.note_id, note.kind, note.body).await?;
        }
        finish_delivery_attempt_in(
            &txn,
            delivery_id,
            DeliveryState::Failed,
            None,
            Some(error),
            Some((session_id, "delivery.failed", data)),
        )
        .await?;
        txn.commit().await
    }
}

async fn record_email_message_in<C: ConnectionTrait>(
    db: &C,
    session_id: &str,
    message_id: &str,
    direction: EmailDirection,
) -> Result<bool, DbErr> {
    let inserted = email_message::Entity::insert(email_message::ActiveModel {
        session_id: Set(session_id.to_string()),
        message_id: Set(message_id.to_string()),
        direction: Set(direction.as_str().into()),
        created_at: Set(now_ms()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            email_message::Column::SessionId,
            email_message::Column::MessageId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(inserted > 0)
}
