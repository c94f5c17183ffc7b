//! One integration-test binary: the gateway over real sockets, against the
//! Salesforce emulator, on SQLite and PostgreSQL.

mod bad_input;
mod demo;
mod email_escalation;
mod idempotency;
mod resilience;
mod sandbox;
mod support;
