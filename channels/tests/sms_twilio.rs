//! SMS delivery over a real socket: a local axum server on port 0 stands in for Twilio's
//! Messages API (only for this crate's own tests; the provider emulator is `channel-emulator`)
//! and checks the request the SMS adapter sends, then answers as Twilio does. Also a webhook
//! signed here independently of the adapter's own signing code.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

use channels::{
    Channel, ChannelConfig, Delivered, DeliveryError, InboundEvent, InboundRequest, OutboundKind,
    OutboundMessage, ProviderStatus, ReplyTarget, SplitRule,
};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "feedfacefeedfacefeedfacefeedface";
const KEY_SID: &str = "SK00112233445566778899aabbccddeeff";
const KEY_SECRET: &str = "keysecretkeysecretkeysecretkeysecret";
const OURS: &str = "+15550100000";
const CUSTOMER: &str = "+15551234567";
const SID: &str = "SM9b7d0123456789abcdef0123456789ab";

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Received {
    account: String,
    authorization: Option<String>,
    content_type: Option<String>,
    form: Vec<(String, String)>,
}

impl Received {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An answer the stand-in gives, in order; when none is left it creates the message.
#[derive(Debug, Clone)]
enum Answer {
    Created,
    Status(u16, &'static str, Option<&'static str>),
    Slow(Duration),
}

#[derive(Clone, Default)]
struct Twilio {
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

async fn create_message(
    State(twilio): State<Twilio>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    twilio.received.lock().unwrap().push(Received {
        account: account.clone(),
        authorization: text(header::AUTHORIZATION),
        content_type: text(header::CONTENT_TYPE),
        form: form.clone(),
    });
    let answer = twilio
        .answers
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Answer::Created);
    match answer {
        Answer::Created => {
            let field = |name: &str| form.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let resource = json!({
                "account_sid": account, "api_version": "2010-04-01", "body": field("Body"),
                "direction": "outbound-api", "error_code": null, "from": field("From"),
                "num_segments": "1", "sid": SID, "status": "queued", "to": field("To"),
            });
            (StatusCode::CREATED, axum::Json(resource)).into_response()
        }
        Answer::Status(status, body, retry_after) => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
            }
            response
        }
        Answer::Slow(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::CREATED.into_response()
        }
    }
}

/// The stand-in on 127.0.0.1: its base URL and its state.
async fn twilio(answers: Vec<Answer>) -> (String, Twilio) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Twilio {
        received: Arc::default(),
        answers: Arc::new(Mutex::new(answers.into())),
    };
    let app = Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Messages.json",
            post(create_message),
        )
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

fn sms(api_url: &str, extra: Value) -> Arc<dyn Channel> {
    let mut table = json!({
        "type": "sms",
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from": OURS,
        "api_url": api_url,
        "timeout_secs": 1,
    });
    for (k, v) in extra.as_object().unwrap() {
        table[k] = v.clone();
    }
    let config: ChannelConfig = serde_json::from_value(table).unwrap();
    config.build("sms").unwrap()
}

fn message(status_callback: Option<&str>) -> OutboundMessage {
    OutboundMessage {
        id: "dlv_0123abcd_002".into(),
        session_id: "sess-42".into(),
        kind: OutboundKind::AgentMessage,
        text: "Hi Ann, your card is unblocked — try again.".into(),
        sender_name: Some("Rita".into()),
        at: Utc::now(),
        email: None,
        customer_last_message_at: None,
        status_callback: status_callback.map(str::to_owned),
    }
}

