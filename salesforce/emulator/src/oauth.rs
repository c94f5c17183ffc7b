//! `POST /services/oauth2/token` (client credentials, username-password, refresh token,
//! JWT bearer, authorization code) and `POST /services/oauth2/revoke`. The authorize page is
//! in `oauth_authorize`, the code store in `oauth_codes`, userinfo in `oauth_userinfo`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rand::Rng;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::config::ConnectedApp;
use crate::server::{AppState, Session, lock};

pub(crate) const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `exp` may be at most this far ahead (3 minutes plus clock skew).
pub(crate) const JWT_MAX_LIFETIME_SECS: i64 = 180;
pub(crate) const JWT_CLOCK_SKEW_SECS: i64 = 30;

/// Parses a PEM public key (`PUBLIC KEY`, `RSA PUBLIC KEY`) or certificate for RS256.
pub fn decoding_key(pem: &str) -> Result<DecodingKey, String> {
    DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())
}

#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

pub(crate) fn oauth_error(error: &'static str, description: &'static str) -> OAuthError {
    OAuthError {
        status: StatusCode::BAD_REQUEST,
        error,
        description,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        (
            self.status,
            [
                (header::CONTENT_TYPE, "application/json;charset=UTF-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            body.to_string(),
        )
            .into_response()
    }
}

/// The decoded form body.
pub(crate) struct Form(pub(crate) Vec<(String, String)>);

impl Form {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Granted<'a> {
    pub(crate) app: &'a ConnectedApp,
    pub(crate) username: String,
    /// Granted scopes, space-separated.
    pub(crate) scope: String,
    /// Whether to issue a refresh token (web-server flow with `refresh_token` or
    /// `offline_access` granted).
    pub(crate) with_refresh: bool,
    /// The web-server-flow refresh token this grant redeemed.
    pub(crate) from_refresh: Option<String>,
}

impl<'a> Granted<'a> {
    fn api(app: &'a ConnectedApp, username: String) -> Self {
        Granted {
            app,
            username,
            scope: "api".to_string(),
            with_refresh: false,
            from_refresh: None,
        }
    }
}

pub(crate) async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    lock(&state.stats).token_requests += 1;
    if lock(&state.faults).token_error() {
        lock(&state.stats).reject("token:temporarily_unavailable");
        return OAuthError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            description: "service temporarily unavailable",
        }
        .into_response();
    }
    let form = Form(form_urlencoded::parse(&body).into_owned().collect());
    let param = &form;
    let result = match param.get("grant_type") {
        Some("client_credentials") => client_credentials(&state, &headers, param),
        Some("password") => password(&state, param),
        Some("refresh_token") => refresh_token(&state, param),
        Some(JWT_GRANT) => jwt_bearer(&state, param),
        Some("authorization_code") => crate::oauth_authorize::redeem(&state, &headers, param),
        _ => Err(oauth_error(
            "unsupported_grant_type",
            "grant type not supported",
        )),
    };
    match result {
        Ok(granted) => issue(&state, &granted),
        Err(e) => {
            lock(&state.stats).reject(&format!("token:{}", e.error));
            tracing::info!(error = e.error, "token request refused");
            e.into_response()
        }
    }
}

/// `client_id`/`client_secret` from the body, else from HTTP Basic.
pub(crate) fn client_auth(headers: &HeaderMap, param: &Form) -> Option<(String, String)> {
    if let Some(id) = param.get("client_id") {
        return Some((
            id.to_string(),
            param.get("client_secret").unwrap_or_default().to_string(),
        ));
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

pub(crate) fn check_client<'a>(
    state: &'a AppState,
    client_id: &str,
    secret: Option<&str>,
) -> Result<&'a ConnectedApp, OAuthError> {
    let app = state
        .config
        .app(client_id)
        .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
    if let Some(secret) = secret
        && !constant_time_eq(secret.as_bytes(), app.client_secret.as_bytes())
    {
        return Err(oauth_error("invalid_client", "invalid client credentials"));
    }
    Ok(app)
}

fn client_credentials<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    param: &Form,
) -> Result<Granted<'a>, OAuthError> {
    let (id, secret) = client_auth(headers, param)
        .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
    let app = check_client(state, &id, Some(&secret))?;
    let run_as = app
        .run_as
        .clone()
        .ok_or_else(|| oauth_error("invalid_grant", "no client credentials user enabled"))?;
    Ok(Granted::api(app, run_as))
}

fn password<'a>(state: &'a AppState, param: &Form) -> Result<Granted<'a>, OAuthError> {
    let id = param
        .get("client_id")
        .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
    let app = check_client(
        state,
        id,
        Some(param.get("client_secret").unwrap_or_default()),
    )?;
    let username = param.get("username").unwrap_or_default();
    let given = param.get("password").unwrap_or_default();
    let user = state
        .config
        .user(username)
        .filter(|u| {
            let expected = format!("{}{}", u.password, u.security_token);
            constant_time_eq(given.as_bytes(), expected.as_bytes())
        })
        .ok_or_else(|| oauth_error("invalid_grant", "authentication failure"))?;
    Ok(Granted::api(app, user.username.clone()))
}

