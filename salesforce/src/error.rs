//! The client's error type and its classification for retry decisions.
//!
//! Salesforce answers errors in several shapes (see the reference notes, §3.2):
//! a JSON array of `{message, errorCode, fields?}` for REST resources, `{statusCode, message,
//! fields}` inside SaveResults and invocable-action results, `{error, error_description}` from
//! the token endpoint, and HTML or XML from the edge or during maintenance. All of them end up
//! in [`Error`], and [`Error::class`] says what a caller should do about it.
//!
//! No variant ever holds an access token, a client secret, a password or a private key.
//! The `Display` output of [`Error::Api`] names error codes and fields but not Salesforce's
//! messages, because those can quote customer data (e.g. `invalid email address: <value>`);
//! the messages are kept in [`ApiError::message`] for callers that want them.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Error codes that only report that *another* operation failed.
const KNOCK_ON_CODES: &[&str] = &["PROCESSING_HALTED", "ALL_OR_NONE_OPERATION_ROLLED_BACK"];

/// Longest excerpt of a non-JSON body kept in an error.
const BODY_EXCERPT_BYTES: usize = 512;

/// One error reported by Salesforce, from either body shape (`errorCode` or `statusCode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The error code, e.g. `REQUIRED_FIELD_MISSING`, or `ERROR_HTTP_<status>` for a body
    /// that was not a Salesforce error document.
    #[serde(rename = "errorCode", alias = "statusCode")]
    pub error_code: String,
    /// Salesforce's message. May quote field values (customer data): do not log it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// Fields the error is about, if Salesforce named any.
    #[serde(default, deserialize_with = "null_as_default")]
    pub fields: Vec<String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl ApiError {
    /// Reads one error object in either shape; `None` if it has no code.
    fn from_object(value: &Value) -> Option<Self> {
        let code = value
            .get("errorCode")
            .or_else(|| value.get("statusCode"))?
            .as_str()?;
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let fields = value
            .get("fields")
            .and_then(Value::as_array)
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Some(ApiError {
            error_code: code.to_owned(),
            message: message.to_owned(),
            fields,
        })
    }

    /// Parses every error in a Salesforce error body.
    ///
    /// Accepts the REST array shape, a single error object, SaveResult / invocable-action
    /// elements that carry an `errors` list, and anything else (HTML, XML, empty): the latter
    /// becomes one `ERROR_HTTP_<status>` error whose message is an excerpt of the body
    /// (with an XML `<errorCode>` picked out when there is one).
    pub fn parse_body(status: u16, body: &[u8]) -> Vec<ApiError> {
        let mut errors = Vec::new();
        if let Ok(json) = serde_json::from_slice::<Value>(body) {
            collect_errors(&json, &mut errors);
        }
        if errors.is_empty() {
            let text = String::from_utf8_lossy(body);
            let code = xml_element(&text, "errorCode")
                .filter(|code| is_error_code(code))
                .map_or_else(|| format!("ERROR_HTTP_{status}"), str::to_owned);
            let message = xml_element(&text, "message").unwrap_or(text.trim());
            errors.push(ApiError {
                error_code: code,
                message: truncate(message, BODY_EXCERPT_BYTES),
                fields: Vec::new(),
            });
        }
        errors
    }
}

fn collect_errors(json: &Value, out: &mut Vec<ApiError>) {
    match json {
        Value::Array(items) => items.iter().for_each(|item| collect_errors(item, out)),
        Value::Object(map) => {
            if let Some(error) = ApiError::from_object(json) {
                out.push(error);
            } else if let Some(Value::Array(nested)) = map.get("errors") {
                nested
                    .iter()
                    .filter_map(ApiError::from_object)
                    .for_each(|e| out.push(e));
            }
        }
        _ => {}
    }
}

fn is_error_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Text of the first `<name>…</name>` element, if any (enough for Salesforce's XML errors).
fn xml_element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&close)?;
    Some(text[start..start + len].trim())
}

