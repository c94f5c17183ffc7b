//! Building REST paths safely from caller-supplied names and values.
//!
//! Object, field and flow names are checked to be API names (so they cannot add path
//! segments or query strings), and external-Id values are percent-encoded as a single
//! path segment.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::Error;

/// Everything except RFC 3986 unreserved characters is encoded (as Python's
/// `urllib.parse.quote(value, safe='')` does, which Salesforce clients use for upserts).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Checks that `name` is a Salesforce API name (`Case`, `Handoff_Session_Id__c`,
/// `ns__Thing__c`, `Case_Status_Lookup`): an ASCII letter, then letters, digits and `_`.
pub(crate) fn api_name<'a>(what: &str, name: &'a str) -> Result<&'a str, Error> {
    let mut bytes = name.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 255;
    if valid {
        Ok(name)
    } else {
        Err(Error::Invalid(format!(
            "{what} must be an API name (a letter, then letters, digits or '_'), got {name:?}"
        )))
    }
}

/// Percent-encodes an external-Id value as one path segment.
///
/// Empty values and the dot segments `.` / `..` are refused: URL normalisation would turn
/// them into a different resource.
pub(crate) fn segment(what: &str, value: &str) -> Result<String, Error> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(Error::Invalid(format!(
            "{what} cannot be empty, '.' or '..'"
        )));
    }
    Ok(utf8_percent_encode(value, SEGMENT).to_string())
}

/// `/sobjects/{sobject}` (relative to the versioned data root).
pub(crate) fn sobject(sobject: &str) -> Result<String, Error> {
    Ok(format!("/sobjects/{}", api_name("sObject name", sobject)?))
}

/// `/sobjects/{sobject}/{ext_field}/{escaped value}`.
pub(crate) fn external_id(sobject: &str, ext_field: &str, value: &str) -> Result<String, Error> {
    Ok(format!(
        "{}/{}/{}",
        self::sobject(sobject)?,
        api_name("external Id field", ext_field)?,
        segment("external Id value", value)?
    ))
}

/// Removes the external-Id field from an upsert body (Salesforce wants it only in the
/// path) and checks that the body is a JSON object.
pub(crate) fn upsert_body(
    ext_field: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, Error> {
    let mut object = record_body(body)?.clone();
    object.retain(|key, _| !key.eq_ignore_ascii_case(ext_field));
    Ok(serde_json::Value::Object(object))
}

/// The body as a JSON object, or `Error::Invalid`.
pub(crate) fn record_body(
    body: &serde_json::Value,
) -> Result<&serde_json::Map<String, serde_json::Value>, Error> {
    body.as_object()
        .ok_or_else(|| Error::Invalid("a record body must be a JSON object".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_names() {
        for ok in ["Case", "Handoff_Session_Id__c", "ns__Thing__c", "Flow2"] {
            assert!(api_name("x", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "1Case", "Case/..", "Case?x=1", "Ca se", "_Case", "Cäse", "Case%2F",
        ] {
            assert!(api_name("x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn external_id_values_are_one_escaped_segment() {
        assert_eq!(
            external_id("Case", "Handoff_Session_Id__c", "sess:42/a b?c#d%e").unwrap(),
            "/sobjects/Case/Handoff_Session_Id__c/sess%3A42%2Fa%20b%3Fc%23d%25e"
        );
        assert_eq!(
            external_id("Case", "Ext__c", "a-b.c_d~é").unwrap(),
            "/sobjects/Case/Ext__c/a-b.c_d~%C3%A9"
        );
        for bad in ["", ".", ".."] {
            assert!(external_id("Case", "Ext__c", bad).is_err());
        }
        assert!(external_id("Case", "Ext__c/x", "v").is_err());
    }

    #[test]
    fn upsert_body_drops_the_external_id_field() {
        let body = json!({"Subject": "s", "handoff_session_id__c": "x", "Origin": "Web"});
        assert_eq!(
            upsert_body("Handoff_Session_Id__c", &body).unwrap(),
            json!({"Subject": "s", "Origin": "Web"})
        );
        assert!(upsert_body("X__c", &json!([1])).is_err());
    }
}
