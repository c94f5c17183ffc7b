//! Voice escalations end to end with their SMS follow-up: a call's Amazon Transcribe output
//! opens a live conversation (Origin `voice`) holding the call's transcript; the rep's answers
//! go to the caller by SMS through the real SMS adapter and the Twilio emulator, once each and
//! in order; the caller's SMS answer reaches the rep in the voice session's conversation. With
//! `follow_up = "none"` nothing is sent, and the timeline says so.

use handoff_tests::console::texts_by;
use handoff_tests::phone::{OUR_NUMBER, PhoneApp, eventually, spawn_phone_app};
use handoff_tests::{Db, both_databases};
use serde_json::{Value, json};

/// The caller's number as the voice platform wrote it, and in E.164.
const CALLER_AS_WRITTEN: &str = "+1 415-555-0142";
const CALLER: &str = "+14155550142";

/// A call transcribed by Amazon Transcribe with speaker partitioning (the channels crate's
/// fixture): the bot is `spk_0`, the caller `spk_1`.
fn call(session_id: &str) -> Value {
    let transcript: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../channels/tests/fixtures/voice/transcribe_speakers.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture"),
    )
    .expect("JSON");
    json!({
        "session_id": session_id,
        "channel": "voice",
        "customer": {"name": "Dana Caller", "phone": CALLER_AS_WRITTEN},
        "summary": "Card declined twice; the caller wants a person.",
        "voice_mode": "logged",
        "voice_transcript": {
            "format": "aws_transcribe",
            "content": transcript,
            "started_at": "2026-11-22T09:00:00Z",
        },
        "speakers": {"spk_0": "bot", "spk_1": "customer"},
    })
}

async fn follow_up(s: &PhoneApp, session_id: &str) -> Value {
    let (status, events) = s
        .app
        .get(
            &format!("/v1/sessions/{session_id}/events"),
            Some(&s.app.read_token),
        )
        .await;
    assert_eq!(status, 200, "{events}");
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "voice.follow_up")
        .cloned()
        .unwrap_or_else(|| panic!("no voice.follow_up: {events}"))
}

// Done when: a voice escalation with a Transcribe transcript and the caller's phone opens a
// live conversation (Origin voice) with the call's turns; the rep's three answers arrive by SMS
// at the Twilio emulator once each, in order, and are reported delivered; the caller answers by
// SMS and the rep sees it in the voice session's conversation; the rep closes.
both_databases!(
    a_callers_follow_up_goes_by_sms_and_back,
    |db: Db| async move {
        let s = spawn_phone_app(db, |_| {}, |_| {}).await;
        let conversation = s.live_escalation(&call("call-1")).await;
        let (_, conv) = s.rep.conversation(&conversation).await;
        let attrs = &conv["routing_attributes"];
        assert_eq!(attrs["Origin"], "voice", "{attrs}");
        assert_eq!(attrs["OpencxSessionId"], "call-1");
        let opening = texts_by(&conv, "EndUser").join("\n");
        for part in [
            "Voice call (logged): the AI assistant ended the call; follow up in writing.",
            "[2026-11-22 09:00:03 UTC, call 00:03] Customer: My card was declined twice today.",
            "Bot: Thanks for calling Acme. How can I help?",
            "Customer: Okay, thanks.",
        ] {
            assert!(opening.contains(part), "{part} in {opening}");
        }
        let event = follow_up(&s, "call-1").await;
        assert_eq!(event["data"]["via"], "sms", "{event}");
        assert_eq!(event["data"]["mode"], "logged", "{event}");

        let (status, body) = s.rep.accept(&conversation, "Sam Rep").await;
        assert_eq!(status, 200, "{body}");
        let replies = [
            "Hi Dana, Sam here from Acme.",
            "The declines were a fraud hold; I lifted it.",
            "Please try the card again.",
        ];
        s.rep_says(&conversation, &replies).await;
        for text in replies {
            s.wait_body(CALLER, text).await;
        }
        let view = s
            .app
            .wait_session("call-1", "every delivery delivered", |v| {
                v["deliveries"].as_array().is_some_and(|d| {
                    d.len() >= 6 && d.iter().all(|d| d["provider_status"] == "delivered")
                })
            })
            .await;
        assert_eq!(view["channel"], "voice");
        for d in view["deliveries"].as_array().unwrap() {
            assert_eq!(
                (d["state"].as_str(), d["channel"].as_str()),
                (Some("sent"), Some("sms")),
                "{d}"
            );
        }
        let texts = s.assert_sent_once_in_order("call-1", CALLER).await;
        let at: Vec<usize> = replies
            .iter()
            .map(|r| texts.iter().position(|t| t == r).expect("each reply sent"))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{texts:?}");
        assert_eq!(s.sent_to(CALLER).len(), texts.len(), "nothing else sent");

        // The caller answers by SMS: the voice session's rep sees it.
        let sid = s.text_from(CALLER, "It worked, thank you!").await;
        s.rep
            .wait_for(&conversation, "the caller's answer", |c| {
                texts_by(c, "EndUser")
                    .iter()
                    .any(|t| t == "It worked, thank you!")
            })
            .await;
        let (_, m) = s
            .app
            .get(
                &format!("/v1/inbound-messages/sms:{sid}"),
                Some(&s.app.read_token),
            )
            .await;
        assert_eq!(
            (
                m["state"].as_str(),
                m["session_id"].as_str(),
                m["channel"].as_str()
            ),
            (Some("to_rep"), Some("call-1"), Some("sms")),
            "{m}"
        );
        assert_eq!(m["to"], OUR_NUMBER);

        let (status, body) = s.rep.close(&conversation).await;
        assert_eq!(status, 200, "{body}");
        s.app
            .wait_session("call-1", "closed", |v| v["status"] == "closed")
            .await;
        let rows = s.app.settled_deliveries("call-1", 7).await;
        assert!(rows.iter().any(|d| d.kind == "session.closed"), "{rows:?}");
        s.twilio.settled().await;
        let texts = s.assert_sent_once_in_order("call-1", CALLER).await;
        assert_eq!(s.sent_to(CALLER).len(), texts.len());
    }
);

// `follow_up = "none"`: the timeline says the answers stay in Salesforce, and the rep's reply
// (seen by the gateway: `rep.message`) sends nothing by SMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_follow_up_nothing_is_sent_by_sms() {
    let s = spawn_phone_app(
        Db::Sqlite,
        |_| {},
        |config| {
            config.channels.insert(
                "voice".into(),
                serde_json::from_value(json!({"type": "voice", "follow_up": "none"}))
                    .expect("voice table"),
            );
        },
    )
    .await;
    let conversation = s.live_escalation(&call("call-none")).await;
    let event = follow_up(&s, "call-none").await;
    assert_eq!(event["data"]["via"], "none", "{event}");
    assert!(
        event["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("follow-ups are off"),
        "{event}"
    );
    let (status, body) = s.rep.accept(&conversation, "Sam Rep").await;
    assert_eq!(status, 200, "{body}");
    s.rep_says(&conversation, &["I lifted the hold on your card."])
        .await;
    eventually("the rep's message seen by the gateway", || async {
        s.app
            .event_kinds("call-none")
            .await
            .contains(&"rep.message".to_string())
            .then_some(())
    })
    .await;
    assert!(s.app.deliveries("call-none").await.is_empty());
    assert!(s.twilio.sent().is_empty(), "{:?}", s.twilio.sent());
}
