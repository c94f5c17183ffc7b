//! Durable jobs: claimed with a lease, retried with backoff, dead-lettered.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value as DbValue};

use super::{Store, now_ms};
use crate::jobs::{JobClass, JobKind, JobState, UndecodableJob};

/// A job this worker holds until `lease_until`.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    /// What to do, or why the stored row cannot be run (it is dead-lettered).
    pub kind: Result<JobKind, UndecodableJob>,
    pub session_id: String,
    /// 1 on the first attempt. Never decreases, not even when an attempt is not
    /// counted against `max_attempts` (postponed, or a dead job retried): the
    /// worker relies on `attempt == 1` meaning that no earlier attempt can have
    /// written anything to Salesforce, and skips reconciliation only then.
    pub attempt: u32,
    pub max_attempts: u32,
}

/// A job whose every attempt was abandoned (its worker died or lost the
/// database each time) and which the claim dead-lettered.
#[derive(Debug, Clone)]
pub struct AbandonedJob {
    pub id: i64,
    pub kind: Result<JobKind, UndecodableJob>,
    pub session_id: String,
    pub attempts: u32,
}

/// The `last_error` of a job dead-lettered because its attempts were abandoned.
pub const ABANDONED_ERROR: &str = "every attempt was abandoned: the process working on the job \
     stopped (crashed, was killed, or lost the database) before finishing it; \
     find the cause in that process's logs, then retry the job";

/// A Case written to Salesforce, to record on its session.
#[derive(Debug)]
pub struct CaseRecord<'a> {
    pub session_id: &'a str,
    pub case_id: &'a salesforce::SalesforceId,
    pub case_number: Option<&'a str>,
    pub comments: usize,
    pub salesforce_calls: u64,
    /// The `case.created` event's data.
    pub event_data: serde_json::Value,
    /// Set when the session joined an earlier session's open Case instead of
    /// creating one: recorded with `joined_session_id`, a `case.joined` event
    /// and the follow-up note, in the same transaction.
    pub joined: Option<JoinedCase<'a>>,
}

/// The earlier session whose open Case a session joined, and the note
/// (`id`, body) carrying the new summary and transcript to that Case.
#[derive(Debug)]
pub struct JoinedCase<'a> {
    pub earlier_session_id: &'a str,
    pub note_id: &'a str,
    pub note_body: &'a str,
}

/// How a claimed job ends (for now).
struct Finish<'a> {
    state: JobState,
    run_at: Option<i64>,
    error: Option<&'a str>,
    /// Do not count the attempt the claim made against `max_attempts` (by raising
    /// `max_attempts`; `attempts` itself never goes down).
    refund_attempt: bool,
}

