//! [`MiawClient`]: the MIAW custom-client REST calls and the SSE subscription (miaw.md §1–4).
//!
//! One call sends one request, except [`MiawClient::send_message`], which answers a 417 by
//! sending the same message once more with `isNewMessagingSession: true`. Nothing else is
//! retried; [`MiawError::is_retryable`] tells the caller what may be. Logs carry the
//! operation, HTTP status and conversation id — never tokens, message text or routing values.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

use super::error::MiawError;
use super::events::{ConversationEntry, parse_entries};
use super::ids::ConversationId;
use super::outgoing::{OutgoingFile, OutgoingMessage, SentMessage, file_body, message_body};
use super::stream::EventStream;
use super::token::AccessToken;

/// Largest REST response body read, in bytes (token responses with their form config are a
/// few KiB; a transcript page holds at most 50 entries).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest wait for a TCP/TLS connection, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most entries MIAW returns per transcript page.
const MAX_ENTRIES_LIMIT: u32 = 50;

/// How to reach one MIAW deployment.
#[derive(Debug, Clone)]
pub struct MiawConfig {
    /// The SCRT base URL, `http` or `https` (no host check, so a local emulator works).
    pub url: String,
    /// The org id (15 or 18 characters; MIAW is sent the 15-character form).
    pub org_id: String,
    /// The deployment's API name (`esDeveloperName`).
    pub deployment: String,
    /// `capabilitiesVersion` of token requests, default `"1"`.
    pub capabilities_version: String,
    /// Timeout of each REST request, and of the SSE request until its headers arrive.
    pub timeout: Duration,
}

