//! Durable jobs: claimed with a lease, retried with backoff, dead-lettered.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value as DbValue};

use super::{Store, now_ms};

/// A job this worker holds until `lease_until`.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub session_id: String,
    /// 1 on the first attempt.
    pub attempt: u32,
    pub max_attempts: u32,
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

    /// Marks a job done — only if this worker still holds it.
    pub async fn complete_job(&self, job: &ClaimedJob, worker_id: &str) -> Result<bool, DbErr> {
        self.finish_job(job, worker_id, "done", None, None).await
    }

    /// Puts a job back to run at `run_at_ms`, recording the error.
    pub async fn retry_job(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        run_at_ms: i64,
        error: &str,
    ) -> Result<bool, DbErr> {
        self.finish_job(job, worker_id, "queued", Some(run_at_ms), Some(error))
            .await
    }

    /// Dead-letters a job with its last error.
    pub async fn bury_job(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        error: &str,
    ) -> Result<bool, DbErr> {
        self.finish_job(job, worker_id, "dead", None, Some(error))
            .await
    }

    async fn finish_job(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        state: &str,
        run_at: Option<i64>,
        error: Option<&str>,
    ) -> Result<bool, DbErr> {
        let backend = self.backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), last_error = COALESCE($3, last_error), \
                 lease_until = NULL, locked_by = NULL, updated_at = $4 \
                 WHERE id = $5 AND locked_by = $6 AND state = 'running'"
            }
            _ => {
                "UPDATE jobs SET state = ?1, run_at = COALESCE(?2, run_at), last_error = COALESCE(?3, last_error), \
                 lease_until = NULL, locked_by = NULL, updated_at = ?4 \
                 WHERE id = ?5 AND locked_by = ?6 AND state = 'running'"
            }
        };
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
}
