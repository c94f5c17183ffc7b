//! `GET /console/deliveries`: messages to customers that failed — our side gave up, the
//! provider refused, the customer had opted out — or that the provider later reported
//! undelivered, most recent first.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};

use super::{at_ms, more_note, or_dash, session_link};
use crate::console::error::ConsoleError;
use crate::console::layout;
use crate::console::session::Operator;
use crate::http::AppState;
use crate::store::INBOUND_SESSION_PREFIX;

/// Most deliveries listed.
const LIMIT: u64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/deliveries", get(list))
}

async fn list(State(state): State<AppState>, op: Operator) -> Result<Markup, ConsoleError> {
    let mut rows = state.store.failed_deliveries(LIMIT + 1).await?;
    let more = rows.len() as u64 > LIMIT;
    rows.truncate(LIMIT as usize);
    let body = html! {
        h1 { "Failed deliveries" }
        @if rows.is_empty() {
            p.muted #no-failed-deliveries { "No failed deliveries." }
        } @else {
            table.deliveries {
                thead { tr {
                    th { "Changed" } th { "Session" } th { "Type" } th { "Channel" }
                    th { "State" } th { "Provider id" } th { "Provider status" }
                    th { "Attempts" } th { "Last error" }
                } }
                tbody {
                    @for d in &rows {
                        tr {
                            td { (at_ms(d.updated_at)) }
                            td {
                                @match d.session_id.strip_prefix(INBOUND_SESSION_PREFIX) {
                                    Some(message) => { "answer to inbound message " code { (message) } }
                                    None => (session_link(&d.session_id)),
                                }
                            }
                            td { (d.kind) }
                            td { (d.channel) }
                            td { span.badge { (d.state) } }
                            td { (or_dash(d.provider_id.as_deref())) }
                            td {
                                (or_dash(d.provider_status.as_deref()))
                                @if let Some(code) = &d.provider_error_code { " (" (code) ")" }
                            }
                            td { (d.attempts) }
                            td { (or_dash(d.last_error.as_deref())) }
                        }
                    }
                }
            }
            (more_note(rows.len(), more, "deliveries"))
        }
    };
    Ok(layout::page("Failed deliveries", Some(&op), body))
}
