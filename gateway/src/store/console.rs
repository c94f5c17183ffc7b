//! Console accounts and sign-ins (`console_users`, `console_sessions`).
//!
//! A console session row is keyed by the SHA-256 of the cookie's secret, so the table
//! never holds a cookie that works. Usernames of local accounts are ASCII and unique
//! ignoring letter case (`username_key`), so `Admin` and `admin` cannot both exist.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set};

use super::Store;
use super::entities::{console_session, console_user};

/// A new console session's row.
pub struct NewConsoleSession<'a> {
    /// SHA-256 (hex) of the cookie secret.
    pub id: &'a str,
    pub subject: &'a str,
    pub display_name: &'a str,
    pub source: &'a str,
    pub role: &'a str,
    pub expires_at: i64,
}

/// Why a local account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum NewUserError {
    #[error("an account with this username (ignoring letter case) already exists")]
    Exists,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The folded form of a local username: the uniqueness key.
pub fn username_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

impl Store {
    /// Inserts a local console account (the caller hashed the password).
    pub async fn create_console_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<String, NewUserError> {
        let id = uuid::Uuid::now_v7().to_string();
        let key = username_key(username);
        if console_user::Entity::find()
            .filter(console_user::Column::UsernameKey.eq(key.as_str()))
            .one(&self.db)
            .await?
            .is_some()
        {
            return Err(NewUserError::Exists);
        }
        let row = console_user::ActiveModel {
            id: Set(id.clone()),
            username: Set(username.to_string()),
            username_key: Set(key),
            password_hash: Set(password_hash.to_string()),
            role: Set(role.to_string()),
            created_at: Set(Utc::now().timestamp_millis()),
            disabled_at: Set(None),
        };
        match row.insert(&self.db).await {
            Ok(_) => Ok(id),
            // A concurrent insert of the same folded name hit the unique index.
            Err(e) if is_unique_violation(&e) => Err(NewUserError::Exists),
            Err(e) => Err(e.into()),
        }
    }

    /// A local account that is not disabled, by username (letter case ignored).
    pub async fn console_user(&self, username: &str) -> Result<Option<console_user::Model>, DbErr> {
        console_user::Entity::find()
            .filter(console_user::Column::UsernameKey.eq(username_key(username)))
            .filter(console_user::Column::DisabledAt.is_null())
            .one(&self.db)
            .await
    }

    /// Sets a local account's password hash (and re-enables it); false when there is none.
    pub async fn set_console_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, DbErr> {
        let done = console_user::Entity::update_many()
            .col_expr(
                console_user::Column::PasswordHash,
                Expr::value(password_hash.to_string()),
            )
            .col_expr(
                console_user::Column::DisabledAt,
                Expr::value(Option::<i64>::None),
            )
            .filter(console_user::Column::UsernameKey.eq(username_key(username)))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected > 0)
    }

    /// Number of local accounts that can sign in.
    pub async fn console_user_count(&self) -> Result<u64, DbErr> {
        use sea_orm::PaginatorTrait;
        console_user::Entity::find()
            .filter(console_user::Column::DisabledAt.is_null())
            .count(&self.db)
            .await
    }

    /// Records a sign-in.
    pub async fn insert_console_session(&self, new: NewConsoleSession<'_>) -> Result<(), DbErr> {
        let now = Utc::now().timestamp_millis();
        console_session::ActiveModel {
            id: Set(new.id.to_string()),
            subject: Set(new.subject.to_string()),
            display_name: Set(new.display_name.to_string()),
            source: Set(new.source.to_string()),
            role: Set(new.role.to_string()),
            created_at: Set(now),
            expires_at: Set(new.expires_at),
            last_seen_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map(|_| ())
    }

    /// The live sign-in with this id (SHA-256 of the cookie secret), if not expired.
    pub async fn console_session(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<console_session::Model>, DbErr> {
        console_session::Entity::find_by_id(id.to_string())
            .filter(console_session::Column::ExpiresAt.gt(now_ms))
            .one(&self.db)
            .await
    }

    /// Notes activity on a sign-in (callers throttle this).
    pub async fn touch_console_session(&self, id: &str, now_ms: i64) -> Result<(), DbErr> {
        console_session::Entity::update_many()
            .col_expr(console_session::Column::LastSeenAt, Expr::value(now_ms))
            .filter(console_session::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Signs out.
    pub async fn delete_console_session(&self, id: &str) -> Result<(), DbErr> {
        console_session::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await
            .map(|_| ())
    }

    /// Deletes expired sign-ins; returns how many.
    pub async fn purge_console_sessions(&self, now_ms: i64) -> Result<u64, DbErr> {
        console_session::Entity::delete_many()
            .filter(console_session::Column::ExpiresAt.lte(now_ms))
            .exec(&self.db)
            .await
            .map(|r| r.rows_affected)
    }
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
