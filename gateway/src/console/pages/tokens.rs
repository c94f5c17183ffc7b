//! `GET /console/tokens`: API tokens (name, scopes, created, revoked — never a secret or a
//! hash). Admins create one (`POST /console/tokens`: the secret is shown once, on the
//! answer page, never in a URL) and revoke one (`POST /console/tokens/{id}/revoke`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{Markup, html};
use serde::Deserialize;

use super::at;
use crate::console::error::ConsoleError;
use crate::console::layout;
use crate::console::session::Operator;
use crate::http::AppState;
use crate::store::{Scope, api_token};

/// Tokens per page.
const PAGE: u64 = 100;
/// Longest token name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/tokens", get(list).post(create))
        .route("/console/tokens/{id}/revoke", post(revoke))
}

/// Whether `name` is acceptable for a token: 1–64 characters after trimming, none of them
/// control characters (names show in lists and logs). The error says what is wrong.
pub fn check_token_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("name: give the token a name (who or what will use it)".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "name: a token name is at most {MAX_NAME_CHARS} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("name: a token name cannot hold control characters".into());
    }
    Ok(name)
}

#[derive(Deserialize)]
struct ListQuery {
    after: Option<String>,
    revoked: Option<String>,
}

fn uuid_text(text: Option<&str>) -> Option<String> {
    text.and_then(|t| uuid::Uuid::parse_str(t).ok())
        .map(|u| u.to_string())
}

async fn list(
    State(state): State<AppState>,
    op: Operator,
    Query(query): Query<ListQuery>,
) -> Result<Markup, ConsoleError> {
    let after = uuid_text(query.after.as_deref());
    let notice = uuid_text(query.revoked.as_deref()).map(|id| {
        html! { p.notice.ok role="status" { "Token " code { (id) } " is revoked; its next request gets 401." } }
    });
    page(&state, &op, after.as_deref(), notice, None).await
}

/// The tokens page: an optional notice, the create form (admins, with `error` and the
/// name typed), the list.
async fn page(
    state: &AppState,
    op: &Operator,
    after: Option<&str>,
    notice: Option<Markup>,
    error: Option<(&str, &str)>,
) -> Result<Markup, ConsoleError> {
    let mut rows = state.store.list_tokens(after, PAGE + 1).await?;
    let more = rows.len() as u64 > PAGE;
    rows.truncate(PAGE as usize);
    let body = html! {
        h1 { "API tokens" }
        @if let Some(notice) = notice { (notice) }
        @if op.is_admin() { (create_form(op, error)) }
        (table(op, &rows))
        @if more {
            @if let Some(last) = rows.last() {
                p { a href=(format!("/console/tokens?after={}", last.id)) { "Next page" } }
            }
        }
    };
    Ok(layout::page("API tokens", Some(op), body))
}

fn create_form(op: &Operator, error: Option<(&str, &str)>) -> Markup {
    let (message, typed) = match error {
        Some((message, typed)) => (Some(message), typed),
        None => (None, ""),
    };
    html! {
        section #create {
            h2 { "Create a token" }
            @if let Some(message) = message { p.error role="alert" { (message) } }
            form method="post" action="/console/tokens" {
                (layout::csrf_field(op))
                label for="name" { "Name " }
                input #name type="text" name="name" value=(typed) maxlength=(MAX_NAME_CHARS) required;
                " "
                @for (scope, help) in [
                    ("read", "read sessions"),
                    ("escalate", "escalate and write to sessions"),
                    ("admin", "jobs, tokens"),
                ] {
                    label title=(help) {
                        input #{ "scope-" (scope) } type="checkbox" name={ "scope_" (scope) } value="on";
                        " " (scope)
                    }
                    " "
                }
                button #create-token type="submit" { "Create token" }
            }
        }
    }
}

fn table(op: &Operator, rows: &[api_token::Model]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted { "No tokens." }
        } @else {
            table.tokens {
                thead { tr {
                    th { "Name" } th { "Id" } th { "Scopes" } th { "Created" } th { "Revoked" }
                    @if op.is_admin() { th { } }
                } }
                tbody {
                    @for t in rows {
                        tr #{ "token-" (t.id) } {
                            td { (t.name) }
                            td { code { (t.id) } }
                            td { (t.scopes.replace(',', ", ")) }
                            td { (at(t.created_at)) }
                            td {
                                @match t.revoked_at {
                                    Some(when) => span.bad { (at(when)) },
                                    None => span.muted { "—" },
                                }
                            }
                            @if op.is_admin() {
                                td {
                                    @if t.revoked_at.is_none() {
                                        form.inline method="post" action=(format!("/console/tokens/{}/revoke", t.id)) {
                                            (layout::csrf_field(op))
                                            button.danger #{ "revoke-" (t.id) } type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    scope_read: Option<String>,
    scope_escalate: Option<String>,
    scope_admin: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    op: Operator,
    Form(form): Form<CreateForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&form.csrf)?;
    op.require_admin()?;
    let scopes: Vec<Scope> = [
        (form.scope_read.is_some(), Scope::Read),
        (form.scope_escalate.is_some(), Scope::Escalate),
        (form.scope_admin.is_some(), Scope::Admin),
    ]
    .into_iter()
    .filter_map(|(on, scope)| on.then_some(scope))
    .collect();
    let typed: String = form.name.chars().take(MAX_NAME_CHARS * 2).collect();
    let checked = check_token_name(&form.name).and_then(|name| {
        if scopes.is_empty() {
            Err("scopes: tick at least one scope (read, escalate or admin)".into())
        } else {
            Ok(name)
        }
    });
    let name = match checked {
        Ok(name) => name,
        Err(message) => {
            let page = page(&state, &op, None, None, Some((&message, &typed))).await?;
            return Ok((StatusCode::BAD_REQUEST, page).into_response());
        }
    };
    let token = state.store.create_token(name, &scopes).await?;
    tracing::info!(token_id = %token.id, by = %op.subject, "API token created from the console.");
    let scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let body = html! {
        h1 { "Token created" }
        p { "The token " strong { (name) } " (" (scope_names.join(", ")) ") is ready. "
            "Copy it now: it is shown only this once, and only its hash is stored." }
        p { code #new-token { (token.secret) } }
        p { a href="/console/tokens" { "Back to the tokens" } }
    };
    Ok(layout::page("Token created", Some(&op), body).into_response())
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn revoke(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&form.csrf)?;
    op.require_admin()?;
    let id = uuid_text(Some(&id)).ok_or(ConsoleError::NotFound)?;
    let token = state
        .store
        .revoke_token(&id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    tracing::info!(token_id = %token.id, by = %op.subject, "API token revoked from the console.");
    Ok(Redirect::to(&format!("/console/tokens?revoked={}", token.id)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_names_are_bounded_and_printable() {
        assert_eq!(check_token_name("  ci deploy  "), Ok("ci deploy"));
        assert!(check_token_name("").is_err());
        assert!(check_token_name("   ").is_err());
        assert!(check_token_name(&"x".repeat(MAX_NAME_CHARS)).is_ok());
        assert!(check_token_name(&"é".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_token_name("a\u{7}b").is_err());
        assert!(check_token_name("line\nbreak").is_err());
    }
}
