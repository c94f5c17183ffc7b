//! The HTTP API (design §7). One router per module, merged here.

pub(crate) mod auth;
pub(crate) mod body;
mod escalations;
pub(crate) mod extract;
mod health;
mod idempotency;
pub mod jobs;
pub mod live;
mod metrics_layer;
pub mod openapi;
pub(crate) mod page;
mod sandbox;
pub mod schemas;
pub mod sessions;
mod shed;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::Request;
use tokio::sync::{Notify, Semaphore};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Config;
use crate::escalation::gate::Gate;
use crate::store::Store;

pub use sandbox::SandboxInfo;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub config: Arc<Config>,
    pub channels: Arc<channels::Registry>,
    /// Wakes the worker when a job is enqueued.
    pub wake: Arc<Notify>,
    /// The Salesforce circuit breaker / rate-limit pause (shown in /readyz and /metrics).
    pub gate: Arc<Gate>,
    /// The Salesforce client (its counters feed /metrics).
    pub salesforce: salesforce::Client,
    /// Set only in sandbox mode.
    pub sandbox: Option<Arc<SandboxInfo>>,
    /// Live messaging, when `[miaw]` is enabled (office hours decide the route).
    pub live: Option<Arc<crate::live::Live>>,
    /// Tells `GET /v1/sessions/{id}/stream` subscribers that a session has new deliveries.
    pub feed: crate::outbox::feed::Feed,
    /// Permits for open session streams (`http.max_session_streams`).
    pub session_streams: Arc<Semaphore>,
    /// Rep replies: push authentication and counters.
    pub replies: Arc<crate::replies::Replies>,
    /// The inbound email route's settings (`[channels.email.inbound]`).
    pub inbound: Arc<crate::inbound::InboundSettings>,
    /// The keys that seal the secrets Handoff stores (`[secrets]`, docs/security.md).
    pub keys: Arc<crate::secrets::Keyring>,
}

/// The bearer-token API (every POST honours `Idempotency-Key`) and this API's description.
/// Every route is added with `routes!`, so it is in the OpenAPI document too.
fn token_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(escalations::router())
        .merge(sessions::router())
        .merge(live::router())
        .merge(jobs::router())
        .merge(sandbox::router())
        .merge(tokens::router())
        .routes(routes!(openapi::serve))
}

/// Every documented route: the token API and the `/v1` routes of [`crate::inbound`]. The
/// OpenAPI document ([`openapi::document`]) is built from exactly these; [`router`] serves them.
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    token_api().merge(crate::inbound::router())
}

pub fn router(state: AppState) -> Router {
    let permits = Arc::new(Semaphore::new(state.config.http.max_in_flight));
    let (api, _) = token_api().split_for_parts();
    let api = api
        // Every POST above honours an Idempotency-Key header (not the fallback).
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        // Outermost: a shed request costs no database work and no body read.
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&permits),
            shed::shed,
        ));
    // Rep-reply events and the mail provider's webhook carry their own
    // authentication (a signature, not a token) and no Idempotency-Key: the
    // event id, or the email's Message-ID, is the key.
    let events = crate::replies::push::router().route_layer(axum::middleware::from_fn_with_state(
        Arc::clone(&permits),
        shed::shed,
    ));
    let (inbound, _) = crate::inbound::router().split_for_parts();
    let inbound = inbound.route_layer(axum::middleware::from_fn_with_state(
        Arc::clone(&permits),
        shed::shed,
    ));
    let console = crate::console::router(&state)
        .route_layer(axum::middleware::from_fn_with_state(permits, shed::shed));
    Router::new()
        .merge(api)
        .merge(events)
        .merge(inbound)
        .merge(console)
        // Never shed: orchestrators must see the gateway alive and ready while it is busy.
        .merge(health::router())
        .fallback(|| async { crate::error::ApiError::NotFound })
        .with_state(state)
        // Per route (so the matched template is known), around shedding and every handler.
        .layer(axum::middleware::from_fn(metrics_layer::record))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
        ]))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The span every request is logged in: the method and the route's *template*
/// (`/v1/sessions/{id}`), never the URI, whose path and query carry session ids,
/// emails, phone numbers and tokens (`?id=…`, `?access_token=…`).
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::debug_span!("request", method = %request.method(), route, request_id)
}
