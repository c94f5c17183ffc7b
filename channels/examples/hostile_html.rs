//! One-off measurement: CPU time to normalize hostile HTML email bodies (issue 6, defect 2).
//!
//! `cargo run -p channels --example hostile_html [KIB]` (default 188 KiB per body). Prints the
//! body size and the time to turn each hostile body into a conversation.

use std::time::Instant;

use channels::{EmailChannel, EscalationInput};

fn raw_email(html: &str) -> String {
    format!(
        "From: Ann <ann@example.com>\r\nSubject: help\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n{html}<p>my card was declined</p>\r\n"
    )
}

fn repeat_to(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes / unit.len())
}

fn main() {
    let kib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(188);
    let bytes = kib * 1024;
    let cases = [
        ("unclosed <head>", repeat_to("<head>", bytes)),
        (
            "unclosed <head> then <body>",
            repeat_to("<head>", bytes) + "<body>",
        ),
        ("bare ampersands", repeat_to("&", bytes)),
        ("unclosed <blockquote>", repeat_to("<blockquote>", bytes)),
        ("unclosed <script>", repeat_to("<script>", bytes)),
        ("unterminated tags", repeat_to("<a ", bytes)),
    ];
    for (name, html) in cases {
        let input = EscalationInput {
            subject: None,
            customer: Default::default(),
            language: "en".into(),
            transcript: None,
            raw_email: Some(vec![raw_email(&html)]),
            ..EscalationInput::default()
        };
        let start = Instant::now();
        let outcome = EmailChannel::new().normalize_at(input, chrono::Utc::now());
        let elapsed = start.elapsed();
        println!(
            "{name:32} {:>7} bytes  {:>10.3} ms  ({})",
            html.len(),
            elapsed.as_secs_f64() * 1000.0,
            if outcome.is_ok() { "ok" } else { "refused" }
        );
    }
}
