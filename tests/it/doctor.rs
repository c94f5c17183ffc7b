//! `handoff doctor` against the emulator: a good configuration passes; a
//! deliberately broken one names each problem with its fix.

use gateway::doctor::{self, Check, Options, Status};
use handoff_tests::{Db, fresh_database, live_settings, spawn_emulator, test_config};

fn by_id<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}: {checks:#?}"))
}

#[tokio::test]
async fn a_good_configuration_passes_against_the_emulator() {
    let emulator = spawn_emulator().await;
    let (url, _dir) = fresh_database(Db::Sqlite).await;
    let mut config = test_config(&url, &emulator);
    live_settings(&emulator)(&mut config);
    // The schema is applied as `handoff serve` would.
    gateway::store::Store::open(&url)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let checks = doctor::run(&config, &Options::default(), |_| {}).await;
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
        "miaw.deployment",
    ] {
        assert_eq!(by_id(&checks, id).status, Status::Pass, "{id}\n{text}");
    }
    assert!(
        by_id(&checks, "salesforce.token")
            .detail
            .contains("client_credentials grant"),
        "{text}"
    );
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
}
