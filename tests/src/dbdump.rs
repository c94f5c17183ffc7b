//! Everything a database holds, as text: for tests that a secret is stored nowhere in a
//! readable form (not as itself, nor as its base64 or hex).
//!
//! [`database_text`] lists every table (`sqlite_master`, or `information_schema` on
//! PostgreSQL) and reads every column of every row, each value both as text and, where the
//! bytes are raw (blobs, `bytea`), decoded from hex. [`sqlite_file_text`] reads the SQLite
//! files themselves (database, WAL, journal), free pages included. [`find_trace`] looks for a
//! secret in the forms it could leak in.

use base64::Engine as _;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// `table.column: value` for every column of every row of every table, one per line.
pub async fn database_text(db: &DatabaseConnection) -> String {
    match db.get_database_backend() {
        DbBackend::Sqlite => sqlite_text(db).await,
        DbBackend::Postgres => postgres_text(db).await,
        other => panic!("no dump for {other:?}"),
    }
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

async fn query(db: &DatabaseConnection, sql: String) -> Vec<sea_orm::QueryResult> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        sql.clone(),
    ))
    .await
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn sqlite_text(db: &DatabaseConnection) -> String {
    let mut out = String::new();
    let tables = query(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name".into(),
    )
    .await;
    for table in tables {
        let table: String = table.try_get_by_index(0).expect("table name");
        let columns: Vec<String> = query(db, format!("PRAGMA table_info({})", quote(&table)))
            .await
            .iter()
            .map(|c| c.try_get("", "name").expect("column name"))
            .collect();
        if columns.is_empty() {
            continue;
        }
        // hex() reads any value's bytes as stored (text, blob, number), whatever its type.
        let select = columns
            .iter()
            .map(|c| format!("hex({})", quote(c)))
            .collect::<Vec<_>>()
            .join(", ");
        for row in query(db, format!("SELECT {select} FROM {}", quote(&table))).await {
            for (i, column) in columns.iter().enumerate() {
                let hex: Option<String> = row.try_get_by_index(i).expect("hex value");
                let hex = hex.unwrap_or_default();
                let raw = String::from_utf8_lossy(&unhex(&hex)).into_owned();
                out.push_str(&format!(
                    "{table}.{column}: {raw}\n{table}.{column} (hex): {hex}\n"
                ));
            }
        }
    }
    out
}

async fn postgres_text(db: &DatabaseConnection) -> String {
    let mut out = String::new();
    let tables = query(
        db,
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
         ORDER BY 1, 2"
            .into(),
    )
    .await;
    for table in tables {
        let schema: String = table.try_get_by_index(0).expect("schema");
        let name: String = table.try_get_by_index(1).expect("table name");
        let columns: Vec<(String, String)> = query(
            db,
            format!(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = '{}' AND table_name = '{}' ORDER BY ordinal_position",
                schema.replace('\'', "''"),
                name.replace('\'', "''")
            ),
        )
        .await
        .iter()
        .map(|c| {
            (
                c.try_get_by_index(0).expect("column"),
                c.try_get_by_index(1).expect("type"),
            )
        })
        .collect();
        if columns.is_empty() {
            continue;
        }
        let select = columns
            .iter()
            .map(|(c, _)| format!("{}::text", quote(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let from = format!("{}.{}", quote(&schema), quote(&name));
        for row in query(db, format!("SELECT {select} FROM {from}")).await {
            for (i, (column, data_type)) in columns.iter().enumerate() {
                let text: Option<String> = row.try_get_by_index(i).expect("text value");
                let text = text.unwrap_or_default();
                out.push_str(&format!("{name}.{column}: {text}\n"));
                // bytea as text is `\x` and hex: its bytes too.
                if data_type == "bytea"
                    && let Some(hex) = text.strip_prefix("\\x")
                {
                    let raw = String::from_utf8_lossy(&unhex(hex)).into_owned();
                    out.push_str(&format!("{name}.{column} (raw): {raw}\n"));
                }
            }
        }
    }
    out
}

fn unhex(hex: &str) -> Vec<u8> {
    hex.as_bytes()
        .chunks(2)
        .filter_map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}

/// The bytes of a SQLite database's files (the database, its WAL and journal), as lossy text:
/// what a copy of the disk would show, including pages SQL no longer reaches.
pub fn sqlite_file_text(url: &str) -> String {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .expect("a sqlite URL");
    let path = path.split('?').next().unwrap_or(path);
    let mut out = String::new();
    for suffix in ["", "-wal", "-journal"] {
        if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

/// The forms a secret could leak in: itself, its hex (either case), and its base64 in the
/// standard and URL-safe alphabets at each of the three byte alignments it could sit at
/// inside a longer encoded value (only the characters that depend on the secret alone).
/// Secrets shorter than 12 bytes are refused: their encodings would match by chance.
pub fn traces_of(secret: &str) -> Vec<String> {
    assert!(secret.len() >= 12, "use a longer canary");
    let bytes = secret.as_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut traces = vec![secret.to_owned(), hex.to_uppercase(), hex];
    for offset in 0..3usize {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(bytes);
        // Groups of 3 bytes wholly inside the secret.
        let first = offset.div_ceil(3);
        let last = (offset + bytes.len()) / 3;
        for engine in [
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            let encoded = engine.encode(&padded);
            traces.push(encoded[first * 4..last * 4].to_owned());
        }
    }
    traces.sort();
    traces.dedup();
    traces
}

/// The first form of `secret` found in `text`, if any (see [`traces_of`]).
pub fn find_trace(text: &str, secret: &str) -> Option<String> {
    traces_of(secret)
        .into_iter()
        .find(|t| text.contains(t.as_str()))
}
