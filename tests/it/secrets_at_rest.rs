//! Secrets at rest (docs/security.md), on SQLite and PostgreSQL: no stored secret can be read
//! from the database in any form, and rotating keys re-seals every row under the new key.

use base64::Engine as _;
use gateway::config::SecretsConfig;
use gateway::secrets::{Keyring, SecretsError, oauth_verifier_name};
use gateway::store::{RESEAL_BATCH, SealedTable, SecretStoreError, Store};
use handoff_tests::dbdump::{database_text, find_trace, sqlite_file_text};
use handoff_tests::{Db, both_databases, fresh_database};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use secrecy::{ExposeSecret, SecretString};

/// A keyring of `(id, key byte)` entries, the first active.
fn keyring(keys: &[(&str, u8)]) -> Keyring {
    let entries: Vec<String> = keys
        .iter()
        .map(|(id, byte)| {
            format!(
                "{id}:{}",
                base64::engine::general_purpose::STANDARD.encode([*byte; 32])
            )
        })
        .collect();
    Keyring::from_config(&SecretsConfig {
        keys: Some(SecretString::from(entries.join("\n"))),
        ..SecretsConfig::default()
    })
    .expect("valid keys")
}

fn canary() -> String {
    format!("canary-{}", uuid::Uuid::new_v4().simple())
}

/// An OAuth flow in progress whose PKCE verifier is sealed, as the sign-in flow stores it.
async fn insert_oauth_flow(store: &Store, keys: &Keyring, state_hash: &str, verifier: &str) {
    let sealed = keys
        .seal(&oauth_verifier_name(state_hash), verifier.as_bytes())
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let insert = Query::insert()
        .into_table(Alias::new("oauth_flows"))
        .columns(
            [
                "state_hash",
                "purpose",
                "verifier_sealed",
                "key_id",
                "created_at",
                "expires_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            state_hash.into(),
            "connect".into(),
            sealed.sealed.into(),
            sealed.key_id.into(),
            now.into(),
            (now + 600_000).into(),
        ])
        .to_owned();
    store.connection().execute(&insert).await.unwrap();
}

/// The verifier of an OAuth flow, opened with `keys`.
async fn oauth_verifier(
    store: &Store,
    keys: &Keyring,
    state_hash: &str,
) -> Result<String, SecretsError> {
    let select = Query::select()
        .columns(["key_id", "verifier_sealed"].map(Alias::new))
        .from(Alias::new("oauth_flows"))
        .and_where(Expr::col(Alias::new("state_hash")).eq(state_hash))
        .to_owned();
    let row = store
        .connection()
        .query_one(&select)
        .await
        .unwrap()
        .unwrap();
    let key_id: String = row.try_get("", "key_id").unwrap();
    let sealed: String = row.try_get("", "verifier_sealed").unwrap();
    keys.open(&oauth_verifier_name(state_hash), &key_id, &sealed)
        .map(|b| String::from_utf8(b).unwrap())
}

