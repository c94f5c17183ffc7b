//! POSTing one signed Standard Webhook and reading what the answer means for a retry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Serialize;
use url::{Host, Url};

use super::WebhookSecret;
use super::target::is_private_ip;
use crate::{Delivered, DeliveryError, OutboundKind, OutboundMessage};

/// How long a receiver may take to answer (Standard Webhooks recommends 15–30 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The JSON body of every webhook Handoff sends (design §7.1).
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: OutboundKind,
    pub session_id: &'a str,
    pub data: EnvelopeData<'a>,
}

/// `data` of an [`Envelope`]: the message, and for a bridge channel the customer's address.
#[derive(Debug, Serialize)]
pub struct EnvelopeData<'a> {
    pub text: &'a str,
    pub sender_name: Option<&'a str>,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    /// The envelope of `message`; `address` is set for bridge channels only.
    #[must_use]
    pub fn new(message: &'a OutboundMessage, address: Option<&'a str>) -> Self {
        Self {
            id: &message.id,
            kind: message.kind,
            session_id: &message.session_id,
            data: EnvelopeData {
                text: &message.text,
                sender_name: message.sender_name.as_deref(),
                at: message.at,
                address,
            },
        }
    }

    /// The exact bytes that are signed and sent.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope of strings always serializes")
    }
}

/// An HTTP client that sends Standard Webhooks: redirects are never followed, every request has
/// a timeout, and unless private addresses are allowed a name that resolves to a loopback,
/// private or link-local address is refused when connecting (so DNS cannot be used to reach
/// the gateway's own network after the URL was checked at accept time).
#[derive(Clone)]
pub struct WebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// A sender with the default timeouts.
    ///
    /// # Errors
    /// When the TLS stack cannot be initialised.
    pub fn new(allow_private: bool) -> Result<Self, reqwest::Error> {
        Self::with_timeouts(allow_private, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT)
    }

    /// A sender with the given connect and whole-request timeouts.
    ///
    /// # Errors
    /// When the TLS stack cannot be initialised.
    pub fn with_timeouts(
        allow_private: bool,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .user_agent(concat!("handoff/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
        })
    }

    /// Signs `body` with `secret` and POSTs it to `url` with the Standard Webhooks headers.
    /// `webhook_id` is the delivery id: the same on every retry, so the receiver can dedupe.
    ///
    /// # Errors
    /// [`DeliveryError::Retryable`] for 408, 429, 5xx, connect errors and timeouts (honouring
    /// `Retry-After`); [`DeliveryError::Permanent`] for other answers and refused addresses.
    pub async fn post(
        &self,
        url: &Url,
        secret: &WebhookSecret,
        webhook_id: &str,
        body: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<Delivered, DeliveryError> {
        if !self.allow_private && literal_is_private(url) {
            return Err(private_address());
        }
        let timestamp = now.timestamp();
        let signature = secret.sign(webhook_id, timestamp, &body);
        let result = self
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match result {
            Ok(response) => {
                let status = response.status();
                tracing::debug!(webhook_id, status = status.as_u16(), "Webhook answered.");
                classify(status, response.headers(), now)
            }
            Err(error) => {
                // Not the error itself: its text carries the URL, which may hold a token.
                let outcome = transport_error(&error);
                tracing::debug!(webhook_id, error = %outcome, "Webhook not delivered.");
                Err(outcome)
            }
        }
    }
}

/// What an HTTP answer means: 2xx delivered; 408, 429 and 5xx worth retrying (the receiver
/// saw the request, so `sent` is true); any other answer (3xx, since redirects are not
/// followed, and 4xx) permanent.
fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Delivered, DeliveryError> {
    if status.is_success() {
        return Ok(Delivered { provider_id: None });
    }
    let code = status.as_u16();
    if code == 408 || code == 429 || status.is_server_error() {
        return Err(DeliveryError::Retryable {
            message: format!("the receiver answered {code}"),
            retry_after: retry_after(headers, now),
            sent: true,
        });
    }
    let hint = if status.is_redirection() {
        "; redirects are not followed, so configure the final URL"
    } else {
        ""
    };
    Err(DeliveryError::Permanent {
        message: format!("the receiver answered {code}{hint}"),
    })
}

