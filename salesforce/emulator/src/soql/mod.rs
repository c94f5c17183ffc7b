//! The emulator's SOQL engine: a hand-written lexer and recursive-descent
//! parser for the subset of SOQL real clients send, and an executor over a
//! [`DataSource`](crate::schema::DataSource) that renders records in the REST
//! `query` shape.
//!
//! ```text
//! let q = soql::parse("SELECT Id, Contact.Email FROM Case WHERE Status = 'New'")?;
//! let out = soql::execute(&q, &store, "v66.0")?;   // out.total_size, out.records
//! ```
//!
//! Errors carry the Salesforce `errorCode` ([`SoqlError::error_code`]) and the
//! REST `message` with its `ERROR at Row:R:Column:C` pointer ([`SoqlError::message`]).

mod ast;
mod error;
mod eval;
mod fields;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

pub use ast::Query;
pub use error::{Detail, Location, SoqlError};
pub use eval::QueryOutput;

use crate::schema::DataSource;

/// Parses a SOQL statement. Only syntax is checked here; names are resolved
/// against the schema by [`execute`].
pub fn parse(text: &str) -> Result<Query, SoqlError> {
    parser::parse_query(text)
}

/// Runs a parsed query. `api_version` (e.g. `"v66.0"`) goes into each record's
/// `attributes.url`. `total_size` counts the rows after LIMIT/OFFSET (for
/// `COUNT()` it is the count and `records` is empty); paging into batches is
/// the caller's job.
pub fn execute(
    query: &Query,
    db: &dyn DataSource,
    api_version: &str,
) -> Result<QueryOutput, SoqlError> {
    eval::run(query, db, api_version)
}

const ID_CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The 18-character form of a 15- or 18-character Id (an 18-character Id is
/// returned as given). `None` when `id` is not an alphanumeric 15/18-char string.
pub(crate) fn to18(id: &str) -> Option<String> {
    if !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        18 => Some(id.to_string()),
        15 => {
            let bytes = id.as_bytes();
            let mut out = id.to_string();
            for chunk in bytes.chunks(5) {
                let bits = chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.is_ascii_uppercase())
                    .fold(0usize, |n, (j, _)| n | (1 << j));
                out.push(char::from(ID_CHECKSUM_ALPHABET[bits]));
            }
            Some(out)
        }
        _ => None,
    }
}

/// The key two Ids compare equal by: the 18-character form, lower-cased.
pub(crate) fn id_key(id: &str) -> Option<String> {
    to18(id).map(|s| s.to_ascii_lowercase())
}
