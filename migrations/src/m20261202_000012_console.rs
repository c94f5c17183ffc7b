use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The ops console and secrets at rest. Times are epoch milliseconds.
///
/// - `secrets`: every secret Handoff stores (the Salesforce refresh token from "Connect
///   Salesforce", client secrets entered in the console, …), one row per name, sealed with
///   AES-256-GCM under the key `key_id` (the name is the associated data, so a row cannot be
///   moved to another name). `sealed` is base64 of nonce ‖ ciphertext ‖ tag. Never plaintext.
/// - `console_users`: local console accounts. `username_key` is the (ASCII) username lowercased
///   and unique, so `Admin` and `admin` cannot both exist; `password_hash` is a PHC
///   string (Argon2id). `role` is `admin` or `operator` (read-only).
/// - `console_sessions`: signed-in operators. `id` is the SHA-256 (hex) of the cookie's secret,
///   so the table never holds a usable cookie. `source` is `local` or `salesforce`.
/// - `oauth_flows`: an authorization-code + PKCE round trip in progress (`purpose` `signin` or
///   `connect`), keyed by the SHA-256 of its `state`; the PKCE verifier is sealed like a secret.
///   Single use, and expired rows are purged.
#[derive(DeriveIden)]
enum Secrets {
    Table,
    Name,
    KeyId,
    Sealed,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConsoleUsers {
    Table,
    Id,
    Username,
    UsernameKey,
    PasswordHash,
    Role,
    CreatedAt,
    DisabledAt,
}

#[derive(DeriveIden)]
enum ConsoleSessions {
    Table,
    Id,
    Subject,
    DisplayName,
    Source,
    Role,
    CreatedAt,
    ExpiresAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum OauthFlows {
    Table,
    StateHash,
    Purpose,
    VerifierSealed,
    KeyId,
    StartedBy,
    ReturnTo,
    CreatedAt,
    ExpiresAt,
}

/// The console's failed-deliveries page reads `deliveries` by state, newest first.
#[derive(DeriveIden)]
enum Deliveries {
    Table,
    State,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Secrets::Table)
                    .if_not_exists()
                    .col(string_len(Secrets::Name, 128).primary_key())
                    .col(string_len(Secrets::KeyId, 64))
                    .col(text(Secrets::Sealed))
                    .col(big_integer(Secrets::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsoleUsers::Table)
                    .if_not_exists()
                    .col(string_len(ConsoleUsers::Id, 64).primary_key())
                    .col(string_len(ConsoleUsers::Username, 128))
                    .col(string_len(ConsoleUsers::UsernameKey, 128).unique_key())
                    .col(text(ConsoleUsers::PasswordHash))
                    .col(string_len(ConsoleUsers::Role, 16))
                    .col(big_integer(ConsoleUsers::CreatedAt))
                    .col(big_integer_null(ConsoleUsers::DisabledAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSessions::Table)
                    .if_not_exists()
                    .col(string_len(ConsoleSessions::Id, 64).primary_key())
                    .col(string_len(ConsoleSessions::Subject, 128))
                    .col(string_len(ConsoleSessions::DisplayName, 256))
                    .col(string_len(ConsoleSessions::Source, 16))
                    .col(string_len(ConsoleSessions::Role, 16))
                    .col(big_integer(ConsoleSessions::CreatedAt))
                    .col(big_integer(ConsoleSessions::ExpiresAt))
                    .col(big_integer(ConsoleSessions::LastSeenAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_console_sessions_expires")
                    .table(ConsoleSessions::Table)
                    .col(ConsoleSessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthFlows::Table)
                    .if_not_exists()
                    .col(string_len(OauthFlows::StateHash, 64).primary_key())
                    .col(string_len(OauthFlows::Purpose, 16))
                    .col(text(OauthFlows::VerifierSealed))
                    .col(string_len(OauthFlows::KeyId, 64))
                    .col(string_len_null(OauthFlows::StartedBy, 128))
                    .col(string_len_null(OauthFlows::ReturnTo, 512))
                    .col(big_integer(OauthFlows::CreatedAt))
                    .col(big_integer(OauthFlows::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_oauth_flows_expires")
                    .table(OauthFlows::Table)
                    .col(OauthFlows::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_deliveries_state_updated")
                    .table(Deliveries::Table)
                    .col(Deliveries::State)
                    .col(Deliveries::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_deliveries_state_updated")
                    .table(Deliveries::Table)
                    .to_owned(),
            )
            .await?;
        for table in [
            OauthFlows::Table.into_iden(),
            ConsoleSessions::Table.into_iden(),
            ConsoleUsers::Table.into_iden(),
            Secrets::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
