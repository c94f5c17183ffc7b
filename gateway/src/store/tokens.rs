//! API bearer tokens: shown once at creation, stored as SHA-256 hashes.

use chrono::Utc;
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use sha2::{Digest, Sha256};

use super::Store;
use super::entities::api_token;

/// What a token may do. `escalate` implies `read`; `admin` implies both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Escalate,
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "escalate" => Some(Scope::Escalate),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Escalate => "escalate",
            Scope::Admin => "admin",
        }
    }

    /// Whether holding `self` grants `wanted`.
    pub fn grants(self, wanted: Scope) -> bool {
        match self {
            Scope::Admin => true,
            Scope::Escalate => matches!(wanted, Scope::Escalate | Scope::Read),
            Scope::Read => wanted == Scope::Read,
        }
    }
}

/// Who a live token is: its id (what idempotency keys are scoped by) and scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    pub id: String,
    pub scopes: Vec<Scope>,
}

/// A freshly created token; `secret` is never stored and never shown again.
pub struct NewToken {
    pub id: String,
    pub secret: String,
}

pub fn hash_token(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Store {
    pub async fn create_token(&self, name: &str, scopes: &[Scope]) -> Result<NewToken, DbErr> {
        let bytes: [u8; 24] = rand::rng().random();
        let secret = format!(
            "hnd_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let id = uuid::Uuid::now_v7().to_string();
        let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        api_token::ActiveModel {
            id: Set(id.clone()),
            name: Set(name.to_string()),
            token_hash: Set(hash_token(&secret)),
            scopes: Set(scopes.join(",")),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok(NewToken { id, secret })
    }

    /// The scopes of a live token, or `None` for an unknown or revoked one.
    pub async fn token_scopes(&self, secret: &str) -> Result<Option<Vec<Scope>>, DbErr> {
        Ok(self.token_identity(secret).await?.map(|t| t.scopes))
    }

    /// The id and scopes of a live token, or `None` for an unknown or revoked one.
    pub async fn token_identity(&self, secret: &str) -> Result<Option<TokenIdentity>, DbErr> {
        let row = api_token::Entity::find()
            .filter(api_token::Column::TokenHash.eq(hash_token(secret)))
            .filter(api_token::Column::RevokedAt.is_null())
            .one(&self.db)
            .await?;
        Ok(row.map(|r| TokenIdentity {
            scopes: r.scopes.split(',').filter_map(Scope::parse).collect(),
            id: r.id,
        }))
    }

    /// Tokens in creation order (ids are UUIDv7), after `after` when given, at
    /// most `limit`. Rows carry the hash: callers show only id, name, scopes, dates.
    pub async fn list_tokens(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<api_token::Model>, DbErr> {
        let mut query = api_token::Entity::find().order_by_asc(api_token::Column::Id);
        if let Some(after) = after {
            query = query.filter(api_token::Column::Id.gt(after));
        }
        query.limit(limit).all(&self.db).await
    }

    /// Revokes a token: from now on it authenticates nothing (every request looks
    /// it up). Revoking a revoked token keeps its first revocation time. `None`
    /// when there is no such token.
    pub async fn revoke_token(&self, id: &str) -> Result<Option<api_token::Model>, DbErr> {
        api_token::Entity::update_many()
            .col_expr(
                api_token::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(api_token::Column::Id.eq(id))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        api_token::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
    }
}
