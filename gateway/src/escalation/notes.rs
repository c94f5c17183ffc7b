//! The `write_case_note` handler: one `case_notes` row becomes internal
//! (unpublished) CaseComments on its session's Case, exactly once.
//!
//! A note longer than a CaseComment holds (4,000 bytes) is cut into parts; each
//! part starts with a header line naming the note id and `k/N`, so a retry
//! after an attempt that may have committed reads the Case's comments and
//! writes only the parts that are missing.

use std::collections::HashSet;

use serde_json::{Value, json};

use salesforce::{ErrorClass, SalesforceId};

use super::case_writer::COLLECTION_BATCH;
use super::gate::CallOutcome;
use super::mapper::{COMMENT_MAX_BYTES, split_point};
use super::worker::{Outcome, Worker};
use crate::jobs::fence::Fence;
use crate::store::{ClaimedJob, NoteState, case_note};

/// Bytes kept for the header line of each part.
const HEADER_RESERVE: usize = 80;

/// The header line of part `index` of `total` of note `note_id`.
pub fn note_header(note_id: &str, index: usize, total: usize) -> String {
    format!("Handoff note {index}/{total} [{note_id}]\n")
}

/// `(index, total)` when `body` starts with a header of note `note_id`.
pub fn parse_note_header(body: &str, note_id: &str) -> Option<(usize, usize)> {
    let line = body.strip_prefix("Handoff note ")?.split('\n').next()?;
    let (counts, id) = line.split_once(" [")?;
    if id.strip_suffix(']')? != note_id {
        return None;
    }
    let (i, n) = counts.split_once('/')?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

/// The note's body as CaseComment bodies of at most 4,000 bytes, each with its
/// header; cut on character boundaries, preferring whitespace.
pub fn note_parts(note_id: &str, body: &str) -> Vec<String> {
    let budget = COMMENT_MAX_BYTES - HEADER_RESERVE;
    let mut chunks = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let cut = split_point(rest, budget);
        chunks.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if chunks.is_empty() {
        chunks.push("");
    }
    let total = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| format!("{}{chunk}", note_header(note_id, i + 1, total)))
        .collect()
}

impl Worker {
    pub(crate) async fn write_case_note(
        &self,
        job: &ClaimedJob,
        note_id: &str,
        fence: &Fence,
    ) -> (Outcome, CallOutcome) {
        let db_retry = |e: sea_orm::DbErr| Outcome::Retry {
            after: self.backoff(job.attempt, None),
            error: format!("database: {e}"),
        };
        let note = match self.store.case_note(note_id).await {
            Ok(Some(note)) => note,
            Ok(None) => {
                let error = format!("case note {note_id} does not exist");
                return (Outcome::Dead { error }, CallOutcome::NoCall);
            }
            Err(e) => return (db_retry(e), CallOutcome::NoCall),
        };
        if note.state == NoteState::Written.as_str() {
            return (Outcome::Done, CallOutcome::NoCall);
        }
        let case_id = match self.store.session(&note.session_id).await {
            Ok(Some(session)) => session
                .salesforce_case_id
                .as_deref()
                .and_then(|id| SalesforceId::parse(id).ok()),
            Ok(None) => {
                let error = "the note's session does not exist".to_string();
                return self.note_failed(&note, error).await;
            }
            Err(e) => return (db_retry(e), CallOutcome::NoCall),
        };
        let Some(case_id) = case_id else {
            // The Case is still being written (or its job is retrying).
            if job.attempt >= job.max_attempts {
                let error = "the session never got a Case".to_string();
                return self.note_failed(&note, error).await;
            }
            let outcome = Outcome::Retry {
                after: self.backoff(job.attempt, None),
                error: "waiting for the session's Case".into(),
            };
            return (outcome, CallOutcome::NoCall);
        };

        let parts = note_parts(&note.id, &note.body);
        let mut calls = 0u64;
        let result = if note.kind == crate::inbound::NOTE_KIND_EMAIL_MESSAGE {
            self.write_email_message_note(&note, &case_id, job.attempt > 1, fence, &mut calls)
                .await
        } else {
            self.write_note_parts(&note, &case_id, &parts, job.attempt > 1, fence, &mut calls)
                .await
        };
        match result {
            Ok(first_id) => {
                let event = (
                    "case_note.written",
                    json!({
                        "note_id": note.id,
                        "kind": note.kind,
                        "parts": parts.len(),
                        "salesforce_calls": calls,
                    }),
                );
                match self
                    .store
                    .finish_case_note(&note, NoteState::Written, first_id.as_deref(), None, event)
                    .await
                {
                    Ok(()) => (Outcome::Done, CallOutcome::Answered),
                    // Salesforce has it; the retry reconciles and writes nothing.
                    Err(e) => (db_retry(e), CallOutcome::Answered),
                }
            }
            Err(NoteError::Fenced) => (Outcome::Abandon, CallOutcome::NoCall),
            Err(NoteError::Salesforce(error)) => {
                let class = error.class();
                let message = error.to_string();
                tracing::warn!(
                    error_code = error.code().unwrap_or("none"),
                    class = ?class,
                    calls,
                    "Salesforce refused or failed a case note."
                );
                let after = self.backoff(job.attempt, error.retry_after());
                let outcome = match class {
                    ErrorClass::Permanent => return self.note_failed(&note, message).await,
                    ErrorClass::RateLimit => Outcome::Postpone {
                        after,
                        error: message,
                    },
                    ErrorClass::Retryable | ErrorClass::Auth => Outcome::Retry {
                        after,
                        error: message,
                    },
                };
                (outcome, CallOutcome::Failed(class))
            }
        }
    }

