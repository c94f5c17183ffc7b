//! Retention: what Handoff keeps of a finished session, and for how long
//! (docs/retention.md). Personal data goes first, the timeline's text next,
//! the timeline itself last; the session row (ids, Case ids, timestamps,
//! status) is kept as a tombstone so its id can never be reused onto its Case.
//!
//! Only sessions whose every job is `done` are touched: a queued, running or
//! dead job (which an operator may retry) still needs its payload. Messages from
//! provider webhooks and the answers sent outside any session: `retention_inbound`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
    TransactionTrait,
};
use tokio_util::sync::CancellationToken;

use super::case_events::CASE_EVENTS_JOB_SESSION;
use super::{
    LiveState, Store, case_note, delivery, email_message, event, inbound_email, job, live_message,
    live_session, salesforce_event, session,
};

/// How long each kind of data is kept after the session was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// The request payload (transcript, summary, attributes, reply address), the
    /// customer's name, email and phone, the subject and error texts.
    pub erase_payload_after: chrono::Duration,
    /// The `data` of every event (the timeline keeps its kinds and times).
    pub erase_event_data_after: chrono::Duration,
    /// The events and jobs rows themselves; `None`: kept.
    pub delete_timeline_after: Option<chrono::Duration>,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub sessions_erased: u64,
    pub events_erased: u64,
    pub timelines_deleted: u64,
}

/// Sessions deleted per transaction, so one sweep never holds a long lock.
const DELETE_BATCH: u64 = 500;

/// `sessions.id` of sessions that have no job left to run (every job `done`).
fn finished() -> Condition {
    Condition::all()
        .add(
            Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(job::Entity)
                    .and_where(
                        Expr::col((job::Entity, job::Column::SessionId))
                            .equals((session::Entity, session::Column::Id)),
                    )
                    .and_where(Expr::col((job::Entity, job::Column::State)).ne("done"))
                    .to_owned(),
            )
            .not(),
        )
        // A live chat still going needs its payload (the supervisor reads it).
        .add(
            Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(live_session::Entity)
                    .and_where(
                        Expr::col((live_session::Entity, live_session::Column::SessionId))
                            .equals((session::Entity, session::Column::Id)),
                    )
                    .and_where(
                        Expr::col((live_session::Entity, live_session::Column::State))
                            .is_in(LiveState::STREAMING.map(LiveState::as_str)),
                    )
                    .to_owned(),
            )
            .not(),
        )
}

/// Ids of finished sessions created before `cutoff`.
fn finished_before(cutoff: DateTime<Utc>) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column((session::Entity, session::Column::Id))
        .from(session::Entity)
        .cond_where(
            finished().add(Expr::col((session::Entity, session::Column::CreatedAt)).lt(cutoff)),
        )
        .to_owned()
}

