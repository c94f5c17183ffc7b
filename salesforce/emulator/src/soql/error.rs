//! SOQL errors, rendered the way Salesforce reports them: the offending line,
//! a caret under the column, `ERROR at Row:R:Column:C`, then the reason.

use std::fmt;

/// Where in the query text an error points (1-based row and column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The full text of the line the error is on.
    pub line: String,
    pub row: usize,
    pub column: usize,
}

impl Location {
    /// Location of the byte `offset` inside `text` (clamped to the end).
    pub fn at(text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let row = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        let column = text[line_start..offset].chars().count() + 1;
        let line = text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        Location { line, row, column }
    }
}

/// Why a query failed, plus where (when the failure has a position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub reason: String,
    pub location: Option<Location>,
}

/// A SOQL parse or execution failure, one variant per Salesforce `errorCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoqlError {
    /// `MALFORMED_QUERY`: syntax errors, bad literals, unsupported clauses.
    MalformedQuery(Detail),
    /// `INVALID_FIELD`: unknown columns or relationships, literal/field type mismatches.
    InvalidField(Detail),
    /// `INVALID_TYPE`: unknown sObject or child relationship in `FROM`.
    InvalidType(Detail),
    /// `INVALID_QUERY_FILTER_OPERATOR`: a malformed Id literal in a filter on an Id field.
    InvalidQueryFilterOperator(Detail),
}

impl SoqlError {
    pub(crate) fn malformed(text: &str, offset: usize, reason: impl Into<String>) -> Self {
        SoqlError::MalformedQuery(detail(text, offset, reason))
    }

    pub(crate) fn invalid_field(text: &str, offset: usize, reason: impl Into<String>) -> Self {
        SoqlError::InvalidField(detail(text, offset, reason))
    }

    pub(crate) fn invalid_type(text: &str, offset: usize, reason: impl Into<String>) -> Self {
        SoqlError::InvalidType(detail(text, offset, reason))
    }

    pub(crate) fn invalid_filter(text: &str, offset: usize, reason: impl Into<String>) -> Self {
        SoqlError::InvalidQueryFilterOperator(detail(text, offset, reason))
    }

    /// The Salesforce `errorCode` for this failure.
    pub fn error_code(&self) -> &'static str {
        match self {
            SoqlError::MalformedQuery(_) => "MALFORMED_QUERY",
            SoqlError::InvalidField(_) => "INVALID_FIELD",
            SoqlError::InvalidType(_) => "INVALID_TYPE",
            SoqlError::InvalidQueryFilterOperator(_) => "INVALID_QUERY_FILTER_OPERATOR",
        }
    }

    fn detail(&self) -> &Detail {
        match self {
            SoqlError::MalformedQuery(d)
            | SoqlError::InvalidField(d)
            | SoqlError::InvalidType(d)
            | SoqlError::InvalidQueryFilterOperator(d) => d,
        }
    }

    /// The bare reason, without the position pointer
    /// (e.g. `sObject type 'Nope' is not supported.`).
    pub fn reason(&self) -> &str {
        &self.detail().reason
    }

    /// The full REST `message`:
    /// `"\n<line>\n<spaces>^\nERROR at Row:R:Column:C\n<reason>"`, or just the
    /// reason when the error has no position.
    pub fn message(&self) -> String {
        let d = self.detail();
        match &d.location {
            Some(loc) => format!(
                "\n{}\n{}^\nERROR at Row:{}:Column:{}\n{}",
                loc.line,
                " ".repeat(loc.column - 1),
                loc.row,
                loc.column,
                d.reason
            ),
            None => d.reason.clone(),
        }
    }
}

fn detail(text: &str, offset: usize, reason: impl Into<String>) -> Detail {
    Detail {
        reason: reason.into(),
        location: Some(Location::at(text, offset)),
    }
}

impl fmt::Display for SoqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_code(), self.message())
    }
}

impl std::error::Error for SoqlError {}
