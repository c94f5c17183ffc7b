//! Console sign-ins: a random cookie secret whose SHA-256 keys the `console_sessions` row,
//! the CSRF token every form carries (derived from that secret, never stored), and the
//! [`Operator`] extractor.
//!
//! The cookie is `HttpOnly`, `SameSite=Lax` (the OAuth callback is a top-level navigation
//! from Salesforce) and, behind TLS, `Secure` with the `__Host-` prefix.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::error::ConsoleError;
use crate::http::AppState;
use crate::store::{NewConsoleSession, hash_token};

/// Who may do what in the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything: retry, revoke, create tokens, connect Salesforce.
    Admin,
    /// Read-only.
    Operator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

/// How the operator signed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A local console account.
    Local,
    /// A Salesforce user of the connected org.
    Salesforce,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Salesforce => "salesforce",
        }
    }
}

/// Someone who just proved who they are.
#[derive(Clone, Debug)]
pub struct SignedIn {
    /// A local account id or a Salesforce user id.
    pub subject: String,
    pub display_name: String,
    pub source: Source,
    pub role: Role,
}

/// The signed-in operator of a console request.
#[derive(Clone, Debug)]
pub struct Operator {
    /// The `console_sessions` row id.
    pub session_id: String,
    pub subject: String,
    pub display_name: String,
    pub role: Role,
    pub source: Source,
    /// The token every form of this sign-in carries.
    pub csrf: String,
}

impl Operator {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ConsoleError::AdminOnly)
        }
    }

    /// Checks a form's `csrf` field in constant time.
    pub fn check_csrf(&self, form_token: &str) -> Result<(), ConsoleError> {
        if constant_time_eq(self.csrf.as_bytes(), form_token.as_bytes()) {
            Ok(())
        } else {
            Err(ConsoleError::Csrf)
        }
    }
}

/// The session cookie's name.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-handoff_console"
    } else {
        "handoff_console"
    }
}

/// Whether cookies are `Secure`: `console.secure_cookies`, else when `public_url` is https.
pub fn secure_cookies(state: &AppState) -> bool {
    state.config.console.secure_cookies.unwrap_or_else(|| {
        state
            .config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    })
}

/// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
pub fn cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let mut text =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}");
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).expect("cookie values are base64url")
}

