//! Retention of what provider webhooks brought (docs/retention.md): the customer's text,
//! attachments and number on `inbound_messages`, and the answers sent outside any session
//! (deliveries of the pseudo-session `inbound:<id>`, with their events and jobs). Opt-outs are
//! never erased: they are the customer's instruction.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, ExprTrait,
    QueryFilter, QuerySelect, TransactionTrait,
};

use super::inbound_messages::INBOUND_SESSION_PREFIX;
use super::outbox::DeliveryState;
use super::{delivery, event, inbound_message, job, session};

/// Pseudo-sessions deleted per transaction.
const DELETE_BATCH: u64 = 500;

/// Every session id (the pseudo-session prefix is a legal session id: a real session that
/// happens to start with it is never treated as one).
fn session_ids() -> SelectStatement {
    Query::select()
        .column((session::Entity, session::Column::Id))
        .from(session::Entity)
        .to_owned()
}

/// Inbound messages that belong to no session, or to one `finished_before` lists.
fn unattached_or(finished_before: SelectStatement) -> Condition {
    Condition::any()
        .add(inbound_message::Column::SessionId.is_null())
        .add(inbound_message::Column::SessionId.in_subquery(finished_before))
}

/// Deliveries answering a message outside any session.
fn outside_sessions() -> Condition {
    Condition::all()
        .add(delivery::Column::SessionId.starts_with(INBOUND_SESSION_PREFIX))
        .add(delivery::Column::SessionId.not_in_subquery(session_ids()))
}

/// The payload stage: text, attachments and sender of inbound messages received before
/// `cutoff` (unless their session is still running), and the text and address of answers
/// sent (or failed) before it.
pub(super) async fn erase_personal_data<C: ConnectionTrait>(
    db: &C,
    cutoff: DateTime<Utc>,
    finished_before: SelectStatement,
) -> Result<u64, DbErr> {
    let cutoff_ms = cutoff.timestamp_millis();
    let erased = inbound_message::Entity::update_many()
        .col_expr(
            inbound_message::Column::Text,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            inbound_message::Column::Media,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            inbound_message::Column::FromAddress,
            Expr::value(Option::<String>::None),
        )
        .filter(
            Condition::any()
                .add(inbound_message::Column::Text.is_not_null())
                .add(inbound_message::Column::Media.is_not_null())
                .add(inbound_message::Column::FromAddress.is_not_null()),
        )
        .filter(inbound_message::Column::ReceivedAt.lt(cutoff_ms))
        .filter(unattached_or(finished_before))
        .exec(db)
        .await?
        .rows_affected;
    delivery::Entity::update_many()
        .col_expr(delivery::Column::Text, Expr::value(""))
        .col_expr(delivery::Column::Target, Expr::value("{}"))
        .col_expr(
            delivery::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(delivery::Column::Target.ne("{}"))
        .filter(delivery::Column::CreatedAt.lt(cutoff_ms))
        .filter(
            delivery::Column::State
                .is_in([DeliveryState::Sent.as_str(), DeliveryState::Failed.as_str()]),
        )
        .filter(outside_sessions())
        .exec(db)
        .await?;
    Ok(erased)
}

/// The event-data stage for the answers' pseudo-sessions.
pub(super) async fn erase_event_data(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(event::Entity::update_many()
        .col_expr(event::Column::Data, Expr::value("{}"))
        .filter(event::Column::At.lt(cutoff))
        .filter(event::Column::Data.ne("{}"))
        .filter(event::Column::SessionId.starts_with(INBOUND_SESSION_PREFIX))
        .filter(event::Column::SessionId.not_in_subquery(session_ids()))
        .exec(db)
        .await?
        .rows_affected)
}

/// The timeline stage: inbound messages received before `cutoff` (unless their session is
/// still running), and the answers' pseudo-sessions whose every job is done — deliveries,
/// events and jobs. Answers how many of each went.
pub(super) async fn delete_old(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    finished_before: SelectStatement,
) -> Result<(u64, u64), DbErr> {
    let cutoff_ms = cutoff.timestamp_millis();
    let messages = inbound_message::Entity::delete_many()
        .filter(inbound_message::Column::ReceivedAt.lt(cutoff_ms))
        .filter(unattached_or(finished_before))
        .exec(db)
        .await?
        .rows_affected;
    let unfinished = Query::select()
        .column((job::Entity, job::Column::SessionId))
        .from(job::Entity)
        .and_where(Expr::col((job::Entity, job::Column::State)).ne("done"))
        .and_where(
            Expr::col((job::Entity, job::Column::SessionId))
                .like(format!("{INBOUND_SESSION_PREFIX}%")),
        )
        .to_owned();
    let mut pseudo_sessions = 0;
    loop {
        let ids: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::SessionId)
            .distinct()
            .filter(outside_sessions())
            .filter(delivery::Column::CreatedAt.lt(cutoff_ms))
            .filter(delivery::Column::SessionId.not_in_subquery(unfinished.clone()))
            .limit(DELETE_BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        let txn = db.begin().await?;
        event::Entity::delete_many()
            .filter(event::Column::SessionId.is_in(ids.clone()))
            .exec(&txn)
            .await?;
        delivery::Entity::delete_many()
            .filter(delivery::Column::SessionId.is_in(ids.clone()))
            .exec(&txn)
            .await?;
        job::Entity::delete_many()
            .filter(job::Column::SessionId.is_in(ids.clone()))
            .filter(job::Column::State.eq("done"))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        pseudo_sessions += ids.len() as u64;
    }
    Ok((messages, pseudo_sessions))
}
