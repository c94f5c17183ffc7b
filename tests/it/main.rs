//! One integration-test binary: the gateway over real sockets, against the
//! Salesforce emulator, on SQLite and PostgreSQL.

mod bad_input;
mod channels;
mod demo;
mod email_escalation;
mod idempotency;
mod idempotency_key;
mod operations;
mod outage;
mod resilience;
mod sandbox;
mod support;
