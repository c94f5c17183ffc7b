//! The HTTP API (design §7). One router per module, merged here.

mod auth;
mod body;
mod escalations;
mod health;
mod idempotency;
pub mod jobs;
mod page;
mod sandbox;
pub mod sessions;

use std::sync::Arc;

use axum::Router;
use tokio::sync::Notify;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::escalation::gate::Gate;
use crate::store::Store;

pub use sandbox::SandboxInfo;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub channels: Arc<channels::Registry>,
    /// Wakes the worker when a job is enqueued.
    pub wake: Arc<Notify>,
    /// The Salesforce circuit breaker / rate-limit pause (shown in /readyz and /metrics).
    pub gate: Arc<Gate>,
    /// The Salesforce client (its counters feed /metrics).
    pub salesforce: salesforce::Client,
    /// Set only in sandbox mode.
    pub sandbox: Option<Arc<SandboxInfo>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(escalations::router())
        .merge(sessions::router())
        .merge(health::router())
        .merge(jobs::router())
        .merge(sandbox::router())
        // Every POST above honours an Idempotency-Key header (not the fallback).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .fallback(|| async { crate::error::ApiError::NotFound })
        .with_state(state)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