both_databases!(
    no_stored_secret_can_be_read_from_the_database,
    |db: Db| async move {
        let (url, _dir) = fresh_database(db).await;
        let store = Store::open(&url).await.unwrap();
        let keys = keyring(&[("k-canary", 7)]);

        let token = canary();
        let client_secret = canary();
        let connection_user = canary();
        let replaced = canary();
        let verifier = canary();
        let long = canary().repeat(40);
        let connection = serde_json::json!({
            "instance_url": "https://acme.my.salesforce.com",
            "username": connection_user,
            "org_id": "00D000000000001AAA",
        })
        .to_string();
        let values = [
            ("salesforce.refresh_token", &replaced),
            ("salesforce.refresh_token", &token),
            ("console.salesforce.client_secret", &client_secret),
            ("salesforce.connection", &connection),
            ("test.long", &long),
        ];
        for (name, value) in values {
            store
                .put_secret(&keys, name, &SecretString::from(value.clone()))
                .await
                .unwrap();
        }
        insert_oauth_flow(&store, &keys, "ab12cd34", &verifier).await;

        // What was stored reads back (the last write of each name).
        for (name, value) in values.iter().skip(1) {
            let got = store.get_secret(&keys, name).await.unwrap().unwrap();
            assert_eq!(got.expose_secret(), value.as_str(), "{name}");
        }
        assert_eq!(
            oauth_verifier(&store, &keys, "ab12cd34").await.unwrap(),
            verifier
        );

        // Controls: a value stored in the clear, and one stored only as base64 inside a longer
        // value, are found — so a canary not found was not overlooked.
        let plain_control = canary();
        let encoded_control = canary();
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("x{encoded_control}yz"));
        for (name, value) in [
            ("control.plain", &plain_control),
            ("control.encoded", &encoded),
        ] {
            let insert = Query::insert()
                .into_table(Alias::new("secrets"))
                .columns(["name", "key_id", "sealed", "updated_at"].map(Alias::new))
                .values_panic([
                    name.into(),
                    "none".into(),
                    value.as_str().into(),
                    0i64.into(),
                ])
                .to_owned();
            store.connection().execute(&insert).await.unwrap();
        }

        let dump = database_text(store.connection()).await;
        assert!(
            dump.contains("salesforce.refresh_token"),
            "the dump reads the secrets table"
        );
        assert!(dump.contains("k-canary"), "the dump reads key ids");
        assert!(
            dump.contains("seaql_migrations"),
            "the dump reads every table"
        );
        assert!(
            find_trace(&dump, &plain_control).is_some(),
            "control in the clear"
        );
        assert!(
            find_trace(&dump, &encoded_control).is_some(),
            "control in base64"
        );

        let mut views = vec![("SQL dump", dump)];
        if db == Db::Sqlite {
            // The files on disk too (database, WAL), free pages included.
            store
                .connection()
                .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
                .await
                .unwrap();
            let files = sqlite_file_text(&url);
            assert!(
                find_trace(&files, &plain_control).is_some(),
                "control in the files"
            );
            views.push(("SQLite files", files));
        }
        for (view, text) in &views {
            for secret in [
                &token,
                &replaced,
                &client_secret,
                &connection_user,
                &verifier,
                &long,
            ] {
                assert_eq!(
                    find_trace(text, secret),
                    None,
                    "a stored secret is readable in the {view}"
                );
            }
        }
    }
);

