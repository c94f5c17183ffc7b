//! The OAuth 2.0 web-server flow: `GET /services/oauth2/authorize` shows a login page,
//! `POST /services/oauth2/authorize` (the login form) answers a redirect to the app's callback
//! with `code` and `state`, and the token endpoint redeems the code (`redeem`).
//!
//! As on Salesforce: an unknown `client_id` or a `redirect_uri` that is not exactly one of the
//! app's callback URLs gets an error page and never a redirect; every other request error is
//! sent to the callback as `error`, `error_description` and `state`. PKCE is S256 only (a
//! `code_challenge` without `code_challenge_method` is taken as S256, as Salesforce does).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use sha2::{Digest, Sha256};

use crate::config::ConnectedApp;
use crate::oauth::{Form, Granted, OAuthError, client_auth, constant_time_eq, oauth_error};
use crate::oauth_codes::CodeRefused;
use crate::oauth_login_page::{error_page, login_page};
use crate::server::AppState;

/// Longest value taken for any one parameter (longer: an error page).
pub(crate) const MAX_PARAM_LEN: usize = 4096;
/// Most scopes one request may name.
const MAX_SCOPES: usize = 32;
/// What the login page says after a wrong username or password (Salesforce's wording).
pub(crate) const LOGIN_FAILED: &str = "Please check your username and password. If you still can't log in, contact your Salesforce administrator.";

/// The authorize request: the GET's query, carried through the login form in hidden fields.
#[derive(Debug, Default, Clone)]
pub(crate) struct AuthRequest {
    pub(crate) response_type: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: Option<String>,
    pub(crate) prompt: Option<String>,
    pub(crate) login_hint: Option<String>,
}

/// The names of the hidden fields, in page order.
pub(crate) const HIDDEN_FIELDS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
];

impl AuthRequest {
    /// From decoded pairs; the first occurrence of a name wins. `Err` when a value is too long.
    fn parse(pairs: &[(String, String)]) -> Result<Self, ()> {
        let get = |name: &str| -> Result<Option<String>, ()> {
            match pairs.iter().find(|(k, _)| k == name) {
                Some((_, v)) if v.len() > MAX_PARAM_LEN => Err(()),
                Some((_, v)) => Ok(Some(v.clone())),
                None => Ok(None),
            }
        };
        Ok(AuthRequest {
            response_type: get("response_type")?,
            client_id: get("client_id")?,
            redirect_uri: get("redirect_uri")?,
            state: get("state")?,
            scope: get("scope")?,
            code_challenge: get("code_challenge")?,
            code_challenge_method: get("code_challenge_method")?,
            prompt: get("prompt")?,
            login_hint: get("login_hint")?,
        })
    }

    /// The value of a hidden field by name.
    pub(crate) fn hidden(&self, name: &str) -> Option<&str> {
        match name {
            "response_type" => self.response_type.as_deref(),
            "client_id" => self.client_id.as_deref(),
            "redirect_uri" => self.redirect_uri.as_deref(),
            "state" => self.state.as_deref(),
            "scope" => self.scope.as_deref(),
            "code_challenge" => self.code_challenge.as_deref(),
            "code_challenge_method" => self.code_challenge_method.as_deref(),
            _ => None,
        }
    }
}

/// A checked request: the app, the callback and the scopes to grant.
struct Valid<'a> {
    app: &'a ConnectedApp,
    redirect_uri: String,
    scope: String,
    code_challenge: Option<String>,
}

/// Why a request is refused.
enum Refusal {
    /// Shown on an error page (the callback cannot be trusted).
    Page(&'static str, &'static str),
    /// Sent to the callback.
    Redirect(&'static str, &'static str),
}

