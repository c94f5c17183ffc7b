//! Graph API error answers:
//! `{"error":{"message","type","code","error_subcode"?,"error_data":{"messaging_product","details"}?,"fbtrace_id"}}`.

use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderValue, StatusCode, header};
use rand::Rng;
use serde_json::{Map, Value, json};

/// One Graph error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GraphError {
    pub(crate) status: StatusCode,
    pub(crate) code: u32,
    pub(crate) subcode: Option<u32>,
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<String>,
    pub(crate) retry_after: Option<u64>,
}

impl GraphError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code,
            subcode: None,
            kind: "OAuthException",
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// 401, code 190: the access token is wrong or missing.
    pub(crate) fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        )
    }

    /// 400, code 100 subcode 33: the phone number id is not ours.
    pub(crate) fn unknown_object(id: &str) -> Self {
        GraphError {
            subcode: Some(33),
            kind: "GraphMethodException",
            ..Self::new(
                StatusCode::BAD_REQUEST,
                100,
                format!(
                    "Unsupported post request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
                ),
            )
        }
    }

    /// 400, code 2500: the path is not a Graph path (unverified code, see the docs).
    pub(crate) fn unknown_path(path: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            2500,
            format!("Unknown path components: {path}"),
        )
    }

    /// 400, code 100: an invalid parameter, `details` saying which.
    pub(crate) fn invalid_parameter(details: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 100, "(#100) Invalid parameter").with_details(details)
    }

    /// 400, code 100: `messaging_product` missing or not `whatsapp`.
    pub(crate) fn messaging_product() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) The parameter messaging_product is required.",
        )
    }

    /// 400, code 131008: a required parameter is missing.
    pub(crate) fn missing(details: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            131008,
            "(#131008) Required parameter is missing",
        )
        .with_details(details)
    }

    /// 400, code 131047: free-form message outside the 24-hour window.
    pub(crate) fn re_engagement() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            131047,
            "(#131047) Re-engagement message",
        )
        .with_details(
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        )
    }

    /// 400, code 132001: the template is not approved for the account.
    pub(crate) fn template_missing(name: &str, language: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            132001,
            "(#132001) Template name does not exist in the translation",
        )
        .with_details(format!(
            "template name ({name}) does not exist in {language}"
        ))
    }

    /// 429, code 130429 (Cloud API throughput reached), with `Retry-After`.
    pub(crate) fn rate_limited(retry_after_secs: u64) -> Self {
        GraphError {
            retry_after: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                130429,
                "(#130429) Rate limit hit",
            )
            .with_details("Cloud API message throughput has been reached.")
        }
    }

    /// A 5xx answer: code 2 for 503 (service temporarily unavailable), else 131000.
    pub(crate) fn server_error(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            Self::new(status, 2, "(#2) Service temporarily unavailable")
        } else {
            Self::new(status, 131000, "(#131000) Something went wrong")
                .with_details("Message failed to send due to an unknown error.")
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Value {
        let mut error = Map::new();
        error.insert("message".into(), json!(self.message));
        error.insert("type".into(), json!(self.kind));
        error.insert("code".into(), json!(self.code));
        if let Some(sub) = self.subcode {
            error.insert("error_subcode".into(), json!(sub));
        }
        if let Some(details) = &self.details {
            error.insert(
                "error_data".into(),
                json!({"messaging_product": "whatsapp", "details": details}),
            );
        }
        error.insert("fbtrace_id".into(), json!(fbtrace_id()));
        json!({ "error": error })
    }
}

/// A random trace id like Graph's (`A` + 22 URL-safe base64 characters).
fn fbtrace_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes[..]);
    format!("A{}", &URL_SAFE_NO_PAD.encode(bytes)[..22])
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            self.body().to_string(),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "OAuth \"Facebook Platform\" \"invalid_token\" \"Invalid OAuth access token - Cannot parse access token\"",
                ),
            );
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
