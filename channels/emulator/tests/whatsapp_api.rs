//! The WhatsApp Cloud `messages` endpoint over real sockets: Graph errors, the 24-hour window
//! with the emulator clock, templates, limits, read marks and faults.

mod common;

use std::time::Duration;

use channel_emulator::Fault;
use channel_emulator::whatsapp::{WhatsappEmulator, WhatsappSettings};
use common::Receiver;
use serde_json::{Value, json};

const PHONE_ID: &str = "277321005464405";
const TOKEN: &str = "EAAG-test-token";
const CUSTOMER: &str = "16505551234";

async fn emulator(receiver: &Receiver) -> WhatsappEmulator {
    WhatsappEmulator::spawn(WhatsappSettings {
        phone_number_id: PHONE_ID.into(),
        access_token: TOKEN.into(),
        app_secret: "app-secret".into(),
        verify_token: "verify-me".into(),
        webhook_url: Some(receiver.url("/channels/whatsapp/inbound")),
        templates: vec!["case_update".into()],
    })
    .await
}

async fn post(
    emu: &WhatsappEmulator,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = common::client()
        .post(format!("{}{path}", emu.url()))
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.json().await.unwrap(), headers)
}

async fn send(emu: &WhatsappEmulator, body: Value) -> (u16, Value) {
    let (status, body, _) = post(
        emu,
        &format!("/v21.0/{PHONE_ID}/messages"),
        Some(TOKEN),
        &body,
    )
    .await;
    (status, body)
}

fn text(to: &str, body: &str) -> Value {
    json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
           "type": "text", "text": {"preview_url": false, "body": body}})
}

fn template(name: &str) -> Value {
    json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
           "template": {"name": name, "language": {"code": "en_US"},
                        "components": [{"type": "body", "parameters": [{"type": "text", "text": "12345"}]}]}})
}

fn assert_graph_error(status: u16, body: &Value, http: u16, code: u64) {
    assert_eq!(status, http, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(error["type"].is_string());
    assert!(error["fbtrace_id"].as_str().is_some_and(|t| t.len() > 10));
}

#[tokio::test]
async fn wrong_or_missing_tokens_get_190() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let path = format!("/v21.0/{PHONE_ID}/messages");
    for token in [None, Some("wrong")] {
        let (status, body, headers) = post(&emu, &path, token, &text(CUSTOMER, "hi")).await;
        assert_graph_error(status, &body, 401, 190);
        assert_eq!(body["error"]["type"], "OAuthException");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("OAuth")
        );
    }
    // The token may come as a query parameter as well.
    emu.inbound_text(CUSTOMER, "hi").await.unwrap();
    let resp = common::client()
        .post(format!("{}{path}", emu.url()))
        .query(&[("access_token", TOKEN)])
        .json(&text(CUSTOMER, "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn another_phone_number_or_a_bad_path_is_refused() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let (status, body, _) = post(
        &emu,
        "/v21.0/999999/messages",
        Some(TOKEN),
        &text(CUSTOMER, "hi"),
    )
    .await;
    assert_graph_error(status, &body, 400, 100);
    assert_eq!(body["error"]["error_subcode"], 33);
    assert_eq!(body["error"]["type"], "GraphMethodException");
    let (status, body, _) = post(
        &emu,
        &format!("/latest/{PHONE_ID}/messages"),
        Some(TOKEN),
        &text(CUSTOMER, "hi"),
    )
    .await;
    assert_graph_error(status, &body, 400, 2500);
    assert!(emu.sent().is_empty());
}

#[tokio::test]
async fn free_form_needs_the_customer_to_have_written_within_24_hours() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let (status, body) = send(&emu, text(CUSTOMER, "Hello")).await;
    assert_graph_error(status, &body, 400, 131047);
    assert_eq!(body["error"]["message"], "(#131047) Re-engagement message");
    assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");
    assert!(
        body["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("24 hours")
    );
    emu.inbound_text(&format!("+{CUSTOMER}"), "I have a question")
        .await
        .unwrap();
    let (status, body) = send(&emu, text(&format!("+{CUSTOMER}"), "Hello")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(
        body["contacts"],
        json!([{"input": format!("+{CUSTOMER}"), "wa_id": CUSTOMER}])
    );
    let id = body["messages"][0]["id"].as_str().unwrap();
    assert!(id.starts_with("wamid.HBg"), "{id}");
    assert_eq!(body["messages"][0].get("message_status"), None);
    // 23 h 59 min later (wall time passing meanwhile is far below the minute left).
    emu.advance_clock(Duration::from_secs(23 * 3600 + 59 * 60));
    assert_eq!(send(&emu, text(CUSTOMER, "still open")).await.0, 200);
    emu.advance_clock(Duration::from_secs(60));
    let (status, body) = send(&emu, text(CUSTOMER, "closed")).await;
    assert_graph_error(status, &body, 400, 131047);
    // Media is free-form too; a template is not.
    let image = json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image",
                       "image": {"link": "https://example.com/a.jpg"}});
    assert_eq!(send(&emu, image).await.0, 400);
    let (status, body) = send(&emu, template("case_update")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["messages"][0]["message_status"], "accepted");
    // A new customer message reopens the window.
    emu.inbound_text(CUSTOMER, "back").await.unwrap();
    assert_eq!(send(&emu, text(CUSTOMER, "welcome back")).await.0, 200);
    let sent = emu.sent();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[0].text.as_deref(), Some("Hello"));
    assert_eq!(sent[2].template.as_deref(), Some("case_update"));
    assert_eq!(sent[2].template_language.as_deref(), Some("en_US"));
}

