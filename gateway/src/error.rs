//! The one error type of the HTTP API and its single `IntoResponse`:
//! `application/problem+json` with `type`, `title`, `status`, `detail`, a stable
//! `code`, and the offending `field` where there is one. 5xx answers are generic;
//! their cause is logged once, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid.
    #[error("{detail}")]
    Invalid {
        code: &'static str,
        field: Option<String>,
        detail: String,
    },
    /// 401: no token, or not a token we know.
    #[error("missing or invalid bearer token")]
    Unauthenticated,
    /// 401: a signed request (a rep-reply event, an inbound email) whose
    /// signature, JWT, timestamp or secret path does not check out, or an event
    /// for another org. The answer never says which check failed.
    #[error(
        "the request's signature, bearer JWT or secret path is missing, invalid or expired; check the secret or certificate configured on the sending side"
    )]
    InvalidSignature,
    /// 403: the token lacks the scope.
    #[error("this token lacks the '{0}' scope")]
    Forbidden(&'static str),
    /// 404: nothing there (never says whether something else exists).
    #[error("not found")]
    NotFound,
    /// 409: the same session id was used with a different body.
    #[error("{0}")]
    Conflict(String),
    /// 409: another session's id equals this one ignoring letter case (Salesforce
    /// would write both to one Case). Says nothing about the other session.
    #[error(
        "another session_id that differs from this one only in letter case is already in use; Salesforce compares external ids ignoring case, so choose a session_id that differs in more than case"
    )]
    SessionIdConflict,
    /// 409: the live session is over; nothing more reaches the rep.
    #[error("this session is closed; start a new escalation to reach a rep again")]
    SessionClosed,
    /// 409: the session is not a live conversation (it is a Case).
    #[error("{0}")]
    NotLive(String),
    /// 429: the session already has `miaw.max_queued_messages` messages waiting for the rep.
    #[error(
        "{0} messages to the rep are already waiting in this session's queue; retry after some are sent"
    )]
    TooManyQueued(usize),
    /// 503: `http.max_session_streams` session streams are open; retry shortly.
    #[error("too many session streams are open; retry shortly")]
    TooManyStreams,
    /// 409: only dead jobs can be retried.
    #[error("{0}")]
    JobNotDead(String),
    /// 409: a request with this `Idempotency-Key` is still being processed.
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyInFlight,
    /// 422: the `Idempotency-Key` was already used with a different request.
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyReused,
    /// 413: body over the configured limit.
    #[error("request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// 415: not JSON.
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    /// 503: a dependency (the database) is unavailable; retry later.
    #[error("service temporarily unavailable")]
    Unavailable(String),
    /// 408: the request body did not arrive within `http.body_read_timeout_secs`.
    #[error("the request body took too long to arrive")]
    BodyTimeout,
    /// 503: more API requests in flight than `http.max_in_flight`; retry shortly.
    #[error("the gateway is handling as many requests as it is configured to; retry shortly")]
    Overloaded,
    /// 503: a provider webhook arrived but `public_url` is not set: the gateway cannot
    /// rebuild the URL the provider signed.
    #[error(
        "public_url is not configured: set it to the URL providers reach this gateway at (HANDOFF_PUBLIC_URL), so inbound webhooks can be verified"
    )]
    PublicUrlNotConfigured,
    /// 503: the channel is enabled but not set up to receive provider webhooks; `setting`
    /// names the configuration table to complete.
    #[error("{detail}")]
    InboundNotConfigured { setting: String, detail: String },
    /// 403: a provider's subscription handshake (WhatsApp `hub.verify_token`) that does not
    /// prove it knows our verify token.
    #[error("the webhook handshake was refused: the mode or verify token does not match")]
    HandshakeRefused,
    /// 500: a bug or an unexpected failure; details only in the log.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(
        code: &'static str,
        field: impl Into<Option<String>>,
        detail: impl Into<String>,
    ) -> Self {
        ApiError::Invalid {
            code,
            field: field.into(),
            detail: detail.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Invalid { code, .. } => (StatusCode::BAD_REQUEST, code, "Invalid request"),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Unauthenticated",
            ),
            ApiError::InvalidSignature => (
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "Unauthenticated",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "insufficient_scope", "Forbidden"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "session_conflict", "Conflict"),
            ApiError::JobNotDead(_) => (StatusCode::CONFLICT, "job_not_dead", "Conflict"),
            ApiError::SessionClosed => (StatusCode::CONFLICT, "session_closed", "Conflict"),
            ApiError::TooManyQueued(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_queued_messages",
                "Too many requests",
            ),
            ApiError::TooManyStreams => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                "Service unavailable",
            ),
            ApiError::NotLive(_) => (StatusCode::CONFLICT, "session_not_live", "Conflict"),
            ApiError::SessionIdConflict => {
                (StatusCode::CONFLICT, "session_id_conflict", "Conflict")
            }
            ApiError::IdempotencyInFlight => (
                StatusCode::CONFLICT,
                "idempotency_key_in_flight",
                "Conflict",
            ),
            ApiError::IdempotencyReused => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Unprocessable content",
            ),
            ApiError::TooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "Payload too large",
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "Request timeout",
            ),
            ApiError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Service unavailable",
            ),
            ApiError::PublicUrlNotConfigured => (
                StatusCode::SERVICE_UNAVAILABLE,
                "public_url_not_configured",
                "Service unavailable",
            ),
            ApiError::InboundNotConfigured { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "inbound_not_configured",
                "Service unavailable",
            ),
            ApiError::HandshakeRefused => {
                (StatusCode::FORBIDDEN, "invalid_verify_token", "Forbidden")
            }
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        // Connection-level failures are transient: answer 503 so clients retry.
        if database_unavailable(&e) {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    }
}

