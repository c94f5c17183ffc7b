//! Meta's webhooks over real sockets: inbound messages and statuses arrive in the real
//! envelope, signed (checked here with an independent HMAC over the raw bytes); replays;
//! the verification handshake.

mod common;

use channel_emulator::Error;
use channel_emulator::whatsapp::{WhatsappEmulator, WhatsappSettings};
use common::{Captured, Receiver};
use serde_json::{Value, json};

const PHONE_ID: &str = "277321005464405";
const TOKEN: &str = "EAAG-test-token";
const SECRET: &str = "app-secret";
const VERIFY: &str = "verify-me";
const CUSTOMER: &str = "16505551234";

async fn emulator(receiver: &Receiver) -> WhatsappEmulator {
    WhatsappEmulator::spawn(WhatsappSettings {
        phone_number_id: PHONE_ID.into(),
        access_token: TOKEN.into(),
        app_secret: SECRET.into(),
        verify_token: VERIFY.into(),
        webhook_url: Some(receiver.url("/channels/whatsapp/inbound")),
        templates: vec!["case_update".into()],
    })
    .await
}

async fn send(emu: &WhatsappEmulator, body: Value) -> (u16, Value) {
    let resp = common::client()
        .post(format!("{}/v21.0/{PHONE_ID}/messages", emu.url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Signed over the raw bytes with the app secret (and not with another secret).
fn assert_signed(request: &Captured) {
    let expected = common::meta_signature(SECRET, &request.body);
    assert_eq!(
        request.header("x-hub-signature-256").as_deref(),
        Some(expected.as_str())
    );
    assert_ne!(
        request.header("x-hub-signature-256"),
        Some(common::meta_signature("other", &request.body))
    );
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
}

/// `entry[0].changes[0].value`, after checking the envelope around it.
fn value_of(request: &Captured) -> Value {
    let body = request.json();
    assert_eq!(body["object"], "whatsapp_business_account");
    let entry = &body["entry"][0];
    assert!(entry["id"].as_str().is_some_and(|id| !id.is_empty()));
    let change = &entry["changes"][0];
    assert_eq!(change["field"], "messages");
    let value = change["value"].clone();
    assert_eq!(value["messaging_product"], "whatsapp");
    assert_eq!(value["metadata"]["phone_number_id"], PHONE_ID);
    assert!(value["metadata"]["display_phone_number"].is_string());
    value
}

#[tokio::test]
async fn inbound_text_arrives_signed_in_the_real_envelope() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.set_profile_name(CUSTOMER, "Dana").unwrap();
    let result = emu
        .inbound_text(CUSTOMER, "Where is my order?")
        .await
        .unwrap();
    assert_eq!(result.status, 200);
    assert!(result.sid.starts_with("wamid."));
    let got = receiver.requests();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/channels/whatsapp/inbound");
    assert_signed(request);
    let value = value_of(request);
    assert_eq!(
        value["contacts"],
        json!([{"profile": {"name": "Dana"}, "wa_id": CUSTOMER}])
    );
    let message = &value["messages"][0];
    assert_eq!(message["from"], CUSTOMER);
    assert_eq!(message["id"], result.sid.as_str());
    assert_eq!(message["type"], "text");
    assert_eq!(message["text"]["body"], "Where is my order?");
    let ts: i64 = message["timestamp"].as_str().unwrap().parse().unwrap();
    assert!((ts - chrono::Utc::now().timestamp()).abs() < 3600);
}

#[tokio::test]
async fn non_ascii_is_escaped_and_the_raw_bytes_are_signed() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.inbound_text(CUSTOMER, "Grüße 😀 — ok").await.unwrap();
    let request = &receiver.requests()[0];
    assert!(request.body.is_ascii(), "Meta escapes non-ASCII characters");
    let raw = std::str::from_utf8(&request.body).unwrap();
    assert!(
        raw.contains(r"Gr\u00fc\u00dfe \ud83d\ude00 \u2014 ok"),
        "{raw}"
    );
    assert_signed(request);
    assert_eq!(
        value_of(request)["messages"][0]["text"]["body"],
        "Grüße 😀 — ok"
    );
    // Re-serializing changes the bytes, so a verifier must hash what it received.
    let reserialized = serde_json::to_vec(&request.json()).unwrap();
    assert_ne!(
        common::meta_signature(SECRET, &reserialized),
        request.header("x-hub-signature-256").unwrap()
    );
}

#[tokio::test]
async fn any_message_type_can_be_posted() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let result = emu
        .inbound(json!({
            "from": CUSTOMER,
            "type": "image",
            "image": {"id": "1479537139650973", "mime_type": "image/jpeg",
                      "sha256": "abc", "caption": "the broken part"}
        }))
        .await
        .unwrap();
    let value = value_of(&receiver.requests()[0]);
    let message = &value["messages"][0];
    assert_eq!(message["type"], "image");
    assert_eq!(message["image"]["caption"], "the broken part");
    assert_eq!(message["id"], result.sid.as_str());
    assert!(message["timestamp"].is_string());
    // Given ids and timestamps are kept (stale or duplicate events can be made).
    emu.inbound(
        json!({"from": CUSTOMER, "id": "wamid.fixed", "timestamp": "1730231903",
                       "type": "location", "location": {"latitude": 52.52, "longitude": 13.4}}),
    )
    .await
    .unwrap();
    let message = &value_of(&receiver.requests()[1])["messages"][0];
    assert_eq!(message["id"], "wamid.fixed");
    assert_eq!(message["timestamp"], "1730231903");
    for bad in [
        json!("text"),
        json!({"type": "text"}),
        json!({"from": "+0123", "type": "text"}),
        json!({"from": CUSTOMER}),
        json!({"from": CUSTOMER, "type": "text", "id": 5}),
    ] {
        assert!(
            matches!(
                emu.inbound(bad.clone()).await,
                Err(Error::InvalidInput { .. })
            ),
            "{bad}"
        );
    }
    assert_eq!(receiver.requests().len(), 2);
}

