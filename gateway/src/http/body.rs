//! Reading JSON bodies with a size limit, answering problem+json on every failure.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use futures_util::StreamExt;
use serde_json::Value;

use crate::error::ApiError;

/// Reads at most `limit` bytes and parses them as JSON.
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let bytes = read_limited(body, limit, declared.is_some_and(|n| n > limit)).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::invalid(
            "invalid_json",
            None,
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// Reads at most `limit` bytes, whatever the content type (413 beyond).
pub async fn read_bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    read_limited(body, limit, declared.is_some_and(|n| n > limit)).await
}

/// Reads the body, keeping at most `limit` bytes. An oversized body (declared
/// or discovered) is answered 413 at once, with `Connection: close`; what the
/// client is still sending is drained in the background, up to a bound, so it
/// can read our answer instead of a reset connection. A body that does not
/// arrive within `http.body_read_timeout_secs` (the deadline the server puts on
/// every request body) is answered 408.
async fn read_limited(
    body: Body,
    limit: usize,
    already_too_large: bool,
) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    if already_too_large {
        drain_in_background(stream);
        return Err(ApiError::TooLarge(limit));
    }
    let mut kept = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if is_timeout(&e) {
                ApiError::BodyTimeout
            } else {
                ApiError::invalid("invalid_body", None, "the request body could not be read")
            }
        })?;
        if kept.len() + chunk.len() > limit {
            drain_in_background(stream);
            return Err(ApiError::TooLarge(limit));
        }
        kept.extend_from_slice(&chunk);
    }
    Ok(kept)
}

/// Most bytes read and discarded after a 413, and for how long.
const DRAIN_BYTES: usize = 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

fn drain_in_background(mut stream: axum::body::BodyDataStream) {
    tokio::spawn(async move {
        let drain = async {
            let mut seen = 0usize;
            while let Some(Ok(chunk)) = stream.next().await {
                seen += chunk.len();
                if seen > DRAIN_BYTES {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
    });
}

/// Whether a body error is the server's body-read deadline.
fn is_timeout(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}
