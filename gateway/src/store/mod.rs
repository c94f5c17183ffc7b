//! The database: SQLite by default, PostgreSQL by URL. Every state change and
//! the work it causes are written in one transaction.

mod entities;
mod idempotency;
mod jobs;
mod outbox;
mod sessions;
mod tokens;

use std::time::Duration;

use migrations::MigratorTrait;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

pub use entities::{api_token, delivery, event, idempotency_key, job, session};
pub use idempotency::{Begin, IdempotencyLock, IdempotencyPolicy, StoredResponse, fingerprint};
pub use jobs::{ABANDONED_ERROR, AbandonedJob, CaseRecord, ClaimedJob};
pub use outbox::{DeliveryState, NewDelivery};
pub use sessions::Accepted;
pub use tokens::{NewToken, Scope, TokenIdentity};

#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects (creating the SQLite file if needed) and runs pending migrations.
    pub async fn open(url: &str) -> Result<Store, DbErr> {
        let mut options = ConnectOptions::new(url.to_string());
        options
            .sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10));
        if url.starts_with("sqlite:") {
            // One writer at a time is how SQLite works; one pooled connection avoids
            // lock-upgrade deadlocks. WAL + synchronous=FULL: durable at commit.
            options.max_connections(1).map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                    .busy_timeout(Duration::from_secs(10))
                    .create_if_missing(true)
            });
        } else {
            options.max_connections(16).min_connections(1);
        }
        let db = Database::connect(options).await?;
        let store = Store { db };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), DbErr> {
        migrations::Migrator::up(&self.db, None).await
    }

    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.db.execute_unprepared("SELECT 1").await.map(|_| ())
    }
}

/// Milliseconds since the epoch (job times are integers on every backend).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
