//! The API fuzzed from its own description: `handoff serve --sandbox` on a free loopback port,
//! and schemathesis (`st`, pip `schemathesis`) generating requests from `/v1/openapi.json`,
//! checking that no answer is a 5xx and every answer has a documented status, a documented
//! content type and a body that matches its schema.
//!
//! The fuzzer authenticates with the sandbox's admin token (`GET /v1/sandbox`), which it
//! must not revoke: the main run excludes `POST /v1/tokens/{id}/revoke`, and a second run
//! fuzzes it (with `GET /v1/sessions/{id}/stream`, whose answer to an existing session is an
//! endless event stream) without the stateful phase, the one phase that feeds ids read from
//! answers (the token's own, from `GET /v1/tokens`) into later requests; its generated ids
//! name no token.
//!
//! Without `st` the test says so and passes, unless `HANDOFF_REQUIRE_SCHEMATHESIS=1` (CI).
//! `HANDOFF_FUZZ_EXAMPLES` sets the examples per operation (default 40).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
const REVOKE: &str = "/v1/tokens/{id}/revoke";
const STREAM: &str = "/v1/sessions/{id}/stream";

/// Kills the gateway when the test ends, panics included.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn schemathesis() -> Option<String> {
    match Command::new("st").arg("--version").output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let Some(version) = schemathesis() else {
        let why = "schemathesis (`st`) is not installed: `pip install schemathesis==4.32.5`";
        assert!(
            std::env::var("HANDOFF_REQUIRE_SCHEMATHESIS").as_deref() != Ok("1"),
            "{why}, and HANDOFF_REQUIRE_SCHEMATHESIS=1"
        );
        eprintln!("skipped: {why}");
        return;
    };
    eprintln!("fuzzing with {}", version.trim());

    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = common::handoff_command(&[])
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("handoff serve --sandbox starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let serving = Serving(child);
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read stdout");
    let base = first
        .trim()
        .rsplit_once("listening on ")
        .map(|(_, url)| url.to_string())
        .unwrap_or_else(|| panic!("the sandbox did not print its address: {first:?}"));
    // Keep reading stdout so the gateway never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));

    let info: serde_json::Value = reqwest::get(format!("{base}/v1/sandbox"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = info["api_token"].as_str().expect("api_token").to_string();
    let examples = std::env::var("HANDOFF_FUZZ_EXAMPLES").unwrap_or_else(|_| "40".into());
    let schema = format!("{base}/v1/openapi.json");
    let auth = format!("Authorization: Bearer {token}");

    let started = Instant::now();
    let everything_else = st(
        dir.path(),
        &[
            &schema,
            "--exclude-path",
            REVOKE,
            "--exclude-path",
            STREAM,
            "--max-examples",
            &examples,
        ],
        &auth,
    );
    let without_stateful = st(
        dir.path(),
        &[
            &schema,
            "--include-path",
            REVOKE,
            "--include-path",
            STREAM,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            &examples,
        ],
        &auth,
    );
    eprintln!("schemathesis ran for {:.0?}", started.elapsed());

    // The token survived: nothing revoked it.
    let still = reqwest::Client::new()
        .get(format!("{base}/v1/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status();
    drop(serving);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    for (name, (ok, output)) in [
        ("all but revoke and stream", everything_else),
        ("revoke and stream", without_stateful),
    ] {
        assert!(
            ok,
            "schemathesis ({name}) found failures:\n{output}\n--- gateway log (tail)\n{}",
            tail(&log, 60)
        );
    }
    assert_eq!(still, 200, "the fuzzer's token was revoked");
}

/// One `st run`; `(passed, its output)`.
fn st(dir: &std::path::Path, args: &[&str], auth: &str) -> (bool, String) {
    let out = Command::new("st")
        .current_dir(dir)
        .arg("run")
        .args(args)
        .args([
            "--checks",
            CHECKS,
            "--header",
            auth,
            // One worker: with two, hypothesis (on CPython 3.11) crashed describing a
            // strategy ("AST constructor recursion depth mismatch" from concurrent
            // `ast.parse`), a runtime error of the tool, not a finding.
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--no-color",
        ])
        // No network beyond the gateway: no telemetry, no update checks.
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("st runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
