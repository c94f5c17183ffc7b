//! `handoff doctor` against the emulator: a good configuration passes; a
//! deliberately broken one names each problem with its fix.

use gateway::doctor::{self, Check, Options, Status};
use handoff_tests::smtp::{SmtpSink, email_channel_config, free_port};
use handoff_tests::{Db, fresh_database, live_settings, spawn_emulator, test_config};
use tokio::net::TcpListener;

/// The email channel on `port`, with inbound mail signed by a secret.
fn email_with_inbound(port: u16) -> channels::ChannelConfig {
    let mut email = email_channel_config(port);
    if let channels::ChannelConfig::Email(config) = &mut email {
        config.inbound.hmac_secret = Some("inbound-secret-0123456789abcdef0123".into());
    }
    email
}

fn by_id<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {checks:#?}"))
}

#[tokio::test]
async fn a_good_configuration_passes_against_the_emulator() {
    let Some(sink) = SmtpSink::start().await else {
        return;
    };
    let emulator = spawn_emulator().await;
    let (url, _dir) = fresh_database(Db::Sqlite).await;
    let mut config = test_config(&url, &emulator);
    live_settings(&emulator)(&mut config);
    config
        .channels
        .insert("email".into(), email_with_inbound(sink.port()));
    config.case_replies.webhook_secret = Some("case-webhook-secret-0123456789abcdef".into());
    config.case_replies.poll = true;
    // The gateway runs, so its inbound routes can be probed at its URL.
    let app = gateway::Application::build(
        config.clone(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap()
    .spawn()
    .unwrap();
    let options = Options {
        public_url: Some(app.url()),
    };
    let checks = doctor::run(&config, &options, |_| {}).await;
    let text = doctor::render(&checks);
    assert!(!doctor::failed(&checks), "{text}");
    for id in [
        "salesforce.credentials",
        "salesforce.login_url",
        "database",
        "salesforce.token",
        "case.from_field",
        "case.external_id_field",
        "case.mappings",
        "case.comments",
        "case_replies.poll_query",
        "case_replies.push_auth",
        "email.smtp",
        "email.inbound_auth",
        "miaw.deployment",
        "route.salesforce_events",
        "route.email_inbound",
    ] {
        assert_eq!(by_id(&checks, id).status, Status::Pass, "{id}\n{text}");
    }
    assert!(
        by_id(&checks, "salesforce.token")
            .detail
            .contains("client_credentials grant"),
        "{text}"
    );
    assert!(
        by_id(&checks, "case_replies.poll_query")
            .detail
            .contains("8640 API calls a day"),
        "one page every 10 s: {text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_broken_configuration_names_each_problem() {
    let emulator = spawn_emulator().await;
    let (url, _dir) = fresh_database(Db::Sqlite).await;
    let mut config = test_config(&url, &emulator);
    live_settings(&emulator)(&mut config);
    config.miaw.deployment = "No_Such_Deployment".into();
    config.case.external_id_field = "Missing_Session__c".into();
    config.case.from_value = "x".repeat(300);
    // A relay nobody listens on; a push route nobody can authenticate to; inbound
    // mail without credentials.
    config
        .channels
        .insert("email".into(), email_channel_config(free_port()));
    config.case_replies.webhook_secret = None;
    config
        .case
        .attribute_fields
        .insert("plan".into(), "No_Plan__c".into());
    let checks = doctor::run(&config, &Options::default(), |_| {}).await;
    let text = doctor::render(&checks);
    assert!(doctor::failed(&checks));
    for id in [
        "case.external_id_field",
        "case.from_field",
        "case.mappings",
        "miaw.deployment",
        "email.smtp",
        "case_replies.push_auth",
    ] {
        let check = by_id(&checks, id);
        let expected = if id == "database" {
            Status::Warn
        } else {
            Status::Fail
        };
        assert_eq!(check.status, expected, "{id}\n{text}");
        assert!(check.fix.is_some(), "{id} says what to do\n{text}");
    }
    assert!(
        by_id(&checks, "case.mappings")
            .detail
            .contains("No_Plan__c"),
        "{text}"
    );
    assert!(text.contains("Missing_Session__c"), "{text}");

    // Credentials pasted with a trailing newline, a login URL without https://.
    let mut config = test_config(&url, &emulator);
    let app = emulator.config().connected_apps[0].clone();
    config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
        client_id: format!("{}\n", app.client_id),
        client_secret: app.client_secret.into(),
    });
    let checks = doctor::run(&config, &Options::default(), |_| {}).await;
    let text = doctor::render(&checks);
    let pasted = by_id(&checks, "salesforce.credentials");
    assert_eq!(pasted.status, Status::Fail, "{text}");
    assert!(pasted.detail.contains("client_id"), "{text}");
    assert!(
        !text.contains(&app.client_id),
        "never prints the credentials\n{text}"
    );
    let token = by_id(&checks, "salesforce.token");
    assert_eq!(token.status, Status::Fail, "{text}");
    assert!(
        token.fix.as_deref().unwrap().contains("2–10 minutes"),
        "{text}"
    );

    config.salesforce.login_url = emulator.url().replace("http://", "");
    let checks = doctor::run(&config, &Options::default(), |_| {}).await;
    assert_eq!(by_id(&checks, "salesforce.login_url").status, Status::Fail);

    // A truncated identity key (the documented "incomplete PEM").
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        key.path(),
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
    )
    .unwrap();
    let mut config = test_config(&url, &emulator);
    live_settings(&emulator)(&mut config);
    config.miaw.identity = Some(gateway::live::config::IdentityConfig {
        private_key_file: key.path().to_path_buf(),
        kid: "k1".into(),
        issuer: "https://acme.example".into(),
        audience: "https://acme.my.salesforce.com".into(),
        ttl_secs: 300,
    });
    let checks = doctor::run(&config, &Options::default(), |_| {}).await;
    let text = doctor::render(&checks);
    let miaw = by_id(&checks, "miaw.deployment");
    assert_eq!(miaw.status, Status::Fail, "{text}");
    assert!(miaw.detail.contains("miaw.identity"), "{text}");

    // The poll query names a field the org does not have; the public URL serves nothing.
    let mut config = test_config(&url, &emulator);
    config.case.from_field = "No_Such_Field__c".into();
    let options = Options {
        public_url: Some(format!("http://127.0.0.1:{}", free_port())),
    };
    let checks = doctor::run(&config, &options, |_| {}).await;
    let text = doctor::render(&checks);
    assert_eq!(
        by_id(&checks, "case_replies.poll_query").status,
        Status::Fail,
        "{text}"
    );
    assert_eq!(
        by_id(&checks, "route.email_inbound").status,
        Status::Fail,
        "{text}"
    );
}
