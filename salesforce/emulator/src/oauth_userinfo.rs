//! `GET|POST /services/oauth2/userinfo`: the OpenID Connect UserInfo endpoint (Bearer token),
//! shaped like Salesforce's answer. Refusals are plain text, as the identity service's.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use crate::ids;
use crate::rest::authenticate;
use crate::server::{AppState, lock};

fn refuse(text: &'static str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")],
        text,
    )
        .into_response()
}

pub(crate) async fn get(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !headers.contains_key(header::AUTHORIZATION) {
        return refuse("Missing_OAuth_Token");
    }
    let Ok(user_id) = authenticate(&state, &headers) else {
        return refuse("Bad_OAuth_Token");
    };
    let Some(record) = lock(&state.store).get("User", &user_id).cloned() else {
        return refuse("Bad_OAuth_Token");
    };
    let text = |name: &str| {
        record
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let username = text("Username");
    let name = text("Name");
    let (given, family) = match name.rsplit_once(' ') {
        Some((g, f)) => (Value::String(g.to_string()), f.to_string()),
        None => (Value::Null, name.clone()),
    };
    let nickname = username.split('@').next().unwrap_or_default().to_string();
    let url = &state.url;
    let org18 = ids::org_id18(&state.config.org_id);
    let base = format!("{url}/services/data/v{{version}}");
    let chatter = format!("{base}/chatter");
    let picture = format!("{url}/profilephoto/005/F");
    let body = json!({
        "sub": crate::oauth::identity_url(&state, &user_id),
        "user_id": user_id,
        "organization_id": org18,
        "preferred_username": username,
        "nickname": nickname,
        "name": name,
        "email": text("Email"),
        "email_verified": true,
        "given_name": given,
        "family_name": family,
        "zoneinfo": "GMT",
        "photos": {"picture": picture, "thumbnail": format!("{url}/profilephoto/005/T")},
        "profile": format!("{url}/{user_id}"),
        "picture": picture,
        "address": {},
        "is_salesforce_integration_user": false,
        "urls": {
            "enterprise": format!("{url}/services/Soap/c/{{version}}/{org18}"),
            "metadata": format!("{url}/services/Soap/m/{{version}}/{org18}"),
            "partner": format!("{url}/services/Soap/u/{{version}}/{org18}"),
            "rest": format!("{base}/"),
            "sobjects": format!("{base}/sobjects/"),
            "search": format!("{base}/search/"),
            "query": format!("{base}/query/"),
            "recent": format!("{base}/recent/"),
            "tooling_soap": format!("{url}/services/Soap/T/{{version}}/{org18}"),
            "tooling_rest": format!("{base}/tooling/"),
            "profile": format!("{url}/{user_id}"),
            "feeds": format!("{chatter}/feeds"),
            "groups": format!("{chatter}/groups"),
            "users": format!("{chatter}/users"),
            "feed_items": format!("{chatter}/feed-items"),
            "feed_elements": format!("{chatter}/feed-elements"),
            "custom_domain": url,
        },
        "active": true,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": 0,
        "updated_at": text("LastModifiedDate"),
        "is_app_installed": true,
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json;charset=UTF-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}
