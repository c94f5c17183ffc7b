//! `GET /v1/sandbox`: in sandbox mode, how to reach the built-in Salesforce
//! emulator and a token with every scope. 404 otherwise.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::openapi::{NotFound, Unavailable};
use crate::error::ApiError;

/// How to reach the sandbox's emulators, and a token with every scope (design §7).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SandboxInfo {
    pub salesforce_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub api_token: String,
    /// The `whsec_…` secret chat webhooks are signed with (design §7.1); `None` when chat is
    /// switched off or its secret comes from a file.
    pub webhook_secret: Option<String>,
    /// The secret rep-reply events to `POST /salesforce/events` are signed with
    /// (`X-Handoff-Signature`, contract §1); `None` when it comes from a file.
    pub case_webhook_secret: Option<String>,
    /// The Twilio emulator `[channels.sms]` points at (`None` when that table names an
    /// account of its own, or SMS is off).
    pub twilio_emulator: Option<crate::sandbox_channels::TwilioSandbox>,
    /// The WhatsApp Cloud API emulator `[channels.whatsapp]` points at (`None` when that
    /// table has credentials of its own, another provider, or WhatsApp is off).
    pub whatsapp_emulator: Option<crate::sandbox_channels::WhatsappSandbox>,
    /// A local console admin (`/console/login`) made for this sandbox.
    pub console_username: String,
    pub console_password: String,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sandbox))
}

/// In sandbox mode (`handoff serve --sandbox`), how to reach the built-in Salesforce
/// emulator (a connected app's client credentials) and an API token with every scope.
/// Unauthenticated: the sandbox listens on loopback only.
#[utoipa::path(
    get,
    path = "/v1/sandbox",
    operation_id = "sandbox",
    tag = "meta",
    responses(
        (status = 200, description = "The sandbox's emulators and its admin token.", body = SandboxInfo),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
async fn sandbox(State(state): State<AppState>) -> Result<Json<Arc<SandboxInfo>>, ApiError> {
    state.sandbox.clone().map(Json).ok_or(ApiError::NotFound)
}