fn validate<'a>(state: &'a AppState, req: &AuthRequest) -> Result<Valid<'a>, Refusal> {
    let app = req
        .client_id
        .as_deref()
        .and_then(|id| state.config.app(id))
        .ok_or(Refusal::Page(
            "invalid_client_id",
            "client identifier invalid",
        ))?;
    let redirect_uri = req
        .redirect_uri
        .clone()
        .filter(|uri| state.web_flow.is_callback(&app.client_id, uri))
        .ok_or(Refusal::Page(
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ))?;
    if req.response_type.as_deref() != Some("code") {
        return Err(Refusal::Redirect(
            "unsupported_response_type",
            "response type not supported",
        ));
    }
    let code_challenge = match (&req.code_challenge, req.code_challenge_method.as_deref()) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(Refusal::Redirect(
                "invalid_request",
                "missing required code challenge",
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(Refusal::Redirect(
                "invalid_request",
                "invalid code challenge method",
            ));
        }
        (Some(c), _) if !is_pkce_value(c) => {
            return Err(Refusal::Redirect(
                "invalid_request",
                "invalid code challenge",
            ));
        }
        (Some(c), _) => Some(c.clone()),
    };
    let scope = granted_scope(app, req.scope.as_deref()).ok_or(Refusal::Redirect(
        "invalid_scope",
        "the requested scope is not allowed",
    ))?;
    Ok(Valid {
        app,
        redirect_uri,
        scope,
        code_challenge,
    })
}

/// The scopes granted: the app's own when none are asked for, else the asked ones when the app
/// allows each (`full` allows all but `refresh_token`/`offline_access`). Duplicates collapse.
fn granted_scope(app: &ConnectedApp, asked: Option<&str>) -> Option<String> {
    let Some(asked) = asked.filter(|s| !s.trim().is_empty()) else {
        return Some(app.scopes.join(" "));
    };
    let mut granted: Vec<&str> = Vec::new();
    for scope in asked.split_ascii_whitespace() {
        let allowed = app.scopes.iter().any(|s| s == scope)
            || (app.scopes.iter().any(|s| s == "full")
                && scope != "refresh_token"
                && scope != "offline_access"
                && scope
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        if !allowed {
            return None;
        }
        if !granted.contains(&scope) {
            granted.push(scope);
        }
        if granted.len() > MAX_SCOPES {
            return None;
        }
    }
    Some(granted.join(" "))
}

/// RFC 7636 `code_challenge` / `code_verifier` syntax: 43 to 128 unreserved characters.
fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `BASE64URL(SHA256(verifier))`.
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A 302 to the callback with the given query parameters added (the callback's own query kept).
fn redirect_to(callback: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = reqwest::Url::parse(callback) else {
        // Registered callbacks are checked when added; this cannot be reached with one.
        return error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in params {
            query.append_pair(k, v);
        }
    }
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    if let Ok(location) = HeaderValue::from_str(url.as_str()) {
        h.insert(header::LOCATION, location);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn refuse(req: &AuthRequest, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(error, description) => {
            tracing::info!(error, "authorize request refused with an error page");
            error_page(StatusCode::BAD_REQUEST, error, description)
        }
        Refusal::Redirect(error, description) => {
            tracing::info!(error, "authorize request refused with a redirect");
            let callback = req.redirect_uri.as_deref().unwrap_or_default();
            let mut params = vec![("error", error), ("error_description", description)];
            if let Some(s) = req.state.as_deref() {
                params.push(("state", s));
            }
            redirect_to(callback, &params)
        }
    }
}

fn too_long() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "a parameter is too long",
    )
}

/// `GET /services/oauth2/authorize`: the login page (or the refusal).
pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let Ok(req) = AuthRequest::parse(&pairs) else {
        return too_long();
    };
    if let Err(refusal) = validate(&state, &req) {
        return refuse(&req, refusal);
    }
    // No browser session is ever kept, so a request that forbids the login page fails.
    if req
        .prompt
        .as_deref()
        .is_some_and(|p| p.split_ascii_whitespace().any(|v| v == "none"))
    {
        return refuse(
            &req,
            Refusal::Redirect("login_required", "user is not logged in"),
        );
    }
    let username = req.login_hint.clone().unwrap_or_default();
    login_page(&req, &username, None)
}

