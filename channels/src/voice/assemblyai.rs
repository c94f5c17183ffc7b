//! An AssemblyAI transcript requested with `speaker_labels=true`: `utterances[]` with
//! `speaker` (a letter, `A`, `B`, …, used as the label as it is), `start` and `end` in
//! milliseconds, and `text`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Parsed;
use super::fragments::{Fragments, invalid};
use super::json::{array, check_status, get, millis, object, required, string};
use crate::ChannelError;

pub(crate) fn parse(content: &Value) -> Result<Parsed, ChannelError> {
    let obj = object(content, || "the top level".to_owned())?;
    check_status(obj, "status", "completed")?;
    let Some(utterances) = get(obj, "utterances") else {
        return Err(invalid(
            "the top level",
            "no `utterances`: request the transcript with speaker_labels=true",
        ));
    };
    let mut fragments = Fragments::default();
    for (u, utterance) in array(utterances, || "utterances".to_owned())?
        .iter()
        .enumerate()
    {
        let at = |key: &str| format!("utterances[{u}]{key}");
        let utterance = object(utterance, || at(""))?;
        let speaker = string(required(utterance, "speaker", || at(""))?, || {
            at(".speaker")
        })?;
        let start = millis(required(utterance, "start", || at(""))?, || at(".start"))?;
        let end = millis(required(utterance, "end", || at(""))?, || at(".end"))?;
        let text = string(required(utterance, "text", || at(""))?, || at(".text"))?;
        fragments.push(speaker, start, end, text, || at(".speaker"))?;
    }
    fragments.sort_by_start();
    Ok(Parsed {
        fragments,
        format_defaults: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn utterances_keep_their_letters() {
        let path = format!(
            "{}/tests/fixtures/voice/assemblyai.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let content: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let parsed = parse(&content).unwrap();
        let labels = parsed.fragments.labels().to_vec();
        assert_eq!(labels, ["A", "B"]);
        let turns: Vec<(String, u64, String)> = parsed
            .fragments
            .into_turns()
            .unwrap()
            .into_iter()
            .map(|t| (labels[t.label].clone(), t.start_ms, t.text))
            .collect();
        assert_eq!(
            turns,
            [
                (
                    "A".to_owned(),
                    520,
                    "Thanks for calling Acme. How can I help?".to_owned()
                ),
                (
                    "B".to_owned(),
                    3_840,
                    "My card was declined twice today.".to_owned()
                ),
                (
                    "A".to_owned(),
                    6_510,
                    "I'm sorry about that. Let me get a person.".to_owned()
                ),
                ("B".to_owned(), 9_430, "Okay, thanks.".to_owned()),
            ]
        );
    }

    #[test]
    fn errors_name_the_json_path() {
        let cases = [
            (json!({"status": "processing"}), "not finished"),
            (
                json!({"status": "completed", "utterances": null}),
                "speaker_labels=true",
            ),
            (json!({"utterances": {}}), "at utterances: expected a list"),
            (
                json!({"utterances": [{"speaker": "A", "start": 1.5, "end": 2, "text": "x"}]}),
                "at utterances[0].start: expected a time in whole milliseconds",
            ),
            (
                json!({"utterances": [{"speaker": 1, "start": 1, "end": 2, "text": "x"}]}),
                "at utterances[0].speaker: expected a string",
            ),
            (
                json!({"utterances": [{"speaker": "", "start": 1, "end": 2, "text": "x"}]}),
                "at utterances[0].speaker: a speaker label cannot be empty",
            ),
        ];
        for (content, want) in cases {
            let err = parse(&content).map(|_| ()).unwrap_err();
            assert_eq!(err.code(), "invalid_voice_transcript", "{content}");
            assert!(err.to_string().contains(want), "{err} / {want}");
        }
    }
}
