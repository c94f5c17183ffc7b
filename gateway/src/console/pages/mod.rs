//! The console's pages over the store: search by any id, one session's whole story, the
//! dead jobs (retry), failed deliveries, unmatched inbound, live sessions, Salesforce's
//! health and connection, and API tokens (create, revoke). Every list is bounded; every
//! value goes through maud's escaping; every action is a POST carrying the CSRF token and
//! needs an admin.

mod deliveries;
mod inbound;
mod jobs;
mod live;
pub mod salesforce;
mod salesforce_status;
mod search;
mod session_page;
mod tokens;

use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use maud::{Markup, html};

use crate::http::AppState;

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(search::router())
        .merge(session_page::router())
        .merge(jobs::router())
        .merge(deliveries::router())
        .merge(inbound::router())
        .merge(live::router())
        .merge(salesforce_status::router())
        .merge(tokens::router())
}

/// `2026-12-02 10:15:03 UTC` from epoch milliseconds (empty for an impossible value).
pub(crate) fn at_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(at)
        .unwrap_or_default()
}

/// `2026-12-02 10:15:03 UTC`.
pub(crate) fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A link to a session's page (the id is a path segment, percent-encoded).
pub(crate) fn session_link(id: &str) -> Markup {
    html! { a href=(session_href(id)) { (id) } }
}

/// `/console/sessions/{id}` with `id` percent-encoded as one path segment.
pub(crate) fn session_href(id: &str) -> String {
    format!("/console/sessions/{}", segment(id))
}

/// Percent-encodes `text` as one URL path segment (everything but unreserved characters).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `text`, or a muted dash when there is none.
pub(crate) fn or_dash(text: Option<&str>) -> Markup {
    match text {
        Some(t) if !t.is_empty() => html! { (t) },
        _ => html! { span.muted { "—" } },
    }
}

/// "Showing the first N" when a list was cut at its bound.
pub(crate) fn more_note(shown: usize, more: bool, what: &str) -> Markup {
    html! {
        @if more {
            p.muted.more { "Showing the first " (shown) " " (what) "; more exist." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_one_path_segment() {
        assert_eq!(session_href("abc-1_2.x~"), "/console/sessions/abc-1_2.x~");
        assert_eq!(
            session_href("a/b?c#d e%"),
            "/console/sessions/a%2Fb%3Fc%23d%20e%25"
        );
        assert_eq!(session_href("é"), "/console/sessions/%C3%A9");
    }

    #[test]
    fn times_render_in_utc() {
        assert_eq!(at_ms(0), "1970-01-01 00:00:00 UTC");
    }
}
