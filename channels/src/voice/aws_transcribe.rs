//! Amazon Transcribe batch output and Amazon Connect Contact Lens post-call output.
//!
//! Transcribe: `results.items[]` are the words (`pronunciation`, with `start_time` and
//! `end_time` as strings of seconds) and `punctuation` (no times; it belongs to the word before
//! it). Who said a word comes from `results.speaker_labels.segments[]` (joined to the words by
//! start time, or the segment that covers the word; newer outputs also put `speaker_label` on
//! the word itself), or with channel identification from `results.channel_labels.channels[]`,
//! each channel with its own items. Labels are `spk_0…` or `ch_0…`.
//!
//! Contact Lens: `Transcript[]` with `ParticipantId`, `Content`, `BeginOffsetMillis` and
//! `EndOffsetMillis`; `Participants[]` give each participant's role, and a `CUSTOMER` speaks
//! for the customer, an `AGENT`, `CUSTOM_BOT` or `SYSTEM` for the bot unless mapped otherwise.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::Parsed;
use super::fragments::{Fragments, invalid};
use super::json::{array, check_status, get, object, required, seconds, string};
use crate::{ChannelError, Role};

pub(crate) fn parse(content: &Value) -> Result<Parsed, ChannelError> {
    let obj = object(content, || "the top level".to_owned())?;
    if obj.contains_key("Transcript") || obj.contains_key("Participants") {
        return contact_lens(obj);
    }
    let Some(results) = get(obj, "results") else {
        return Err(invalid(
            "the top level",
            "expected `results` (Amazon Transcribe output) or `Transcript` (Contact Lens output)",
        ));
    };
    check_status(obj, "status", "COMPLETED")?;
    let results = object(results, || "results".to_owned())?;
    let mut fragments = Fragments::default();
    if let Some(channels) = get(results, "channel_labels") {
        by_channel(channels, &mut fragments)?;
    } else if let Some(speakers) = get(results, "speaker_labels") {
        let items = required(results, "items", || "results".to_owned())?;
        by_speaker(speakers, items, &mut fragments)?;
    } else {
        return Err(invalid(
            "results",
            "neither `speaker_labels` nor `channel_labels`: run the job with speaker \
             partitioning (ShowSpeakerLabels) or channel identification",
        ));
    }
    Ok(Parsed {
        fragments,
        format_defaults: BTreeMap::new(),
    })
}

/// A word with the punctuation after it.
struct Word<'a> {
    index: usize,
    start_ms: u64,
    end_ms: u64,
    speaker: Option<&'a str>,
    text: String,
}

/// The words of an item list, punctuation glued to the word before it (punctuation before any
/// word is dropped).
fn words<'a>(items: &'a [Value], path: &str) -> Result<Vec<Word<'a>>, ChannelError> {
    let mut words: Vec<Word<'a>> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |key: &str| format!("{path}[{i}]{key}");
        let item = object(item, || at(""))?;
        let alternatives = array(required(item, "alternatives", || at(""))?, || {
            at(".alternatives")
        })?;
        let first = alternatives
            .first()
            .ok_or_else(|| invalid(at(".alternatives"), "no alternatives"))?;
        let first = object(first, || at(".alternatives[0]"))?;
        let content = string(
            required(first, "content", || at(".alternatives[0]"))?,
            || at(".alternatives[0].content"),
        )?;
        let kind = get(item, "type")
            .map(|t| string(t, || at(".type")))
            .transpose()?;
        match kind {
            Some("punctuation") => {
                if let Some(word) = words.last_mut() {
                    word.text.push_str(content);
                }
            }
            Some("pronunciation") => {
                let start_ms = seconds(required(item, "start_time", || at(""))?, || {
                    at(".start_time")
                })?;
                let end_ms = seconds(required(item, "end_time", || at(""))?, || at(".end_time"))?;
                let speaker = get(item, "speaker_label")
                    .map(|s| string(s, || at(".speaker_label")))
                    .transpose()?;
                words.push(Word {
                    index: i,
                    start_ms,
                    end_ms,
                    speaker,
                    text: content.to_owned(),
                });
            }
            _ => {
                return Err(invalid(
                    at(".type"),
                    "expected pronunciation or punctuation",
                ));
            }
        }
    }
    Ok(words)
}

