//! Rep-reply events (`salesforce_events`): recorded once per Salesforce record id, pushed or
//! polled, each with the `sync_case_event` job that decides it; the decision and what it sends
//! in one transaction; the poller's singleton job and its watermark (`sync_state`).

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, Set, SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
    Value as DbValue,
};
use serde_json::Value;

use salesforce::events::CaseEvent;

use super::entities::{salesforce_event, session, sync_state};
use super::jobs::{insert_job, numbered};
use super::outbox::{enqueue_delivery_in, event_row};
use super::{ClaimedJob, NewDelivery, Store, now_ms};
use crate::jobs::{JobKind, JobState};

/// The `jobs.session_id` of `sync_case_event` jobs: the session is not known until the job
/// matches the Case.
pub const CASE_EVENTS_JOB_SESSION: &str = "_case_events";
/// The `jobs.session_id` of the poller's one job.
pub const POLLER_JOB_SESSION: &str = "_poller";
/// The `sync_state` row holding the poller's watermark.
pub const POLL_WATERMARK: &str = "case_replies.poll";
/// An event's outcome until its job decides.
pub const OUTCOME_QUEUED: &str = "queued";
/// The PostgreSQL advisory lock taken while creating the poller's job ("hcrpoll").
const POLLER_LOCK_KEY: i64 = 0x0068_6372_706f_6c6c;

/// What a `sync_case_event` job decided, written in one transaction.
#[derive(Debug, Clone)]
pub struct CaseEventDecision {
    /// `delivered` or `ignored_<why>`.
    pub outcome: &'static str,
    /// The session the Case belongs to, when one does.
    pub session_id: Option<String>,
    /// The messages to the customer (empty unless delivered).
    pub deliveries: Vec<NewDelivery>,
    /// Session events to record (only with a session).
    pub events: Vec<(&'static str, Value)>,
}

impl Store {
    /// Records `events` from `source` (`push` or `poll`), each with its `sync_case_event` job,
    /// in one transaction. An event id already recorded writes nothing. Returns how many were
    /// new.
    pub async fn record_case_events(
        &self,
        events: &[CaseEvent],
        source: &str,
        max_attempts: u32,
    ) -> Result<usize, DbErr> {
        let txn = self.db.begin().await?;
        let mut new = 0;
        for event in events {
            new += usize::from(insert_event(&txn, event, source, max_attempts).await?);
        }
        txn.commit().await?;
        Ok(new)
    }

    pub async fn case_event(
        &self,
        event_id: &str,
    ) -> Result<Option<salesforce_event::Model>, DbErr> {
        salesforce_event::Entity::find_by_id(event_id.to_string())
            .one(&self.db)
            .await
    }

    /// The newest session holding this Case (sessions that joined an open Case share it).
    pub async fn newest_session_for_case(
        &self,
        case_id: &str,
    ) -> Result<Option<session::Model>, DbErr> {
        session::Entity::find()
            .filter(session::Column::SalesforceCaseId.eq(case_id))
            .order_by_desc(session::Column::CreatedAt)
            .order_by_desc(session::Column::Id)
            .one(&self.db)
            .await
    }

