//! The console's page frame: one stylesheet, a navigation bar, no script needed.
//! maud escapes every interpolated value, so transcripts and names render as text.

use axum::http::{HeaderMap, HeaderValue, header};
use maud::{DOCTYPE, Markup, html};

use super::session::Operator;

/// The stylesheet, served at `/console/assets/console.css`.
pub const CSS: &str = include_str!("console.css");

/// Navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/console", "Search"),
    ("/console/live", "Live sessions"),
    ("/console/jobs", "Dead jobs"),
    ("/console/deliveries", "Failed deliveries"),
    ("/console/inbound", "Unmatched inbound"),
    ("/console/salesforce", "Salesforce"),
    ("/console/tokens", "Tokens"),
];

/// A full console page for a signed-in operator.
pub fn page(title: &str, op: Option<&Operator>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Handoff console" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body {
                header.top {
                    a.brand href="/console" { "Handoff" }
                    @if let Some(op) = op {
                        nav {
                            @for (path, label) in NAV {
                                a href=(path) { (label) }
                            }
                        }
                        form.who method="post" action="/console/logout" {
                            span { (op.display_name) " · " (op.role.as_str()) }
                            (csrf_field(op))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    page(title, None, body)
}

/// The hidden CSRF field every console form carries.
pub fn csrf_field(op: &Operator) -> Markup {
    html! { input type="hidden" name="csrf" value=(op.csrf); }
}

/// Headers every console response carries: no script or style from anywhere else, no
/// framing, no referrer (URLs carry session ids), no caching of pages with customer data.
pub fn harden(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}
