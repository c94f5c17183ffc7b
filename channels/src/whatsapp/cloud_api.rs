//! The WhatsApp Cloud API's send call: `POST {api_url}/{api_version}/{phone_number_id}/messages`
//! with the access token as a Bearer token, and what its answer means for a retry. Graph
//! errors arrive as `{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`;
//! their texts may quote what was sent, so only the codes are kept.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{Delivered, DeliveryError};

/// The most of an answer that is read; a longer one is not a Graph API answer.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Graph error: more than 24 hours since the customer last wrote ("re-engagement message").
pub const RE_ENGAGEMENT: i64 = 131_047;
/// Graph error: the access token expired or was revoked.
pub const TOKEN_INVALID: i64 = 190;
/// Graph errors that mean "too many requests": application (4), business account (80007),
/// Cloud API throughput (130429) and pair rate limits (131056). Nothing was sent.
pub const RATE_LIMITS: [i64; 4] = [4, 80_007, 130_429, 131_056];
/// Graph errors that say the message was not sent although the answer is a 5xx: service
/// unavailable (2), "message failed to send due to an unknown error" (131000), Cloud API
/// service unavailable (131016).
const NOT_SENT_SERVER_ERRORS: [i64; 3] = [2, 131_000, 131_016];

/// One message's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content<'a> {
    /// Free-form text (only inside the customer-service window).
    Text(&'a str),
    /// An approved template, with its one body parameter when it takes one.
    Template {
        name: &'a str,
        language: &'a str,
        parameter: Option<&'a str>,
    },
}

/// Why a send did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Graph error 131047: the customer-service window is closed; nothing was sent.
    ReEngagement,
    /// Any other outcome, classified for the outbox.
    Failed(DeliveryError),
}

/// The send endpoint of one business phone number.
#[derive(Clone)]
pub struct CloudApi {
    client: reqwest::Client,
    endpoint: Url,
    token: SecretString,
}

impl std::fmt::Debug for CloudApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudApi")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SendRequest<'a> {
    messaging_product: &'static str,
    recipient_type: &'static str,
    to: &'a str,
    #[serde(flatten)]
    body: Body<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    biz_opaque_callback_data: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Body<'a> {
    Text { text: TextBody<'a> },
    Template { template: TemplateBody<'a> },
}

#[derive(Serialize)]
struct TextBody<'a> {
    preview_url: bool,
    body: &'a str,
}

#[derive(Serialize)]
struct TemplateBody<'a> {
    name: &'a str,
    language: Language<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component<'a>>,
}

#[derive(Serialize)]
struct Language<'a> {
    code: &'a str,
}

#[derive(Serialize)]
struct Component<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    parameters: Vec<Parameter<'a>>,
}

#[derive(Serialize)]
struct Parameter<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    messages: Vec<SentMessage>,
}

#[derive(Deserialize)]
struct SentMessage {
    id: String,
}

#[derive(Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

/// The parts of a Graph error that are safe to keep (no `message`, which may quote input).
#[derive(Debug, Default, Deserialize)]
struct GraphError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

/// The JSON body of one send: `to` is the number's digits, without `+`.
#[must_use]
pub fn request_body(to: &str, content: Content<'_>, callback_data: Option<&str>) -> Vec<u8> {
    let body = match content {
        Content::Text(text) => Body::Text {
            text: TextBody {
                preview_url: false,
                body: text,
            },
        },
        Content::Template {
            name,
            language,
            parameter,
        } => Body::Template {
            template: TemplateBody {
                name,
                language: Language { code: language },
                components: parameter
                    .map(|text| Component {
                        kind: "body",
                        parameters: vec![Parameter { kind: "text", text }],
                    })
                    .into_iter()
                    .collect(),
            },
        },
    };
    serde_json::to_vec(&SendRequest {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to,
        body,
        biz_opaque_callback_data: callback_data,
    })
    .expect("a request of strings always serializes")
}

