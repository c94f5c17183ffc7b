//! Access tokens: unauthenticated, authenticated (user verification with a customer identity
//! JWT), continuation; and the Bearer check every other MIAW call makes.
//!
//! Tokens are HS256 JWTs signed with a secret the emulator draws at start (so they die with it).
//! Claims: `orgId` (15 chars), `sub` (the end-user subject), `exp`, `iat`, `jti` (the token's
//! own id: one SSE stream per token) and `esDeveloperName`.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::faults::Operation;
use super::limits::MINUTE;
use super::{MiawError, entries};
use crate::config::MiawConfig;
use crate::server::AppState;

/// The claims of an emulator access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    #[serde(rename = "orgId")]
    pub(crate) org_id: String,
    pub(crate) sub: String,
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    pub(crate) jti: String,
    #[serde(rename = "esDeveloperName")]
    pub(crate) deployment: String,
}

/// Signing keys of the emulator and the configured user-verification keys.
pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    identity: Vec<(String, String, DecodingKey)>,
}

impl Keys {
    pub(crate) fn new(config: &MiawConfig) -> Result<Self, String> {
        let secret: [u8; 32] = rand::rng().random();
        let mut identity = Vec::new();
        for key in &config.identity_keys {
            let decoding = crate::oauth::decoding_key(&key.public_key_pem)
                .map_err(|e| format!("miaw.identity_keys '{}': {e}", key.kid))?;
            identity.push((key.kid.clone(), key.issuer.clone(), decoding));
        }
        Ok(Keys {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            identity,
        })
    }

    /// Verifies a customer identity JWT (RS256, `kid` of a configured key, its `iss`, `exp` in
    /// the future, non-empty `sub`). Returns the verified subject as `(issuer, sub)`.
    fn verify_identity(&self, jwt: &str) -> Option<(String, String)> {
        let header = jsonwebtoken::decode_header(jwt).ok()?;
        if header.alg != Algorithm::RS256 {
            return None;
        }
        let kid = header.kid?;
        let (_, issuer, key) = self.identity.iter().find(|(k, _, _)| *k == kid)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Value>(jwt, key, &validation).ok()?;
        let sub = data.claims["sub"].as_str().filter(|s| !s.is_empty())?;
        Some((issuer.clone(), sub.to_string()))
    }
}

/// The caller of a MIAW call: handlers take `claims: Claims` and never see an unchecked token.
impl axum::extract::FromRequestParts<Arc<AppState>> for Claims {
    type Rejection = MiawError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        authenticate(state, &parts.headers)
    }
}

/// Checks `Authorization: Bearer <token>`: 401 `Jwt is expired` once past `exp`, 401 for
/// anything that is not a token this emulator signed.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Claims, MiawError> {
    let unauthorized = |m: &str| MiawError::new(StatusCode::UNAUTHORIZED, m);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| unauthorized("Missing Authorization: Bearer <access token>."))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims::<&str>(&[]);
    let claims = jsonwebtoken::decode::<Claims>(token, &state.miaw.keys.decoding, &validation)
        .map_err(|_| unauthorized("Invalid access token. Request a new one."))?
        .claims;
    if chrono::Utc::now().timestamp() >= claims.exp {
        return Err(unauthorized("Jwt is expired"));
    }
    Ok(claims)
}

/// The body both token POSTs share.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequest {
    org_id: Option<String>,
    es_developer_name: Option<String>,
    #[serde(default)]
    authorization_type: Option<String>,
    #[serde(default)]
    customer_identity_token: Option<String>,
}

/// Whether `given` names the configured org (15- or 18-character form).
pub(crate) fn same_org(given: &str, org15: &str) -> bool {
    match given.len() {
        15 => given == org15,
        18 => crate::ids::canonical(given).is_some_and(|c| c == crate::ids::org_id18(org15)),
        _ => false,
    }
}

/// Fault and rate-limit checks every token request makes.
fn admit(state: &AppState, op: Operation) -> Result<(), MiawError> {
    let mut inner = state.miaw.lock();
    if let Some(status) = inner.faults.take(op) {
        return Err(MiawError::injected(status));
    }
    let limit = state.miaw.config.token_requests_per_minute;
    inner
        .token_window
        .try_hit(Instant::now(), limit, MINUTE)
        .map_err(|wait| MiawError::rate_limited(wait, "access token requests per org"))
}

