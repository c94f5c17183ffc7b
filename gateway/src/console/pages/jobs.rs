//! `GET /console/jobs`: the dead-letter queue, oldest first, a page at a time; admins
//! re-queue a dead job with `POST /console/jobs/{id}/retry` (the same store call as
//! `POST /v1/jobs/{id}/retry`).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;

use super::{at_ms, or_dash, session_link};
use crate::console::error::ConsoleError;
use crate::console::layout;
use crate::console::session::Operator;
use crate::http::AppState;
use crate::store::job;

/// Dead jobs per page.
const PAGE: u64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/jobs", get(list))
        .route("/console/jobs/{id}/retry", post(retry))
}

#[derive(Deserialize)]
struct ListQuery {
    /// Show jobs after this id (the previous page's last).
    after: Option<String>,
    /// A job just re-queued.
    retried: Option<String>,
    /// A job that was not dead when retried.
    not_dead: Option<String>,
}

fn job_id(text: Option<&str>) -> Option<i64> {
    text.and_then(|t| t.parse::<i64>().ok()).filter(|n| *n > 0)
}

async fn list(
    State(state): State<AppState>,
    op: Operator,
    Query(query): Query<ListQuery>,
) -> Result<Markup, ConsoleError> {
    let after = job_id(query.after.as_deref());
    let mut rows = state.store.jobs_page("dead", after, PAGE + 1).await?;
    let more = rows.len() as u64 > PAGE;
    rows.truncate(PAGE as usize);
    let body = html! {
        h1 { "Dead jobs" }
        @if let Some(id) = job_id(query.retried.as_deref()) {
            p.notice.ok role="status" { "Job " (id) " is queued again; the worker picks it up now." }
        }
        @if let Some(id) = job_id(query.not_dead.as_deref()) {
            p.notice.bad role="status" { "Job " (id) " is not dead (it was retried already, or is running); nothing was changed." }
        }
        @if rows.is_empty() {
            p.muted #no-dead-jobs { "No dead jobs." }
        } @else {
            table.jobs {
                thead { tr {
                    th { "Job" } th { "Kind" } th { "Session" } th { "Attempts" }
                    th { "Last error" } th { "Died" }
                    @if op.is_admin() { th { } }
                } }
                tbody {
                    @for j in &rows { (row(&op, j)) }
                }
            }
            @if more {
                @if let Some(last) = rows.last() {
                    p { a href=(format!("/console/jobs?after={}", last.id)) { "Next page" } }
                }
            }
        }
    };
    Ok(layout::page("Dead jobs", Some(&op), body))
}

fn row(op: &Operator, j: &job::Model) -> Markup {
    html! {
        tr #{ "job-" (j.id) } {
            td { (j.id) }
            td { (j.kind) }
            td { (session_link(&j.session_id)) }
            td { (j.attempts) " of " (j.max_attempts) }
            td { (or_dash(j.last_error.as_deref())) }
            td { (at_ms(j.updated_at)) }
            @if op.is_admin() {
                td {
                    form.inline method="post" action=(format!("/console/jobs/{}/retry", j.id)) {
                        (layout::csrf_field(op))
                        button #{ "retry-" (j.id) } type="submit" { "Retry" }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn retry(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&form.csrf)?;
    op.require_admin()?;
    let id = job_id(Some(&id)).ok_or(ConsoleError::NotFound)?;
    match state.store.retry_dead_job(id).await? {
        Some(_) => {
            state.wake.notify_waiters();
            tracing::info!(job_id = id, by = %op.subject, "Dead job re-queued from the console.");
            Ok(Redirect::to(&format!("/console/jobs?retried={id}")).into_response())
        }
        None => match state.store.job(id).await? {
            Some(_) => Ok(Redirect::to(&format!("/console/jobs?not_dead={id}")).into_response()),
            None => Err(ConsoleError::NotFound),
        },
    }
}
