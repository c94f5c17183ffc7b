//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// Ready when the database answers. The Salesforce breaker is reported but does
/// not make the gateway unready: escalations are still accepted while it is open.
async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(json!({
        "status": "ready",
        "database": "ok",
        "salesforce": state.gate.snapshot(),
    })))
}

/// Prometheus text format: this gateway's state and the process's histograms
/// ([`crate::metrics`]).
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let body = crate::metrics::render(&state).await?;
    Ok(([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body))
}
