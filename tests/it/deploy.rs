//! The container image, read as Docker would build it. There is no Docker engine on the
//! machines that run this suite, so these tests check the runtime stage's instructions.

use std::path::Path;

/// The instructions of the Dockerfile's last stage, continuation lines joined.
fn runtime_stage() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/Dockerfile");
    let text = std::fs::read_to_string(path).expect("deploy/Dockerfile");
    let joined = text.replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (op, rest) = line.split_once(char::is_whitespace)?;
            Some((op.to_ascii_uppercase(), rest.trim().to_owned()))
        })
        .collect();
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .expect("a FROM");
    instructions[last_from..].to_vec()
}

fn last(stage: &[(String, String)], op: &str) -> Option<String> {
    stage
        .iter()
        .rev()
        .find(|(o, _)| o == op)
        .map(|(_, v)| v.clone())
}

// Defect 14. The runtime image had no writable working directory, so `handoff serve` could
// not create its default SQLite file (`handoff.db` in the working directory). The runtime stage
// must set a WORKDIR, keep it in a VOLUME, create it owned by the user the image runs as, and
// run as that (non-root) user.
#[test]
fn the_runtime_image_has_a_writable_working_directory_in_a_volume() {
    let stage = runtime_stage();
    let workdir = last(&stage, "WORKDIR").expect("the runtime stage sets WORKDIR");
    let volume = last(&stage, "VOLUME").expect("the runtime stage declares a VOLUME");
    assert!(
        volume.contains(&format!("\"{workdir}\""))
            || volume.split_whitespace().any(|v| v == workdir),
        "VOLUME {volume} keeps WORKDIR {workdir}"
    );
    let user = last(&stage, "USER").expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap_or_default().to_owned();
    assert!(
        !uid.is_empty() && uid != "0" && uid != "root",
        "runs as a non-root user, got {user}"
    );
    let runs: Vec<&String> = stage
        .iter()
        .filter(|(op, _)| op == "RUN")
        .map(|(_, v)| v)
        .collect();
    assert!(
        runs.iter()
            .any(|r| r.contains("mkdir") && r.contains(&workdir)),
        "the working directory is created: {runs:?}"
    );
    assert!(
        runs.iter()
            .any(|r| r.contains("chown") && r.contains(&uid) && r.contains(&workdir)),
        "the working directory belongs to uid {uid}: {runs:?}"
    );
}

// Defect 9, container side: the image must not start the sandbox (which hands out an admin
// token) on every interface by default.
#[test]
fn the_image_does_not_run_the_sandbox_by_default() {
    let stage = runtime_stage();
    let cmd = last(&stage, "CMD").unwrap_or_default();
    let entrypoint = last(&stage, "ENTRYPOINT").unwrap_or_default();
    assert!(
        !cmd.contains("--sandbox") && !entrypoint.contains("--sandbox"),
        "CMD {cmd} / ENTRYPOINT {entrypoint}"
    );
}

// The example configuration users copy must load as it stands (every key known, every value
// valid), so its comments and the settings they describe cannot drift apart unnoticed.
#[test]
fn the_example_configuration_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/handoff.example.toml");
    let config = gateway::config::Config::load(Some(&path)).expect("the example loads");
    assert!(config.channels.contains_key("chat"));
    assert!(matches!(
        config.channels.get("sms"),
        Some(channels::ChannelConfig::Sms(sms)) if !sms.enabled
    ));
    assert!(matches!(
        config.channels.get("email"),
        Some(channels::ChannelConfig::Email(email)) if email.smtp.is_some()
    ));
}