/// Truncates to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// What a caller should do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Credentials or session are bad (401, `INVALID_SESSION_ID`, token endpoint refusals).
    /// The client already refreshed once; retrying will not help until credentials change.
    Auth,
    /// The org's API limit is exhausted (`REQUEST_LIMIT_EXCEEDED`): back off for long.
    RateLimit,
    /// Transient: 5xx, 429, `UNABLE_TO_LOCK_ROW`, `SERVER_UNAVAILABLE`, transport failures.
    /// Retry with backoff (mind [`Error::is_ambiguous`] for non-idempotent calls).
    Retryable,
    /// Retrying the same request will fail the same way.
    Permanent,
}

/// Everything that can go wrong talking to Salesforce.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Salesforce answered with an error status (or a composite subrequest failed).
    #[error("Salesforce API error (HTTP {status}): {}", ErrorList(errors))]
    Api {
        /// HTTP status (of the subrequest, for composite failures).
        status: u16,
        /// The errors Salesforce reported; at least one.
        errors: Vec<ApiError>,
        /// The `Retry-After` header, when Salesforce sent one.
        retry_after: Option<Duration>,
    },
    /// The OAuth token endpoint refused to issue a token.
    #[error("Salesforce token endpoint refused (HTTP {status}): {error}: {description}")]
    OAuth {
        /// HTTP status.
        status: u16,
        /// OAuth `error`, e.g. `invalid_grant` (`ERROR_HTTP_<status>` for a non-JSON body).
        error: String,
        /// OAuth `error_description`, e.g. `authentication failure`.
        description: String,
    },
    /// Connecting, sending or reading the response failed.
    ///
    /// When `request_sent` is true the failure happened after the request went out (a
    /// timeout, a dropped connection, an unreadable body): Salesforce may have committed it.
    #[error("transport error talking to Salesforce: {message}")]
    Transport {
        /// What failed, without URLs (they can carry SOQL with customer data).
        message: String,
        /// Whether the request may have reached Salesforce.
        request_sent: bool,
    },
    /// An upsert's external Id matched several records (HTTP 300); the record URLs.
    #[error("external Id matched {} records", .0.len())]
    MultipleMatches(Vec<String>),
    /// The client refused to send the request (bad argument, too many subrequests…).
    #[error("invalid Salesforce request: {0}")]
    Invalid(String),
    /// Salesforce's answer could not be understood.
    #[error("unexpected Salesforce response: {0}")]
    Decode(String),
}

/// Displays codes and fields (not messages) of a list of errors.
struct ErrorList<'a>(&'a [ApiError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&error.error_code)?;
            if !error.fields.is_empty() {
                write!(f, " [{}]", error.fields.join(", "))?;
            }
        }
        Ok(())
    }
}