#[tokio::test]
async fn statuses_arrive_signed_in_order_with_the_callback_data() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.inbound_text(CUSTOMER, "hi").await.unwrap();
    let (status, body) = send(
        &emu,
        json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text",
               "text": {"body": "Hi, this is Dana from support"},
               "biz_opaque_callback_data": "delivery:abc/1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["messages"][0]["id"].as_str().unwrap().to_string();
    emu.settled().await;
    let got = receiver.requests();
    assert_eq!(got.len(), 4, "the inbound message and three statuses");
    let mut statuses = Vec::new();
    for request in &got[1..] {
        assert_signed(request);
        let value = value_of(request);
        assert!(value.get("messages").is_none());
        let entry = &value["statuses"][0];
        assert_eq!(entry["id"], id.as_str());
        assert_eq!(entry["recipient_id"], CUSTOMER);
        assert_eq!(entry["biz_opaque_callback_data"], "delivery:abc/1");
        assert!(entry["timestamp"].is_string());
        statuses.push(entry["status"].as_str().unwrap().to_string());
    }
    assert_eq!(statuses, vec!["sent", "delivered", "read"]);
    let sent_entry = &value_of(&got[1])["statuses"][0];
    assert_eq!(sent_entry["conversation"]["origin"]["type"], "service");
    assert_eq!(sent_entry["pricing"]["category"], "service");
    assert_eq!(emu.sent()[0].status, "read");
}

#[tokio::test]
async fn statuses_from_v24_omit_the_conversation() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let resp = common::client()
        .post(format!("{}/v24.0/{PHONE_ID}/messages", emu.url()))
        .bearer_auth(TOKEN)
        .json(
            &json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
                      "template": {"name": "case_update", "language": {"code": "en_US"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    emu.settled().await;
    let sent_entry = &value_of(&receiver.requests()[0])["statuses"][0];
    assert_eq!(sent_entry["status"], "sent");
    assert!(sent_entry.get("conversation").is_none());
    assert_eq!(sent_entry["pricing"]["category"], "utility");
    assert!(sent_entry.get("biz_opaque_callback_data").is_none());
}

#[tokio::test]
async fn undeliverable_recipients_fail_with_131026() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.mark_undeliverable(CUSTOMER).unwrap();
    emu.inbound_text(CUSTOMER, "hi").await.unwrap();
    let (status, _) = send(
        &emu,
        json!({"messaging_product": "whatsapp", "to": CUSTOMER, "text": {"body": "x"},
               "biz_opaque_callback_data": "d1"}),
    )
    .await;
    assert_eq!(status, 200, "the API accepts; the failure comes by webhook");
    emu.settled().await;
    let got = receiver.requests();
    assert_eq!(got.len(), 2);
    assert_signed(&got[1]);
    let entry = &value_of(&got[1])["statuses"][0];
    assert_eq!(entry["status"], "failed");
    assert_eq!(entry["errors"][0]["code"], 131026);
    assert_eq!(entry["biz_opaque_callback_data"], "d1");
    let sent = &emu.sent()[0];
    assert_eq!(sent.status, "failed");
    assert_eq!(sent.error_code, Some(131026));
}

#[tokio::test]
async fn replay_sends_the_same_bytes_again() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let first = emu.inbound_text(CUSTOMER, "hello").await.unwrap();
    let again = emu.replay_last_inbound().await.unwrap();
    assert_eq!(again.sid, first.sid);
    let got = receiver.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        got[0].header("x-hub-signature-256"),
        got[1].header("x-hub-signature-256")
    );
    let kinds: Vec<_> = emu.callbacks().iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        vec![
            channel_emulator::CallbackKind::Inbound,
            channel_emulator::CallbackKind::Replay
        ]
    );
}