/// `POST /services/oauth2/authorize`: the login form (`username`, `pw` and the hidden request).
pub(crate) async fn login(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let Ok(req) = AuthRequest::parse(&pairs) else {
        return too_long();
    };
    let valid = match validate(&state, &req) {
        Ok(v) => v,
        Err(refusal) => return refuse(&req, refusal),
    };
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let (username, password) = (field("username"), field("pw"));
    let user = state.config.user(username).filter(|u| {
        !password.is_empty() && constant_time_eq(password.as_bytes(), u.password.as_bytes())
    });
    let Some(user) = user else {
        tracing::info!(
            client_id = valid.app.client_id.as_str(),
            "login page: wrong username or password"
        );
        let shown = if username.len() > MAX_PARAM_LEN {
            ""
        } else {
            username
        };
        return login_page(&req, shown, Some(LOGIN_FAILED));
    };
    let code = format!("aPrx{}", crate::oauth::random_token(64));
    state.web_flow.put_code(
        code.clone(),
        &valid.app.client_id,
        &valid.redirect_uri,
        &user.username,
        &valid.scope,
        valid.code_challenge,
    );
    tracing::info!(
        client_id = valid.app.client_id.as_str(),
        "login page: authorization code issued"
    );
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = req.state.as_deref() {
        params.push(("state", s));
    }
    redirect_to(&valid.redirect_uri, &params)
}

/// The `authorization_code` grant of the token endpoint.
pub(crate) fn redeem<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    param: &Form,
) -> Result<Granted<'a>, OAuthError> {
    let (client_id, secret) = client_auth(headers, param)
        .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
    let app = state
        .config
        .app(&client_id)
        .ok_or_else(|| oauth_error("invalid_client_id", "client identifier invalid"))?;
    if (app.require_secret_for_web_server_flow || !secret.is_empty())
        && !constant_time_eq(secret.as_bytes(), app.client_secret.as_bytes())
    {
        return Err(oauth_error("invalid_client", "invalid client credentials"));
    }
    let code = param
        .get("code")
        .ok_or_else(|| oauth_error("invalid_grant", "invalid authorization code"))?;
    let pending = state
        .web_flow
        .take_code(code, &app.client_id)
        .map_err(|e| match e {
            CodeRefused::Invalid => oauth_error("invalid_grant", "invalid authorization code"),
            CodeRefused::Expired => oauth_error("invalid_grant", "expired authorization code"),
        })?;
    if param.get("redirect_uri") != Some(pending.redirect_uri.as_str()) {
        return Err(oauth_error(
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        ));
    }
    if let Some(challenge) = &pending.code_challenge {
        let ok = param
            .get("code_verifier")
            .filter(|v| is_pkce_value(v))
            .is_some_and(|v| constant_time_eq(s256(v).as_bytes(), challenge.as_bytes()));
        if !ok {
            return Err(oauth_error("invalid_grant", "invalid code verifier"));
        }
    }
    let user = state
        .config
        .user(&pending.username)
        .ok_or_else(|| oauth_error("invalid_grant", "authentication failure"))?;
    let with_refresh = pending
        .scope
        .split_ascii_whitespace()
        .any(|s| s == "refresh_token" || s == "offline_access");
    Ok(Granted {
        app,
        username: user.username.clone(),
        scope: pending.scope,
        with_refresh,
        from_refresh: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_the_rfc_7636_appendix_b_example() {
        // RFC 7636, Appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_pkce_value("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!is_pkce_value("short"));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(50))));
    }

    #[test]
    fn scopes_granted_follow_the_app() {
        let mut app = ConnectedApp::new("a", "s");
        assert_eq!(
            granted_scope(&app, None).unwrap(),
            "api id openid refresh_token"
        );
        assert_eq!(granted_scope(&app, Some("api api id")).unwrap(), "api id");
        assert!(granted_scope(&app, Some("api web")).is_none());
        app.scopes = vec!["full".into()];
        assert_eq!(granted_scope(&app, Some("web api")).unwrap(), "web api");
        assert!(granted_scope(&app, Some("api refresh_token")).is_none());
    }
}