impl Error {
    /// Builds an [`Error::Api`] from an error response.
    pub fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        Error::Api {
            status,
            errors: ApiError::parse_body(status, body),
            retry_after: retry_after(headers),
        }
    }

    /// Builds an [`Error::OAuth`] from a token-endpoint error response.
    pub fn from_oauth_response(status: u16, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct OAuthBody {
            error: String,
            #[serde(default)]
            error_description: Option<String>,
        }
        match serde_json::from_slice::<OAuthBody>(body) {
            Ok(b) => Error::OAuth {
                status,
                error: b.error,
                description: b.error_description.unwrap_or_default(),
            },
            Err(_) => Error::OAuth {
                status,
                error: format!("ERROR_HTTP_{status}"),
                description: truncate(String::from_utf8_lossy(body).trim(), BODY_EXCERPT_BYTES),
            },
        }
    }

    /// Wraps a `reqwest` failure, dropping the URL (queries carry SOQL in it).
    pub(crate) fn transport(err: &reqwest::Error) -> Self {
        let request_sent = !(err.is_connect() || err.is_builder());
        let mut message = String::new();
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
        let mut first = true;
        while let Some(e) = source {
            let text = if first {
                // reqwest's own Display appends the URL; rebuild it without one.
                describe_reqwest(err)
            } else {
                e.to_string()
            };
            if !text.is_empty() && !message.contains(&text) {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str(&text);
            }
            first = false;
            source = e.source();
        }
        Error::Transport {
            message,
            request_sent,
        }
    }

    /// How a caller should react to this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Api { status, errors, .. } => {
                let has = |code: &str| errors.iter().any(|e| e.error_code == code);
                if *status == 401 || has("INVALID_SESSION_ID") {
                    ErrorClass::Auth
                } else if has("REQUEST_LIMIT_EXCEEDED") {
                    ErrorClass::RateLimit
                } else if *status >= 500
                    || *status == 429
                    || has("UNABLE_TO_LOCK_ROW")
                    || has("SERVER_UNAVAILABLE")
                {
                    ErrorClass::Retryable
                } else {
                    ErrorClass::Permanent
                }
            }
            // The token endpoint itself being down is not a credentials problem.
            Error::OAuth { status, .. } if *status >= 500 || *status == 429 => {
                ErrorClass::Retryable
            }
            Error::OAuth { error, .. } if error == "rate_limit_exceeded" => ErrorClass::RateLimit,
            Error::OAuth { .. } => ErrorClass::Auth,
            Error::Transport { .. } => ErrorClass::Retryable,
            Error::MultipleMatches(_) | Error::Invalid(_) | Error::Decode(_) => {
                ErrorClass::Permanent
            }
        }
    }

    /// The most relevant error code: the first Salesforce code that is not a knock-on
    /// `PROCESSING_HALTED` / `ALL_OR_NONE_OPERATION_ROLLED_BACK`, or the OAuth `error`.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { errors, .. } => errors
                .iter()
                .find(|e| !KNOCK_ON_CODES.contains(&e.error_code.as_str()))
                .or_else(|| errors.first())
                .map(|e| e.error_code.as_str()),
            Error::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// HTTP status Salesforce answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::OAuth { status, .. } => Some(*status),
            Error::MultipleMatches(_) => Some(300),
            _ => None,
        }
    }

    /// `Retry-After` sent with the error, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True when the request may have been committed by Salesforce even though no answer
    /// arrived (a transport failure after sending). Retry only idempotent operations
    /// (upserts by external Id) blindly; check before repeating a plain create.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            Error::Transport {
                request_sent: true,
                ..
            }
        )
    }
}

/// reqwest's top-level description, without the URL it would append.
fn describe_reqwest(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "request timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_body() {
        "error reading or writing a body"
    } else if err.is_decode() {
        "error decoding the response body"
    } else if err.is_request() {
        "error sending the request"
    } else if err.is_redirect() {
        "unexpected redirect"
    } else if err.is_builder() {
        "could not build the request"
    } else {
        "HTTP error"
    };
    kind.to_owned()
}

/// Parses `Retry-After` (delta-seconds or an HTTP date).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// True for an [`Error::Api`] whose errors only report that another operation failed.
pub(crate) fn is_knock_on(err: &Error) -> bool {
    match err {
        Error::Api { errors, .. } => errors
            .iter()
            .all(|e| KNOCK_ON_CODES.contains(&e.error_code.as_str())),
        _ => false,
    }
}

impl From<crate::soql::SoqlError> for Error {
    fn from(err: crate::soql::SoqlError) -> Self {
        Error::Invalid(err.to_string())
    }
}

