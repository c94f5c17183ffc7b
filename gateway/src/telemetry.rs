//! Structured logs with `tracing`. Never log message bodies, emails, phone
//! numbers, tokens or secrets: log ids and counts. Request spans name the
//! route template, never the URI (see `http::request_span`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing. `RUST_LOG`
/// overrides the default filter; `HANDOFF_LOG_FORMAT=json` switches to JSON lines.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("HANDOFF_LOG_FORMAT").is_ok_and(|v| v == "json");
    // Colour only on a terminal: escape codes in a log file split the words
    // people (and tests) search for.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
