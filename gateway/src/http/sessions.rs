//! Reading sessions: by id, by any id, and their event timeline.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::auth::require;
use super::page::{self, DeliveryKey, IdKey, SessionKey};
use crate::error::ApiError;
use crate::store::{Scope, delivery, event, session};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", get(find))
        .route("/v1/sessions/{id}", get(one))
        .route("/v1/sessions/{id}/events", get(events))
        .route("/v1/sessions/{id}/deliveries", get(deliveries))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CustomerView {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The public shape of a session (design §7).
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionView {
    pub id: String,
    pub channel: String,
    pub route: String,
    pub status: String,
    pub salesforce_case_id: Option<String>,
    pub salesforce_case_number: Option<String>,
    pub salesforce_miaw_session_id: Option<String>,
    pub salesforce_messaging_session_id: Option<String>,
    pub customer: CustomerView,
    pub comments_written: i32,
    pub salesforce_calls: i32,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The session's outbox rows, oldest first (design §7.1).
    #[serde(default)]
    pub deliveries: Vec<DeliveryView>,
}

/// One outbound message to the customer and where it stands.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: String,
    pub channel: String,
    /// `agent.message`, `system.message`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// queued | sending | sent | failed
    pub state: String,
    pub provider_id: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// The provider's newest report on the message (queued, sent, delivered, read,
    /// undelivered, failed), where the channel reports one.
    #[serde(default)]
    pub provider_status: Option<String>,
    /// The provider's error code with an `undelivered` / `failed` report.
    #[serde(default)]
    pub provider_error_code: Option<String>,
}

impl From<delivery::Model> for DeliveryView {
    fn from(d: delivery::Model) -> Self {
        DeliveryView {
            id: d.id,
            channel: d.channel,
            kind: d.kind,
            state: d.state,
            provider_id: d.provider_id,
            attempts: d.attempts,
            last_error: d.last_error,
            provider_status: d.provider_status,
            provider_error_code: d.provider_error_code,
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<session::Model> for SessionView {
    fn from(s: session::Model) -> Self {
        SessionView {
            id: s.id,
            channel: s.channel,
            route: s.route,
            status: s.status,
            salesforce_case_id: s.salesforce_case_id,
            salesforce_case_number: s.salesforce_case_number,
            salesforce_miaw_session_id: s.salesforce_miaw_session_id,
            salesforce_messaging_session_id: s.salesforce_messaging_session_id,
            customer: CustomerView {
                name: s.customer_name,
                email: s.customer_email,
                phone: s.customer_phone,
            },
            comments_written: s.comments_written,
            salesforce_calls: s.salesforce_calls,
            last_error: s.last_error,
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
            deliveries: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub at: String,
    pub kind: String,
    pub data: Value,
}

impl From<event::Model> for EventView {
    fn from(e: event::Model) -> Self {
        EventView {
            at: rfc3339(e.at),
            kind: e.kind,
            data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
        }
    }
}

/// The session view carries its newest deliveries; all of them page at
/// `GET /v1/sessions/{id}/deliveries`.
const DELIVERIES_IN_VIEW: u64 = 50;

async fn one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    // Deliveries first, then the session: a delivery is written in the transaction that
    // records the Case, so whatever delivery this read sees, the session read after it shows
    // that Case too (the other order could show a sent notice beside a session without one).
    let deliveries = state
        .store
        .latest_deliveries(&id, DELIVERIES_IN_VIEW)
        .await?;
    let session = state.store.session(&id).await?.ok_or(ApiError::NotFound)?;
    let mut view = SessionView::from(session);
    view.deliveries = deliveries.into_iter().map(DeliveryView::from).collect();
    Ok(Json(view))
}

#[derive(Deserialize)]
struct FindQuery {
    id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `{"sessions": […], "next_cursor": …}`, newest first.
async fn find(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<FindQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let id = query.id.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        ApiError::invalid(
            "missing_field",
            Some("id".into()),
            "give ?id= a session id, Case id, CaseNumber, MIAW id, email or phone",
        )
    })?;
    let page = page::request::<SessionKey>(query.limit.as_deref(), query.cursor.as_deref())?;
    let rows = state
        .store
        .find_sessions_page(
            &id,
            page.after.as_ref().map(|k| (k.created_at, k.id.as_str())),
            page.limit + 1,
        )
        .await?;
    let (rows, next_cursor) = page::finish(rows, page.limit, |s| SessionKey {
        created_at: s.created_at,
        id: s.id.clone(),
    });
    let sessions: Vec<SessionView> = rows.into_iter().map(SessionView::from).collect();
    Ok(Json(
        serde_json::json!({ "sessions": sessions, "next_cursor": next_cursor }),
    ))
}

#[derive(Deserialize)]
struct PageQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// `{"events": […], "next_cursor": …}`, oldest first.
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let page = page::request::<IdKey<'e'>>(query.limit.as_deref(), query.cursor.as_deref())?;
    state.store.session(&id).await?.ok_or(ApiError::NotFound)?;
    let rows = state
        .store
        .events_page(&id, page.after.map(|k| k.0), page.limit + 1)
        .await?;
    let (rows, next_cursor) = page::finish(rows, page.limit, |e| IdKey::<'e'>(e.id));
    let events: Vec<EventView> = rows.into_iter().map(EventView::from).collect();
    Ok(Json(
        serde_json::json!({ "events": events, "next_cursor": next_cursor }),
    ))
}

/// `{"deliveries": […], "next_cursor": …}`, oldest first: every outbox row of the session.
async fn deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let page = page::request::<DeliveryKey>(query.limit.as_deref(), query.cursor.as_deref())?;
    state.store.session(&id).await?.ok_or(ApiError::NotFound)?;
    let rows = state
        .store
        .deliveries_page(
            &id,
            page.after.as_ref().map(|k| (k.created_at, k.id.as_str())),
            page.limit + 1,
        )
        .await?;
    let (rows, next_cursor) = page::finish(rows, page.limit, |d| DeliveryKey {
        created_at: d.created_at,
        id: d.id.clone(),
    });
    let deliveries: Vec<DeliveryView> = rows.into_iter().map(DeliveryView::from).collect();
    Ok(Json(
        serde_json::json!({ "deliveries": deliveries, "next_cursor": next_cursor }),
    ))
}