/// A webhook doing the handshake as the gateway must: mode `subscribe`, our token → 200
/// with the challenge; anything else → 403.
fn handshake(request: &Captured) -> (u16, String) {
    let query = request
        .uri
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if request.method == "GET"
        && get("hub.mode").as_deref() == Some("subscribe")
        && get("hub.verify_token").as_deref() == Some(VERIFY)
    {
        (200, get("hub.challenge").unwrap_or_default())
    } else {
        (403, "forbidden".into())
    }
}

#[tokio::test]
async fn verify_webhook_performs_the_handshake() {
    let receiver = Receiver::start(handshake).await;
    let emu = emulator(&receiver).await;
    assert!(emu.verify_webhook().await.unwrap());
    assert!(!emu.verify_webhook_with_token("guess").await.unwrap());
    let got = receiver.requests();
    assert_eq!(got.len(), 2);
    let query = got[0].uri.split_once('?').unwrap().1;
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let challenge = &params.iter().find(|(k, _)| k == "hub.challenge").unwrap().1;
    assert!(challenge.len() == 10 && challenge.bytes().all(|b| b.is_ascii_digit()));
    // A webhook that answers 200 without echoing fails the handshake.
    let lazy = Receiver::fixed(200, "ok").await;
    emu.set_webhook(lazy.url("/hook"));
    assert!(!emu.verify_webhook().await.unwrap());
    // The token stays out of the callback log.
    assert!(emu.callbacks().iter().all(|c| !c.url.contains(VERIFY)));
    // Over HTTP.
    emu.set_webhook(receiver.url("/channels/whatsapp/inbound"));
    let answer: Value = common::client()
        .post(format!("{}/__emulator/whatsapp/verify", emu.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"echoed": true}));
}

#[tokio::test]
async fn without_a_webhook_nothing_is_posted() {
    let emu = WhatsappEmulator::spawn(WhatsappSettings::default()).await;
    assert!(matches!(
        emu.inbound_text(CUSTOMER, "x").await,
        Err(Error::NoWebhook(_))
    ));
    assert!(matches!(
        emu.verify_webhook().await,
        Err(Error::NoWebhook(_))
    ));
    assert!(matches!(
        emu.replay_last_inbound().await,
        Err(Error::NothingToReplay)
    ));
    assert!(matches!(
        emu.inbound_text("abc", "x").await,
        Err(Error::InvalidInput {
            field: "from_wa_id",
            ..
        })
    ));
}

#[tokio::test]
async fn control_route_posts_inbound_messages() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let base = format!("{}/__emulator/whatsapp", emu.url());
    let client = common::client();
    let text: Value = client
        .post(format!("{base}/inbound"))
        .json(&json!({"from": CUSTOMER, "text": "hello"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(text["status"], 200);
    let other = client
        .post(format!("{base}/inbound"))
        .json(&json!({"message": {"from": CUSTOMER, "type": "reaction",
                                  "reaction": {"message_id": "wamid.x", "emoji": "👍"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    let both = client
        .post(format!("{base}/inbound"))
        .json(&json!({"from": CUSTOMER, "text": "x", "message": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
    assert_eq!(receiver.requests().len(), 2);
    assert_eq!(emu.callbacks().len(), 2);
}
