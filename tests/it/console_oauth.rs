//! "Sign in with Salesforce" and "Connect Salesforce" through the emulator's login page,
//! driven over HTTP like a browser: the console's redirect, the login form, the code
//! redirect back to the console's callback.

use std::time::Duration;

use gateway::Application;
use gateway::demo::Driver;
use handoff_tests::dbdump;
use handoff_tests::ops_console::{ConsoleClient, Page, add_console_user, hidden_value};
use handoff_tests::{Db, TestApp, both_databases, spawn_app_with};
use secrecy::ExposeSecret;
use sf_emulator::config::{
    CONSOLE_ADMIN_PASSWORD, CONSOLE_ADMIN_PERMISSION_SET, CONSOLE_ADMIN_USERNAME,
    CONSOLE_OPERATOR_PASSWORD, CONSOLE_OPERATOR_PERMISSION_SET, CONSOLE_OPERATOR_USERNAME,
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET,
};
use tokio::net::TcpListener;

use crate::support::{escalation, unique};

const WAIT: Duration = Duration::from_secs(30);

/// A gateway whose console signs in the emulator's users: both console permission sets are
/// allowed (`allowed_sets`), the admin one makes admins; the callback is registered.
async fn app_with(db: Db, allowed_sets: &[&str], app_in_config: bool) -> TestApp {
    let allowed: Vec<String> = allowed_sets.iter().map(|s| (*s).to_owned()).collect();
    let entry = gateway::secrets::generate_entry().entry;
    let app = spawn_app_with(db, move |config| {
        // A fixed key, so a second gateway on this database opens what the first sealed.
        config.secrets.keys = Some(entry);
        let sf = &mut config.console.salesforce;
        if app_in_config {
            sf.client_id = Some(DEFAULT_CLIENT_ID.into());
            sf.client_secret = Some(DEFAULT_CLIENT_SECRET.into());
        }
        sf.allowed_permission_sets = allowed;
        sf.admin_permission_sets = vec![CONSOLE_ADMIN_PERMISSION_SET.into()];
    })
    .await;
    app.emulator
        .add_callback_url(DEFAULT_CLIENT_ID, &app.url("/console/oauth/callback"))
        .unwrap();
    app
}

fn both_sets() -> [&'static str; 2] {
    [
        CONSOLE_ADMIN_PERMISSION_SET,
        CONSOLE_OPERATOR_PERMISSION_SET,
    ]
}

/// Follows a console redirect to the emulator's login page, submits it as a person would,
/// and returns the emulator's redirect back to the console's callback (not yet followed).
async fn log_in_at_salesforce(to_authorize: &Page, username: &str, password: &str) -> String {
    assert_eq!(to_authorize.status, 303, "{}", to_authorize.body);
    let authorize = to_authorize.location().expect("authorize URL").to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"username\"") && html.contains("id=\"Login\""));
    let mut form: Vec<(String, String)> = [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "scope",
        "code_challenge",
        "code_challenge_method",
    ]
    .into_iter()
    .filter_map(|name| hidden_value(&html, name).map(|v| (name.to_owned(), v)))
    .collect();
    form.push(("username".into(), username.into()));
    form.push(("pw".into(), password.into()));
    let action = authorize.split('?').next().unwrap();
    let answer = http.post(action).form(&form).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{}", answer.text().await.unwrap());
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// Signs `browser` in with Salesforce; returns the callback's answer.
async fn sign_in(browser: &mut ConsoleClient, username: &str, password: &str) -> Page {
    let start = browser
        .get("/console/login/salesforce?next=%2Fconsole%2Fsalesforce")
        .await;
    let callback = log_in_at_salesforce(&start, username, password).await;
    browser.get(&callback).await
}

async fn session_rows(app: &TestApp) -> Vec<(String, String, String)> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.gateway.state.store.connection();
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT subject, source, role FROM console_sessions ORDER BY role".to_owned(),
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r.try_get::<String>("", "subject").unwrap(),
            r.try_get::<String>("", "source").unwrap(),
            r.try_get::<String>("", "role").unwrap(),
        )
    })
    .collect()
}

