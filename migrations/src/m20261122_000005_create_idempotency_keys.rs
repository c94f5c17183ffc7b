use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `Idempotency-Key` records of the HTTP API, one per (token, key): the
/// fingerprint of the request, whether it is in flight or done, and the stored
/// response. The primary key is the claim: two first requests race on the
/// insert and exactly one wins. Times are epoch milliseconds, like the jobs table.
#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    TokenId,
    IdempotencyKey,
    RequestHash,
    State,
    LockId,
    Status,
    ContentType,
    Body,
    CreatedAt,
    LockedAt,
    CompletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(string_len(IdempotencyKeys::TokenId, 36))
                    .col(string_len(IdempotencyKeys::IdempotencyKey, 255))
                    .col(string_len(IdempotencyKeys::RequestHash, 64))
                    .col(string_len(IdempotencyKeys::State, 16))
                    .col(string_len(IdempotencyKeys::LockId, 36))
                    .col(integer_null(IdempotencyKeys::Status))
                    .col(string_len_null(IdempotencyKeys::ContentType, 255))
                    .col(blob_null(IdempotencyKeys::Body))
                    .col(big_integer(IdempotencyKeys::CreatedAt))
                    .col(big_integer(IdempotencyKeys::LockedAt))
                    .col(big_integer_null(IdempotencyKeys::CompletedAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::TokenId)
                            .col(IdempotencyKeys::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_created")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