    /// Finishes a `sync_case_event` job in one transaction: the job done (only if this worker
    /// still holds it — `false` otherwise, and nothing is written), the event's outcome and
    /// session, the deliveries (idempotent by id) and the session events.
    pub async fn decide_case_event(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        event_id: &str,
        decision: &CaseEventDecision,
        delivery_attempts: u32,
    ) -> Result<bool, DbErr> {
        let txn = self.db.begin().await?;
        if !end_job_in(&txn, job, worker_id, JobState::Done, None).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        salesforce_event::Entity::update_many()
            .col_expr(
                salesforce_event::Column::Outcome,
                sea_orm::sea_query::Expr::value(decision.outcome),
            )
            .col_expr(
                salesforce_event::Column::SessionId,
                sea_orm::sea_query::Expr::value(decision.session_id.clone()),
            )
            .col_expr(
                salesforce_event::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now_ms()),
            )
            .filter(salesforce_event::Column::EventId.eq(event_id))
            .exec(&txn)
            .await?;
        for delivery in &decision.deliveries {
            enqueue_delivery_in(&txn, delivery, delivery_attempts).await?;
        }
        if let Some(session_id) = &decision.session_id {
            for (kind, data) in &decision.events {
                event_row(session_id, kind, data.clone())
                    .insert(&txn)
                    .await?;
            }
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Creates the poller's one job if there is none, or puts a finished or dead one back in
    /// the queue. Safe when several replicas start at once: on PostgreSQL under a
    /// transaction-scoped advisory lock, on SQLite in a `BEGIN IMMEDIATE` transaction.
    /// Returns whether a job was created or requeued.
    pub async fn ensure_poller_job(&self, max_attempts: u32) -> Result<bool, DbErr> {
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?;
        let backend = self.backend();
        if backend == DbBackend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({POLLER_LOCK_KEY})"))
                .await?;
        }
        let existing = super::job::Entity::find()
            .filter(super::job::Column::Kind.eq(JobKind::POLL_CASE_REPLIES))
            .order_by_asc(super::job::Column::Id)
            .one(&txn)
            .await?;
        let changed = match existing {
            None => {
                insert_job(
                    &txn,
                    &JobKind::PollCaseReplies {},
                    POLLER_JOB_SESSION,
                    max_attempts,
                )
                .await?;
                true
            }
            Some(job)
                if job.state == JobState::Done.as_str() || job.state == JobState::Dead.as_str() =>
            {
                let sql = numbered(
                    backend,
                    "UPDATE jobs SET state = $1, run_at = $2, attempts = 0, max_attempts = $3, \
                     last_error = NULL, lease_until = NULL, locked_by = NULL, updated_at = $2 WHERE id = $4",
                );
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    sql,
                    [
                        DbValue::from(JobState::Queued.as_str()),
                        DbValue::from(now_ms()),
                        DbValue::from(max_attempts as i32),
                        DbValue::from(job.id),
                    ],
                ))
                .await?;
                true
            }
            Some(_) => false,
        };
        txn.commit().await?;
        Ok(changed)
    }

    /// The poller's watermark (the newest `SystemModstamp` it saw, as Salesforce wrote it).
    pub async fn poll_watermark(&self) -> Result<Option<String>, DbErr> {
        Ok(sync_state::Entity::find_by_id(POLL_WATERMARK.to_string())
            .one(&self.db)
            .await?
            .map(|row| row.value)
            .filter(|v| !v.is_empty()))
    }

    /// Ends one poll in one transaction — only if this worker still holds the poller's job
    /// (`false` otherwise, and nothing is written): the events found (each new one with its
    /// `sync_case_event` job), the new watermark, and the job queued again for `next_run_ms`
    /// with its attempts reset (every run is a new piece of work). Returns `None` when the
    /// lease was lost, else how many events were new.
    pub async fn finish_poll(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        events: &[CaseEvent],
        watermark: Option<&str>,
        next_run_ms: i64,
        max_attempts: u32,
    ) -> Result<Option<usize>, DbErr> {
        let txn = self.db.begin().await?;
        if !end_job_in(&txn, job, worker_id, JobState::Queued, Some(next_run_ms)).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let mut new = 0;
        for event in events {
            new += usize::from(insert_event(&txn, event, "poll", max_attempts).await?);
        }
        if let Some(watermark) = watermark {
            sync_state::Entity::insert(sync_state::ActiveModel {
                name: Set(POLL_WATERMARK.into()),
                value: Set(watermark.into()),
                updated_at: Set(now_ms()),
            })
            .on_conflict(
                OnConflict::column(sync_state::Column::Name)
                    .update_columns([sync_state::Column::Value, sync_state::Column::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        txn.commit().await?;
        Ok(Some(new))
    }

    /// Outcomes of recorded events by source (for operators and tests).
    pub async fn case_events(&self) -> Result<Vec<salesforce_event::Model>, DbErr> {
        salesforce_event::Entity::find()
            .order_by_asc(salesforce_event::Column::ReceivedAt)
            .order_by_asc(salesforce_event::Column::EventId)
            .all(&self.db)
            .await
    }
}

/// Inserts one event and its job unless its id is already recorded; `true` when new.
async fn insert_event<C: ConnectionTrait>(
    db: &C,
    event: &CaseEvent,
    source: &str,
    max_attempts: u32,
) -> Result<bool, DbErr> {
    let t = now_ms();
    let inserted = salesforce_event::Entity::insert(salesforce_event::ActiveModel {
        event_id: Set(event.event_id.as_str().into()),
        source: Set(source.into()),
        kind: Set(event.kind.as_str().into()),
        case_id: Set(event.case_id.as_str().into()),
        session_id: Set(None),
        outcome: Set(OUTCOME_QUEUED.into()),
        payload: Set(event.to_json()),
        received_at: Set(t),
        updated_at: Set(t),
    })
    .on_conflict(
        OnConflict::column(salesforce_event::Column::EventId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 0 {
        return Ok(false);
    }
    let job = JobKind::SyncCaseEvent {
        event_id: event.event_id.as_str().into(),
    };
    insert_job(db, &job, CASE_EVENTS_JOB_SESSION, max_attempts).await?;
    Ok(true)
}

/// Ends a claimed job in `state` (`run_at` when queued again, with its attempts reset) —
/// only if `worker_id` still holds it.
async fn end_job_in<C: ConnectionTrait>(
    db: &C,
    job: &ClaimedJob,
    worker_id: &str,
    state: JobState,
    run_at: Option<i64>,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let reset = if run_at.is_some() {
        ", attempts = 0, last_error = NULL"
    } else {
        ""
    };
    let sql = numbered(
        backend,
        &format!(
            "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), lease_until = NULL, \
             locked_by = NULL, updated_at = $3{reset} WHERE id = $4 AND locked_by = $5 AND state = $6"
        ),
    );
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                DbValue::from(state.as_str()),
                DbValue::from(run_at),
                DbValue::from(now_ms()),
                DbValue::from(job.id),
                DbValue::from(worker_id.to_string()),
                DbValue::from(JobState::Running.as_str()),
            ],
        ))
        .await?;
    Ok(result.rows_affected() == 1)
}
