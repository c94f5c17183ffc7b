//! The adapter as the gateway sees it: signed webhook bodies in, events out; keywords; the
//! handshake; the window decision before anything is sent.

use chrono::TimeZone;
use secrecy::SecretString;
use serde_json::{Value, json};

use super::*;
use crate::{InboundMessage, Media, OutboundKind, ProviderStatus, StatusUpdate};

const PHONE_NUMBER_ID: &str = "277321005464405";
const APP_SECRET: &str = "1222e786b144d0e85b9f365372d93676";
/// When the pywa vector's message was sent (its `timestamp`).
const SENT_AT: i64 = 1_730_231_903;

// The published vector of david-lev/pywa, tests/test_server.py (MIT) at
// 0bcf2f192ff3cf8ae24a425d85f4295e3cca7a62: a real webhook body and Meta's signature on it.
const PYWA_BODY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
const PYWA_SIGNATURE: &str =
    "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441";

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).unwrap()
}

fn channel_with(extra: Value) -> WhatsappChannel {
    let mut table = json!({
        "phone_number_id": PHONE_NUMBER_ID,
        "app_secret": APP_SECRET,
        "verify_token": "meatyhamhock",
        "access_token": "EAAG-token",
        // Nothing listens on the discard port: a send that happens fails to connect.
        "api_url": "http://127.0.0.1:9",
    });
    for (key, value) in extra.as_object().unwrap() {
        table[key] = value.clone();
    }
    serde_json::from_value::<WhatsappConfig>(table)
        .unwrap()
        .build_cloud_api("whatsapp")
        .unwrap()
}

fn channel() -> WhatsappChannel {
    channel_with(json!({}))
}

fn request(body: &[u8], signature: Option<&str>, received_at: DateTime<Utc>) -> InboundRequest {
    InboundRequest {
        url: "https://handoff.example.com/channels/whatsapp/inbound".into(),
        headers: signature
            .map(|s| vec![("x-hub-signature-256".to_owned(), s.to_owned())])
            .unwrap_or_default(),
        body: body.to_vec(),
        received_at,
    }
}

/// `body` signed with the app secret, received ten seconds after [`SENT_AT`].
async fn inbound(body: &Value) -> Result<Vec<InboundEvent>, ChannelError> {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature = AppSecret::new(&SecretString::from(APP_SECRET)).sign(&bytes);
    channel()
        .inbound(&request(&bytes, Some(&signature), at(SENT_AT + 10)))
        .await
}

/// A notification with one `messages` change for `phone_number_id`.
fn notification(phone_number_id: &str, value: Value) -> Value {
    let mut value = value;
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] = json!({"display_phone_number": "15550953877",
                               "phone_number_id": phone_number_id});
    json!({"object": "whatsapp_business_account",
           "entry": [{"id": "264937493375603",
                      "changes": [{"field": "messages", "value": value}]}]})
}

/// A customer message from 15551234567 of `type` with `part`.
fn msg(id: &str, kind: &str, part: Value) -> Value {
    let mut message = json!({"from": "15551234567", "id": id,
                             "timestamp": SENT_AT.to_string(), "type": kind});
    if !part.is_null() {
        message[kind] = part;
    }
    message
}

fn messages(events: Vec<InboundEvent>) -> Vec<InboundMessage> {
    events
        .into_iter()
        .map(|event| match event {
            InboundEvent::Message(message) => message,
            InboundEvent::Status(status) => panic!("unexpected status {status:?}"),
        })
        .collect()
}

