//! `Idempotency-Key` records: claimed by an insert that conflicts on
//! (token id, key), completed with the response, released when the response
//! must not be replayed, swept once expired. Every time is epoch milliseconds.
//!
//! A record is *live in flight* while its `locked_at` is younger than the lock
//! timeout; after that its request is presumed dead and the next request with
//! the key takes it over. A record is *expired* once it is older than the
//! retention (live in-flight records never expire); an expired record behaves as
//! if it were absent. Every change of owner writes a new `lock_id`, and
//! complete/release only act while the caller still holds it.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, Set, TryInsertResult, Value as DbValue,
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::entities::idempotency_key::{self, Column};
use super::{Store, now_ms};

const IN_FLIGHT: &str = "in_flight";
const DONE: &str = "done";

/// How long keys are kept and how long an in-flight request may hold one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyPolicy {
    pub retention_ms: i64,
    pub lock_timeout_ms: i64,
}

/// A response as stored and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Proof that this caller owns a key: run the request, then complete or release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyLock {
    pub token_id: String,
    pub key: String,
    pub lock_id: String,
}

/// What to do with a request carrying a key.
#[derive(Debug)]
pub enum Begin {
    /// The key is ours (new, expired, or abandoned by a dead request).
    Started(IdempotencyLock),
    /// The same request completed before: answer what it answered.
    Replay(StoredResponse),
    /// The same request is still running.
    InFlight,
    /// The key was used with a different request.
    Reused,
}