/// `Retry-After` as delay-seconds or an HTTP date, relative to `now`.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn transport_error(error: &reqwest::Error) -> DeliveryError {
    if refused_private(error) {
        return private_address();
    }
    // A connect failure never reached the receiver; anything later (a timeout while waiting
    // for the answer, a reset) may have, so its outcome is unknown.
    let sent = !error.is_connect();
    let what = if error.is_timeout() {
        "the receiver did not answer in time"
    } else if error.is_connect() {
        "could not connect to the receiver"
    } else {
        "the connection to the receiver failed"
    };
    DeliveryError::Retryable {
        message: what.to_owned(),
        retry_after: None,
        sent,
    }
}

fn private_address() -> DeliveryError {
    DeliveryError::Permanent {
        message: "the webhook URL resolves to a loopback, private or link-local address, which \
                  this gateway does not call"
            .to_owned(),
    }
}

fn literal_is_private(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => is_private_ip(ip.into()),
        Some(Host::Ipv6(ip)) => is_private_ip(ip.into()),
        Some(Host::Domain(_)) | None => false,
    }
}

fn refused_private(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.downcast_ref::<PrivateAddressRefused>().is_some() {
            return true;
        }
        source = current.source();
    }
    false
}

/// The resolver of a sender that only calls public addresses.
struct PublicOnlyResolver;

#[derive(Debug, thiserror::Error)]
#[error("the name resolves to a non-public address")]
struct PrivateAddressRefused;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.iter().any(|addr| is_private_ip(addr.ip())) {
                return Err(Box::new(PrivateAddressRefused) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn answer(code: u16, retry: Option<&str>) -> Result<Delivered, DeliveryError> {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        }
        classify(StatusCode::from_u16(code).unwrap(), &headers, now())
    }

    #[test]
    fn answers_map_to_delivered_retryable_or_permanent() {
        for code in [200, 201, 202, 204] {
            assert_eq!(answer(code, None), Ok(Delivered { provider_id: None }));
        }
        for code in [408, 429, 500, 502, 503, 504] {
            let Err(DeliveryError::Retryable { sent, .. }) = answer(code, None) else {
                panic!("{code} should be retryable");
            };
            assert!(sent, "{code}: the receiver saw the request");
        }
        for code in [301, 307, 308, 400, 401, 403, 404, 410, 413, 422] {
            assert!(
                matches!(answer(code, None), Err(DeliveryError::Permanent { .. })),
                "{code} should be permanent"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_in_seconds_and_as_a_date() {
        let Err(DeliveryError::Retryable { retry_after, .. }) = answer(429, Some("120")) else {
            panic!("retryable");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(120)));
        let Err(DeliveryError::Retryable { retry_after, .. }) =
            answer(503, Some("Mon, 30 Nov 2026 10:01:30 GMT"))
        else {
            panic!("retryable");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(90)));
        let Err(DeliveryError::Retryable { retry_after, .. }) = answer(503, Some("soon")) else {
            panic!("retryable");
        };
        assert_eq!(retry_after, None);
    }

    #[test]
    fn the_envelope_has_the_design_shape() {
        let message = OutboundMessage {
            id: "dlv_1".into(),
            session_id: "s-1".into(),
            kind: OutboundKind::AgentMessage,
            text: "Hello".into(),
            sender_name: Some("Rep".into()),
            at: now(),
            email: None,
            customer_last_message_at: None,
            status_callback: None,
        };
        let body: serde_json::Value =
            serde_json::from_slice(&Envelope::new(&message, None).to_bytes()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "id": "dlv_1", "type": "agent.message", "session_id": "s-1",
                "data": {"text": "Hello", "sender_name": "Rep", "at": "2026-11-30T10:00:00Z"}
            })
        );
        let body: serde_json::Value =
            serde_json::from_slice(&Envelope::new(&message, Some("line:U1")).to_bytes()).unwrap();
        assert_eq!(body["data"]["address"], "line:U1");
    }
}
