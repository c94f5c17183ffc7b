//! `/__emulator/…`: fault plan, counters and record snapshots for tests and demos.
//! Not part of Salesforce's API; unauthenticated (the emulator is a local tool).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use crate::faults::Faults;
use crate::server::{AppState, lock};
use crate::stats::Stats;

pub(crate) async fn get_faults(State(state): State<Arc<AppState>>) -> Json<Faults> {
    Json(lock(&state.faults).faults.clone())
}

/// `PUT /__emulator/faults` with a JSON `Faults` (missing fields = no fault).
pub(crate) async fn put_faults(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    if let Err(e) = faults.validate() {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
    }
    tracing::info!(?faults, "fault plan replaced");
    lock(&state.faults).set(faults.clone());
    Json(faults).into_response()
}

pub(crate) async fn get_stats(State(state): State<Arc<AppState>>) -> Json<Stats> {
    Json(lock(&state.stats).clone())
}

/// Zeroes every counter, including the daily API usage (like the start of a new day).
pub(crate) async fn reset_stats(State(state): State<Arc<AppState>>) -> StatusCode {
    *lock(&state.stats) = Stats::default();
    StatusCode::NO_CONTENT
}

/// `GET /__emulator/records/{object}`: live records of an object.
pub(crate) async fn get_records(
    State(state): State<Arc<AppState>>,
    Path(object): Path<String>,
) -> Response {
    let store = lock(&state.store);
    match store.object_name(&object) {
        Some(name) => Json(store.snapshot(&name)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("unknown object '{object}'")})),
        )
            .into_response(),
    }
}
