//! SMS end to end with the real adapter: the gateway sends through the Twilio emulator
//! (`channel-emulator`, its `api_url`), which posts the customer's texts and its status
//! callbacks back to the gateway signed like Twilio; live sessions run in the Salesforce
//! emulator's MIAW, where the test plays the rep.

use std::collections::BTreeSet;

use channel_emulator::Fault;
use channel_emulator::twilio::signature;
use handoff_tests::console::texts_by;
use handoff_tests::phone::{AUTH_TOKEN, OUR_NUMBER, PhoneApp, eventually, spawn_phone_app};
use handoff_tests::{Db, both_databases};
use serde_json::{Value, json};

/// The customer's phone as the bot wrote it, and in E.164.
const CUSTOMER_AS_WRITTEN: &str = "+1 (415) 555-0100";
const CUSTOMER: &str = "+14155550100";

fn escalation(session_id: &str, phone: &str) -> Value {
    json!({
        "session_id": session_id,
        "channel": "sms",
        "customer": {"name": "Ana Ruiz", "phone": phone},
        "language": "en",
        "priority": "high",
        "summary": "Customer's replacement router has not arrived after ten days.",
        "transcript": [
            {"role": "customer", "text": "My replacement router still has not arrived.", "at": "2026-11-22T10:00:00Z"},
            {"role": "bot", "text": "The tracking shows it stuck at the depot since Monday.", "at": "2026-11-22T10:01:00Z"},
        ],
    })
}

/// Escalates and waits for the conversation to wait for a rep; its id.
async fn live_escalation(s: &PhoneApp, body: &Value) -> String {
    let (status, answer) = s.app.post_escalation(body).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["route"], "messaging", "{answer}");
    let conversation = answer["salesforce_miaw_session_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    s.rep
        .wait_for(&conversation, "the conversation waiting", |c| {
            c["status"] == "waiting" && texts_by(c, "EndUser").len() >= 2
        })
        .await;
    conversation
}

/// The EndUser texts of the conversation now.
async fn customer_texts(s: &PhoneApp, conversation: &str) -> Vec<String> {
    let (status, c) = s.rep.conversation(conversation).await;
    assert_eq!(status, 200, "{c}");
    texts_by(&c, "EndUser")
}

/// A customer's text through the emulator (signed like Twilio); the gateway's answer must be
/// Twilio's empty TwiML.
async fn text_from(s: &PhoneApp, from: &str, body: &str) -> String {
    let r = s
        .twilio
        .inbound(from, OUR_NUMBER, body, &[])
        .await
        .expect("the emulator posts the message");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type.as_deref(), Some("text/xml"));
    assert_eq!(
        r.body,
        r#"<?xml version="1.0" encoding="UTF-8"?><Response></Response>"#
    );
    r.sid
}

