//! Operators: list jobs by state (the dead-letter queue) and retry dead ones.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::require;
use super::extract::{Path, Query};
use super::openapi::{
    BadRequest, Forbidden, IdempotencyKey, IdempotencyKeyReused, NotFound, PayloadTooLarge,
    RequestTimeout, ServerError, Unauthenticated, Unavailable,
};
use super::page::{self, IdKey};
use crate::error::{ApiError, Problem};
use crate::store::{Scope, job};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(retry))
}

/// The public shape of a job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    /// `create_case`, `deliver_message`, `open_conversation`, …
    pub kind: String,
    pub session_id: String,
    /// `queued`, `running`, `done` or `dead`.
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// RFC 3339: when the job is next due.
    #[schema(format = DateTime)]
    pub run_at: String,
    pub last_error: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// A page of jobs, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn ms(t: i64) -> String {
    Utc.timestamp_millis_opt(t)
        .single()
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<job::Model> for JobView {
    fn from(j: job::Model) -> Self {
        JobView {
            id: j.id,
            kind: j.kind,
            session_id: j.session_id,
            state: j.state,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_at: ms(j.run_at),
            last_error: j.last_error,
            created_at: ms(j.created_at),
            updated_at: ms(j.updated_at),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `queued`, `running`, `done` or `dead` (default: `dead`, the dead-letter queue).
    #[param(inline, value_type = Option<JobState>)]
    state: Option<String>,
    /// Jobs per page, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// A job's state.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

pub const JOB_STATES: [&str; 4] = ["queued", "running", "done", "dead"];

/// Jobs in one state (default `dead`: the dead-letter queue), oldest first.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    operation_id = "list_jobs",
    tag = "operations",
    security(("bearer" = ["admin"])),
    params(ListQuery),
    responses(
        (status = 200, description = "`{\"jobs\": […], \"next_cursor\": …}`, oldest first.", body = JobPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    require(&state, &headers, Scope::Admin).await?;
    let wanted = query.state.unwrap_or_else(|| "dead".into());
    if !JOB_STATES.contains(&wanted.as_str()) {
        return Err(ApiError::invalid(
            "invalid_state",
            Some("state".into()),
            "state must be one of queued, running, done, dead",
        ));
    }
    let page = page::request::<IdKey<'j'>>(query.limit.as_deref(), query.cursor.as_deref())?;
    let rows = state
        .store
        .jobs_page(&wanted, page.after.map(|k| k.0), page.limit + 1)
        .await?;
    let (rows, next_cursor) = page::finish(rows, page.limit, |j| IdKey::<'j'>(j.id));
    let jobs: Vec<JobView> = rows.into_iter().map(JobView::from).collect();
    Ok(Json(JobPage { jobs, next_cursor }))
}

/// Puts a dead job back in the queue for a fresh set of attempts.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/retry",
    operation_id = "retry_job",
    tag = "operations",
    security(("bearer" = ["admin"])),
    params(("id" = i64, Path, description = "The job id."), IdempotencyKey),
    responses(
        (status = 200, description = "The job, queued again.", body = JobView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 408, response = RequestTimeout),
        (status = 409, description = "`job_not_dead`: only dead jobs can be retried; `idempotency_key_in_flight`: a request with this `Idempotency-Key` is still running.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = IdempotencyKeyReused),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    require(&state, &headers, Scope::Admin).await?;
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound)?;
    match state.store.retry_dead_job(id).await? {
        Some(job) => {
            state.wake.notify_waiters();
            tracing::info!(job_id = id, "Dead job re-queued by an operator.");
            Ok(Json(job.into()))
        }
        None => match state.store.job(id).await? {
            Some(job) => Err(ApiError::JobNotDead(format!(
                "job {id} is {}; only dead jobs can be retried",
                job.state
            ))),
            None => Err(ApiError::NotFound),
        },
    }
}
