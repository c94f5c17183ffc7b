//! "Sign in with Salesforce" and "Connect Salesforce": the OAuth 2.0 web-server flow
//! (authorization code + PKCE, [`salesforce::WebFlow`]) against the org.
//!
//! - `GET /console/login/salesforce?next=` starts a sign-in; `POST /console/salesforce/connect`
//!   (admin, CSRF) starts a connection. Each stores an `oauth_flows` row — keyed by the SHA-256
//!   of `state`, the PKCE verifier sealed, 10 minutes to live, at most [`MAX_FLOWS`] at once —
//!   sets a short cookie holding `state` (so the callback only works in the browser that
//!   started it), and answers 303 to the org's authorize URL.
//! - `GET /console/oauth/callback?code&state` (or `error`) takes the row once, checks the
//!   cookie, exchanges the code, and reads who signed in (userinfo, and Profile / permission
//!   sets when a rule needs them). A sign-in must come from the connected org and pass
//!   `[console.salesforce]` allowed_*; admin_* make an admin, everyone else is read-only. A
//!   connection stores the refresh token sealed and switches the running Salesforce client.
//! - The redirect URI is `{public_url}/console/oauth/callback`. Without `public_url` it is
//!   `http://{Host}/console/oauth/callback`, but only when the request's Host is a loopback
//!   name (localhost, 127.0.0.0/8, [::1]): a gateway reached by any other name must set
//!   `public_url`.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{HOST, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::connection::{self, App, Connection};
use super::error::ConsoleError;
use super::layout;
use super::session::{self, Operator, Role, SignedIn, Source};
use crate::config::ConsoleSalesforceConfig;
use crate::http::AppState;
use crate::store::{NewOauthFlow, hash_token};

/// A round trip must come back within this long.
pub const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// Round trips in progress at most (unfinished ones expire); more are refused until some end.
pub const MAX_FLOWS: u64 = 10_000;
/// Scopes of a sign-in: who you are, and your Profile / permission sets by SOQL.
pub const SIGN_IN_SCOPES: &[&str] = &["api", "openid"];
/// Scopes of a connection: the API, offline.
pub const CONNECT_SCOPES: &[&str] = &["api", "refresh_token", "openid"];
/// Where the callback lands.
pub const CALLBACK_PATH: &str = "/console/oauth/callback";
/// The console's Salesforce page, whose connection section has Connect and Disconnect.
pub const CONNECTION_PAGE: &str = "/console/salesforce";

const PURPOSE_SIGN_IN: &str = "signin";
const PURPOSE_CONNECT: &str = "connect";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/login/salesforce", get(start_sign_in))
        .route(CALLBACK_PATH, get(callback))
        .route("/console/salesforce/connect", post(start_connect))
        .route("/console/salesforce/disconnect", post(disconnect))
        .route(
            "/console/salesforce/app",
            post(super::connection_page::save_app),
        )
}

/// The cookie that binds a round trip to the browser that started it.
fn flow_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-handoff_oauth"
    } else {
        "handoff_oauth"
    }
}

/// The redirect URI: `{public_url}/console/oauth/callback`, else the loopback Host's.
pub fn redirect_uri(state: &AppState, headers: &HeaderMap) -> Result<String, ConsoleError> {
    if let Some(public) = &state.config.public_url {
        return Ok(format!("{}{CALLBACK_PATH}", public.trim_end_matches('/')));
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| is_loopback_host(h))
        .ok_or_else(|| {
            ConsoleError::Invalid(
                "Salesforce sign-in needs public_url (HANDOFF_PUBLIC_URL) set to the address people reach this gateway at, so Salesforce can send them back to {public_url}/console/oauth/callback".into(),
            )
        })?;
    Ok(format!("http://{host}{CALLBACK_PATH}"))
}

/// `localhost`, `127.x.y.z` or `[::1]`, with an optional port.
fn is_loopback_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => (ip, tail.strip_prefix(':')),
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    port_ok && name_ok
}