fn parse_request(state: &AppState, body: &[u8]) -> Result<TokenRequest, MiawError> {
    let req: TokenRequest = serde_json::from_slice(body)
        .map_err(|e| MiawError::bad_request(format!("Invalid request body: {e}")))?;
    let org = req.org_id.as_deref().unwrap_or_default();
    if !same_org(org, &state.config.org_id) {
        return Err(MiawError::bad_request(
            "Specify a valid orgId: the 15- or 18-character id of the org.",
        ));
    }
    let name = req.es_developer_name.as_deref().unwrap_or_default();
    if !state.miaw.config.deployments.iter().any(|d| d == name) {
        return Err(MiawError::bad_request(
            "Specify a valid esDeveloperName: the API name of an Embedded Service deployment of type Custom Client.",
        ));
    }
    Ok(req)
}

/// Signs a token for `subject` and registers the subject.
fn issue(state: &AppState, subject: &str, deployment: &str) -> Result<(String, u64), MiawError> {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(state.miaw.config.token_ttl_secs).unwrap_or(i64::MAX / 2);
    let claims = Claims {
        org_id: state.config.org_id.clone(),
        sub: subject.to_string(),
        exp: now.saturating_add(ttl),
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        deployment: deployment.to_string(),
    };
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &state.miaw.keys.encoding,
    )
    .map_err(|e| MiawError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut inner = state.miaw.lock();
    inner.touch_subject(subject, state.miaw.config.max_conversations);
    Ok((token, inner.last_event_id(subject)))
}

/// The full token answer (miaw.md §3.1).
fn token_body(state: &AppState, token: String, last: u64, subject: &str, name: &str) -> Value {
    let fields: Vec<Value> = state
        .miaw
        .config
        .custom_parameters
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"name": p.name, "type": "Text", "required": false,
                   "maxLength": p.max_length, "isHidden": true, "order": i + 1})
        })
        .collect();
    let auth = if subject.contains("/AUTH/") {
        "Auth"
    } else {
        "UnAuth"
    };
    json!({
        "accessToken": token,
        "lastEventId": last.to_string(),
        "context": {
            "deviceId": uuid::Uuid::new_v4().to_string(),
            "endUser": {"subject": subject},
            "configuration": {"embeddedServiceConfig": {
                "name": name,
                "deploymentType": "api",
                "embeddedServiceMessagingChannel": {
                    "channelAddressIdentifier": entries::channel_key(name),
                    "authMode": auth,
                },
                "forms": [{"displayContext": "Conversation", "formFields": fields}],
            }},
        },
    })
}

fn anonymous_subject() -> String {
    format!("v2/iamessage/ANON/{}", uuid::Uuid::new_v4())
}

/// `POST /iamessage/api/v2/authorization/unauthenticated/access-token`
pub(crate) async fn unauthenticated(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = || -> Result<Value, MiawError> {
        let req = parse_request(&state, &body)?;
        admit(&state, Operation::Token)?;
        let name = req.es_developer_name.unwrap_or_default();
        let subject = anonymous_subject();
        let (token, last) = issue(&state, &subject, &name)?;
        Ok(token_body(&state, token, last, &subject, &name))
    };
    match run() {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /iamessage/api/v2/authorization/authenticated/access-token`: a customer identity JWT
/// that does not verify still gets 200 with an anonymous token, as Salesforce answers.
pub(crate) async fn authenticated(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let run = || -> Result<Value, MiawError> {
        let req = parse_request(&state, &body)?;
        if req
            .authorization_type
            .as_deref()
            .is_some_and(|t| t != "JWT")
        {
            return Err(MiawError::bad_request("authorizationType must be JWT."));
        }
        admit(&state, Operation::Token)?;
        let verified = req
            .customer_identity_token
            .as_deref()
            .and_then(|jwt| state.miaw.keys.verify_identity(jwt));
        let subject = match verified {
            Some((issuer, sub)) => format!("v2/iamessage/AUTH/{issuer}/uid:{sub}"),
            None => {
                tracing::info!(
                    "customer identity token did not verify; issuing an anonymous token"
                );
                anonymous_subject()
            }
        };
        let name = req.es_developer_name.unwrap_or_default();
        let (token, last) = issue(&state, &subject, &name)?;
        Ok(token_body(&state, token, last, &subject, &name))
    };
    match run() {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /iamessage/api/v2/authorization/continuation-access-token`: same subject, new token.
pub(crate) async fn continuation(State(state): State<Arc<AppState>>, claims: Claims) -> Response {
    let run = || -> Result<Value, MiawError> {
        admit(&state, Operation::Continuation)?;
        let (token, last) = issue(&state, &claims.sub, &claims.deployment)?;
        Ok(json!({"accessToken": token, "lastEventId": last.to_string()}))
    };
    match run() {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}
