//! Chat delivery over a real socket: a local axum receiver on port 0 checks what the chat
//! adapter sends exactly as a Standard Webhooks consumer would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use sha2::Sha256;

use channels::webhook::{WebhookSecret, WebhookSender};
use channels::{
    Channel, ChatChannel, Delivered, DeliveryError, OutboundKind, OutboundMessage, ReplyTarget,
};

/// The published Standard Webhooks test secret; the receiver keys its own HMAC with it.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<dyn Fn() -> Response + Send + Sync>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    receiver
        .received
        .lock()
        .unwrap()
        .push(Received { headers, body });
    (receiver.answer)()
}

/// Serves `answer` on 127.0.0.1 (the listener is bound before the URL is handed out and kept).
async fn receiver(
    answer: impl Fn() -> Response + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let state = Receiver {
        received: received.clone(),
        answer: Arc::new(answer),
    };
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/elsewhere", post(receive))
        .with_state(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), received)
}

fn secret() -> WebhookSecret {
    WebhookSecret::parse(&SecretString::from(SECRET)).unwrap()
}

fn chat() -> ChatChannel {
    ChatChannel::new(Some(secret()), true).unwrap()
}

fn message() -> OutboundMessage {
    OutboundMessage {
        id: "dlv_01JDXK3Z".into(),
        session_id: "sess-42".into(),
        kind: OutboundKind::AgentMessage,
        text: "Your refund is on its way.".into(),
        sender_name: Some("Maya".into()),
        at: Utc.with_ymd_and_hms(2026, 11, 30, 10, 0, 0).unwrap(),
        email: None,
        customer_last_message_at: None,
        status_callback: None,
    }
}

/// The receiver's own check, written from the specification rather than with Handoff's code:
/// HMAC-SHA256 keyed by the base64-decoded secret over `id.timestamp.body`.
fn receiver_signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = BASE64
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn chat_delivers_a_signed_standard_webhook() {
    // The receiver's check agrees with the published vector before it is trusted below.
    assert_eq!(
        receiver_signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    let (url, received) = receiver(|| StatusCode::NO_CONTENT.into_response()).await;
    let chat = chat();
    assert!(chat.capabilities().delivers);
    assert!(chat.capabilities().provider_dedupe);

    let delivered = chat
        .deliver(&ReplyTarget::Webhook { url }, &message())
        .await
        .unwrap();
    assert_eq!(delivered, Delivered { provider_id: None });

    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let Received { headers, body } = &got[0];
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("webhook-id"), "dlv_01JDXK3Z");
    assert_eq!(header("content-type"), "application/json");
    let timestamp = header("webhook-timestamp");
    assert_eq!(
        header("webhook-signature"),
        receiver_signature("dlv_01JDXK3Z", &timestamp, body)
    );
    secret()
        .verify(
            "dlv_01JDXK3Z",
            &timestamp,
            &header("webhook-signature"),
            body,
            Utc::now(),
        )
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": "dlv_01JDXK3Z",
            "type": "agent.message",
            "session_id": "sess-42",
            "data": {
                "text": "Your refund is on its way.",
                "sender_name": "Maya",
                "at": "2026-11-30T10:00:00Z"
            }
        })
    );
}

#[tokio::test]
async fn a_retry_carries_the_same_webhook_id() {
    let (url, received) = receiver(|| StatusCode::OK.into_response()).await;
    let target = ReplyTarget::Webhook { url };
    let chat = chat();
    chat.deliver(&target, &message()).await.unwrap();
    chat.deliver(&target, &message()).await.unwrap();
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
}

