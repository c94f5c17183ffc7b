//! `GET /id/{orgId}/{userId}`: the identity service a token's `id` URL points at (Bearer auth).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::ids;
use crate::rest::authenticate;
use crate::server::{AppState, lock};

/// Identity errors are plain text, not the REST error array.
fn refuse(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        text,
    )
        .into_response()
}

pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path((org, user)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Ok(caller) = authenticate(&state, &headers) else {
        return refuse(StatusCode::FORBIDDEN, "Bad_OAuth_Token");
    };
    let org18 = ids::org_id18(&state.config.org_id);
    let org_ok = ids::canonical(&org).is_some_and(|o| o == org18);
    let user_id = ids::canonical(&user).filter(|u| *u == caller);
    let (true, Some(user_id)) = (org_ok, user_id) else {
        return refuse(StatusCode::NOT_FOUND, "Bad_Id");
    };
    let record = lock(&state.store).get("User", &user_id).cloned();
    let Some(record) = record else {
        return refuse(StatusCode::NOT_FOUND, "Bad_Id");
    };
    let field = |name: &str| record.get(name).cloned().unwrap_or(Value::Null);
    let url = &state.url;
    let base = format!("{url}/services/data/v{{version}}");
    let body = json!({
        "id": format!("{url}/id/{org18}/{user_id}"),
        "asserted_user": true,
        "user_id": user_id,
        "organization_id": org18,
        "username": field("Username"),
        "nick_name": field("Username"),
        "display_name": field("Name"),
        "email": field("Email"),
        "email_verified": true,
        "first_name": Value::Null,
        "last_name": field("Name"),
        "timezone": "GMT",
        "photos": {"picture": Value::Null, "thumbnail": Value::Null},
        "addr_street": Value::Null, "addr_city": Value::Null, "addr_state": Value::Null,
        "addr_country": Value::Null, "addr_zip": Value::Null,
        "mobile_phone": Value::Null, "mobile_phone_verified": false,
        "is_lightning_login_user": false,
        "status": {"created_date": Value::Null, "body": Value::Null},
        "urls": {
            "enterprise": format!("{url}/services/Soap/c/{{version}}/{org18}"),
            "metadata": format!("{url}/services/Soap/m/{{version}}/{org18}"),
            "partner": format!("{url}/services/Soap/u/{{version}}/{org18}"),
            "rest": format!("{base}/"),
            "sobjects": format!("{base}/sobjects/"),
            "search": format!("{base}/search/"),
            "query": format!("{base}/query/"),
            "recent": format!("{base}/recent/"),
            "profile": format!("{url}/{user_id}"),
            "custom_domain": url,
        },
        "active": true,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": 0,
        "last_modified_date": field("LastModifiedDate"),
        "is_app_installed": true,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}
