//! A Deepgram pre-recorded response.
//!
//! With `utterances=true`: `results.utterances[]` (`start`, `end` in seconds, `transcript`,
//! `speaker` as an integer with `diarize=true`, `channel`). Without utterances, the words of
//! `results.channels[].alternatives[0].words[]` (`punctuated_word` else `word`), grouped by
//! speaker. Labels are `spk_<speaker>`, or `ch_<channel>` for a multichannel response.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Parsed;
use super::fragments::{Fragments, invalid};
use super::json::{array, get, object, required, seconds, string};
use crate::ChannelError;

pub(crate) fn parse(content: &Value) -> Result<Parsed, ChannelError> {
    let obj = object(content, || "the top level".to_owned())?;
    let results = object(
        required(obj, "results", || "the top level".to_owned())?,
        || "results".to_owned(),
    )?;
    let channels = match get(results, "channels") {
        Some(channels) => array(channels, || "results.channels".to_owned())?,
        None => &[],
    };
    let declared_channels = get(obj, "metadata")
        .and_then(Value::as_object)
        .and_then(|metadata| metadata.get("channels"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let multichannel = declared_channels > 1 || channels.len() > 1;
    let mut fragments = Fragments::default();
    let utterances = match get(results, "utterances") {
        Some(utterances) => array(utterances, || "results.utterances".to_owned())?,
        None => &[],
    };
    if utterances.is_empty() {
        words(channels, multichannel, &mut fragments)?;
    } else {
        for (u, utterance) in utterances.iter().enumerate() {
            let at = |key: &str| format!("results.utterances[{u}]{key}");
            let utterance = object(utterance, || at(""))?;
            let start = seconds(required(utterance, "start", || at(""))?, || at(".start"))?;
            let end = seconds(required(utterance, "end", || at(""))?, || at(".end"))?;
            let text = string(required(utterance, "transcript", || at(""))?, || {
                at(".transcript")
            })?;
            let label = label(utterance, None, multichannel, &at)?;
            fragments.push(&label, start, end, text, || at(""))?;
        }
    }
    // Utterances (and words) of several channels come channel by channel.
    fragments.sort_by_start();
    Ok(Parsed {
        fragments,
        format_defaults: BTreeMap::new(),
    })
}

fn words(
    channels: &[Value],
    multichannel: bool,
    fragments: &mut Fragments,
) -> Result<(), ChannelError> {
    if channels.is_empty() {
        return Err(invalid(
            "results",
            "neither `utterances` nor `channels`: not a Deepgram transcription",
        ));
    }
    for (c, channel) in channels.iter().enumerate() {
        let at_channel = |key: &str| format!("results.channels[{c}]{key}");
        let channel_obj = object(channel, || at_channel(""))?;
        let alternatives = array(
            required(channel_obj, "alternatives", || at_channel(""))?,
            || at_channel(".alternatives"),
        )?;
        let Some(best) = alternatives.first() else {
            continue;
        };
        let best = object(best, || at_channel(".alternatives[0]"))?;
        let Some(words) = get(best, "words") else {
            continue;
        };
        for (w, word) in array(words, || at_channel(".alternatives[0].words"))?
            .iter()
            .enumerate()
        {
            let at = |key: &str| at_channel(&format!(".alternatives[0].words[{w}]{key}"));
            let word = object(word, || at(""))?;
            let text = match get(word, "punctuated_word") {
                Some(text) => string(text, || at(".punctuated_word"))?,
                None => string(required(word, "word", || at(""))?, || at(".word"))?,
            };
            let start = seconds(required(word, "start", || at(""))?, || at(".start"))?;
            let end = seconds(required(word, "end", || at(""))?, || at(".end"))?;
            let label = label(word, Some(c), multichannel, &at)?;
            fragments.push(&label, start, end, text, || at(""))?;
        }
    }
    Ok(())
}

/// `ch_<channel>` when the response has several channels, else `spk_<speaker>`.
fn label(
    obj: &Map<String, Value>,
    channel_index: Option<usize>,
    multichannel: bool,
    at: &dyn Fn(&str) -> String,
) -> Result<String, ChannelError> {
    if multichannel {
        let channel = match get(obj, "channel") {
            Some(channel) => channel
                .as_u64()
                .ok_or_else(|| invalid(at(".channel"), "expected a channel number"))?,
            None => channel_index
                .map(|c| c as u64)
                .ok_or_else(|| invalid(at(""), "`channel` is missing"))?,
        };
        return Ok(format!("ch_{channel}"));
    }
    match get(obj, "speaker") {
        Some(speaker) => speaker
            .as_u64()
            .map(|s| format!("spk_{s}"))
            .ok_or_else(|| invalid(at(".speaker"), "expected a speaker number")),
        None => Err(invalid(
            at(""),
            "no `speaker`: transcribe with diarize=true (or multichannel=true for a recording \
             with one speaker per channel)",
        )),
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

    fn call() -> Vec<(String, u64, String)> {
        vec![
            (
                "spk_0".into(),
                520,
                "Thanks for calling Acme. How can I help?".into(),
            ),
            (
                "spk_1".into(),
                3_840,
                "My card was declined twice today.".into(),
            ),
            (
                "spk_0".into(),
                6_510,
                "I'm sorry about that. Let me get a person.".into(),
            ),
            ("spk_1".into(), 9_430, "Okay, thanks.".into()),
        ]
    }

    #[test]
    fn utterances_carry_speakers() {
        assert_eq!(turns(&fixture("deepgram_utterances.json")), call());
    }

    #[test]
    fn without_utterances_words_are_grouped_by_speaker() {
        assert_eq!(turns(&fixture("deepgram_words.json")), call());
    }

    #[test]
    fn multichannel_responses_are_labelled_by_channel_and_interleaved() {
        let content = json!({
            "metadata": {"channels": 2},
            "results": {"channels": [
                {"alternatives": [{"words": [
                    {"word": "hello", "punctuated_word": "Hello.", "start": 0.5, "end": 0.9},
                    {"word": "bye", "start": 3.0, "end": 3.2}
                ]}]},
                {"alternatives": [{"words": [
                    {"word": "hi", "punctuated_word": "Hi!", "start": 1.5, "end": 1.8}
                ]}]}
            ]}
        });
        assert_eq!(
            turns(&content),
            [
                ("ch_0".to_owned(), 500, "Hello.".to_owned()),
                ("ch_1".to_owned(), 1_500, "Hi!".to_owned()),
                ("ch_0".to_owned(), 3_000, "bye".to_owned()),
            ]
        );
        let content = json!({"metadata": {"channels": 2}, "results": {"utterances": [
            {"start": 2.0, "end": 2.5, "channel": 1, "transcript": "Second."},
            {"start": 1.0, "end": 1.5, "channel": 0, "speaker": 0, "transcript": "First."}
        ]}});
        assert_eq!(
            turns(&content),
            [
                ("ch_0".to_owned(), 1_000, "First.".to_owned()),
                ("ch_1".to_owned(), 2_000, "Second.".to_owned()),
            ]
        );
    }

    #[test]
    fn errors_name_the_json_path() {
        let cases = [
            (json!({"metadata": {}}), "`results` is missing"),
            (
                json!({"results": {}}),
                "neither `utterances` nor `channels`",
            ),
            (
                json!({"results": {"utterances": [{"start": 0.1, "end": 0.2, "transcript": "x"}]}}),
                "at results.utterances[0]: no `speaker`: transcribe with diarize=true",
            ),
            (
                json!({"results": {"utterances": [{"start": "a", "end": 0.2, "speaker": 0,
                                                    "transcript": "x"}]}}),
                "at results.utterances[0].start",
            ),
            (
                json!({"results": {"utterances": [{"start": 0.1, "end": 0.2, "speaker": -1,
                                                    "transcript": "x"}]}}),
                "at results.utterances[0].speaker",
            ),
            (
                json!({"results": {"channels": [{"alternatives": [{"words": [
                    {"start": 0.1, "end": 0.2, "speaker": 0}]}]}]}}),
                "at results.channels[0].alternatives[0].words[0]: `word` is missing",
            ),
        ];
        for (content, want) in cases {
            let err = parse(&content).map(|_| ()).unwrap_err();
            assert_eq!(err.code(), "invalid_voice_transcript", "{content}");
            assert!(err.to_string().contains(want), "{err} / {want}");
        }
    }
}
