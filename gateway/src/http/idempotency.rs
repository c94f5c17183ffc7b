//! The `Idempotency-Key` header on every POST (IETF
//! draft-ietf-httpapi-idempotency-key-header, Stripe's semantics).
//!
//! A POST without the header passes through untouched. With it: authenticate
//! (401 before anything is stored), validate the key (400), read the body under
//! the size limit, then claim (token id, key) in the database with the request's
//! fingerprint. The first request runs the handler; its response is stored when
//! it is final (2xx, and 4xx other than 401/403/408/413/429) and the key is
//! released otherwise, so the client may retry. A repeat of a completed request
//! gets the stored status and body back with `Idempotent-Replayed: true`; a
//! repeat while it runs gets 409, and another request under the same key 422.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::identify;
use super::body::read_bytes;
use crate::error::ApiError;
use crate::store::{Begin, IdempotencyLock, Store, StoredResponse, fingerprint, now_ms};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest accepted key, in bytes (Stripe's limit).
const MAX_KEY_LEN: usize = 255;

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    match idempotent(state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn idempotent(state: AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    let identity = identify(&state, request.headers()).await?;
    let key = parse_key(request.headers())?;
    let (parts, body) = request.into_parts();
    let bytes = read_bytes(&parts.headers, body, state.config.max_body_bytes).await?;
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let hash = fingerprint(parts.method.as_str(), target, &bytes);

    let begin = state
        .store
        .begin_idempotent(
            &identity.id,
            &key,
            &hash,
            now_ms(),
            state.config.idempotency.policy(),
        )
        .await?;
    let lock = match begin {
        Begin::Started(lock) => lock,
        Begin::Replay(stored) => {
            tracing::info!(token_id = %identity.id, status = stored.status, "Idempotent request replayed.");
            return Ok(replay(stored));
        }
        Begin::InFlight => return Err(ApiError::IdempotencyInFlight),
        Begin::Reused => return Err(ApiError::IdempotencyReused),
    };

    let mut guard = ReleaseOnDrop {
        store: state.store.clone(),
        lock,
        armed: true,
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX).await.map_err(|e| {
        // The guard releases the key: nothing was stored.
        ApiError::Internal(format!("reading the response to store it failed: {e}"))
    })?;
    // Armed until the verdict is written: a release after a completion is a no-op.
    let lock = &guard.lock.clone();
    if is_final(parts.status) {
        let stored = StoredResponse {
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body.to_vec(),
        };
        match state
            .store
            .complete_idempotent(lock, &stored, now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                token_id = %lock.token_id,
                "Idempotency key was taken over before its request completed; response not stored."
            ),
            Err(e) => {
                tracing::error!(error = %e, token_id = %lock.token_id, "Storing an idempotent response failed; releasing the key.");
                release(&state.store, lock).await;
            }
        }
    } else {
        release(&state.store, lock).await;
    }
    guard.armed = false;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Whether a response is the request's final answer, to be replayed. 5xx, and
/// the 4xx a retry may fix (auth, scope, timeout, size, rate), are not.
fn is_final(status: StatusCode) -> bool {
    (status.is_success() || status.is_client_error())
        && !matches!(
            status,
            StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::PAYLOAD_TOO_LARGE
                | StatusCode::TOO_MANY_REQUESTS
        )
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.remove(CONTENT_TYPE);
    if let Some(content_type) = stored
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(CONTENT_TYPE, content_type);
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

async fn release(store: &Store, lock: &IdempotencyLock) {
    if let Err(e) = store.release_idempotent(lock).await {
        tracing::error!(error = %e, token_id = %lock.token_id, "Releasing an idempotency key failed; it frees itself after the lock timeout.");
    }
}

/// Releases the key if the request ends without reaching a verdict (the client
/// went away and the handler was cancelled, or it panicked). Release only
/// deletes an in-flight record, so it never undoes a stored response.
struct ReleaseOnDrop {
    store: Store,
    lock: IdempotencyLock,
    armed: bool,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if self.armed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let store = self.store.clone();
            let lock = self.lock.clone();
            runtime.spawn(async move { release(&store, &lock).await });
        }
    }
}

/// The key: one header, 1–255 printable ASCII characters. The IETF form, a
/// quoted structured-field string (`"abc"`), is the same key as `abc`.
fn parse_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let invalid = |detail: &str| {
        ApiError::invalid(
            "invalid_idempotency_key",
            Some("Idempotency-Key".to_string()),
            detail.to_string(),
        )
    };
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(invalid("send exactly one Idempotency-Key header"));
    };
    let raw = value.as_bytes();
    let key = match raw {
        [b'"', inner @ .., b'"'] => inner,
        _ => raw,
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(invalid("Idempotency-Key must be 1 to 255 characters long"));
    }
    if !key.iter().all(|b| (0x20..=0x7e).contains(b))
        || (key.len() < raw.len() && key.iter().any(|b| matches!(b, b'"' | b'\\')))
    {
        return Err(invalid("Idempotency-Key must be printable ASCII"));
    }
    String::from_utf8(key.to_vec()).map_err(|_| invalid("Idempotency-Key must be printable ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &[u8]) -> Result<String, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_bytes(raw).unwrap());
        parse_key(&headers)
    }

    #[test]
    fn keys() {
        assert_eq!(key(b"abc-123").unwrap(), "abc-123");
        assert_eq!(key(b"\"abc-123\"").unwrap(), "abc-123");
        assert_eq!(key(b"a b").unwrap(), "a b");
        assert_eq!(key(&[b'k'; 255]).unwrap().len(), 255);
        assert!(key(&[b'k'; 256]).is_err());
        assert!(key(b"").is_err());
        assert!(key(b"\"\"").is_err());
        assert!(key(b"a\tb").is_err());
        assert!(key("café".as_bytes()).is_err());
        assert!(key(b"\"a\\\"b\"").is_err());
        let mut two = HeaderMap::new();
        two.append(IDEMPOTENCY_KEY, HeaderValue::from_static("a"));
        two.append(IDEMPOTENCY_KEY, HeaderValue::from_static("b"));
        assert!(parse_key(&two).is_err());
    }

    #[test]
    fn final_answers() {
        assert!(is_final(StatusCode::ACCEPTED));
        assert!(is_final(StatusCode::BAD_REQUEST));
        assert!(is_final(StatusCode::CONFLICT));
        for status in [401, 403, 408, 413, 429, 500, 503, 302] {
            assert!(!is_final(StatusCode::from_u16(status).unwrap()), "{status}");
        }
    }
}
