//! The voice channel through its public API: each format's fixture (written for these tests,
//! one call in every shape) becomes the same turns; speakers are mapped, never guessed; the
//! times come from the call's start; hostile content is refused or read in bounded time.

use std::collections::BTreeMap;

use channels::{
    ChannelConfig, ChannelKind, Conversation, Customer, EscalationInput, Role, Turn, VoiceChannel,
    VoiceFormat, VoiceMode, VoiceTranscript,
};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/voice/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 9, 30, 0).unwrap()
}

fn speakers(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn voice_input(format: VoiceFormat, content: Value) -> EscalationInput {
    EscalationInput {
        customer: Customer {
            name: Some("Dana".into()),
            email: None,
            phone: Some("+14155550100".into()),
        },
        voice_transcript: Some(VoiceTranscript {
            format,
            content,
            started_at: None,
        }),
        ..EscalationInput::default()
    }
}

fn channel(config: Value) -> VoiceChannel {
    let ChannelConfig::Voice(voice) = serde_json::from_value::<ChannelConfig>(config).unwrap()
    else {
        panic!("not a voice table");
    };
    voice.build("voice").unwrap()
}

fn default_channel() -> VoiceChannel {
    channel(json!({"type": "voice"}))
}

/// Role, offset and text of each turn.
fn summary(conversation: &Conversation) -> Vec<(Role, u64, &str)> {
    conversation
        .turns
        .iter()
        .map(|t| (t.role, t.offset_ms.unwrap(), t.text.as_str()))
        .collect()
}

const CALL: [(Role, u64, &str); 4] = [
    (Role::Bot, 520, "Thanks for calling Acme. How can I help?"),
    (Role::Customer, 3_840, "My card was declined twice today."),
    (
        Role::Bot,
        6_510,
        "I'm sorry about that. Let me get a person.",
    ),
    (Role::Customer, 9_430, "Okay, thanks."),
];

#[test]
fn every_format_reads_the_same_call() {
    let cases = [
        (
            VoiceFormat::AwsTranscribe,
            json_fixture("transcribe_speakers.json"),
            speakers(&[("spk_0", "bot"), ("spk_1", "customer")]),
        ),
        (
            VoiceFormat::AwsTranscribe,
            json_fixture("transcribe_channels.json"),
            speakers(&[("ch_0", "bot"), ("ch_1", "customer")]),
        ),
        // Contact Lens participant roles map themselves.
        (
            VoiceFormat::AwsTranscribe,
            json_fixture("contact_lens.json"),
            None,
        ),
        (
            VoiceFormat::Webvtt,
            Value::String(fixture("captions.vtt")),
            speakers(&[("Acme Assistant", "bot"), ("Caller", "customer")]),
        ),
        (
            VoiceFormat::Deepgram,
            json_fixture("deepgram_utterances.json"),
            speakers(&[("spk_0", "bot"), ("spk_1", "customer")]),
        ),
        (
            VoiceFormat::Deepgram,
            json_fixture("deepgram_words.json"),
            speakers(&[("spk_0", "bot"), ("spk_1", "customer")]),
        ),
        (
            VoiceFormat::Assemblyai,
            json_fixture("assemblyai.json"),
            speakers(&[("A", "bot"), ("B", "customer")]),
        ),
    ];
    for (format, content, speakers) in cases {
        let input = EscalationInput {
            speakers,
            ..voice_input(format, content)
        };
        let conversation = default_channel().normalize_at(input, now()).unwrap();
        assert_eq!(summary(&conversation), CALL, "{format}");
        let voice = conversation.voice.unwrap();
        assert_eq!(voice.mode, VoiceMode::Logged);
        assert_eq!(voice.format, Some(format));
        assert_eq!(conversation.customer.phone.as_deref(), Some("+14155550100"));
    }
}

#[test]
fn without_a_start_time_the_last_utterance_ends_now() {
    let conversation = default_channel()
        .normalize_at(
            voice_input(
                VoiceFormat::AwsTranscribe,
                json_fixture("contact_lens.json"),
            ),
            now(),
        )
        .unwrap();
    // The last utterance ends at 10.100 s: the call started 10.1 s before now.
    let start = now() - chrono::Duration::milliseconds(10_100);
    let times: Vec<DateTime<Utc>> = conversation.turns.iter().map(|t| t.at).collect();
    assert_eq!(
        times,
        CALL.map(|(_, offset, _)| start + chrono::Duration::milliseconds(offset as i64))
    );
    assert!(conversation.turns.last().unwrap().at <= now());

    let started_at = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
    let mut input = voice_input(
        VoiceFormat::AwsTranscribe,
        json_fixture("contact_lens.json"),
    );
    input.voice_transcript.as_mut().unwrap().started_at = Some(started_at);
    input.voice_mode = Some(VoiceMode::LiveTransfer);
    let conversation = default_channel().normalize_at(input, now()).unwrap();
    assert_eq!(
        conversation.turns[1].at,
        started_at + chrono::Duration::milliseconds(3_840)
    );
    assert_eq!(conversation.voice.unwrap().mode, VoiceMode::LiveTransfer);
}

#[test]
fn the_request_overrides_configured_speakers_and_unmapped_ones_are_refused() {
    let configured = channel(json!({
        "type": "voice",
        "speakers": {"spk_0": "customer", "spk_1": "bot", "AGENT": "agent"}
    }));
    let deepgram = || {
        voice_input(
            VoiceFormat::Deepgram,
            json_fixture("deepgram_utterances.json"),
        )
    };
    // Configuration alone.
    let conversation = configured.normalize_at(deepgram(), now()).unwrap();
    assert_eq!(conversation.turns[0].role, Role::Customer);
    // The request wins per label.
    let conversation = configured
        .normalize_at(
            EscalationInput {
                speakers: speakers(&[("spk_0", "bot")]),
                ..deepgram()
            },
            now(),
        )
        .unwrap();
    let roles: Vec<Role> = conversation.turns.iter().map(|t| t.role).collect();
    assert_eq!(roles, [Role::Bot, Role::Bot, Role::Bot, Role::Bot]);
    // Configuration wins over a format's own defaults (a human agent was on the call).
    let conversation = configured
        .normalize_at(
            voice_input(
                VoiceFormat::AwsTranscribe,
                json_fixture("contact_lens.json"),
            ),
            now(),
        )
        .unwrap();
    assert_eq!(conversation.turns[0].role, Role::Agent);
    assert_eq!(conversation.turns[1].role, Role::Customer);

    // Nothing maps spk_1: refused, naming the label, never guessed.
    let err = default_channel()
        .normalize_at(
            EscalationInput {
                speakers: speakers(&[("spk_0", "bot")]),
                ..deepgram()
            },
            now(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "unmapped_speaker");
    assert_eq!(err.field().as_deref(), Some("speakers"));
    assert!(err.to_string().contains("`spk_1`"), "{err}");

    let err = default_channel()
        .normalize_at(
            EscalationInput {
                speakers: speakers(&[("spk_0", "bot"), ("spk_1", "caller")]),
                ..deepgram()
            },
            now(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "invalid_speakers");
    assert_eq!(err.field().as_deref(), Some("speakers.spk_1"));
}

#[test]
fn input_errors_have_codes_and_fields() {
    let turn = Turn {
        role: Role::Customer,
        text: "hi".into(),
        at: now(),
        offset_ms: None,
    };
    let vtt = || voice_input(VoiceFormat::Webvtt, Value::String(fixture("captions.vtt")));
    let cases: Vec<(EscalationInput, &str, &str)> = vec![
        (
            EscalationInput {
                transcript: Some(vec![turn.clone()]),
                ..vtt()
            },
            "transcript_and_voice_transcript",
            "voice_transcript",
        ),
        (
            EscalationInput {
                transcript: Some(vec![turn.clone()]),
                speakers: speakers(&[("A", "bot")]),
                ..EscalationInput::default()
            },
            "invalid_speakers",
            "speakers",
        ),
        (
            EscalationInput::default(),
            "missing_transcript",
            "transcript",
        ),
        (
            voice_input(VoiceFormat::Webvtt, json!({"cues": []})),
            "invalid_voice_transcript",
            "voice_transcript.content",
        ),
        (
            voice_input(
                VoiceFormat::Deepgram,
                Value::String(fixture("deepgram_words.json")),
            ),
            "invalid_voice_transcript",
            "voice_transcript.content",
        ),
        (
            voice_input(VoiceFormat::Assemblyai, json!({"utterances": []})),
            "invalid_voice_transcript",
            "voice_transcript.content",
        ),
        (
            EscalationInput {
                raw_email: Some(vec![]),
                ..vtt()
            },
            "raw_email_not_supported",
            "raw_email",
        ),
    ];
    for (input, code, field) in cases {
        let err = default_channel().normalize_at(input, now()).unwrap_err();
        assert_eq!(
            (err.code(), err.field().as_deref()),
            (code, Some(field)),
            "{err}"
        );
    }
    // A JSON transcript is still fine on voice, with its mode recorded.
    let conversation = default_channel()
        .normalize_at(
            EscalationInput {
                transcript: Some(vec![turn]),
                voice_mode: Some(VoiceMode::LiveTransfer),
                ..EscalationInput::default()
            },
            now(),
        )
        .unwrap();
    assert_eq!(conversation.turns[0].offset_ms, None);
    let voice = conversation.voice.unwrap();
    assert_eq!((voice.mode, voice.format), (VoiceMode::LiveTransfer, None));
}

#[test]
fn other_channels_refuse_the_voice_fields() {
    let registry = channels::Registry::builtin();
    let turn = Turn {
        role: Role::Customer,
        text: "hi".into(),
        at: now(),
        offset_ms: None,
    };
    for kind in [
        ChannelKind::Chat,
        ChannelKind::Sms,
        ChannelKind::Whatsapp,
        ChannelKind::Email,
    ] {
        let channel = registry.get(&kind).unwrap();
        let inputs = [
            (
                voice_input(VoiceFormat::Webvtt, Value::String(fixture("captions.vtt"))),
                "voice_transcript",
            ),
            (
                EscalationInput {
                    transcript: Some(vec![turn.clone()]),
                    speakers: speakers(&[("A", "bot")]),
                    ..EscalationInput::default()
                },
                "speakers",
            ),
            (
                EscalationInput {
                    transcript: Some(vec![turn.clone()]),
                    voice_mode: Some(VoiceMode::Logged),
                    ..EscalationInput::default()
                },
                "voice_mode",
            ),
        ];
        for (input, field) in inputs {
            let err = channel.normalize(input).unwrap_err();
            assert_eq!(err.code(), "voice_transcript_not_supported", "{kind}");
            assert_eq!(err.field().as_deref(), Some(field), "{kind}");
        }
    }
    let voice = registry.get(&ChannelKind::Voice).unwrap();
    assert_eq!(voice.delivers_through(), Some(ChannelKind::Sms));
    assert!(!voice.capabilities().delivers);
}

fn refused(format: VoiceFormat, content: Value) -> channels::ChannelError {
    let input = EscalationInput {
        speakers: speakers(&[("A", "bot"), ("spk_0", "bot"), ("spk_1", "customer")]),
        ..voice_input(format, content)
    };
    default_channel().normalize_at(input, now()).unwrap_err()
}

#[test]
fn hostile_content_is_refused_within_bounds() {
    // Over 5 MiB, in either shape.
    let big = "x".repeat(5 * 1024 * 1024 + 1);
    let err = refused(
        VoiceFormat::Webvtt,
        Value::String(format!("WEBVTT\n\n{big}")),
    );
    assert_eq!(err.code(), "voice_transcript_too_large");
    assert_eq!(err.field().as_deref(), Some("voice_transcript.content"));
    let err = refused(
        VoiceFormat::Assemblyai,
        json!({"utterances": [], "padding": big}),
    );
    assert_eq!(err.code(), "voice_transcript_too_large");

    // A million tiny cues: over the size limit before anything is read.
    let cue = "00:00.000 --> 00:00.001\n<v A>x\n\n";
    let err = refused(
        VoiceFormat::Webvtt,
        Value::String(format!("WEBVTT\n\n{}", cue.repeat(1_000_000))),
    );
    assert_eq!(err.code(), "voice_transcript_too_large");
    // Within the size limit, the count of cues is bounded too.
    let cue = "00:00.000 --> 00:00.001\nx\n\n";
    let text = format!(
        "WEBVTT\n\n00:00.000 --> 00:00.001\n<v A>x\n\n{}",
        cue.repeat(150_000)
    );
    assert!(text.len() < 5 * 1024 * 1024);
    let err = refused(VoiceFormat::Webvtt, Value::String(text));
    assert_eq!(err.code(), "voice_transcript_too_large");
    assert!(err.to_string().contains("100000 cues"), "{err}");
    // Alternating speakers: more turns than a transcript may have.
    let utterances: Vec<Value> = (0..10_001)
        .map(|i| json!({"speaker": if i % 2 == 0 { "A" } else { "B" }, "start": i, "end": i, "text": "x"}))
        .collect();
    let input = EscalationInput {
        speakers: speakers(&[("A", "bot"), ("B", "customer")]),
        ..voice_input(VoiceFormat::Assemblyai, json!({"utterances": utterances}))
    };
    let err = default_channel().normalize_at(input, now()).unwrap_err();
    assert_eq!(err.code(), "voice_transcript_too_large");
    assert!(err.to_string().contains("10000 turns"), "{err}");

    // Deeply nested JSON (as deep as a parser lets through) where an object is expected.
    let mut nested = json!("deep");
    for _ in 0..100 {
        nested = json!({ "results": nested });
    }
    let err = refused(VoiceFormat::AwsTranscribe, nested);
    assert_eq!(err.code(), "invalid_voice_transcript");
    assert!(err.to_string().contains("at results"), "{err}");

    // Unterminated WebVTT: the cues that arrived, and nothing that did not.
    let input = EscalationInput {
        speakers: speakers(&[("A", "bot")]),
        ..voice_input(
            VoiceFormat::Webvtt,
            Value::String("WEBVTT\n\n00:01.000 --> 00:02.000\n<v A>Hello <b".into()),
        )
    };
    let conversation = default_channel().normalize_at(input, now()).unwrap();
    assert_eq!(summary(&conversation), [(Role::Bot, 1_000, "Hello")]);
    let err = refused(
        VoiceFormat::Webvtt,
        Value::String("WEBVTT\n\n00:01.000 --> 00:0".into()),
    );
    assert_eq!(err.code(), "invalid_voice_transcript");

    // NUL never reaches a turn.
    let input = EscalationInput {
        speakers: speakers(&[("A", "bot")]),
        ..voice_input(
            VoiceFormat::Assemblyai,
            json!({"utterances": [{"speaker": "A", "start": 0, "end": 5, "text": "a\u{0}b"}]}),
        )
    };
    let conversation = default_channel().normalize_at(input, now()).unwrap();
    assert_eq!(conversation.turns[0].text, "a\u{fffd}b");
    let err = refused(VoiceFormat::Webvtt, Value::String("WEBVTT\0\n".into()));
    assert_eq!(err.code(), "invalid_voice_transcript");

    // Many unterminated tags and bare ampersands are each read once.
    let text = format!(
        "WEBVTT\n\n00:01.000 --> 00:02.000\n<v A>{}{}",
        "&".repeat(90_000),
        "<c".repeat(1_000_000)
    );
    let conversation = default_channel()
        .normalize_at(
            EscalationInput {
                speakers: speakers(&[("A", "bot")]),
                ..voice_input(VoiceFormat::Webvtt, Value::String(text))
            },
            now(),
        )
        .unwrap();
    assert_eq!(conversation.turns[0].text.len(), 90_000);
    // One cue longer than a turn may be.
    let text = format!(
        "WEBVTT\n\n00:01.000 --> 00:02.000\n<v A>{}",
        "word ".repeat(30_000)
    );
    let err = refused(VoiceFormat::Webvtt, Value::String(text));
    assert_eq!(err.code(), "voice_transcript_too_large");
    assert!(err.to_string().contains("at line 3"), "{err}");
}
