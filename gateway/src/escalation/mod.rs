//! The escalation engine: parsing requests, mapping conversations to Salesforce,
//! and the worker that creates Cases.

pub mod case_writer;
pub mod gate;
pub mod mapper;
pub mod request;
pub mod route;
pub mod worker;

/// The job kind that turns an accepted escalation into a Case.
pub const CREATE_CASE_JOB: &str = "create_case";
