//! Voice escalations end to end: each transcript format a voice platform produces, posted as
//! `channel: "voice"` to the real gateway, becomes the same customer/bot turns (stored with the
//! session, in order, with their place in the call) and the same Case comments; the hand-over
//! mode reaches the Case description; the timeline says how the rep's answers reach the caller.
//! The fixtures (one call in every shape) are the channels crate's, written for these tests.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use handoff_tests::console::{RepConsole, texts_by};
use handoff_tests::{Db, TestApp, both_databases, spawn_app_with, spawn_live_app};
use serde_json::{Value, json};

use crate::support::{reassemble, unique};

const WAIT: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../channels/tests/fixtures/voice/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("voice fixture")
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).expect("JSON fixture")
}

/// The call every fixture holds: role, offset in ms, text.
const CALL: [(&str, u64, &str); 4] = [
    ("bot", 520, "Thanks for calling Acme. How can I help?"),
    ("customer", 3_840, "My card was declined twice today."),
    ("bot", 6_510, "I'm sorry about that. Let me get a person."),
    ("customer", 9_430, "Okay, thanks."),
];

fn started_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()
}

/// The transcript as the Case comments must hold it.
fn rendered() -> String {
    CALL.iter()
        .map(|(role, offset, text)| {
            let at = started_at() + chrono::Duration::milliseconds(*offset as i64);
            let role = if *role == "bot" { "Bot" } else { "Customer" };
            format!(
                "[{}, call 00:{:02}] {role}: {text}\n\n",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                offset / 1000
            )
        })
        .collect()
}

fn voice_body(session_id: &str, format: &str, content: Value, speakers: Option<Value>) -> Value {
    let mut body = json!({
        "session_id": session_id,
        "channel": "voice",
        "customer": {"name": "Dana Caller", "phone": "+14155550142"},
        "summary": "Card declined twice; the caller wants a person.",
        "voice_transcript": {
            "format": format,
            "content": content,
            "started_at": started_at().to_rfc3339(),
        },
    });
    if let Some(speakers) = speakers {
        body["speakers"] = speakers;
    }
    body
}

/// The conversation stored with the session, as the Case job reads it.
async fn stored_conversation(app: &TestApp, session_id: &str) -> Value {
    let session = app
        .gateway
        .state
        .store
        .session(session_id)
        .await
        .unwrap()
        .expect("session stored");
    let payload: Value = serde_json::from_str(&session.payload).unwrap();
    payload["conversation"].clone()
}

async fn events(app: &TestApp, session_id: &str) -> Vec<Value> {
    let (status, events) = app
        .get(
            &format!("/v1/sessions/{session_id}/events"),
            Some(&app.read_token),
        )
        .await;
    assert_eq!(status, 200, "{events}");
    events["events"].as_array().expect("events").clone()
}

