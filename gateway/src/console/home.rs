//! The landing page: one search box that takes any id.

use axum::Router;
use axum::routing::get;
use maud::{Markup, html};

use super::layout;
use super::session::Operator;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console", get(home))
}

async fn home(op: Operator) -> Markup {
    layout::page("Search", Some(&op), search_box(""))
}

/// The search form (GET, works without JavaScript).
pub fn search_box(value: &str) -> Markup {
    html! {
        h1 { "Find a session" }
        form.search method="get" action="/console/search" role="search" {
            input #q type="search" name="q" value=(value) autofocus
                placeholder="Session id, Case id or number, MIAW or MessagingSession id, email, phone, provider message id"
                aria-label="Any id";
            button #search type="submit" { "Search" }
        }
    }
}