impl CloudApi {
    /// A client for `endpoint` (the full `…/messages` URL) authenticating with `token`; each
    /// request may take `timeout` in all. Redirects are never followed (they would carry the
    /// token elsewhere).
    ///
    /// # Errors
    /// When the TLS stack cannot be initialised.
    pub fn new(
        endpoint: Url,
        token: SecretString,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("handoff/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            endpoint,
            token,
        })
    }

    /// The URL messages are POSTed to.
    #[cfg(test)]
    #[must_use]
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Sends one message to `to` (digits without `+`). `delivery_id` is only logged.
    ///
    /// # Errors
    /// [`SendError::ReEngagement`] for Graph error 131047, otherwise [`SendError::Failed`] with
    /// a retryable or permanent [`DeliveryError`].
    pub async fn send(
        &self,
        to: &str,
        content: Content<'_>,
        callback_data: Option<&str>,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Delivered, SendError> {
        let body = request_body(to, content, callback_data);
        let result = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(
                AUTHORIZATION,
                format!("Bearer {}", self.token.expose_secret()),
            )
            .body(body)
            .send()
            .await;
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                let outcome = transport_error(&error);
                tracing::warn!(delivery_id, error = %outcome, "WhatsApp send failed.");
                return Err(SendError::Failed(outcome));
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers(), now);
        let mut bytes = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_RESPONSE_BYTES {
                bytes.clear();
                break;
            }
        }
        let outcome = classify(status, retry_after, &bytes);
        match &outcome {
            Ok(_) => tracing::debug!(delivery_id, status = status.as_u16(), "WhatsApp accepted."),
            Err(error) => tracing::warn!(
                delivery_id,
                status = status.as_u16(),
                graph_code = graph_error(&bytes).and_then(|e| e.code),
                outcome = ?error,
                "WhatsApp refused."
            ),
        }
        outcome
    }
}

fn graph_error(body: &[u8]) -> Option<GraphError> {
    serde_json::from_slice::<GraphErrorBody>(body)
        .ok()
        .map(|b| b.error)
}

