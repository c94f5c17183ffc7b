#![forbid(unsafe_code)]
//! A local Salesforce for tests, demos and development: OAuth token endpoint and the
//! web-server flow (login page, PKCE, userinfo), REST sObjects, SOQL query with paging,
//! composite, sObject Collections, limits, configured flows, Messaging for In-App and Web
//! (custom-client REST + SSE, with a rep console), rep replies on Cases with the webhook
//! Handoff's Apex sends (`cases`), and runtime fault injection. See `docs/emulator.md`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sf = sf_emulator::spawn(sf_emulator::EmulatorConfig::default(), listener).await?;
//! println!("Salesforce at {}", sf.url());
//! sf.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cases;
pub mod config;
pub mod faults;
pub mod ids;
pub mod miaw;
pub mod schema;
pub mod soql;
pub mod stats;

mod admin;
mod dml;
mod drain;
mod error;
mod identity;
mod oauth;
mod oauth_authorize;
mod oauth_codes;
mod oauth_login_page;
mod oauth_userinfo;
mod rest;
mod server;
mod soap;
mod store;
mod tls;

pub use cases::CaseWebhookDelivery;
pub use config::{
    ApiVersions, CaseWebhookConfig, CaseWebhookJwt, ConnectedApp, CustomParameter, EmulatorConfig,
    FlowConfig, IdentityKey, MiawConfig, RefreshTokenConfig, UserConfig, WebFlowConfig,
};
pub use faults::Faults;
pub use miaw::faults::{FailPlan, MiawFaults, Operation as MiawOperation};
pub use oauth::decoding_key;
pub use schema::Record;
pub use server::{EmulatorHandle, spawn};
pub use stats::Stats;
pub use tls::TlsConfig;
