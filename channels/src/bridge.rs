//! The bridge channel: a channel Handoff does not know (LINE, Teams, a custom widget) reached
//! through a small service of the user's own, with Standard Webhooks both ways. Outbound
//! messages are POSTed to the configured `url` with the customer's bridge `address` in
//! `data.address`; inbound messages arrive signed as `{"messages": [{"id", "session_id",
//! "from", "text", "at"}]}`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::webhook::{Envelope, WebhookSecret, WebhookSender};
use crate::{
    Capabilities, Channel, ChannelError, ChannelKind, Conversation, Delivered, DeliveryError,
    EscalationInput, InboundEvent, InboundMessage, InboundRequest, OutboundMessage, ReplyTarget,
    Route, SplitRule, normalize,
};

/// At most this many messages in one inbound webhook.
pub const MAX_INBOUND_MESSAGES: usize = 100;
/// The longest inbound message text, in characters.
pub const MAX_INBOUND_TEXT_CHARS: usize = 100_000;
/// The longest message id, session id, sender or reply address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 256;

/// A configured bridge channel.
#[derive(Debug, Clone)]
pub struct BridgeChannel {
    kind: ChannelKind,
    url: Url,
    secret: WebhookSecret,
    route: Route,
    sender: WebhookSender,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BridgeReplyTo {
    address: String,
}

#[derive(Deserialize)]
struct InboundBody {
    messages: Vec<Value>,
}

#[derive(Deserialize)]
struct InboundItem {
    id: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    from: Option<String>,
    text: String,
    at: DateTime<Utc>,
}

impl BridgeChannel {
    /// A bridge named by `kind` (a [`ChannelKind::Plugin`]) that delivers to `url`, signing
    /// with `secret`. `allow_private` lets `url` be a loopback or private address (tests).
    ///
    /// # Errors
    /// [`ChannelError::InvalidConfig`] when the HTTP client cannot be built.
    pub fn new(
        kind: ChannelKind,
        url: Url,
        secret: WebhookSecret,
        route: Route,
        allow_private: bool,
    ) -> Result<Self, ChannelError> {
        let sender =
            WebhookSender::new(allow_private).map_err(|e| ChannelError::InvalidConfig {
                setting: format!("channels.{kind}"),
                reason: format!("the webhook HTTP client could not be built: {e}"),
            })?;
        Ok(Self {
            kind,
            url,
            secret,
            route,
            sender,
        })
    }

    fn bad_inbound(field: String, reason: &str) -> ChannelError {
        ChannelError::InvalidInbound {
            field,
            reason: reason.to_owned(),
        }
    }
}

/// A printable, non-empty string of at most [`MAX_ADDRESS_CHARS`] characters.
fn is_short_printable(s: &str) -> bool {
    !s.trim().is_empty()
        && s.chars().count() <= MAX_ADDRESS_CHARS
        && !s.chars().any(char::is_control)
}

#[async_trait::async_trait]
impl Channel for BridgeChannel {
    fn kind(&self) -> ChannelKind {
        self.kind.clone()
    }

    fn preferred_route(&self) -> Route {
        self.route
    }

