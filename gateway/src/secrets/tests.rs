use std::io::Write as _;

use base64::Engine as _;
use secrecy::SecretString;

use super::*;
use crate::config::SecretsConfig;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn entry(id: &str, byte: u8) -> String {
    format!("{id}:{}", B64.encode([byte; 32]))
}

fn keyring(keys: &str) -> Keyring {
    Keyring::from_config(&config(keys)).expect("valid keys")
}

fn config(keys: &str) -> SecretsConfig {
    SecretsConfig {
        keys: Some(SecretString::from(keys.to_owned())),
        ..SecretsConfig::default()
    }
}

fn config_error(keys: &str) -> String {
    match Keyring::from_config(&config(keys)) {
        Ok(ring) => panic!("accepted {keys:?} as {ring:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn seal_then_open_round_trips_and_each_seal_is_fresh() {
    let ring = keyring(&entry("k1", 1));
    let a = ring
        .seal("salesforce.refresh_token", b"5Aep861-secret")
        .unwrap();
    let b = ring
        .seal("salesforce.refresh_token", b"5Aep861-secret")
        .unwrap();
    assert_eq!(a.key_id, "k1");
    assert_ne!(a.sealed, b.sealed, "a random nonce per seal");
    assert!(!a.sealed.contains("5Aep861"));
    for sealed in [&a, &b] {
        let opened = ring
            .open("salesforce.refresh_token", &sealed.key_id, &sealed.sealed)
            .unwrap();
        assert_eq!(opened, b"5Aep861-secret");
    }
    // The empty secret and the largest one also round-trip; one byte more is refused.
    let empty = ring.seal("n", b"").unwrap();
    assert_eq!(ring.open("n", "k1", &empty.sealed).unwrap(), b"");
    let big = vec![7u8; MAX_SECRET_BYTES];
    let sealed = ring.seal("n", &big).unwrap();
    assert_eq!(ring.open("n", "k1", &sealed.sealed).unwrap(), big);
    let too_big = ring.seal("n", &[0u8; MAX_SECRET_BYTES + 1]).unwrap_err();
    assert!(
        matches!(too_big, SecretsError::TooLarge { .. }),
        "{too_big}"
    );
}

#[test]
fn a_tampered_byte_does_not_open() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring
        .seal("console.salesforce.client_secret", b"abc")
        .unwrap();
    let bytes = B64.decode(&sealed.sealed).unwrap();
    for at in [0, NONCE_LEN, bytes.len() - 1] {
        let mut tampered = bytes.clone();
        tampered[at] ^= 0x01;
        let err = ring
            .open(
                "console.salesforce.client_secret",
                "k1",
                &B64.encode(&tampered),
            )
            .unwrap_err();
        assert!(matches!(err, SecretsError::Undecryptable { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("re-enter the credentials in the console"),
            "{message}"
        );
        assert!(message.contains("[secrets]"), "{message}");
    }
    // Truncated, not base64, absurdly long: the same answer, no panic.
    for junk in ["", "AAAA", "not base64!", &"A".repeat(MAX_SEALED_CHARS + 4)] {
        let err = ring
            .open("console.salesforce.client_secret", "k1", junk)
            .unwrap_err();
        assert!(matches!(err, SecretsError::Undecryptable { .. }), "{err}");
    }
}

#[test]
fn a_row_under_another_name_does_not_open() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring.seal("salesforce.refresh_token", b"token").unwrap();
    let err = ring
        .open("console.salesforce.client_secret", "k1", &sealed.sealed)
        .unwrap_err();
    assert!(matches!(err, SecretsError::Undecryptable { .. }), "{err}");
}

#[test]
fn an_unknown_or_wrong_key_is_an_error_that_says_what_to_do() {
    let ring = keyring(&entry("k1", 1));
    let sealed = ring
        .seal("salesforce.refresh_token", b"the-token-value")
        .unwrap();

    let other = keyring(&entry("k2", 2));
    let err = other
        .open("salesforce.refresh_token", "k1", &sealed.sealed)
        .unwrap_err();
    assert!(matches!(err, SecretsError::UnknownKey { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("\"k1\""), "{message}");
    assert!(
        message.contains("add the key that sealed it back"),
        "{message}"
    );
    assert!(!message.contains("the-token-value"));

    // The same id naming another key: the tag does not check out.
    let impostor = keyring(&entry("k1", 9));
    let err = impostor
        .open("salesforce.refresh_token", "k1", &sealed.sealed)
        .unwrap_err();
    assert!(matches!(err, SecretsError::Undecryptable { .. }), "{err}");

    // No key at all: both directions say how to configure one.
    let none = Keyring::from_config(&SecretsConfig::default()).unwrap();
    assert!(none.is_empty());
    assert_eq!(none.active_key_id(), None);
    for err in [
        none.seal("n", b"x").unwrap_err(),
        none.open("n", "k1", &sealed.sealed).unwrap_err(),
    ] {
        assert!(matches!(err, SecretsError::NoKey), "{err}");
        let message = err.to_string();
        assert!(message.contains("HANDOFF_SECRETS__KEYS"), "{message}");
        assert!(message.contains("handoff keys generate"), "{message}");
    }
}

#[test]
fn the_first_key_is_active_and_older_keys_still_open() {
    let old = keyring(&entry("k1", 1));
    let sealed = old.seal("n", b"v").unwrap();
    let both = keyring(&format!("{}, {}", entry("k2", 2), entry("k1", 1)));
    assert_eq!(both.active_key_id(), Some("k2"));
    assert_eq!(both.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);
    assert_eq!(both.open("n", "k1", &sealed.sealed).unwrap(), b"v");
    assert_eq!(both.seal("n", b"v").unwrap().key_id, "k2");
    assert!(both.has_key("k1") && !both.has_key("K1"));
}

#[test]
fn entries_are_separated_by_commas_spaces_or_newlines() {
    let ring = keyring(&format!(
        " {}\n{},{}\t{} ,",
        entry("a.b_c-1", 1),
        entry("B", 2),
        entry("c", 3),
        entry(&"z".repeat(64), 4)
    ));
    assert_eq!(ring.key_ids().count(), 4);
    assert_eq!(ring.active_key_id(), Some("a.b_c-1"));
    // Blank means no key, not an error.
    assert!(keyring("  \n").is_empty());
}

#[test]
fn bad_entries_are_refused_naming_the_setting_and_never_the_key() {
    let good = entry("k1", 1);
    let cases = [
        // No id.
        (B64.encode([1u8; 32]), "is not `id:base64-key`"),
        // Bad base64.
        ("k1:@@@@".to_owned(), "not standard base64"),
        // Wrong lengths.
        (format!("k1:{}", B64.encode([1u8; 16])), "is 16 bytes"),
        (format!("k1:{}", B64.encode([1u8; 33])), "is 33 bytes"),
        // Bad ids.
        (format!(":{}", B64.encode([1u8; 32])), "key id must be"),
        (format!("k/1:{}", B64.encode([1u8; 32])), "key id must be"),
        (format!("kö:{}", B64.encode([1u8; 32])), "key id must be"),
        (
            format!("{}:{}", "k".repeat(65), B64.encode([1u8; 32])),
            "key id must be",
        ),
        // Duplicates, also ignoring ASCII case.
        (format!("{good},{good}"), "configured twice"),
        (
            format!("{good} {}", entry("K1", 2)),
            "differ only in letter case",
        ),
    ];
    for (keys, expected) in cases {
        let message = config_error(&keys);
        assert!(message.contains(expected), "{keys:?}: {message}");
        assert!(message.contains("HANDOFF_SECRETS__KEYS"), "{message}");
        assert!(!message.contains(&B64.encode([1u8; 32])), "{message}");
        assert!(!message.contains(&B64.encode([1u8; 16])), "{message}");
    }
    let too_many: Vec<String> = (0..=MAX_KEYS).map(|i| entry(&format!("k{i}"), 1)).collect();
    assert!(config_error(&too_many.join(",")).contains("more than"));
}

#[test]
fn keys_file_entries_follow_keys_and_take_comments() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "# rotated in on 2026-12-01\n{}  # the old one\n\n",
        entry("k1", 1)
    )
    .unwrap();
    let cfg = SecretsConfig {
        keys: Some(SecretString::from(entry("k2", 2))),
        keys_file: Some(file.path().to_owned()),
        ..SecretsConfig::default()
    };
    let ring = Keyring::from_config(&cfg).unwrap();
    assert_eq!(ring.key_ids().collect::<Vec<_>>(), ["k2", "k1"]);

    // A duplicate across the two settings, a file without entries, a missing file.
    let dup = SecretsConfig {
        keys: Some(SecretString::from(entry("K1", 3))),
        ..cfg.clone()
    };
    let message = Keyring::from_config(&dup).unwrap_err().to_string();
    assert!(message.contains("keys_file"), "{message}");
    assert!(message.contains("differ only in letter case"), "{message}");

    let mut empty = tempfile::NamedTempFile::new().unwrap();
    writeln!(empty, "# nothing yet").unwrap();
    let message = Keyring::from_config(&SecretsConfig {
        keys_file: Some(empty.path().to_owned()),
        ..SecretsConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(message.contains("holds no key entries"), "{message}");

    let message = Keyring::from_config(&SecretsConfig {
        keys_file: Some("/nonexistent/handoff-keys".into()),
        ..SecretsConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(
        message.contains("[secrets] keys_file (/nonexistent/handoff-keys)"),
        "{message}"
    );
}

#[test]
fn debug_never_shows_key_material() {
    let ring = keyring(&entry("k1", 0xAB));
    let shown = format!("{ring:?}");
    assert!(shown.contains("k1"), "{shown}");
    assert!(!shown.contains(&B64.encode([0xABu8; 32])), "{shown}");
    assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    assert!(!shown.contains("171, 171"), "{shown}");
}

#[test]
fn generated_entries_parse_and_are_distinct() {
    let a = generate_entry();
    let b = generate_entry();
    assert_ne!(a.id, b.id);
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    assert!(a.id.starts_with(&format!("k{today}-")), "{}", a.id);
    assert_eq!(a.id.len(), "k20261201-abc123".len());
    let ring = keyring(&format!(
        "{}\n{}",
        a.entry.expose_secret(),
        b.entry.expose_secret()
    ));
    assert_eq!(ring.active_key_id(), Some(a.id.as_str()));
    let sealed = ring.seal("n", b"v").unwrap();
    assert_eq!(ring.open("n", &a.id, &sealed.sealed).unwrap(), b"v");
    // Ephemeral keyrings are valid and independent.
    let e1 = Keyring::ephemeral();
    let e2 = Keyring::ephemeral();
    assert!(valid_key_id(e1.active_key_id().unwrap()));
    let sealed = e1.seal("n", b"v").unwrap();
    assert!(e2.open("n", &sealed.key_id, &sealed.sealed).is_err());
    assert!(
        Keyring::from_config(&SecretsConfig {
            ephemeral_fallback: true,
            ..SecretsConfig::default()
        })
        .unwrap()
        .active_key_id()
        .is_some_and(|id| id.starts_with("ephemeral-"))
    );
}