impl MiawConfig {
    /// A configuration with capabilities version `"1"` and a 30 s timeout.
    pub fn new(
        url: impl Into<String>,
        org_id: impl Into<String>,
        deployment: impl Into<String>,
    ) -> Self {
        MiawConfig {
            url: url.into(),
            org_id: org_id.into(),
            deployment: deployment.into(),
            capabilities_version: "1".to_owned(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Routing status of a conversation (`GET …/conversation/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutingStatus {
    /// `ROUTED`: a rep has (or is being offered) the conversation.
    Routed,
    /// `NEEDS_ROUTING`: no rep; after a rep's `remove`, the rep ended the chat.
    NeedsRouting,
    /// `INITIAL`.
    Initial,
    /// `TRANSFER`: a rep is transferring the conversation.
    Transfer,
    /// Any other value, as sent.
    Other(String),
}

impl RoutingStatus {
    fn parse(value: &str) -> Self {
        match value {
            "ROUTED" => RoutingStatus::Routed,
            "NEEDS_ROUTING" => RoutingStatus::NeedsRouting,
            "INITIAL" => RoutingStatus::Initial,
            "TRANSFER" => RoutingStatus::Transfer,
            other => RoutingStatus::Other(other.to_owned()),
        }
    }
}

/// Which transcript entries [`MiawClient::list_entries`] asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntriesQuery {
    /// Most entries (MIAW's default 20; values above 50 are sent as 50).
    pub limit: Option<u32>,
    /// Newest first (`direction=FromEnd`) instead of oldest first.
    pub direction_from_end: bool,
}

/// A MIAW custom client. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct MiawClient {
    http: reqwest::Client,
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: String,
    org_id: String,
    deployment: String,
    capabilities_version: String,
    timeout: Duration,
}

impl MiawClient {
    /// A client with its own HTTP client (no redirects; connect timeout ≤ 10 s).
    pub fn new(config: MiawConfig) -> Result<Self, MiawError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout.min(MAX_CONNECT_TIMEOUT))
            .build()
            .map_err(|_| MiawError::Protocol("could not build the MIAW HTTP client".into()))?;
        Self::with_http(config, http)
    }

    /// A client over a shared `reqwest::Client`. It must have no overall timeout, or the
    /// event stream would be cut at it: request timeouts are set per request here.
    pub fn with_http(config: MiawConfig, http: reqwest::Client) -> Result<Self, MiawError> {
        let invalid =
            |what: &str| MiawError::Protocol(format!("invalid MIAW configuration: {what}"));
        let url = Url::parse(&config.url).map_err(|_| invalid("url is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(invalid("url must be an http or https URL with a host"));
        }
        if !matches!(config.org_id.len(), 15 | 18)
            || !config.org_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(invalid("org_id must be a 15- or 18-character org id"));
        }
        let deployment_ok = config
            .deployment
            .starts_with(|c: char| c.is_ascii_alphabetic())
            && config
                .deployment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !deployment_ok {
            return Err(invalid(
                "deployment must be the deployment's API name (letters, digits, underscores)",
            ));
        }
        if config.timeout.is_zero() {
            return Err(invalid("timeout must be positive"));
        }
        Ok(MiawClient {
            http,
            inner: Arc::new(Inner {
                base: config.url.trim_end_matches('/').to_owned(),
                org_id: config.org_id[..15].to_owned(),
                deployment: config.deployment,
                capabilities_version: config.capabilities_version,
                timeout: config.timeout,
            }),
        })
    }

    /// A token for an anonymous end user (`POST …/authorization/unauthenticated/access-token`).
    pub async fn unauthenticated_token(&self) -> Result<AccessToken, MiawError> {
        let body = self.token_request_body();
        let request = self
            .request(
                Method::POST,
                "/iamessage/api/v2/authorization/unauthenticated/access-token",
                None,
            )
            .json(&body);
        let response = self.json("unauthenticated_token", request).await?;
        AccessToken::from_response(&response)
    }

    /// A token for a verified end user. `customer_identity_token` is a JWT from
    /// [`IdentitySigner::sign`](super::IdentitySigner::sign). A failed verification still
    /// succeeds, anonymously: check [`AccessToken::is_authenticated`].
    pub async fn authenticated_token(
        &self,
        customer_identity_token: &str,
    ) -> Result<AccessToken, MiawError> {
        let mut body = self.token_request_body();
        body["authorizationType"] = json!("JWT");
        body["customerIdentityToken"] = json!(customer_identity_token);
        let request = self
            .request(
                Method::POST,
                "/iamessage/api/v2/authorization/authenticated/access-token",
                None,
            )
            .json(&body);
        let response = self.json("authenticated_token", request).await?;
        AccessToken::from_response(&response)
    }

    /// A new token for the same end user (same subject), e.g. before `token` expires.
    pub async fn continuation_token(&self, token: &str) -> Result<AccessToken, MiawError> {
        let request = self.request(
            Method::GET,
            "/iamessage/api/v2/authorization/continuation-access-token",
            Some(token),
        );
        let response = self.json("continuation_token", request).await?;
        AccessToken::from_response(&response)
    }

    /// Creates the conversation `id` (and its first messaging session, which is routed at
    /// once). Creating the same id again with the same token's subject succeeds again.
    pub async fn create_conversation(
        &self,
        token: &str,
        id: &ConversationId,
        routing_attributes: &BTreeMap<String, String>,
        language: Option<&str>,
    ) -> Result<(), MiawError> {
        let mut body = json!({
            "conversationId": id.to_string(),
            "esDeveloperName": self.inner.deployment,
            "routingAttributes": routing_attributes,
        });
        if let Some(language) = language {
            body["language"] = json!(language);
        }
        let request = self
            .request(Method::POST, "/iamessage/api/v2/conversation", Some(token))
            .json(&body);
        self.send("create_conversation", Some(id), request).await?;
        Ok(())
    }

    /// On 417 resends once with isNewMessagingSession = true (and the routing attributes).
    pub async fn send_message(
        &self,
        token: &str,
        id: &ConversationId,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, MiawError> {
        let path = format!("/iamessage/api/v2/conversation/{id}/message");
        let first = self
            .request(Method::POST, &path, Some(token))
            .json(&message_body(&self.inner.deployment, message, false));
        match self.send("send_message", Some(id), first).await {
            Ok(_) => Ok(SentMessage { reopened: false }),
            Err(MiawError::SessionEnded) => {
                tracing::info!(conversation_id = %id, "MIAW session ended; starting a new one");
                let again = self
                    .request(Method::POST, &path, Some(token))
                    .json(&message_body(&self.inner.deployment, message, true));
                self.send("send_message_new_session", Some(id), again)
                    .await?;
                Ok(SentMessage { reopened: true })
            }
            Err(err) => Err(err),
        }
    }

    /// Sends a file (multipart, ≤ 5 MB; larger files are refused as 413 without a request).
    pub async fn send_file(
        &self,
        token: &str,
        id: &ConversationId,
        file: &OutgoingFile,
    ) -> Result<(), MiawError> {
        let (content_type, body) = file_body(&self.inner.deployment, file)?;
        let request = self
            .request(
                Method::POST,
                &format!("/iamessage/api/v2/conversation/{id}/file"),
                Some(token),
            )
            .header(CONTENT_TYPE, content_type)
            .body(body);
        self.send("send_file", Some(id), request).await?;
        Ok(())
    }

    /// Shows (`started`) or hides the end user's typing indicator.
    pub async fn typing(
        &self,
        token: &str,
        id: &ConversationId,
        started: bool,
    ) -> Result<(), MiawError> {
        let entry_type = if started {
            "TypingStartedIndicator"
        } else {
            "TypingStoppedIndicator"
        };
        let request = self
            .request(
                Method::POST,
                &format!("/iamessage/api/v2/conversation/{id}/entry"),
                Some(token),
            )
            .json(&json!({"entryType": entry_type, "id": Uuid::new_v4().to_string()}));
        self.send("typing", Some(id), request).await?;
        Ok(())
    }

    /// Ends the current messaging session; the conversation stays open (a later message
    /// starts a new session, see [`send_message`](Self::send_message)).
    pub async fn end_session(&self, token: &str, id: &ConversationId) -> Result<(), MiawError> {
        let request = self
            .request(
                Method::DELETE,
                &format!("/iamessage/api/v2/conversation/{id}/session"),
                Some(token),
            )
            .query(&[("esDeveloperName", self.inner.deployment.as_str())]);
        self.send("end_session", Some(id), request).await?;
        Ok(())
    }

    /// Closes the conversation for good: nobody can send in it afterwards.
    pub async fn close_conversation(
        &self,
        token: &str,
        id: &ConversationId,
    ) -> Result<(), MiawError> {
        let request = self
            .request(
                Method::DELETE,
                &format!("/iamessage/api/v2/conversation/{id}"),
                Some(token),
            )
            .query(&[("esDeveloperName", self.inner.deployment.as_str())]);
        self.send("close_conversation", Some(id), request).await?;
        Ok(())
    }

    /// The conversation's routing status.
    pub async fn routing_status(
        &self,
        token: &str,
        id: &ConversationId,
    ) -> Result<RoutingStatus, MiawError> {
        let request = self.request(
            Method::GET,
            &format!("/iamessage/api/v2/conversation/{id}"),
            Some(token),
        );
        let body = self.json("routing_status", request).await?;
        let status = body
            .get("routingStatus")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                MiawError::Protocol("routing status response has no routingStatus".into())
            })?;
        Ok(RoutingStatus::parse(status))
    }

    /// One page of the conversation's transcript.
    pub async fn list_entries(
        &self,
        token: &str,
        id: &ConversationId,
        query: &EntriesQuery,
    ) -> Result<Vec<ConversationEntry>, MiawError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(limit) = query.limit {
            params.push(("limit", limit.clamp(1, MAX_ENTRIES_LIMIT).to_string()));
        }
        let direction = if query.direction_from_end {
            "FromEnd"
        } else {
            "FromStart"
        };
        params.push(("direction", direction.to_owned()));
        let request = self
            .request(
                Method::GET,
                &format!("/iamessage/api/v2/conversation/{id}/entries"),
                Some(token),
            )
            .query(&params);
        let body = self.json("list_entries", request).await?;
        parse_entries(&body)
    }

    /// One SSE connection (the caller reconnects, with `Backoff`, a fresh token on 401, and its stored cursor).
    ///
    /// `last_event_id` is the token's `lastEventId` on the first connection, then the id of
    /// the last event handled. MIAW keeps one stream per token: a second `subscribe` with
    /// the same token closes the first.
    pub async fn subscribe(
        &self,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, MiawError> {
        let mut request = self
            .http
            .get(format!("{}/eventrouter/v1/sse", self.inner.base))
            .header(ACCEPT, "text/event-stream")
            .header(AUTHORIZATION, bearer(token))
            .header("X-Org-Id", &self.inner.org_id);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-Id", id);
        }
        let started = Instant::now();
        let sent = tokio::time::timeout(self.inner.timeout, request.send()).await;
        // Timed until the answer's head: the stream itself lasts as long as the session.
        crate::metrics::record(
            "miaw_subscribe",
            started.elapsed(),
            match &sent {
                Ok(Ok(response)) => crate::metrics::Outcome::Answered(response.status().as_u16()),
                Ok(Err(_)) | Err(_) => crate::metrics::Outcome::Transport,
            },
        );
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return Err(MiawError::transport(&err)),
            Err(_) => {
                return Err(MiawError::Unavailable {
                    status: None,
                    message: "the event stream did not answer in time".into(),
                });
            }
        };
        let status = response.status();
        tracing::debug!(
            operation = "subscribe",
            status = status.as_u16(),
            "MIAW call"
        );
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = tokio::time::timeout(self.inner.timeout, read_limited(response))
                .await
                .unwrap_or_else(|_| Ok(Vec::new()))
                .unwrap_or_default();
            return Err(MiawError::from_response(status, &headers, &body));
        }
        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if !is_sse {
            return Err(MiawError::Protocol(
                "the event stream answered without text/event-stream".into(),
            ));
        }
        Ok(EventStream::from_response(response))
    }

    fn token_request_body(&self) -> Value {
        json!({
            "orgId": self.inner.org_id,
            "esDeveloperName": self.inner.deployment,
            "capabilitiesVersion": self.inner.capabilities_version,
            "platform": "Web",
            "context": {"appName": "Handoff", "clientVersion": env!("CARGO_PKG_VERSION")},
        })
    }

    fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.inner.base))
            .timeout(self.inner.timeout)
            .header(ACCEPT, "application/json");
        match token {
            Some(token) => request.header(AUTHORIZATION, bearer(token)),
            None => request,
        }
    }

    /// Sends a request; the body of a 2xx answer, or the mapped error.
    async fn send(
        &self,
        operation: &'static str,
        conversation: Option<&ConversationId>,
        request: RequestBuilder,
    ) -> Result<Vec<u8>, MiawError> {
        let started = Instant::now();
        let result = async {
            let response = request
                .send()
                .await
                .map_err(|err| MiawError::transport(&err))?;
            let status = response.status();
            let headers: HeaderMap = response.headers().clone();
            let body = read_limited(response).await?;
            Ok::<(StatusCode, HeaderMap, Vec<u8>), MiawError>((status, headers, body))
        }
        .await;
        crate::metrics::record(
            // Bounded: `operation` is one of this client's fixed names.
            format!("miaw_{operation}"),
            started.elapsed(),
            match &result {
                Ok((status, _, _)) => crate::metrics::Outcome::Answered(status.as_u16()),
                // Too large a body is an answer, but not one we could read: count it with
                // the transport failures.
                Err(_) => crate::metrics::Outcome::Transport,
            },
        );
        let (status, headers, body) = match result {
            Ok(parts) => parts,
            Err(err) => {
                tracing::warn!(operation, conversation_id = conversation.map(tracing::field::display), error = %err, "MIAW call failed");
                return Err(err);
            }
        };
        if status.is_success() {
            tracing::debug!(
                operation,
                conversation_id = conversation.map(tracing::field::display),
                status = status.as_u16(),
                "MIAW call"
            );
            Ok(body)
        } else {
            let err = MiawError::from_response(status, &headers, &body);
            tracing::info!(operation, conversation_id = conversation.map(tracing::field::display), status = status.as_u16(), error = %err, "MIAW call refused");
            Err(err)
        }
    }

    async fn json(
        &self,
        operation: &'static str,
        request: RequestBuilder,
    ) -> Result<Value, MiawError> {
        let body = self.send(operation, None, request).await?;
        serde_json::from_slice(&body)
            .map_err(|_| MiawError::Protocol(format!("{operation}: the response is not JSON")))
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Reads a response body, refusing one larger than [`MAX_RESPONSE_BYTES`].
async fn read_limited(mut response: Response) -> Result<Vec<u8>, MiawError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| MiawError::transport(&err))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(MiawError::Protocol(format!(
                "response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MiawConfig {
        MiawConfig::new("http://127.0.0.1:9/", "00D000000000001AAA", "Handoff_Chat")
    }

    #[test]
    fn config_is_checked() {
        let client = MiawClient::new(config()).unwrap();
        assert_eq!(client.inner.org_id, "00D000000000001");
        assert_eq!(client.inner.base, "http://127.0.0.1:9");
        for bad in [
            MiawConfig {
                url: "ftp://x".into(),
                ..config()
            },
            MiawConfig {
                url: "not a url".into(),
                ..config()
            },
            MiawConfig {
                org_id: "00D1".into(),
                ..config()
            },
            MiawConfig {
                deployment: "1abc".into(),
                ..config()
            },
            MiawConfig {
                deployment: "a-b".into(),
                ..config()
            },
            MiawConfig {
                timeout: Duration::ZERO,
                ..config()
            },
        ] {
            assert!(matches!(MiawClient::new(bad), Err(MiawError::Protocol(_))));
        }
    }

    #[test]
    fn routing_statuses_parse() {
        assert_eq!(RoutingStatus::parse("ROUTED"), RoutingStatus::Routed);
        assert_eq!(
            RoutingStatus::parse("NEEDS_ROUTING"),
            RoutingStatus::NeedsRouting
        );
        assert_eq!(RoutingStatus::parse("INITIAL"), RoutingStatus::Initial);
        assert_eq!(RoutingStatus::parse("TRANSFER"), RoutingStatus::Transfer);
        assert_eq!(
            RoutingStatus::parse("QUEUED"),
            RoutingStatus::Other("QUEUED".into())
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_unavailable_and_retryable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = MiawClient::new(MiawConfig {
            url: format!("http://127.0.0.1:{port}"),
            ..config()
        })
        .unwrap();
        let err = client.unauthenticated_token().await.unwrap_err();
        assert!(
            matches!(err, MiawError::Unavailable { status: None, .. }),
            "{err:?}"
        );
        assert!(err.is_retryable());
    }
}