fn by_channel(channels: &Value, fragments: &mut Fragments) -> Result<(), ChannelError> {
    let channel_labels = object(channels, || "results.channel_labels".to_owned())?;
    let channels = array(
        required(channel_labels, "channels", || {
            "results.channel_labels".to_owned()
        })?,
        || "results.channel_labels.channels".to_owned(),
    )?;
    for (c, channel) in channels.iter().enumerate() {
        let at = |key: &str| format!("results.channel_labels.channels[{c}]{key}");
        let channel = object(channel, || at(""))?;
        let label = string(required(channel, "channel_label", || at(""))?, || {
            at(".channel_label")
        })?;
        let items = array(required(channel, "items", || at(""))?, || at(".items"))?;
        for word in words(items, &at(".items"))? {
            fragments.push(label, word.start_ms, word.end_ms, &word.text, || {
                at(".channel_label")
            })?;
        }
    }
    // Each channel's words come separately: put the call back in order.
    fragments.sort_by_start();
    Ok(())
}

fn by_speaker(
    speakers: &Value,
    items: &Value,
    fragments: &mut Fragments,
) -> Result<(), ChannelError> {
    let speaker_labels = object(speakers, || "results.speaker_labels".to_owned())?;
    let segments = array(
        required(speaker_labels, "segments", || {
            "results.speaker_labels".to_owned()
        })?,
        || "results.speaker_labels.segments".to_owned(),
    )?;
    // Who starts speaking when: from each segment's items, and the segments' own spans.
    let mut by_start: HashMap<u64, &str> = HashMap::new();
    let mut spans: Vec<(u64, u64, &str)> = Vec::with_capacity(segments.len());
    for (s, segment) in segments.iter().enumerate() {
        let at = |key: &str| format!("results.speaker_labels.segments[{s}]{key}");
        let segment = object(segment, || at(""))?;
        let label = string(required(segment, "speaker_label", || at(""))?, || {
            at(".speaker_label")
        })?;
        let start = seconds(required(segment, "start_time", || at(""))?, || {
            at(".start_time")
        })?;
        let end = seconds(required(segment, "end_time", || at(""))?, || {
            at(".end_time")
        })?;
        spans.push((start, end, label));
        let Some(items) = get(segment, "items") else {
            continue;
        };
        for (k, item) in array(items, || at(".items"))?.iter().enumerate() {
            let item_at = |key: &str| at(&format!(".items[{k}]{key}"));
            let item = object(item, || item_at(""))?;
            let start = seconds(required(item, "start_time", || item_at(""))?, || {
                item_at(".start_time")
            })?;
            let label = match get(item, "speaker_label") {
                Some(l) => string(l, || item_at(".speaker_label"))?,
                None => label,
            };
            by_start.insert(start, label);
        }
    }
    spans.sort_by_key(|span| span.0);
    let items = array(items, || "results.items".to_owned())?;
    for word in words(items, "results.items")? {
        let at = || format!("results.items[{}]", word.index);
        let speaker = word
            .speaker
            .or_else(|| by_start.get(&word.start_ms).copied())
            .or_else(|| covering(&spans, word.start_ms))
            .ok_or_else(|| {
                invalid(
                    at(),
                    format!(
                        "no speaker segment covers the word at {}.{:03} s",
                        word.start_ms / 1000,
                        word.start_ms % 1000
                    ),
                )
            })?;
        fragments.push(speaker, word.start_ms, word.end_ms, &word.text, at)?;
    }
    Ok(())
}

/// The speaker of the latest segment starting at or before `ms` that lasts until `ms`.
fn covering<'a>(spans: &[(u64, u64, &'a str)], ms: u64) -> Option<&'a str> {
    let after = spans.partition_point(|span| span.0 <= ms);
    let (_, end, label) = spans.get(after.checked_sub(1)?)?;
    (ms <= *end).then_some(*label)
}

