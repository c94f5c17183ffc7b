//! The durable job queue's vocabulary: what a job is ([`JobKind`], with its typed
//! payload), where it stands ([`JobState`]), and which pool of permits it runs
//! under ([`JobClass`]). The worker (`escalation/worker.rs`) claims jobs and
//! runs each kind's handler; `store/jobs.rs` keeps them.
//!
//! A new kind: add a variant here (its payload is the variant's fields), give it
//! a wire name in [`JobKind::name`] and a class in [`JobKind::class`], and a
//! handler in `Worker::run_kind`. The compiler lists every match to extend.

pub mod clock;
pub mod fence;

use serde::{Deserialize, Serialize};

/// One kind of work, with its payload. Stored as the wire name in `jobs.kind`
/// and this value as JSON in `jobs.payload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobKind {
    /// Write the session's Case and transcript to Salesforce.
    CreateCase { session_id: String },
    /// Send one outbox row to the customer through its channel.
    DeliverMessage { delivery_id: String },
    /// Open the session's live conversation (MIAW): token, conversation, then
    /// the messages to the rep follow as `send_to_rep`.
    OpenConversation { session_id: String },
    /// Send the session's queued messages to the rep, in order.
    SendToRep { session_id: String },
    /// End the session's live conversation on Salesforce's side.
    EndConversation { session_id: String },
    /// Write one `case_notes` row on its session's Case as internal comments.
    WriteCaseNote { note_id: String },
    /// Test-only: an attempt that panics, to prove a panic fails one attempt
    /// and nothing else.
    #[cfg(test)]
    Panic { session_id: String },
}

/// Which permits a job's attempt holds while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobClass {
    /// Calls Salesforce: bounded by `salesforce.max_concurrency`, gated by the breaker.
    Salesforce,
    /// Calls a channel provider: bounded by `worker.concurrency`, not gated.
    Channel,
}

/// Why a stored job cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UndecodableJob {
    #[error("unknown job kind '{0}'")]
    UnknownKind(String),
    #[error("the job's stored payload does not parse as a '{kind}' job: {error}")]
    BadPayload { kind: String, error: String },
}

impl JobKind {
    pub const CREATE_CASE: &'static str = "create_case";
    pub const DELIVER_MESSAGE: &'static str = "deliver_message";
    pub const OPEN_CONVERSATION: &'static str = "open_conversation";
    pub const SEND_TO_REP: &'static str = "send_to_rep";
    pub const END_CONVERSATION: &'static str = "end_conversation";
    pub const WRITE_CASE_NOTE: &'static str = "write_case_note";

    /// The wire names of the kinds that call Salesforce.
    pub fn salesforce_kinds() -> &'static [&'static str] {
        #[cfg(test)]
        {
            &[JobKind::CREATE_CASE, JobKind::WRITE_CASE_NOTE, "panic"]
        }
        #[cfg(not(test))]
        {
            &[JobKind::CREATE_CASE, JobKind::WRITE_CASE_NOTE]
        }
    }

    /// The wire name stored in `jobs.kind`.
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::CreateCase { .. } => JobKind::CREATE_CASE,
            JobKind::DeliverMessage { .. } => JobKind::DELIVER_MESSAGE,
            JobKind::OpenConversation { .. } => JobKind::OPEN_CONVERSATION,
            JobKind::SendToRep { .. } => JobKind::SEND_TO_REP,
            JobKind::EndConversation { .. } => JobKind::END_CONVERSATION,
            JobKind::WriteCaseNote { .. } => JobKind::WRITE_CASE_NOTE,
            #[cfg(test)]
            JobKind::Panic { .. } => "panic",
        }
    }

    pub fn class(&self) -> JobClass {
        match self {
            JobKind::CreateCase { .. } | JobKind::WriteCaseNote { .. } => JobClass::Salesforce,
            // Live messaging calls the MIAW API, not the REST API the breaker
            // watches: its jobs share the provider pool.
            JobKind::DeliverMessage { .. }
            | JobKind::OpenConversation { .. }
            | JobKind::SendToRep { .. }
            | JobKind::EndConversation { .. } => JobClass::Channel,
            #[cfg(test)]
            JobKind::Panic { .. } => JobClass::Salesforce,
        }
    }

    /// The JSON stored in `jobs.payload`.
    pub fn payload_json(&self) -> String {
        serde_json::to_string(self).expect("a job kind serializes")
    }

    /// Decodes a stored job. A `create_case` row written without a payload
    /// (every row before the payload column existed, and the accept path, which
    /// needs nothing but the row's `session_id`) is a `CreateCase` for that session.
    pub fn decode(
        kind: &str,
        session_id: &str,
        payload: Option<&str>,
    ) -> Result<JobKind, UndecodableJob> {
        let known = [
            JobKind::CREATE_CASE,
            JobKind::DELIVER_MESSAGE,
            JobKind::OPEN_CONVERSATION,
            JobKind::SEND_TO_REP,
            JobKind::END_CONVERSATION,
            JobKind::WRITE_CASE_NOTE,
        ]
        .contains(&kind)
            || JobKind::salesforce_kinds().contains(&kind);
        if !known {
            return Err(UndecodableJob::UnknownKind(kind.to_string()));
        }
        let bad = |error: String| UndecodableJob::BadPayload {
            kind: kind.to_string(),
            error,
        };
        match payload {
            None if kind == JobKind::CREATE_CASE => Ok(JobKind::CreateCase {
                session_id: session_id.to_string(),
            }),
            None => Err(bad("the payload is missing".into())),
            Some(json) => {
                let decoded: JobKind =
                    serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
                if decoded.name() != kind {
                    return Err(bad(format!("the payload is a '{}' job", decoded.name())));
                }
                Ok(decoded)
            }
        }
    }
}

/// Where a job stands. Stored as its wire name in `jobs.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Queued,
        JobState::Running,
        JobState::Done,
        JobState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }
}

impl std::str::FromStr for JobState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state '{s}'; valid: queued, running, done, dead"))
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows queued before typed kinds existed carry only `kind = 'create_case'`
    /// and the session id; they must still run after the upgrade.
    #[test]
    fn a_create_case_row_without_payload_still_decodes() {
        assert_eq!(
            JobKind::decode("create_case", "s-1", None).unwrap(),
            JobKind::CreateCase {
                session_id: "s-1".into()
            }
        );
    }

    #[test]
    fn payloads_round_trip_and_must_match_the_kind() {
        let job = JobKind::DeliverMessage {
            delivery_id: "dlv_1".into(),
        };
        let json = job.payload_json();
        assert_eq!(json, r#"{"kind":"deliver_message","delivery_id":"dlv_1"}"#);
        assert_eq!(
            JobKind::decode("deliver_message", "s-1", Some(&json)).unwrap(),
            job
        );
        assert!(matches!(
            JobKind::decode("create_case", "s-1", Some(&json)),
            Err(UndecodableJob::BadPayload { .. })
        ));
        assert!(matches!(
            JobKind::decode("deliver_message", "s-1", None),
            Err(UndecodableJob::BadPayload { .. })
        ));
        assert_eq!(
            JobKind::decode("fax", "s-1", None).unwrap_err().to_string(),
            "unknown job kind 'fax'"
        );
    }
}