    /// Delivers through the bridge's webhook; the `webhook-id` (the delivery id) is the dedupe
    /// key. Length limits and windows are the bridge's business: it gets whole messages.
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            delivers: true,
            inbound: true,
            provider_dedupe: true,
            split: SplitRule::Whole,
            ..Capabilities::receive_only()
        }
    }

    fn normalize(&self, input: EscalationInput) -> Result<Conversation, ChannelError> {
        normalize::transcript_conversation(&self.kind, input)
    }

    fn reply_target(
        &self,
        reply_to: Option<&Value>,
        _conversation: &Conversation,
    ) -> Result<Option<ReplyTarget>, ChannelError> {
        let Some(value) = reply_to else {
            return Ok(None);
        };
        let reply =
            BridgeReplyTo::deserialize(value).map_err(|_| ChannelError::InvalidReplyTo {
                field: "reply_to".into(),
                reason: format!(
                    "reply_to for the {} channel must be {{\"address\": \"…\"}} and nothing else",
                    self.kind
                ),
            })?;
        if !is_short_printable(&reply.address) {
            return Err(ChannelError::InvalidReplyTo {
                field: "reply_to.address".into(),
                reason: format!("must be 1 to {MAX_ADDRESS_CHARS} printable characters"),
            });
        }
        Ok(Some(ReplyTarget::Bridge {
            address: reply.address,
        }))
    }

    async fn inbound(&self, request: &InboundRequest) -> Result<Vec<InboundEvent>, ChannelError> {
        self.secret
            .verify_request(request)
            .map_err(ChannelError::WebhookNotVerified)?;
        let body: InboundBody = serde_json::from_slice(&request.body).map_err(|_| {
            Self::bad_inbound(
                "messages".into(),
                "the body must be {\"messages\": [...]} in JSON",
            )
        })?;
        if body.messages.len() > MAX_INBOUND_MESSAGES {
            return Err(Self::bad_inbound(
                "messages".into(),
                "at most 100 messages per webhook",
            ));
        }
        body.messages
            .into_iter()
            .enumerate()
            .map(|(i, value)| {
                let item = InboundItem::deserialize(value).map_err(|_| {
                    Self::bad_inbound(
                        format!("messages[{i}]"),
                        "each message needs id, text and an RFC 3339 `at`; session_id and from \
                         are optional strings",
                    )
                })?;
                let short = |value: &Option<String>, key: &str| match value {
                    Some(s) if !is_short_printable(s) => Err(Self::bad_inbound(
                        format!("messages[{i}].{key}"),
                        "must be 1 to 256 printable characters",
                    )),
                    _ => Ok(()),
                };
                short(&Some(item.id.clone()), "id")?;
                short(&item.session_id, "session_id")?;
                short(&item.from, "from")?;
                let text = item.text.trim();
                if text.is_empty() || text.chars().count() > MAX_INBOUND_TEXT_CHARS {
                    return Err(Self::bad_inbound(
                        format!("messages[{i}].text"),
                        "must hold 1 to 100000 characters",
                    ));
                }
                Ok(InboundEvent::Message(InboundMessage {
                    provider_message_id: item.id,
                    session_id: item.session_id,
                    from: item.from,
                    to: None,
                    sender_name: None,
                    text: text.to_owned(),
                    media: Vec::new(),
                    at: item.at,
                }))
            })
            .collect()
    }

    async fn deliver(
        &self,
        target: &ReplyTarget,
        message: &OutboundMessage,
    ) -> Result<Delivered, DeliveryError> {
        let ReplyTarget::Bridge { address } = target else {
            return Err(DeliveryError::Permanent {
                message: format!("a {} reply needs a bridge address", self.kind),
            });
        };
        let body = Envelope::new(message, Some(address)).to_bytes();
        self.sender
            .post(&self.url, &self.secret, &message.id, body, Utc::now())
            .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use secrecy::SecretString;

    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn bridge() -> BridgeChannel {
        BridgeChannel::new(
            ChannelKind::plugin("line").unwrap(),
            "https://bridge.example.com/out".parse().unwrap(),
            WebhookSecret::parse(&SecretString::from(SECRET)).unwrap(),
            Route::Messaging,
            false,
        )
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap()
    }

    fn signed(body: &[u8], ts: i64) -> InboundRequest {
        let secret = WebhookSecret::parse(&SecretString::from(SECRET)).unwrap();
        InboundRequest {
            url: "https://handoff.example.com/v1/channels/line/inbound".into(),
            headers: vec![
                ("Webhook-Id".into(), "evt_1".into()),
                ("webhook-timestamp".into(), ts.to_string()),
                ("webhook-signature".into(), secret.sign("evt_1", ts, body)),
            ],
            body: body.to_vec(),
            received_at: now(),
        }
    }

    fn conversation() -> Conversation {
        Conversation {
            subject: None,
            customer: crate::Customer::default(),
            language: "en".into(),
            turns: vec![],
            thread: None,
            voice: None,
        }
    }

    #[tokio::test]
    async fn inbound_verifies_then_parses_messages() {
        let body = br#"{"messages":[
            {"id":"m1","session_id":"s-1","from":"line:U42","text":" hi there ","at":"2026-11-30T09:59:00Z"},
            {"id":"m2","text":"again","at":"2026-11-30T09:59:30+01:00"}]}"#;
        let messages: Vec<InboundMessage> = bridge()
            .inbound(&signed(body, now().timestamp()))
            .await
            .unwrap()
            .into_iter()
            .map(|event| match event {
                InboundEvent::Message(m) => m,
                InboundEvent::Status(s) => panic!("a bridge reports no statuses: {s:?}"),
            })
            .collect();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].provider_message_id, "m1");
        assert_eq!(messages[0].session_id.as_deref(), Some("s-1"));
        assert_eq!(messages[0].from.as_deref(), Some("line:U42"));
        assert_eq!(messages[0].text, "hi there");
        assert_eq!(messages[1].session_id, None);
        assert_eq!(messages[1].at.to_rfc3339(), "2026-11-30T08:59:30+00:00");
    }

    #[tokio::test]
    async fn inbound_refuses_unsigned_stale_or_tampered_requests() {
        let body = br#"{"messages":[]}"#;
        let mut request = signed(body, now().timestamp());
        request.body =
            br#"{"messages":[{"id":"x","text":"forged","at":"2026-11-30T09:59:00Z"}]}"#.to_vec();
        let err = bridge().inbound(&request).await.unwrap_err();
        assert_eq!(err.code(), "invalid_signature");
        let stale = signed(body, now().timestamp() - 301);
        let err = bridge().inbound(&stale).await.unwrap_err();
        assert_eq!(err.code(), "invalid_signature");
        let mut unsigned = signed(body, now().timestamp());
        unsigned
            .headers
            .retain(|(name, _)| name != "webhook-signature");
        let err = bridge().inbound(&unsigned).await.unwrap_err();
        assert_eq!(
            err,
            ChannelError::WebhookNotVerified(crate::webhook::VerifyError::MissingHeader(
                "webhook-signature"
            ))
        );
    }

    #[tokio::test]
    async fn inbound_bodies_are_bounded() {
        let item = r#"{"id":"m","text":"t","at":"2026-11-30T09:59:00Z"}"#;
        let many = format!(r#"{{"messages":[{}]}}"#, vec![item; 101].join(","));
        let err = bridge()
            .inbound(&signed(many.as_bytes(), now().timestamp()))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.field().as_deref()),
            ("invalid_inbound", Some("messages"))
        );
        let long = format!(
            r#"{{"messages":[{item},{{"id":"m","text":"{}","at":"2026-11-30T09:59:00Z"}}]}}"#,
            "a".repeat(MAX_INBOUND_TEXT_CHARS + 1)
        );
        let err = bridge()
            .inbound(&signed(long.as_bytes(), now().timestamp()))
            .await
            .unwrap_err();
        assert_eq!(err.field().as_deref(), Some("messages[1].text"));
        for (body, field) in [
            (
                r#"{"messages":[{"id":"","text":"t","at":"2026-11-30T09:59:00Z"}]}"#.to_owned(),
                "messages[0].id",
            ),
            (
                format!(
                    r#"{{"messages":[{{"id":"m","from":"{}","text":"t","at":"2026-11-30T09:59:00Z"}}]}}"#,
                    "x".repeat(257)
                ),
                "messages[0].from",
            ),
            (
                r#"{"messages":[{"id":"m","text":"t","at":"yesterday"}]}"#.to_owned(),
                "messages[0]",
            ),
            (r#"{"msgs":[]}"#.to_owned(), "messages"),
        ] {
            let err = bridge()
                .inbound(&signed(body.as_bytes(), now().timestamp()))
                .await
                .unwrap_err();
            assert_eq!(err.field().as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn reply_to_is_an_address() {
        let channel = bridge();
        assert_eq!(channel.reply_target(None, &conversation()).unwrap(), None);
        assert_eq!(
            channel
                .reply_target(
                    Some(&serde_json::json!({"address": "line:U42"})),
                    &conversation()
                )
                .unwrap(),
            Some(ReplyTarget::Bridge {
                address: "line:U42".into()
            })
        );
        for (value, field) in [
            (serde_json::json!({"address": "a", "extra": 1}), "reply_to"),
            (serde_json::json!("line:U42"), "reply_to"),
            (serde_json::json!({"address": ""}), "reply_to.address"),
            (serde_json::json!({"address": "a\nb"}), "reply_to.address"),
            (
                serde_json::json!({"address": "x".repeat(257)}),
                "reply_to.address",
            ),
        ] {
            let err = channel
                .reply_target(Some(&value), &conversation())
                .unwrap_err();
            assert_eq!(
                (err.code(), err.field().as_deref()),
                ("invalid_reply_to", Some(field)),
                "{value}"
            );
        }
    }
}