/// A short identifier from an answer (`OAuthException`, an fbtrace id), or nothing.
fn identifier(value: Option<&str>) -> Option<&str> {
    value.filter(|v| {
        (1..=64).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// What an answer means: 2xx sent (with the `wamid` when given); 131047 the window; rate
/// limits and 429 retryable and not sent; 408 and 5xx retryable and maybe sent (unless the
/// Graph error says it failed to send); 190 a token to renew; anything else permanent.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Delivered, SendError> {
    if status.is_success() {
        let provider_id = serde_json::from_slice::<SendResponse>(body)
            .ok()
            .and_then(|r| r.messages.into_iter().next())
            .map(|m| m.id)
            .filter(|id| (1..=512).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()));
        if provider_id.is_none() {
            tracing::warn!("WhatsApp accepted a message without giving its id.");
        }
        return Ok(Delivered { provider_id });
    }
    let graph = graph_error(body).unwrap_or_default();
    let code = status.as_u16();
    let failed = |error| Err(SendError::Failed(error));
    match graph.code {
        Some(RE_ENGAGEMENT) => return Err(SendError::ReEngagement),
        Some(c) if RATE_LIMITS.contains(&c) => {
            return failed(DeliveryError::Retryable {
                message: format!("the WhatsApp Cloud API is rate limiting (Graph error {c})"),
                retry_after,
                sent: false,
            });
        }
        Some(TOKEN_INVALID) => {
            return failed(DeliveryError::Permanent {
                message: format!(
                    "the WhatsApp access token was refused (Graph error 190{}): renew \
                     channels.whatsapp.access_token (a system user token does not expire)",
                    graph
                        .error_subcode
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default()
                ),
            });
        }
        _ => {}
    }
    if code == 429 {
        return failed(DeliveryError::Retryable {
            message: "the WhatsApp Cloud API answered 429".into(),
            retry_after,
            sent: false,
        });
    }
    if code == 408 || status.is_server_error() {
        let not_sent = graph
            .code
            .is_some_and(|c| NOT_SENT_SERVER_ERRORS.contains(&c));
        return failed(DeliveryError::Retryable {
            message: format!("the WhatsApp Cloud API answered {code}{}", describe(&graph)),
            retry_after,
            sent: !not_sent,
        });
    }
    if code == 401 && graph.code.is_none() {
        return failed(DeliveryError::Permanent {
            message: "the WhatsApp Cloud API answered 401: renew channels.whatsapp.access_token"
                .into(),
        });
    }
    let hint = match graph.code {
        Some(131_026) => "; the number cannot receive WhatsApp messages",
        Some(131_030) => "; the number is not in the test app's allowed recipient list",
        Some(10 | 200..=299) => "; the access token lacks whatsapp_business_messaging permission",
        Some(132_000..=132_099) => {
            "; check channels.whatsapp.template against the approved template"
        }
        _ if status.is_redirection() => {
            "; redirects are not followed: check channels.whatsapp.api_url"
        }
        _ => "",
    };
    failed(DeliveryError::Permanent {
        message: format!(
            "the WhatsApp Cloud API refused the message (HTTP {code}{}){hint}",
            describe(&graph)
        ),
    })
}

/// `, Graph error 100/2018001 OAuthException, fbtrace_id Abc` — codes and identifiers only.
fn describe(graph: &GraphError) -> String {
    let mut out = String::new();
    if let Some(code) = graph.code {
        out.push_str(&format!(", Graph error {code}"));
        if let Some(sub) = graph.error_subcode {
            out.push_str(&format!("/{sub}"));
        }
    }
    if let Some(kind) = identifier(graph.kind.as_deref()) {
        out.push_str(&format!(" {kind}"));
    }
    if let Some(trace) = identifier(graph.fbtrace_id.as_deref()) {
        out.push_str(&format!(", fbtrace_id {trace}"));
    }
    out
}

/// `Retry-After` as delay-seconds or an HTTP date, relative to `now`.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
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
    // A connect failure never reached Meta; anything later (a timeout while waiting for the
    // answer, a reset) may have, so its outcome is unknown.
    let sent = !error.is_connect();
    let what = if error.is_timeout() {
        "the WhatsApp Cloud API did not answer in time"
    } else if error.is_connect() {
        "could not connect to the WhatsApp Cloud API"
    } else {
        "the connection to the WhatsApp Cloud API failed"
    };
    DeliveryError::Retryable {
        message: what.to_owned(),
        retry_after: None,
        sent,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn answer(code: u16, body: Value) -> Result<Delivered, SendError> {
        classify(
            StatusCode::from_u16(code).unwrap(),
            Some(Duration::from_secs(7)),
            body.to_string().as_bytes(),
        )
    }

    fn graph(code: i64) -> Value {
        json!({"error": {
            "message": "(#131047) Re-engagement message to +15551234567: Hello there",
            "type": "OAuthException", "code": code, "error_subcode": 2_494_010,
            "fbtrace_id": "AbC123_x-"
        }})
    }

    fn permanent(result: Result<Delivered, SendError>) -> String {
        match result {
            Err(SendError::Failed(DeliveryError::Permanent { message })) => message,
            other => panic!("not permanent: {other:?}"),
        }
    }

    #[test]
    fn text_and_template_bodies_have_the_cloud_api_shape() {
        let text: Value = serde_json::from_slice(&request_body(
            "15551234567",
            Content::Text("Hi\nthere"),
            Some("dlv_1"),
        ))
        .unwrap();
        assert_eq!(
            text,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "15551234567", "type": "text",
                   "text": {"preview_url": false, "body": "Hi\nthere"},
                   "biz_opaque_callback_data": "dlv_1"})
        );
        let template: Value = serde_json::from_slice(&request_body(
            "15551234567",
            Content::Template {
                name: "case_update",
                language: "en_US",
                parameter: Some("Your card is fixed."),
            },
            None,
        ))
        .unwrap();
        assert_eq!(
            template,
            json!({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": "15551234567", "type": "template",
                   "template": {"name": "case_update", "language": {"code": "en_US"},
                                "components": [{"type": "body", "parameters": [
                                    {"type": "text", "text": "Your card is fixed."}]}]}})
        );
        let bare: Value = serde_json::from_slice(&request_body(
            "15551234567",
            Content::Template {
                name: "case_update",
                language: "en",
                parameter: None,
            },
            None,
        ))
        .unwrap();
        assert_eq!(
            bare["template"],
            json!({"name": "case_update", "language": {"code": "en"}})
        );
    }

    #[test]
    fn success_gives_the_wamid() {
        let ok = answer(
            200,
            json!({"messaging_product": "whatsapp",
                   "contacts": [{"input": "15551234567", "wa_id": "15551234567"}],
                   "messages": [{"id": "wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI=", "message_status": "accepted"}]}),
        );
        assert_eq!(
            ok,
            Ok(Delivered {
                provider_id: Some("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI=".into())
            })
        );
        assert_eq!(answer(200, json!({})), Ok(Delivered { provider_id: None }));
        assert_eq!(
            answer(200, json!({"messages": [{"id": "bad id\n"}]})),
            Ok(Delivered { provider_id: None })
        );
    }

    #[test]
    fn re_engagement_is_the_window() {
        assert_eq!(
            answer(400, graph(RE_ENGAGEMENT)),
            Err(SendError::ReEngagement)
        );
    }

    #[test]
    fn rate_limits_are_retried_and_were_not_sent() {
        for code in RATE_LIMITS {
            for status in [400, 429] {
                let Err(SendError::Failed(DeliveryError::Retryable {
                    sent,
                    retry_after,
                    message,
                })) = answer(status, graph(code))
                else {
                    panic!("{code} should be retryable");
                };
                assert!(!sent);
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert!(message.contains(&code.to_string()), "{message}");
            }
        }
        let Err(SendError::Failed(DeliveryError::Retryable { sent, .. })) =
            answer(429, json!("slow down"))
        else {
            panic!("429 is retryable");
        };
        assert!(!sent);
    }

    #[test]
    fn server_errors_may_have_been_sent_unless_meta_says_not() {
        for (status, body, expect_sent) in [
            (500, json!("oops"), true),
            (502, Value::Null, true),
            (503, graph(1), true),
            (500, graph(131_000), false),
            (503, graph(2), false),
            (503, graph(131_016), false),
            (408, Value::Null, true),
        ] {
            let Err(SendError::Failed(DeliveryError::Retryable { sent, .. })) =
                answer(status, body.clone())
            else {
                panic!("{status} {body} should be retryable");
            };
            assert_eq!(sent, expect_sent, "{status} {body}");
        }
    }

    #[test]
    fn token_and_other_errors_are_permanent_and_quote_nothing() {
        let message = permanent(answer(401, graph(TOKEN_INVALID)));
        assert!(
            message.contains("renew channels.whatsapp.access_token"),
            "{message}"
        );
        assert!(message.contains("190/2494010"), "{message}");
        let message = permanent(answer(401, json!({})));
        assert!(message.contains("renew"), "{message}");
        let message = permanent(answer(400, graph(131_026)));
        assert!(
            message.contains("Graph error 131026/2494010 OAuthException"),
            "{message}"
        );
        assert!(message.contains("fbtrace_id AbC123_x-"), "{message}");
        assert!(message.contains("cannot receive"), "{message}");
        let message = permanent(answer(400, graph(132_001)));
        assert!(message.contains("channels.whatsapp.template"), "{message}");
        let message = permanent(answer(302, Value::Null));
        assert!(message.contains("redirects"), "{message}");
        for code in [100, 131_026, 190, 132_001] {
            let message = permanent(answer(400, graph(code)));
            assert!(!message.contains("5551234567"), "{message}");
            assert!(!message.contains("Hello"), "{message}");
        }
        // Hostile identifiers are dropped, not echoed.
        let message = permanent(answer(
            400,
            json!({"error": {"code": 100, "type": "Bad Type\n", "fbtrace_id": "x".repeat(65)}}),
        ));
        assert_eq!(
            message,
            "the WhatsApp Cloud API refused the message (HTTP 400, Graph error 100)"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "30".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        headers.insert(
            RETRY_AFTER,
            "Tue, 01 Dec 2026 10:01:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(60)));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }
}
