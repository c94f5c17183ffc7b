use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Two lookup keys on sessions, backfilled for existing rows:
///
/// - `id_folded`: the session id in lower case, under a unique index. Salesforce
///   matches an external-id upsert without regard to case, so `Mix-A` and `mix-a`
///   would share one Case; the index lets exactly one of them exist, even when two
///   replicas insert them at the same instant. Rows that already collide keep
///   working: every one but the oldest gets `<folded>#<id>` (`#` is not a session-id
///   character, so that value can never equal a new id's folded form).
/// - `customer_phone_e164`: the customer's phone in E.164, what phone lookups
///   compare; `customer_phone` keeps the number as it was sent, for display.
#[derive(DeriveIden)]
enum Sessions {
    Table,
    IdFolded,
    CustomerPhoneE164,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        for column in [
            ColumnDef::new(Sessions::IdFolded)
                .string_len(140)
                .null()
                .to_owned(),
            ColumnDef::new(Sessions::CustomerPhoneE164)
                .string_len(16)
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
        let db = manager.get_connection();
        db.execute_unprepared("UPDATE sessions SET id_folded = LOWER(id)")
            .await?;
        db.execute_unprepared(
            "UPDATE sessions SET id_folded = LOWER(id) || '#' || id \
             WHERE EXISTS (SELECT 1 FROM sessions older \
               WHERE LOWER(older.id) = LOWER(sessions.id) \
               AND (older.created_at < sessions.created_at \
                 OR (older.created_at = sessions.created_at AND older.id < sessions.id)))",
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_id_folded")
                    .table(Sessions::Table)
                    .col(Sessions::IdFolded)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_phone_e164")
                    .table(Sessions::Table)
                    .col(Sessions::CustomerPhoneE164)
                    .to_owned(),
            )
            .await?;

        let backend = manager.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT id, customer_phone FROM sessions WHERE customer_phone IS NOT NULL",
            ))
            .await?;
        let update = match backend {
            sea_orm::DbBackend::Postgres => {
                "UPDATE sessions SET customer_phone_e164 = $1 WHERE id = $2"
            }
            _ => "UPDATE sessions SET customer_phone_e164 = ?1 WHERE id = ?2",
        };
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let phone: String = row.try_get("", "customer_phone")?;
            if let Some(e164) = e164(&phone) {
                db.execute_raw(Statement::from_sql_and_values(
                    backend,
                    update,
                    [e164.into(), id.into()],
                ))
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in ["idx_sessions_id_folded", "idx_sessions_phone_e164"] {
            manager
                .drop_index(Index::drop().name(index).table(Sessions::Table).to_owned())
                .await?;
        }
        for column in [Sessions::IdFolded, Sessions::CustomerPhoneE164] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Sessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The same rule as the gateway's `phone_e164` (migrations never import the
/// gateway): an international number without an extension, in E.164.
fn e164(raw: &str) -> Option<String> {
    let number = phonenumber::parse(None, raw.trim()).ok()?;
    if number.extension().is_some() {
        return None;
    }
    Some(number.format().mode(phonenumber::Mode::E164).to_string())
}
