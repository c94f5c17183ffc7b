use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Rep replies on a Case, and the email channel both ways. Times are epoch
/// milliseconds, as in `jobs`.
///
/// - `salesforce_events`: every rep-output record Handoff heard of, pushed by
///   the Apex trigger or found by the poller, keyed by the record's 18-char id
///   (the idempotency key both paths share: a comment pushed and then polled is
///   one event).
/// - `email_messages`: the `Message-ID`s of a session's email thread, both
///   directions, so an inbound reply's `In-Reply-To`/`References` find it.
/// - `inbound_emails`: every customer email posted to the inbound route, with
///   what became of it; the unmatched ones keep their raw text for operators.
/// - `case_notes`: internal notes the gateway writes on a session's Case (an
///   inbound customer email, a permanent delivery failure, a joined escalation),
///   each written once by a `write_case_note` job.
/// - `sync_state`: named values a singleton worker keeps (the poller's watermark).
/// - `sessions.reply_token`: the token in the session's Reply-To address;
///   `sessions.joined_session_id`: the earlier session whose open Case this one
///   joined.
/// - `deliveries.provider_id` gets an index (an email's `Message-ID`).
#[derive(DeriveIden)]
enum SalesforceEvents {
    Table,
    EventId,
    Source,
    Kind,
    CaseId,
    SessionId,
    Outcome,
    Payload,
    ReceivedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum EmailMessages {
    Table,
    Id,
    SessionId,
    MessageId,
    Direction,
    CreatedAt,
}

#[derive(DeriveIden)]
enum InboundEmails {
    Table,
    Id,
    State,
    SessionId,
    MessageId,
    FromAddress,
    Subject,
    Size,
    Reason,
    Raw,
    ReceivedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CaseNotes {
    Table,
    Id,
    SessionId,
    Kind,
    Body,
    State,
    SalesforceId,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SyncState {
    Table,
    Name,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    ReplyToken,
    JoinedSessionId,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    ProviderId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SalesforceEvents::Table)
                    .if_not_exists()
                    .col(string_len(SalesforceEvents::EventId, 18).primary_key())
                    .col(string_len(SalesforceEvents::Source, 16))
                    .col(string_len(SalesforceEvents::Kind, 32))
                    .col(string_len(SalesforceEvents::CaseId, 18))
                    .col(string_len_null(SalesforceEvents::SessionId, 128))
                    .col(string_len(SalesforceEvents::Outcome, 32))
                    .col(text(SalesforceEvents::Payload))
                    .col(big_integer(SalesforceEvents::ReceivedAt))
                    .col(big_integer(SalesforceEvents::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_salesforce_events_case",
            SalesforceEvents::Table,
            [SalesforceEvents::CaseId],
            false,
        )
        .await?;
        index(
            manager,
            "idx_salesforce_events_received",
            SalesforceEvents::Table,
            [SalesforceEvents::ReceivedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(EmailMessages::Table)
                    .if_not_exists()
                    .col(big_pk_auto(EmailMessages::Id))
                    .col(string_len(EmailMessages::SessionId, 128))
                    .col(string_len(EmailMessages::MessageId, 255))
                    .col(string_len(EmailMessages::Direction, 8))
                    .col(big_integer(EmailMessages::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_email_messages_message_id",
            EmailMessages::Table,
            [EmailMessages::MessageId],
            false,
        )
        .await?;
        index(
            manager,
            "idx_email_messages_session_message",
            EmailMessages::Table,
            [EmailMessages::SessionId, EmailMessages::MessageId],
            true,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(InboundEmails::Table)
                    .if_not_exists()
                    .col(string_len(InboundEmails::Id, 64).primary_key())
                    .col(string_len(InboundEmails::State, 32))
                    .col(string_len_null(InboundEmails::SessionId, 128))
                    .col(string_len_null(InboundEmails::MessageId, 255))
                    .col(string_len_null(InboundEmails::FromAddress, 320))
                    .col(string_len_null(InboundEmails::Subject, 255))
                    .col(big_integer(InboundEmails::Size))
                    .col(text_null(InboundEmails::Reason))
                    .col(text_null(InboundEmails::Raw))
                    .col(big_integer(InboundEmails::ReceivedAt))
                    .col(big_integer(InboundEmails::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_inbound_emails_state",
            InboundEmails::Table,
            [InboundEmails::State, InboundEmails::ReceivedAt],
            false,
        )
        .await?;
        index(
            manager,
            "idx_inbound_emails_session",
            InboundEmails::Table,
            [InboundEmails::SessionId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CaseNotes::Table)
                    .if_not_exists()
                    .col(string_len(CaseNotes::Id, 64).primary_key())
                    .col(string_len(CaseNotes::SessionId, 128))
                    .col(string_len(CaseNotes::Kind, 32))
                    .col(text(CaseNotes::Body))
                    .col(string_len(CaseNotes::State, 16))
                    .col(string_len_null(CaseNotes::SalesforceId, 18))
                    .col(text_null(CaseNotes::LastError))
                    .col(big_integer(CaseNotes::CreatedAt))
                    .col(big_integer(CaseNotes::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_case_notes_session",
            CaseNotes::Table,
            [CaseNotes::SessionId],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SyncState::Table)
                    .if_not_exists()
                    .col(string_len(SyncState::Name, 64).primary_key())
                    .col(text(SyncState::Value))
                    .col(big_integer(SyncState::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // SQLite takes one column per ALTER TABLE.
        for column in [
            ColumnDef::new(Sessions::ReplyToken)
                .string_len(32)
                .null()
                .to_owned(),
            ColumnDef::new(Sessions::JoinedSessionId)
                .string_len(128)
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        index(
            manager,
            "idx_sessions_reply_token",
            Sessions::Table,
            [Sessions::ReplyToken],
            true,
        )
        .await?;
        index(
            manager,
            "idx_deliveries_provider_id",
            Deliveries::Table,
            [Deliveries::ProviderId],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("idx_deliveries_provider_id", Deliveries::Table.into_iden()),
            ("idx_sessions_reply_token", Sessions::Table.into_iden()),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        for column in [Sessions::ReplyToken, Sessions::JoinedSessionId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            SyncState::Table.into_iden(),
            CaseNotes::Table.into_iden(),
            InboundEmails::Table.into_iden(),
            EmailMessages::Table.into_iden(),
            SalesforceEvents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn index<T, C, const N: usize>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: [C; N],
    unique: bool,
) -> Result<(), DbErr>
where
    T: IntoIden,
    C: IntoIden,
{
    let mut statement = Index::create();
    statement.name(name).table(table).if_not_exists();
    for column in columns {
        statement.col(column);
    }
    if unique {
        statement.unique();
    }
    manager.create_index(statement.to_owned()).await
}
