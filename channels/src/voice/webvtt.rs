//! W3C WebVTT captions with voice spans, read in one pass over the text.
//!
//! The file starts with `WEBVTT`; blocks are separated by blank lines (CRLF, LF or CR);
//! `NOTE`, `STYLE` and `REGION` blocks are skipped; a cue is an optional id line, a timing line
//! (`[hh:]mm:ss.ttt --> [hh:]mm:ss.ttt [settings]`) and its text. In the text, `<v Name>` (also
//! `<v.class Name>`) says who speaks until the next voice span; several may share a cue; every
//! other tag (`<i>`, `<b>`, `<u>`, `<c.x>`, `<ruby>`, `<lang>`, timestamps `<00:17.500>`) is
//! dropped and character references are decoded. A cue without a voice continues the speaker
//! of the cue before it (captions name a speaker when it changes); the first must name one.

use std::collections::BTreeMap;

use super::Parsed;
use super::fragments::{Fragments, MAX_FRAGMENTS, MAX_OFFSET_MS, invalid, too_large};
use super::json::MAX_CONTENT_BYTES;
use crate::ChannelError;

pub(crate) fn parse(text: &str) -> Result<Parsed, ChannelError> {
    if text.len() > MAX_CONTENT_BYTES {
        return Err(too_large(format!(
            "more than {} MiB of WebVTT",
            MAX_CONTENT_BYTES / (1024 * 1024)
        )));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Lines::new(text);
    let first = lines.next().map(|(_, line)| line).unwrap_or_default();
    let signature = first
        .strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
    if !signature {
        return Err(invalid("line 1", "a WebVTT file starts with `WEBVTT`"));
    }
    // The rest of the header runs to the first blank line (or, leniently, the first cue
    // timings: a cue is not lost for a missing blank line).
    let mut pending: Option<(usize, &str)> = None;
    for (number, line) in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if line.contains("-->") {
            pending = Some((number, line));
            break;
        }
    }
    let mut reader = CueReader {
        fragments: Fragments::default(),
        speaker: None,
        cues: 0,
    };
    while let Some((number, line)) = pending.take().or_else(|| lines.next()) {
        if line.is_empty() {
            continue;
        }
        if !line.contains("-->") && is_skipped_block(line) {
            for (_, line) in lines.by_ref() {
                if line.is_empty() {
                    break;
                }
            }
            continue;
        }
        let (timing_number, timing) = if line.contains("-->") {
            (number, line)
        } else {
            // A cue identifier; the timing line follows.
            match lines.next() {
                Some((n, l)) if l.contains("-->") => (n, l),
                _ => {
                    return Err(invalid(
                        format!("line {}", number + 1),
                        "expected cue timings such as `00:01.000 --> 00:04.000` after the cue \
                         identifier",
                    ));
                }
            }
        };
        let (start_ms, end_ms) = timings(timing)
            .ok_or_else(|| invalid(format!("line {timing_number}"), "invalid cue timings"))?;
        // The cue text: up to a blank line, or a line with `-->` (which starts the next cue).
        let mut cue_text = String::new();
        for (n, line) in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            if line.contains("-->") {
                pending = Some((n, line));
                break;
            }
            if !cue_text.is_empty() {
                cue_text.push('\n');
            }
            cue_text.push_str(line);
        }
        reader.cue(timing_number, start_ms, end_ms, &cue_text)?;
    }
    Ok(Parsed {
        fragments: reader.fragments,
        format_defaults: BTreeMap::new(),
    })
}

/// `NOTE`, `STYLE` and `REGION` blocks (the word alone or followed by a space or tab).
fn is_skipped_block(line: &str) -> bool {
    ["NOTE", "STYLE", "REGION"].iter().any(|word| {
        line.strip_prefix(word)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    })
}

/// Lines split on CRLF, CR or LF, numbered from 1.
struct Lines<'a> {
    rest: &'a str,
    number: usize,
    done: bool,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            rest: text,
            number: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.number += 1;
        match self.rest.find(['\r', '\n']) {
            None => {
                self.done = true;
                let line = self.rest;
                self.rest = "";
                // A final newline leaves no last line.
                (!line.is_empty() || self.number == 1).then_some((self.number, line))
            }
            Some(i) => {
                let line = &self.rest[..i];
                let skip = if self.rest[i..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                self.rest = &self.rest[i + skip..];
                if self.rest.is_empty() {
                    self.done = true;
                }
                Some((self.number, line))
            }
        }
    }
}

/// `start --> end [settings]`, in milliseconds.
fn timings(line: &str) -> Option<(u64, u64)> {
    let (start, rest) = line.split_once("-->")?;
    let start = timestamp(start.trim_matches([' ', '\t']))?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let end_text = rest.split([' ', '\t']).next()?;
    let end = timestamp(end_text)?;
    Some((start, end))
}

