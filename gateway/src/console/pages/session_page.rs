//! `GET /console/sessions/{id}`: one session's whole story — its facts and Salesforce ids
//! (deep links into the org), the AI's summary, the transcript, the timeline of events,
//! the outbox, the live conversation and the customer's inbound messages and emails.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::{at, at_ms, more_note, or_dash, session_link};
use crate::console::error::ConsoleError;
use crate::console::layout;
use crate::console::session::Operator;
use crate::http::AppState;
use crate::store::{InboundMessageSummary, InboundSummary, delivery, event, live_session, session};

/// Most events shown (oldest first).
const MAX_EVENTS: u64 = 500;
/// Most deliveries shown (oldest first).
const MAX_DELIVERIES: u64 = 200;
/// Most inbound messages and emails shown (newest first), each.
const MAX_INBOUND: u64 = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/sessions/{id}", get(show))
}

/// What the page reads of the stored escalation payload; anything else in it is ignored.
#[derive(Deserialize)]
struct StoredPayload {
    #[serde(default)]
    summary: Option<String>,
    conversation: StoredConversation,
}

#[derive(Deserialize)]
struct StoredConversation {
    #[serde(default)]
    turns: Vec<StoredTurn>,
}

#[derive(Deserialize)]
struct StoredTurn {
    role: String,
    text: String,
    at: String,
}

