//! `GET /console/search?q=`: any id to its session — the ids `GET /v1/sessions?id=` takes
//! (session id, Case id 15 or 18, CaseNumber, MIAW conversation id, MessagingSession id,
//! customer email or phone, with the same matching rules) and provider message ids (a
//! delivery's provider id, an inbound message's, an email's Message-ID). One match goes
//! straight to the session; several are listed.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;

use super::{at, more_note, or_dash, session_href, session_link};
use crate::console::error::ConsoleError;
use crate::console::home::search_box;
use crate::console::layout;
use crate::console::session::Operator;
use crate::http::AppState;
use crate::store::session;

/// Most sessions a search lists.
pub(crate) const MAX_RESULTS: usize = 50;
/// Longest search accepted, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 512;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/search", get(search))
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    op: Operator,
    Query(query): Query<SearchQuery>,
) -> Result<Response, ConsoleError> {
    let raw = query.q.unwrap_or_default();
    if raw.len() > MAX_QUERY_BYTES {
        let body = html! {
            (search_box(""))
            p.error role="alert" {
                "That search is too long: an id is at most " (MAX_QUERY_BYTES) " bytes."
            }
        };
        return Ok((
            StatusCode::BAD_REQUEST,
            layout::page("Search", Some(&op), body),
        )
            .into_response());
    }
    let q = raw.trim();
    if q.is_empty() {
        let body = html! {
            (search_box(""))
            p.notice { "Type an id to search: a session id, Case id or number, MIAW or MessagingSession id, email, phone or provider message id." }
        };
        return Ok(layout::page("Search", Some(&op), body).into_response());
    }
    let (found, more) = find(&state, q).await?;
    if let [only] = found.as_slice() {
        return Ok(Redirect::to(&session_href(&only.id)).into_response());
    }
    let body = html! {
        (search_box(q))
        @if found.is_empty() {
            p.notice #no-match { "No session matches " code { (q) } "." }
        } @else {
            h2 #results { (found.len()) " sessions match " code { (q) } }
            (results(&found))
            (more_note(found.len(), more, "matches"))
        }
    };
    Ok(layout::page("Search", Some(&op), body).into_response())
}

/// Sessions matching `q` by any id, newest first: at most [`MAX_RESULTS`], and whether
/// more matched.
async fn find(state: &AppState, q: &str) -> Result<(Vec<session::Model>, bool), ConsoleError> {
    let bound = MAX_RESULTS as u64 + 1;
    let mut found = state.store.find_sessions_page(q, None, bound).await?;
    let channels = state.channels.names();
    let by_provider: Vec<String> = state
        .store
        .session_ids_by_provider_id(q, &channels, bound)
        .await?
        .into_iter()
        .filter(|id| !found.iter().any(|s| &s.id == id))
        .collect();
    found.extend(state.store.sessions_by_ids(&by_provider).await?);
    found.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    found.dedup_by(|a, b| a.id == b.id);
    let more = found.len() > MAX_RESULTS;
    found.truncate(MAX_RESULTS);
    Ok((found, more))
}

fn results(sessions: &[session::Model]) -> maud::Markup {
    html! {
        table.results {
            thead { tr {
                th { "Session" } th { "Channel" } th { "Route" } th { "Status" }
                th { "Customer" } th { "Case" } th { "Created" }
            } }
            tbody {
                @for s in sessions {
                    tr {
                        td { (session_link(&s.id)) }
                        td { (s.channel) }
                        td { (s.route) }
                        td { span.badge { (s.status) } }
                        td { (or_dash(s.customer_name.as_deref())) }
                        td { (or_dash(s.salesforce_case_number.as_deref())) }
                        td { (at(s.created_at)) }
                    }
                }
            }
        }
    }
}