both_databases!(
    salesforce_users_sign_in_as_admin_or_operator,
    |db: Db| async move {
        let app = app_with(db, &both_sets(), true).await;

        // The sign-in page offers Salesforce.
        let mut admin = ConsoleClient::new(&app.gateway.url());
        let login = admin.get("/console/login").await;
        assert!(login.body.contains("id=\"sign-in-salesforce\""));

        let done = sign_in(&mut admin, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location(), Some("/console/salesforce"));
        assert!(admin.cookies().contains_key("handoff_console"));
        assert!(
            !admin.cookies().contains_key("handoff_oauth"),
            "flow cookie cleared"
        );
        let page = admin.get("/console/salesforce").await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("Ada Admin · admin"), "{}", page.body);
        assert!(page.body.contains("id=\"connect-salesforce\""));

        let mut ops = ConsoleClient::new(&app.gateway.url());
        let done = sign_in(
            &mut ops,
            CONSOLE_OPERATOR_USERNAME,
            CONSOLE_OPERATOR_PASSWORD,
        )
        .await;
        assert_eq!(done.status, 303, "{}", done.body);
        let page = ops.get("/console/salesforce").await;
        assert!(
            page.body.contains("Oscar Operator · operator"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("id=\"connect-salesforce\""));
        // A read-only operator cannot connect, even with a valid form.
        let csrf = page.csrf().unwrap();
        let refused = ops
            .post_form("/console/salesforce/connect", &[("csrf", &csrf)])
            .await;
        assert_eq!(refused.status, 403);

        let rows = session_rows(&app).await;
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].1.as_str(), rows[0].2.as_str()),
            ("salesforce", "admin")
        );
        assert_eq!(
            (rows[1].1.as_str(), rows[1].2.as_str()),
            ("salesforce", "operator")
        );
        assert!(
            rows.iter()
                .all(|(subject, _, _)| subject.starts_with("005"))
        );
        // Every round trip was used up.
        assert_eq!(app.gateway.state.store.oauth_flow_count().await.unwrap(), 0);
    }
);