fn texts(messages: &[InboundMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

async fn refused(body: &Value) -> (String, String) {
    let err = inbound(body).await.unwrap_err();
    assert_eq!(err.code(), "invalid_inbound", "{err}");
    (err.field().unwrap(), err.to_string())
}

#[tokio::test]
async fn the_pywa_webhook_verifies_and_parses() {
    let events = channel()
        .inbound(&request(
            PYWA_BODY.as_bytes(),
            Some(PYWA_SIGNATURE),
            at(SENT_AT + 2),
        ))
        .await
        .unwrap();
    assert_eq!(
        events,
        [InboundEvent::Message(InboundMessage {
            provider_message_id:
                "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA"
                    .into(),
            session_id: None,
            from: Some("+972544401243".into()),
            to: Some(PHONE_NUMBER_ID.into()),
            sender_name: Some("PyWa Tests".into()),
            text: "Hey there! I am using PyWa.".into(),
            media: vec![],
            at: at(SENT_AT),
        })]
    );
}

#[tokio::test]
async fn nothing_is_parsed_before_the_signature_verifies() {
    let garbage = b"{not json at all";
    for signature in [None, Some(PYWA_SIGNATURE), Some("sha256=00")] {
        let err = channel()
            .inbound(&request(garbage, signature, at(SENT_AT)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_signature", "{signature:?}");
        assert!(err.to_string().contains("X-Hub-Signature-256"), "{err}");
    }
    // The right signature over a different body (the header is looked up ignoring case).
    let mut tampered = request(PYWA_BODY.as_bytes(), None, at(SENT_AT));
    tampered.headers = vec![("X-HUB-SIGNATURE-256".into(), PYWA_SIGNATURE.into())];
    tampered.body.push(b' ');
    let err = channel().inbound(&tampered).await.unwrap_err();
    assert_eq!(err.code(), "invalid_signature");
}

#[tokio::test]
async fn without_an_app_secret_webhooks_are_refused() {
    let receive_only = WhatsappConfig::default().build("whatsapp").unwrap();
    let err = receive_only
        .inbound(&request(
            PYWA_BODY.as_bytes(),
            Some(PYWA_SIGNATURE),
            at(SENT_AT),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "inbound_not_supported");
    let err = receive_only.handshake(&[]).unwrap_err();
    assert_eq!(err.code(), "inbound_not_supported");
}

#[tokio::test]
async fn every_message_type_gets_a_text() {
    let body = notification(
        PHONE_NUMBER_ID,
        json!({
            "contacts": [{"profile": {"name": "Ann\u{0}Lee\n"}, "wa_id": "15551234567"}],
            "messages": [
                msg("m1", "text", json!({"body": "Hello\u{0}\nthere"})),
                msg("m2", "image", json!({"id": "1001", "mime_type": "image/jpeg", "sha256": "x"})),
                msg("m3", "image", json!({"id": "1002", "mime_type": "image/png", "caption": "my receipt"})),
                msg("m4", "audio", json!({"id": "1003", "mime_type": "audio/ogg; codecs=opus", "voice": true})),
                msg("m5", "audio", json!({"id": "1004", "mime_type": "audio/mpeg", "voice": false})),
                msg("m6", "video", json!({"id": "1005", "mime_type": "video/mp4"})),
                msg("m7", "document", json!({"id": "1006", "mime_type": "application/pdf", "filename": "invoice 7.pdf"})),
                msg("m8", "sticker", json!({"id": "1007", "mime_type": "image/webp", "animated": false})),
                msg("m9", "location", json!({"latitude": 52.520008, "longitude": 13.404954,
                                             "name": "Office", "address": "Unter den Linden 1, Berlin"})),
                msg("m10", "location", json!({"latitude": -33.8688, "longitude": 151.0})),
                msg("m11", "contacts", json!([
                    {"name": {"formatted_name": "Chandler Bing", "first_name": "Chandler"},
                     "phones": [{"phone": "+1 555-555-5555", "type": "CELL"}]},
                    {"name": {"formatted_name": "Monica"}}])),
                msg("m12", "interactive", json!({"type": "button_reply",
                                                 "button_reply": {"id": "yes_1", "title": "Yes"}})),
                msg("m13", "interactive", json!({"type": "list_reply",
                                                 "list_reply": {"id": "opt_2", "title": "Billing", "description": "d"}})),
                msg("m14", "button", json!({"payload": "talk_to_agent", "text": "Talk to an agent"})),
                msg("m15", "reaction", json!({"message_id": "wamid.ours", "emoji": "👍"})),
                msg("m16", "reaction", json!({"message_id": "wamid.ours", "emoji": ""})),
                msg("m17", "order", json!({"catalog_id": "1", "text": "",
                                           "product_items": [{"product_retailer_id": "A"}, {"product_retailer_id": "B"}]})),
                msg("m18", "system", json!({"body": "User A changed from 1 to 2", "type": "user_changed_number"})),
                {"from": "15551234567", "id": "m19", "timestamp": SENT_AT.to_string(), "type": "unsupported",
                 "errors": [{"code": 131_051, "title": "Message type unknown"}]},
                msg("m20", "hologram", json!({"beam": true})),
                msg("m21", "Évil\ntype", Value::Null),
                msg("m22", "interactive", Value::Null),
                msg("m23", "text", json!({"body": "   "})),
            ]
        }),
    );
    let parsed = messages(inbound(&body).await.unwrap());
    assert_eq!(
        texts(&parsed),
        [
            "Hello\u{fffd}\nthere",
            "[image]",
            "my receipt",
            "[voice note]",
            "[audio]",
            "[video]",
            "[document \"invoice 7.pdf\"]",
            "[sticker]",
            "[location 52.520008, 13.404954 \"Office, Unter den Linden 1, Berlin\"]",
            "[location -33.8688, 151]",
            "[contacts: Chandler Bing +1 555-555-5555; Monica]",
            "[button \"Yes\" (id: yes_1)]",
            "[list choice \"Billing\" (id: opt_2)]",
            "[button \"Talk to an agent\" (payload: talk_to_agent)]",
            "[reacted 👍 to a message]",
            "[removed a reaction]",
            "[order of 2 items]",
            "[system message: user_changed_number]",
            "[a message WhatsApp does not support (error 131051)]",
            "[hologram message]",
            "[a message of an unknown type]",
            "[interactive reply]",
            "[empty message]",
        ]
    );
    for message in &parsed {
        assert_eq!(message.from.as_deref(), Some("+15551234567"));
        assert_eq!(message.to.as_deref(), Some(PHONE_NUMBER_ID));
        assert_eq!(message.sender_name.as_deref(), Some("Ann Lee"));
        assert_eq!(message.at, at(SENT_AT));
    }
    let media = |i: usize| parsed[i].media.clone();
    assert_eq!(
        media(1),
        [Media {
            url: "media:1001".into(),
            content_type: Some("image/jpeg".into()),
            filename: None
        }]
    );
    assert_eq!(
        media(3)[0].content_type.as_deref(),
        Some("audio/ogg; codecs=opus")
    );
    assert_eq!(
        media(6),
        [Media {
            url: "media:1006".into(),
            content_type: Some("application/pdf".into()),
            filename: Some("invoice 7.pdf".into())
        }]
    );
    assert!(parsed[0].media.is_empty() && parsed[8].media.is_empty());
}

#[tokio::test]
async fn context_is_noted_and_senders_are_normalized() {
    let mut reply = msg("c1", "text", json!({"body": "STOP"}));
    reply["context"] = json!({"from": "15550953877", "id": "wamid.ours"});
    let mut forwarded = msg("c2", "text", json!({"body": "look"}));
    forwarded["context"] = json!({"forwarded": true});
    let mut viral = msg("c3", "image", json!({"id": "5", "caption": "wow"}));
    viral["context"] = json!({"forwarded": true, "frequently_forwarded": true});
    let mut button = msg("c4", "button", json!({"payload": "p", "text": "Yes"}));
    button["context"] = json!({"from": "15550953877", "id": "wamid.template"});
    let mut user_id_only = msg("c5", "text", json!({"body": "hi"}));
    user_id_only["from"] = json!("US.13491208655302741918");
    let mut no_sender = msg("c6", "system", json!({"type": "user_changed_user_id"}));
    no_sender.as_object_mut().unwrap().remove("from");
    let mut short = msg("c7", "text", json!({"body": "hi"}));
    short["from"] = json!("1234567");
    let mut leading_zero = msg("c8", "text", json!({"body": "hi"}));
    leading_zero["from"] = json!("0155512345");
    let body = notification(
        PHONE_NUMBER_ID,
        json!({
            "contacts": [{"profile": {"name": "Someone else"}, "wa_id": "15559999999"}],
            "messages": [reply, forwarded, viral, button, user_id_only, no_sender, short, leading_zero]
        }),
    );
    let parsed = messages(inbound(&body).await.unwrap());
    assert_eq!(
        texts(&parsed),
        [
            "[replying to an earlier message] STOP",
            "[forwarded] look",
            "[forwarded many times] wow",
            "[button \"Yes\" (payload: p)]",
            "hi",
            "[system message: user_changed_user_id]",
            "hi",
            "hi",
        ]
    );
    // A profile listed for another wa_id is not this sender's name.
    assert_eq!(parsed[0].sender_name, None);
    assert_eq!(parsed[0].from.as_deref(), Some("+15551234567"));
    for message in &parsed[4..] {
        assert_eq!(message.from, None, "{}", message.provider_message_id);
    }
    // A swipe reply of STOP is still the keyword; a forwarded STOP is not.
    let channel = channel();
    assert_eq!(
        channel.keyword(&parsed[0].text),
        Some((Keyword::OptOut, None))
    );
    assert_eq!(channel.keyword("[forwarded] STOP"), None);
}

#[tokio::test]
async fn statuses_carry_our_delivery_id_and_error_code() {
    let status = |id: &str, status: &str, extra: Value| {
        let mut s = json!({"id": id, "status": status, "timestamp": "1730231950",
                           "recipient_id": "15551234567",
                           "conversation": {"id": "c", "origin": {"type": "service"}},
                           "pricing": {"billable": true, "category": "service"}});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    };
    let body = notification(
        PHONE_NUMBER_ID,
        json!({"statuses": [
            status("wamid.1", "sent", json!({"biz_opaque_callback_data": "dlv_abc"})),
            status("wamid.1", "delivered", json!({})),
            status("wamid.1", "read", json!({"biz_opaque_callback_data": "dlv_abc"})),
            status("wamid.2", "failed", json!({"biz_opaque_callback_data": "dlv_def",
                "errors": [{"code": 131_026, "title": "Message undeliverable"}]})),
            status("wamid.3", "played", json!({})),
            status("wamid.4", "deleted", json!({})),
            status("wamid.5", "sent", json!({"biz_opaque_callback_data": "not ours\n"})),
        ]}),
    );
    let events = inbound(&body).await.unwrap();
    let update = |id: &str, delivery: Option<&str>, status, code: Option<&str>| {
        InboundEvent::Status(StatusUpdate {
            provider_message_id: id.into(),
            delivery_id: delivery.map(str::to_owned),
            status,
            error_code: code.map(str::to_owned),
            at: at(1_730_231_950),
        })
    };
    assert_eq!(
        events,
        [
            update("wamid.1", Some("dlv_abc"), ProviderStatus::Sent, None),
            update("wamid.1", None, ProviderStatus::Delivered, None),
            update("wamid.1", Some("dlv_abc"), ProviderStatus::Read, None),
            update(
                "wamid.2",
                Some("dlv_def"),
                ProviderStatus::Failed,
                Some("131026")
            ),
            update("wamid.3", None, ProviderStatus::Read, None),
            update("wamid.5", None, ProviderStatus::Sent, None),
        ]
    );
}

#[tokio::test]
async fn other_numbers_fields_and_objects_are_skipped() {
    let ours = msg("ours", "text", json!({"body": "mine"}));
    let theirs = msg("theirs", "text", json!({"body": "not mine"}));
    let mut body = notification(PHONE_NUMBER_ID, json!({"messages": [ours]}));
    let other = notification("999999999999999", json!({"messages": [theirs]}));
    let entries = body["entry"].as_array_mut().unwrap();
    entries.push(other["entry"][0].clone());
    entries[0]["changes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"field": "message_template_status_update",
                     "value": {"event": "APPROVED", "message_template_name": "case_update"}}));
    let parsed = messages(inbound(&body).await.unwrap());
    assert_eq!(texts(&parsed), ["mine"]);
    let page = json!({"object": "page", "entry": [{"messaging": []}]});
    assert!(inbound(&page).await.unwrap().is_empty());
    let empty = json!({"object": "whatsapp_business_account", "entry": []});
    assert!(inbound(&empty).await.unwrap().is_empty());
}

#[tokio::test]
async fn stale_messages_are_dropped_and_statuses_kept() {
    let day = 24 * 60 * 60;
    let mut old = msg("old", "text", json!({"body": "from three days ago"}));
    old["timestamp"] = json!((SENT_AT - 3 * day).to_string());
    let mut edge = msg("edge", "text", json!({"body": "just within"}));
    edge["timestamp"] = json!((SENT_AT + 10 - 2 * day).to_string());
    let body = notification(
        PHONE_NUMBER_ID,
        json!({"messages": [old, edge],
               "statuses": [{"id": "wamid.9", "status": "delivered",
                             "timestamp": (SENT_AT - 5 * day).to_string()}]}),
    );
    let events = inbound(&body).await.unwrap();
    assert_eq!(events.len(), 2);
    let InboundEvent::Message(kept) = &events[0] else {
        panic!("the message within max_event_age stays");
    };
    assert_eq!(kept.provider_message_id, "edge");
    assert!(matches!(events[1], InboundEvent::Status(_)));
}

#[tokio::test]
async fn hostile_bodies_are_refused_naming_the_field() {
    // Deep nesting stops at serde_json's recursion limit (128), before any walking.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bytes = deep.as_bytes();
    let signature = AppSecret::new(&SecretString::from(APP_SECRET)).sign(bytes);
    let err = channel()
        .inbound(&request(bytes, Some(&signature), at(SENT_AT)))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.field().as_deref()),
        ("invalid_inbound", Some("body"))
    );
    let mut nested = json!("x");
    for _ in 0..100 {
        nested = json!({"a": nested});
    }
    let (field, _) = refused(&notification(
        PHONE_NUMBER_ID,
        json!({"messages": [msg("n", "text", json!({"body": nested}))]}),
    ))
    .await;
    assert_eq!(field, "entry[0].changes[0].value.messages[0]");

    // More than 1,000 events, however they are spread over entries and changes.
    let many: Vec<Value> = (0..600)
        .map(|i| msg(&format!("m{i}"), "text", json!({"body": "x"})))
        .collect();
    let mut body = notification(PHONE_NUMBER_ID, json!({"messages": many}));
    let again = body["entry"][0].clone();
    body["entry"].as_array_mut().unwrap().push(again);
    let (field, reason) = refused(&body).await;
    assert_eq!(field, "entry");
    assert!(reason.contains("1000"), "{reason}");
    // Exactly 1,000 is fine.
    let thousand: Vec<Value> = (0..1_000)
        .map(|i| msg(&format!("m{i}"), "text", json!({"body": "x"})))
        .collect();
    assert_eq!(
        inbound(&notification(
            PHONE_NUMBER_ID,
            json!({"messages": thousand})
        ))
        .await
        .unwrap()
        .len(),
        1_000
    );

    let long_text = "x".repeat(MAX_TEXT_CHARS + 1);
    let wrong = |message: Value| notification(PHONE_NUMBER_ID, json!({"messages": [message]}));
    let mut no_id = msg("x", "text", json!({"body": "hi"}));
    no_id.as_object_mut().unwrap().remove("id");
    let mut bad_time = msg("x", "text", json!({"body": "hi"}));
    bad_time["timestamp"] = json!("yesterday");
    let mut negative_time = msg("x", "text", json!({"body": "hi"}));
    negative_time["timestamp"] = json!(-5);
    let mut control_id = msg("x", "text", json!({"body": "hi"}));
    control_id["id"] = json!("wamid.\u{0}");
    let prefix = "entry[0].changes[0].value";
    for (body, field) in [
        (json!([]), "body".to_owned()),
        (json!({"entry": []}), "object".to_owned()),
        (
            json!({"object": "whatsapp_business_account", "entry": "all"}),
            "entry".to_owned(),
        ),
        (
            json!({"object": "whatsapp_business_account", "entry": [7]}),
            "entry[0]".to_owned(),
        ),
        (
            json!({"object": "whatsapp_business_account", "entry": [{"changes": {}}]}),
            "entry[0].changes".to_owned(),
        ),
        (
            json!({"object": "whatsapp_business_account",
                   "entry": [{"changes": [{"value": {}}]}]}),
            "entry[0].changes[0].field".to_owned(),
        ),
        (
            json!({"object": "whatsapp_business_account",
                   "entry": [{"changes": [{"field": "messages", "value": []}]}]}),
            "entry[0].changes[0].value".to_owned(),
        ),
        (
            json!({"object": "whatsapp_business_account",
                   "entry": [{"changes": [{"field": "messages", "value": {"messages": []}}]}]}),
            format!("{prefix}.metadata.phone_number_id"),
        ),
        (
            notification(PHONE_NUMBER_ID, json!({"messages": "hi"})),
            format!("{prefix}.messages"),
        ),
        (
            notification(PHONE_NUMBER_ID, json!({"contacts": [{"wa_id": 5}]})),
            format!("{prefix}.contacts[0]"),
        ),
        (wrong(no_id), format!("{prefix}.messages[0]")),
        (wrong(bad_time), format!("{prefix}.messages[0]")),
        (wrong(negative_time), format!("{prefix}.messages[0]")),
        (wrong(control_id), format!("{prefix}.messages[0].id")),
        (
            wrong(msg("x", "text", json!({"body": 42}))),
            format!("{prefix}.messages[0]"),
        ),
        (
            wrong(msg("x", "text", json!({"body": long_text}))),
            format!("{prefix}.messages[0].text.body"),
        ),
        (
            wrong(msg(
                "x",
                "image",
                json!({"id": "", "mime_type": "image/png"}),
            )),
            format!("{prefix}.messages[0].image.id"),
        ),
        (
            wrong(msg(
                "x",
                "location",
                json!({"latitude": 91.0, "longitude": 0.0}),
            )),
            format!("{prefix}.messages[0].location"),
        ),
        (
            notification(
                PHONE_NUMBER_ID,
                json!({"statuses": [{"id": "w", "status": "sent"}]}),
            ),
            format!("{prefix}.statuses[0]"),
        ),
    ] {
        let (got, reason) = refused(&body).await;
        assert_eq!(got, field, "{body}");
        assert!(
            !reason.contains("yesterday") && !reason.contains("hi\""),
            "{reason}"
        );
    }
}

#[test]
fn keywords_and_replies_come_from_the_config() {
    let channel = channel_with(json!({
        "unknown_sender_reply": "  Hi! Please start a new chat on our website.  ",
        "keywords": {"opt_out": ["ARRET"], "help_text": "Write to us anytime."}
    }));
    assert_eq!(channel.keyword("arret"), Some((Keyword::OptOut, None)));
    assert_eq!(channel.keyword("STOP"), None);
    assert_eq!(channel.keyword("start"), Some((Keyword::OptIn, None)));
    assert_eq!(
        channel.keyword("help!"),
        Some((Keyword::Help, Some("Write to us anytime.".into())))
    );
    assert_eq!(channel.keyword("I need help"), None);
    assert_eq!(
        channel.unknown_sender_reply().as_deref(),
        Some("Hi! Please start a new chat on our website.")
    );
    assert_eq!(self::channel().unknown_sender_reply(), None);
}

#[test]
fn the_handshake_answers_with_the_challenge() {
    let query = |token: &str| {
        vec![
            ("hub.mode".to_owned(), "subscribe".to_owned()),
            ("hub.challenge".to_owned(), "1158201444".to_owned()),
            ("hub.verify_token".to_owned(), token.to_owned()),
        ]
    };
    assert_eq!(
        channel().handshake(&query("meatyhamhock")).unwrap(),
        "1158201444"
    );
    let err = channel().handshake(&query("meatyham")).unwrap_err();
    assert_eq!(err.code(), "invalid_signature");
    assert!(!err.to_string().contains("meaty"), "{err}");
}

#[test]
fn reply_targets_are_phone_numbers() {
    let conversation = channel()
        .normalize(EscalationInput {
            subject: None,
            customer: crate::Customer {
                name: None,
                email: None,
                phone: Some("+15551234567".into()),
            },
            language: "en".into(),
            transcript: Some(vec![crate::Turn {
                role: crate::Role::Customer,
                text: "hi".into(),
                at: at(SENT_AT),
                offset_ms: None,
            }]),
            ..EscalationInput::default()
        })
        .unwrap();
    assert_eq!(
        channel().reply_target(None, &conversation).unwrap(),
        Some(ReplyTarget::Phone {
            number: "+15551234567".into()
        })
    );
    let err = channel()
        .reply_target(Some(&json!({"phone": "15551234567"})), &conversation)
        .unwrap_err();
    assert_eq!(err.field().as_deref(), Some("reply_to.phone"));
}

/// The clock the window is judged by in these tests.
fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

fn outbound(last: Option<DateTime<Utc>>, text: &str) -> OutboundMessage {
    OutboundMessage {
        id: "dlv_1".into(),
        session_id: "sess-1".into(),
        kind: OutboundKind::AgentMessage,
        text: text.into(),
        sender_name: Some("Dana".into()),
        at: noon(),
        email: None,
        customer_last_message_at: last,
        status_callback: None,
    }
}

fn phone() -> ReplyTarget {
    ReplyTarget::Phone {
        number: "+15551234567".into(),
    }
}

#[tokio::test]
async fn the_window_is_judged_by_the_injected_clock() {
    let channel = channel().with_clock(noon);
    // Closed (25 hours, or never written) and no template: refused before any request.
    for last in [Some(noon() - chrono::Duration::hours(25)), None] {
        let err = channel
            .deliver(&phone(), &outbound(last, "Your card is fixed."))
            .await
            .unwrap_err();
        let DeliveryError::WindowClosed { message } = err else {
            panic!("window should be closed for {last:?}: {err:?}");
        };
        assert!(message.contains("channels.whatsapp.template"), "{message}");
        assert!(!message.contains("5551234567"), "{message}");
    }
    // Open (23 hours): it tries to send, and nothing listens on the discard port.
    let err = channel
        .deliver(
            &phone(),
            &outbound(
                Some(noon() - chrono::Duration::hours(23)),
                "Your card is fixed.",
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Retryable { sent: false, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_targets_and_texts_are_refused_without_sending() {
    let channel = channel().with_clock(noon);
    let open = Some(noon());
    for (target, text) in [
        (ReplyTarget::Stream, "hi"),
        (
            ReplyTarget::Phone {
                number: "15551234567".into(),
            },
            "hi",
        ),
        (phone(), " \n "),
        (phone(), &"x".repeat(WHATSAPP_MAX_CHARS + 1)),
    ] {
        let err = channel
            .deliver(&target, &outbound(open, text))
            .await
            .unwrap_err();
        assert!(matches!(err, DeliveryError::Permanent { .. }), "{err:?}");
    }
    let receive_only = WhatsappConfig::default().build("whatsapp").unwrap();
    assert_eq!(
        receive_only
            .deliver(&phone(), &outbound(open, "hi"))
            .await
            .unwrap_err(),
        DeliveryError::Unsupported {
            channel: "whatsapp".into()
        }
    );
}

#[test]
fn capabilities_follow_the_configuration() {
    let caps = channel().capabilities();
    assert!(caps.delivers && caps.inbound && caps.read_receipts);
    assert_eq!(caps.max_message_chars, Some(4_096));
    assert_eq!(caps.split, SplitRule::Words);
    assert_eq!(caps.reply_window, Some(WHATSAPP_REPLY_WINDOW));
    assert!(!caps.provider_dedupe);
    let send_only = serde_json::from_value::<WhatsappConfig>(json!({
        "phone_number_id": PHONE_NUMBER_ID, "access_token": "EAAG-token"
    }))
    .unwrap()
    .build("whatsapp")
    .unwrap()
    .capabilities();
    assert!(send_only.delivers && !send_only.inbound && !send_only.read_receipts);
    assert_eq!(channel().preferred_route(), Route::Messaging);
}
