//! `GET /console/live`: live (MIAW) sessions whose conversation is not over, and which
//! replica holds each one's event stream.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};

use super::{at_ms, more_note, or_dash, session_link};
use crate::console::error::ConsoleError;
use crate::console::layout;
use crate::console::session::Operator;
use crate::http::AppState;
use crate::store::now_ms;

/// Most live sessions listed.
const LIMIT: u64 = 200;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/live", get(list))
}

async fn list(State(state): State<AppState>, op: Operator) -> Result<Markup, ConsoleError> {
    let mut rows = state.store.streaming_live_sessions(LIMIT + 1).await?;
    let more = rows.len() as u64 > LIMIT;
    rows.truncate(LIMIT as usize);
    let now = now_ms();
    let body = html! {
        h1 { "Live sessions" }
        @if state.live.is_none() {
            p.muted { "Live messaging ([miaw]) is off on this gateway." }
        }
        @if rows.is_empty() {
            p.muted #no-live-sessions { "No live conversation is going on." }
        } @else {
            table.live {
                thead { tr {
                    th { "Session" } th { "Conversation id" } th { "State" } th { "Rep" }
                    th { "Stream held by" } th { "Lease until" } th { "Started" }
                } }
                tbody {
                    @for l in &rows {
                        tr {
                            td { (session_link(&l.session_id)) }
                            td { (l.conversation_id) }
                            td { span.badge { (l.state) } }
                            td { (or_dash(l.rep_name.as_deref())) }
                            td { (or_dash(l.owner.as_deref())) }
                            td {
                                @match l.lease_until {
                                    Some(until) if until < now => { (at_ms(until)) " " span.bad { "(expired)" } }
                                    Some(until) => (at_ms(until)),
                                    None => (or_dash(None)),
                                }
                            }
                            td { (at_ms(l.created_at)) }
                        }
                    }
                }
            }
            (more_note(rows.len(), more, "live sessions"))
        }
    };
    Ok(layout::page("Live sessions", Some(&op), body))
}
