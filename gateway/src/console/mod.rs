//! The ops console at `/console`: server-rendered HTML (maud) over the same store the API
//! reads, for support operators. Search works without JavaScript; every form is a POST
//! with a CSRF token; admins may act (retry, revoke, create tokens, connect Salesforce),
//! operators only read. See docs/console.md.
//!
//! - [`session`]: sign-ins (cookie, CSRF token, the [`session::Operator`] extractor).
//! - [`login`]: local accounts' sign-in page, sign-out.
//! - [`layout`]: the page frame and the security headers of every console response.
//! - [`home`]: the landing page with the search box.
//! - [`pages`]: search, sessions, dead jobs, failed deliveries, unmatched inbound, live
//!   sessions, Salesforce, API tokens.
//! - [`oauth`]: Sign in with Salesforce and Connect Salesforce ([`connection`] holds what is
//!   connected, [`connection_page`] shows it).

pub mod accounts;
pub mod connection;
pub mod connection_page;
pub mod error;
mod home;
pub mod layout;
mod login;
pub mod oauth;
pub mod pages;
pub mod password;
pub mod session;

use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::AppState;

/// The console's routes (empty when `console.enabled` is false).
pub fn router(state: &AppState) -> Router<AppState> {
    if !state.config.console.enabled {
        return Router::new();
    }
    Router::new()
        .merge(login::router())
        .merge(home::router())
        .merge(pages::router())
        .merge(oauth::router())
        .route("/console/assets/console.css", get(css))
        .layer(axum::middleware::from_fn(harden))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        layout::CSS,
    )
        .into_response()
}

/// Adds the console's security headers to every response.
async fn harden(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    layout::harden(response.headers_mut());
    response
}

/// Whether the sign-in page offers "Sign in with Salesforce": a consumer key is configured
/// and someone is allowed in.
pub fn salesforce_sign_in_offered(state: &AppState) -> bool {
    let sf = &state.config.console.salesforce;
    sf.client_id.is_some()
        && !(sf.allowed_users.is_empty()
            && sf.allowed_profiles.is_empty()
            && sf.allowed_permission_sets.is_empty())
}