// Done when: an SMS escalation opens a live conversation with the routing attributes and the
// transcript; the rep accepts and writes three replies; the Twilio emulator receives every
// message of the session (the gateway's notices and the replies) exactly once, in order, and
// its status callbacks move each delivery to `delivered`; the customer's signed text reaches
// the rep; the rep closes and the session is closed.
both_databases!(an_sms_customer_reaches_the_rep_and_back, |db: Db| async move {
    let s = spawn_phone_app(db, |_| {}, |_| {}).await;
    let conversation = live_escalation(&s, &escalation("sms-1", CUSTOMER_AS_WRITTEN)).await;
    let (_, conv) = s.rep.conversation(&conversation).await;
    let attrs = &conv["routing_attributes"];
    assert_eq!(attrs["Origin"], "sms", "{attrs}");
    assert_eq!(attrs["OpencxSessionId"], "sms-1");
    assert_eq!(attrs["Priority"], "High");
    let opening = texts_by(&conv, "EndUser").join("\n");
    for part in [
        "replacement router has not arrived after ten days",
        "My replacement router still has not arrived.",
        "stuck at the depot since Monday",
    ] {
        assert!(opening.contains(part), "{part} in {opening}");
    }

    let (status, body) = s.rep.accept(&conversation, "Jane Rep").await;
    assert_eq!(status, 200, "{body}");
    let replies = [
        "Hi Ana, this is Jane.",
        "I found your router: it is on the truck today.",
        "You will have it by 6pm.",
    ];
    for text in replies {
        let (status, body) = s.rep.say(&conversation, text).await;
        assert_eq!(status, 202, "{body}");
    }
    for text in replies {
        s.wait_body(CUSTOMER, text).await;
    }

    // Twilio's status callbacks (signed for the URL with ?delivery=…) reach every delivery.
    let view = s
        .app
        .wait_session("sms-1", "every delivery delivered", |v| {
            v["deliveries"].as_array().is_some_and(|d| {
                d.len() >= 6 && d.iter().all(|d| d["provider_status"] == "delivered")
            })
        })
        .await;
    for d in view["deliveries"].as_array().unwrap() {
        assert_eq!(d["state"], "sent", "{d}");
        assert_eq!(d["channel"], "sms", "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
        assert!(d["provider_id"].as_str().unwrap().starts_with("SM"), "{d}");
    }
    let texts = s.assert_sent_once_in_order("sms-1", CUSTOMER).await;
    let reply_positions: Vec<usize> = replies
        .iter()
        .map(|r| texts.iter().position(|t| t == r).expect("each reply sent"))
        .collect();
    assert!(reply_positions.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
    let kinds: Vec<String> = s
        .app
        .deliveries("sms-1")
        .await
        .iter()
        .map(|d| d.kind.clone())
        .collect();
    assert!(kinds.contains(&"agent.joined".to_string()), "{kinds:?}");
    assert_eq!(
        s.sent_to(CUSTOMER).len(),
        texts.len(),
        "the emulator got nothing but the session's messages"
    );

    // The customer answers by SMS: the rep sees it once.
    let sid = text_from(&s, CUSTOMER, "Great, thank you!").await;
    s.rep
        .wait_for(&conversation, "the customer's answer", |c| {
            texts_by(c, "EndUser").iter().any(|t| t == "Great, thank you!")
        })
        .await;
    let to_rep = s.app.inbound_list("to_rep").await;
    assert_eq!(to_rep.len(), 1, "{to_rep:?}");
    assert_eq!(to_rep[0]["id"], format!("sms:{sid}"));
    assert_eq!(to_rep[0]["session_id"], "sms-1");
    assert_eq!(to_rep[0]["from"], CUSTOMER);
    assert_eq!(to_rep[0]["to"], OUR_NUMBER);

    let (status, body) = s.rep.close(&conversation).await;
    assert_eq!(status, 200, "{body}");
    s.app
        .wait_session("sms-1", "closed", |v| v["status"] == "closed")
        .await;
    let rows = s.app.settled_deliveries("sms-1", 7).await;
    assert!(
        rows.iter().any(|d| d.kind == "session.closed"),
        "the customer is told the chat ended"
    );
    s.twilio.settled().await;
    let texts = s.assert_sent_once_in_order("sms-1", CUSTOMER).await;
    assert_eq!(s.sent_to(CUSTOMER).len(), texts.len());
    let status_callbacks: Vec<_> = s
        .twilio
        .callbacks()
        .into_iter()
        .filter(|c| c.kind == channel_emulator::CallbackKind::Status)
        .collect();
    assert_eq!(status_callbacks.len(), 2 * texts.len(), "sent, delivered");
    assert!(
        status_callbacks.iter().all(|c| c.response_status == Some(200)),
        "{status_callbacks:?}"
    );
    let (_, conv) = s.rep.conversation(&conversation).await;
    assert_eq!(
        texts_by(&conv, "EndUser")
            .iter()
            .filter(|t| *t == "Great, thank you!")
            .count(),
        1
    );
});