/// `[hh:]mm:ss.ttt` (hours of any width up to 6 digits; minutes and seconds two digits).
fn timestamp(text: &str) -> Option<u64> {
    let (clock, millis) = text.split_once('.')?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.splitn(4, ':').collect();
    let number = |s: &str, width: Option<usize>| -> Option<u64> {
        let ok = !s.is_empty()
            && s.len() <= 6
            && width.is_none_or(|w| s.len() == w)
            && s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| s.parse().ok()).flatten()
    };
    let (hours, minutes, seconds) = match parts.as_slice() {
        [m, s] => (0, number(m, Some(2))?, number(s, Some(2))?),
        [h, m, s] if h.len() >= 2 => (number(h, None)?, number(m, Some(2))?, number(s, Some(2))?),
        _ => return None,
    };
    if minutes > 59 || seconds > 59 {
        return None;
    }
    let ms = ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis.parse::<u64>().ok()?;
    (ms <= MAX_OFFSET_MS).then_some(ms)
}

struct CueReader {
    fragments: Fragments,
    /// The voice speaking at the end of the previous cue.
    speaker: Option<String>,
    cues: usize,
}

impl CueReader {
    /// One cue's text split by voice spans into pieces.
    fn cue(
        &mut self,
        line: usize,
        start_ms: u64,
        end_ms: u64,
        text: &str,
    ) -> Result<(), ChannelError> {
        self.cues += 1;
        if self.cues > MAX_FRAGMENTS {
            return Err(too_large(format!("more than {MAX_FRAGMENTS} cues")));
        }
        let mut piece = String::new();
        let mut pos = 0;
        while let Some(c) = text[pos..].chars().next() {
            match c {
                '<' => {
                    // The tag runs to the next `>` or the end of the cue; it is read once.
                    let rest = &text[pos + 1..];
                    let tag_len = rest.find('>').unwrap_or(rest.len());
                    let tag = &rest[..tag_len];
                    pos += 1 + tag_len + usize::from(tag_len < rest.len());
                    if let Some(voice) = voice_annotation(tag) {
                        self.flush(&mut piece, line, start_ms, end_ms)?;
                        self.speaker = Some(voice);
                    }
                    continue;
                }
                '&' => {
                    if let Some((decoded, used)) = character_reference(&text[pos + 1..]) {
                        piece.push(decoded);
                        pos += 1 + used;
                        continue;
                    }
                    piece.push('&');
                }
                '\0' => piece.push('\u{fffd}'),
                c => piece.push(c),
            }
            pos += c.len_utf8();
        }
        self.flush(&mut piece, line, start_ms, end_ms)
    }

    fn flush(
        &mut self,
        piece: &mut String,
        line: usize,
        start_ms: u64,
        end_ms: u64,
    ) -> Result<(), ChannelError> {
        let text = collapse_spaces(piece);
        piece.clear();
        if text.is_empty() {
            return Ok(());
        }
        let Some(speaker) = &self.speaker else {
            return Err(invalid(
                format!("line {line}"),
                "the cue names no speaker (`<v Name>`) and no cue before it does",
            ));
        };
        self.fragments
            .push(speaker, start_ms, end_ms, &text, || format!("line {line}"))
    }
}

/// `v Name`, `v.loud Name` → `Name` (whitespace collapsed); `None` for any other tag and for
/// a voice span without a name.
fn voice_annotation(tag: &str) -> Option<String> {
    let name_end = tag
        .find([' ', '\t', '\n', '\u{c}', '\r'])
        .unwrap_or(tag.len());
    let (name, annotation) = tag.split_at(name_end);
    let tag_name = name.split('.').next().unwrap_or_default();
    if tag_name != "v" {
        return None;
    }
    let voice = collapse_spaces(annotation);
    (!voice.is_empty()).then_some(voice)
}