    /// Writes the parts not yet on the Case; the first part's comment id when
    /// this attempt wrote it.
    async fn write_note_parts(
        &self,
        note: &case_note::Model,
        case_id: &SalesforceId,
        parts: &[String],
        reconcile: bool,
        fence: &Fence,
        calls: &mut u64,
    ) -> Result<Option<String>, NoteError> {
        let mut have = HashSet::new();
        if reconcile {
            let query = format!(
                "SELECT Id, CommentBody FROM CaseComment WHERE ParentId = '{}'",
                case_id.as_str()
            );
            fence.check().map_err(|_| NoteError::Fenced)?;
            *calls += 1;
            let mut page = self.client.query(&query).await?;
            loop {
                for comment in &page.records {
                    if let Some((index, _)) = comment
                        .get("CommentBody")
                        .and_then(Value::as_str)
                        .and_then(|body| parse_note_header(body, &note.id))
                    {
                        have.insert(index);
                    }
                }
                match page.next_records_url.clone() {
                    Some(next) if !page.done => {
                        fence.check().map_err(|_| NoteError::Fenced)?;
                        *calls += 1;
                        page = self.client.query_more(&next).await?;
                    }
                    _ => break,
                }
            }
        }
        let missing: Vec<(usize, &String)> = parts
            .iter()
            .enumerate()
            .filter(|(i, _)| !have.contains(&(i + 1)))
            .collect();
        let mut first_id = None;
        for batch in missing.chunks(COLLECTION_BATCH) {
            let records: Vec<Value> = batch
                .iter()
                .map(|(_, body)| {
                    json!({
                        "attributes": {"type": "CaseComment"},
                        "ParentId": case_id.as_str(),
                        "CommentBody": body,
                        "IsPublished": false,
                    })
                })
                .collect();
            fence.check().map_err(|_| NoteError::Fenced)?;
            *calls += 1;
            let results = self.client.collections_create(records, true).await?;
            if let Some(failed) = results.iter().find(|r| !r.success) {
                return Err(NoteError::Salesforce(salesforce::Error::Api {
                    status: 400,
                    errors: failed.errors.clone(),
                    retry_after: None,
                }));
            }
            if batch.first().is_some_and(|(i, _)| *i == 0) {
                first_id = results
                    .first()
                    .and_then(|r| r.id.as_ref())
                    .map(|id| id.as_str().to_string());
            }
        }
        Ok(first_id)
    }

