//! The database: SQLite by default, PostgreSQL by URL. Every state change and
//! the work it causes are written in one transaction.

mod case_events;
mod case_notes;
mod console;
mod console_queries;
mod delivery_refusals;
mod email_thread;
mod entities;
mod idempotency;
mod inbound;
mod inbound_match;
mod inbound_messages;
mod job_list;
mod jobs;
mod live;
mod oauth_flows;
mod outbox;
mod provider_status;
mod retention;
mod retention_inbound;
mod secrets;
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
pub use console::{NewConsoleSession, NewUserError, username_key};
pub use delivery_refusals::{Refused, RepNoticeWrite, RepTold};
pub use email_thread::{EmailDirection, FailureNote, THREAD_READ_LIMIT};
pub use entities::{
    api_token, case_note, console_session, console_user, delivery, email_message, event,
    idempotency_key, inbound_email, inbound_message, job, live_message, live_session, opt_out,
    salesforce_event, session, sync_state,
};
pub use idempotency::{Begin, IdempotencyLock, IdempotencyPolicy, StoredResponse, fingerprint};
pub use inbound::{InboundState, InboundSummary, MatchKeys, MatchedBy, NewInbound};
pub use inbound_messages::{
    Deliverer, INBOUND_SESSION_PREFIX, InboundMessageState, InboundMessageSummary, InboundOutcome,
    NOTE_KIND_INBOUND_MESSAGE, NewInboundMessage, UNKNOWN_SENDER_REPLY_EVERY_MS,
};
pub use jobs::{ABANDONED_ERROR, AbandonedJob, CaseRecord, ClaimedJob, JoinedCase};
pub use live::{Effects, LiveState, NewLive, NewLiveMessage, Queued, message_kind};
pub use oauth_flows::{NewOauthFlow, OauthFlow};
pub use outbox::{DeliveryState, NewDelivery};
pub use retention::{RetentionPolicy, RetentionReport};
pub use secrets::{
    MAX_SECRET_NAME_LEN, RESEAL_BATCH, ResealFailure, ResealReport, SealedTable, SecretStoreError,
};
pub use sessions::Accepted;
pub use tokens::{NewToken, Scope, TokenIdentity, hash_token};

/// The PostgreSQL advisory lock held while migrating (any constant no other
/// part of Handoff uses; "handoff" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x68616e646f6666;

/// How long a start keeps retrying a SQLite database that stays busy.
const OPEN_BUSY_RETRY_FOR: Duration = Duration::from_secs(60);

/// Whether `e` is SQLite's "database is busy/locked" (another process holds it).
fn sqlite_busy(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let (DbErr::Conn(RuntimeErr::SqlxError(x))
    | DbErr::Exec(RuntimeErr::SqlxError(x))
    | DbErr::Query(RuntimeErr::SqlxError(x))) = e
    else {
        return false;
    };
    match x.as_ref() {
        sqlx::Error::Database(db) => {
            db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                && db
                    .code()
                    .and_then(|c| c.parse().ok())
                    .is_some_and(crate::error::sqlite_busy_or_locked)
        }
        _ => false,
    }
}

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
        // Several processes starting on one fresh SQLite file contend for its write
        // lock (creating the file, switching it to WAL, migrating); a busy answer that
        // outlives the busy timeout is retried for a while instead of failing the start.
        let started = std::time::Instant::now();
        loop {
            let attempt = async {
                let db = Database::connect(options.clone()).await?;
                let store = Store { db };
                store.migrate().await?;
                Ok::<Store, DbErr>(store)
            }
            .await;
            match attempt {
                Err(e) if sqlite_busy(&e) && started.elapsed() < OPEN_BUSY_RETRY_FOR => {
                    tracing::info!(error = %e, "The SQLite database is busy at startup; retrying.");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                result => return result,
            }
        }
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
