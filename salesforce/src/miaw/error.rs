//! [`MiawError`]: every way a MIAW call can fail, mapped from HTTP status codes (miaw.md §3.14).
//!
//! No variant holds an access token or message text. `Display` names the status and what to
//! do next but not Salesforce's `message`, which can quote request values (routing attribute
//! values are customer data); the message stays in the variant for callers that want it.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

/// Longest Salesforce error message (or non-JSON body excerpt) kept in an error, in bytes.
const MESSAGE_BYTES: usize = 512;

/// A failed MIAW call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MiawError {
    /// HTTP 401: the access token is expired or invalid (`Jwt is expired`). Get a
    /// continuation token or a new token, then retry.
    #[error("MIAW refused the access token (HTTP 401): get a continuation or new token and retry")]
    Unauthorized {
        /// Salesforce's message, e.g. `Jwt is expired`.
        message: String,
    },
    /// HTTP 429: a MIAW rate limit (per-org token requests, per-conversation messages).
    #[error("MIAW rate limit reached (HTTP 429): retry after {}", match retry_after { Some(d) => format!("{} s", d.as_secs()), None => "a pause".to_owned() })]
    RateLimited {
        /// The `Retry-After` header, when Salesforce sent one.
        retry_after: Option<Duration>,
    },
    /// HTTP 417: the messaging session has ended and resending with
    /// `isNewMessagingSession: true` did not start a new one.
    #[error("the MIAW messaging session has ended and a new one could not be started (HTTP 417)")]
    SessionEnded,
    /// Any other 4xx: the request is wrong for this deployment or this conversation's state
    /// (bad conversation id, unknown deployment, closed conversation, file too large…).
    /// Retrying it unchanged fails again.
    #[error(
        "MIAW rejected the request (HTTP {status}): fix the request; the message field says why"
    )]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Salesforce's message. May quote request values: do not log it.
        message: String,
    },
    /// 5xx, a transport error or a timeout: MIAW may be down. Retry later; a non-idempotent
    /// request may or may not have been applied.
    #[error("MIAW is unavailable ({}); retry later", match status { Some(s) => format!("HTTP {s}"), None => message.clone() })]
    Unavailable {
        /// The HTTP status, `None` when no response arrived.
        status: Option<u16>,
        /// What went wrong (our own words for transport errors; an excerpt otherwise).
        message: String,
    },
    /// A success answer (or a stream event) this client cannot understand.
    #[error("unexpected MIAW response: {0}")]
    Protocol(String),
}

impl MiawError {
    /// True when the same request may succeed later without change: rate limits and
    /// unavailability. A 401 is not retryable as is: it needs a new token first.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MiawError::RateLimited { .. } | MiawError::Unavailable { .. }
        )
    }

    /// The HTTP status behind the error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            MiawError::Unauthorized { .. } => Some(401),
            MiawError::RateLimited { .. } => Some(429),
            MiawError::SessionEnded => Some(417),
            MiawError::Rejected { status, .. } => Some(*status),
            MiawError::Unavailable { status, .. } => *status,
            MiawError::Protocol(_) => None,
        }
    }

    /// Maps a non-2xx answer. The body is read as `{"message": …}` when it is JSON, else as
    /// text (the SSE endpoint answers 401 with a bare `Jwt is expired`).
    pub(crate) fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let message = error_message(body);
        match status.as_u16() {
            401 => MiawError::Unauthorized { message },
            417 => MiawError::SessionEnded,
            429 => MiawError::RateLimited {
                retry_after: retry_after(headers),
            },
            408 => MiawError::Unavailable {
                status: Some(408),
                message,
            },
            code @ 500..=599 => MiawError::Unavailable {
                status: Some(code),
                message,
            },
            code => MiawError::Rejected {
                status: code,
                message,
            },
        }
    }

    /// Maps a transport error (no response, or a body that broke off) without its URL.
    pub(crate) fn transport(err: &reqwest::Error) -> Self {
        let message = if err.is_timeout() {
            "request timed out"
        } else if err.is_connect() {
            "could not connect"
        } else if err.is_body() || err.is_decode() {
            "error reading the response body"
        } else {
            "error sending the request"
        };
        MiawError::Unavailable {
            status: None,
            message: message.to_owned(),
        }
    }
}

