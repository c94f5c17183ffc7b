//! The console's sign-in, sign-out, CSRF and security headers, with local accounts.

use handoff_tests::ops_console::{ConsoleClient, add_console_user};
use handoff_tests::{Db, both_databases, spawn_app};

both_databases!(a_local_account_signs_in_and_out, |db: Db| async move {
    let app = spawn_app(db).await;
    add_console_user(&app, "Ops.Lead", "a long enough password", "admin").await;
    let mut browser = ConsoleClient::new(&app.gateway.url());

    // Not signed in: pages send the browser to the sign-in page, coming back after.
    let page = browser.get("/console").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/console/login?next=%2Fconsole"));

    // Username letter case does not matter; the password's does.
    let refused = browser
        .sign_in_attempt("ops.lead", "a long enough Password")
        .await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("do not match"));
    assert!(!browser.cookies().contains_key("handoff_console"));
    browser.sign_in("ops.lead", "a long enough password").await;
    let cookie = browser.cookies()["handoff_console"].clone();
    // The database holds only a hash of the cookie, never the cookie.
    assert_eq!(
        session_ids(&app).await,
        vec![gateway::store::hash_token(&cookie)]
    );

    let page = browser.get("/console").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Ops.Lead"));
    for (name, expected) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(page.headers[name], expected, "{name}");
    }
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));

    // Sign-out needs the form's CSRF token; without it nothing happens.
    let csrf = page.csrf().expect("csrf field");
    let forged = browser
        .post_form("/console/logout", &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(browser.get("/console").await.status, 200);
    let out = browser
        .post_form("/console/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    assert!(!browser.cookies().contains_key("handoff_console"));

    // The old cookie no longer works: the row is gone, not just the browser's copy.
    let mut replay = ConsoleClient::new(&app.gateway.url());
    let page = replay
        .get_with_cookie("/console", &format!("handoff_console={cookie}"))
        .await;
    assert_eq!(page.status, 303);

    // The sign-in's row is gone with it.
    assert!(session_ids(&app).await.is_empty());
});

both_databases!(sign_in_needs_the_login_forms_token, |db: Db| async move {
    let app = spawn_app(db).await;
    add_console_user(&app, "ops", "a long enough password", "operator").await;
    let mut browser = ConsoleClient::new(&app.gateway.url());
    // A form posted from elsewhere carries no login cookie (login CSRF).
    let page = browser
        .post_form(
            "/console/login",
            &[
                ("username", "ops"),
                ("password", "a long enough password"),
                ("login_token", "whatever"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(!browser.cookies().contains_key("handoff_console"));
});

both_databases!(
    sign_in_never_redirects_off_the_console,
    |db: Db| async move {
        let app = spawn_app(db).await;
        add_console_user(&app, "ops", "a long enough password", "operator").await;
        let mut browser = ConsoleClient::new(&app.gateway.url());
        let login = browser
            .get("/console/login?next=https://evil.example/")
            .await;
        let token = handoff_tests::ops_console::hidden_value(&login.body, "login_token").unwrap();
        let next = handoff_tests::ops_console::hidden_value(&login.body, "next").unwrap();
        assert_eq!(next, "/console");
        let page = browser
            .post_form(
                "/console/login",
                &[
                    ("username", "ops"),
                    ("password", "a long enough password"),
                    ("login_token", &token),
                    ("next", "//evil.example/console"),
                ],
            )
            .await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location(), Some("/console"));
    }
);

both_databases!(
    usernames_differing_in_case_are_one_account,
    |db: Db| async move {
        let app = spawn_app(db).await;
        add_console_user(&app, "Admin", "a long enough password", "admin").await;
        let phc = gateway::console::password::hash("another long password").unwrap();
        let second = app
            .gateway
            .state
            .store
            .create_console_user("admin", &phc, "operator")
            .await;
        assert!(matches!(second, Err(gateway::store::NewUserError::Exists)));
    }
);

async fn session_ids(app: &handoff_tests::TestApp) -> Vec<String> {
    use sea_orm::ConnectionTrait;
    let db = app.gateway.state.store.connection();
    db.query_all_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT id FROM console_sessions",
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get::<String>("", "id").unwrap())
    .collect()
}