impl Store {
    /// One pass of the retention policy as of `now` (injected, so tests need
    /// no clock). Idempotent: a second pass at the same `now` changes nothing.
    pub async fn sweep_retention(
        &self,
        now: DateTime<Utc>,
        policy: RetentionPolicy,
    ) -> Result<RetentionReport, DbErr> {
        let mut report = RetentionReport::default();

        let cutoff = now - policy.erase_payload_after;
        let txn = self.db.begin().await?;
        report.sessions_erased = session::Entity::update_many()
            .col_expr(session::Column::Payload, Expr::value(""))
            .col_expr(
                session::Column::CustomerName,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                session::Column::CustomerEmail,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                session::Column::CustomerPhone,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                session::Column::CustomerPhoneE164,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                session::Column::Subject,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                session::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(session::Column::CreatedAt.lt(cutoff))
            .filter(session::Column::Payload.ne(""))
            .filter(finished())
            .exec(&txn)
            .await?
            .rows_affected;
        // What the customer was sent, and where: the outbox keeps its rows (state, attempts,
        // provider id) but not the text, the sender or the address.
        delivery::Entity::update_many()
            .col_expr(delivery::Column::Text, Expr::value(""))
            .col_expr(
                delivery::Column::SenderName,
                Expr::value(Option::<String>::None),
            )
            .col_expr(delivery::Column::Target, Expr::value("{}"))
            .col_expr(
                delivery::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(delivery::Column::Target.ne("{}"))
            .filter(delivery::Column::SessionId.in_subquery(finished_before(cutoff)))
            .exec(&txn)
            .await?;
        // What the customer wrote to the rep, and the end user's token.
        live_message::Entity::update_many()
            .col_expr(live_message::Column::Text, Expr::value(""))
            .filter(live_message::Column::Text.ne(""))
            .filter(live_message::Column::SessionId.in_subquery(finished_before(cutoff)))
            .exec(&txn)
            .await?;
        live_session::Entity::update_many()
            .col_expr(
                live_session::Column::Token,
                Expr::value(Option::<String>::None),
            )
            .filter(live_session::Column::Token.is_not_null())
            .filter(live_session::Column::SessionId.in_subquery(finished_before(cutoff)))
            .exec(&txn)
            .await?;
        // Job errors can quote what Salesforce refused (an address, a name).
        job::Entity::update_many()
            .col_expr(job::Column::LastError, Expr::value(Option::<String>::None))
            .filter(job::Column::LastError.is_not_null())
            .filter(job::Column::SessionId.in_subquery(finished_before(cutoff)))
            .exec(&txn)
            .await?;
        // Notes written on a Case (the customer's emailed answers): Salesforce has them.
        case_note::Entity::update_many()
            .col_expr(case_note::Column::Body, Expr::value(""))
            .col_expr(
                case_note::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(case_note::Column::Body.ne(""))
            .filter(case_note::Column::State.ne("queued"))
            .filter(case_note::Column::SessionId.in_subquery(finished_before(cutoff)))
            .exec(&txn)
            .await?;
        // Rep replies heard of (the rep's text) once decided, and inbound emails (the raw
        // message, the sender, the subject), matched or not, by when they arrived.
        let cutoff_ms = cutoff.timestamp_millis();
        salesforce_event::Entity::update_many()
            .col_expr(salesforce_event::Column::Payload, Expr::value("{}"))
            .filter(salesforce_event::Column::Payload.ne("{}"))
            .filter(salesforce_event::Column::Outcome.ne("queued"))
            .filter(salesforce_event::Column::ReceivedAt.lt(cutoff_ms))
            .exec(&txn)
            .await?;
        inbound_email::Entity::update_many()
            .col_expr(
                inbound_email::Column::Raw,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                inbound_email::Column::FromAddress,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                inbound_email::Column::Subject,
                Expr::value(Option::<String>::None),
            )
            .filter(
                Condition::any()
                    .add(inbound_email::Column::Raw.is_not_null())
                    .add(inbound_email::Column::FromAddress.is_not_null())
                    .add(inbound_email::Column::Subject.is_not_null()),
            )
            .filter(inbound_email::Column::ReceivedAt.lt(cutoff_ms))
            .exec(&txn)
            .await?;
        // Customer messages from provider webhooks, and the answers sent outside any session.
        super::retention_inbound::erase_personal_data(&txn, cutoff, finished_before(cutoff))
            .await?;
        txn.commit().await?;

        let cutoff = now - policy.erase_event_data_after;
        // A rep reply's sync job is one row per event; once done, the event row is the
        // record. Without this the jobs table would grow with every reply, for ever.
        job::Entity::delete_many()
            .filter(job::Column::SessionId.eq(CASE_EVENTS_JOB_SESSION))
            .filter(job::Column::State.eq("done"))
            .filter(job::Column::UpdatedAt.lt(cutoff.timestamp_millis()))
            .exec(&self.db)
            .await?;
        report.events_erased = event::Entity::update_many()
            .col_expr(event::Column::Data, Expr::value("{}"))
            .filter(event::Column::At.lt(cutoff))
            .filter(event::Column::Data.ne("{}"))
            .filter(event::Column::SessionId.in_subquery(finished_before(cutoff)))
            .exec(&self.db)
            .await?
            .rows_affected;
        report.events_erased +=
            super::retention_inbound::erase_event_data(&self.db, cutoff).await?;

        if let Some(after) = policy.delete_timeline_after {
            let cutoff = now - after;
            // Rep-reply and inbound-email records go by age: after this long a
            // replayed event or email is no longer expected.
            salesforce_event::Entity::delete_many()
                .filter(salesforce_event::Column::Outcome.ne("queued"))
                .filter(salesforce_event::Column::ReceivedAt.lt(cutoff.timestamp_millis()))
                .exec(&self.db)
                .await?;
            inbound_email::Entity::delete_many()
                .filter(inbound_email::Column::ReceivedAt.lt(cutoff.timestamp_millis()))
                .exec(&self.db)
                .await?;
            super::retention_inbound::delete_old(&self.db, cutoff, finished_before(cutoff)).await?;
            loop {
                let ids: Vec<String> = job::Entity::find()
                    .select_only()
                    .column(job::Column::SessionId)
                    .distinct()
                    .filter(job::Column::SessionId.in_subquery(finished_before(cutoff)))
                    .limit(DELETE_BATCH)
                    .into_tuple()
                    .all(&self.db)
                    .await?;
                if ids.is_empty() {
                    break;
                }
                let txn = self.db.begin().await?;
                event::Entity::delete_many()
                    .filter(event::Column::SessionId.is_in(ids.clone()))
                    .exec(&txn)
                    .await?;
                delivery::Entity::delete_many()
                    .filter(delivery::Column::SessionId.is_in(ids.clone()))
                    .exec(&txn)
                    .await?;
                live_message::Entity::delete_many()
                    .filter(live_message::Column::SessionId.is_in(ids.clone()))
                    .exec(&txn)
                    .await?;
                email_message::Entity::delete_many()
                    .filter(email_message::Column::SessionId.is_in(ids.clone()))
                    .exec(&txn)
                    .await?;
                case_note::Entity::delete_many()
                    .filter(case_note::Column::SessionId.is_in(ids.clone()))
                    .filter(case_note::Column::State.ne("queued"))
                    .exec(&txn)
                    .await?;
                job::Entity::delete_many()
                    .filter(job::Column::SessionId.is_in(ids.clone()))
                    .filter(job::Column::State.eq("done"))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
                report.timelines_deleted += ids.len() as u64;
            }
        }
        Ok(report)
    }

    /// Runs [`Store::sweep_retention`] every `every` until `shutdown`.
    pub async fn sweep_retention_until(
        self,
        policy: RetentionPolicy,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.sweep_retention(Utc::now(), policy).await {
                Ok(report) if report == RetentionReport::default() => {}
                Ok(report) => tracing::info!(
                    sessions_erased = report.sessions_erased,
                    events_erased = report.events_erased,
                    timelines_deleted = report.timelines_deleted,
                    "Retention sweep erased expired data."
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "Retention sweep failed; retrying at the next interval.")
                }
            }
        }
    }
}