/// The `message` of a JSON error body, else a bounded excerpt of the text.
fn error_message(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(json) => match json.get("message").and_then(Value::as_str) {
            Some(message) => message.to_owned(),
            None => json
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        },
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    };
    truncate(&text, MESSAGE_BYTES)
}

/// At most `max` bytes of `text`, cut on a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn map(status: u16, headers: &HeaderMap, body: &str) -> MiawError {
        MiawError::from_response(
            StatusCode::from_u16(status).unwrap(),
            headers,
            body.as_bytes(),
        )
    }

    #[test]
    fn expired_jwt_is_unauthorized_json_or_text() {
        let json = map(401, &HeaderMap::new(), r#"{"message":"Jwt is expired"}"#);
        assert_eq!(
            json,
            MiawError::Unauthorized {
                message: "Jwt is expired".into()
            }
        );
        let text = map(401, &HeaderMap::new(), "Jwt is expired\n");
        assert_eq!(
            text,
            MiawError::Unauthorized {
                message: "Jwt is expired".into()
            }
        );
        assert_eq!(json.status(), Some(401));
        assert!(!json.is_retryable());
    }

    #[test]
    fn status_417_is_session_ended() {
        let err = map(
            417,
            &HeaderMap::new(),
            r#"{"message":"no messaging session"}"#,
        );
        assert_eq!(err, MiawError::SessionEnded);
        assert_eq!(err.status(), Some(417));
        assert!(!err.is_retryable());
    }

    #[test]
    fn status_429_keeps_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let err = map(429, &headers, "{}");
        assert_eq!(
            err,
            MiawError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(err.is_retryable());
        assert_eq!(
            map(429, &HeaderMap::new(), ""),
            MiawError::RateLimited { retry_after: None }
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            map(429, &headers, ""),
            MiawError::RateLimited {
                retry_after: Some(Duration::ZERO)
            }
        );
    }

    #[test]
    fn server_errors_are_unavailable_and_retryable() {
        for status in [500, 502, 503, 504, 408] {
            let err = map(status, &HeaderMap::new(), "<html>maintenance</html>");
            assert_eq!(
                err,
                MiawError::Unavailable {
                    status: Some(status),
                    message: "<html>maintenance</html>".into()
                }
            );
            assert!(err.is_retryable());
            assert_eq!(err.status(), Some(status));
        }
    }

    #[test]
    fn other_client_errors_are_rejected_with_the_message() {
        let err = map(
            400,
            &HeaderMap::new(),
            r#"{"message":"Specify the conversationId in UUID format. The UUID must be in lowercase."}"#,
        );
        assert_eq!(
            err,
            MiawError::Rejected {
                status: 400,
                message:
                    "Specify the conversationId in UUID format. The UUID must be in lowercase."
                        .into()
            }
        );
        assert!(!err.is_retryable());
        assert_eq!(map(409, &HeaderMap::new(), "").status(), Some(409));
        assert_eq!(map(413, &HeaderMap::new(), "").status(), Some(413));
    }

    #[test]
    fn display_names_the_status_but_not_the_message() {
        let err = map(
            400,
            &HeaderMap::new(),
            r#"{"message":"value ann@example.com too long"}"#,
        );
        let shown = err.to_string();
        assert!(shown.contains("HTTP 400"), "{shown}");
        assert!(!shown.contains("ann@example.com"), "{shown}");
    }

    #[test]
    fn long_bodies_are_truncated() {
        let body = "é".repeat(1000);
        let MiawError::Rejected { message, .. } = map(400, &HeaderMap::new(), &body) else {
            panic!("expected Rejected");
        };
        assert!(message.len() <= MESSAGE_BYTES);
    }
}