/// Whether a database error means "the database is unreachable or refusing
/// work right now" (retry later) rather than a bug.
pub fn database_unavailable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    let sqlx_error = match e {
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(x)) | DbErr::Query(RuntimeErr::SqlxError(x)) => x,
        _ => return false,
    };
    match sqlx_error.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                return code.parse().is_ok_and(sqlite_busy_or_locked);
            }
            // PostgreSQL: connection exceptions (08…), shutdown / cannot connect now
            // (57P…), too many connections (53300).
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }
        _ => false,
    }
}

/// Whether a SQLite *extended* result code (what sqlx reports) is a kind of
/// SQLITE_BUSY (5) or SQLITE_LOCKED (6): another connection holds the lock, so
/// the same request succeeds later. The primary code is the low byte
/// (517 = SQLITE_BUSY_SNAPSHOT, 261 = SQLITE_BUSY_RECOVERY, 773 = SQLITE_BUSY_TIMEOUT,
/// 262 = SQLITE_LOCKED_SHAREDCACHE, 518 = SQLITE_LOCKED_VTAB).
pub fn sqlite_busy_or_locked(extended_code: i32) -> bool {
    matches!(extended_code & 0xff, 5 | 6)
}

/// The body of every error answer (`application/problem+json`, RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(
    example = json!({
        "type": "https://handoff.dev/problems/missing_field",
        "title": "Invalid request",
        "status": 400,
        "detail": "session_id is required",
        "code": "missing_field",
        "field": "session_id"
    })
)]
pub struct Problem {
    /// `https://handoff.dev/problems/<code>`.
    #[serde(rename = "type")]
    #[schema(format = "uri")]
    pub kind: String,
    /// A short, human summary of the status (`Invalid request`, `Not found`, …).
    pub title: String,
    /// The HTTP status code, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong and how to fix it; never a secret, never personal data.
    pub detail: String,
    /// A stable, machine-readable error code (`missing_field`, `unauthenticated`,
    /// `insufficient_scope`, `not_found`, `session_conflict`, …).
    pub code: String,
    /// The offending field, header or setting, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "Request failed with an internal error.")
            }
            ApiError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "Request failed: a dependency is unavailable.")
            }
            _ => {}
        }
        let field = match &self {
            ApiError::Invalid { field, .. } => field.as_deref(),
            ApiError::SessionIdConflict => Some("session_id"),
            ApiError::InboundNotConfigured { setting, .. } => Some(setting.as_str()),
            _ => None,
        };
        let body = Problem {
            kind: format!("https://handoff.dev/problems/{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: code.to_owned(),
            field: field.map(str::to_owned),
        };
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::Unauthenticated) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::IdempotencyInFlight) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if matches!(self, ApiError::Overloaded | ApiError::TooManyStreams) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ApiError::TooManyQueued(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        // The body was not (fully) read: answer first, then close rather than
        // keep reading what the client is still sending.
        if matches!(self, ApiError::TooLarge(_) | ApiError::BodyTimeout) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::response::IntoResponse;
    use sea_orm::{
        ConnectOptions, ConnectionTrait, Database, DatabaseConnection, TransactionTrait,
    };

    use super::*;

    /// Defect 13. Only the primary codes "5" and "6" were recognised, but sqlx
    /// reports SQLite's *extended* result codes, so SQLITE_BUSY_SNAPSHOT (517),
    /// SQLITE_BUSY_RECOVERY (261), SQLITE_BUSY_TIMEOUT (773) and the
    /// SQLITE_LOCKED_* codes became 500s that clients do not retry. Every kind
    /// of busy or locked is now transient; nothing else is.
    #[test]
    fn every_sqlite_busy_and_locked_code_is_transient() {
        for code in [5, 261, 517, 773, 6, 262, 518] {
            assert!(sqlite_busy_or_locked(code), "{code}");
        }
        // CONSTRAINT_UNIQUE, CONSTRAINT_NOTNULL, ERROR, READONLY, CORRUPT, FULL, IOERR_WRITE.
        for code in [2067, 1299, 1, 8, 11, 13, 778] {
            assert!(!sqlite_busy_or_locked(code), "{code}");
        }
    }

    async fn connect(url: &str, busy: Duration) -> DatabaseConnection {
        let mut options = ConnectOptions::new(url.to_string());
        options
            .sqlx_logging(false)
            .max_connections(1)
            .map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(busy)
                    .create_if_missing(true)
            });
        Database::connect(options).await.expect("connect")
    }

    fn answer(e: sea_orm::DbErr) -> (u16, Option<String>) {
        let response = ApiError::from(e).into_response();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (response.status().as_u16(), retry)
    }

    /// Real SQLite errors, provoked with two connections to one WAL file: a
    /// writer holding the lock (SQLITE_BUSY, 5, with no busy timeout), and a
    /// reader whose snapshot went stale before it tried to write
    /// (SQLITE_BUSY_SNAPSHOT, 517: before the fix, a 500). Both answer 503 with
    /// `Retry-After`.
    #[tokio::test]
    async fn real_sqlite_busy_errors_answer_503() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("busy.db").display());
        let a = connect(&url, Duration::ZERO).await;
        let b = connect(&url, Duration::ZERO).await;
        a.execute_unprepared("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();

        // 5: b holds the write lock, a may not wait.
        b.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
        let busy = a
            .execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap_err();
        b.execute_unprepared("ROLLBACK").await.unwrap();
        assert!(busy.to_string().contains("locked"), "{busy}");
        assert_eq!(answer(busy), (503, Some("5".into())));

        // 517: a reads (snapshot), b commits a write, a tries to write.
        let txn = a.begin().await.unwrap();
        txn.execute_unprepared("SELECT COUNT(*) FROM t")
            .await
            .unwrap();
        b.execute_unprepared("INSERT INTO t VALUES (2)")
            .await
            .unwrap();
        let stale = txn
            .execute_unprepared("INSERT INTO t VALUES (3)")
            .await
            .unwrap_err();
        let code = match &stale {
            sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) => match e.as_ref() {
                sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
                _ => None,
            },
            _ => None,
        };
        assert_eq!(code.as_deref(), Some("517"), "{stale:?}");
        assert_eq!(answer(stale), (503, Some("5".into())));
        txn.rollback().await.unwrap();
    }
}
