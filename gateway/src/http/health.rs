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

/// Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let gate = state.gate.snapshot();
    let sf = state.salesforce.stats();
    let jobs = state.store.job_counts().await?;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    metric(
        "handoff_salesforce_breaker_state",
        "gauge",
        "1 for the breaker's current state (closed, open, half_open).",
        &["closed", "open", "half_open"].map(|s| {
            (
                format!("{{state=\"{s}\"}}"),
                f64::from(u8::from(gate.state == s)),
            )
        }),
    );
    metric(
        "handoff_salesforce_breaker_opened_total",
        "counter",
        "Times Salesforce work was paused (breaker opened or rate limit hit).",
        &[(String::new(), gate.opened_total as f64)],
    );
    metric(
        "handoff_salesforce_probes_total",
        "counter",
        "Probe attempts made while Salesforce work was paused.",
        &[(String::new(), gate.probes_total as f64)],
    );
    metric(
        "handoff_salesforce_api_calls_total",
        "counter",
        "Salesforce REST calls made by this process.",
        &[(String::new(), sf.api_calls as f64)],
    );
    metric(
        "handoff_salesforce_token_requests_total",
        "counter",
        "OAuth token requests made by this process.",
        &[(String::new(), sf.token_requests as f64)],
    );
    let (poll_calls, last_poll_calls) = state.replies.poll_calls();
    metric(
        "handoff_case_reply_poll_calls_total",
        "counter",
        "SOQL calls (query and queryMore) the case-reply poller made in this process.",
        &[(String::new(), poll_calls as f64)],
    );
    metric(
        "handoff_case_reply_poll_calls_per_day",
        "gauge",
        "Salesforce API calls per day the poller costs at case_replies.poll_interval_secs and the last poll's page count (0 when polling is off).",
        &[(
            String::new(),
            if state.config.case_replies.poll {
                (last_poll_calls.max(1) * 86_400 / state.config.case_replies.poll_interval_secs)
                    as f64
            } else {
                0.0
            },
        )],
    );
    metric(
        "handoff_case_reply_events_total",
        "counter",
        "Rep-reply events decided in this process, by who told us first and what became of them.",
        &state
            .replies
            .decided()
            .into_iter()
            .map(|(source, outcome, n)| {
                (
                    format!("{{source=\"{source}\",outcome=\"{outcome}\"}}"),
                    n as f64,
                )
            })
            .collect::<Vec<_>>(),
    );
    metric(
        "handoff_jobs",
        "gauge",
        "Jobs in the database by state.",
        &jobs
            .iter()
            .map(|(state, n)| (format!("{{state=\"{state}\"}}"), *n as f64))
            .collect::<Vec<_>>(),
    );
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
