//! Operators: list jobs by state (the dead-letter queue) and retry dead ones.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::auth::require;
use super::page::{self, IdKey};
use crate::error::ApiError;
use crate::store::{Scope, job};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", get(list))
        .route("/v1/jobs/{id}/retry", post(retry))
}

/// The public shape of a job.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub session_id: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
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

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub const JOB_STATES: [&str; 4] = ["queued", "running", "done", "dead"];

/// `{"jobs": […], "next_cursor": …}`: jobs in one state (default `dead`), oldest first.
async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        serde_json::json!({ "jobs": jobs, "next_cursor": next_cursor }),
    ))
}

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