impl From<crate::ids::IdError> for Error {
    fn from(err: crate::ids::IdError) -> Self {
        Error::Invalid(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn api(status: u16, body: &str) -> Error {
        Error::from_response(status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn rest_array_shape() {
        let err = api(
            400,
            r#"[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]"#,
        );
        let Error::Api { status, errors, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(*status, 400);
        assert_eq!(
            errors,
            &[ApiError {
                error_code: "REQUIRED_FIELD_MISSING".into(),
                message: "Required fields are missing: [Name]".into(),
                fields: vec!["Name".into()],
            }]
        );
        assert_eq!(err.code(), Some("REQUIRED_FIELD_MISSING"));
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert_eq!(
            err.to_string(),
            "Salesforce API error (HTTP 400): REQUIRED_FIELD_MISSING [Name]"
        );
    }

    #[test]
    fn several_errors_are_kept_in_order() {
        let err = api(
            400,
            r#"[{"message":"a","errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","fields":[]},
                {"message":"b","errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION"}]"#,
        );
        let Error::Api { errors, .. } = &err else {
            panic!()
        };
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].message, "b");
        assert!(errors[1].fields.is_empty());
    }

    #[test]
    fn save_result_status_code_shape() {
        // sObject Collections result element with a statusCode error.
        let errors = ApiError::parse_body(
            200,
            br#"[{"success":false,"errors":[{"statusCode":"MALFORMED_ID","message":"Contact ID: id value of incorrect type: 001xx000003DGb2999","fields":["Id"]}]}]"#,
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].error_code, "MALFORMED_ID");
        assert_eq!(errors[0].fields, vec!["Id".to_owned()]);
        // The same struct deserializes from either key.
        let a: ApiError =
            serde_json::from_str(r#"{"statusCode":"X","message":"m","fields":null}"#).unwrap();
        let b: ApiError = serde_json::from_str(r#"{"errorCode":"X","message":"m"}"#).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn invocable_action_failure_shape() {
        let err = api(
            400,
            r#"[{"actionName":"Case_Status_Lookup","errors":[{"statusCode":"UNKNOWN_EXCEPTION","message":"An error occurred when executing a flow interview.","fields":[]}],"isSuccess":false,"outputValues":null},
                {"actionName":"Case_Status_Lookup","errors":null,"isSuccess":true,"outputValues":{}}]"#,
        );
        assert_eq!(err.code(), Some("UNKNOWN_EXCEPTION"));
        assert_eq!(err.class(), ErrorClass::Permanent);
    }

    #[test]
    fn non_json_bodies_become_http_status_codes() {
        let html = format!("<html><body>{}</body></html>", "Maintenance ".repeat(200));
        let err = api(503, &html);
        let Error::Api { errors, .. } = &err else {
            panic!()
        };
        assert_eq!(errors[0].error_code, "ERROR_HTTP_503");
        assert!(errors[0].message.starts_with("<html><body>Maintenance"));
        assert!(errors[0].message.len() <= BODY_EXCERPT_BYTES + '…'.len_utf8());
        assert!(errors[0].message.ends_with('…'));
        assert_eq!(err.class(), ErrorClass::Retryable);

        let empty = api(404, "");
        assert_eq!(empty.code(), Some("ERROR_HTTP_404"));
        assert_eq!(empty.class(), ErrorClass::Permanent);

        // JSON that is not an error document is treated the same way.
        assert_eq!(api(400, r#"{"foo":1}"#).code(), Some("ERROR_HTTP_400"));

        // Truncation never splits a character.
        let long = "é".repeat(BODY_EXCERPT_BYTES);
        let Error::Api { errors, .. } = api(502, &long) else {
            panic!()
        };
        assert!(errors[0].message.chars().all(|c| c == 'é' || c == '…'));
    }

    #[test]
    fn xml_error_bodies_keep_their_code() {
        let err = api(
            404,
            "<Errors><Error><errorCode>NOT_FOUND</errorCode><message>The requested resource does not exist</message></Error></Errors>",
        );
        let Error::Api { errors, .. } = &err else {
            panic!()
        };
        assert_eq!(errors[0].error_code, "NOT_FOUND");
        assert_eq!(errors[0].message, "The requested resource does not exist");
        let unauth = api(
            401,
            "<response><faultcode>LOGIN_OAUTH_INVALID_TOKEN(db=1703,api=LOGIN_OAUTH_INVALID_TOKEN)</faultcode><error>Failed: Invalid Token</error></response>",
        );
        assert_eq!(unauth.code(), Some("ERROR_HTTP_401"));
        assert_eq!(unauth.class(), ErrorClass::Auth);
    }

    #[test]
    fn classification() {
        let cases: &[(u16, &str, ErrorClass)] = &[
            (401, "INVALID_SESSION_ID", ErrorClass::Auth),
            (403, "INVALID_SESSION_ID", ErrorClass::Auth),
            (403, "REQUEST_LIMIT_EXCEEDED", ErrorClass::RateLimit),
            (403, "INSUFFICIENT_ACCESS", ErrorClass::Permanent),
            (500, "UNKNOWN_EXCEPTION", ErrorClass::Retryable),
            (502, "ERROR_HTTP_502", ErrorClass::Retryable),
            (503, "SERVER_UNAVAILABLE", ErrorClass::Retryable),
            (429, "ERROR_HTTP_429", ErrorClass::Retryable),
            (400, "UNABLE_TO_LOCK_ROW", ErrorClass::Retryable),
            (400, "SERVER_UNAVAILABLE", ErrorClass::Retryable),
            (400, "INVALID_FIELD", ErrorClass::Permanent),
            (404, "NOT_FOUND", ErrorClass::Permanent),
            (412, "PRECONDITION_FAILED", ErrorClass::Permanent),
        ];
        for (status, code, class) in cases {
            let body = format!(r#"[{{"message":"m","errorCode":"{code}"}}]"#);
            let err = api(*status, &body);
            assert_eq!(err.class(), *class, "{status} {code}");
            assert_eq!(err.code(), Some(*code));
            assert!(!err.is_ambiguous());
        }

        let oauth = Error::from_oauth_response(
            400,
            br#"{"error":"invalid_grant","error_description":"authentication failure"}"#,
        );
        assert_eq!(oauth.class(), ErrorClass::Auth);
        assert_eq!(oauth.code(), Some("invalid_grant"));
        assert_eq!(
            oauth.to_string(),
            "Salesforce token endpoint refused (HTTP 400): invalid_grant: authentication failure"
        );
        let limited = Error::from_oauth_response(400, br#"{"error":"rate_limit_exceeded"}"#);
        assert_eq!(limited.class(), ErrorClass::RateLimit);
        let down = Error::from_oauth_response(503, b"<html>down</html>");
        assert_eq!(down.code(), Some("ERROR_HTTP_503"));
        assert_eq!(down.class(), ErrorClass::Retryable);

        let sent = Error::Transport {
            message: "request timed out".into(),
            request_sent: true,
        };
        assert_eq!(sent.class(), ErrorClass::Retryable);
        assert!(sent.is_ambiguous());
        let refused = Error::Transport {
            message: "could not connect".into(),
            request_sent: false,
        };
        assert_eq!(refused.class(), ErrorClass::Retryable);
        assert!(!refused.is_ambiguous());

        for err in [
            Error::MultipleMatches(vec!["/a".into(), "/b".into()]),
            Error::Invalid("x".into()),
            Error::Decode("y".into()),
        ] {
            assert_eq!(err.class(), ErrorClass::Permanent);
            assert_eq!(err.code(), None);
        }
    }

    #[test]
    fn code_skips_knock_on_errors() {
        let err = api(
            400,
            r#"[{"errorCode":"PROCESSING_HALTED","message":"rolled back"},{"errorCode":"DUPLICATE_VALUE","message":"dup"}]"#,
        );
        assert_eq!(err.code(), Some("DUPLICATE_VALUE"));
        let only = api(400, r#"[{"errorCode":"PROCESSING_HALTED","message":"x"}]"#);
        assert_eq!(only.code(), Some("PROCESSING_HALTED"));
    }

    #[test]
    fn retry_after_header() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        let err = Error::from_response(503, &headers, b"");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        let mut dated = HeaderMap::new();
        dated.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        let past = Error::from_response(503, &dated, b"");
        assert_eq!(past.retry_after(), Some(Duration::ZERO));
        assert_eq!(api(503, "").retry_after(), None);
    }

    #[test]
    fn display_does_not_repeat_messages() {
        // Messages can quote customer data; Display shows codes and fields only.
        let err = api(
            400,
            r#"[{"message":"Email: invalid email address: ann@example.com","errorCode":"INVALID_EMAIL_ADDRESS","fields":["Email"]}]"#,
        );
        let shown = err.to_string();
        assert!(!shown.contains("ann@example.com"), "{shown}");
        assert!(shown.contains("INVALID_EMAIL_ADDRESS [Email]"), "{shown}");
    }
}
