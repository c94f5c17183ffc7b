//! Salesforce error shapes: the REST array `[{message, errorCode, fields?}]` and the
//! SaveResult object `{statusCode, message, fields}` used inside collections and flow results.

use http::StatusCode;
use serde_json::{Value, json};

pub(crate) const NOT_FOUND_MESSAGE: &str = "The requested resource does not exist";

/// One error, convertible to both wire shapes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SfError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    /// `Some` for record-level (DML) errors, which always carry `fields`.
    pub(crate) fields: Option<Vec<String>>,
}

impl SfError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        SfError {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: None,
        }
    }

    /// A 400 record-level error with `fields`.
    pub(crate) fn dml(code: &str, message: impl Into<String>, fields: Vec<String>) -> Self {
        SfError {
            status: StatusCode::BAD_REQUEST,
            code: code.to_string(),
            message: message.into(),
            fields: Some(fields),
        }
    }

    pub(crate) fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", NOT_FOUND_MESSAGE)
    }

    pub(crate) fn external_id_not_found(segment: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {segment}"),
        )
    }

    pub(crate) fn invalid_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    pub(crate) fn json_parser(message: impl Into<String>) -> Self {
        Self::bad_request("JSON_PARSER_ERROR", message)
    }

    /// The REST array element.
    pub(crate) fn rest_item(&self) -> Value {
        let mut v = json!({"message": self.message, "errorCode": self.code});
        if let Some(fields) = &self.fields {
            v["fields"] = json!(fields);
        }
        v
    }

    /// The REST error body: a one-element array.
    pub(crate) fn rest_body(&self) -> Value {
        Value::Array(vec![self.rest_item()])
    }

    /// The SaveResult error object.
    pub(crate) fn save_item(&self) -> Value {
        json!({
            "statusCode": self.code,
            "message": self.message,
            "fields": self.fields.clone().unwrap_or_default(),
        })
    }
}
