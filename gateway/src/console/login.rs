//! Signing in with a local console account, and signing out.
//!
//! The sign-in form is protected against login CSRF by a double-submit token: a short-lived
//! `handoff_login` cookie whose value the form repeats.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use axum::{Form, Router, routing::get, routing::post};
use maud::{Markup, html};
use serde::Deserialize;

use super::error::ConsoleError;
use super::layout;
use super::password;
use super::session::{self, Operator, Role, SignedIn, Source};
use crate::http::AppState;

const LOGIN_COOKIE: &str = "handoff_login";
const LOGIN_COOKIE_SECS: u64 = 1800;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/login", get(show).post(submit))
        .route("/console/logout", post(logout))
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn show(State(state): State<AppState>, Query(query): Query<NextQuery>) -> Response {
    let token = session::random_secret();
    let next = session::safe_return_to(query.next.as_deref());
    let salesforce = super::salesforce_sign_in_offered(&state).await;
    render(&state, salesforce, &token, &next, None, None)
}

fn render(
    state: &AppState,
    salesforce: bool,
    token: &str,
    next: &str,
    username: Option<&str>,
    error: Option<&str>,
) -> Response {
    let secure = session::secure_cookies(state);
    let body: Markup = html! {
        div.card {
            h1 { "Sign in to the Handoff console" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            @if salesforce {
                p { a.button #sign-in-salesforce href={ "/console/login/salesforce?next=" (encode(next)) } { "Sign in with Salesforce" } }
                p.muted { "or with a local account:" }
            }
            form method="post" action="/console/login" {
                input type="hidden" name="login_token" value=(token);
                input type="hidden" name="next" value=(next);
                label for="username" { "Username" }
                input #username type="text" name="username" autocomplete="username" value=(username.unwrap_or("")) required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                div.actions { button #sign-in type="submit" { "Sign in" } }
            }
        }
    };
    let mut response = layout::bare("Sign in", body).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        session::cookie(LOGIN_COOKIE, token, LOGIN_COOKIE_SECS, secure),
    );
    response
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    login_token: String,
    next: Option<String>,
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let next = session::safe_return_to(form.next.as_deref());
    let cookie = session::read_cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if cookie.is_empty()
        || !session::constant_time_eq(cookie.as_bytes(), form.login_token.as_bytes())
    {
        return Err(ConsoleError::Csrf);
    }
    let username = form.username.trim();
    let user = if username.is_empty() || username.len() > 128 {
        None
    } else {
        state.store.console_user(username).await?
    };
    let ok = password::verify(
        form.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    match user.filter(|_| ok) {
        Some(user) => {
            session::begin(
                &state,
                SignedIn {
                    subject: user.id,
                    display_name: user.username,
                    source: Source::Local,
                    role: Role::parse(&user.role).unwrap_or(Role::Operator),
                },
                Some(&next),
            )
            .await
        }
        None => {
            tracing::info!("console sign-in refused");
            let token = session::random_secret();
            let salesforce = super::salesforce_sign_in_offered(&state).await;
            let mut response = render(
                &state,
                salesforce,
                &token,
                &next,
                Some(username),
                Some("That username and password do not match an account here."),
            );
            *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
            Ok(response)
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&form.csrf)?;
    session::end(&state, &headers).await
}
