#![forbid(unsafe_code)]
//! Database migrations for Handoff. They run at startup and with `handoff migrate`.
//! Migrations never import the gateway's entities: entities change, old migrations must not.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_sessions;
mod m20261122_000002_create_events;
mod m20261122_000003_create_jobs;
mod m20261122_000004_create_api_tokens;
mod m20261122_000005_create_idempotency_keys;
mod m20261202_000006_create_deliveries;
mod m20261202_000008_session_keys;
mod m20261202_000009_live_sessions;
mod m20261202_000010_case_replies;
mod m20261202_000011_channels;
mod m20261202_000012_console;

/// All migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_sessions::Migration),
            Box::new(m20261122_000002_create_events::Migration),
            Box::new(m20261122_000003_create_jobs::Migration),
            Box::new(m20261122_000004_create_api_tokens::Migration),
            Box::new(m20261122_000005_create_idempotency_keys::Migration),
            Box::new(m20261202_000006_create_deliveries::Migration),
            Box::new(m20261202_000008_session_keys::Migration),
            Box::new(m20261202_000009_live_sessions::Migration),
            Box::new(m20261202_000010_case_replies::Migration),
            Box::new(m20261202_000011_channels::Migration),
            Box::new(m20261202_000012_console::Migration),
        ]
    }
}
