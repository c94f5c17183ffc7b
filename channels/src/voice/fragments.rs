//! What every format parser produces: timed, labelled pieces of speech, bounded in number,
//! merged afterwards into turns (consecutive pieces of one speaker are one turn).

use std::collections::HashMap;

use super::speakers::{MAX_SPEAKERS, label_problem};
use crate::ChannelError;

/// The most pieces (cues, utterances, words, segments) one transcript may hold.
pub(crate) const MAX_FRAGMENTS: usize = 100_000;
/// The most turns a transcript may come to after merging (as for a JSON `transcript`).
pub(crate) const MAX_TURNS: usize = 10_000;
/// A merged turn grows to at most this many characters; the speaker's next piece starts a
/// new turn (as a JSON `transcript` turn is limited).
pub(crate) const TURN_MAX_CHARS: usize = 100_000;
/// The latest offset into a call, in milliseconds (7 days).
pub(crate) const MAX_OFFSET_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The error for content that is not what its format says, at `place` (a JSON path or a line).
pub(crate) fn invalid(
    place: impl std::fmt::Display,
    reason: impl std::fmt::Display,
) -> ChannelError {
    ChannelError::InvalidVoiceTranscript {
        field: "voice_transcript.content",
        reason: format!("at {place}: {reason}"),
    }
}

pub(crate) fn too_large(reason: impl Into<String>) -> ChannelError {
    ChannelError::VoiceTranscriptTooLarge {
        reason: reason.into(),
    }
}

/// One piece of speech: who (an index into [`Fragments::labels`]), when, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fragment {
    pub label: usize,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
}

/// A turn before its speaker has a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LabelledTurn {
    pub label: usize,
    pub start_ms: u64,
    pub text: String,
}

/// The pieces of one transcript, with its speaker labels in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct Fragments {
    labels: Vec<String>,
    index: HashMap<String, usize>,
    items: Vec<Fragment>,
    /// Pieces seen, kept or not (blank ones are dropped but count towards the limit).
    seen: usize,
}

impl Fragments {
    /// Adds one piece. The text is trimmed (NUL becomes U+FFFD); a blank piece is dropped.
    /// `place` says where the label came from, for the error when it cannot be one.
    pub(crate) fn push(
        &mut self,
        label: &str,
        start_ms: u64,
        end_ms: u64,
        text: &str,
        place: impl FnOnce() -> String,
    ) -> Result<(), ChannelError> {
        self.seen += 1;
        if self.seen > MAX_FRAGMENTS {
            return Err(too_large(format!(
                "more than {MAX_FRAGMENTS} cues, utterances or words"
            )));
        }
        for ms in [start_ms, end_ms] {
            if ms > MAX_OFFSET_MS {
                return Err(invalid(place(), "a time more than 7 days into the call"));
            }
        }
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        if text.len() > TURN_MAX_CHARS && text.chars().count() > TURN_MAX_CHARS {
            return Err(too_large(format!(
                "at {}: one piece of speech is longer than {TURN_MAX_CHARS} characters",
                place()
            )));
        }
        let label = self.intern(label, place)?;
        self.items.push(Fragment {
            label,
            start_ms,
            end_ms: end_ms.max(start_ms),
            text: text.replace('\0', "\u{fffd}"),
        });
        Ok(())
    }

    fn intern(
        &mut self,
        label: &str,
        place: impl FnOnce() -> String,
    ) -> Result<usize, ChannelError> {
        if let Some(&i) = self.index.get(label) {
            return Ok(i);
        }
        if let Some(problem) = label_problem(label) {
            return Err(invalid(place(), problem));
        }
        if self.labels.len() == MAX_SPEAKERS {
            return Err(too_large(format!("more than {MAX_SPEAKERS} speakers")));
        }
        let i = self.labels.len();
        self.labels.push(label.to_owned());
        self.index.insert(label.to_owned(), i);
        Ok(i)
    }

    /// The speaker labels in order of first appearance.
    pub(crate) fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Orders the pieces by start time (stable: pieces starting together keep their order),
    /// for formats whose pieces come per channel.
    pub(crate) fn sort_by_start(&mut self) {
        self.items.sort_by_key(|f| f.start_ms);
    }

    /// The end of the last utterance: the latest end of any piece.
    pub(crate) fn call_length_ms(&self) -> u64 {
        self.items.iter().map(|f| f.end_ms).max().unwrap_or(0)
    }

