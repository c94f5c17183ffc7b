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

/// Reads the body, keeping at most `limit` bytes. An oversized body is still
/// drained (up to a bound, discarded) so the client reads our 413 instead of a
/// reset connection.
async fn read_limited(
    body: Body,
    limit: usize,
    already_too_large: bool,
) -> Result<Vec<u8>, ApiError> {
    const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);
    let drain_cap = limit.saturating_mul(4).max(16 * 1024 * 1024);
    let mut too_large = already_too_large;
    let mut kept = Vec::new();
    let mut seen = 0usize;
    let mut stream = body.into_data_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                ApiError::invalid("invalid_body", None, "the request body could not be read")
            })?;
            seen += chunk.len();
            if seen > limit {
                too_large = true;
            }
            if !too_large {
                kept.extend_from_slice(&chunk);
            }
            if seen > drain_cap {
                break;
            }
        }
        Ok::<(), ApiError>(())
    };
    match tokio::time::timeout(DRAIN_TIME, read).await {
        Ok(result) => result?,
        Err(_) if too_large => {}
        Err(_) => {
            return Err(ApiError::invalid(
                "body_timeout",
                None,
                "the request body took too long to arrive",
            ));
        }
    }
    if too_large {
        return Err(ApiError::TooLarge(limit));
    }
    Ok(kept)
}