/// The value of cookie `name` in the request (the first, if sent twice). Bounded: at most 64
/// pairs per header are looked at and values over 256 bytes are ignored.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';').take(64))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// 32 random bytes, base64url.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The CSRF token of the sign-in whose cookie secret is `secret`.
pub fn csrf_for(secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"handoff console csrf v1");
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `return_to` when it is a console path of ours (no scheme, no host, no `//`, no `\`),
/// else `/console`. Keeps sign-in from being an open redirect.
pub fn safe_return_to(return_to: Option<&str>) -> String {
    match return_to {
        Some(path)
            if (path == "/console" || path.starts_with("/console/"))
                && !path.contains("//")
                && !path.contains('\\')
                && path.len() <= 512
                && path.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            path.to_string()
        }
        _ => "/console".to_string(),
    }
}

/// Starts a console session for `who` and answers 303 to `return_to` (a console path only)
/// with the session cookie set. Expired sign-ins are purged on the way.
pub async fn begin(
    state: &AppState,
    who: SignedIn,
    return_to: Option<&str>,
) -> Result<Response, ConsoleError> {
    let now = chrono::Utc::now().timestamp_millis();
    state.store.purge_console_sessions(now).await?;
    let secret = random_secret();
    let hours = state.config.console.session_hours.max(1);
    let id = hash_token(&secret);
    state
        .store
        .insert_console_session(NewConsoleSession {
            id: &id,
            subject: &who.subject,
            display_name: &who.display_name,
            source: who.source.as_str(),
            role: who.role.as_str(),
            expires_at: now + (hours as i64) * 3_600_000,
        })
        .await?;
    tracing::info!(
        source = who.source.as_str(),
        role = who.role.as_str(),
        "console sign-in"
    );
    let secure = secure_cookies(state);
    let mut response = Redirect::to(&safe_return_to(return_to)).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        cookie(cookie_name(secure), &secret, hours * 3600, secure),
    );
    Ok(response)
}

/// Ends the request's sign-in (if any) and clears the cookie.
pub async fn end(state: &AppState, headers: &HeaderMap) -> Result<Response, ConsoleError> {
    let secure = secure_cookies(state);
    if let Some(secret) = read_cookie(headers, cookie_name(secure)) {
        state
            .store
            .delete_console_session(&hash_token(secret))
            .await?;
    }
    let mut response = Redirect::to("/console/login").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, cookie(cookie_name(secure), "", 0, secure));
    Ok(response)
}

/// `last_seen_at` is written at most this often per sign-in.
const TOUCH_EVERY_MS: i64 = 60_000;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        if let Some(known) = parts.extensions.get::<Operator>() {
            return Ok(known.clone());
        }
        let next = if parts.method == Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or("/console".to_string(), |p| p.as_str().to_string())
        } else {
            "/console".to_string()
        };
        let sign_in = || ConsoleError::SignIn { next: next.clone() };
        let secure = secure_cookies(state);
        let secret = read_cookie(&parts.headers, cookie_name(secure)).ok_or_else(sign_in)?;
        let id = hash_token(secret);
        let now = chrono::Utc::now().timestamp_millis();
        let row = state
            .store
            .console_session(&id, now)
            .await?
            .ok_or_else(sign_in)?;
        if now - row.last_seen_at > TOUCH_EVERY_MS {
            state.store.touch_console_session(&id, now).await?;
        }
        let operator = Operator {
            session_id: id,
            subject: row.subject,
            display_name: row.display_name,
            role: Role::parse(&row.role).unwrap_or(Role::Operator),
            source: if row.source == "salesforce" {
                Source::Salesforce
            } else {
                Source::Local
            },
            csrf: csrf_for(secret),
        };
        parts.extensions.insert(operator.clone());
        Ok(operator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_in_the_console() {
        assert_eq!(
            safe_return_to(Some("/console/sessions/a")),
            "/console/sessions/a"
        );
        for bad in [
            "https://evil.example/console",
            "//evil.example",
            "/console//evil.example",
            "/console/\\evil",
            "/v1/sessions",
            "/consolex",
            "/console/a b",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_return_to(None), "/console");
    }

    #[test]
    fn cookies_are_found_among_others_and_bounded() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; handoff_console=abc; b=2"),
        );
        assert_eq!(read_cookie(&headers, "handoff_console"), Some("abc"));
        assert_eq!(read_cookie(&headers, "handoff"), None);
        let long = format!("handoff_console={}", "x".repeat(300));
        headers.insert(COOKIE, HeaderValue::from_str(&long).unwrap());
        assert_eq!(read_cookie(&headers, "handoff_console"), None);
    }

    #[test]
    fn csrf_tokens_differ_per_sign_in_and_compare_exactly() {
        let (a, b) = (random_secret(), random_secret());
        assert_ne!(csrf_for(&a), csrf_for(&b));
        assert_eq!(csrf_for(&a), csrf_for(&a));
        let op = Operator {
            session_id: String::new(),
            subject: String::new(),
            display_name: String::new(),
            role: Role::Operator,
            source: Source::Local,
            csrf: csrf_for(&a),
        };
        assert!(op.check_csrf(&csrf_for(&a)).is_ok());
        assert!(op.check_csrf(&csrf_for(&b)).is_err());
        assert!(op.check_csrf("").is_err());
        assert!(op.require_admin().is_err());
    }

    #[test]
    fn secure_cookies_carry_secure() {
        let c = cookie("__Host-handoff_console", "v", 60, true);
        let text = c.to_str().unwrap();
        assert!(
            text.contains("HttpOnly")
                && text.contains("SameSite=Lax")
                && text.ends_with("; Secure")
        );
        assert!(
            !cookie("handoff_console", "v", 60, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
