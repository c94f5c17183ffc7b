//! Checks shared by every channel's `normalize`.

use crate::{ChannelError, ChannelKind, Conversation, Customer, EscalationInput, Turn};

/// A light BCP-47 check: subtags of 1–8 ASCII letters/digits joined by `-`, the first of
/// 2–8 letters (or `i`/`x` for the grandfathered and private-use forms).
pub(crate) fn language(tag: &str) -> Result<String, ChannelError> {
    let mut subtags = tag.split('-');
    let first = subtags.next().unwrap_or_default();
    let first_ok = ((2..=8).contains(&first.len())
        && first.chars().all(|c| c.is_ascii_alphabetic()))
        || first.eq_ignore_ascii_case("i")
        || first.eq_ignore_ascii_case("x");
    let rest_ok =
        subtags.all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()));
    if first_ok && rest_ok && !tag.ends_with('-') {
        Ok(tag.to_owned())
    } else {
        Err(ChannelError::InvalidLanguage)
    }
}

/// A transcript must have turns, and every turn text. Texts are trimmed.
pub(crate) fn transcript(turns: Vec<Turn>) -> Result<Vec<Turn>, ChannelError> {
    if turns.is_empty() {
        return Err(ChannelError::EmptyTranscript);
    }
    turns
        .into_iter()
        .enumerate()
        .map(|(index, turn)| {
            let text = turn.text.trim();
            if text.is_empty() {
                Err(ChannelError::EmptyTurnText { index })
            } else {
                Ok(Turn {
                    text: text.to_owned(),
                    ..turn
                })
            }
        })
        .collect()
}

/// Trims the customer's free-text fields; blank becomes absent.
pub(crate) fn customer(customer: Customer) -> Customer {
    Customer {
        name: non_blank(customer.name),
        email: customer.email,
        phone: non_blank(customer.phone),
    }
}

pub(crate) fn non_blank(value: Option<String>) -> Option<String> {
    value.and_then(|v| {
        let v = v.trim();
        (!v.is_empty()).then(|| v.to_owned())
    })
}

/// Refuses the voice-only fields (`voice_transcript`, `speakers`, `voice_mode`) on a channel
/// that is not voice.
pub(crate) fn refuse_voice_fields(
    kind: &ChannelKind,
    input: &EscalationInput,
) -> Result<(), ChannelError> {
    let field = if input.voice_transcript.is_some() {
        "voice_transcript"
    } else if input.speakers.is_some() {
        "speakers"
    } else if input.voice_mode.is_some() {
        "voice_mode"
    } else {
        return Ok(());
    };
    Err(ChannelError::VoiceNotSupported {
        channel: kind.to_string(),
        field,
    })
}

/// The conversation of a channel that takes the transcript the AI product kept (every channel
/// but email): `raw_email` and the voice-only fields are refused, the language, turns and
/// customer are checked.
pub(crate) fn transcript_conversation(
    kind: &ChannelKind,
    input: EscalationInput,
) -> Result<Conversation, ChannelError> {
    if input.raw_email.is_some() {
        return Err(ChannelError::RawEmailNotSupported {
            channel: kind.to_string(),
        });
    }
    refuse_voice_fields(kind, &input)?;
    let language = language(&input.language)?;
    let turns = transcript(input.transcript.ok_or(ChannelError::MissingTranscript)?)?;
    Ok(Conversation {
        subject: non_blank(input.subject),
        customer: customer(input.customer),
        language,
        turns,
        thread: None,
        voice: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in [
            "en",
            "pt-BR",
            "zh-Hant-TW",
            "de-CH-1901",
            "x-klingon",
            "fil",
        ] {
            assert_eq!(language(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "e",
            "en_US",
            "en-",
            "-en",
            "en--US",
            "englishlanguage-x",
            "en-toolongsubtag",
            "12",
        ] {
            assert_eq!(language(bad), Err(ChannelError::InvalidLanguage), "{bad:?}");
        }
    }

    #[test]
    fn customer_blank_fields_become_absent() {
        let c = customer(Customer {
            name: Some("  ".into()),
            email: None,
            phone: Some(" +15551234567 ".into()),
        });
        assert_eq!(c.name, None);
        assert_eq!(c.phone.as_deref(), Some("+15551234567"));
    }
}
