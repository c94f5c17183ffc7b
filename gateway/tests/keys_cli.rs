//! `handoff keys generate | status | rotate` as an operator runs them, on a SQLite file:
//! the rotation procedure of docs/security.md end to end.

use std::process::Command;

use gateway::config::SecretsConfig;
use gateway::secrets::Keyring;
use gateway::store::Store;
use secrecy::{ExposeSecret, SecretString};

/// Runs `handoff` on `db_url` with `[secrets] keys` set to `keys` (or unset).
fn handoff(db_url: &str, keys: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_handoff"));
    command
        .args(args)
        .env("HANDOFF_DATABASE_URL", db_url)
        .env_remove("HANDOFF_CONFIG")
        .env_remove("HANDOFF_SECRETS__KEYS")
        .env_remove("HANDOFF_SECRETS__KEYS_FILE");
    if let Some(keys) = keys {
        command.env("HANDOFF_SECRETS__KEYS", keys);
    }
    let out = command.output().expect("handoff runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn keyring(keys: &str) -> Keyring {
    Keyring::from_config(&SecretsConfig {
        keys: Some(SecretString::from(keys.to_owned())),
        ..SecretsConfig::default()
    })
    .unwrap()
}

/// `handoff keys generate`: one entry on stdout, its id, the procedure on stderr.
fn generate(db_url: &str) -> (String, String) {
    let (ok, stdout, stderr) = handoff(db_url, None, &["keys", "generate"]);
    assert!(ok, "{stderr}");
    let entry = stdout.trim().to_owned();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let (id, _) = entry.split_once(':').expect("id:key");
    assert!(stderr.contains(&format!("New key {id}")), "{stderr}");
    assert!(
        stderr.contains("SECOND") && stderr.contains("handoff keys rotate"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&entry),
        "the key is printed once, on stdout"
    );
    (id.to_owned(), entry)
}

#[tokio::test]
async fn generate_status_rotate_on_a_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display());
    let (id1, key1) = generate(&url);
    let (id2, key2) = generate(&url);
    assert_ne!(id1, id2);

    // Nothing configured, nothing stored: status says how to get a key, and succeeds.
    let (ok, stdout, stderr) = handoff(&url, None, &["keys", "status"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("handoff keys generate"), "{stdout}");

    // 250 secrets sealed with key 1, written as the gateway writes them.
    let store = Store::open(&url).await.unwrap();
    let old = keyring(&key1);
    for i in 0..250 {
        store
            .put_secret(
                &old,
                &format!("s.{i:03}"),
                &SecretString::from(format!("value {i}")),
            )
            .await
            .unwrap();
    }

    let (ok, stdout, stderr) = handoff(&url, Some(&key1), &["keys", "status"]);
    assert!(ok, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&id1))
        .expect("key 1 listed");
    assert!(
        line.contains("active") && line.ends_with(" 250"),
        "{stdout}"
    );

    // Only key 2: the rows cannot be read, and status fails saying what to do.
    let (ok, stdout, stderr) = handoff(&url, Some(&key2), &["keys", "status"]);
    assert!(!ok, "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&id1))
        .expect("missing key listed");
    assert!(
        line.contains("MISSING") && line.ends_with(" 250"),
        "{stdout}"
    );
    assert!(
        stderr.contains("250 stored rows are sealed with keys that are not configured"),
        "{stderr}"
    );
    assert!(stderr.contains("add those keys back"), "{stderr}");

    // Step 1: key 2 second — known, not active; status points at rotate only once it is first.
    let (ok, stdout, stderr) = handoff(&url, Some(&format!("{key1}\n{key2}")), &["keys", "status"]);
    assert!(ok, "{stderr}");
    assert!(!stdout.contains("older key"), "{stdout}");
    // Step 2: key 2 first.
    let both = format!("{key2}, {key1}");
    let (ok, stdout, stderr) = handoff(&url, Some(&both), &["keys", "status"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("250 stored rows are sealed with an older key"),
        "{stdout}"
    );
    // Step 3: rotate, with progress per batch on stderr.
    let (ok, stdout, stderr) = handoff(&url, Some(&both), &["keys", "rotate"]);
    assert!(ok, "{stdout}\n{stderr}");
    for progress in [
        "re-sealed 100/250",
        "re-sealed 200/250",
        "re-sealed 250/250",
    ] {
        assert!(stderr.contains(progress), "{stderr}");
    }
    assert!(stdout.contains("Re-sealed 250 stored rows"), "{stdout}");
    assert!(
        stdout.contains(&format!("The other keys ({id1}) may now be removed")),
        "{stdout}"
    );
    // Again: nothing to do.
    let (ok, stdout, stderr) = handoff(&url, Some(&both), &["keys", "rotate"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Nothing to re-seal"), "{stdout}");

    // Step 4: key 1 dropped. Everything reads with key 2 alone.
    let (ok, stdout, stderr) = handoff(&url, Some(&key2), &["keys", "status"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("Every stored secret is sealed with the active key"),
        "{stdout}"
    );
    let new = keyring(&key2);
    for i in [0, 99, 100, 249] {
        let value = store
            .get_secret(&new, &format!("s.{i:03}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(value.expose_secret(), format!("value {i}"));
    }

    // Rotating with no key configured fails and says how to configure one.
    let (ok, _, stderr) = handoff(&url, None, &["keys", "rotate"]);
    assert!(!ok);
    assert!(stderr.contains("HANDOFF_SECRETS__KEYS"), "{stderr}");
}

#[test]
fn a_bad_key_setting_is_refused_naming_it_and_not_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("keys.db").display());
    // 26 bytes: not an AES-256 key.
    let short = "k1:c2hvcnQta2V5LW1hdGVyaWFsLW9mLTI0LWI=";
    let (ok, _, stderr) = handoff(&url, Some(short), &["keys", "status"]);
    assert!(!ok);
    assert!(stderr.contains("HANDOFF_SECRETS__KEYS"), "{stderr}");
    assert!(stderr.contains("AES-256 needs exactly 32"), "{stderr}");
    assert!(!stderr.contains("c2hvcnQta2V5"), "{stderr}");

    // The keys file: comments allowed, errors name the file.
    let file = dir.path().join("keys");
    std::fs::write(&file, format!("# old key\n{short}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(["keys", "status"])
        .env("HANDOFF_DATABASE_URL", &url)
        .env("HANDOFF_SECRETS__KEYS_FILE", &file)
        .env_remove("HANDOFF_CONFIG")
        .env_remove("HANDOFF_SECRETS__KEYS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("[secrets] keys_file ({})", file.display())),
        "{stderr}"
    );
    assert!(stderr.contains("entry 1"), "{stderr}");
}
