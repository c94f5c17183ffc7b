//! The database: SQLite by default, PostgreSQL by URL. Every state change and
//! the work it causes are written in one transaction.

mod case_events;
mod case_notes;
mod email_thread;
mod entities;
mod idempotency;
mod inbound;
mod job_list;
mod jobs;
mod live;
mod outbox;
mod retention;
mod sessions;
mod tokens;

use std::time::Duration;

use migrations::MigratorTrait;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use case_events::{
    CASE_EVENTS_JOB_SESSION, CaseEventDecision, OUTCOME_QUEUED, POLL_WATERMARK, POLLER_JOB_SESSION,
};
#[allow(unused_imports)] // used by the inbound-email and case-reply producers
pub(crate) use case_notes::enqueue_case_note_in;
pub use case_notes::{NOTE_MAX_ATTEMPTS, NoteState, case_note_id};
pub use email_thread::{EmailDirection, FailureNote, THREAD_READ_LIMIT};
pub use entities::{
    api_token, case_note, delivery, email_message, event, idempotency_key, inbound_email, job,
    live_message, live_session, salesforce_event, session, sync_state,
};
pub use idempotency::{Begin, IdempotencyLock, IdempotencyPolicy, StoredResponse, fingerprint};
pub use inbound::{InboundState, InboundSummary, MatchKeys, MatchedBy, NewInbound};
pub use jobs::{ABANDONED_ERROR, AbandonedJob, CaseRecord, ClaimedJob, JoinedCase};
pub use live::{Effects, LiveState, NewLive, NewLiveMessage, Queued, message_kind};
pub use outbox::{DeliveryState, NewDelivery};
pub use retention::{RetentionPolicy, RetentionReport};
pub use sessions::Accepted;
pub use tokens::{NewToken, Scope, TokenIdentity, hash_token};

/// The PostgreSQL advisory lock held while migrating (any constant no other
/// part of Handoff uses; "handoff" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x68616e646f6666;

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

    /// Applies pending migrations, safely when several processes start at once
    /// (replicas of one deployment): on PostgreSQL under a transaction-scoped
    /// advisory lock, so one process migrates while the others wait, then find
    /// nothing pending; on SQLite in one `BEGIN IMMEDIATE` transaction, which
    /// takes the write lock first, so a second process waits (busy timeout).
    pub async fn migrate(&self) -> Result<(), DbErr> {
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?;
        if self.backend() == DbBackend::Postgres {
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))
            .await?;
        }
        migrations::Migrator::up(&txn, None).await?;
        txn.commit().await
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