async fn app_or_404(state: &AppState) -> Result<App, ConsoleError> {
    connection::app(&state.config, &state.store, &state.keys)
        .await
        .map_err(ConsoleError::Internal)?
        .ok_or(ConsoleError::NotFound)
}

fn web_flow(
    app: &App,
    redirect: &str,
    state: &AppState,
) -> Result<salesforce::WebFlow, ConsoleError> {
    salesforce::WebFlow::new(
        &app.login_url,
        &app.client_id,
        app.client_secret.clone(),
        redirect,
    )
    .map(|f| f.with_api_version(&state.config.salesforce.api_version))
    .map_err(|e| ConsoleError::Invalid(format!("[console.salesforce]: {e}")))
}

/// Stores a round trip and answers 303 to the org's authorize URL with the flow cookie set.
async fn begin_flow(
    state: &AppState,
    headers: &HeaderMap,
    app: &App,
    purpose: &str,
    started_by: Option<&str>,
    return_to: Option<&str>,
    scopes: &[&str],
) -> Result<Response, ConsoleError> {
    let redirect = redirect_uri(state, headers)?;
    let flow = web_flow(app, &redirect, state)?;
    let now = chrono::Utc::now().timestamp_millis();
    state.store.purge_oauth_flows(now).await?;
    if state.store.oauth_flow_count().await? >= MAX_FLOWS {
        tracing::warn!(
            max = MAX_FLOWS,
            "too many console OAuth round trips in progress"
        );
        return Ok(message(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again later",
            "Too many sign-ins are in progress right now. Try again in a few minutes.",
        ));
    }
    let start = flow.authorize(scopes);
    let state_hash = hash_token(&start.state);
    let sealed = state
        .keys
        .seal(
            &crate::secrets::oauth_verifier_name(&state_hash),
            start.pkce_verifier.expose_secret().as_bytes(),
        )
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    state
        .store
        .insert_oauth_flow(NewOauthFlow {
            state_hash: &state_hash,
            purpose,
            verifier_sealed: &sealed.sealed,
            key_id: &sealed.key_id,
            started_by,
            return_to,
            created_at: now,
            expires_at: now + FLOW_TTL_MS,
        })
        .await?;
    tracing::info!(purpose, "console OAuth round trip started");
    let secure = session::secure_cookies(state);
    let mut response = Redirect::to(start.url.as_str()).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        session::cookie(
            flow_cookie_name(secure),
            &start.state,
            (FLOW_TTL_MS / 1000) as u64,
            secure,
        ),
    );
    Ok(response)
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// `GET /console/login/salesforce?next=`.
async fn start_sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<NextQuery>,
) -> Result<Response, ConsoleError> {
    if !anyone_allowed(&state.config.console.salesforce) {
        return Err(ConsoleError::NotFound);
    }
    let app = app_or_404(&state).await?;
    let next = session::safe_return_to(query.next.as_deref());
    begin_flow(
        &state,
        &headers,
        &app,
        PURPOSE_SIGN_IN,
        None,
        Some(&next),
        SIGN_IN_SCOPES,
    )
    .await
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /console/salesforce/connect` (admin, CSRF).
async fn start_connect(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&form.csrf)?;
    op.require_admin()?;
    let Some(app) = connection::app(&state.config, &state.store, &state.keys)
        .await
        .map_err(ConsoleError::Internal)?
    else {
        return Err(ConsoleError::Invalid(
            "no connected app is set: enter its consumer key (and secret) first".into(),
        ));
    };
    begin_flow(
        &state,
        &headers,
        &app,
        PURPOSE_CONNECT,
        Some(&op.subject),
        Some(CONNECTION_PAGE),
        CONNECT_SCOPES,
    )
    .await
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// A console page with a status and one message.
fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let body = layout::bare(
        title,
        html! {
            div.card {
                h1 { (title) }
                p.error role="alert" { (text) }
                p { a href="/console/login" { "Back to sign-in" } }
            }
        },
    );
    (status, body).into_response()
}

/// Clears the flow cookie on a response.
fn clear_flow_cookie(state: &AppState, mut response: Response) -> Response {
    let secure = session::secure_cookies(state);
    response.headers_mut().append(
        SET_COOKIE,
        session::cookie(flow_cookie_name(secure), "", 0, secure),
    );
    response
}

/// `GET /console/oauth/callback`.
async fn callback(
    State(state): State<AppState>,
    parts: Parts,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let response = match finish(&state, parts, query).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    clear_flow_cookie(&state, response)
}

async fn finish(
    state: &AppState,
    mut parts: Parts,
    query: CallbackQuery,
) -> Result<Response, ConsoleError> {
    let refused = || {
        Ok(message(
            StatusCode::BAD_REQUEST,
            "Sign-in not completed",
            "This sign-in link is not valid any more (it was used, it expired, or it was started in another browser). Start again.",
        ))
    };
    let Some(flow_state) = query
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 256)
    else {
        return refused();
    };
    // Take the round trip first, so that even a refused or failed callback uses it up.
    let state_hash = hash_token(flow_state);
    let Some(flow) = state.store.take_oauth_flow(&state_hash).await? else {
        tracing::info!("console OAuth callback with an unknown or used state");
        return refused();
    };
    let now = chrono::Utc::now().timestamp_millis();
    let secure = session::secure_cookies(state);
    let same_browser = session::read_cookie(&parts.headers, flow_cookie_name(secure))
        .is_some_and(|c| session::constant_time_eq(c.as_bytes(), flow_state.as_bytes()));
    if flow.expires_at <= now || !same_browser {
        tracing::info!(
            purpose = flow.purpose.as_str(),
            expired = flow.expires_at <= now,
            same_browser,
            "console OAuth callback refused"
        );
        return refused();
    }
    if let Some(error) = &query.error {
        return Ok(salesforce_refusal(error));
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return refused();
    };
    let verifier = state
        .keys
        .open(
            &crate::secrets::oauth_verifier_name(&state_hash),
            &flow.key_id,
            &flow.verifier_sealed,
        )
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let verifier = SecretString::from(
        String::from_utf8(verifier)
            .map_err(|_| ConsoleError::Internal("PKCE verifier is not UTF-8".into()))?,
    );
    let app = app_or_404(state).await?;
    let redirect = redirect_uri(state, &parts.headers)?;
    let flow_client = web_flow(&app, &redirect, state)?;
    let tokens = match flow_client.exchange(code, &verifier).await {
        Ok(tokens) => tokens,
        Err(e) => {
            tracing::warn!(error = %e, purpose = flow.purpose.as_str(), "console OAuth code exchange failed");
            return Ok(message(
                StatusCode::BAD_GATEWAY,
                "Sign-in not completed",
                "Salesforce did not accept this sign-in. Start again; if it keeps failing, check the connected app's consumer key, secret and callback URL.",
            ));
        }
    };
    let me = match flow_client
        .userinfo(&tokens.instance_url, &tokens.access_token)
        .await
    {
        Ok(me) => me,
        Err(e) => {
            tracing::warn!(error = %e, "console OAuth userinfo failed");
            return Ok(message(
                StatusCode::BAD_GATEWAY,
                "Sign-in not completed",
                "Salesforce did not say who signed in (the app needs the openid scope). Start again.",
            ));
        }
    };
    match flow.purpose.as_str() {
        PURPOSE_CONNECT => {
            let op = Operator::from_request_parts(&mut parts, state).await?;
            if flow.started_by.as_deref() != Some(op.subject.as_str()) {
                return refused();
            }
            op.require_admin()?;
            connect(state, &app, tokens, me, &op).await
        }
        _ => sign_in(state, &flow_client, tokens, me, flow.return_to.as_deref()).await,
    }
}

/// Salesforce sent `error` instead of a code: say so without echoing its text.
fn salesforce_refusal(error: &str) -> Response {
    let text = match error {
        "access_denied" => "You did not allow access in Salesforce, so you are not signed in.",
        "redirect_uri_mismatch" => {
            "Salesforce refused this console's callback URL: add it to the connected app's callback URLs."
        }
        "invalid_scope" => {
            "The connected app does not allow the scopes this console asks for (api, refresh_token, openid)."
        }
        "login_required" | "interaction_required" | "consent_required" => {
            "Salesforce needs you to sign in there first. Start again."
        }
        _ => "Salesforce did not sign you in. Start again.",
    };
    let code_ok = error.len() <= 64 && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    tracing::info!(
        error = if code_ok { error } else { "other" },
        "salesforce refused a console OAuth round trip"
    );
    message(StatusCode::FORBIDDEN, "Sign-in not completed", text)
}

/// Whether any rule lets someone in.
fn anyone_allowed(cfg: &ConsoleSalesforceConfig) -> bool {
    !(cfg.allowed_users.is_empty()
        && cfg.allowed_profiles.is_empty()
        && cfg.allowed_permission_sets.is_empty())
}

/// Whether a rule looks at Profiles or permission sets (so they must be read).
fn needs_access(cfg: &ConsoleSalesforceConfig) -> bool {
    !(cfg.allowed_profiles.is_empty()
        && cfg.allowed_permission_sets.is_empty()
        && cfg.admin_profiles.is_empty()
        && cfg.admin_permission_sets.is_empty())
}

/// The role of a Salesforce user, or `None` when no rule lets them in. Usernames compare
/// ignoring ASCII case; Profile and permission set names exactly. Admin rules only apply to
/// someone an allow rule let in.
pub fn decide(
    cfg: &ConsoleSalesforceConfig,
    username: &str,
    access: &salesforce::UserAccess,
) -> Option<Role> {
    let matches = |users: &[String], profiles: &[String], sets: &[String]| {
        users.iter().any(|u| u.eq_ignore_ascii_case(username))
            || access
                .profile
                .as_ref()
                .is_some_and(|p| profiles.iter().any(|x| x == p))
            || access
                .permission_sets
                .iter()
                .any(|s| sets.iter().any(|x| x == s))
    };
    if !matches(
        &cfg.allowed_users,
        &cfg.allowed_profiles,
        &cfg.allowed_permission_sets,
    ) {
        return None;
    }
    if matches(
        &cfg.admin_users,
        &cfg.admin_profiles,
        &cfg.admin_permission_sets,
    ) {
        Some(Role::Admin)
    } else {
        Some(Role::Operator)
    }
}

/// The org people must sign in from: the connected one, else the one the gateway's
/// credentials reach.
async fn expected_org(state: &AppState) -> Result<Option<String>, ConsoleError> {
    if let Some(c) = connection::load(&state.store, &state.keys)
        .await
        .map_err(ConsoleError::Internal)?
    {
        return Ok(Some(c.org_id));
    }
    match state.salesforce.identity().await {
        Ok(identity) => Ok(identity.map(|(org, _)| org)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the org's identity to check a console sign-in");
            Ok(None)
        }
    }
}

fn same_org(a: &str, b: &salesforce::SalesforceId) -> bool {
    salesforce::SalesforceId::parse_case_insensitive(a).is_ok_and(|a| a.to_15() == b.to_15())
}

async fn sign_in(
    state: &AppState,
    flow: &salesforce::WebFlow,
    tokens: salesforce::WebTokens,
    me: salesforce::UserInfo,
    return_to: Option<&str>,
) -> Result<Response, ConsoleError> {
    let forbidden = || {
        message(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Your Salesforce user may not use this console. Ask an admin of this console for access.",
        )
    };
    let org_ok = match expected_org(state).await? {
        Some(org) => same_org(&org, &me.organization_id),
        None => false,
    };
    let cfg = &state.config.console.salesforce;
    let role = if !org_ok {
        tracing::info!("console sign-in refused: the user is not of the connected org");
        None
    } else {
        let access = if needs_access(cfg) {
            match flow
                .profile_and_permission_sets(
                    &tokens.instance_url,
                    &tokens.access_token,
                    &me.user_id,
                )
                .await
            {
                Ok(access) => access,
                Err(e) => {
                    tracing::warn!(error = %e, "reading a console user's profile and permission sets failed");
                    salesforce::UserAccess::default()
                }
            }
        } else {
            salesforce::UserAccess::default()
        };
        decide(cfg, &me.preferred_username, &access)
    };
    // The sign-in's access token is not needed any more.
    if let Err(e) = flow.revoke_access_token(&tokens.access_token).await {
        tracing::debug!(error = %e, "revoking a console sign-in's access token failed");
    }
    let Some(role) = role else {
        tracing::info!("console sign-in refused: no rule allows this Salesforce user");
        return Ok(forbidden());
    };
    let display_name = me
        .name
        .clone()
        .unwrap_or_else(|| me.preferred_username.clone());
    session::begin(
        state,
        SignedIn {
            subject: me.user_id.into_string(),
            display_name,
            source: Source::Salesforce,
            role,
        },
        return_to,
    )
    .await
}

async fn connect(
    state: &AppState,
    app: &App,
    tokens: salesforce::WebTokens,
    me: salesforce::UserInfo,
    op: &Operator,
) -> Result<Response, ConsoleError> {
    let Some(refresh_token) = tokens.refresh_token else {
        return Ok(message(
            StatusCode::BAD_REQUEST,
            "Not connected",
            "Salesforce gave no refresh token: add the scope “Perform requests at any time (refresh_token, offline_access)” to the connected app, then connect again.",
        ));
    };
    let credentials = salesforce::Credentials::RefreshToken {
        client_id: app.client_id.clone(),
        client_secret: app
            .client_secret
            .clone()
            .unwrap_or_else(|| SecretString::from("")),
        refresh_token: refresh_token.clone(),
    };
    let connection = Connection {
        instance_url: tokens
            .instance_url
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        username: me.preferred_username.clone(),
        user_id: me.user_id.as_str().to_owned(),
        org_id: me.organization_id.as_str().to_owned(),
        connected_at: chrono::Utc::now().to_rfc3339(),
        login_url: app.login_url.clone(),
        client_id: app.client_id.clone(),
    };
    connection::save(&state.store, &state.keys, &connection, &refresh_token)
        .await
        .map_err(ConsoleError::Internal)?;
    state
        .salesforce
        .set_credentials_at(&app.login_url, &credentials)
        .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    tracing::info!(
        admin = op.subject.as_str(),
        "salesforce connected from the console"
    );
    Ok(Redirect::to(&format!("{CONNECTION_PAGE}?done=connected")).into_response())
}

/// `POST /console/salesforce/disconnect` (admin, CSRF): revokes the refresh token
/// (best-effort), deletes the connection, and goes back to the configured credentials.
async fn disconnect(
    State(state): State<AppState>,
    op: Operator,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&form.csrf)?;
    op.require_admin()?;
    let refresh = state
        .store
        .get_secret(&state.keys, connection::REFRESH_TOKEN)
        .await
        .ok()
        .flatten();
    let stored = connection::load(&state.store, &state.keys)
        .await
        .ok()
        .flatten();
    if let (Some(refresh), Some(stored)) = (refresh, stored) {
        // Any valid URL does as the redirect: revoke does not use it.
        let revoked = salesforce::WebFlow::new(
            &stored.login_url,
            &stored.client_id,
            None,
            &stored.login_url,
        )
        .map_err(|e| e.to_string());
        let outcome = match revoked {
            Ok(flow) => flow
                .revoke_refresh_token(&refresh)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "revoking the stored Salesforce refresh token failed; deleting it anyway");
        }
    }
    connection::delete(&state.store)
        .await
        .map_err(ConsoleError::Internal)?;
    let done = match &state.config.salesforce.credentials {
        Some(credentials) => {
            state
                .salesforce
                .set_credentials_at(&state.config.salesforce.login_url, credentials)
                .map_err(|e| ConsoleError::Internal(e.to_string()))?;
            "disconnected"
        }
        None => {
            // Nothing left to call Salesforce with: calls wait (and the breaker holds the
            // queue) until an admin connects again.
            state
                .salesforce
                .set_credentials_at(
                    &state.config.salesforce.login_url,
                    &salesforce::Credentials::NotConnected,
                )
                .map_err(|e| ConsoleError::Internal(e.to_string()))?;
            "disconnected-none-left"
        }
    };
    tracing::info!(
        admin = op.subject.as_str(),
        "salesforce disconnected from the console"
    );
    Ok(Redirect::to(&format!("{CONNECTION_PAGE}?done={done}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ConsoleSalesforceConfig {
        ConsoleSalesforceConfig {
            allowed_users: vec!["Ann@Acme.example".into()],
            allowed_profiles: vec!["Support Agent".into()],
            allowed_permission_sets: vec!["Handoff_Console_Operator".into()],
            admin_users: vec!["boss@acme.example".into()],
            admin_permission_sets: vec!["Handoff_Console_Admin".into()],
            ..Default::default()
        }
    }

    fn access(profile: Option<&str>, sets: &[&str]) -> salesforce::UserAccess {
        salesforce::UserAccess {
            profile: profile.map(str::to_owned),
            permission_sets: sets.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn rules_decide_access_and_role() {
        let cfg = cfg();
        let none = access(None, &[]);
        assert_eq!(
            decide(&cfg, "ann@acme.example", &none),
            Some(Role::Operator)
        );
        assert_eq!(
            decide(&cfg, "ANN@ACME.EXAMPLE", &none),
            Some(Role::Operator)
        );
        assert_eq!(decide(&cfg, "someone@acme.example", &none), None);
        assert_eq!(
            decide(&cfg, "x@acme.example", &access(Some("Support Agent"), &[])),
            Some(Role::Operator)
        );
        // Profile and permission set names compare exactly.
        assert_eq!(
            decide(&cfg, "x@acme.example", &access(Some("support agent"), &[])),
            None
        );
        assert_eq!(
            decide(
                &cfg,
                "x@acme.example",
                &access(None, &["handoff_console_operator"])
            ),
            None
        );
        assert_eq!(
            decide(
                &cfg,
                "x@acme.example",
                &access(
                    None,
                    &["Other", "Handoff_Console_Operator", "Handoff_Console_Admin"]
                )
            ),
            Some(Role::Admin)
        );
        // An admin rule alone does not let someone in.
        assert_eq!(decide(&cfg, "boss@acme.example", &none), None);
        assert_eq!(
            decide(
                &cfg,
                "x@acme.example",
                &access(None, &["Handoff_Console_Admin"])
            ),
            None
        );
        assert!(needs_access(&cfg));
        let users_only = ConsoleSalesforceConfig {
            allowed_users: vec!["a@b.c".into()],
            ..Default::default()
        };
        assert!(!needs_access(&users_only) && anyone_allowed(&users_only));
        assert!(!anyone_allowed(&ConsoleSalesforceConfig::default()));
    }

    #[test]
    fn only_loopback_hosts_stand_in_for_public_url() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:3000",
            "127.8.9.1",
            "[::1]:80",
            "LOCALHOST:1",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "example.com",
            "10.0.0.1:80",
            "localhost.evil.example",
            "127.0.0.1:80@evil",
            "127.0.0.1:",
            "[::1",
            "[::2]:80",
            "0.0.0.0:80",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn orgs_compare_by_their_15_character_id() {
        let id = salesforce::SalesforceId::parse("00D5g000004Hnd0").unwrap();
        assert!(same_org(id.as_str(), &id));
        assert!(same_org(&id.as_str().to_ascii_lowercase(), &id));
        assert!(same_org("00D5g000004Hnd0", &id));
        assert!(!same_org("00D5g000004Hnd1", &id));
        assert!(!same_org("", &id));
    }
}
