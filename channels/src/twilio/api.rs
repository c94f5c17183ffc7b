//! The Programmable Messaging API: `POST {api_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`
//! with a form body and HTTP Basic auth, and what its answers mean for a retry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::{Delivered, DeliveryError};

/// The most of an answer's body we read (a Message resource is about 1 KiB).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Connecting takes at most this long (or the whole timeout, when shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Twilio's error for a recipient who replied STOP.
pub const ERROR_OPTED_OUT: u32 = 21610;
/// Twilio's error for a free-form WhatsApp message outside the 24-hour window.
pub const ERROR_WINDOW_CLOSED: u32 = 63016;
/// Twilio's error for refused credentials.
pub const ERROR_AUTHENTICATION: u32 = 20003;

/// One message to create. Addresses are as Twilio expects them (with `whatsapp:` on WhatsApp).
#[derive(Debug, Clone, Default)]
pub struct CreateMessage<'a> {
    pub to: &'a str,
    /// `From`, or `None` when a Messaging Service picks the sender.
    pub from: Option<&'a str>,
    pub messaging_service_sid: Option<&'a str>,
    pub body: Option<&'a str>,
    /// A Content Template (`HX…`) instead of a body: WhatsApp outside the 24-hour window.
    pub content_sid: Option<&'a str>,
    /// The template's variables as a JSON object (`{"1": "…"}`).
    pub content_variables: Option<&'a str>,
    pub status_callback: Option<&'a str>,
}

impl CreateMessage<'_> {
    fn form(&self) -> Vec<(&'static str, &str)> {
        [
            ("To", Some(self.to)),
            ("From", self.from),
            ("MessagingServiceSid", self.messaging_service_sid),
            ("Body", self.body),
            ("ContentSid", self.content_sid),
            ("ContentVariables", self.content_variables),
            ("StatusCallback", self.status_callback),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
    }
}

/// A client of one account's Messages resource.
#[derive(Clone)]
pub struct MessagesApi {
    client: reqwest::Client,
    endpoint: Url,
    username: String,
    password: SecretString,
}

impl std::fmt::Debug for MessagesApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessagesApi")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

impl MessagesApi {
    /// A client for `account_sid`'s messages at `api_url` (`https://api.twilio.com`, or an
    /// emulator), authenticating as `username`/`password` (the account sid and auth token, or
    /// an API key sid and secret). Redirects are not followed.
    ///
    /// # Errors
    /// A reason when `api_url` cannot carry the path or the HTTP client cannot be built.
    pub fn new(
        api_url: &Url,
        account_sid: &str,
        username: String,
        password: SecretString,
        timeout: Duration,
    ) -> Result<Self, String> {
        let base = api_url.as_str().trim_end_matches('/');
        let endpoint = Url::parse(&format!(
            "{base}/2010-04-01/Accounts/{account_sid}/Messages.json"
        ))
        .map_err(|e| format!("cannot build the Messages URL: {e}"))?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("handoff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the HTTP client could not be built: {e}"))?;
        Ok(Self {
            client,
            endpoint,
            username,
            password,
        })
    }

    /// The Messages resource URL.
    #[must_use]
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Creates the message. `delivery_id` only labels the logs.
    ///
    /// # Errors
    /// See [`classify`]: opted out (21610), window closed (63016), retryable (429, 5xx,
    /// transport) or permanent (other refusals).
    pub async fn create(
        &self,
        message: &CreateMessage<'_>,
        delivery_id: &str,
    ) -> Result<Delivered, DeliveryError> {
        let result = self
            .client
            .post(self.endpoint.clone())
            .basic_auth(&self.username, Some(self.password.expose_secret()))
            .form(&message.form())
            .send()
            .await;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                // Not the error itself: its text carries the URL.
                let outcome = transport_error(&error);
                tracing::debug!(delivery_id, error = %outcome, "Twilio not reached.");
                return Err(outcome);
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_limited(response).await;
        let outcome = classify(status, &headers, body.as_deref(), Utc::now());
        match &outcome {
            Ok(delivered) => tracing::debug!(
                delivery_id,
                status = status.as_u16(),
                provider_id = delivered.provider_id.as_deref(),
                "Twilio accepted the message."
            ),
            Err(error) => tracing::debug!(
                delivery_id,
                status = status.as_u16(),
                error = %error,
                "Twilio did not accept the message."
            ),
        }
        outcome
    }
}

/// The body, or `None` when it is larger than [`MAX_RESPONSE_BYTES`] or breaks off.
async fn read_limited(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_RESPONSE_BYTES => {
                body.extend_from_slice(&chunk);
            }
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) => return Some(body),
        }
    }
}

#[derive(Deserialize)]
struct MessageResource {
    sid: Option<String>,
}

