//! The HTML of the authorize flow: the login page and the error page. Server-rendered, no
//! script, no external assets; every value written into the page is HTML-escaped.
//!
//! Stable element ids (tests and headless browsers fill them, as on Salesforce's own login
//! page): `<form id="login_form">`, `<input id="username" name="username">`,
//! `<input id="password" name="pw" type="password">`, `<input id="Login" type="submit">`,
//! the error text in `<div id="error">`, and the request in hidden inputs named after its
//! parameters (`response_type`, `client_id`, `redirect_uri`, `state`, `scope`,
//! `code_challenge`, `code_challenge_method`).

use std::fmt::Write as _;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::oauth_authorize::{AuthRequest, HIDDEN_FIELDS};

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;background:#f3f3f3;margin:0}\
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:.5rem}\
label{display:block;margin-top:1rem}input[type=text],input[type=password]{width:100%;\
padding:.5rem;box-sizing:border-box}#Login{margin-top:1.5rem;width:100%;padding:.6rem;\
background:#0176d3;color:#fff;border:0;border-radius:.25rem}#error{color:#c23934;margin-top:1rem}";

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>\n",
        escape(title)
    );
    let mut resp = (status, page).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html;charset=UTF-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// The login page (status 200), with `message` shown above the form after a failed attempt.
pub(crate) fn login_page(req: &AuthRequest, username: &str, message: Option<&str>) -> Response {
    let mut body = format!("<h1>Log In</h1><p>{}</p>", escape(crate::config::ORG_NAME));
    if let Some(m) = message {
        let _ = write!(body, "<div id=\"error\" role=\"alert\">{}</div>", escape(m));
    }
    body.push_str(
        "<form id=\"login_form\" name=\"login\" method=\"post\" action=\"/services/oauth2/authorize\" autocomplete=\"off\">",
    );
    for name in HIDDEN_FIELDS {
        if let Some(value) = req.hidden(name) {
            let _ = write!(
                body,
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(value)
            );
        }
    }
    let _ = write!(
        body,
        "<label for=\"username\">Username</label>\
         <input type=\"text\" id=\"username\" name=\"username\" value=\"{}\" required>\
         <label for=\"password\">Password</label>\
         <input type=\"password\" id=\"password\" name=\"pw\" required>\
         <input type=\"submit\" id=\"Login\" name=\"Login\" value=\"Log In\">\
         </form>",
        escape(username)
    );
    html(StatusCode::OK, "Login | Salesforce", &body)
}

/// The error page of a request whose callback cannot be trusted (never a redirect).
pub(crate) fn error_page(status: StatusCode, error: &str, description: &str) -> Response {
    let body = format!(
        "<h1>Remote Access Error</h1><p id=\"error\">error={}</p><p id=\"error_description\">{}</p>",
        escape(error),
        escape(description)
    );
    html(status, "Remote Access Error", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain é"), "plain é");
    }
}