    /// Consecutive pieces of one speaker joined (by a space) into one turn of at most
    /// [`TURN_MAX_CHARS`] characters; at most [`MAX_TURNS`] turns.
    pub(crate) fn into_turns(self) -> Result<Vec<LabelledTurn>, ChannelError> {
        let mut turns: Vec<(LabelledTurn, usize)> = Vec::new();
        for fragment in self.items {
            let chars = fragment.text.chars().count();
            if let Some((last, last_chars)) = turns.last_mut()
                && last.label == fragment.label
                && *last_chars + 1 + chars <= TURN_MAX_CHARS
            {
                last.text.push(' ');
                last.text.push_str(&fragment.text);
                *last_chars += 1 + chars;
                continue;
            }
            if turns.len() == MAX_TURNS {
                return Err(too_large(format!(
                    "more than {MAX_TURNS} turns once consecutive pieces of a speaker are joined"
                )));
            }
            turns.push((
                LabelledTurn {
                    label: fragment.label,
                    start_ms: fragment.start_ms,
                    text: fragment.text,
                },
                chars,
            ));
        }
        Ok(turns.into_iter().map(|(turn, _)| turn).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> String {
        "test".to_owned()
    }

    #[test]
    fn consecutive_pieces_of_a_speaker_merge() {
        let mut fragments = Fragments::default();
        fragments.push("A", 0, 900, " Hello ", here).unwrap();
        fragments.push("A", 1_000, 1_500, "there.", here).unwrap();
        fragments.push("B", 1_600, 2_000, "Hi!", here).unwrap();
        fragments.push("B", 2_100, 2_200, "  ", here).unwrap();
        fragments.push("A", 2_300, 4_000, "Bye\0", here).unwrap();
        assert_eq!(fragments.labels(), ["A", "B"]);
        assert_eq!(fragments.call_length_ms(), 4_000);
        let turns = fragments.into_turns().unwrap();
        let texts: Vec<(usize, u64, &str)> = turns
            .iter()
            .map(|t| (t.label, t.start_ms, t.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (0, 0, "Hello there."),
                (1, 1_600, "Hi!"),
                (0, 2_300, "Bye\u{fffd}")
            ]
        );
    }

    #[test]
    fn a_long_monologue_is_cut_into_turns_of_bounded_length() {
        let mut fragments = Fragments::default();
        let word = "x".repeat(999);
        for i in 0..250 {
            fragments.push("A", i, i, &word, here).unwrap();
        }
        let turns = fragments.into_turns().unwrap();
        assert_eq!(turns.len(), 3);
        assert!(
            turns
                .iter()
                .all(|t| t.text.chars().count() <= TURN_MAX_CHARS)
        );
        assert_eq!(turns[1].start_ms, 100);
    }

    #[test]
    fn limits_are_refused_naming_the_content() {
        let mut fragments = Fragments::default();
        for i in 0..=MAX_TURNS {
            let label = if i % 2 == 0 { "A" } else { "B" };
            fragments.push(label, 0, 0, "x", here).unwrap();
        }
        let err = fragments.into_turns().unwrap_err();
        assert_eq!(err.code(), "voice_transcript_too_large");
        assert_eq!(err.field().as_deref(), Some("voice_transcript.content"));

        let mut fragments = Fragments::default();
        let mut outcome = Ok(());
        for _ in 0..=MAX_FRAGMENTS {
            outcome = fragments.push("A", 0, 0, "", here);
            if outcome.is_err() {
                break;
            }
        }
        assert_eq!(outcome.unwrap_err().code(), "voice_transcript_too_large");

        let mut fragments = Fragments::default();
        for i in 0..MAX_SPEAKERS {
            fragments.push(&format!("s{i}"), 0, 0, "x", here).unwrap();
        }
        let err = fragments.push("one more", 0, 0, "x", here).unwrap_err();
        assert!(err.to_string().contains("speakers"), "{err}");

        let err = Fragments::default()
            .push("A", MAX_OFFSET_MS + 1, 0, "x", here)
            .unwrap_err();
        assert_eq!(err.code(), "invalid_voice_transcript");
        let err = Fragments::default()
            .push("A", 0, 0, &"é".repeat(TURN_MAX_CHARS + 1), here)
            .unwrap_err();
        assert_eq!(err.code(), "voice_transcript_too_large");
        assert!(
            Fragments::default()
                .push("A", 0, 0, &"é".repeat(TURN_MAX_CHARS), here)
                .is_ok()
        );
        let err = Fragments::default().push("", 0, 0, "x", here).unwrap_err();
        assert!(
            err.to_string()
                .contains("at test: a speaker label cannot be empty"),
            "{err}"
        );
    }
}
