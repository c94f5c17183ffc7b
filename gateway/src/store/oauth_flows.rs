//! OAuth round trips in progress (`oauth_flows`): one row per authorize redirect, keyed by
//! the SHA-256 of its `state`, holding the PKCE verifier sealed. A row is taken at most once
//! (the delete that takes it must remove exactly one row), expired rows are purged on every
//! start, and the table is bounded by the caller (see [`Store::oauth_flow_count`]).

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use super::Store;
use super::entities::oauth_flow;

/// A new `oauth_flows` row.
pub struct NewOauthFlow<'a> {
    /// SHA-256 (hex) of the `state` parameter.
    pub state_hash: &'a str,
    /// `signin` or `connect`.
    pub purpose: &'a str,
    /// The sealed PKCE verifier and the id of the key that sealed it.
    pub verifier_sealed: &'a str,
    pub key_id: &'a str,
    /// Who started it (a `connect` is started by a signed-in admin).
    pub started_by: Option<&'a str>,
    /// Where to go after a sign-in (a console path).
    pub return_to: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A taken round trip.
pub type OauthFlow = oauth_flow::Model;

impl Store {
    /// Deletes round trips that expired at or before `now_ms`.
    pub async fn purge_oauth_flows(&self, now_ms: i64) -> Result<u64, DbErr> {
        Ok(oauth_flow::Entity::delete_many()
            .filter(oauth_flow::Column::ExpiresAt.lte(now_ms))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Round trips in progress (expired ones included until purged).
    pub async fn oauth_flow_count(&self) -> Result<u64, DbErr> {
        oauth_flow::Entity::find().count(&self.db).await
    }

    pub async fn insert_oauth_flow(&self, new: NewOauthFlow<'_>) -> Result<(), DbErr> {
        oauth_flow::ActiveModel {
            state_hash: Set(new.state_hash.to_owned()),
            purpose: Set(new.purpose.to_owned()),
            verifier_sealed: Set(new.verifier_sealed.to_owned()),
            key_id: Set(new.key_id.to_owned()),
            started_by: Set(new.started_by.map(str::to_owned)),
            return_to: Set(new.return_to.map(str::to_owned)),
            created_at: Set(new.created_at),
            expires_at: Set(new.expires_at),
        }
        .insert(&self.db)
        .await
        .map(|_| ())
    }

    /// Takes the round trip whose state hashes to `state_hash`, once: of two concurrent
    /// takers only the one whose delete removed the row gets it. Expired rows are returned
    /// too (and removed); the caller refuses them.
    pub async fn take_oauth_flow(&self, state_hash: &str) -> Result<Option<OauthFlow>, DbErr> {
        let Some(row) = oauth_flow::Entity::find_by_id(state_hash.to_owned())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let deleted = oauth_flow::Entity::delete_many()
            .filter(oauth_flow::Column::StateHash.eq(state_hash))
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok((deleted == 1).then_some(row))
    }

    /// Changes a round trip's expiry (tests age a flow with it).
    pub async fn set_oauth_flow_expiry(
        &self,
        state_hash: &str,
        expires_at: i64,
    ) -> Result<bool, DbErr> {
        Ok(oauth_flow::Entity::update_many()
            .col_expr(
                oauth_flow::Column::ExpiresAt,
                sea_orm::sea_query::Expr::value(expires_at),
            )
            .filter(oauth_flow::Column::StateHash.eq(state_hash))
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }
}