#[tokio::test]
async fn overload_and_server_errors_are_retryable_with_retry_after() {
    let (url, _) = receiver(|| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "17")],
            "slow down",
        )
            .into_response()
    })
    .await;
    let err = chat()
        .deliver(&ReplyTarget::Webhook { url }, &message())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Retryable {
            message: "the receiver answered 429".into(),
            retry_after: Some(Duration::from_secs(17)),
            sent: true,
        }
    );
    let (url, _) = receiver(|| StatusCode::BAD_GATEWAY.into_response()).await;
    let err = chat()
        .deliver(&ReplyTarget::Webhook { url }, &message())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DeliveryError::Retryable {
                sent: true,
                retry_after: None,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_errors_are_permanent_and_redirects_are_not_followed() {
    let (url, _) = receiver(|| StatusCode::GONE.into_response()).await;
    let err = chat()
        .deliver(&ReplyTarget::Webhook { url }, &message())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Permanent { .. }), "{err:?}");

    let (url, received) =
        receiver(|| (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]).into_response())
            .await;
    let err = chat()
        .deliver(&ReplyTarget::Webhook { url }, &message())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Permanent { .. }), "{err:?}");
    // Only the first POST arrived: `/elsewhere` was never called.
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_receiver_that_never_answers_is_retryable_with_an_unknown_outcome() {
    // Accepts connections (the kernel backlog does) but never reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap())
        .parse()
        .unwrap();
    let sender =
        WebhookSender::with_timeouts(true, Duration::from_secs(5), Duration::from_millis(300))
            .unwrap();
    let err = sender
        .post(&url, &secret(), "dlv_1", b"{}".to_vec(), Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Retryable { sent: true, .. }),
        "{err:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_was_not_sent() {
    // Port 1 (tcpmux) has no listener on a test machine: the connection is refused.
    let url = "http://127.0.0.1:1/hook".parse().unwrap();
    let err = WebhookSender::new(true)
        .unwrap()
        .post(&url, &secret(), "dlv_1", b"{}".to_vec(), Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Retryable { sent: false, .. }),
        "{err:?}"
    );
}

/// The SSRF guard at delivery time: with private addresses not allowed, neither an IP literal
/// nor a name that resolves to loopback is called, and the refusal is permanent.
#[tokio::test]
async fn private_addresses_are_refused_when_sending() {
    let (url, received) = receiver(|| StatusCode::OK.into_response()).await;
    let sender = WebhookSender::new(false).unwrap();
    let literal: url::Url = url.parse().unwrap();
    let by_name: url::Url = url.replace("127.0.0.1", "localhost").parse().unwrap();
    for target in [literal, by_name] {
        let err = sender
            .post(&target, &secret(), "dlv_1", b"{}".to_vec(), Utc::now())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeliveryError::Permanent { .. }),
            "{target}: {err:?}"
        );
    }
    assert_eq!(received.lock().unwrap().len(), 0);

    // The chat adapter refuses such a target the same way.
    let chat = ChatChannel::new(Some(secret()), false).unwrap();
    let err = chat
        .deliver(&ReplyTarget::Webhook { url }, &message())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Permanent { .. }), "{err:?}");
    assert_eq!(received.lock().unwrap().len(), 0);
}

#[tokio::test]
async fn a_bridge_delivers_to_its_url_with_the_address() {
    let (url, received) = receiver(|| StatusCode::ACCEPTED.into_response()).await;
    let bridge = channels::BridgeChannel::new(
        channels::ChannelKind::plugin("line").unwrap(),
        url.parse().unwrap(),
        secret(),
        channels::Route::Messaging,
        true,
    )
    .unwrap();
    let target = ReplyTarget::Bridge {
        address: "line:U42".into(),
    };
    bridge.deliver(&target, &message()).await.unwrap();
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let Received { headers, body } = &got[0];
    let timestamp = headers["webhook-timestamp"].to_str().unwrap();
    assert_eq!(
        headers["webhook-signature"].to_str().unwrap(),
        receiver_signature("dlv_01JDXK3Z", timestamp, body)
    );
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(json["data"]["address"], "line:U42");
    assert_eq!(json["type"], "agent.message");
    // A target of another channel's shape is refused without a request.
    let err = bridge
        .deliver(&ReplyTarget::Webhook { url }, &message())
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Permanent { .. }), "{err:?}");
    assert_eq!(received.lock().unwrap().len(), 1);
}
