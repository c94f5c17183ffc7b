//! The console's one error type: an HTML page with the status, never a stack trace or a
//! database message (those are logged once).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Not signed in: a GET goes to the sign-in page and comes back to `next`.
    #[error("sign in to continue")]
    SignIn { next: String },
    /// The form's CSRF token is missing or wrong (a stale tab, or a forged request).
    #[error(
        "this form has expired or did not come from this console; go back, reload the page and try again"
    )]
    Csrf,
    /// A read-only operator tried an admin action.
    #[error("this needs an admin; ask an admin of this console to do it")]
    AdminOnly,
    /// Nothing there (never says whether something else exists).
    #[error("not found")]
    NotFound,
    /// A form field is wrong; the message names it and says what to do.
    #[error("{0}")]
    Invalid(String),
    /// Anything else: logged, shown as a generic error.
    #[error("internal error")]
    Internal(String),
}

impl From<sea_orm::DbErr> for ConsoleError {
    fn from(e: sea_orm::DbErr) -> Self {
        ConsoleError::Internal(e.to_string())
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound => ConsoleError::NotFound,
            ApiError::Invalid { detail, .. } => ConsoleError::Invalid(detail),
            other => ConsoleError::Internal(other.to_string()),
        }
    }
}

impl ConsoleError {
    fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::Csrf | ConsoleError::AdminOnly => StatusCode::FORBIDDEN,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::Invalid(_) => StatusCode::BAD_REQUEST,
            ConsoleError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if let ConsoleError::SignIn { next } = &self {
            let target = format!(
                "/console/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            );
            return Redirect::to(&target).into_response();
        }
        if let ConsoleError::Internal(cause) = &self {
            tracing::error!(error = %cause, "console request failed");
        }
        let status = self.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = super::layout::bare(
            title,
            html! {
                h1 { (title) }
                p.error { (self.to_string()) }
                p { a href="/console" { "Back to the console" } }
            },
        );
        let mut response = (status, body).into_response();
        super::layout::harden(response.headers_mut());
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