/// SHA-256 (hex) of method, request target and body: what "the same request" means.
pub fn fingerprint(method: &str, target: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_bytes());
    hash.update(b"\n");
    hash.update(target.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn new_lock_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn for_key(token_id: &str, key: &str) -> Condition {
    Condition::all()
        .add(Column::TokenId.eq(token_id))
        .add(Column::IdempotencyKey.eq(key))
}

impl Store {
    /// Claims `key` for `token_id`'s request, or says why not. Attempts are
    /// bounded: a claim lost to a concurrent request ends as `InFlight`.
    pub async fn begin_idempotent(
        &self,
        token_id: &str,
        key: &str,
        request_hash: &str,
        now: i64,
        policy: IdempotencyPolicy,
    ) -> Result<Begin, DbErr> {
        for _ in 0..4 {
            let lock_id = new_lock_id();
            let row = idempotency_key::ActiveModel {
                token_id: Set(token_id.to_string()),
                idempotency_key: Set(key.to_string()),
                request_hash: Set(request_hash.to_string()),
                state: Set(IN_FLIGHT.into()),
                lock_id: Set(lock_id.clone()),
                status: Set(None),
                content_type: Set(None),
                body: Set(None),
                created_at: Set(now),
                locked_at: Set(now),
                completed_at: Set(None),
            };
            let inserted = idempotency_key::Entity::insert(row)
                .on_conflict_do_nothing()
                .exec_without_returning(&self.db)
                .await?;
            if matches!(inserted, TryInsertResult::Inserted(1)) {
                return Ok(Begin::Started(IdempotencyLock {
                    token_id: token_id.into(),
                    key: key.into(),
                    lock_id,
                }));
            }
            let Some(existing) = self.idempotency_key(token_id, key).await? else {
                // Released or swept in between: claim it again.
                continue;
            };
            let live =
                existing.state == IN_FLIGHT && existing.locked_at > now - policy.lock_timeout_ms;
            let expired = !live && existing.created_at <= now - policy.retention_ms;
            if !expired && existing.request_hash != request_hash {
                return Ok(Begin::Reused);
            }
            if !expired && existing.state == DONE {
                return Ok(Begin::Replay(StoredResponse {
                    status: existing
                        .status
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or_else(|| DbErr::Custom("idempotency record without status".into()))?,
                    content_type: existing.content_type,
                    body: existing.body.unwrap_or_default(),
                }));
            }
            if live {
                return Ok(Begin::InFlight);
            }
            // Expired, or in flight for a request that died: take it over —
            // only if nobody else did since we read it.
            if self
                .take_over(&existing, request_hash, &lock_id, now)
                .await?
            {
                return Ok(Begin::Started(IdempotencyLock {
                    token_id: token_id.into(),
                    key: key.into(),
                    lock_id,
                }));
            }
        }
        Ok(Begin::InFlight)
    }

    async fn take_over(
        &self,
        existing: &idempotency_key::Model,
        request_hash: &str,
        lock_id: &str,
        now: i64,
    ) -> Result<bool, DbErr> {
        let result = idempotency_key::Entity::update_many()
            .col_expr(Column::RequestHash, Expr::value(request_hash))
            .col_expr(Column::State, Expr::value(IN_FLIGHT))
            .col_expr(Column::LockId, Expr::value(lock_id))
            .col_expr(Column::Status, Expr::value(DbValue::Int(None)))
            .col_expr(Column::ContentType, Expr::value(DbValue::String(None)))
            .col_expr(Column::Body, Expr::value(DbValue::Bytes(None)))
            .col_expr(Column::CreatedAt, Expr::value(now))
            .col_expr(Column::LockedAt, Expr::value(now))
            .col_expr(Column::CompletedAt, Expr::value(DbValue::BigInt(None)))
            .filter(for_key(&existing.token_id, &existing.idempotency_key))
            .filter(Column::LockId.eq(existing.lock_id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Stores the response and marks the key done. `false` when the lock was
    /// lost (taken over after the lock timeout): nothing is written then.
    pub async fn complete_idempotent(
        &self,
        lock: &IdempotencyLock,
        response: &StoredResponse,
        now: i64,
    ) -> Result<bool, DbErr> {
        let result = idempotency_key::Entity::update_many()
            .col_expr(Column::State, Expr::value(DONE))
            .col_expr(Column::Status, Expr::value(i32::from(response.status)))
            .col_expr(
                Column::ContentType,
                Expr::value(DbValue::String(response.content_type.clone())),
            )
            .col_expr(Column::Body, Expr::value(response.body.clone()))
            .col_expr(Column::CompletedAt, Expr::value(now))
            .filter(for_key(&lock.token_id, &lock.key))
            .filter(Column::LockId.eq(lock.lock_id.as_str()))
            .filter(Column::State.eq(IN_FLIGHT))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Forgets an in-flight key so the client may retry; `false` when the lock was lost.
    pub async fn release_idempotent(&self, lock: &IdempotencyLock) -> Result<bool, DbErr> {
        let result = idempotency_key::Entity::delete_many()
            .filter(for_key(&lock.token_id, &lock.key))
            .filter(Column::LockId.eq(lock.lock_id.as_str()))
            .filter(Column::State.eq(IN_FLIGHT))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes expired records (never a live in-flight one); returns how many.
    pub async fn sweep_idempotency_keys(
        &self,
        now: i64,
        policy: IdempotencyPolicy,
    ) -> Result<u64, DbErr> {
        let result = idempotency_key::Entity::delete_many()
            .filter(Column::CreatedAt.lte(now - policy.retention_ms))
            .filter(
                Condition::any()
                    .add(Column::State.eq(DONE))
                    .add(Column::LockedAt.lte(now - policy.lock_timeout_ms)),
            )
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }

    /// Sweeps now and then every `every` until `shutdown` (spawned by `Application::run`).
    pub async fn sweep_idempotency_keys_until(
        self,
        policy: IdempotencyPolicy,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.sweep_idempotency_keys(now_ms(), policy).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "Expired idempotency keys swept."),
                Err(e) => {
                    tracing::warn!(error = %e, "Sweeping idempotency keys failed; retrying later.")
                }
            }
        }
    }

    /// The record of `key` for `token_id`, if any.
    pub async fn idempotency_key(
        &self,
        token_id: &str,
        key: &str,
    ) -> Result<Option<idempotency_key::Model>, DbErr> {
        idempotency_key::Entity::find()
            .filter(for_key(token_id, key))
            .one(&self.db)
            .await
    }
}
