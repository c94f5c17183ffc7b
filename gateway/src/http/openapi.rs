//! The OpenAPI 3.1 document of the `/v1` API, built from the handlers' `#[utoipa::path]`
//! annotations by the same `OpenApiRouter`s that route them (`http::api_routes`), served
//! unauthenticated at `GET /v1/openapi.json`, printed by `handoff openapi` and committed as
//! `docs/openapi.json` (a test fails when they differ).

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, LicenseBuilder, OpenApi as Document};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::error::Problem;

/// The name of the bearer-token security scheme every authenticated operation names.
pub const BEARER: &str = "bearer";

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(OpenApi)]
#[openapi(
    components(
        schemas(Problem),
        responses(
            BadRequest,
            Unauthenticated,
            InvalidSignature,
            Forbidden,
            NotFound,
            RequestTimeout,
            PayloadTooLarge,
            UnsupportedMediaType,
            IdempotencyKeyReused,
            ServerError,
            Unavailable
        )
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "escalations", description = "Hand a conversation to a human rep."),
        (name = "sessions", description = "Read sessions, their timelines and their outbox."),
        (name = "live", description = "Live sessions: customer messages, closing, the event stream."),
        (name = "inbound", description = "What customers sent back: inbound messages and emails, bridge webhooks."),
        (name = "operations", description = "Operators: jobs, the dead-letter queue, API tokens."),
        (name = "meta", description = "The sandbox and this document.")
    )
)]
struct ApiDoc;

/// Adds the bearer-token scheme. Scopes (`read`, `escalate`, `admin`) are named in each
/// operation's security requirement; `admin` grants every scope and `escalate` grants `read`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`hnd_…`) from `handoff tokens create --scopes …`. Each \
                         operation names the scope it needs; `admin` grants every scope, \
                         `escalate` also grants `read`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document: the annotations of every routed `/v1` handler plus the shared parts.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi().merge_from(super::api_routes().into_openapi());
    doc.info = InfoBuilder::new()
        .title("Handoff API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Hands AI-bot support conversations to human reps in Salesforce and carries their \
             replies back to the customer. Every error is `application/problem+json` with \
             `type`, `title`, `status`, `detail`, a stable `code` and, where there is one, the \
             offending `field`. Every POST that takes a bearer token honours an \
             `Idempotency-Key` header.",
        ))
        .license(Some(
            LicenseBuilder::new()
                .name(env!("CARGO_PKG_LICENSE"))
                .identifier(Some(env!("CARGO_PKG_LICENSE")))
                .build(),
        ))
        .build();
    doc
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn to_json() -> String {
    let mut text = serde_json::to_string_pretty(&document())
        .unwrap_or_else(|e| unreachable!("the OpenAPI document serializes: {e}"));
    text.push('\n');
    text
}

static JSON: LazyLock<String> = LazyLock::new(to_json);

/// `GET /v1/openapi.json`: this API's description (OpenAPI 3.1), unauthenticated.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the `/v1` API.", body = Object, content_type = "application/json"),
        (status = 503, response = Unavailable)
    )
)]
pub(super) async fn serve() -> Response {
    let mut response = JSON.as_str().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// 400: the request or one of its fields is invalid; `field` names it.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(pub Problem);

/// 401 (`unauthenticated`): no bearer token, or not a live one. Answered with
/// `WWW-Authenticate: Bearer`.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct Unauthenticated(pub Problem);

/// 401 (`invalid_signature`): the webhook's signature is missing, invalid or expired (which
/// check failed is logged, never said).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct InvalidSignature(pub Problem);

/// 403 (`insufficient_scope`): the token lacks the operation's scope.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Forbidden(pub Problem);

/// 404 (`not_found`): nothing there. Never says whether something else exists.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// 408 (`body_timeout`): the request body did not arrive within `http.body_read_timeout_secs`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct RequestTimeout(pub Problem);

/// 413 (`body_too_large`): the body is over the configured limit.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(pub Problem);

/// 415 (`unsupported_media_type`): the body is not `application/json`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UnsupportedMediaType(pub Problem);

/// 422 (`idempotency_key_reused`): this `Idempotency-Key` was already used with a different
/// request.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct IdempotencyKeyReused(pub Problem);

/// 500 (`internal`): a bug or an unexpected failure; details only in the gateway's log.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct ServerError(pub Problem);

/// 503: the gateway is at `http.max_in_flight` (`overloaded`) or the database is unavailable
/// (`unavailable`); retry after `Retry-After` seconds.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))
)]
pub struct Unavailable(pub Problem);

/// The `Idempotency-Key` header every POST with a bearer token honours (IETF
/// draft-ietf-httpapi-idempotency-key-header): a repeat of a completed request gets the same
/// status and body back with `Idempotent-Replayed: true`; a repeat while it runs gets 409; the
/// same key with another request gets 422.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// 1–255 printable ASCII characters; the quoted structured-field form (`"abc"`) is the same
    /// key as `abc`. Scoped to the token.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[ -~]{1,255}$"
    )]
    pub idempotency_key: Option<String>,
}