fn contact_lens(obj: &Map<String, Value>) -> Result<Parsed, ChannelError> {
    check_status(obj, "JobStatus", "COMPLETED")?;
    let mut format_defaults = BTreeMap::new();
    // Participant ids are usually the role names themselves.
    for role in ["CUSTOMER", "AGENT", "CUSTOM_BOT", "SYSTEM"] {
        if let Some(mapped) = participant_role(role) {
            format_defaults.insert(role.to_owned(), mapped);
        }
    }
    if let Some(participants) = get(obj, "Participants") {
        for (p, participant) in array(participants, || "Participants".to_owned())?
            .iter()
            .enumerate()
        {
            let at = |key: &str| format!("Participants[{p}]{key}");
            let participant = object(participant, || at(""))?;
            let id = string(required(participant, "ParticipantId", || at(""))?, || {
                at(".ParticipantId")
            })?;
            let role = string(required(participant, "ParticipantRole", || at(""))?, || {
                at(".ParticipantRole")
            })?;
            match participant_role(role) {
                Some(mapped) => format_defaults.insert(id.to_owned(), mapped),
                // A role we do not map (SUPERVISOR): the request must say.
                None => format_defaults.remove(id),
            };
        }
    }
    let transcript = array(
        required(obj, "Transcript", || "the top level".to_owned())?,
        || "Transcript".to_owned(),
    )?;
    let mut fragments = Fragments::default();
    for (t, entry) in transcript.iter().enumerate() {
        let at = |key: &str| format!("Transcript[{t}]{key}");
        let entry = object(entry, || at(""))?;
        let id = string(required(entry, "ParticipantId", || at(""))?, || {
            at(".ParticipantId")
        })?;
        let content = string(required(entry, "Content", || at(""))?, || at(".Content"))?;
        let begin = super::json::millis(required(entry, "BeginOffsetMillis", || at(""))?, || {
            at(".BeginOffsetMillis")
        })?;
        let end = super::json::millis(required(entry, "EndOffsetMillis", || at(""))?, || {
            at(".EndOffsetMillis")
        })?;
        fragments.push(id, begin, end, content, || at(".ParticipantId"))?;
    }
    fragments.sort_by_start();
    Ok(Parsed {
        fragments,
        format_defaults,
    })
}

