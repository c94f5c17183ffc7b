use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The outbox: one row per message to a customer, with its stable delivery id,
/// and a typed payload column on jobs (a delivery job names its delivery).
/// Times are epoch milliseconds, as in `jobs`.
#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    SessionId,
    Channel,
    Kind,
    Text,
    SenderName,
    Target,
    State,
    Attempts,
    ProviderId,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Payload,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .if_not_exists()
                    .col(string_len(Deliveries::Id, 64).primary_key())
                    .col(string_len(Deliveries::SessionId, 128))
                    .col(string_len(Deliveries::Channel, 64))
                    .col(string_len(Deliveries::Kind, 32))
                    .col(text(Deliveries::Text))
                    .col(string_len_null(Deliveries::SenderName, 255))
                    .col(text(Deliveries::Target))
                    .col(string_len(Deliveries::State, 16))
                    .col(integer(Deliveries::Attempts).default(0))
                    .col(string_len_null(Deliveries::ProviderId, 255))
                    .col(text_null(Deliveries::LastError))
                    .col(big_integer(Deliveries::CreatedAt))
                    .col(big_integer(Deliveries::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_session")
                    .table(Deliveries::Table)
                    .col(Deliveries::SessionId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // Existing rows keep NULL: a `create_case` job's payload is its session id.
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .add_column(text_null(Jobs::Payload))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Jobs::Table)
                    .drop_column(Jobs::Payload)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Deliveries::Table).to_owned())
            .await
    }
}