both_databases!(
    every_voice_format_becomes_the_same_case,
    |db: Db| async move {
        // Configured defaults map AssemblyAI's letters; the other requests bring their own map.
        let app = spawn_app_with(db, |config| {
            config.channels.insert(
                "voice".into(),
                serde_json::from_value(json!({
                    "type": "voice",
                    "speakers": {"A": "bot", "B": "customer"},
                }))
                .unwrap(),
            );
        })
        .await;
        let cases = [
            (
                "aws_transcribe",
                json_fixture("transcribe_speakers.json"),
                Some(json!({"spk_0": "bot", "spk_1": "customer"})),
                None,
            ),
            (
                "aws_transcribe",
                json_fixture("transcribe_channels.json"),
                Some(json!({"ch_0": "bot", "ch_1": "customer"})),
                Some("logged"),
            ),
            // Contact Lens participant roles map themselves.
            (
                "aws_transcribe",
                json_fixture("contact_lens.json"),
                None,
                None,
            ),
            (
                "webvtt",
                Value::String(fixture("captions.vtt")),
                Some(json!({"Acme Assistant": "bot", "Caller": "customer"})),
                Some("live_transfer"),
            ),
            (
                "deepgram",
                json_fixture("deepgram_utterances.json"),
                Some(json!({"spk_0": "bot", "spk_1": "customer"})),
                None,
            ),
            ("assemblyai", json_fixture("assemblyai.json"), None, None),
        ];
        let mut sessions = Vec::new();
        for (format, content, speakers, mode) in cases {
            let session_id = unique(&format!("voice-{format}"));
            let mut body = voice_body(&session_id, format, content, speakers);
            if let Some(mode) = mode {
                body["voice_mode"] = json!(mode);
            }
            let (status, accepted) = app.post_escalation(&body).await;
            assert_eq!(status, 202, "{format}: {accepted}");
            assert_eq!(accepted["channel"], "voice");
            sessions.push((session_id, format, mode.unwrap_or("logged")));
        }

        for (session_id, format, mode) in &sessions {
            // The stored turns: roles, order, times from the call's start, offsets kept.
            let conversation = stored_conversation(&app, session_id).await;
            let turns = conversation["turns"].as_array().unwrap();
            let got: Vec<(String, u64, String, String)> = turns
                .iter()
                .map(|t| {
                    (
                        t["role"].as_str().unwrap().to_owned(),
                        t["offset_ms"].as_u64().unwrap(),
                        t["text"].as_str().unwrap().to_owned(),
                        t["at"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            let want: Vec<(String, u64, String, String)> = CALL
                .iter()
                .map(|(role, offset, text)| {
                    let at = started_at() + chrono::Duration::milliseconds(*offset as i64);
                    (
                        (*role).to_owned(),
                        *offset,
                        (*text).to_owned(),
                        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    )
                })
                .collect();
            assert_eq!(got, want, "{format}");
            assert_eq!(
                conversation["voice"],
                json!({"mode": mode, "format": format}),
                "{format}"
            );

            // The Case: the transcript comments and the hand-over in the description.
            let session = app
                .driver()
                .wait_escalated(session_id, WAIT)
                .await
                .expect("Case created");
            let case_id = session.salesforce_case_id.expect("case id");
            let bodies = app.comment_bodies(&case_id).await;
            assert_eq!(reassemble(&bodies), rendered(), "{format}");
            let case = app
                .soql(&format!(
                    "SELECT Description, Origin FROM Case WHERE Id = '{case_id}'"
                ))
                .await;
            let description = case[0]["Description"].as_str().unwrap();
            let note = if *mode == "live_transfer" {
                "Voice call (live transfer): the caller is being connected to you by phone."
            } else {
                "Voice call (logged): the AI assistant ended the call; follow up in writing."
            };
            assert_eq!(
                description,
                format!("{note}\n\nCard declined twice; the caller wants a person."),
                "{format}"
            );
            assert_eq!(case[0]["Origin"], "Phone");

            // SMS has no settings here, so the answers stay in Salesforce, and the timeline says so.
            let events = events(&app, session_id).await;
            let follow_up = events
                .iter()
                .find(|e| e["kind"] == "voice.follow_up")
                .unwrap_or_else(|| panic!("{format}: no voice.follow_up in {events:?}"));
            assert_eq!(follow_up["data"]["via"], "none", "{follow_up}");
            assert_eq!(follow_up["data"]["mode"], *mode);
            assert!(
                follow_up["data"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("not configured to deliver"),
                "{follow_up}"
            );
        }
    }
);

both_databases!(
    voice_escalations_are_refused_by_field_and_time_from_now_without_a_start,
    |db: Db| async move {
        let app = spawn_app_with(db, |_| {}).await;
        let deepgram = || json_fixture("deepgram_utterances.json");
        let cases = [
            // A speaker nobody maps is never guessed.
            (
                voice_body(
                    &unique("v"),
                    "deepgram",
                    deepgram(),
                    Some(json!({"spk_0": "bot"})),
                ),
                "unmapped_speaker",
                "speakers",
            ),
            (
                voice_body(&unique("v"), "webvtt", deepgram(), None),
                "invalid_voice_transcript",
                "voice_transcript.content",
            ),
            (
                voice_body(&unique("v"), "srt", deepgram(), None),
                "invalid_voice_transcript",
                "voice_transcript.format",
            ),
            (
                {
                    let mut body = voice_body(
                        &unique("v"),
                        "deepgram",
                        deepgram(),
                        Some(json!({"spk_0": "bot", "spk_1": "customer"})),
                    );
                    body["channel"] = json!("sms");
                    body
                },
                "voice_transcript_not_supported",
                "voice_transcript",
            ),
            (
                {
                    let mut body = voice_body(&unique("v"), "assemblyai", json!({}), None);
                    body["voice_mode"] = json!("transferred");
                    body
                },
                "invalid_voice_mode",
                "voice_mode",
            ),
        ];
        for (body, code, field) in cases {
            let (status, problem) = app.post_escalation(&body).await;
            assert_eq!(status, 400, "{body}: {problem}");
            assert_eq!(problem["code"], code, "{problem}");
            assert_eq!(problem["field"], field, "{problem}");
            let session_id = body["session_id"].as_str().unwrap();
            let (status, _) = app
                .get(&format!("/v1/sessions/{session_id}"), Some(&app.read_token))
                .await;
            assert_eq!(status, 404, "{code} left a session");
        }
        // Over the content limit (under the body limit): refused naming the content.
        let huge = json!({"utterances": [], "padding": "x".repeat(6 * 1024 * 1024)});
        let (status, problem) = app
            .post_escalation(&voice_body(&unique("v"), "assemblyai", huge, None))
            .await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["code"], "voice_transcript_too_large");
        assert_eq!(problem["field"], "voice_transcript.content");

        // Without started_at the call ends when it is accepted: its last turn is "now".
        let session_id = unique("voice-now");
        let mut body = voice_body(
            &session_id,
            "aws_transcribe",
            json_fixture("contact_lens.json"),
            None,
        );
        body["voice_transcript"]
            .as_object_mut()
            .unwrap()
            .remove("started_at");
        let before = Utc::now();
        let (status, accepted) = app.post_escalation(&body).await;
        let after = Utc::now();
        assert_eq!(status, 202, "{accepted}");
        let conversation = stored_conversation(&app, &session_id).await;
        let last = conversation["turns"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        let at: DateTime<Utc> = last["at"].as_str().unwrap().parse().unwrap();
        // The last utterance starts 9.430 s into a call whose last word ends at 10.100 s.
        let lead = chrono::Duration::milliseconds(10_100 - 9_430);
        assert!(
            at >= before - lead && at <= after - lead,
            "{at} not in [{before}, {after}] - 670 ms"
        );
        // The same body again is the same session (the hash is of the request, not of "now").
        let (status, again) = app.post_escalation(&body).await;
        assert_eq!(status, 202, "{again}");
        assert_eq!(again["id"], accepted["id"]);
    }
);

both_databases!(
    a_live_transfer_opens_the_conversation_with_the_transcript,
    |db: Db| async move {
        // The deployment defines a Voice_Mode parameter, and the gateway is told to fill it.
        let mut emulator = sf_emulator::EmulatorConfig::default();
        emulator
            .miaw
            .custom_parameters
            .push(sf_emulator::config::CustomParameter {
                name: "Voice_Mode".into(),
                max_length: 40,
            });
        let app = spawn_live_app(db, emulator, |config| {
            config.miaw.channels = vec!["chat".into(), "voice".into()];
            config.miaw.attribute_names.voice_mode = "Voice_Mode".into();
        })
        .await;
        let session_id = unique("voice-live");
        let mut body = voice_body(
            &session_id,
            "webvtt",
            Value::String(fixture("captions.vtt")),
            Some(json!({"Acme Assistant": "bot", "Caller": "customer"})),
        );
        body["voice_mode"] = json!("live_transfer");
        let (status, accepted) = app.post_escalation(&body).await;
        assert_eq!(status, 202, "{accepted}");
        assert_eq!(accepted["route"], "messaging");
        let conversation_id = accepted["salesforce_miaw_session_id"]
            .as_str()
            .expect("conversation id")
            .to_owned();

        let rep = RepConsole::new(&app.emulator.url());
        let conversation = rep
            .wait_for(&conversation_id, "the opening messages", |c| {
                texts_by(c, "EndUser").len() >= 2
            })
            .await;
        let attributes = &conversation["routing_attributes"];
        assert_eq!(attributes["Voice_Mode"], "live_transfer", "{attributes}");
        assert_eq!(attributes["OpencxSessionId"], session_id.as_str());
        let opening = texts_by(&conversation, "EndUser");
        assert_eq!(
            opening[0],
            "Voice call (live transfer): the caller is being connected to you by phone.\n\n\
             Summary: Card declined twice; the caller wants a person."
        );
        assert_eq!(opening[1], format!("Transcript 1/1\n{}", rendered()));
        let kinds = app.event_kinds(&session_id).await;
        assert!(kinds.contains(&"voice.follow_up".to_owned()), "{kinds:?}");
    }
);
