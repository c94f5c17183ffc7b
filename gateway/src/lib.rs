#![forbid(unsafe_code)]
//! Handoff: hands AI-bot support conversations to human reps in Salesforce.
//!
//! Start here: [`app::Application`] builds the gateway from a [`config::Config`]
//! and a listener; `main.rs` and the tests start it the same way.

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod console;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod escalation;
pub mod http;
pub mod inbound;
pub mod jobs;
pub mod live;
pub mod mailsink;
pub mod metrics;
pub mod outbox;
pub mod replies;
pub mod sandbox_channels;
pub mod secrets;
pub mod store;
pub mod telemetry;

pub use app::{Application, RunningApp, StartError};
pub use config::Config;