/// Contact Lens roles: the customer, and the automated or agent side as the bot.
fn participant_role(role: &str) -> Option<Role> {
    match role {
        "CUSTOMER" => Some(Role::Customer),
        "AGENT" | "CUSTOM_BOT" | "SYSTEM" => Some(Role::Bot),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn turns(content: &Value) -> Vec<(String, u64, String)> {
        let parsed = parse(content).unwrap();
        let labels = parsed.fragments.labels().to_vec();
        parsed
            .fragments
            .into_turns()
            .unwrap()
            .into_iter()
            .map(|t| (labels[t.label].clone(), t.start_ms, t.text))
            .collect()
    }

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/voice/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn call(a: &str, b: &str) -> Vec<(String, u64, String)> {
        vec![
            (
                a.into(),
                520,
                "Thanks for calling Acme. How can I help?".into(),
            ),
            (b.into(), 3_840, "My card was declined twice today.".into()),
            (
                a.into(),
                6_510,
                "I'm sorry about that. Let me get a person.".into(),
            ),
            (b.into(), 9_430, "Okay, thanks.".into()),
        ]
    }

    #[test]
    fn speaker_labels_join_words_by_start_time_with_punctuation_glued() {
        assert_eq!(
            turns(&fixture("transcribe_speakers.json")),
            call("spk_0", "spk_1")
        );
    }

    #[test]
    fn channel_labels_interleave_the_channels_by_time() {
        assert_eq!(
            turns(&fixture("transcribe_channels.json")),
            call("ch_0", "ch_1")
        );
    }

    #[test]
    fn contact_lens_maps_participant_roles_by_default() {
        let content = fixture("contact_lens.json");
        assert_eq!(turns(&content), call("AGENT", "CUSTOMER"));
        let parsed = parse(&content).unwrap();
        assert_eq!(parsed.format_defaults["CUSTOMER"], Role::Customer);
        assert_eq!(parsed.format_defaults["AGENT"], Role::Bot);
        // A supervisor is nobody's default.
        let parsed = parse(&json!({
            "Participants": [{"ParticipantId": "SUP", "ParticipantRole": "SUPERVISOR"},
                             {"ParticipantId": "AGENT", "ParticipantRole": "SUPERVISOR"}],
            "Transcript": [{"ParticipantId": "SUP", "Content": "Hi", "BeginOffsetMillis": 0,
                            "EndOffsetMillis": 100}]
        }))
        .unwrap();
        assert!(!parsed.format_defaults.contains_key("SUP"));
        assert!(!parsed.format_defaults.contains_key("AGENT"));
    }

    #[test]
    fn newer_items_carry_their_own_speaker_and_segments_cover_the_rest() {
        let content = json!({"results": {
            "speaker_labels": {"segments": [
                {"start_time": "0.0", "end_time": "2.0", "speaker_label": "spk_1"},
                {"start_time": "2.0", "end_time": "4.0", "speaker_label": "spk_0"}
            ]},
            "items": [
                {"type": "punctuation", "alternatives": [{"content": "."}]},
                {"type": "pronunciation", "start_time": "0.5", "end_time": "0.9",
                 "alternatives": [{"content": "Hello"}]},
                {"type": "pronunciation", "start_time": "2.5", "end_time": "2.9",
                 "speaker_label": "spk_1", "alternatives": [{"content": "again"}]},
                {"type": "pronunciation", "start_time": "3.0", "end_time": "3.5",
                 "alternatives": [{"content": "there"}]},
                {"type": "punctuation", "alternatives": [{"content": "!"}]}
            ]
        }});
        assert_eq!(
            turns(&content),
            [
                ("spk_1".to_owned(), 500, "Hello again".to_owned()),
                ("spk_0".to_owned(), 3_000, "there!".to_owned())
            ]
        );
    }

    #[test]
    fn errors_name_the_json_path() {
        let cases = [
            (json!([]), "at the top level: expected an object"),
            (json!({"foo": 1}), "expected `results`"),
            (json!({"status": "FAILED", "results": {}}), "not finished"),
            (json!({"results": {"items": []}}), "ShowSpeakerLabels"),
            (
                json!({"results": {"speaker_labels": {"segments": []}, "items": [
                    {"type": "pronunciation", "start_time": "1.0", "end_time": "1.2",
                     "alternatives": [{"content": "hi"}]}]}}),
                "at results.items[0]: no speaker segment covers the word at 1.000 s",
            ),
            (
                json!({"results": {"speaker_labels": {"segments": []}, "items": [
                    {"type": "pronunciation", "start_time": 1, "end_time": "x",
                     "alternatives": [{"content": "hi"}]}]}}),
                "at results.items[0].end_time",
            ),
            (
                json!({"results": {"speaker_labels": {"segments": []}, "items": [
                    {"type": "breath", "alternatives": [{"content": "hi"}]}]}}),
                "at results.items[0].type",
            ),
            (
                json!({"results": {"channel_labels": {"channels": [{"items": []}]}}}),
                "at results.channel_labels.channels[0]: `channel_label` is missing",
            ),
            (
                json!({"Transcript": [{"ParticipantId": "AGENT", "Content": "x",
                                        "BeginOffsetMillis": -5, "EndOffsetMillis": 1}]}),
                "at Transcript[0].BeginOffsetMillis",
            ),
        ];
        for (content, want) in cases {
            let err = match parse(&content) {
                Ok(parsed) => parsed.fragments.into_turns().map(|_| ()).unwrap_err(),
                Err(err) => err,
            };
            assert_eq!(err.code(), "invalid_voice_transcript", "{content}");
            assert_eq!(err.field().as_deref(), Some("voice_transcript.content"));
            assert!(err.to_string().contains(want), "{err} / {want}");
        }
    }
}