both_databases!(
    refused_users_and_bad_callbacks_get_no_session,
    |db: Db| async move {
        // Only the admin permission set is allowed in.
        let app = app_with(db, &[CONSOLE_ADMIN_PERMISSION_SET], true).await;
        let store = app.gateway.state.store.clone();

        // A user no rule allows: 403, a page that names no rule, and no session.
        let mut ops = ConsoleClient::new(&app.gateway.url());
        let done = sign_in(
            &mut ops,
            CONSOLE_OPERATOR_USERNAME,
            CONSOLE_OPERATOR_PASSWORD,
        )
        .await;
        assert_eq!(done.status, 403, "{}", done.body);
        assert!(done.body.contains("may not use this console"));
        assert!(!done.body.contains("Handoff_Console"), "names no rule");
        assert!(!ops.cookies().contains_key("handoff_console"));
        assert!(session_rows(&app).await.is_empty());

        // A replayed callback (same state and code) is refused: the round trip is single use.
        let mut admin = ConsoleClient::new(&app.gateway.url());
        let start = admin.get("/console/login/salesforce").await;
        let callback =
            log_in_at_salesforce(&start, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
        let flow_cookie = admin.cookies()["handoff_oauth"].clone();
        assert_eq!(admin.get(&callback).await.status, 303);
        let mut replay = ConsoleClient::new(&app.gateway.url());
        let path = &callback[callback.find("/console/").unwrap()..];
        let again = replay
            .get_with_cookie(path, &format!("handoff_oauth={flow_cookie}"))
            .await;
        assert_eq!(again.status, 400, "{}", again.body);
        assert!(again.body.contains("not valid any more"));
        assert!(!replay.cookies().contains_key("handoff_console"));
        assert_eq!(session_rows(&app).await.len(), 1);

        // A wrong state is refused.
        let mut other = ConsoleClient::new(&app.gateway.url());
        let wrong = other
            .get("/console/oauth/callback?code=aPrxWhatever&state=not-a-state")
            .await;
        assert_eq!(wrong.status, 400);

        // A callback in another browser than the one that started the round trip is refused
        // (and uses the round trip up).
        let mut starter = ConsoleClient::new(&app.gateway.url());
        let start = starter.get("/console/login/salesforce").await;
        let callback =
            log_in_at_salesforce(&start, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
        let mut victim = ConsoleClient::new(&app.gateway.url());
        assert_eq!(victim.get(&callback).await.status, 400);
        assert_eq!(starter.get(&callback).await.status, 400);

        // A round trip older than its expiry is refused.
        let mut slow = ConsoleClient::new(&app.gateway.url());
        let start = slow.get("/console/login/salesforce").await;
        let state = url::Url::parse(start.location().unwrap())
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let hash = gateway::store::hash_token(&state);
        let past = chrono::Utc::now().timestamp_millis() - 1;
        assert!(store.set_oauth_flow_expiry(&hash, past).await.unwrap());
        let callback =
            log_in_at_salesforce(&start, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
        let late = slow.get(&callback).await;
        assert_eq!(late.status, 400, "{}", late.body);
        assert!(!slow.cookies().contains_key("handoff_console"));

        // Salesforce's own refusal is shown without echoing its text.
        let mut declined = ConsoleClient::new(&app.gateway.url());
        let start = declined.get("/console/login/salesforce").await;
        let state = url::Url::parse(start.location().unwrap())
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let page = declined
        .get(&format!(
            "/console/oauth/callback?error=access_denied&error_description=%3Cb%3Eevil%3C%2Fb%3E&state={state}"
        ))
        .await;
        assert_eq!(page.status, 403);
        assert!(page.body.contains("did not allow access") && !page.body.contains("evil"));

        assert_eq!(
            session_rows(&app).await.len(),
            1,
            "only the one good sign-in"
        );
        assert_eq!(store.oauth_flow_count().await.unwrap(), 0);
    }
);

/// The org's user id of `username` in the emulator.
async fn user_id(app: &TestApp, username: &str) -> String {
    let rows = app
        .soql(&format!(
            "SELECT Id FROM User WHERE Username = '{username}'"
        ))
        .await;
    rows[0]["Id"].as_str().unwrap().to_owned()
}

async fn case_creator(app: &TestApp, driver: &Driver) -> String {
    let id = unique("connect");
    driver.escalate(&escalation(&id, 2)).await.unwrap();
    let case_id = driver
        .wait_escalated(&id, WAIT)
        .await
        .unwrap()
        .salesforce_case_id
        .unwrap();
    let rows = app
        .soql(&format!(
            "SELECT CreatedById FROM Case WHERE Id = '{case_id}'"
        ))
        .await;
    rows[0]["CreatedById"].as_str().unwrap().to_owned()
}

both_databases!(
    connect_salesforce_stores_seals_and_survives_a_restart,
    |db: Db| async move {
        // The app is entered in the console (not in the config file).
        let app = app_with(db, &both_sets(), false).await;
        let integration = user_id(&app, sf_emulator::config::DEFAULT_USERNAME).await;
        let admin_id = user_id(&app, CONSOLE_ADMIN_USERNAME).await;
        assert_eq!(case_creator(&app, &app.driver()).await, integration);

        add_console_user(&app, "root", "a long enough password", "admin").await;
        let mut browser = ConsoleClient::new(&app.gateway.url());
        browser.sign_in("root", "a long enough password").await;
        let page = browser.get("/console/salesforce").await;
        assert!(page.body.contains("client_credentials"), "{}", page.body);
        assert!(
            !page.body.contains("id=\"connect-salesforce\""),
            "no app yet"
        );
        let csrf = page.csrf().unwrap();
        let forged = browser
            .post_form(
                "/console/salesforce/app",
                &[("csrf", "forged"), ("client_id", DEFAULT_CLIENT_ID)],
            )
            .await;
        assert_eq!(forged.status, 403);
        let bad = browser
            .post_form(
                "/console/salesforce/app",
                &[("csrf", &csrf), ("client_id", "has space")],
            )
            .await;
        assert_eq!(bad.status, 400);
        assert!(bad.body.contains("client_id"));
        let saved = browser
            .post_form(
                "/console/salesforce/app",
                &[
                    ("csrf", &csrf),
                    ("client_id", DEFAULT_CLIENT_ID),
                    ("client_secret", DEFAULT_CLIENT_SECRET),
                ],
            )
            .await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let page = browser.get("/console/salesforce").await;
        assert!(page.body.contains("id=\"connect-salesforce\""));
        assert!(!page.body.contains(DEFAULT_CLIENT_SECRET));

        // Connect: the admin signs in to the org, Handoff keeps the refresh token.
        let start = browser
            .post_form("/console/salesforce/connect", &[("csrf", &csrf)])
            .await;
        let callback =
            log_in_at_salesforce(&start, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
        let done = browser.get(&callback).await;
        assert_eq!(done.status, 303, "{}", done.body);
        assert_eq!(done.location(), Some("/console/salesforce?done=connected"));
        let page = browser.get("/console/salesforce?done=connected").await;
        assert!(page.body.contains(CONSOLE_ADMIN_USERNAME), "{}", page.body);
        assert!(page.body.contains("id=\"disconnect-salesforce\""));

        // The next Salesforce call uses the connection: the Case is created as the admin.
        let before = app.gateway.state.salesforce.stats().token_requests;
        assert_eq!(case_creator(&app, &app.driver()).await, admin_id);
        assert!(app.gateway.state.salesforce.stats().token_requests > before);

        // Canary: neither the refresh token nor the client secret is in the database in clear,
        // nor as base64 or hex.
        let store = &app.gateway.state.store;
        let refresh = store
            .get_secret(&app.gateway.state.keys, "salesforce.refresh_token")
            .await
            .unwrap()
            .expect("stored refresh token");
        let dump = dbdump::database_text(store.connection()).await;
        assert!(
            dump.contains("salesforce.refresh_token")
                && dump.contains("console.salesforce.client_secret")
        );
        for secret in [refresh.expose_secret(), DEFAULT_CLIENT_SECRET] {
            assert_eq!(dbdump::find_trace(&dump, secret), None);
        }
        if app.config.database_url.starts_with("sqlite") {
            let files = dbdump::sqlite_file_text(&app.config.database_url);
            for secret in [refresh.expose_secret(), DEFAULT_CLIENT_SECRET] {
                assert_eq!(dbdump::find_trace(&files, secret), None);
            }
        }

        // A restarted gateway on the same database prefers the stored connection.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = app.config.clone();
        config.public_url = Some(format!("http://{}", listener.local_addr().unwrap()));
        let second = Application::build(config.clone(), listener)
            .await
            .expect("second gateway")
            .spawn()
            .expect("runs");
        let driver = Driver::new(second.url(), app.escalate_token.clone()).unwrap();
        assert_eq!(case_creator(&app, &driver).await, admin_id);

        // With no salesforce.credentials at all, a stored connection is enough to start.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut bare = config.clone();
        bare.salesforce.credentials = None;
        let third = Application::build(bare.clone(), listener)
            .await
            .expect("starts with the stored connection alone");

        // Disconnect: the token is revoked, the rows go, the configured credentials return.
        let page = browser.get("/console/salesforce").await;
        let gone = browser
            .post_form(
                "/console/salesforce/disconnect",
                &[("csrf", &page.csrf().unwrap())],
            )
            .await;
        assert_eq!(gone.status, 303);
        assert_eq!(
            gone.location(),
            Some("/console/salesforce?done=disconnected")
        );
        assert!(
            store
                .get_secret(&app.gateway.state.keys, "salesforce.refresh_token")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(case_creator(&app, &app.driver()).await, integration);
        // The revoked refresh token is dead at the org.
        let dead = salesforce::Client::new(salesforce::ClientConfig::new(
            app.emulator.url(),
            salesforce::Credentials::RefreshToken {
                client_id: DEFAULT_CLIENT_ID.into(),
                client_secret: DEFAULT_CLIENT_SECRET.into(),
                refresh_token: refresh.clone(),
            },
        ))
        .unwrap();
        assert!(dead.authenticate().await.is_err());
        drop(third);
        second.stop().await;

        // Nothing connected and no credentials configured, but the app entered in the console
        // is still there: the gateway starts, not connected (see the test below).
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fourth = Application::build(bare, listener)
            .await
            .expect("starts not connected");
        assert_eq!(
            fourth.state().salesforce.stats().token_requests,
            0,
            "nothing to ask a token with"
        );
    }
);

both_databases!(
    a_gateway_with_no_credentials_accepts_escalations_until_an_admin_connects,
    |db: Db| async move {
        let emulator = handoff_tests::spawn_emulator().await;
        let (db_url, _dir) = handoff_tests::fresh_database(db).await;
        let mut config = handoff_tests::test_config(&db_url, &emulator);
        config.salesforce.credentials = None;
        config.secrets.keys = Some(gateway::secrets::generate_entry().entry);
        let sf = &mut config.console.salesforce;
        sf.client_id = Some(DEFAULT_CLIENT_ID.into());
        sf.client_secret = Some(DEFAULT_CLIENT_SECRET.into());
        sf.allowed_permission_sets = both_sets().map(str::to_owned).to_vec();
        sf.admin_permission_sets = vec![CONSOLE_ADMIN_PERMISSION_SET.into()];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        config.public_url = Some(url.clone());
        emulator
            .add_callback_url(DEFAULT_CLIENT_ID, &format!("{url}/console/oauth/callback"))
            .unwrap();
        // Without the console's app it would refuse to start (NoCredentials).
        let mut no_app = config.clone();
        no_app.console.salesforce.client_id = None;
        assert!(matches!(
            Application::build(no_app, TcpListener::bind("127.0.0.1:0").await.unwrap()).await,
            Err(gateway::app::StartError::NoCredentials)
        ));
        let running = Application::build(config, listener)
            .await
            .expect("starts not connected")
            .spawn()
            .unwrap();
        let store = running.state.store.clone();
        let token = store
            .create_token(
                "t",
                &[gateway::store::Scope::Escalate, gateway::store::Scope::Read],
            )
            .await
            .unwrap()
            .secret;
        let driver = Driver::new(running.url(), token).unwrap();

        // Accepted while not connected; it waits (the Salesforce page says why).
        let id = unique("unconnected");
        let accepted = driver.escalate(&escalation(&id, 2)).await.unwrap();
        assert_eq!(accepted.salesforce_case_id, None);
        let phc = gateway::console::password::hash("a long enough password").unwrap();
        store
            .create_console_user("root", &phc, "admin")
            .await
            .unwrap();
        let mut browser = ConsoleClient::new(&running.url());
        browser.sign_in("root", "a long enough password").await;
        let page = browser.get("/console/salesforce").await;
        assert!(page.body.contains("Not connected"), "{}", page.body);
        assert_eq!(running.state.salesforce.stats().token_requests, 0);
        let session = driver.session(&id).await.unwrap();
        assert_eq!(session.salesforce_case_id, None);

        // Connect: the waiting escalation becomes a Case, created as the admin who connected.
        let start = browser
            .post_form(
                "/console/salesforce/connect",
                &[("csrf", &page.csrf().unwrap())],
            )
            .await;
        let callback =
            log_in_at_salesforce(&start, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
        let done = browser.get(&callback).await;
        assert_eq!(done.location(), Some("/console/salesforce?done=connected"));
        let case_id = driver
            .wait_escalated(&id, WAIT)
            .await
            .unwrap()
            .salesforce_case_id
            .unwrap();
        let sf = salesforce::Client::new(salesforce::ClientConfig::new(
            emulator.url(),
            salesforce::Credentials::ClientCredentials {
                client_id: DEFAULT_CLIENT_ID.into(),
                client_secret: DEFAULT_CLIENT_SECRET.into(),
            },
        ))
        .unwrap();
        let rows = sf
            .query(&format!(
                "SELECT CreatedBy.Username FROM Case WHERE Id = '{case_id}'"
            ))
            .await
            .unwrap()
            .records;
        assert_eq!(rows[0]["CreatedBy"]["Username"], CONSOLE_ADMIN_USERNAME);
        running.stop().await;
    }
);

/// `serve --sandbox` signs the emulator's users in out of the box.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_signs_in_the_emulators_users() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = Application::build_sandbox(gateway::config::Config::defaults(), listener, true)
        .await
        .unwrap();
    let running = app.spawn().unwrap();
    let mut admin = ConsoleClient::new(&running.url());
    let login = admin.get("/console/login").await;
    assert!(login.body.contains("id=\"sign-in-salesforce\""));
    let done = sign_in(&mut admin, CONSOLE_ADMIN_USERNAME, CONSOLE_ADMIN_PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = admin.get("/console/salesforce").await;
    assert!(page.body.contains("· admin"), "{}", page.body);
    let mut ops = ConsoleClient::new(&running.url());
    let done = sign_in(
        &mut ops,
        CONSOLE_OPERATOR_USERNAME,
        CONSOLE_OPERATOR_PASSWORD,
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = ops.get("/console/salesforce").await;
    assert!(page.body.contains("· operator"), "{}", page.body);
    running.stop().await;
}