    /// An inbound email note written as an incoming EmailMessage (its body is
    /// an [`crate::inbound::email_message::InboundEmailRecord`]); on a retry,
    /// first looked for by `MessageIdentifier` on the Case.
    async fn write_email_message_note(
        &self,
        note: &case_note::Model,
        case_id: &SalesforceId,
        reconcile: bool,
        fence: &Fence,
        calls: &mut u64,
    ) -> Result<Option<String>, NoteError> {
        let record: crate::inbound::email_message::InboundEmailRecord =
            serde_json::from_str(&note.body).map_err(|e| {
                NoteError::Salesforce(salesforce::Error::Invalid(format!(
                    "the note is not an email record: {e}"
                )))
            })?;
        if reconcile {
            let identifier = salesforce::soql::quote(&record.message_identifier)
                .map_err(|e| NoteError::Salesforce(salesforce::Error::Invalid(e.to_string())))?;
            let query = format!(
                "SELECT Id FROM EmailMessage WHERE ParentId = '{}' AND MessageIdentifier = {identifier} LIMIT 1",
                case_id.as_str()
            );
            fence.check().map_err(|_| NoteError::Fenced)?;
            *calls += 1;
            let page = self.client.query(&query).await?;
            if let Some(id) = page
                .records
                .first()
                .and_then(|r| r.get("Id"))
                .and_then(Value::as_str)
            {
                return Ok(Some(id.to_string()));
            }
        }
        fence.check().map_err(|_| NoteError::Fenced)?;
        *calls += 1;
        let saved = self
            .client
            .create("EmailMessage", &record.sobject(case_id))
            .await?;
        Ok(saved.id.map(|id| id.as_str().to_string()))
    }

    async fn note_failed(&self, note: &case_note::Model, error: String) -> (Outcome, CallOutcome) {
        let event = (
            "case_note.failed",
            json!({"note_id": note.id, "kind": note.kind, "error": error}),
        );
        match self
            .store
            .finish_case_note(note, NoteState::Failed, None, Some(&error), event)
            .await
        {
            Ok(()) => (Outcome::Dead { error }, CallOutcome::NoCall),
            Err(e) => (
                Outcome::Retry {
                    after: std::time::Duration::from_secs(1),
                    error: format!("database: {e}"),
                },
                CallOutcome::NoCall,
            ),
        }
    }
}

#[derive(Debug)]
enum NoteError {
    Salesforce(salesforce::Error),
    Fenced,
}

impl From<salesforce::Error> for NoteError {
    fn from(e: salesforce::Error) -> Self {
        Self::Salesforce(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_note_is_one_part_with_its_header() {
        let parts = note_parts("note_1", "Customer replied by email\n\nThanks!");
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0],
            "Handoff note 1/1 [note_1]\nCustomer replied by email\n\nThanks!"
        );
        assert_eq!(parse_note_header(&parts[0], "note_1"), Some((1, 1)));
        assert_eq!(parse_note_header(&parts[0], "note_2"), None);
        assert_eq!(parse_note_header("Transcript 1/2\n…", "note_1"), None);
    }

    #[test]
    fn a_long_multibyte_note_is_cut_under_the_limit_losing_nothing() {
        let body = format!("{}{}", "é".repeat(3_000), "word ".repeat(900));
        let id = "note_0123456789abcdef0123456789abcdef";
        let parts = note_parts(id, &body);
        assert!(parts.len() >= 3, "{}", parts.len());
        let mut joined = String::new();
        for (i, part) in parts.iter().enumerate() {
            assert!(part.len() <= COMMENT_MAX_BYTES, "part {i}: {}", part.len());
            assert_eq!(parse_note_header(part, id), Some((i + 1, parts.len())));
            joined.push_str(part.split_once('\n').unwrap().1);
        }
        assert_eq!(joined, body);
    }
}
