//! Outgoing webhook requests (inbound messages, status callbacks, the handshake): the HTTP
//! client, the log of attempts, and the count of background deliveries still running.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::{HeaderName, HeaderValue, Method};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::server::lock;

/// Most delivery attempts kept in the log (oldest dropped first).
pub const CALLBACK_LOG_LIMIT: usize = 10_000;

/// Largest webhook answer read back (longer answers are cut).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What a webhook request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackKind {
    /// A customer's message.
    Inbound,
    /// The same inbound request sent again (`replay_last_inbound`).
    Replay,
    /// A status update for a message we sent (Twilio `StatusCallback`, Meta `statuses[]`).
    Status,
    /// Meta's `GET` verification handshake.
    Handshake,
}

/// One webhook delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackRecord {
    /// What the request carried.
    pub kind: CallbackKind,
    /// The URL requested.
    pub url: String,
    /// The provider message id concerned (empty for the handshake).
    pub message_id: String,
    /// For status updates: the status reported (`sent`, `delivered`, …).
    pub status: Option<String>,
    /// The HTTP status answered, when an answer arrived.
    pub response_status: Option<u16>,
    /// Why no answer arrived (connection refused, timeout, …).
    pub error: Option<String>,
    /// When the attempt was made (wall clock).
    pub at: DateTime<Utc>,
}

/// What a webhook answered to an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboundResult {
    /// HTTP status of the webhook's answer.
    pub status: u16,
    /// The provider's id of the message delivered (Twilio `MessageSid`, WhatsApp `wamid.…`).
    pub sid: String,
    /// The answer's body (cut at 64 KiB), e.g. TwiML.
    pub body: String,
    /// The answer's `Content-Type`, if any.
    pub content_type: Option<String>,
}

/// A fully built, signed webhook request, kept so it can be sent again byte for byte.
#[derive(Debug, Clone)]
pub(crate) struct SignedRequest {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: Bytes,
    pub(crate) message_id: String,
}

/// The answer to one webhook request.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) content_type: Option<String>,
}

/// Sends webhook requests and remembers the attempts.
pub(crate) struct Poster {
    client: reqwest::Client,
    log: Mutex<VecDeque<CallbackRecord>>,
    pending: watch::Sender<usize>,
    pub(crate) cancel: CancellationToken,
}

impl Poster {
    pub(crate) fn new(user_agent: &'static str, cancel: CancellationToken) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client always builds");
        Poster {
            client,
            log: Mutex::new(VecDeque::new()),
            pending: watch::Sender::new(0),
            cancel,
        }
    }

    /// Sends `req` once and logs the attempt.
    pub(crate) async fn send(
        &self,
        req: &SignedRequest,
        kind: CallbackKind,
        status: Option<&str>,
    ) -> Result<Answer, reqwest::Error> {
        let mut builder = self
            .client
            .request(req.method.clone(), &req.url)
            .body(req.body.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let result = match builder.send().await {
            Ok(resp) => read_answer(resp).await,
            Err(e) => Err(e),
        };
        // The handshake's query carries the verify token: keep it out of the log.
        let url = match kind {
            CallbackKind::Handshake => req.url.split('?').next().unwrap_or_default().to_string(),
            _ => req.url.clone(),
        };
        let record = CallbackRecord {
            kind,
            url,
            message_id: req.message_id.clone(),
            status: status.map(str::to_string),
            response_status: result.as_ref().ok().map(|a| a.status),
            error: result.as_ref().err().map(describe),
            at: Utc::now(),
        };
        match &record.error {
            Some(error) => {
                tracing::info!(?kind, status = record.status.as_deref(), %error, "webhook not delivered")
            }
            None => tracing::debug!(
                ?kind,
                status = record.status.as_deref(),
                answer = record.response_status,
                "webhook delivered"
            ),
        }
        let mut log = lock(&self.log);
        if log.len() >= CALLBACK_LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(record);
        result
    }

    /// The logged attempts, oldest first.
    pub(crate) fn records(&self) -> Vec<CallbackRecord> {
        lock(&self.log).iter().cloned().collect()
    }

    /// Runs `work` in the background, counted until it ends (or the emulator shuts down).
    pub(crate) fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.pending.send_modify(|n| *n += 1);
        let guard = PendingGuard(self.pending.clone());
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            let _guard = guard;
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = work => {}
            }
        });
    }

    /// Waits until no background delivery is running.
    pub(crate) async fn settled(&self) {
        let mut rx = self.pending.subscribe();
        // The sender lives as long as `self`, so this only returns once the count is zero.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Decrements the pending count when a background delivery ends, even by panic.
struct PendingGuard(watch::Sender<usize>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn read_answer(mut resp: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        content_type,
    })
}

/// A short reason without the URL (which may carry query parameters).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "answer unreadable"
    } else {
        "request failed"
    };
    let source = std::error::Error::source(e)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("{kind}{source}")
}

/// Checks a webhook URL: absolute `http` or `https`, with a host.
pub(crate) fn check_webhook_url(field: &'static str, value: &str) -> crate::Result<()> {
    let parsed = url::Url::parse(value)
        .map_err(|e| crate::Error::invalid(field, format!("not an absolute URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(crate::Error::invalid(
            field,
            "must be an http or https URL with a host",
        ));
    }
    Ok(())
}
