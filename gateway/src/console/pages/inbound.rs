//! `GET /console/inbound`: customer emails and messages (SMS, WhatsApp, bridges) no
//! session took, newest first.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};

use super::{at_ms, more_note, or_dash};
use crate::console::error::ConsoleError;
use crate::console::layout;
use crate::console::session::Operator;
use crate::http::AppState;
use crate::store::{InboundMessageState, InboundState};

/// Most emails, and most messages, listed.
const LIMIT: u64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/inbound", get(list))
}

async fn list(State(state): State<AppState>, op: Operator) -> Result<Markup, ConsoleError> {
    let mut emails = state
        .store
        .inbound_emails_page(InboundState::Unmatched.as_str(), None, LIMIT + 1)
        .await?;
    let more_emails = emails.len() as u64 > LIMIT;
    emails.truncate(LIMIT as usize);
    let mut messages = state
        .store
        .inbound_messages_page(InboundMessageState::Unmatched.as_str(), None, LIMIT + 1)
        .await?;
    let more_messages = messages.len() as u64 > LIMIT;
    messages.truncate(LIMIT as usize);
    let body = html! {
        h1 { "Unmatched inbound" }
        h2 #emails { "Emails" }
        @if emails.is_empty() {
            p.muted #no-unmatched-emails { "No unmatched emails." }
        } @else {
            table.inbound-emails {
                thead { tr {
                    th { "Received" } th { "From" } th { "Subject" } th { "Message-ID" }
                    th { "Size" } th { "Why" }
                } }
                tbody {
                    @for e in &emails {
                        tr {
                            td { (at_ms(e.received_at)) }
                            td { (or_dash(e.from_address.as_deref())) }
                            td { (or_dash(e.subject.as_deref())) }
                            td { (or_dash(e.message_id.as_deref())) }
                            td { (e.size) " bytes" }
                            td { (or_dash(e.reason.as_deref())) }
                        }
                    }
                }
            }
            (more_note(emails.len(), more_emails, "emails"))
        }
        h2 #messages { "Messages" }
        @if messages.is_empty() {
            p.muted #no-unmatched-messages { "No unmatched messages." }
        } @else {
            table.inbound-messages {
                thead { tr {
                    th { "Received" } th { "Channel" } th { "From" } th { "To" }
                    th { "Provider message id" }
                } }
                tbody {
                    @for m in &messages {
                        tr {
                            td { (at_ms(m.received_at)) }
                            td { (m.channel) }
                            td { (or_dash(m.from_address.as_deref())) }
                            td { (or_dash(m.to_address.as_deref())) }
                            td { (m.provider_message_id) }
                        }
                    }
                }
            }
            (more_note(messages.len(), more_messages, "messages"))
        }
    };
    Ok(layout::page("Unmatched inbound", Some(&op), body))
}
