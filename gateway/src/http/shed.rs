//! Load shedding: at most `http.max_in_flight` API requests are handled at once.
//! One more is answered 503 + `Retry-After` (`code: "overloaded"`) at once,
//! before its body is read, so memory stays bounded by
//! `max_in_flight × max_body_bytes` however many clients connect.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The middleware (`axum::middleware::from_fn_with_state` with the shared semaphore).
pub async fn shed(State(permits): State<Arc<Semaphore>>, request: Request, next: Next) -> Response {
    match permits.try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            tracing::warn!("Request shed: max_in_flight requests are being handled.");
            ApiError::Overloaded.into_response()
        }
    }
}
