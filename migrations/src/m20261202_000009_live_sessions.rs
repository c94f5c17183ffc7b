use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Live messaging (MIAW). `live_sessions`: one row per session on the messaging
/// route — its conversation id, the end user's access token (one event stream per
/// token), the stream cursor (`Last-Event-Id`), where the conversation stands, and
/// which replica owns its stream (`owner`, `lease_until`). `live_messages`: what
/// goes to the rep, in order (the opening summary and transcript, the customer's
/// messages, the transcript file), each with the id Salesforce echoes back.
/// Times are epoch milliseconds, as in `jobs`.
#[derive(DeriveIden)]
enum LiveSessions {
    Table,
    SessionId,
    ConversationId,
    Token,
    TokenExpiresAt,
    LastEventId,
    State,
    RepName,
    Owner,
    LeaseUntil,
    DeadlineAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LiveMessages {
    Table,
    Seq,
    Id,
    SessionId,
    Kind,
    Text,
    State,
    Attempts,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LiveSessions::Table)
                    .if_not_exists()
                    .col(string_len(LiveSessions::SessionId, 128).primary_key())
                    .col(string_len(LiveSessions::ConversationId, 36))
                    .col(text_null(LiveSessions::Token))
                    .col(big_integer_null(LiveSessions::TokenExpiresAt))
                    .col(string_len_null(LiveSessions::LastEventId, 64))
                    .col(string_len(LiveSessions::State, 16))
                    .col(string_len_null(LiveSessions::RepName, 255))
                    .col(string_len_null(LiveSessions::Owner, 64))
                    .col(big_integer_null(LiveSessions::LeaseUntil))
                    .col(big_integer(LiveSessions::DeadlineAt))
                    .col(big_integer(LiveSessions::CreatedAt))
                    .col(big_integer(LiveSessions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_live_sessions_conversation")
                    .table(LiveSessions::Table)
                    .col(LiveSessions::ConversationId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_live_sessions_state_lease")
                    .table(LiveSessions::Table)
                    .col(LiveSessions::State)
                    .col(LiveSessions::LeaseUntil)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LiveMessages::Table)
                    .if_not_exists()
                    .col(
                        big_integer(LiveMessages::Seq)
                            .primary_key()
                            .auto_increment(),
                    )
                    .col(string_len(LiveMessages::Id, 36).unique_key())
                    .col(string_len(LiveMessages::SessionId, 128))
                    .col(string_len(LiveMessages::Kind, 16))
                    .col(text(LiveMessages::Text))
                    .col(string_len(LiveMessages::State, 16))
                    .col(integer(LiveMessages::Attempts).default(0))
                    .col(big_integer(LiveMessages::CreatedAt))
                    .col(big_integer(LiveMessages::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_live_messages_session")
                    .table(LiveMessages::Table)
                    .col(LiveMessages::SessionId)
                    .col(LiveMessages::Seq)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LiveMessages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(LiveSessions::Table).to_owned())
            .await
    }
}
