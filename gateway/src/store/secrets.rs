//! Secrets at rest: the `secrets` table (one sealed row per name) and what key rotation
//! needs across it and `oauth_flows.verifier_sealed` (docs/security.md).
//!
//! Values are sealed and opened with a [`Keyring`] (`crate::secrets`); the table never holds
//! plaintext. [`Store::reseal_secrets`] moves every row onto the active key in bounded
//! batches, each row compared-and-swapped so a concurrent writer is never overwritten.

use std::collections::BTreeMap;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};

use super::entities::{oauth_flow, secret};
use super::{Store, now_ms};
use crate::secrets::{Keyring, SecretsError, oauth_verifier_name};

/// A secret's name is at most this long (the `secrets.name` column).
pub const MAX_SECRET_NAME_LEN: usize = 128;
/// Rows read and re-sealed per transaction by `handoff keys rotate`.
pub const RESEAL_BATCH: u64 = 100;
/// At most this many rows that could not be re-sealed are described in a [`ResealReport`].
const MAX_REPORTED_FAILURES: usize = 20;

/// Why a secret could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    /// Sealing or opening failed (no key, unknown key, altered row); the message says what
    /// the operator can do and never carries the secret.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The name is empty or longer than [`MAX_SECRET_NAME_LEN`].
    #[error("a secret's name must be 1–{MAX_SECRET_NAME_LEN} bytes")]
    Name,
}

/// Where a sealed value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedTable {
    /// `secrets.sealed`, opened under the row's `name`.
    Secrets,
    /// `oauth_flows.verifier_sealed`, opened under [`oauth_verifier_name`] of `state_hash`.
    OauthFlows,
}

impl SealedTable {
    pub fn as_str(self) -> &'static str {
        match self {
            SealedTable::Secrets => "secrets",
            SealedTable::OauthFlows => "oauth_flows",
        }
    }
}

/// A row [`Store::reseal_secrets`] could not open (its key is missing, or it was altered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResealFailure {
    pub table: SealedTable,
    /// The secret's name, or the OAuth flow's `state_hash`.
    pub row: String,
    pub key_id: String,
    /// What to do about it (never the secret).
    pub error: String,
}

/// How far a re-seal got. `total` counts the rows not under the active key when it began.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResealReport {
    pub total: u64,
    /// Rows now sealed under the active key.
    pub resealed: u64,
    /// Rows a concurrent writer changed between reading and re-sealing: left as written.
    pub changed_meanwhile: u64,
    /// Rows that could not be opened (left as they are).
    pub failed: u64,
    /// The first few of those.
    pub failures: Vec<ResealFailure>,
}

impl ResealReport {
    /// Rows looked at so far.
    pub fn done(&self) -> u64 {
        self.resealed + self.changed_meanwhile + self.failed
    }
}

/// One sealed value read for re-sealing.
struct SealedRow {
    /// Primary key: the secret's name or the flow's state hash.
    row: String,
    key_id: String,
    sealed: String,
}

