//! The connection section of `GET /console/salesforce`: how the gateway reaches the org now (a
//! connection made in the console, or the configured credentials), "Connect Salesforce" and
//! "Disconnect" for admins, and the connected app's consumer key and secret when the config
//! file does not set them. `POST /console/salesforce/app` saves those (admin, CSRF; the secret
//! is stored sealed and never shown again).

use axum::Form;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;

use super::connection::{self, CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET};
use super::error::ConsoleError;
use super::layout;
use super::oauth::{CONNECTION_PAGE, redirect_uri};
use super::session::Operator;
use crate::http::AppState;

fn notice(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "connected" => "Connected. Salesforce calls now use this connection.",
        "disconnected" => "Disconnected. Salesforce calls use the configured credentials again.",
        "disconnected-none-left" => {
            "Disconnected. No other Salesforce credentials are configured: Salesforce calls fail until you connect again or set salesforce.credentials."
        }
        "app-saved" => "The connected app is saved.",
        _ => return None,
    })
}

/// The connection section (status, Connect / Disconnect, the app form). `done` is the
/// `?done=` of a redirect after an action, shown as a notice.
pub async fn section(
    state: &AppState,
    op: &Operator,
    headers: &HeaderMap,
    done: Option<&str>,
) -> Result<Markup, ConsoleError> {
    let stored = connection::load(&state.store, &state.keys)
        .await
        .map_err(ConsoleError::Internal)?;
    let app = connection::app(&state.config, &state.store, &state.keys)
        .await
        .map_err(ConsoleError::Internal)?;
    let configured = state
        .config
        .salesforce
        .credentials
        .as_ref()
        .map(|c| c.kind());
    let callback = redirect_uri(state, headers);
    let sf = &state.config.salesforce;
    Ok(html! {
        section #connection {
            h2 { "Connection" }
            @if let Some(text) = notice(done) { p.notice #notice role="status" { (text) } }
            dl.facts {
                dt { "Login URL" } dd { (stored.as_ref().map_or(sf.login_url.as_str(), |c| c.login_url.as_str())) }
                dt { "Grant" } dd #grant {
                    @match (&stored, configured) {
                        (Some(_), _) => "refresh_token (connected in the console)",
                        (None, Some(kind)) => (kind),
                        (None, None) => span.bad { "none configured ([salesforce.credentials])" },
                    }
                }
                dt { "API version" } dd { (sf.api_version) }
            }
            @if let Some(c) = &stored {
                p #connection-status {
                    "Connected as " strong #connected-username { (c.username) }
                    " (org " code { (c.org_id) } ") at " code { (c.instance_url) }
                    " since " (c.connected_at) "."
                }
                @if op.is_admin() {
                    form method="post" action="/console/salesforce/disconnect" {
                        (layout::csrf_field(op))
                        button #disconnect-salesforce type="submit" { "Disconnect" }
                    }
                }
            } @else {
                p #connection-status {
                    @match configured {
                        Some(kind) => { "Not connected in the console: using the configured credentials (" code { (kind) } ")." }
                        None => { "Not connected, and no salesforce.credentials are configured." }
                    }
                }
            }
            @if op.is_admin() {
                @if app.is_some() {
                    form method="post" action="/console/salesforce/connect" {
                        (layout::csrf_field(op))
                        button #connect-salesforce type="submit" {
                            @if stored.is_some() { "Connect again" } @else { "Connect Salesforce" }
                        }
                    }
                }
            }
        }
        @if op.is_admin() {
            section #connected-app {
                h2 { "Connected app" }
                @match &callback {
                    Ok(url) => p { "Callback URL to register on the app: " code #callback-url { (url) } }
                    Err(e) => p.error { (e.to_string()) }
                }
                @match &app {
                    Some(a) if a.from_config => p { "Consumer key " code { (a.client_id) } " (from [console.salesforce] in the config file)." }
                    _ => {
                        @if let Some(a) = &app { p { "Consumer key " code { (a.client_id) } " (entered here)." } }
                        form method="post" action="/console/salesforce/app" {
                            (layout::csrf_field(op))
                            label for="client_id" { "Consumer key" }
                            input #client_id type="text" name="client_id" required maxlength="256" autocomplete="off";
                            label for="client_secret" { "Consumer secret (leave empty to keep the stored one)" }
                            input #client_secret type="password" name="client_secret" maxlength="256" autocomplete="off";
                            button #save-app type="submit" { "Save" }
                        }
                    }
                }
            }
        }
    })
}

#[derive(Deserialize)]
pub(super) struct AppForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

fn printable(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic())
}

/// `POST /console/salesforce/app`.
pub(super) async fn save_app(
    State(state): State<AppState>,
    op: Operator,
    Form(form): Form<AppForm>,
) -> Result<Response, ConsoleError> {
    op.check_csrf(&form.csrf)?;
    op.require_admin()?;
    if state.config.console.salesforce.client_id.is_some() {
        return Err(ConsoleError::Invalid(
            "the connected app is set in the config file ([console.salesforce] client_id); change it there".into(),
        ));
    }
    let client_id = form.client_id.trim();
    if client_id.is_empty() || client_id.len() > 256 || !printable(client_id) {
        return Err(ConsoleError::Invalid(
            "client_id: enter the app's consumer key (1 to 256 characters, no spaces)".into(),
        ));
    }
    let secret = form.client_secret.trim();
    if secret.len() > 256 || !printable(secret) {
        return Err(ConsoleError::Invalid(
            "client_secret: at most 256 characters, no spaces".into(),
        ));
    }
    let store_err = |e: crate::store::SecretStoreError| ConsoleError::Internal(e.to_string());
    state
        .store
        .put_secret(
            &state.keys,
            CONSOLE_CLIENT_ID,
            &SecretString::from(client_id),
        )
        .await
        .map_err(store_err)?;
    if !secret.is_empty() {
        state
            .store
            .put_secret(
                &state.keys,
                CONSOLE_CLIENT_SECRET,
                &SecretString::from(secret),
            )
            .await
            .map_err(store_err)?;
    }
    tracing::info!(admin = op.subject.as_str(), "console connected app saved");
    Ok(Redirect::to(&format!("{CONNECTION_PAGE}?done=app-saved")).into_response())
}
