//! Reading sessions: by id, by any id, and their event timeline.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::require;
use super::extract::{Path, Query};
use super::openapi::{BadRequest, Forbidden, NotFound, ServerError, Unauthenticated, Unavailable};
use super::page::{self, DeliveryKey, IdKey, SessionKey};
use crate::error::ApiError;
use crate::store::{Scope, delivery, event, session};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(find))
        .routes(routes!(one))
        .routes(routes!(events))
        .routes(routes!(deliveries))
}

/// The customer as the escalation named them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerView {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// The public shape of a session (design §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub channel: String,
    /// `case` or `messaging`.
    pub route: String,
    pub status: String,
    /// The Case's 18-character id, once it is recorded.
    pub salesforce_case_id: Option<String>,
    pub salesforce_case_number: Option<String>,
    pub salesforce_miaw_session_id: Option<String>,
    pub salesforce_messaging_session_id: Option<String>,
    pub customer: CustomerView,
    pub comments_written: i32,
    pub salesforce_calls: i32,
    pub last_error: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The session's outbox rows, oldest first (design §7.1).
    #[serde(default)]
    pub deliveries: Vec<DeliveryView>,
}

/// One outbound message to the customer and where it stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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

/// One event of a session's timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub at: String,
    /// `accepted`, `case_created`, `attempt_failed`, …
    pub kind: String,
    /// What the event records; its shape depends on `kind`.
    pub data: Value,
}

/// A page of sessions, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionPage {
    pub sessions: Vec<SessionView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of a session's events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A page of a session's deliveries, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
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

/// A session: its state, its Salesforce ids and its newest deliveries.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}",
    operation_id = "get_session",
    tag = "sessions",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "The session id.")),
    responses(
        (status = 200, description = "The session, with its newest 50 deliveries.", body = SessionView),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FindQuery {
    /// Any id: session id, Case id (15 or 18), CaseNumber, MIAW conversation id,
    /// MessagingSession id, customer email or phone. Required.
    #[param(required = true)]
    id: Option<String>,
    /// Sessions per page, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// Sessions matching any id, newest first.
#[utoipa::path(
    get,
    path = "/v1/sessions",
    operation_id = "find_sessions",
    tag = "sessions",
    security(("bearer" = ["read"])),
    params(FindQuery),
    responses(
        (status = 200, description = "`{\"sessions\": […], \"next_cursor\": …}`, newest first.", body = SessionPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn find(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<FindQuery>,
) -> Result<Json<SessionPage>, ApiError> {
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
    Ok(Json(SessionPage {
        sessions,
        next_cursor,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Rows per page, 1–500 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// The session's timeline, oldest first.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/events",
    operation_id = "session_events",
    tag = "sessions",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "The session id."), PageQuery),
    responses(
        (status = 200, description = "`{\"events\": [{\"at\", \"kind\", \"data\"}…], \"next_cursor\": …}`, oldest first.", body = EventPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<EventPage>, ApiError> {
    require(&state, &headers, Scope::Read).await?;
    let page = page::request::<IdKey<'e'>>(query.limit.as_deref(), query.cursor.as_deref())?;
    state.store.session(&id).await?.ok_or(ApiError::NotFound)?;
    let rows = state
        .store
        .events_page(&id, page.after.map(|k| k.0), page.limit + 1)
        .await?;
    let (rows, next_cursor) = page::finish(rows, page.limit, |e| IdKey::<'e'>(e.id));
    let events: Vec<EventView> = rows.into_iter().map(EventView::from).collect();
    Ok(Json(EventPage {
        events,
        next_cursor,
    }))
}

/// Every outbox row of the session, oldest first.
#[utoipa::path(
    get,
    path = "/v1/sessions/{id}/deliveries",
    operation_id = "session_deliveries",
    tag = "sessions",
    security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "The session id."), PageQuery),
    responses(
        (status = 200, description = "`{\"deliveries\": […], \"next_cursor\": …}`, oldest first.", body = DeliveryPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = ServerError),
        (status = 503, response = Unavailable),
    )
)]
async fn deliveries(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
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
    Ok(Json(DeliveryPage {
        deliveries,
        next_cursor,
    }))
}