async fn show(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Result<Markup, ConsoleError> {
    if id.len() > 256 {
        return Err(ConsoleError::NotFound);
    }
    let s = state
        .store
        .session(&id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let store = &state.store;
    let events = store.events_page(&s.id, None, MAX_EVENTS + 1).await?;
    let deliveries = store
        .deliveries_page(&s.id, None, MAX_DELIVERIES + 1)
        .await?;
    let live = store.live_session(&s.id).await?;
    let messages = store
        .inbound_messages_of_session(&s.id, MAX_INBOUND + 1)
        .await?;
    let emails = store
        .inbound_emails_of_session(&s.id, MAX_INBOUND + 1)
        .await?;
    let org = org_base(&state);
    let payload = if s.payload.is_empty() {
        Err("The transcript and summary were erased by retention.")
    } else {
        serde_json::from_str::<StoredPayload>(&s.payload)
            .map_err(|_| "The stored request could not be read.")
    };
    let title = format!("Session {}", s.id);
    let body = html! {
        h1 { "Session " code { (s.id) } }
        (facts(&s, live.as_ref(), org.as_deref()))
        h2 #summary { "Summary" }
        @match &payload {
            Ok(p) => {
                @match p.summary.as_deref().filter(|t| !t.trim().is_empty()) {
                    Some(summary) => div.summary.text { (summary) },
                    None => p.muted { "The AI sent no summary." },
                }
            }
            Err(why) => p.muted { (why) },
        }
        h2 #transcript { "Transcript" }
        @match &payload {
            Ok(p) => (transcript(&p.conversation.turns)),
            Err(why) => p.muted { (why) },
        }
        h2 #timeline { "Timeline" }
        (timeline(&events))
        h2 #outbox { "Outbox" }
        (outbox(&deliveries))
        h2 #inbound { "Inbound from the customer" }
        (inbound(&messages, &emails))
    };
    Ok(layout::page(&title, Some(&op), body))
}

/// The org's base URL for deep links: the instance URL of the client's last access token,
/// else the configured login URL; only http(s), only the origin.
fn org_base(state: &AppState) -> Option<String> {
    let known = state.salesforce.instance_url();
    let url = match known {
        Some(url) => url,
        None => url::Url::parse(&state.config.salesforce.login_url).ok()?,
    };
    (matches!(url.scheme(), "http" | "https") && url.has_host())
        .then(|| url.origin().ascii_serialization())
}

/// `{org}/lightning/r/{object}/{id}/view` when `id` is a well-formed Salesforce id.
fn record_link(org: Option<&str>, object: &str, id: Option<&str>) -> Markup {
    let Some(id) = id else {
        return or_dash(None);
    };
    match (org, salesforce::SalesforceId::parse(id)) {
        (Some(org), Ok(parsed)) => html! {
            a href=(format!("{org}/lightning/r/{object}/{}/view", parsed.as_str()))
                rel="noopener noreferrer" target="_blank" { (id) }
        },
        _ => html! { (id) },
    }
}

fn facts(s: &session::Model, live: Option<&live_session::Model>, org: Option<&str>) -> Markup {
    html! {
        dl.facts {
            dt { "Status" } dd { span.badge #status { (s.status) } }
            dt { "Route" } dd { (s.route) }
            dt { "Channel" } dd { (s.channel) }
            dt { "Priority" } dd { (s.priority) }
            dt { "Language" } dd { (s.language) }
            dt { "Subject" } dd { (or_dash(s.subject.as_deref())) }
            dt { "Customer" } dd { (or_dash(s.customer_name.as_deref())) }
            dt { "Email" } dd { (or_dash(s.customer_email.as_deref())) }
            dt { "Phone" } dd { (or_dash(s.customer_phone.as_deref())) }
            dt { "Created" } dd { (at(s.created_at)) }
            dt { "Updated" } dd { (at(s.updated_at)) }
            dt { "Case" } dd #case-link { (record_link(org, "Case", s.salesforce_case_id.as_deref())) }
            dt { "Case id (15)" } dd { (or_dash(s.salesforce_case_id15.as_deref())) }
            dt { "Case number" } dd { (or_dash(s.salesforce_case_number.as_deref())) }
            dt { "MIAW conversation" } dd { (or_dash(s.salesforce_miaw_session_id.as_deref())) }
            dt { "MessagingSession" } dd #messaging-session-link {
                (record_link(org, "MessagingSession", s.salesforce_messaging_session_id.as_deref()))
            }
            @if let Some(joined) = &s.joined_session_id {
                dt { "Joined the Case of" } dd { (session_link(joined)) }
            }
            dt { "Case comments written" } dd { (s.comments_written) }
            dt { "Salesforce calls" } dd { (s.salesforce_calls) }
            dt { "Last error" } dd { (or_dash(s.last_error.as_deref())) }
            @if let Some(l) = live {
                dt { "Live state" } dd { span.badge { (l.state) } }
                dt { "Rep" } dd { (or_dash(l.rep_name.as_deref())) }
                dt { "Stream held by" } dd {
                    (or_dash(l.owner.as_deref()))
                    @if let Some(until) = l.lease_until { " until " (at_ms(until)) }
                }
            }
        }
    }
}

fn transcript(turns: &[StoredTurn]) -> Markup {
    html! {
        @if turns.is_empty() {
            p.muted { "No turns." }
        } @else {
            div.transcript {
                @for t in turns {
                    div.msg {
                        span.role { (t.role) }
                        span.muted.when { (turn_time(&t.at)) }
                        div.text { (t.text) }
                    }
                }
            }
        }
    }
}

fn turn_time(text: &str) -> String {
    DateTime::parse_from_rfc3339(text)
        .map(|t| at(t.with_timezone(&Utc)))
        .unwrap_or_else(|_| text.to_string())
}

fn timeline(events: &[event::Model]) -> Markup {
    let more = events.len() as u64 > MAX_EVENTS;
    let shown = &events[..events.len().min(MAX_EVENTS as usize)];
    html! {
        @if shown.is_empty() {
            p.muted { "No events." }
        } @else {
            ol.timeline {
                @for e in shown {
                    li.event {
                        span.muted.when { (at(e.at)) } " "
                        strong.kind { (e.kind) }
                        pre.data { (pretty(&e.data)) }
                    }
                }
            }
            (more_note(shown.len(), more, "events"))
        }
    }
}

/// Event data as indented JSON (the stored text when it does not parse).
fn pretty(data: &str) -> String {
    serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| data.to_string())
}

fn outbox(deliveries: &[delivery::Model]) -> Markup {
    let more = deliveries.len() as u64 > MAX_DELIVERIES;
    let shown = &deliveries[..deliveries.len().min(MAX_DELIVERIES as usize)];
    html! {
        @if shown.is_empty() {
            p.muted { "Nothing was sent to the customer." }
        } @else {
            table.outbox {
                thead { tr {
                    th { "Created" } th { "Type" } th { "Channel" } th { "State" }
                    th { "Provider id" } th { "Provider status" } th { "Attempts" }
                    th { "Last error" } th { "Updated" }
                } }
                tbody {
                    @for d in shown {
                        tr {
                            td { (at_ms(d.created_at)) }
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
                            td { (at_ms(d.updated_at)) }
                        }
                    }
                }
            }
            (more_note(shown.len(), more, "deliveries"))
        }
    }
}

fn inbound(messages: &[InboundMessageSummary], emails: &[InboundSummary]) -> Markup {
    let bound = MAX_INBOUND as usize;
    html! {
        @if messages.is_empty() && emails.is_empty() {
            p.muted { "No inbound messages or emails." }
        }
        @if !messages.is_empty() {
            table.inbound-messages {
                thead { tr {
                    th { "Received" } th { "Channel" } th { "Provider message id" }
                    th { "From" } th { "What became of it" }
                } }
                tbody {
                    @for m in messages.iter().take(bound) {
                        tr {
                            td { (at_ms(m.received_at)) }
                            td { (m.channel) }
                            td { (m.provider_message_id) }
                            td { (or_dash(m.from_address.as_deref())) }
                            td { span.badge { (m.state) } }
                        }
                    }
                }
            }
            (more_note(bound.min(messages.len()), messages.len() > bound, "inbound messages"))
        }
        @if !emails.is_empty() {
            table.inbound-emails {
                thead { tr {
                    th { "Received" } th { "Message-ID" } th { "From" } th { "Subject" }
                    th { "What became of it" }
                } }
                tbody {
                    @for e in emails.iter().take(bound) {
                        tr {
                            td { (at_ms(e.received_at)) }
                            td { (or_dash(e.message_id.as_deref())) }
                            td { (or_dash(e.from_address.as_deref())) }
                            td { (or_dash(e.subject.as_deref())) }
                            td { span.badge { (e.state) } }
                        }
                    }
                }
            }
            (more_note(bound.min(emails.len()), emails.len() > bound, "inbound emails"))
        }
    }
}
