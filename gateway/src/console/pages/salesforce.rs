//! The Salesforce page's connection section: how this gateway authenticates to the org.

use axum::http::HeaderMap;
use maud::{Markup, html};

use crate::console::session::Operator;
use crate::http::AppState;

/// `<section id="connection">`: how the gateway reaches the org (a connection made in the
/// console, or the configured grant), Connect / Disconnect for admins, the connected app.
/// `done` is the `?done=` of the redirect after one of those actions.
pub async fn connection_section(
    state: &AppState,
    op: &Operator,
    headers: &HeaderMap,
    done: Option<&str>,
) -> Markup {
    match crate::console::connection_page::section(state, op, headers, done).await {
        Ok(section) => section,
        Err(e) => {
            let e = e.to_string();
            tracing::error!(error = %e, "console: the Salesforce connection cannot be shown");
            html! { section #connection { h2 { "Connection" } p.error { "The connection cannot be read right now; see the gateway's log." } } }
        }
    }
}