fn customer() -> ReplyTarget {
    ReplyTarget::Phone {
        number: CUSTOMER.into(),
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

#[tokio::test]
async fn a_reply_is_created_with_the_account_form_and_status_callback() {
    let (url, twilio) = twilio(vec![]).await;
    let channel = sms(&url, json!({}));
    let delivered = channel
        .deliver(
            &customer(),
            &message(Some("https://handoff.example.com/channels/sms/status")),
        )
        .await
        .unwrap();
    assert_eq!(
        delivered,
        Delivered {
            provider_id: Some(SID.into())
        }
    );
    let received = twilio.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.account, ACCOUNT);
    assert_eq!(
        request.authorization.as_deref(),
        Some(basic(ACCOUNT, TOKEN).as_str())
    );
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(request.field("To"), Some(CUSTOMER));
    assert_eq!(request.field("From"), Some(OURS));
    assert_eq!(request.field("MessagingServiceSid"), None);
    assert_eq!(
        request.field("Body"),
        Some("Hi Ann, your card is unblocked — try again.")
    );
    assert_eq!(
        request.field("StatusCallback"),
        Some("https://handoff.example.com/channels/sms/status?delivery=dlv_0123abcd_002")
    );
    // Without a public URL there is no status callback.
    channel.deliver(&customer(), &message(None)).await.unwrap();
    let received = twilio.received.lock().unwrap().clone();
    assert_eq!(received[1].field("StatusCallback"), None);
}

#[tokio::test]
async fn an_api_key_and_a_messaging_service_are_used_when_configured() {
    let (url, twilio) = twilio(vec![]).await;
    let service = format!("MG{}", &ACCOUNT[2..]);
    let mut table = json!({
        "type": "sms", "account_sid": ACCOUNT, "auth_token": TOKEN,
        "api_key_sid": KEY_SID, "api_key_secret": KEY_SECRET,
        "messaging_service_sid": service, "numbers": [OURS], "api_url": url,
    });
    table["max_segments"] = json!(2);
    let channel = serde_json::from_value::<ChannelConfig>(table)
        .unwrap()
        .build("sms")
        .unwrap();
    assert_eq!(
        channel.capabilities().split,
        SplitRule::SmsSegments { max_segments: 2 }
    );
    channel
        .deliver(
            &customer(),
            &message(Some("https://h.example.com/channels/sms/status?tenant=a")),
        )
        .await
        .unwrap();
    let request = twilio.received.lock().unwrap()[0].clone();
    assert_eq!(
        request.authorization.as_deref(),
        Some(basic(KEY_SID, KEY_SECRET).as_str())
    );
    assert_eq!(request.field("MessagingServiceSid"), Some(service.as_str()));
    assert_eq!(request.field("From"), None);
    assert_eq!(
        request.field("StatusCallback"),
        Some("https://h.example.com/channels/sms/status?tenant=a&delivery=dlv_0123abcd_002")
    );
}

#[tokio::test]
async fn rate_limits_and_unavailability_are_retried_as_not_sent() {
    let (url, twilio) = twilio(vec![
        Answer::Status(
            429,
            r#"{"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}"#,
            Some("12"),
        ),
        Answer::Status(503, "Service Unavailable", None),
    ])
    .await;
    let channel = sms(&url, json!({}));
    let outcome = channel.deliver(&customer(), &message(None)).await;
    assert_eq!(
        outcome,
        Err(DeliveryError::Retryable {
            message: "Twilio error 20429 (HTTP 429): not accepted now, try again later".into(),
            retry_after: Some(Duration::from_secs(12)),
            sent: false,
        })
    );
    let outcome = channel.deliver(&customer(), &message(None)).await;
    assert!(
        matches!(
            outcome,
            Err(DeliveryError::Retryable {
                sent: false,
                retry_after: None,
                ..
            })
        ),
        "{outcome:?}"
    );
    // The next attempt goes through.
    assert!(channel.deliver(&customer(), &message(None)).await.is_ok());
    assert_eq!(twilio.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn server_errors_and_timeouts_leave_the_outcome_unknown() {
    let (url, _twilio) = twilio(vec![
        Answer::Status(500, r#"{"code": 20500, "status": 500}"#, None),
        Answer::Slow(Duration::from_secs(3)),
    ])
    .await;
    let channel = sms(&url, json!({}));
    for _ in 0..2 {
        let outcome = channel.deliver(&customer(), &message(None)).await;
        assert!(
            matches!(outcome, Err(DeliveryError::Retryable { sent: true, .. })),
            "{outcome:?}"
        );
    }
}

#[tokio::test]
async fn a_closed_port_was_never_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let outcome = sms(&url, json!({}))
        .deliver(&customer(), &message(None))
        .await;
    assert!(
        matches!(outcome, Err(DeliveryError::Retryable { sent: false, .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn opted_out_recipients_and_refusals_are_not_retried() {
    let (url, _twilio) = twilio(vec![
        Answer::Status(
            400,
            r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "more_info": "https://www.twilio.com/docs/errors/21610", "status": 400}"#,
            None,
        ),
        Answer::Status(
            400,
            r#"{"type": "https://www.twilio.com/docs/errors/21211", "title": "Invalid 'To' Phone Number", "status": 400, "detail": "The 'To' number +15551234567 is not a valid phone number.", "instance": "/Messages"}"#,
            None,
        ),
    ])
    .await;
    let channel = sms(&url, json!({}));
    assert_eq!(
        channel.deliver(&customer(), &message(None)).await,
        Err(DeliveryError::OptedOut)
    );
    let Err(DeliveryError::Permanent { message: text }) =
        channel.deliver(&customer(), &message(None)).await
    else {
        panic!("a permanent refusal");
    };
    assert!(text.contains("21211"), "{text}");
    assert!(
        !text.contains(CUSTOMER) && !text.contains("+1555"),
        "{text}"
    );
}

#[tokio::test]
async fn targets_that_are_not_phone_numbers_are_refused_before_sending() {
    let (url, twilio) = twilio(vec![]).await;
    let channel = sms(&url, json!({}));
    for target in [
        ReplyTarget::Phone {
            number: "5551234567".into(),
        },
        ReplyTarget::Bridge {
            address: "line:U1".into(),
        },
    ] {
        let outcome = channel.deliver(&target, &message(None)).await;
        assert!(
            matches!(outcome, Err(DeliveryError::Permanent { .. })),
            "{outcome:?}"
        );
    }
    assert!(twilio.received.lock().unwrap().is_empty());
}

/// Signs as Twilio documents it, independently of the adapter: HMAC-SHA1 over the URL and the
/// sorted name/value pairs.
fn twilio_signature(url: &str, pairs: &[(&str, &str)]) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort_unstable();
    let mut mac = Hmac::<Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    BASE64.encode(mac.finalize().into_bytes())
}

fn signed(url: &str, pairs: &[(&str, &str)]) -> InboundRequest {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    InboundRequest {
        url: url.into(),
        headers: vec![
            (
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("X-Twilio-Signature".into(), twilio_signature(url, pairs)),
        ],
        body: body.into_bytes(),
        received_at: Utc::now(),
    }
}

#[tokio::test]
async fn signed_webhooks_give_messages_and_statuses() {
    let channel = sms("https://api.twilio.com", json!({}));
    let inbound = [
        ("ToCountry", "US"),
        ("SmsMessageSid", SID),
        ("NumMedia", "1"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME",
        ),
        ("MediaContentType0", "image/png"),
        ("SmsStatus", "received"),
        ("Body", "Still declined?"),
        ("To", OURS),
        ("NumSegments", "1"),
        ("MessageSid", SID),
        ("AccountSid", ACCOUNT),
        ("From", CUSTOMER),
        ("ApiVersion", "2010-04-01"),
    ];
    let request = signed("https://handoff.example.com/channels/sms/inbound", &inbound);
    let events = channel.inbound(&request).await.unwrap();
    let [InboundEvent::Message(message)] = events.as_slice() else {
        panic!("one message: {events:?}");
    };
    assert_eq!(message.provider_message_id, SID);
    assert_eq!(message.from.as_deref(), Some(CUSTOMER));
    assert_eq!(message.to.as_deref(), Some(OURS));
    assert_eq!(message.text, "Still declined?");
    assert_eq!(message.media[0].content_type.as_deref(), Some("image/png"));
    assert_eq!(message.at, request.received_at);

    let status = [
        ("MessageSid", SID),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "30003"),
        ("AccountSid", ACCOUNT),
        ("From", OURS),
        ("To", CUSTOMER),
        ("ApiVersion", "2010-04-01"),
    ];
    let url = "https://handoff.example.com/channels/sms/status?delivery=dlv_0123abcd_002";
    let events = channel.inbound(&signed(url, &status)).await.unwrap();
    let [InboundEvent::Status(update)] = events.as_slice() else {
        panic!("one status: {events:?}");
    };
    assert_eq!(update.delivery_id.as_deref(), Some("dlv_0123abcd_002"));
    assert_eq!(update.status, ProviderStatus::Undelivered);
    assert_eq!(update.error_code.as_deref(), Some("30003"));

    // Signed for another URL (the delivery id changed on the way): refused.
    let mut forged = signed(url, &status);
    forged.url = url.replace("dlv_0123abcd_002", "dlv_other");
    let err = channel.inbound(&forged).await.unwrap_err();
    assert_eq!(err.code(), "invalid_signature");
}
