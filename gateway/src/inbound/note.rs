//! The text of the Case note an inbound customer email becomes: plain text,
//! every header value on one line (the parser took control characters out),
//! the customer's new text bounded.

use std::fmt::Write as _;

use channels::email::InboundEmail;

/// Bytes of the customer's text put in a note (about eight CaseComments); the
/// rest is cut on a character boundary and the cut said.
pub const MAX_NOTE_TEXT_BYTES: usize = 32 * 1024;

/// `Customer replied by email`, who, when, the subject, the new text (the
/// whole text when stripping left nothing), and the attachments listed.
pub fn note_body(email: &InboundEmail) -> String {
    let mut body = String::from("Customer replied by email\n");
    let from = email.from.as_ref().map(channels::EmailAddress::as_str);
    match (&email.from_name, from) {
        (Some(name), Some(address)) => {
            let _ = writeln!(body, "From: {name} <{address}>");
        }
        (Some(name), None) => {
            let _ = writeln!(body, "From: {name}");
        }
        (None, Some(address)) => {
            let _ = writeln!(body, "From: {address}");
        }
        (None, None) => {}
    }
    if let Some(date) = email.date {
        let _ = writeln!(
            body,
            "Date: {}",
            date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    if let Some(subject) = &email.subject {
        let _ = writeln!(body, "Subject: {subject}");
    }
    body.push('\n');
    let text = if email.text.trim().is_empty() {
        email.full_text.trim()
    } else {
        email.text.trim()
    };
    if text.is_empty() {
        body.push_str("(the email has no text)\n");
    } else if text.len() > MAX_NOTE_TEXT_BYTES {
        let mut cut = MAX_NOTE_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        body.push_str(&text[..cut]);
        let _ = writeln!(
            body,
            "\n[… {} more bytes not shown; the whole email is with the mail provider]",
            text.len() - cut
        );
    } else {
        body.push_str(text);
        body.push('\n');
    }
    if !email.attachments.is_empty() {
        body.push_str("\nAttachments (listed only; Handoff does not store them):\n");
        for attachment in &email.attachments {
            let _ = writeln!(
                body,
                "- {} ({}, {} bytes)",
                attachment.name.as_deref().unwrap_or("(unnamed)"),
                attachment.content_type,
                attachment.size
            );
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_names_sender_subject_text_and_attachments() {
        let raw = "From: Jane <jane@example.com>\r\nSubject: Re: Refund\r\n\
Date: Wed, 2 Dec 2026 10:15:00 +0000\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nThanks!\r\n\r\nOn Tue, Dec 1, 2026 at 9:12 AM A <a@acme.example> wrote:\r\n> old\r\n\
--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n\r\nxx\r\n--b--\r\n";
        let email = channels::email::parse_inbound(raw.as_bytes()).unwrap();
        assert_eq!(
            note_body(&email),
            "Customer replied by email\nFrom: Jane <jane@example.com>\nDate: 2026-12-02T10:15:00Z\n\
Subject: Re: Refund\n\nThanks!\n\nAttachments (listed only; Handoff does not store them):\n\
- r.pdf (application/pdf, 2 bytes)\n"
        );
    }

    #[test]
    fn a_huge_text_is_cut_on_a_character_boundary() {
        let raw = format!("From: a@example.com\r\n\r\n{}\r\n", "é".repeat(40_000));
        let email = channels::email::parse_inbound(raw.as_bytes()).unwrap();
        let body = note_body(&email);
        assert!(body.len() < MAX_NOTE_TEXT_BYTES + 200);
        assert!(
            body.contains("[… 47232 more bytes not shown"),
            "{}",
            body.len()
        );
    }
}
