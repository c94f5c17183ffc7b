//! The escalation engine: parsing requests, mapping conversations to Salesforce,
//! and the worker that creates Cases.

pub mod case_writer;
pub mod gate;
pub mod join;
pub mod mapper;
pub mod notes;
pub mod request;
pub mod route;
pub mod voice;
pub mod worker;

/// The job kind that turns an accepted escalation into a Case (the accept path
/// stores it without a payload: the job's `session_id` is the payload).
pub const CREATE_CASE_JOB: &str = crate::jobs::JobKind::CREATE_CASE;
