//! Durable jobs: claimed with a lease, retried with backoff, dead-lettered.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value as DbValue};

use super::{Store, now_ms};

/// A job this worker holds until `lease_until`.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub session_id: String,
    /// 1 on the first attempt. Never decreases, not even when an attempt is not
    /// counted against `max_attempts` (postponed, or a dead job retried): the
    /// worker relies on `attempt == 1` meaning that no earlier attempt can have
    /// written anything to Salesforce, and skips reconciliation only then.
    pub attempt: u32,
    pub max_attempts: u32,
}

/// How a claimed job ends (for now).
struct Finish<'a> {
    state: &'a str,
    run_at: Option<i64>,
    error: Option<&'a str>,
    /// Do not count the attempt the claim made against `max_attempts` (by raising
    /// `max_attempts`; `attempts` itself never goes down).
    refund_attempt: bool,
}

impl Store {
    /// Claims the oldest due job (or one whose lease expired because its worker
    /// died). PostgreSQL skips rows other replicas hold; SQLite has one writer.
    pub async fn claim_job(
        &self,
        worker_id: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedJob>, DbErr> {
        let now = now_ms();
        let backend = self.backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $1, \
                 locked_by = $2, updated_at = $3 \
                 WHERE id = (SELECT id FROM jobs \
                   WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_until < $3) \
                   ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, kind, session_id, attempts, max_attempts"
            }
            _ => {
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?1, \
                 locked_by = ?2, updated_at = ?3 \
                 WHERE id = (SELECT id FROM jobs \
                   WHERE (state = 'queued' AND run_at <= ?3) OR (state = 'running' AND lease_until < ?3) \
                   ORDER BY run_at, id LIMIT 1) \
                 RETURNING id, kind, session_id, attempts, max_attempts"
            }
        };
        let stmt = Statement::from_sql_and_values(
            backend,
            sql,
            [
                DbValue::from(now + lease_ms),
                DbValue::from(worker_id.to_string()),
                DbValue::from(now),
            ],
        );
        let Some(row) = self.db.query_one_raw(stmt).await? else {
            return Ok(None);
        };
        Ok(Some(ClaimedJob {
            id: row.try_get("", "id")?,
            kind: row.try_get("", "kind")?,
            session_id: row.try_get("", "session_id")?,
            attempt: row.try_get::<i32>("", "attempts")? as u32,
            max_attempts: row.try_get::<i32>("", "max_attempts")? as u32,
        }))
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
            "UPDATE jobs SET lease_until = $1 WHERE id = $2 AND locked_by = $3 AND state = 'running'",
        );
        let stmt = Statement::from_sql_and_values(
            backend,
            sql,
            [
                DbValue::from(now_ms() + lease_ms),
                DbValue::from(job.id),
                DbValue::from(worker_id.to_string()),
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
                state: "done",
                run_at: None,
                error: None,
                refund_attempt: false,
            },
        )
        .await
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
                state: "queued",
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
                state: "dead",
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
        let backend = self.backend();
        let sql = numbered(
            backend,
            "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), last_error = COALESCE($3, last_error), \
                 lease_until = NULL, locked_by = NULL, updated_at = $4, max_attempts = max_attempts + $7 \
                 WHERE id = $5 AND locked_by = $6 AND state = 'running'",
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
                DbValue::from(state.to_string()),
                DbValue::from(run_at),
                DbValue::from(error.map(str::to_string)),
                DbValue::from(now_ms()),
                DbValue::from(job.id),
                DbValue::from(worker_id.to_string()),
                DbValue::from(i32::from(refund_attempt)),
            ],
        );
        let result = self.db.execute_raw(stmt).await?;
        Ok(result.rows_affected() == 1)
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
        let mut counts: Vec<(String, i64)> = ["queued", "running", "done", "dead"]
            .iter()
            .map(|s| (s.to_string(), 0))
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
            "UPDATE jobs SET state = 'queued', max_attempts = attempts + max_attempts, run_at = $1, updated_at = $1 \
                 WHERE id = $2 AND state = 'dead'",
        );
        let stmt = Statement::from_sql_and_values(
            self.backend(),
            sql,
            [DbValue::from(now_ms()), DbValue::from(id)],
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

/// PostgreSQL numbers parameters `$1`; SQLite takes `?1`. One statement text
/// serves both.
fn numbered(backend: DbBackend, postgres_sql: &str) -> String {
    match backend {
        DbBackend::Postgres => postgres_sql.to_string(),
        _ => postgres_sql.replace('$', "?"),
    }
}