fn refresh_token<'a>(state: &'a AppState, param: &Form) -> Result<Granted<'a>, OAuthError> {
    let id = param
        .get("client_id")
        .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
    let app = check_client(state, id, param.get("client_secret"))?;
    let given = param.get("refresh_token").unwrap_or_default();
    if let Some(issued) = state.web_flow.refresh(given, &app.client_id) {
        return Ok(Granted {
            app,
            username: issued.username,
            scope: issued.scope,
            with_refresh: false,
            from_refresh: Some(given.to_string()),
        });
    }
    let rt = app
        .refresh_tokens
        .iter()
        .find(|rt| constant_time_eq(rt.token.as_bytes(), given.as_bytes()))
        .ok_or_else(|| oauth_error("invalid_grant", "expired access/refresh token"))?;
    Ok(Granted::api(app, rt.username.clone()))
}

fn jwt_bearer<'a>(state: &'a AppState, param: &Form) -> Result<Granted<'a>, OAuthError> {
    let invalid = || oauth_error("invalid_grant", "invalid assertion");
    let assertion = param.get("assertion").ok_or_else(invalid)?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid())?;
    if header.alg != Algorithm::RS256 {
        return Err(invalid());
    }
    // Find the app from the (not yet trusted) issuer, then verify the signature with its key.
    let unverified: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(assertion)
        .map_err(|_| invalid())?
        .claims;
    let iss = unverified
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let app = state
        .config
        .app(iss)
        .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
    let pem = app.jwt_public_key_pem.as_deref().ok_or_else(invalid)?;
    let key = decoding_key(pem).map_err(|_| invalid())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims: Value = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|_| invalid())?
        .claims;

    let own = state.url.as_str();
    let aud_ok = |a: &str| {
        let a = a.trim_end_matches('/');
        a == "https://login.salesforce.com" || a == "https://test.salesforce.com" || a == own
    };
    let aud_valid = match claims.get("aud") {
        Some(Value::String(a)) => aud_ok(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(aud_ok),
        _ => false,
    };
    if !aud_valid {
        return Err(oauth_error("invalid_grant", "audience is invalid"));
    }
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(invalid)?;
    let now = chrono::Utc::now().timestamp();
    if exp <= now || exp > now + JWT_MAX_LIFETIME_SECS + JWT_CLOCK_SKEW_SECS {
        return Err(invalid());
    }
    // `prn` (older) wins over `sub` when both are present.
    let subject = claims
        .get("prn")
        .or_else(|| claims.get("sub"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let user = state
        .config
        .user(subject)
        .ok_or_else(|| oauth_error("invalid_grant", "user hasn't approved this consumer"))?;
    Ok(Granted::api(app, user.username.clone()))
}

/// The token response: a new session, plus a refresh token when the grant asks for one.
fn issue(state: &AppState, granted: &Granted<'_>) -> Response {
    let client_id = granted.app.client_id.as_str();
    let user_id = state.user_id(&granted.username);
    let id_url = identity_url(state, &user_id);
    let issued_at = chrono::Utc::now().timestamp_millis().to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(granted.app.client_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(id_url.as_bytes());
    mac.update(issued_at.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let refresh = granted.with_refresh.then(|| {
        let token = format!("5Aep861{}", random_token(80));
        state
            .web_flow
            .put_refresh(token.clone(), client_id, &granted.username, &granted.scope);
        token
    });
    let chain = refresh.clone().or_else(|| granted.from_refresh.clone());
    let access_token = new_session_from(state, &user_id, chain);
    tracing::info!(
        client_id,
        refresh = refresh.is_some(),
        "access token issued"
    );
    let mut body = json!({
        "access_token": access_token,
        "signature": signature,
        "scope": granted.scope,
        "instance_url": state.url,
        "id": id_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(rt) = refresh {
        body["refresh_token"] = Value::String(rt);
    }
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `{url}/id/{org18}/{user18}`: the identity URL of a user (`id` of a token, `sub` of userinfo).
pub(crate) fn identity_url(state: &AppState, user_id: &str) -> String {
    format!(
        "{}/id/{}/{}",
        state.url,
        crate::ids::org_id18(&state.config.org_id),
        user_id
    )
}

/// Starts a session for a user: a fresh `<orgId15>!<opaque>` token (OAuth or SOAP login).
pub(crate) fn new_session(state: &AppState, user_id: &str) -> String {
    new_session_from(state, user_id, None)
}

fn new_session_from(state: &AppState, user_id: &str, refresh: Option<String>) -> String {
    let access_token = format!("{}!{}", state.config.org_id, random_token(96));
    lock(&state.sessions).insert(
        access_token.clone(),
        Session {
            user_id: user_id.to_string(),
            issued: Instant::now(),
            calls: 0,
            refresh,
        },
    );
    lock(&state.stats).tokens_issued += 1;
    access_token
}

/// `POST /services/oauth2/revoke` with `token=…`: forgets an access token, or a refresh token
/// the web-server flow issued together with every access token it gave; 200, empty body.
pub(crate) async fn revoke(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let token = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    match token {
        Some(t) => {
            if state.web_flow.revoke_refresh(&t) {
                lock(&state.sessions).retain(|_, s| s.refresh.as_deref() != Some(t.as_str()));
            } else {
                lock(&state.sessions).remove(&t);
            }
            StatusCode::OK.into_response()
        }
        None => oauth_error("unsupported_token_type", "this token type is not supported")
            .into_response(),
    }
}

pub(crate) fn random_token(len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut rng = rand::rng();
    let mut s = String::with_capacity(len + 2);
    s.push_str("AQ");
    for _ in 0..len {
        s.push(CHARS[rng.random_range(0..CHARS.len())] as char);
    }
    s
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