#[tokio::test]
async fn templates_must_be_approved() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let (status, body) = send(&emu, template("unknown_template")).await;
    assert_graph_error(status, &body, 400, 132001);
    assert_eq!(
        body["error"]["message"],
        "(#132001) Template name does not exist in the translation"
    );
    emu.add_template("unknown_template").unwrap();
    assert_eq!(send(&emu, template("unknown_template")).await.0, 200);
    assert!(emu.add_template("Not A Name").is_err());
}

#[tokio::test]
async fn parameters_are_checked() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.inbound_text(CUSTOMER, "hi").await.unwrap();
    let exact = "é".repeat(4096);
    let (status, body) = send(&emu, text(CUSTOMER, &exact)).await;
    assert_eq!(status, 200, "{body}");
    let cases: Vec<(Value, u64)> = vec![
        (text(CUSTOMER, &"a".repeat(4097)), 100),
        (
            json!({"to": CUSTOMER, "type": "text", "text": {"body": "x"}}),
            100,
        ),
        (
            json!({"messaging_product": "sms", "to": CUSTOMER, "text": {"body": "x"}}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}),
            131008,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": "+0155", "text": {"body": "x"}}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text"}),
            131008,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "carrier_pigeon"}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "image", "image": {}}),
            131008,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
                "template": {"name": "case_update"}}),
            131008,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "text": {"body": "x"},
                "biz_opaque_callback_data": "x".repeat(513)}),
            100,
        ),
        (
            json!({"messaging_product": "whatsapp", "to": CUSTOMER, "recipient_type": "group",
                "text": {"body": "x"}}),
            100,
        ),
    ];
    for (payload, code) in cases {
        let (status, body) = send(&emu, payload.clone()).await;
        assert_graph_error(status, &body, 400, code);
    }
    let resp = common::client()
        .post(format!("{}/v21.0/{PHONE_ID}/messages", emu.url()))
        .bearer_auth(TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(emu.sent().len(), 1);
}

#[tokio::test]
async fn inbound_messages_can_be_marked_read() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    let inbound = emu.inbound_text(CUSTOMER, "hi").await.unwrap();
    let (status, body) = send(
        &emu,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": inbound.sid}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"success": true}));
    let (status, body) = send(
        &emu,
        json!({"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.unknown"}),
    )
    .await;
    assert_graph_error(status, &body, 400, 100);
    assert!(emu.sent().is_empty(), "read marks are not messages");
}

#[tokio::test]
async fn faults_answer_429_and_5xx_then_recover() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.inbound_text(CUSTOMER, "hi").await.unwrap();
    emu.fault(Fault::RateLimit {
        count: 1,
        retry_after_secs: 2,
    });
    emu.fault(Fault::ServerError {
        count: 1,
        status: 500,
    });
    emu.fault(Fault::ServerError {
        count: 1,
        status: 503,
    });
    let path = format!("/v21.0/{PHONE_ID}/messages");
    let (status, body, headers) = post(&emu, &path, Some(TOKEN), &text(CUSTOMER, "x")).await;
    assert_graph_error(status, &body, 429, 130429);
    assert_eq!(headers["retry-after"], "2");
    let (status, body) = send(&emu, text(CUSTOMER, "x")).await;
    assert_graph_error(status, &body, 500, 131000);
    let (status, body) = send(&emu, text(CUSTOMER, "x")).await;
    assert_graph_error(status, &body, 503, 2);
    assert!(emu.sent().is_empty());
    assert_eq!(send(&emu, text(CUSTOMER, "x")).await.0, 200);
    // Over HTTP as well.
    let resp = common::client()
        .post(format!("{}/__emulator/whatsapp/faults", emu.url()))
        .json(&json!({"type": "rate_limit", "count": 1, "retry_after_secs": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(send(&emu, text(CUSTOMER, "x")).await.0, 429);
    assert_eq!(send(&emu, text(CUSTOMER, "x")).await.0, 200);
}

#[tokio::test]
async fn the_clock_moves_over_http() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.inbound_text(CUSTOMER, "hi").await.unwrap();
    assert_eq!(send(&emu, text(CUSTOMER, "x")).await.0, 200);
    let resp = common::client()
        .post(format!("{}/__emulator/whatsapp/clock", emu.url()))
        .json(&json!({"advance_secs": 86400}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(send(&emu, text(CUSTOMER, "x")).await.0, 400);
    let listed: Value = common::client()
        .get(format!("{}/__emulator/whatsapp/messages", emu.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["wa_id"], CUSTOMER);
}
