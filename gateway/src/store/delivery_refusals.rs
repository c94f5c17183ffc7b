//! Deliveries the customer's side refuses for a reason only the customer can change: they
//! opted out (SMS `STOP`), or the channel's reply window is closed (WhatsApp's 24 hours); and
//! rep replies whose outcome is unknown (not resent, so the rep must know).
//! Whether an address opted out, and the failure written with what the rep is told (a
//! message queued into the live conversation, or an internal note on the Case) in one
//! transaction, so a retried job tells the rep nothing twice.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use serde_json::Value;

use super::case_notes::enqueue_case_note_in;
use super::entities::{live_message, live_session, opt_out};
use super::jobs::insert_job;
use super::live::{LiveState, NewLiveMessage};
use super::outbox::{DeliveryState, event_row, finish_delivery_attempt_in};
use super::{FailureNote, Store, now_ms};
use crate::jobs::JobKind;

/// How the rep is to be told about a refused delivery.
#[derive(Debug, Clone)]
pub enum RepNoticeWrite<'a> {
    /// A message into the session's live conversation, queued only while the live session
    /// still accepts messages (its id derived from the delivery: queued once).
    Conversation(NewLiveMessage),
    /// An internal note on the session's Case (its id derived from the delivery: once).
    CaseNote(FailureNote<'a>),
    /// Not told, and why (a system message, no live conversation and no Case).
    NotTold(&'a str),
}

/// What came of telling the rep (the `rep_told` of the `delivery.failed` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepTold {
    /// Queued into the live conversation now.
    Conversation,
    /// Queued as a note on the Case now.
    CaseNote,
    /// An earlier attempt at this delivery already told the rep.
    Already,
    /// Not told.
    No,
}

impl RepTold {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conversation => "conversation",
            Self::CaseNote => "case_note",
            Self::Already => "already",
            Self::No => "no",
        }
    }
}

/// One refused delivery, as it is recorded.
#[derive(Debug, Clone)]
pub struct Refused<'a> {
    pub delivery_id: &'a str,
    pub session_id: &'a str,
    /// The delivery's `last_error`.
    pub error: &'a str,
    /// The `delivery.failed` event's data; `rep_told` (and `rep_not_told` with the reason)
    /// are added.
    pub data: Value,
    pub notice: RepNoticeWrite<'a>,
    /// `(channel, address)` to record as opted out (the provider said so).
    pub opt_out: Option<(&'a str, &'a str)>,
    /// Attempts of the `send_to_rep` job a conversation notice queues.
    pub max_attempts: u32,
}

impl Store {
    /// Whether `address` opted out of messages on `channel` (the delivering channel's name).
    pub async fn opted_out(&self, channel: &str, address: &str) -> Result<bool, DbErr> {
        Ok(opt_out::Entity::find()
            .filter(opt_out::Column::Channel.eq(channel))
            .filter(opt_out::Column::Address.eq(address))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Marks the delivery failed with its `delivery.failed` event, records the opt-out when
    /// given, and tells the rep as `refused.notice` says — in one transaction. Answers what
    /// came of telling the rep.
    pub async fn finish_delivery_refused(&self, refused: Refused<'_>) -> Result<RepTold, DbErr> {
        let txn = self.db.begin().await?;
        if let Some((channel, address)) = refused.opt_out {
            record_opt_out_in(&txn, channel, address).await?;
        }
        let (told, why_not) = match &refused.notice {
            RepNoticeWrite::Conversation(message) => {
                queue_rep_notice_in(&txn, refused.session_id, message, refused.max_attempts).await?
            }
            RepNoticeWrite::CaseNote(note) => {
                let queued = enqueue_case_note_in(
                    &txn,
                    refused.session_id,
                    note.note_id,
                    note.kind,
                    note.body,
                )
                .await?;
                let told = if queued {
                    RepTold::CaseNote
                } else {
                    RepTold::Already
                };
                (told, None)
            }
            RepNoticeWrite::NotTold(reason) => (RepTold::No, Some(*reason)),
        };
        let mut data = refused.data;
        if let Value::Object(map) = &mut data {
            map.insert("rep_told".into(), told.as_str().into());
            if let Some(reason) = why_not {
                map.insert("rep_not_told".into(), reason.into());
            }
        }
        finish_delivery_attempt_in(
            &txn,
            refused.delivery_id,
            DeliveryState::Failed,
            None,
            Some(refused.error),
            Some((refused.session_id, "delivery.failed", data)),
        )
        .await?;
        txn.commit().await?;
        Ok(told)
    }
}

/// Records `(channel, address)` as opted out; an existing row keeps its time.
async fn record_opt_out_in(
    txn: &DatabaseTransaction,
    channel: &str,
    address: &str,
) -> Result<(), DbErr> {
    opt_out::Entity::insert(opt_out::ActiveModel {
        channel: Set(channel.to_string()),
        address: Set(address.to_string()),
        opted_out_at: Set(now_ms()),
    })
    .on_conflict(
        OnConflict::columns([opt_out::Column::Channel, opt_out::Column::Address])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Queues `message` to the rep with a `send_to_rep` job, while the session's live
/// conversation accepts messages; a message id already queued writes nothing.
async fn queue_rep_notice_in(
    txn: &DatabaseTransaction,
    session_id: &str,
    message: &NewLiveMessage,
    max_attempts: u32,
) -> Result<(RepTold, Option<&'static str>), DbErr> {
    let state = live_session::Entity::find_by_id(session_id.to_string())
        .one(txn)
        .await?
        .and_then(|l| LiveState::parse(&l.state));
    if !state.is_some_and(LiveState::accepts_messages) {
        return Ok((RepTold::No, Some("the live conversation is over")));
    }
    let t = now_ms();
    let inserted = live_message::Entity::insert(live_message::ActiveModel {
        id: Set(message.id.clone()),
        session_id: Set(session_id.to_string()),
        kind: Set(message.kind.to_string()),
        text: Set(message.text.clone()),
        state: Set("queued".into()),
        attempts: Set(0),
        created_at: Set(t),
        updated_at: Set(t),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(live_message::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    if inserted == 0 {
        return Ok((RepTold::Already, None));
    }
    event_row(
        session_id,
        "rep.notice_queued",
        serde_json::json!({"message_id": message.id}),
    )
    .insert(txn)
    .await?;
    let send = JobKind::SendToRep {
        session_id: session_id.to_string(),
    };
    insert_job(txn, &send, session_id, max_attempts).await?;
    Ok((RepTold::Conversation, None))
}
