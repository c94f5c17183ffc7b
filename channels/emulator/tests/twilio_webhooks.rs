//! Twilio's webhooks over real sockets: status callbacks and inbound messages arrive signed
//! (checked here with an independent HMAC), STOP, the WhatsApp window, replays.

mod common;

use std::time::Duration;

use channel_emulator::Error;
use channel_emulator::twilio::{TwilioEmulator, TwilioSettings};
use common::{Captured, Receiver};
use serde_json::{Value, json};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "secret-token";
const FROM: &str = "+15550100000";
const WA_FROM: &str = "whatsapp:+15550100001";
const CUSTOMER: &str = "+14155550100";
const WA_CUSTOMER: &str = "whatsapp:+14155550100";

async fn emulator(receiver: &Receiver) -> TwilioEmulator {
    let emu = TwilioEmulator::spawn(TwilioSettings {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
        api_key: None,
        webhook_url: Some(receiver.url("/channels/sms/inbound")),
        whatsapp_webhook_url: Some(receiver.url("/channels/whatsapp/inbound?via=twilio")),
    })
    .await;
    emu.add_number(FROM).unwrap();
    emu.add_whatsapp_sender(WA_FROM).unwrap();
    emu
}

async fn send(emu: &TwilioEmulator, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = common::client()
        .post(format!(
            "{}/2010-04-01/Accounts/{SID}/Messages.json",
            emu.url()
        ))
        .basic_auth(SID, Some(TOKEN))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The signature the receiver got equals the one computed here for the URL it was called at.
fn assert_signed(receiver: &Receiver, request: &Captured) {
    let url = receiver.url(&request.uri);
    let expected = common::twilio_signature(TOKEN, &url, &request.form());
    assert_eq!(
        request.header("x-twilio-signature").as_deref(),
        Some(expected.as_str()),
        "signature of {url}"
    );
    let wrong = common::twilio_signature("other-token", &url, &request.form());
    assert_ne!(request.header("x-twilio-signature"), Some(wrong));
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn status_callbacks_arrive_signed_and_in_order() {
    let receiver = Receiver::fixed(204, "").await;
    let emu = emulator(&receiver).await;
    let callback = receiver.url("/channels/sms/status?delivery=d%2F1");
    let (status, body) = send(
        &emu,
        &[
            ("To", CUSTOMER),
            ("From", FROM),
            ("Body", "Your case 00001234 is solved"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let sid = body["sid"].as_str().unwrap().to_string();
    emu.settled().await;
    let got = receiver.to_path("/channels/sms/status");
    let statuses: Vec<String> = got
        .iter()
        .map(|c| c.param("MessageStatus").unwrap())
        .collect();
    assert_eq!(statuses, vec!["sent", "delivered"]);
    for request in &got {
        assert_eq!(request.method, "POST");
        assert_eq!(request.uri, "/channels/sms/status?delivery=d%2F1");
        assert_signed(&receiver, request);
        assert_eq!(request.param("MessageSid").as_deref(), Some(sid.as_str()));
        assert_eq!(request.param("SmsSid").as_deref(), Some(sid.as_str()));
        assert_eq!(request.param("AccountSid").as_deref(), Some(SID));
        assert_eq!(request.param("From").as_deref(), Some(FROM));
        assert_eq!(request.param("To").as_deref(), Some(CUSTOMER));
        assert_eq!(request.param("ApiVersion").as_deref(), Some("2010-04-01"));
        assert_eq!(request.param("SmsStatus"), request.param("MessageStatus"));
        assert_eq!(request.param("ErrorCode"), None);
    }
    let sent = emu.sent();
    assert_eq!(sent[0].status, "delivered");
    assert_eq!(sent[0].status_callback.as_deref(), Some(callback.as_str()));
    let records = emu.callbacks();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.response_status == Some(204)));
}

#[tokio::test]
async fn undeliverable_numbers_end_undelivered_with_30003() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.mark_undeliverable(CUSTOMER).unwrap();
    let callback = receiver.url("/status");
    let (status, _) = send(
        &emu,
        &[
            ("To", CUSTOMER),
            ("From", FROM),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201);
    emu.settled().await;
    let got = receiver.to_path("/status");
    let statuses: Vec<String> = got
        .iter()
        .map(|c| c.param("MessageStatus").unwrap())
        .collect();
    assert_eq!(statuses, vec!["sent", "undelivered"]);
    assert_eq!(got[1].param("ErrorCode").as_deref(), Some("30003"));
    assert_signed(&receiver, &got[1]);
    let sent = &emu.sent()[0];
    assert_eq!(sent.status, "undelivered");
    assert_eq!(sent.error_code, Some(30003));
}

#[tokio::test]
async fn inbound_sms_is_signed_like_twilio() {
    let receiver = Receiver::fixed(200, "<Response/>").await;
    let emu = emulator(&receiver).await;
    let result = emu
        .inbound(CUSTOMER, FROM, "Hi, any news on my case?", &[])
        .await
        .unwrap();
    assert_eq!(result.status, 200);
    assert_eq!(result.body, "<Response/>");
    assert!(result.sid.starts_with("SM") && result.sid.len() == 34);
    let got = receiver.to_path("/channels/sms/inbound");
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_signed(&receiver, request);
    for (name, value) in [
        ("MessageSid", result.sid.as_str()),
        ("SmsSid", result.sid.as_str()),
        ("SmsMessageSid", result.sid.as_str()),
        ("AccountSid", SID),
        ("From", CUSTOMER),
        ("To", FROM),
        ("Body", "Hi, any news on my case?"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
        ("FromCountry", "US"),
    ] {
        assert_eq!(request.param(name).as_deref(), Some(value), "{name}");
    }
    // Empty geo fields are sent (and signed) too; no WhatsApp fields on SMS.
    assert_eq!(request.param("FromCity").as_deref(), Some(""));
    assert_eq!(request.param("WaId"), None);
    assert_eq!(request.param("ProfileName"), None);
}

#[tokio::test]
async fn inbound_media_and_whatsapp_fields() {
    let receiver = Receiver::fixed(200, "<Response/>").await;
    let emu = emulator(&receiver).await;
    emu.set_profile_name("14155550100", "Dana Q").unwrap();
    let result = emu
        .inbound(
            WA_CUSTOMER,
            WA_FROM,
            "",
            &[
                ("https://api.twilio.com/media/1", "image/jpeg"),
                ("https://api.twilio.com/media/2", "application/pdf"),
            ],
        )
        .await
        .unwrap();
    assert!(result.sid.starts_with("MM"));
    let got = receiver.to_path("/channels/whatsapp/inbound");
    assert_eq!(got.len(), 1, "WhatsApp senders post to their own webhook");
    assert!(receiver.to_path("/channels/sms/inbound").is_empty());
    let request = &got[0];
    assert_eq!(request.uri, "/channels/whatsapp/inbound?via=twilio");
    assert_signed(&receiver, request);
    for (name, value) in [
        ("From", WA_CUSTOMER),
        ("To", WA_FROM),
        ("ProfileName", "Dana Q"),
        ("WaId", "14155550100"),
        ("NumMedia", "2"),
        ("MediaUrl0", "https://api.twilio.com/media/1"),
        ("MediaContentType0", "image/jpeg"),
        ("MediaUrl1", "https://api.twilio.com/media/2"),
        ("MediaContentType1", "application/pdf"),
        ("Body", ""),
    ] {
        assert_eq!(request.param(name).as_deref(), Some(value), "{name}");
    }
}

#[tokio::test]
async fn replay_sends_the_same_bytes_again() {
    let receiver = Receiver::fixed(200, "<Response/>").await;
    let emu = emulator(&receiver).await;
    let first = emu.inbound(CUSTOMER, FROM, "hello", &[]).await.unwrap();
    let again = emu.replay_last_inbound().await.unwrap();
    assert_eq!(again.sid, first.sid);
    let got = receiver.to_path("/channels/sms/inbound");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);
    assert_eq!(
        got[0].header("x-twilio-signature"),
        got[1].header("x-twilio-signature")
    );
    assert_eq!(
        got[0].header("i-twilio-idempotency-token"),
        got[1].header("i-twilio-idempotency-token")
    );
    assert_signed(&receiver, &got[1]);
}

#[tokio::test]
async fn inbound_needs_a_webhook_and_our_number() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = TwilioEmulator::spawn(TwilioSettings::default()).await;
    emu.add_number(FROM).unwrap();
    assert!(matches!(
        emu.inbound(CUSTOMER, FROM, "x", &[]).await,
        Err(Error::NoWebhook(_))
    ));
    assert!(matches!(
        emu.replay_last_inbound().await,
        Err(Error::NothingToReplay)
    ));
    emu.set_webhook(receiver.url("/in"));
    assert!(matches!(
        emu.inbound(CUSTOMER, "+15559999999", "x", &[]).await,
        Err(Error::InvalidInput { field: "to", .. })
    ));
    assert!(matches!(
        emu.inbound("4155550100", FROM, "x", &[]).await,
        Err(Error::InvalidInput { field: "from", .. })
    ));
    assert!(matches!(
        emu.inbound(WA_CUSTOMER, FROM, "x", &[]).await,
        Err(Error::InvalidInput { field: "to", .. })
    ));
    assert!(receiver.requests().is_empty());
    let ok = emu.inbound(CUSTOMER, FROM, "x", &[]).await.unwrap();
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn stop_opts_out_and_start_opts_back_in() {
    let receiver = Receiver::fixed(200, "<Response/>").await;
    let emu = emulator(&receiver).await;
    let form = [
        ("To", CUSTOMER),
        ("From", FROM),
        ("Body", "Update on your case"),
    ];
    assert_eq!(send(&emu, &form).await.0, 201);
    emu.inbound(CUSTOMER, FROM, " stop ", &[]).await.unwrap();
    assert!(emu.is_opted_out(FROM, CUSTOMER));
    let (status, body) = send(&emu, &form).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 21610);
    // The opt-out is per sender: another of our numbers still reaches the customer.
    emu.add_number("+15550100009").unwrap();
    assert_eq!(
        send(
            &emu,
            &[("To", CUSTOMER), ("From", "+15550100009"), ("Body", "x")]
        )
        .await
        .0,
        201
    );
    emu.inbound(CUSTOMER, FROM, "START", &[]).await.unwrap();
    assert!(!emu.is_opted_out(FROM, CUSTOMER));
    assert_eq!(send(&emu, &form).await.0, 201);
    // The STOP message itself still reached the webhook.
    let bodies: Vec<String> = receiver
        .to_path("/channels/sms/inbound")
        .iter()
        .map(|c| c.param("Body").unwrap())
        .collect();
    assert_eq!(bodies, vec![" stop ", "START"]);
}

#[tokio::test]
async fn whatsapp_free_form_needs_the_24_hour_window() {
    let receiver = Receiver::fixed(200, "<Response/>").await;
    let emu = emulator(&receiver).await;
    let free_form = [
        ("To", WA_CUSTOMER),
        ("From", WA_FROM),
        ("Body", "Hello again"),
    ];
    let (status, body) = send(&emu, &free_form).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 63016);
    let template = [
        ("To", WA_CUSTOMER),
        ("From", WA_FROM),
        ("ContentSid", "HX0123456789abcdef0123456789abcdef"),
        ("ContentVariables", r#"{"1":"00001234"}"#),
    ];
    let (status, body) = send(&emu, &template).await;
    assert_eq!(status, 201, "a template needs no window: {body}");
    assert_eq!(body["num_segments"], "1");
    emu.inbound(WA_CUSTOMER, WA_FROM, "hi", &[]).await.unwrap();
    assert_eq!(send(&emu, &free_form).await.0, 201);
    emu.advance_clock(Duration::from_secs(23 * 3600));
    assert_eq!(send(&emu, &free_form).await.0, 201);
    emu.advance_clock(Duration::from_secs(3600));
    let (status, body) = send(&emu, &free_form).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 63016);
    let sent = emu.sent();
    assert_eq!(
        sent[0].content_sid.as_deref(),
        Some("HX0123456789abcdef0123456789abcdef")
    );
    assert_eq!(
        sent[0].content_variables.as_deref(),
        Some(r#"{"1":"00001234"}"#)
    );
}

#[tokio::test]
async fn whatsapp_messages_are_read_too() {
    let receiver = Receiver::fixed(200, "").await;
    let emu = emulator(&receiver).await;
    emu.inbound(WA_CUSTOMER, WA_FROM, "hi", &[]).await.unwrap();
    let callback = receiver.url("/channels/whatsapp/status");
    let (status, _) = send(
        &emu,
        &[
            ("To", WA_CUSTOMER),
            ("From", WA_FROM),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    assert_eq!(status, 201);
    emu.settled().await;
    let got = receiver.to_path("/channels/whatsapp/status");
    let statuses: Vec<String> = got
        .iter()
        .map(|c| c.param("MessageStatus").unwrap())
        .collect();
    assert_eq!(statuses, vec!["sent", "delivered", "read"]);
    got.iter().for_each(|c| assert_signed(&receiver, c));
}

#[tokio::test]
async fn a_failing_status_callback_is_logged_not_retried() {
    let receiver = Receiver::fixed(500, "boom").await;
    let emu = emulator(&receiver).await;
    let callback = receiver.url("/status");
    send(
        &emu,
        &[
            ("To", CUSTOMER),
            ("From", FROM),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    )
    .await;
    emu.settled().await;
    let records = emu.callbacks();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.response_status == Some(500)));
    assert_eq!(emu.sent()[0].status, "delivered");
}

#[tokio::test]
async fn control_routes_drive_inbound_and_settings() {
    let receiver = Receiver::fixed(200, "<Response/>").await;
    let emu = TwilioEmulator::spawn(TwilioSettings::default()).await;
    let client = common::client();
    let base = format!("{}/__emulator/twilio", emu.url());
    let put = client
        .put(format!("{base}/webhooks"))
        .json(&json!({"sms": receiver.url("/sms")}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let added = client
        .post(format!("{base}/numbers"))
        .json(&json!({"number": FROM}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 204);
    let resp = client
        .post(format!("{base}/inbound"))
        .json(&json!({"from": CUSTOMER, "to": FROM, "body": "hello",
                      "media": [{"url": "https://example.com/x.png", "content_type": "image/png"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let result: Value = resp.json().await.unwrap();
    assert_eq!(result["status"], 200);
    assert!(result["sid"].as_str().unwrap().starts_with("MM"));
    let replay: Value = client
        .post(format!("{base}/replay"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replay["sid"], result["sid"]);
    assert_eq!(receiver.to_path("/sms").len(), 2);
    let bad = client
        .post(format!("{base}/inbound"))
        .json(&json!({"from": "nope", "to": FROM}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let error: Value = bad.json().await.unwrap();
    assert!(error["error"].as_str().unwrap().contains("from"));
    let unknown = client
        .post(format!("{base}/inbound"))
        .json(&json!({"from": CUSTOMER, "to": FROM, "bogus": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    let clock = client
        .post(format!("{base}/clock"))
        .json(&json!({"advance_secs": 90000}))
        .send()
        .await
        .unwrap();
    assert_eq!(clock.status(), 204);
    let settled = client.get(format!("{base}/settled")).send().await.unwrap();
    assert_eq!(settled.status(), 204);
    let callbacks: Value = client
        .get(format!("{base}/callbacks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = callbacks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["inbound", "replay"]);
}
