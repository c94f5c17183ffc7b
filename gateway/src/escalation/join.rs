//! Case append (`case.append_to_open_case`): a new Case-path escalation from a
//! customer whose earlier Handoff Case is still open is written on that Case —
//! the new summary and transcript as a follow-up note — instead of opening
//! another Case.
//!
//! One SOQL query decides (`IsClosed`, and `Status = 'Closed'` for orgs or
//! emulators that do not derive `IsClosed`); a Case that is closed or gone
//! means a new Case, as without the setting. The join, the note and the job's
//! completion are one transaction; the note has a stable id, so a retried job
//! writes it once. Not covered: an attempt that created a new Case and failed
//! before recording it, followed by a retry that finds the earlier Case open
//! again (reopened in between), joins, and leaves the new Case unused.

use serde_json::{Value, json};

use salesforce::{ErrorClass, SalesforceId};

use super::gate::CallOutcome;
use super::mapper;
use super::request::EscalationPayload;
use super::worker::{Outcome, Worker};
use crate::jobs::fence::Fence;
use crate::store::{CaseRecord, ClaimedJob, JoinedCase, case_note_id, session};

/// The open Case a session joins.
pub(crate) struct OpenCase {
    earlier_session_id: String,
    case_id: SalesforceId,
    case_number: Option<String>,
}

impl Worker {
    /// The open Case of an earlier session of this customer, if the setting is
    /// on and there is one. `Err` ends the attempt (retry, postpone).
    pub(crate) async fn open_case_to_join(
        &self,
        job: &ClaimedJob,
        session: &session::Model,
        fence: &Fence,
    ) -> Result<Option<OpenCase>, (Outcome, CallOutcome)> {
        if !self.config.case.append_to_open_case || session.route != "case" {
            return Ok(None);
        }
        let earlier = match self.store.earlier_case_session(session).await {
            Ok(Some(earlier)) => earlier,
            Ok(None) => return Ok(None),
            Err(e) => {
                let outcome = Outcome::Retry {
                    after: self.backoff(job.attempt, None),
                    error: format!("database: {e}"),
                };
                return Err((outcome, CallOutcome::NoCall));
            }
        };
        let Some(case_id) = earlier
            .salesforce_case_id
            .as_deref()
            .and_then(|id| SalesforceId::parse(id).ok())
        else {
            return Ok(None);
        };
        if fence.check().is_err() {
            return Err((Outcome::Abandon, CallOutcome::NoCall));
        }
        let query = format!(
            "SELECT Id, CaseNumber, IsClosed, Status FROM Case WHERE Id = '{}'",
            case_id.as_str()
        );
        let page = match self.client.query(&query).await {
            Ok(page) => page,
            Err(error) => {
                let class = error.class();
                tracing::warn!(
                    error_code = error.code().unwrap_or("none"),
                    class = ?class,
                    "Could not check whether the customer's earlier Case is open."
                );
                let message = error.to_string();
                let after = self.backoff(job.attempt, error.retry_after());
                return match class {
                    // Salesforce will not answer this query: make a new Case.
                    ErrorClass::Permanent => Ok(None),
                    ErrorClass::RateLimit => Err((
                        Outcome::Postpone {
                            after,
                            error: message,
                        },
                        CallOutcome::Failed(class),
                    )),
                    ErrorClass::Retryable | ErrorClass::Auth => Err((
                        Outcome::Retry {
                            after,
                            error: message,
                        },
                        CallOutcome::Failed(class),
                    )),
                };
            }
        };
        let Some(record) = page.records.first() else {
            return Ok(None);
        };
        let closed = record.get("IsClosed").and_then(Value::as_bool) == Some(true)
            || record.get("Status").and_then(Value::as_str) == Some("Closed");
        if closed {
            return Ok(None);
        }
        Ok(Some(OpenCase {
            earlier_session_id: earlier.id,
            case_id,
            case_number: record
                .get("CaseNumber")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or(earlier.salesforce_case_number),
        }))
    }

    /// Records the join: the session holds the earlier Case, and its summary
    /// and transcript go to that Case as an internal note.
    pub(crate) async fn join_case(
        &self,
        job: &ClaimedJob,
        session: &session::Model,
        payload: &EscalationPayload,
        open: OpenCase,
    ) -> (Outcome, CallOutcome) {
        let note_id = case_note_id(&session.id, "joined_case");
        let body = follow_up_body(&session.id, payload);
        let data = json!({
            "case_id": open.case_id.as_str(),
            "case_number": open.case_number,
            "joined_session_id": open.earlier_session_id,
            "note_id": note_id,
            "salesforce_calls": 1,
            "attempt": job.attempt,
        });
        let record = CaseRecord {
            session_id: &session.id,
            case_id: &open.case_id,
            case_number: open.case_number.as_deref(),
            comments: 0,
            salesforce_calls: 1,
            event_data: data,
            joined: Some(JoinedCase {
                earlier_session_id: &open.earlier_session_id,
                note_id: &note_id,
                note_body: &body,
            }),
        };
        let notice = self.case_notice(session, open.case_number.as_deref());
        match self
            .store
            .finish_case_job(
                job,
                &self.id,
                &record,
                &notice,
                self.config.worker.max_attempts,
            )
            .await
        {
            Ok(finished) => {
                if finished {
                    tracing::info!(case_id = %open.case_id, "Escalation joined the customer's open Case.");
                } else {
                    tracing::warn!("Lost the job's lease before recording the join.");
                }
                self.wake.notify_one();
                (Outcome::Finished, CallOutcome::Answered)
            }
            Err(e) => (
                Outcome::Retry {
                    after: self.backoff(job.attempt, None),
                    error: format!("database: {e}"),
                },
                CallOutcome::Answered,
            ),
        }
    }
}

/// "Follow-up escalation <session id>", the summary, then the transcript as
/// the Case's own transcript comments render it.
pub fn follow_up_body(session_id: &str, payload: &EscalationPayload) -> String {
    let mut body = format!("Follow-up escalation {session_id}\n");
    if let Some(subject) = &payload.conversation.subject {
        body.push_str(&format!("Subject: {subject}\n"));
    }
    body.push('\n');
    if let Some(summary) = payload.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        body.push_str("Summary:\n");
        body.push_str(summary.trim());
        body.push_str("\n\n");
    }
    body.push_str("Transcript:\n");
    body.push_str(&mapper::render_transcript(&payload.conversation.turns));
    body
}