both_databases!(
    rotation_re_seals_every_row_under_the_new_key,
    |db: Db| async move {
        let (url, _dir) = fresh_database(db).await;
        let store = Store::open(&url).await.unwrap();
        let k1 = keyring(&[("k1", 1)]);
        // More rows than one batch, so the re-seal pages.
        let rows = (RESEAL_BATCH as usize) * 2 + 30;
        let mut values = Vec::new();
        for i in 0..rows {
            let name = format!("rotation.{i:04}");
            let value = format!("value-{i}-{}", canary());
            store
                .put_secret(&k1, &name, &SecretString::from(value.clone()))
                .await
                .unwrap();
            values.push((name, value));
        }
        insert_oauth_flow(&store, &k1, "f00d", "the-verifier-0123456789").await;
        // A row sealed with a key nobody has any more.
        store
            .put_secret(
                &keyring(&[("k0", 9)]),
                "orphan",
                &SecretString::from("lost".to_owned()),
            )
            .await
            .unwrap();
        let counts = store.secret_key_counts().await.unwrap();
        assert_eq!(counts.get("k1"), Some(&(rows as u64 + 1)));
        assert_eq!(counts.get("k0"), Some(&1));

        // Step 1 of the procedure, [k1, k2]: nothing to do under k1 except the orphan.
        // Steps 2–3: k2 first, then rotate.
        let both = keyring(&[("k2", 2), ("k1", 1)]);
        let mut seen = Vec::new();
        let report = store
            .reseal_secrets(&both, RESEAL_BATCH, |r| seen.push((r.done(), r.total)))
            .await
            .unwrap();
        let total = rows as u64 + 2;
        assert_eq!(report.total, total);
        assert_eq!(report.resealed, total - 1);
        assert_eq!((report.changed_meanwhile, report.failed), (0, 1));
        assert_eq!(report.failures.len(), 1);
        let failure = &report.failures[0];
        assert_eq!(
            (failure.table, failure.row.as_str(), failure.key_id.as_str()),
            (SealedTable::Secrets, "orphan", "k0")
        );
        assert!(
            failure.error.contains("add the key that sealed it back"),
            "{}",
            failure.error
        );
        assert!(!failure.error.contains("lost"));
        assert!(seen.len() >= 4, "progress after each batch: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
        assert_eq!(seen.last(), Some(&(total, total)));

        // Step 4: k2 alone opens everything.
        let k2 = keyring(&[("k2", 2)]);
        for (name, value) in &values {
            let got = store.get_secret(&k2, name).await.unwrap().unwrap();
            assert_eq!(got.expose_secret(), value.as_str());
        }
        assert_eq!(
            oauth_verifier(&store, &k2, "f00d").await.unwrap(),
            "the-verifier-0123456789"
        );
        // And k1 alone no longer opens anything (not even a stale row).
        match store.get_secret(&k1, &values[0].0).await {
            Err(SecretStoreError::Secrets(SecretsError::UnknownKey { key_id, .. })) => {
                assert_eq!(key_id, "k2")
            }
            other => panic!(
                "k1 alone opened a re-sealed row: {:?}",
                other.map(|o| o.is_some())
            ),
        }
        // The orphan says what to do; once deleted, only k2 remains.
        let err = store
            .get_secret(&k2, "orphan")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("re-enter the credentials in the console"),
            "{err}"
        );
        assert!(store.delete_secret("orphan").await.unwrap());
        assert!(!store.delete_secret("orphan").await.unwrap());
        assert_eq!(
            store
                .secret_key_counts()
                .await
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [("k2".to_owned(), rows as u64 + 1)]
        );

        // Idempotent: a second run finds nothing to do.
        let again = store
            .reseal_secrets(&k2, RESEAL_BATCH, |_| {})
            .await
            .unwrap();
        assert_eq!((again.total, again.resealed, again.failed), (0, 0, 0));
    }
);

/// The sandbox seals with a random key of its own; a real gateway takes its keys from
/// `[secrets]`, refuses a bad one naming the setting, and without any starts but stores nothing.
#[tokio::test]
async fn the_gateway_builds_its_keyring_from_secrets() {
    use gateway::Application;
    use tokio::net::TcpListener;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sandbox = Application::build_sandbox(gateway::Config::defaults(), listener, true)
        .await
        .unwrap();
    let state = sandbox.state();
    assert!(
        state
            .keys
            .active_key_id()
            .is_some_and(|id| id.starts_with("ephemeral-"))
    );
    let value = SecretString::from(canary());
    state
        .store
        .put_secret(&state.keys, "salesforce.refresh_token", &value)
        .await
        .unwrap();
    let got = state
        .store
        .get_secret(&state.keys, "salesforce.refresh_token")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.expose_secret(), value.expose_secret());

    let emulator = handoff_tests::spawn_emulator().await;
    let (url, _dir) = fresh_database(Db::Sqlite).await;
    let mut config = handoff_tests::test_config(&url, &emulator);
    config.secrets.ephemeral_fallback = false;
    config.secrets.keys = Some(SecretString::from("k1:c2hvcnQ=".to_owned()));
    let refused = Application::build(
        config.clone(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .err()
    .expect("a bad key is refused")
    .to_string();
    assert!(refused.contains("HANDOFF_SECRETS__KEYS"), "{refused}");
    assert!(refused.contains("AES-256 needs exactly 32"), "{refused}");

    config.secrets.keys = None;
    let app = Application::build(config, TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .expect("starts without keys");
    let state = app.state();
    assert!(state.keys.is_empty());
    let err = state
        .store
        .put_secret(&state.keys, "salesforce.refresh_token", &value)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("handoff keys generate"), "{err}");
}