impl Store {
    /// Claims up to `limit` due jobs of `class`, oldest first, each with a lease:
    /// queued jobs whose time has come, and running jobs whose lease expired
    /// (their worker died) — a re-claim is a new attempt and counts as one. A
    /// job whose attempts are all spent is not re-claimed: see
    /// [`Store::bury_abandoned_jobs`]. PostgreSQL skips rows other replicas are
    /// claiming; SQLite has one writer.
    pub async fn claim_jobs(
        &self,
        worker_id: &str,
        lease_ms: i64,
        class: JobClass,
        limit: usize,
    ) -> Result<Vec<ClaimedJob>, DbErr> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let backend = self.backend();
        let kinds = sql_list(JobKind::salesforce_kinds());
        let of_class = match class {
            JobClass::Salesforce => format!("kind IN ({kinds})"),
            JobClass::Channel => format!("kind NOT IN ({kinds})"),
        };
        let lock = match backend {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let sql = numbered(
            backend,
            &format!(
                "UPDATE jobs SET state = $4, attempts = attempts + 1, lease_until = $1, \
                 locked_by = $2, updated_at = $3 \
                 WHERE id IN (SELECT id FROM jobs \
                   WHERE ((state = $5 AND run_at <= $3) \
                      OR (state = $4 AND lease_until < $3 AND attempts < max_attempts)) \
                     AND {of_class} \
                   ORDER BY run_at, id LIMIT $6{lock}) \
                 RETURNING id, kind, session_id, payload, attempts, max_attempts, run_at"
            ),
        );
        let stmt = Statement::from_sql_and_values(
            backend,
            sql,
            [
                DbValue::from(now + lease_ms),
                DbValue::from(worker_id.to_string()),
                DbValue::from(now),
                DbValue::from(JobState::Running.as_str()),
                DbValue::from(JobState::Queued.as_str()),
                DbValue::from(limit as i64),
            ],
        );
        let rows = self.db.query_all_raw(stmt).await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, kind, session_id) = job_of(&row)?;
            let due: i64 = row.try_get("", "run_at")?;
            crate::metrics::record_queue_age(
                kind.as_ref().map_or("undecodable", JobKind::name),
                due,
                now,
            );
            jobs.push(ClaimedJob {
                id,
                kind,
                session_id,
                attempt: row.try_get::<i32>("", "attempts")? as u32,
                max_attempts: row.try_get::<i32>("", "max_attempts")? as u32,
            });
        }
        jobs.sort_by_key(|j| j.id);
        Ok(jobs)
    }

    /// Dead-letters running jobs whose lease expired with every attempt spent:
    /// the process died (or lost the database) in each of them, so claiming the
    /// job again would only crash the next one. Returns them, for their events.
    pub async fn bury_abandoned_jobs(&self) -> Result<Vec<AbandonedJob>, DbErr> {
        let now = now_ms();
        let backend = self.backend();
        let sql = numbered(
            backend,
            "UPDATE jobs SET state = $1, last_error = $2, lease_until = NULL, locked_by = NULL, updated_at = $3 \
             WHERE state = $4 AND lease_until < $3 AND attempts >= max_attempts \
             RETURNING id, kind, session_id, payload, attempts",
        );
        let stmt = Statement::from_sql_and_values(
            backend,
            sql,
            [
                DbValue::from(JobState::Dead.as_str()),
                DbValue::from(ABANDONED_ERROR),
                DbValue::from(now),
                DbValue::from(JobState::Running.as_str()),
            ],
        );
        let rows = self.db.query_all_raw(stmt).await?;
        let mut buried = Vec::with_capacity(rows.len());
        for row in rows {
            let (id, kind, session_id) = job_of(&row)?;
            buried.push(AbandonedJob {
                id,
                kind,
                session_id,
                attempts: row.try_get::<i32>("", "attempts")? as u32,
            });
        }
        Ok(buried)
    }

    /// Extends this worker's lease on a running job. `false`: the lease is gone.
    pub async fn renew_lease(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        lease_ms: i64,
    ) -> Result<bool, DbErr> {
        let backend = self.backend();
        let sql = numbered(
            backend,
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND locked_by = $3 AND state = $4",
        );
        let stmt = Statement::from_sql_and_values(
            backend,
            sql,
            [
                DbValue::from(now_ms() + lease_ms),
                DbValue::from(job.id),
                DbValue::from(worker_id.to_string()),
                DbValue::from(JobState::Running.as_str()),
            ],
        );
        Ok(self.db.execute_raw(stmt).await?.rows_affected() == 1)
    }

    /// Marks a job done — only if this worker still holds it.
    pub async fn complete_job(&self, job: &ClaimedJob, worker_id: &str) -> Result<bool, DbErr> {
        self.finish(
            job,
            worker_id,
            Finish {
                state: JobState::Done,
                run_at: None,
                error: None,
                refund_attempt: false,
            },
        )
        .await
    }

    /// Finishes a `create_case` job in one transaction: marks it done (only if
    /// this worker still holds it — `false` otherwise, and nothing is written),
    /// records the Case on the session with its `case.created` event, and queues
    /// the customer notice (with `delivery_attempts` for its job) or records why
    /// there is none. One commit per Case.
    pub async fn finish_case_job(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        record: &CaseRecord<'_>,
        notice: &crate::outbox::notices::Notice,
        delivery_attempts: u32,
    ) -> Result<bool, DbErr> {
        use chrono::Utc;
        use sea_orm::ExprTrait;
        use sea_orm::sea_query::Expr;
        use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

        use super::session;
        use crate::outbox::notices::Notice;

        let txn = self.db.begin().await?;
        if !finish_in(
            &txn,
            job,
            worker_id,
            Finish {
                state: JobState::Done,
                run_at: None,
                error: None,
                refund_attempt: false,
            },
        )
        .await?
        {
            txn.rollback().await?;
            return Ok(false);
        }
        session::Entity::update_many()
            .col_expr(session::Column::Status, Expr::value("escalated"))
            .col_expr(
                session::Column::SalesforceCaseId,
                Expr::value(record.case_id.as_str()),
            )
            .col_expr(
                session::Column::SalesforceCaseId15,
                Expr::value(record.case_id.to_15()),
            )
            .col_expr(
                session::Column::SalesforceCaseNumber,
                Expr::value(record.case_number.map(str::to_string)),
            )
            .col_expr(
                session::Column::CommentsWritten,
                Expr::value(record.comments as i32),
            )
            .col_expr(
                session::Column::SalesforceCalls,
                Expr::col(session::Column::SalesforceCalls).add(record.salesforce_calls as i32),
            )
            .col_expr(
                session::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .col_expr(session::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(session::Column::Id.eq(record.session_id))
            .exec(&txn)
            .await?;
        let event = match &record.joined {
            None => "case.created",
            Some(joined) => {
                session::Entity::update_many()
                    .col_expr(
                        session::Column::JoinedSessionId,
                        Expr::value(joined.earlier_session_id),
                    )
                    .filter(session::Column::Id.eq(record.session_id))
                    .exec(&txn)
                    .await?;
                super::case_notes::enqueue_case_note_in(
                    &txn,
                    record.session_id,
                    joined.note_id,
                    "joined_case",
                    joined.note_body,
                )
                .await?;
                "case.joined"
            }
        };
        super::outbox::event_row(record.session_id, event, record.event_data.clone())
            .insert(&txn)
            .await?;
        match notice {
            Notice::Send(messages) => {
                for new in messages {
                    super::outbox::enqueue_delivery_in(&txn, new, delivery_attempts).await?;
                }
            }
            Notice::NotTold(reason) => {
                super::outbox::event_row(
                    record.session_id,
                    "customer.not_notified",
                    Notice::not_told_event(reason),
                )
                .insert(&txn)
                .await?;
            }
            Notice::Nothing => {}
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Puts a job back to run at `run_at_ms`, recording the error. With
    /// `counted: false` the attempt it just made is not held against
    /// `max_attempts` (Salesforce was rate-limiting or down: nothing was learned
    /// about the job itself).
    pub async fn requeue_job(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        run_at_ms: i64,
        error: &str,
        counted: bool,
    ) -> Result<bool, DbErr> {
        self.finish(
            job,
            worker_id,
            Finish {
                state: JobState::Queued,
                run_at: Some(run_at_ms),
                error: Some(error),
                refund_attempt: !counted,
            },
        )
        .await
    }

    /// Dead-letters a job with its last error.
    pub async fn bury_job(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        error: &str,
    ) -> Result<bool, DbErr> {
        self.finish(
            job,
            worker_id,
            Finish {
                state: JobState::Dead,
                run_at: None,
                error: Some(error),
                refund_attempt: false,
            },
        )
        .await
    }

    async fn finish(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        finish: Finish<'_>,
    ) -> Result<bool, DbErr> {
        finish_in(&self.db, job, worker_id, finish).await
    }

    /// Jobs in a state, oldest first (for operators and tests).
    pub async fn jobs_in_state(&self, state: &str) -> Result<Vec<super::job::Model>, DbErr> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        super::job::Entity::find()
            .filter(super::job::Column::State.eq(state))
            .order_by_asc(super::job::Column::Id)
            .all(&self.db)
            .await
    }

    /// Number of jobs in each state (every state listed, zero included).
    pub async fn job_counts(&self) -> Result<Vec<(String, i64)>, DbErr> {
        let stmt = Statement::from_string(
            self.backend(),
            "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state",
        );
        let rows = self.db.query_all_raw(stmt).await?;
        let mut counts: Vec<(String, i64)> = JobState::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        for row in rows {
            let state: String = row.try_get("", "state")?;
            let n: i64 = row.try_get("", "n")?;
            match counts.iter_mut().find(|(s, _)| *s == state) {
                Some(entry) => entry.1 = n,
                None => counts.push((state, n)),
            }
        }
        Ok(counts)
    }

    /// One job by id.
    pub async fn job(&self, id: i64) -> Result<Option<super::job::Model>, DbErr> {
        use sea_orm::EntityTrait;
        super::job::Entity::find_by_id(id).one(&self.db).await
    }

    /// Puts a dead job back in the queue for a fresh set of attempts (as many as
    /// its budget allowed: `max_attempts` grows by it, `attempts` is kept so the
    /// next attempt reconciles with what earlier ones wrote). Returns the job, or
    /// `None` if there is no dead job with that id.
    pub async fn retry_dead_job(&self, id: i64) -> Result<Option<super::job::Model>, DbErr> {
        use sea_orm::TransactionTrait;
        let txn = self.db.begin().await?;
        let sql = numbered(
            self.backend(),
            "UPDATE jobs SET state = $3, max_attempts = attempts + max_attempts, run_at = $1, updated_at = $1 \
                 WHERE id = $2 AND state = $4",
        );
        let stmt = Statement::from_sql_and_values(
            self.backend(),
            sql,
            [
                DbValue::from(now_ms()),
                DbValue::from(id),
                DbValue::from(JobState::Queued.as_str()),
                DbValue::from(JobState::Dead.as_str()),
            ],
        );
        if txn.execute_raw(stmt).await?.rows_affected() != 1 {
            txn.rollback().await?;
            return Ok(None);
        }
        use sea_orm::EntityTrait;
        let job = super::job::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(|| DbErr::Custom("job vanished".into()))?;
        super::sessions::requeue_session(&txn, &job.session_id, job.id).await?;
        txn.commit().await?;
        Ok(Some(job))
    }
}

/// Ends a claimed job — only if `worker_id` still holds it.
async fn finish_in<C: ConnectionTrait>(
    db: &C,
    job: &ClaimedJob,
    worker_id: &str,
    finish: Finish<'_>,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let sql = numbered(
        backend,
        "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), last_error = COALESCE($3, last_error), \
                 lease_until = NULL, locked_by = NULL, updated_at = $4, max_attempts = max_attempts + $7 \
                 WHERE id = $5 AND locked_by = $6 AND state = $8",
    );
    let Finish {
        state,
        run_at,
        error,
        refund_attempt,
    } = finish;
    let stmt = Statement::from_sql_and_values(
        backend,
        sql,
        [
            DbValue::from(state.as_str()),
            DbValue::from(run_at),
            DbValue::from(error.map(str::to_string)),
            DbValue::from(now_ms()),
            DbValue::from(job.id),
            DbValue::from(worker_id.to_string()),
            DbValue::from(i32::from(refund_attempt)),
            DbValue::from(JobState::Running.as_str()),
        ],
    );
    let result = db.execute_raw(stmt).await?;
    Ok(result.rows_affected() == 1)
}

/// Inserts a queued job (in the caller's transaction).
pub(super) async fn insert_job<C: ConnectionTrait>(
    db: &C,
    kind: &JobKind,
    session_id: &str,
    max_attempts: u32,
) -> Result<(), DbErr> {
    use sea_orm::{ActiveModelTrait, Set};
    let t = now_ms();
    super::job::ActiveModel {
        kind: Set(kind.name().into()),
        session_id: Set(session_id.to_string()),
        state: Set(JobState::Queued.as_str().into()),
        attempts: Set(0),
        max_attempts: Set(max_attempts as i32),
        run_at: Set(t),
        lease_until: Set(None),
        locked_by: Set(None),
        last_error: Set(None),
        created_at: Set(t),
        updated_at: Set(t),
        payload: Set(Some(kind.payload_json())),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// `'a', 'b'` for constant names (never user input).
fn sql_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            debug_assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            format!("'{n}'")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// PostgreSQL numbers parameters `$1`; SQLite takes `?1`. One statement text
/// serves both.
pub(super) fn numbered(backend: DbBackend, postgres_sql: &str) -> String {
    match backend {
        DbBackend::Postgres => postgres_sql.to_string(),
        _ => postgres_sql.replace('$', "?"),
    }
}

/// The id, decoded kind and session id of a job row returned by a raw statement.
fn job_of(
    row: &sea_orm::QueryResult,
) -> Result<(i64, Result<JobKind, UndecodableJob>, String), DbErr> {
    let kind: String = row.try_get("", "kind")?;
    let session_id: String = row.try_get("", "session_id")?;
    let payload: Option<String> = row.try_get("", "payload")?;
    let kind = JobKind::decode(&kind, &session_id, payload.as_deref());
    Ok((row.try_get("", "id")?, kind, session_id))
}
