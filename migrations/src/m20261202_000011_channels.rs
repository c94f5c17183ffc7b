use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// SMS, WhatsApp, voice and bridge channels both ways. Times are epoch milliseconds.
///
/// - `inbound_messages`: every customer message a provider webhook (Twilio, the WhatsApp
///   Cloud API, a bridge) brought, keyed by `<channel>:<provider message id>` — the dedupe
///   key, compared byte for byte (provider ids are case-sensitive) — with what became of it
///   (`to_rep`, `case_note`, `opt_out`, `opt_in`, `help`, `unmatched`, …). The text is kept
///   for the timeline and erased by retention.
/// - `opt_outs`: customers who texted an opt-out keyword, per delivering channel and address
///   (E.164); nothing is sent to them until they opt back in.
/// - `deliveries.provider_status` (`queued`, `sent`, `delivered`, `read`, `undelivered`,
///   `failed`), `provider_status_at`, `provider_error_code`: the provider's own reports on a
///   message we sent (status callbacks), which only move forward.
/// - `sessions.customer_last_message_at`: when the customer last wrote on the session's
///   channel (reply windows: WhatsApp's 24 hours).
#[derive(DeriveIden)]
enum InboundMessages {
    Table,
    Id,
    Channel,
    ProviderMessageId,
    SessionId,
    FromAddress,
    ToAddress,
    State,
    Text,
    Media,
    ReceivedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OptOuts {
    Table,
    Channel,
    Address,
    OptedOutAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    ProviderStatus,
    ProviderStatusAt,
    ProviderErrorCode,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    CustomerLastMessageAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InboundMessages::Table)
                    .if_not_exists()
                    .col(string_len(InboundMessages::Id, 330).primary_key())
                    .col(string_len(InboundMessages::Channel, 64))
                    .col(string_len(InboundMessages::ProviderMessageId, 256))
                    .col(string_len_null(InboundMessages::SessionId, 128))
                    .col(string_len_null(InboundMessages::FromAddress, 256))
                    .col(string_len_null(InboundMessages::ToAddress, 256))
                    .col(string_len(InboundMessages::State, 32))
                    .col(text_null(InboundMessages::Text))
                    .col(text_null(InboundMessages::Media))
                    .col(big_integer(InboundMessages::ReceivedAt))
                    .col(big_integer(InboundMessages::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_inbound_messages_session",
            InboundMessages::Table,
            [InboundMessages::SessionId],
            false,
        )
        .await?;
        index(
            manager,
            "idx_inbound_messages_state",
            InboundMessages::Table,
            [InboundMessages::State, InboundMessages::ReceivedAt],
            false,
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(OptOuts::Table)
                    .if_not_exists()
                    .col(string_len(OptOuts::Channel, 64))
                    .col(string_len(OptOuts::Address, 256))
                    .col(big_integer(OptOuts::OptedOutAt))
                    .primary_key(Index::create().col(OptOuts::Channel).col(OptOuts::Address))
                    .to_owned(),
            )
            .await?;

        // SQLite takes one column per ALTER TABLE.
        for column in [
            ColumnDef::new(Deliveries::ProviderStatus)
                .string_len(16)
                .null()
                .to_owned(),
            ColumnDef::new(Deliveries::ProviderStatusAt)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Deliveries::ProviderErrorCode)
                .string_len(32)
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deliveries::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(
                        ColumnDef::new(Sessions::CustomerLastMessageAt)
                            .big_integer()
                            .null()
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::CustomerLastMessageAt)
                    .to_owned(),
            )
            .await?;
        for column in [
            Deliveries::ProviderStatus,
            Deliveries::ProviderStatusAt,
            Deliveries::ProviderErrorCode,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Deliveries::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            OptOuts::Table.into_iden(),
            InboundMessages::Table.into_iden(),
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
