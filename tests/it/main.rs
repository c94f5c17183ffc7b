//! One integration-test binary: the gateway over real sockets, against the
//! Salesforce emulator, on SQLite and PostgreSQL.

mod bad_input;
mod bridge_round_trip;
mod case_join;
mod case_notes;
mod case_replies;
mod case_round_trip;
mod channel_inbound;
mod channel_outbox;
mod channels;
mod console_browser;
mod console_core;
mod data;
mod demo;
mod deploy;
mod doctor;
mod email_delivery;
mod email_escalation;
mod email_inbound;
mod hardening;
mod idempotency;
mod idempotency_key;
mod jobs;
mod live;
mod operations;
mod outage;
mod outbox;
mod resilience;
mod sandbox;
mod sms_e2e;
mod support;
mod voice;
mod voice_e2e;
mod whatsapp_e2e;