/// Twilio's error body, legacy (`{code, message, more_info, status}`) or RFC 9457
/// (`{type, title, status, code, detail, instance}`): only the code is used.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    problem_type: Option<String>,
    #[serde(default)]
    more_info: Option<String>,
}

/// The Twilio error code in an error body: `code` (a number or a numeric string), else the
/// number ending the `type` or `more_info` URL (`…/docs/errors/21610`).
#[must_use]
pub fn error_code(body: &[u8]) -> Option<u32> {
    let parsed: ErrorBody = serde_json::from_slice(body).ok()?;
    let from_value = match &parsed.code {
        Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let from_url = |url: &Option<String>| {
        let url = url.as_deref()?.trim_end_matches('/');
        let digits = url.rsplit('/').next()?;
        (!digits.is_empty() && digits.len() <= 9 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    };
    from_value
        .or_else(|| from_url(&parsed.problem_type))
        .or_else(|| from_url(&parsed.more_info))
}

/// A sid Twilio returned: 2 to 64 ASCII letters and digits.
fn is_sid(s: &str) -> bool {
    (2..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What an answer means.
///
/// - 2xx: accepted; the Message resource's `sid` is the provider id.
/// - error 21610 ([`DeliveryError::OptedOut`]) and 63016 ([`DeliveryError::WindowClosed`]),
///   whatever the HTTP status;
/// - 429 and 503: Twilio did not take the message — retry (after `Retry-After`), `sent: false`;
///   408 likewise;
/// - other 5xx: it may have — retry only where that is safe, `sent: true`;
/// - anything else (4xx, 3xx since redirects are not followed): permanent, with the code.
///
/// Texts carry the HTTP status and Twilio's code, never the body or the numbers.
///
/// # Errors
/// The [`DeliveryError`] above for anything but 2xx.
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: Option<&[u8]>,
    now: DateTime<Utc>,
) -> Result<Delivered, DeliveryError> {
    if status.is_success() {
        let provider_id = body
            .and_then(|b| serde_json::from_slice::<MessageResource>(b).ok())
            .and_then(|m| m.sid)
            .filter(|sid| is_sid(sid));
        return Ok(Delivered { provider_id });
    }
    let http = status.as_u16();
    let code = body.and_then(error_code);
    let label = match code {
        Some(code) => format!("Twilio error {code} (HTTP {http})"),
        None => format!("HTTP {http} from Twilio"),
    };
    match code {
        Some(ERROR_OPTED_OUT) => return Err(DeliveryError::OptedOut),
        Some(ERROR_WINDOW_CLOSED) => {
            return Err(DeliveryError::WindowClosed {
                message: format!(
                    "{label}: free-form WhatsApp messages are allowed only within 24 hours of \
                     the customer's last message, and no template is configured"
                ),
            });
        }
        _ => {}
    }
    if matches!(http, 408 | 429 | 503) {
        return Err(DeliveryError::Retryable {
            message: format!("{label}: not accepted now, try again later"),
            retry_after: crate::webhook::retry_after(headers, now),
            sent: false,
        });
    }
    if status.is_server_error() {
        return Err(DeliveryError::Retryable {
            message: format!("{label}: the outcome is unknown"),
            retry_after: crate::webhook::retry_after(headers, now),
            sent: true,
        });
    }
    let hint = match (http, code) {
        (401 | 403, _) | (_, Some(ERROR_AUTHENTICATION)) => {
            ": the credentials were refused; check account_sid and auth_token (or api_key_sid \
             and api_key_secret)"
        }
        (_, Some(21211)) => ": the recipient is not a valid phone number",
        (_, Some(21408)) => ": sending to this region is not enabled on the account",
        (_, Some(21606)) => ": the sender cannot send messages to this recipient",
        (_, Some(21608)) => ": a trial account can only send to verified numbers",
        (_, Some(21612 | 21614 | 21635)) => ": the recipient cannot receive messages",
        (_, Some(21617)) => ": the message is too long",
        _ if status.is_redirection() => {
            ": redirects are not followed; check channels.<name>.api_url"
        }
        _ => "",
    };
    Err(DeliveryError::Permanent {
        message: format!("{label}{hint}"),
    })
}

/// A request that failed without an answer: a connect failure never reached Twilio; anything
/// later (a timeout waiting for the answer, a reset) may have, so its outcome is unknown.
fn transport_error(error: &reqwest::Error) -> DeliveryError {
    let sent = !error.is_connect();
    let what = if error.is_connect() {
        "could not connect to Twilio"
    } else if error.is_timeout() {
        "Twilio did not answer in time; the outcome is unknown"
    } else {
        "the connection to Twilio failed; the outcome is unknown"
    };
    DeliveryError::Retryable {
        message: what.to_owned(),
        retry_after: None,
        sent,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn answer(status: u16, body: &str) -> Result<Delivered, DeliveryError> {
        classify(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            Some(body.as_bytes()),
            now(),
        )
    }

    #[test]
    fn created_messages_give_their_sid() {
        let body = r#"{"account_sid":"AC58f1","api_version":"2010-04-01","body":"hi",
            "error_code":null,"sid":"SM9b7d0123456789abcdef0123456789ab","status":"queued"}"#;
        assert_eq!(
            answer(201, body).unwrap().provider_id.as_deref(),
            Some("SM9b7d0123456789abcdef0123456789ab")
        );
        // Accepted is accepted, even when the body is not what we expect.
        assert_eq!(answer(201, "not json").unwrap().provider_id, None);
        assert_eq!(answer(200, r#"{"sid":"../x"}"#).unwrap().provider_id, None);
    }

    #[test]
    fn both_error_shapes_give_the_code() {
        let legacy = br#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient",
            "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#;
        assert_eq!(error_code(legacy), Some(21610));
        let problem = br#"{"type": "https://www.twilio.com/docs/errors/21211", "title": "Invalid",
            "status": 400, "detail": "The 'To' number is not valid.", "instance": "/x"}"#;
        assert_eq!(error_code(problem), Some(21211));
        assert_eq!(error_code(br#"{"code": "63016"}"#), Some(63016));
        assert_eq!(
            error_code(br#"{"more_info": "https://www.twilio.com/docs/errors/20003/"}"#),
            Some(20003)
        );
        assert_eq!(error_code(br#"{"type": "about:blank"}"#), None);
        assert_eq!(error_code(b"<html>"), None);
    }

    #[test]
    fn opt_out_and_window_errors_have_their_own_outcomes() {
        let body = r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient +15551234567", "status": 400}"#;
        assert_eq!(answer(400, body), Err(DeliveryError::OptedOut));
        let Err(DeliveryError::WindowClosed { message }) =
            answer(400, r#"{"code": 63016, "status": 400}"#)
        else {
            panic!("window closed");
        };
        assert!(message.contains("63016"), "{message}");
    }

    #[test]
    fn rate_limits_and_unavailability_are_retried_as_not_sent() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let outcome = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            Some(br#"{"code": 20429, "status": 429}"#),
            now(),
        );
        assert_eq!(
            outcome,
            Err(DeliveryError::Retryable {
                message: "Twilio error 20429 (HTTP 429): not accepted now, try again later".into(),
                retry_after: Some(Duration::from_secs(7)),
                sent: false,
            })
        );
        assert!(matches!(
            answer(503, ""),
            Err(DeliveryError::Retryable {
                sent: false,
                retry_after: None,
                ..
            })
        ));
        for status in [500, 502, 504] {
            assert!(
                matches!(
                    answer(status, "{}"),
                    Err(DeliveryError::Retryable { sent: true, .. })
                ),
                "{status}"
            );
        }
    }

    #[test]
    fn other_refusals_are_permanent_and_echo_nothing() {
        let body = r#"{"code": 21211, "message": "The 'To' number +1555 is not a valid phone number.", "status": 400}"#;
        let Err(DeliveryError::Permanent { message }) = answer(400, body) else {
            panic!("permanent");
        };
        assert_eq!(
            message,
            "Twilio error 21211 (HTTP 400): the recipient is not a valid phone number"
        );
        let Err(DeliveryError::Permanent { message }) = answer(401, r#"{"code": 20003}"#) else {
            panic!("permanent");
        };
        assert!(message.contains("auth_token"), "{message}");
        let Err(DeliveryError::Permanent { message }) = answer(302, "") else {
            panic!("permanent");
        };
        assert!(message.contains("redirects"), "{message}");
        assert_eq!(
            answer(404, "secret stuff"),
            Err(DeliveryError::Permanent {
                message: "HTTP 404 from Twilio".into()
            })
        );
    }

    #[test]
    fn the_form_carries_only_what_is_set() {
        let message = CreateMessage {
            to: "+15551234567",
            from: Some("+15550100000"),
            body: Some("hi"),
            status_callback: Some("https://h/s?delivery=d1"),
            ..CreateMessage::default()
        };
        assert_eq!(
            message.form(),
            [
                ("To", "+15551234567"),
                ("From", "+15550100000"),
                ("Body", "hi"),
                ("StatusCallback", "https://h/s?delivery=d1"),
            ]
        );
    }

    #[test]
    fn the_endpoint_is_under_the_account() {
        let api = MessagesApi::new(
            &Url::parse("https://api.twilio.com/").unwrap(),
            "AC0123456789abcdef0123456789abcdef",
            "AC0123456789abcdef0123456789abcdef".into(),
            SecretString::from("token"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            api.endpoint().as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        assert!(!format!("{api:?}").contains("token"));
    }
}
