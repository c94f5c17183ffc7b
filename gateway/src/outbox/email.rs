//! Email deliveries: the thread context a reply needs to land under the customer's own email
//! (subject, `In-Reply-To`, `References`, the session's reply token), and the note a rep sees
//! on the Case when a reply could not be delivered.

use channels::{EmailContext, EmailThread};
use sea_orm::DbErr;

use crate::escalation::request::EscalationPayload;
use crate::escalation::worker::Worker;
use crate::store::{EmailDirection, case_note_id, delivery, session};

/// The `case_notes.kind` of a failed email delivery.
pub const DELIVERY_FAILED_NOTE: &str = "delivery_failed";
/// Characters of the undelivered reply quoted in the note, so the rep knows which one it was.
const NOTE_EXCERPT_CHARS: usize = 200;
/// RFC 4648 base32 alphabet, lower case.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new reply token: 16 random bytes as 26 characters of lower-case RFC 4648 base32 (no
/// padding).
pub fn new_reply_token() -> String {
    base32(&rand::random::<[u8; 16]>())
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

impl Worker {
    /// The thread context of an email delivery for its session: the subject; `In-Reply-To` =
    /// the customer's newest recorded message, else the escalated thread's last message;
    /// `References` = the escalated thread's ancestry and last message, then the recorded
    /// thread in order; and the session's reply token (made and stored on first need).
    pub(crate) async fn email_context(&self, row: &delivery::Model) -> Result<EmailContext, DbErr> {
        let Some(session) = self.store.session(&row.session_id).await? else {
            return Ok(EmailContext::default());
        };
        let payload = serde_json::from_str::<EscalationPayload>(&session.payload).ok();
        let thread = payload
            .as_ref()
            .and_then(|p| p.conversation.thread.as_ref());
        let recorded = self.store.email_thread(&session.id).await?;
        let newest_in = recorded
            .iter()
            .rev()
            .find(|m| m.direction == EmailDirection::In.as_str())
            .map(|m| m.message_id.clone());
        let mut references: Vec<String> = Vec::new();
        let mut push = |id: &str| {
            if !references.iter().any(|seen| seen == id) {
                references.push(id.to_owned());
            }
        };
        if let Some(thread) = thread {
            thread_ancestry(thread).iter().for_each(|id| push(id));
            push(&thread.message_id);
        }
        recorded.iter().for_each(|m| push(&m.message_id));
        let in_reply_to = newest_in.or_else(|| thread.map(|t| t.message_id.clone()));
        let reply_token = self
            .store
            .ensure_reply_token(&session.id, &new_reply_token())
            .await?;
        Ok(EmailContext {
            subject: subject(&session, payload.as_ref()),
            in_reply_to,
            references,
            reply_token,
        })
    }

    /// The note for the rep when an email reply ended failed on a session that goes to a
    /// Case: which reply (its first words) and why, without the customer's address.
    pub(crate) fn delivery_failed_note(
        &self,
        session: &session::Model,
        row: &delivery::Model,
        error: &str,
    ) -> Option<(String, String)> {
        if session.route != "case" {
            return None;
        }
        let excerpt: String = row.text.chars().take(NOTE_EXCERPT_CHARS).collect();
        let ellipsis = if row.text.chars().count() > NOTE_EXCERPT_CHARS {
            "…"
        } else {
            ""
        };
        let body = format!(
            "Handoff could not deliver this reply to the customer by email: {error}.\n\
             The customer has not been told. Reply again later, or reach them another way.\n\n\
             The reply began:\n{excerpt}{ellipsis}"
        );
        let note_id = case_note_id(&session.id, &format!("{DELIVERY_FAILED_NOTE}:{}", row.id));
        Some((note_id, body))
    }
}

/// What the customer's message referred to: its `References`, or its `In-Reply-To` when it
/// had none (RFC 5322 §3.6.4).
fn thread_ancestry(thread: &EmailThread) -> &[String] {
    if thread.references.is_empty() {
        &thread.in_reply_to
    } else {
        &thread.references
    }
}

/// The session's subject, else the escalated conversation's.
fn subject(session: &session::Model, payload: Option<&EscalationPayload>) -> Option<String> {
    session
        .subject
        .clone()
        .or_else(|| payload.and_then(|p| p.conversation.subject.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_follows_rfc_4648() {
        // RFC 4648 §10 test vectors, lower case, no padding.
        for (input, expected) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn reply_tokens_are_26_base32_characters_and_differ() {
        let a = new_reply_token();
        assert_eq!(a.len(), 26);
        assert!(a.bytes().all(|b| BASE32.contains(&b)), "{a}");
        assert_ne!(a, new_reply_token());
    }
}
