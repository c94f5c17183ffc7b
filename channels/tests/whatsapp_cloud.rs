//! WhatsApp sends over a real socket: a small local axum server stands in for the Graph API's
//! `POST /{version}/{phone_number_id}/messages`, records what the adapter sends and answers
//! what each test scripts (success, 131047, rate limits, 5xx, an expired token, a redirect).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

use channels::{
    Channel, Delivered, DeliveryError, OutboundKind, OutboundMessage, ReplyTarget, WhatsappChannel,
    WhatsappConfig,
};

const PHONE_NUMBER_ID: &str = "277321005464405";
const TOKEN: &str = "EAAG-test-token";

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Value,
}

/// What the stand-in answers next; when nothing is scripted, a success with a fresh wamid.
enum Answer {
    Json(StatusCode, Value),
    WithHeader(StatusCode, &'static str, &'static str, Value),
    Slow(Duration),
}

#[derive(Clone, Default)]
struct Graph {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

impl Graph {
    fn then(&self, answer: Answer) -> &Self {
        self.script.lock().unwrap().push_back(answer);
        self
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn wamid(n: usize) -> String {
    format!("wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI{n}")
}

async fn messages(
    State(graph): State<Graph>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = {
        let mut received = graph.received.lock().unwrap();
        received.push(Received {
            path: format!("/{version}/{id}/messages"),
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        received.len()
    };
    let next = graph.script.lock().unwrap().pop_front();
    match next {
        None => (
            StatusCode::OK,
            axum::Json(json!({
                "messaging_product": "whatsapp",
                "contacts": [{"input": "15551234567", "wa_id": "15551234567"}],
                "messages": [{"id": wamid(n), "message_status": "accepted"}]
            })),
        )
            .into_response(),
        Some(Answer::Json(status, body)) => (status, axum::Json(body)).into_response(),
        Some(Answer::WithHeader(status, name, value, body)) => {
            let mut response = (status, axum::Json(body)).into_response();
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
            response
        }
        Some(Answer::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK.into_response()
        }
    }
}

/// The stand-in on 127.0.0.1 (bound before its URL is handed out).
async fn stand_in() -> (String, Graph) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let graph = Graph::default();
    let app = Router::new()
        .route("/{version}/{id}/messages", post(messages))
        .with_state(graph.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), graph)
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn whatsapp(api_url: &str, extra: Value) -> WhatsappChannel {
    let mut table = json!({
        "provider": "cloud_api",
        "phone_number_id": PHONE_NUMBER_ID,
        "access_token": TOKEN,
        "api_url": api_url,
        "api_version": "v21.0",
        "timeout_secs": 1,
    });
    for (key, value) in extra.as_object().unwrap() {
        table[key] = value.clone();
    }
    serde_json::from_value::<WhatsappConfig>(table)
        .unwrap()
        .build_cloud_api("whatsapp")
        .unwrap()
        .with_clock(noon)
}

fn template() -> Value {
    json!({"template": {"name": "case_update", "language": "en_US", "body_parameter": true}})
}

/// A rep's reply; the customer last wrote `hours_ago` hours before [`noon`] (`None`: never).
fn reply(hours_ago: Option<i64>, text: &str) -> OutboundMessage {
    OutboundMessage {
        id: "dlv_sess-42_reply_7".into(),
        session_id: "sess-42".into(),
        kind: OutboundKind::AgentMessage,
        text: text.into(),
        sender_name: Some("Dana".into()),
        at: noon(),
        email: None,
        customer_last_message_at: hours_ago.map(|h| noon() - chrono::Duration::hours(h)),
        status_callback: Some(
            "https://handoff.example.com/channels/whatsapp/status?delivery=x".into(),
        ),
    }
}

fn customer() -> ReplyTarget {
    ReplyTarget::Phone {
        number: "+15551234567".into(),
    }
}

fn graph_error(code: i64) -> Value {
    json!({"error": {"message": "(#131047) Message to 15551234567 failed: Hello Ann",
                     "type": "OAuthException", "code": code, "fbtrace_id": "Az8or2yhqkZfEZ-"}})
}

#[tokio::test]
async fn text_inside_the_window_is_sent_with_the_token_and_our_delivery_id() {
    let (url, graph) = stand_in().await;
    let delivered = whatsapp(&url, json!({}))
        .deliver(
            &customer(),
            &reply(Some(2), "Hi Ann,\nyour card works again."),
        )
        .await
        .unwrap();
    assert_eq!(
        delivered,
        Delivered {
            provider_id: Some(wamid(1))
        }
    );
    let received = graph.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.path, format!("/v21.0/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(
        request.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(
        request.body,
        json!({"messaging_product": "whatsapp", "recipient_type": "individual",
               "to": "15551234567", "type": "text",
               "text": {"preview_url": false, "body": "Hi Ann,\nyour card works again."},
               "biz_opaque_callback_data": "dlv_sess-42_reply_7"})
    );
}

#[tokio::test]
async fn outside_the_window_the_template_carries_the_text_on_one_line() {
    let (url, graph) = stand_in().await;
    let long = format!("Hi Ann,\n\n{}", "all fixed. ".repeat(200));
    let delivered = whatsapp(&url, template())
        .deliver(&customer(), &reply(Some(25), &long))
        .await
        .unwrap();
    assert_eq!(delivered.provider_id, Some(wamid(1)));
    let received = graph.received();
    assert_eq!(received.len(), 1);
    let body = &received[0].body;
    assert_eq!(body["type"], "template");
    assert_eq!(body["to"], "15551234567");
    assert_eq!(body["biz_opaque_callback_data"], "dlv_sess-42_reply_7");
    assert_eq!(body["template"]["name"], "case_update");
    assert_eq!(body["template"]["language"], json!({"code": "en_US"}));
    let parameter = &body["template"]["components"][0]["parameters"][0];
    assert_eq!(parameter["type"], "text");
    let text = parameter["text"].as_str().unwrap();
    assert!(text.starts_with("Hi Ann, all fixed. all fixed."), "{text}");
    assert!(!text.contains('\n') && !text.contains("  "), "{text}");
    assert_eq!(text.chars().count(), 1_024);
    assert!(text.ends_with('…'));
    assert_eq!(body["template"]["components"][0]["type"], "body");
    assert!(body.get("text").is_none());

    // A customer who never wrote gets the template too; without a body parameter it has no
    // components.
    let (url, graph) = stand_in().await;
    whatsapp(
        &url,
        json!({"template": {"name": "case_update", "language": "en", "body_parameter": false}}),
    )
    .deliver(&customer(), &reply(None, "Update"))
    .await
    .unwrap();
    assert_eq!(
        graph.received()[0].body["template"],
        json!({"name": "case_update", "language": {"code": "en"}})
    );
}

#[tokio::test]
async fn outside_the_window_without_a_template_nothing_is_sent() {
    let (url, graph) = stand_in().await;
    let err = whatsapp(&url, json!({}))
        .deliver(&customer(), &reply(Some(24), "Are you still there?"))
        .await
        .unwrap_err();
    let DeliveryError::WindowClosed { message } = err else {
        panic!("expected the window to be closed: {err:?}");
    };
    assert!(message.contains("24 hours"), "{message}");
    assert!(graph.received().is_empty());
}

#[tokio::test]
async fn re_engagement_inside_our_window_falls_back_to_the_template() {
    let (url, graph) = stand_in().await;
    graph.then(Answer::Json(StatusCode::BAD_REQUEST, graph_error(131_047)));
    let delivered = whatsapp(&url, template())
        .deliver(&customer(), &reply(Some(1), "Your refund is on its way."))
        .await
        .unwrap();
    assert_eq!(delivered.provider_id, Some(wamid(2)));
    let received = graph.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].body["type"], "text");
    assert_eq!(received[1].body["type"], "template");
    assert_eq!(
        received[1].body["template"]["components"][0]["parameters"][0]["text"],
        "Your refund is on its way."
    );

    // Without a template the rep is told the window is closed; nothing else is sent.
    let (url, graph) = stand_in().await;
    graph.then(Answer::Json(StatusCode::BAD_REQUEST, graph_error(131_047)));
    let err = whatsapp(&url, json!({}))
        .deliver(&customer(), &reply(Some(1), "Your refund is on its way."))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::WindowClosed { .. }), "{err:?}");
    assert_eq!(graph.received().len(), 1);
}

#[tokio::test]
async fn rate_limits_are_retried_later_and_were_not_sent() {
    let (url, graph) = stand_in().await;
    graph
        .then(Answer::WithHeader(
            StatusCode::TOO_MANY_REQUESTS,
            "retry-after",
            "30",
            graph_error(130_429),
        ))
        .then(Answer::Json(StatusCode::BAD_REQUEST, graph_error(131_056)))
        .then(Answer::Json(StatusCode::TOO_MANY_REQUESTS, json!({})));
    let channel = whatsapp(&url, json!({}));
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(
            channel
                .deliver(&customer(), &reply(Some(1), "hello"))
                .await
                .unwrap_err(),
        );
    }
    let DeliveryError::Retryable {
        message,
        retry_after,
        sent,
    } = &outcomes[0]
    else {
        panic!("{:?}", outcomes[0]);
    };
    assert_eq!(*retry_after, Some(Duration::from_secs(30)));
    assert!(!sent);
    assert!(message.contains("130429"), "{message}");
    for outcome in &outcomes[1..] {
        assert!(
            matches!(
                outcome,
                DeliveryError::Retryable {
                    sent: false,
                    retry_after: None,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }
    assert_eq!(graph.received().len(), 3);
}

#[tokio::test]
async fn server_errors_may_have_been_sent_unless_meta_says_otherwise() {
    let (url, graph) = stand_in().await;
    graph
        .then(Answer::Json(StatusCode::SERVICE_UNAVAILABLE, json!("busy")))
        .then(Answer::Json(
            StatusCode::INTERNAL_SERVER_ERROR,
            graph_error(131_000),
        ))
        .then(Answer::Slow(Duration::from_secs(3)));
    let channel = whatsapp(&url, json!({}));
    let mut sent = Vec::new();
    for _ in 0..3 {
        match channel
            .deliver(&customer(), &reply(Some(1), "hello"))
            .await
            .unwrap_err()
        {
            DeliveryError::Retryable { sent: s, .. } => sent.push(s),
            other => panic!("{other:?}"),
        }
    }
    // 503: unknown outcome; 131000: "failed to send"; no answer within timeout_secs: unknown.
    assert_eq!(sent, [true, false, true]);
}

#[tokio::test]
async fn an_expired_token_is_permanent_and_says_to_renew_it() {
    let (url, graph) = stand_in().await;
    graph.then(Answer::Json(StatusCode::UNAUTHORIZED, graph_error(190)));
    let err = whatsapp(&url, json!({}))
        .deliver(&customer(), &reply(Some(1), "hello"))
        .await
        .unwrap_err();
    let DeliveryError::Permanent { message } = err else {
        panic!("{err:?}");
    };
    assert!(
        message.contains("renew channels.whatsapp.access_token"),
        "{message}"
    );
    for secret in [TOKEN, "5551234567", "Hello Ann", "hello"] {
        assert!(!message.contains(secret), "{message}");
    }
}

#[tokio::test]
async fn other_graph_errors_are_permanent_with_their_code_and_redirects_are_not_followed() {
    let (url, graph) = stand_in().await;
    graph
        .then(Answer::Json(StatusCode::BAD_REQUEST, graph_error(131_026)))
        .then(Answer::WithHeader(
            StatusCode::FOUND,
            "location",
            "http://127.0.0.1:9/steal-the-token",
            Value::Null,
        ));
    let channel = whatsapp(&url, json!({}));
    let DeliveryError::Permanent { message } = channel
        .deliver(&customer(), &reply(Some(1), "hello"))
        .await
        .unwrap_err()
    else {
        panic!("131026 is permanent");
    };
    assert!(message.contains("Graph error 131026"), "{message}");
    assert!(message.contains("fbtrace_id Az8or2yhqkZfEZ-"), "{message}");
    assert!(!message.contains("Hello Ann"), "{message}");
    let DeliveryError::Permanent { message } = channel
        .deliver(&customer(), &reply(Some(1), "hello"))
        .await
        .unwrap_err()
    else {
        panic!("a redirect is permanent");
    };
    assert!(message.contains("redirects are not followed"), "{message}");
    assert_eq!(graph.received().len(), 2);
}
