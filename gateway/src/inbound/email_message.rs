//! `append_as = "email_message"`: an inbound customer email written on the
//! Case as an incoming EmailMessage (`Incoming = true`, Status `0` New), so it
//! shows in the Case's email feed and Salesforce's header-based threading sees
//! its `MessageIdentifier`. The `write_case_note` job writes it (note kind
//! [`super::NOTE_KIND_EMAIL_MESSAGE`], the note body this JSON record); a retry
//! first looks for the record by `MessageIdentifier` on the Case.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use channels::email::InboundEmail;
use salesforce::SalesforceId;

/// Characters kept of `TextBody` (Salesforce's limit is 32,000).
pub const MAX_TEXT_BODY_CHARS: usize = 32_000;

/// The EmailMessage fields a note carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundEmailRecord {
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub to_address: Option<String>,
    pub subject: Option<String>,
    /// The whole text (quoted history included: it is the email itself).
    pub text_body: String,
    /// `<id>` of the customer's message, or the note id when it had none.
    pub message_identifier: String,
    /// `<id>` of the thread's first message (`References`' first id).
    pub thread_identifier: Option<String>,
}

impl InboundEmailRecord {
    pub fn from_email(email: &InboundEmail, note_id: &str) -> Self {
        let text = if email.full_text.trim().is_empty() {
            email.text.clone()
        } else {
            email.full_text.clone()
        };
        Self {
            from_address: email.from.as_ref().map(|a| a.as_str().to_owned()),
            from_name: email.from_name.clone(),
            to_address: email.to.first().cloned(),
            subject: email.subject.clone(),
            text_body: text.chars().take(MAX_TEXT_BODY_CHARS).collect(),
            message_identifier: match &email.message_id {
                Some(id) => format!("<{id}>"),
                None => format!("<{note_id}@handoff.invalid>"),
            },
            thread_identifier: email
                .references
                .first()
                .or(email.in_reply_to.first())
                .map(|id| format!("<{id}>")),
        }
    }

    /// The sObject record on `case_id`.
    pub fn sobject(&self, case_id: &SalesforceId) -> Value {
        json!({
            "ParentId": case_id.as_str(),
            "Incoming": true,
            "Status": "0",
            "FromAddress": self.from_address,
            "FromName": self.from_name,
            "ToAddress": self.to_address,
            "Subject": self.subject,
            "TextBody": self.text_body,
            "MessageIdentifier": self.message_identifier,
            "ThreadIdentifier": self.thread_identifier,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_carries_the_thread_ids_in_brackets() {
        let email = channels::email::parse_inbound(
            b"From: Jane <jane@example.com>\r\nTo: support@acme.example\r\nSubject: Re: x\r\n\
Message-ID: <r@x>\r\nReferences: <a@x> <b@x>\r\n\r\nHi\r\n",
        )
        .unwrap();
        let record = InboundEmailRecord::from_email(&email, "note_1");
        assert_eq!(record.message_identifier, "<r@x>");
        assert_eq!(record.thread_identifier.as_deref(), Some("<a@x>"));
        assert_eq!(record.to_address.as_deref(), Some("support@acme.example"));
        let case = SalesforceId::parse("500000000000001").expect("a 15-character id");
        let sobject = record.sobject(&case);
        assert_eq!(sobject["Incoming"], true);
        assert_eq!(sobject["Status"], "0");
    }
}
