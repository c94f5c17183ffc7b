use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    Channel,
    Route,
    Status,
    CustomerName,
    CustomerEmail,
    CustomerPhone,
    Language,
    Priority,
    Subject,
    RequestHash,
    Payload,
    SalesforceCaseId,
    SalesforceCaseId15,
    SalesforceCaseNumber,
    SalesforceMiawSessionId,
    SalesforceMessagingSessionId,
    CommentsWritten,
    SalesforceCalls,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(string_len(Sessions::Id, 128).primary_key())
                    .col(string_len(Sessions::Channel, 64))
                    .col(string_len(Sessions::Route, 16))
                    .col(string_len(Sessions::Status, 32))
                    .col(text_null(Sessions::CustomerName))
                    .col(string_len_null(Sessions::CustomerEmail, 254))
                    .col(string_len_null(Sessions::CustomerPhone, 40))
                    .col(string_len(Sessions::Language, 35))
                    .col(string_len(Sessions::Priority, 16))
                    .col(text_null(Sessions::Subject))
                    .col(string_len(Sessions::RequestHash, 64))
                    .col(text(Sessions::Payload))
                    .col(string_len_null(Sessions::SalesforceCaseId, 18))
                    .col(string_len_null(Sessions::SalesforceCaseId15, 15))
                    .col(string_len_null(Sessions::SalesforceCaseNumber, 30))
                    .col(string_len_null(Sessions::SalesforceMiawSessionId, 64))
                    .col(string_len_null(Sessions::SalesforceMessagingSessionId, 18))
                    .col(integer(Sessions::CommentsWritten).default(0))
                    .col(integer(Sessions::SalesforceCalls).default(0))
                    .col(text_null(Sessions::LastError))
                    .col(timestamp_with_time_zone(Sessions::CreatedAt))
                    .col(timestamp_with_time_zone(Sessions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // Support ops find a session by any id: each lookup column is indexed.
        for (name, col) in [
            ("idx_sessions_case_id", Sessions::SalesforceCaseId),
            ("idx_sessions_case_id15", Sessions::SalesforceCaseId15),
            ("idx_sessions_case_number", Sessions::SalesforceCaseNumber),
            ("idx_sessions_miaw", Sessions::SalesforceMiawSessionId),
            (
                "idx_sessions_messaging",
                Sessions::SalesforceMessagingSessionId,
            ),
            ("idx_sessions_email", Sessions::CustomerEmail),
            ("idx_sessions_phone", Sessions::CustomerPhone),
            ("idx_sessions_created", Sessions::CreatedAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Sessions::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}
