//! `GET /console/salesforce`: the circuit breaker, the org's API usage as Salesforce last
//! reported it (`Sforce-Limit-Info`), this replica's request counters, and the connection.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use maud::{Markup, html};

use super::salesforce::connection_section;
use crate::console::layout;
use crate::console::session::Operator;
use crate::escalation::gate::OpenReason;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/console/salesforce", get(show))
}

#[derive(serde::Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Query(query): Query<DoneQuery>,
) -> Markup {
    let connection = connection_section(&state, &op, &headers, query.done.as_deref()).await;
    let gate = state.gate.snapshot();
    let limits = state.salesforce.limit_info();
    let stats = state.salesforce.stats();
    let instance = state.salesforce.instance_url();
    let body = html! {
        h1 { "Salesforce" }
        section #breaker {
            h2 { "Circuit breaker" }
            dl.facts {
                dt { "State" } dd { span.badge #breaker-state { (gate.state) } }
                dt { "Why open" } dd {
                    @match gate.reason {
                        Some(OpenReason::RateLimited) => "Salesforce answered REQUEST_LIMIT_EXCEEDED",
                        Some(OpenReason::Unavailable) => "consecutive failures (5xx, locks, network, authentication)",
                        None => span.muted { "—" },
                    }
                }
                dt { "Consecutive failures" } dd { (gate.consecutive_failures) }
                dt { "Times opened" } dd { (gate.opened_total) }
                dt { "Probes sent" } dd { (gate.probes_total) }
            }
        }
        section #usage {
            h2 { "API usage today" }
            @match limits.as_ref().and_then(|l| l.api_usage) {
                Some((used, max)) => {
                    p #api-usage { (used) " of " (max) " requests used" }
                }
                None => p.muted #api-usage { "Salesforce has not reported usage to this replica yet." }
            }
            @if let Some((used, max, app)) = limits.as_ref().and_then(|l| l.per_app.clone()) {
                p { "This connected app (" (app) "): " (used) " of " (max) }
            }
            dl.facts {
                dt { "API requests (this replica, since start)" } dd { (stats.api_calls) }
                dt { "Token requests (this replica, since start)" } dd #token-requests { (stats.token_requests) }
                dt { "Instance" } dd {
                    @match &instance {
                        Some(url) => (url.as_str()),
                        None => span.muted { "not known until the first request" },
                    }
                }
            }
        }
        (connection)
    };
    layout::page("Salesforce", Some(&op), body)
}