impl Store {
    /// Seals `value` under the active key and stores it as `name`, replacing what was there.
    pub async fn put_secret(
        &self,
        keys: &Keyring,
        name: &str,
        value: &SecretString,
    ) -> Result<(), SecretStoreError> {
        check_name(name)?;
        let sealed = keys.seal(name, value.expose_secret().as_bytes())?;
        secret::Entity::insert(secret::ActiveModel {
            name: Set(name.to_owned()),
            key_id: Set(sealed.key_id),
            sealed: Set(sealed.sealed),
            updated_at: Set(now_ms()),
        })
        .on_conflict(
            OnConflict::column(secret::Column::Name)
                .update_columns([
                    secret::Column::KeyId,
                    secret::Column::Sealed,
                    secret::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// The secret stored as `name`, opened; `None` when there is none. A row that does not
    /// open (its key is not configured, or it was altered) is an error saying what to do.
    pub async fn get_secret(
        &self,
        keys: &Keyring,
        name: &str,
    ) -> Result<Option<SecretString>, SecretStoreError> {
        check_name(name)?;
        let Some(row) = secret::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let bytes = keys.open(name, &row.key_id, &row.sealed)?;
        let text = String::from_utf8(bytes).map_err(|_| SecretsError::Undecryptable {
            name: name.to_owned(),
            key_id: row.key_id.clone(),
        })?;
        Ok(Some(SecretString::from(text)))
    }

    /// When the secret `name` was last stored (epoch ms), without opening it.
    pub async fn secret_updated_at(&self, name: &str) -> Result<Option<i64>, DbErr> {
        Ok(secret::Entity::find_by_id(name.to_owned())
            .one(&self.db)
            .await?
            .map(|row| row.updated_at))
    }

    /// Deletes the secret `name`; whether there was one.
    pub async fn delete_secret(&self, name: &str) -> Result<bool, DbErr> {
        let result = secret::Entity::delete_by_id(name.to_owned())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    /// Sealed rows per key id, across `secrets` and `oauth_flows`.
    pub async fn secret_key_counts(&self) -> Result<BTreeMap<String, u64>, DbErr> {
        let mut counts = BTreeMap::new();
        let secrets: Vec<(String, i64)> = secret::Entity::find()
            .select_only()
            .column(secret::Column::KeyId)
            .column_as(secret::Column::Name.count(), "rows")
            .group_by(secret::Column::KeyId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let flows: Vec<(String, i64)> = oauth_flow::Entity::find()
            .select_only()
            .column(oauth_flow::Column::KeyId)
            .column_as(oauth_flow::Column::StateHash.count(), "rows")
            .group_by(oauth_flow::Column::KeyId)
            .into_tuple()
            .all(&self.db)
            .await?;
        for (key_id, rows) in secrets.into_iter().chain(flows) {
            *counts.entry(key_id).or_insert(0) += u64::try_from(rows).unwrap_or(0);
        }
        Ok(counts)
    }

    /// Re-seals every row of `secrets` and `oauth_flows` that is not under `keys`' active key,
    /// `batch` rows per transaction, calling `progress` after each batch. Each row is updated
    /// only if it still holds what was read (key id and sealed value), so a secret written
    /// meanwhile is never overwritten. Rows that do not open are skipped and reported.
    /// Idempotent, and an interrupted run is finished by running it again.
    pub async fn reseal_secrets(
        &self,
        keys: &Keyring,
        batch: u64,
        progress: impl FnMut(&ResealReport),
    ) -> Result<ResealReport, SecretStoreError> {
        self.reseal_secrets_between(keys, batch, progress, async || {})
            .await
    }

    /// [`Store::reseal_secrets`], running `between` after each batch is read and re-sealed
    /// and before it is swapped in: where a concurrent writer can strike (the tests' writer).
    pub(crate) async fn reseal_secrets_between(
        &self,
        keys: &Keyring,
        batch: u64,
        mut progress: impl FnMut(&ResealReport),
        mut between: impl AsyncFnMut(),
    ) -> Result<ResealReport, SecretStoreError> {
        let active = keys.active_key_id().ok_or(SecretsError::NoKey)?.to_owned();
        let batch = batch.max(1);
        let mut report = ResealReport {
            total: secret::Entity::find()
                .filter(secret::Column::KeyId.ne(active.as_str()))
                .count(&self.db)
                .await?
                + oauth_flow::Entity::find()
                    .filter(oauth_flow::Column::KeyId.ne(active.as_str()))
                    .count(&self.db)
                    .await?,
            ..ResealReport::default()
        };
        for table in [SealedTable::Secrets, SealedTable::OauthFlows] {
            let mut after: Option<String> = None;
            loop {
                let rows = self
                    .rows_not_under(table, &active, after.as_deref(), batch)
                    .await?;
                let Some(last) = rows.last() else { break };
                after = Some(last.row.clone());
                let swaps = reseal_rows(keys, table, rows, &mut report)?;
                if swaps.is_empty() {
                    progress(&report);
                    continue;
                }
                between().await;
                self.swap_in(table, &swaps, &mut report).await?;
                progress(&report);
            }
        }
        Ok(report)
    }

    /// Up to `limit` rows of `table` not under `active`, after `after` in key order.
    async fn rows_not_under(
        &self,
        table: SealedTable,
        active: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<SealedRow>, DbErr> {
        Ok(match table {
            SealedTable::Secrets => {
                let mut query = secret::Entity::find().filter(secret::Column::KeyId.ne(active));
                if let Some(after) = after {
                    query = query.filter(secret::Column::Name.gt(after));
                }
                query
                    .order_by_asc(secret::Column::Name)
                    .limit(limit)
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|r| SealedRow {
                        row: r.name,
                        key_id: r.key_id,
                        sealed: r.sealed,
                    })
                    .collect()
            }
            SealedTable::OauthFlows => {
                let mut query =
                    oauth_flow::Entity::find().filter(oauth_flow::Column::KeyId.ne(active));
                if let Some(after) = after {
                    query = query.filter(oauth_flow::Column::StateHash.gt(after));
                }
                query
                    .order_by_asc(oauth_flow::Column::StateHash)
                    .limit(limit)
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|r| SealedRow {
                        row: r.state_hash,
                        key_id: r.key_id,
                        sealed: r.verifier_sealed,
                    })
                    .collect()
            }
        })
    }

    /// Swaps re-sealed rows in, in one transaction, each only where the row still holds
    /// what was read.
    async fn swap_in(
        &self,
        table: SealedTable,
        swaps: &[(SealedRow, crate::secrets::Sealed)],
        report: &mut ResealReport,
    ) -> Result<(), DbErr> {
        let txn = self.db.begin().await?;
        for (row, fresh) in swaps {
            if swap_sealed(&txn, table, row, fresh).await? {
                report.resealed += 1;
            } else {
                report.changed_meanwhile += 1;
            }
        }
        txn.commit().await
    }
}

/// Opens `rows` and seals them again under the active key; rows that do not open are
/// counted in `report` and left out.
fn reseal_rows(
    keys: &Keyring,
    table: SealedTable,
    rows: Vec<SealedRow>,
    report: &mut ResealReport,
) -> Result<Vec<(SealedRow, crate::secrets::Sealed)>, SecretsError> {
    let mut swaps = Vec::with_capacity(rows.len());
    for row in rows {
        let name = match table {
            SealedTable::Secrets => row.row.clone(),
            SealedTable::OauthFlows => oauth_verifier_name(&row.row),
        };
        match keys.open(&name, &row.key_id, &row.sealed) {
            Ok(plain) => {
                let plain = secrecy::SecretBox::new(plain.into_boxed_slice());
                let fresh = keys.seal(&name, plain.expose_secret())?;
                swaps.push((row, fresh));
            }
            Err(e) => {
                report.failed += 1;
                if report.failures.len() < MAX_REPORTED_FAILURES {
                    report.failures.push(ResealFailure {
                        table,
                        row: row.row,
                        key_id: row.key_id,
                        error: e.to_string(),
                    });
                }
            }
        }
    }
    Ok(swaps)
}

/// Replaces `row`'s sealed value with `fresh` if it still holds what was read.
async fn swap_sealed(
    txn: &impl ConnectionTrait,
    table: SealedTable,
    row: &SealedRow,
    fresh: &crate::secrets::Sealed,
) -> Result<bool, DbErr> {
    let result = match table {
        // `updated_at` stays: the secret's value has not changed.
        SealedTable::Secrets => {
            secret::Entity::update_many()
                .col_expr(secret::Column::KeyId, Expr::value(fresh.key_id.clone()))
                .col_expr(secret::Column::Sealed, Expr::value(fresh.sealed.clone()))
                .filter(secret::Column::Name.eq(row.row.as_str()))
                .filter(secret::Column::KeyId.eq(row.key_id.as_str()))
                .filter(secret::Column::Sealed.eq(row.sealed.as_str()))
                .exec(txn)
                .await?
        }
        SealedTable::OauthFlows => {
            oauth_flow::Entity::update_many()
                .col_expr(oauth_flow::Column::KeyId, Expr::value(fresh.key_id.clone()))
                .col_expr(
                    oauth_flow::Column::VerifierSealed,
                    Expr::value(fresh.sealed.clone()),
                )
                .filter(oauth_flow::Column::StateHash.eq(row.row.as_str()))
                .filter(oauth_flow::Column::KeyId.eq(row.key_id.as_str()))
                .filter(oauth_flow::Column::VerifierSealed.eq(row.sealed.as_str()))
                .exec(txn)
                .await?
        }
    };
    Ok(result.rows_affected == 1)
}

fn check_name(name: &str) -> Result<(), SecretStoreError> {
    if name.is_empty() || name.len() > MAX_SECRET_NAME_LEN {
        return Err(SecretStoreError::Name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretsConfig;

    fn keyring(ids: &[(&str, u8)]) -> Keyring {
        use base64::Engine as _;
        let keys: Vec<String> = ids
            .iter()
            .map(|(id, byte)| {
                format!(
                    "{id}:{}",
                    base64::engine::general_purpose::STANDARD.encode([*byte; 32])
                )
            })
            .collect();
        Keyring::from_config(&SecretsConfig {
            keys: Some(keys.join(",").into()),
            ..SecretsConfig::default()
        })
        .unwrap()
    }

    /// A writer that stores a secret between the re-seal's read and its swap wins: its value
    /// stays, under the key it wrote with, and the row is counted as changed meanwhile.
    #[tokio::test]
    async fn a_concurrent_write_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
        let store = Store::open(&url).await.unwrap();
        let old = keyring(&[("k1", 1)]);
        for name in ["a", "b", "c"] {
            store
                .put_secret(&old, name, &SecretString::from(format!("{name}-v1")))
                .await
                .unwrap();
        }
        let new = keyring(&[("k2", 2), ("k1", 1)]);
        // A replica still on the old key rewrites "b" while the batch is in flight.
        let report = store
            .reseal_secrets_between(
                &new,
                100,
                |_| {},
                async || {
                    store
                        .put_secret(&old, "b", &SecretString::from("b-v2".to_owned()))
                        .await
                        .unwrap();
                },
            )
            .await
            .unwrap();
        assert_eq!(report.total, 3);
        assert_eq!(report.resealed, 2);
        assert_eq!(report.changed_meanwhile, 1);
        let value = store.get_secret(&new, "b").await.unwrap().unwrap();
        assert_eq!(value.expose_secret(), "b-v2");
        let counts = store.secret_key_counts().await.unwrap();
        assert_eq!(counts.get("k1"), Some(&1));
        assert_eq!(counts.get("k2"), Some(&2));
        // Run again: the row is picked up and nothing else is touched.
        let again = store.reseal_secrets(&new, 100, |_| {}).await.unwrap();
        assert_eq!((again.total, again.resealed), (1, 1));
        assert_eq!(
            store
                .secret_key_counts()
                .await
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [("k2".to_owned(), 3)]
        );
        assert_eq!(
            store
                .get_secret(&keyring(&[("k2", 2)]), "b")
                .await
                .unwrap()
                .unwrap()
                .expose_secret(),
            "b-v2"
        );
    }
}
