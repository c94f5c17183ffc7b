//! `handoff doctor`: checks a configuration against its org (or the emulator)
//! and prints a checklist, with what to do about each failure.
//!
//! Every check is independent and says one thing: passed (with what it saw),
//! failed (with the fix), a warning (works, but not as intended), or skipped
//! (not configured, so nothing to check). The exit status is non-zero when any
//! check failed. Nothing here writes to Salesforce or the database.

mod checks;
mod replies_checks;
mod salesforce_checks;

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::Config;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "ok  ",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// A stable identifier (`salesforce.token`, `case.external_id_field`, …).
    pub id: &'static str,
    pub status: Status,
    /// What was checked and what was seen (never a secret).
    pub detail: String,
    /// What to do about a failure or warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(id: &'static str, detail: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn warn(id: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn skip(id: &'static str, detail: impl Into<String>) -> Self {
        Self {
            id,
            status: Status::Skip,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// Options of `handoff doctor`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The URL Salesforce and the mail service reach this gateway at; the
    /// inbound routes are probed there. Default: `public_url` from the config.
    pub public_url: Option<String>,
}

/// Runs every check, in checklist order. `progress` is told each check's id as
/// it starts (the CLI prints it, since a check may wait on the network).
pub async fn run(config: &Config, options: &Options, progress: impl Fn(&str)) -> Vec<Check> {
    let mut out = Vec::new();
    progress("configuration");
    out.extend(checks::configuration(config));
    progress("database");
    out.push(checks::database(config).await);
    progress("salesforce");
    out.extend(salesforce_checks::run(config).await);
    progress("rep replies and email");
    out.push(replies_checks::push_auth(config));
    out.push(replies_checks::smtp(config).await);
    out.push(replies_checks::inbound_auth(config));
    progress("live messaging");
    out.push(checks::miaw(config).await);
    progress("inbound routes");
    out.extend(checks::routes(config, options).await);
    out
}

/// Whether any check failed.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// The checklist as text, one check per line, fixes indented under failures.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let _ = writeln!(
            out,
            "[{}] {:<28} {}",
            check.status.mark(),
            check.id,
            check.detail
        );
        if let Some(fix) = &check.fix {
            let _ = writeln!(out, "       {:<28} fix: {fix}", "");
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} warnings, {} skipped.",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Skip)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checklist_shows_fixes_under_failures_and_counts() {
        let checks = vec![
            Check::pass("salesforce.token", "client_credentials grant"),
            Check::fail(
                "case.from_field",
                "Case_From__c is missing",
                "deploy the kit",
            ),
            Check::skip("email.smtp", "no [channels.email.smtp]"),
        ];
        let text = render(&checks);
        assert!(text.contains("[ok  ] salesforce.token"), "{text}");
        assert!(text.contains("[FAIL] case.from_field"), "{text}");
        assert!(text.contains("fix: deploy the kit"), "{text}");
        assert!(
            text.contains("1 passed, 1 failed, 0 warnings, 1 skipped."),
            "{text}"
        );
        assert!(failed(&checks));
        assert!(!failed(&checks[..1]));
    }
}
