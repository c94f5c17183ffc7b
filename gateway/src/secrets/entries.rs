//! Key entries, `id:base64(32 bytes)`, as written in `[secrets] keys` and `keys_file`.
//!
//! Errors name the setting and the entry's position, never the entry itself: a mistyped
//! entry may be mostly key material.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretBox};

use super::SecretsError;

/// The longest key id (the `key_id` columns hold 64 characters).
pub const MAX_KEY_ID_LEN: usize = 64;
/// At most this many keys may be configured.
pub const MAX_KEYS: usize = 64;
/// A keys file larger than this is refused before it is parsed.
pub const MAX_KEYS_FILE_BYTES: u64 = 64 * 1024;

/// One parsed entry: its id and its 32 key bytes (wiped when dropped).
pub(super) struct Entry {
    pub id: String,
    pub key: SecretBox<[u8; 32]>,
}

/// Whether `id` is 1–64 characters of `A-Za-z0-9._-`.
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Parses the entries of `text` (separated by commas, spaces or newlines) into `out`.
/// `setting` names where they came from, for the errors. `comments`: `#` starts a comment
/// that runs to the end of the line (the keys file).
pub(super) fn parse_into(
    text: &str,
    setting: &str,
    comments: bool,
    out: &mut Vec<Entry>,
) -> Result<(), SecretsError> {
    let mut position = 0usize;
    for line in text.lines() {
        let line = match (comments, line.find('#')) {
            (true, Some(at)) => &line[..at],
            _ => line,
        };
        for raw in line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            position += 1;
            let bad = |problem: String| SecretsError::Config {
                setting: setting.to_owned(),
                problem: format!("entry {position}: {problem}"),
            };
            if out.len() >= MAX_KEYS {
                return Err(bad(format!(
                    "more than {MAX_KEYS} keys are configured; remove the ones nothing is sealed with any more (`handoff keys status` shows them)"
                )));
            }
            let Some((id, encoded)) = raw.split_once(':') else {
                return Err(bad(
                    "is not `id:base64-key` (the form `handoff keys generate` prints)".into(),
                ));
            };
            if !valid_key_id(id) {
                return Err(bad(format!(
                    "the key id must be 1–{MAX_KEY_ID_LEN} characters of A-Z, a-z, 0-9, '.', '_' or '-'"
                )));
            }
            let bytes = SecretBox::new(Box::new(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| {
                        bad(format!(
                            "the key of {id:?} is not standard base64 (as `handoff keys generate` prints it)"
                        ))
                    })?,
            ));
            let key: [u8; 32] = bytes.expose_secret().as_slice().try_into().map_err(|_| {
                bad(format!(
                    "the key of {id:?} is {} bytes; AES-256 needs exactly 32 (run `handoff keys generate` for a new one)",
                    bytes.expose_secret().len()
                ))
            })?;
            if let Some(earlier) = out.iter().find(|e| e.id.eq_ignore_ascii_case(id)) {
                return Err(bad(if earlier.id == id {
                    format!("the key id {id:?} is configured twice")
                } else {
                    format!(
                        "the key ids {:?} and {id:?} differ only in letter case; ids must differ in more than that",
                        earlier.id
                    )
                }));
            }
            out.push(Entry {
                id: id.to_owned(),
                key: SecretBox::new(Box::new(key)),
            });
        }
    }
    Ok(())
}