/// Runs of whitespace become one space; the ends are trimmed.
fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A character reference after `&` (`amp;`, `#233;`, `#xE9;`), with the bytes it used.
fn character_reference(rest: &str) -> Option<(char, usize)> {
    let end = rest.bytes().take(12).position(|b| b == b';')?;
    let name = &rest[..end];
    let decoded = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "lrm" => '\u{200e}',
        "rlm" => '\u{200f}',
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            match char::from_u32(code) {
                Some('\0') | None => '\u{fffd}',
                Some(c) => c,
            }
        }
    };
    Some((decoded, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(text: &str) -> Vec<(String, u64, String)> {
        let parsed = parse(text).unwrap();
        let labels = parsed.fragments.labels().to_vec();
        parsed
            .fragments
            .into_turns()
            .unwrap()
            .into_iter()
            .map(|t| (labels[t.label].clone(), t.start_ms, t.text))
            .collect()
    }

    fn error(text: &str) -> String {
        let err = match parse(text) {
            Ok(parsed) => parsed.fragments.into_turns().map(|_| ()).unwrap_err(),
            Err(err) => err,
        };
        assert_eq!(err.field().as_deref(), Some("voice_transcript.content"));
        err.to_string()
    }

    const FIXTURE: &str = include_str!("../../tests/fixtures/voice/captions.vtt");

    fn call() -> Vec<(String, u64, String)> {
        vec![
            (
                "Acme Assistant".into(),
                520,
                "Thanks for calling Acme. How can I help?".into(),
            ),
            (
                "Caller".into(),
                3_840,
                "My card was declined twice today.".into(),
            ),
            (
                "Acme Assistant".into(),
                6_510,
                "I'm sorry about that. Let me get a person.".into(),
            ),
            ("Caller".into(), 9_430, "Okay, thanks.".into()),
        ]
    }

    #[test]
    fn reads_voices_and_strips_other_markup() {
        assert_eq!(turns(FIXTURE), call());
    }

    #[test]
    fn line_endings_do_not_matter() {
        assert_eq!(turns(&FIXTURE.replace('\n', "\r\n")), call());
        assert_eq!(turns(&FIXTURE.replace('\n', "\r")), call());
        assert_eq!(turns(&format!("\u{feff}{FIXTURE}")), call());
    }

    #[test]
    fn several_voices_share_a_cue_and_continue_into_the_next() {
        let text = "WEBVTT\n\n00:01.000 --> 00:04.000\n<v Roger Bingham>When we e-mailed—\n\
                    <v.loud.first   Neil  deGrasse Tyson>Didn't we talk?</v>\n\n\
                    00:04.500 --> 00:05.000\nWe did.\n\n\
                    00:05.000 --> 00:06.000\n<v>Anyway &amp; &lt;so&gt; &#233;&#xE9;&bogus; & done\n";
        assert_eq!(
            turns(text),
            [
                (
                    "Roger Bingham".to_owned(),
                    1_000,
                    "When we e-mailed—".to_owned()
                ),
                (
                    "Neil deGrasse Tyson".to_owned(),
                    1_000,
                    "Didn't we talk? We did. Anyway & <so> éé&bogus; & done".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn timings_take_optional_hours_and_settings() {
        assert_eq!(timings("00:11.000 --> 00:13.500"), Some((11_000, 13_500)));
        assert_eq!(
            timings("01:02:03.004-->01:02:04.000 align:end size:50%"),
            Some((3_723_004, 3_724_000))
        );
        assert_eq!(
            timings("100:00:00.000 --> 100:00:01.000"),
            Some((360_000_000, 360_001_000))
        );
        for bad in [
            "00:11 --> 00:13.500",
            "0:11.000 --> 00:13.500",
            "00:60.000 --> 00:61.000",
            "00:11.00 --> 00:13.500",
            "1:00:11.000 --> 00:13.500",
            "00:11.000 -> 00:13.500",
            "00:11.000 --> ",
            "9999999:00:00.000 --> 00:00:01.000",
        ] {
            assert_eq!(timings(bad), None, "{bad}");
        }
    }

    #[test]
    fn errors_say_which_line() {
        assert!(error("WEBVTTX\n").contains("at line 1"));
        assert!(error("").contains("at line 1"));
        assert!(
            error("WEBVTT\n\n00:01.000 --> 00:02.000\nnobody\n")
                .contains("at line 3: the cue names no speaker")
        );
        assert!(
            error("WEBVTT\n\nid\ntext without timings\n")
                .contains("at line 4: expected cue timings")
        );
        assert!(
            error("WEBVTT\n\n00:01 --> 00:02.000\n<v A>x\n")
                .contains("at line 3: invalid cue timings")
        );
    }

    #[test]
    fn unterminated_input_ends_where_it_ends() {
        // A file cut mid-cue and mid-tag: what arrived is read, nothing more.
        assert_eq!(
            turns("WEBVTT\n\n00:01.000 --> 00:02.000\n<v Ann>Hello <i>there"),
            [("Ann".to_owned(), 1_000, "Hello there".to_owned())]
        );
        assert_eq!(
            turns(
                "WEBVTT\n\n00:01.000 --> 00:02.000\n<v Ann>Hello\n\n00:03.000 --> 00:04.000\n<v Bob"
            ),
            [("Ann".to_owned(), 1_000, "Hello".to_owned())]
        );
        // A cue ended by the next timing line rather than a blank line.
        assert_eq!(
            turns(
                "WEBVTT\n00:01.000 --> 00:02.000\n<v Ann>Hi\n00:03.000 --> 00:04.000\n<v Bob>Yo\n"
            ),
            [
                ("Ann".to_owned(), 1_000, "Hi".to_owned()),
                ("Bob".to_owned(), 3_000, "Yo".to_owned())
            ]
        );
        // Only `<` and no `>`: one tag to the end, read once.
        let text = format!(
            "WEBVTT\n\n00:01.000 --> 00:02.000\n<v Ann>x{}",
            "<".repeat(100_000)
        );
        assert_eq!(turns(&text), [("Ann".to_owned(), 1_000, "x".to_owned())]);
    }

    #[test]
    fn nul_becomes_the_replacement_character() {
        assert_eq!(
            turns("WEBVTT\n\n00:01.000 --> 00:02.000\n<v Ann>a\0b &#0;\n"),
            [("Ann".to_owned(), 1_000, "a\u{fffd}b \u{fffd}".to_owned())]
        );
    }
}
