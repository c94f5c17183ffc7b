//! The ops console in a real headless Chromium (see tests/src/browser.rs): signing in and
//! out, search, acting on jobs and tokens, Salesforce sign-in, hostile transcripts, and the
//! README's screenshots. SQLite is enough here; the console's store queries run on both
//! databases in the other console tests.

use gateway::config::Config;
use gateway::store::Scope;
use handoff_tests::browser::{Browser, WAIT, is_png, screenshot_dir};
use handoff_tests::ops_console::add_console_user;
use handoff_tests::phone::{eventually, spawn_phone_app};
use handoff_tests::{Db, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use sf_emulator::Faults;
use sf_emulator::config as sf_config;

const PASSWORD: &str = "a long enough password";

/// Signs in through the login page the console sends an anonymous visitor to.
async fn sign_in(browser: &Browser, username: &str, password: &str) {
    browser.goto("/console").await;
    browser.wait_for_path("/console/login").await;
    browser.fill("username", username).await;
    browser.fill("password", password).await;
    browser.click("sign-in").await;
    browser.wait_for_path("/console").await;
    browser.wait_for("#q").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_account_signs_in_and_out() {
    let app = spawn_app(Db::Sqlite).await;
    add_console_user(&app, "Ops.Lead", PASSWORD, "admin").await;
    let Some(browser) = Browser::launch(&app.gateway.url()).await else {
        return;
    };

    // Anonymous: the console sends the browser to the sign-in page, remembering where to.
    browser.goto("/console").await;
    browser.wait_for_path("/console/login").await;
    assert_eq!(
        browser.current_path().await,
        "/console/login?next=%2Fconsole"
    );

    // A wrong password: refused, still on the sign-in page, with the reason shown.
    browser.fill("username", "ops.lead").await;
    browser.fill("password", "not the password").await;
    browser.click("sign-in").await;
    let alert = browser.text_of("p.error").await;
    assert!(alert.contains("do not match"), "{alert}");
    assert_eq!(browser.current_url().await.path(), "/console/login");

    // The right one (usernames ignore letter case): the console, with the search box.
    sign_in(&browser, "ops.lead", PASSWORD).await;
    let who = browser.text_of("form.who span").await;
    assert!(who.contains("Ops.Lead") && who.contains("admin"), "{who}");
    // The session cookie is HttpOnly: the page's script cannot read it.
    let cookies = browser.execute("return document.cookie").await;
    assert!(
        !cookies.as_str().unwrap_or("").contains("handoff_console"),
        "{cookies}"
    );

    // Sign out: back to the sign-in page, and the console no longer opens.
    browser.click_css("form.who button[type=submit]").await;
    browser.wait_for("#sign-in").await;
    browser.goto("/console").await;
    browser.wait_for_path("/console/login").await;
    browser.wait_for("#username").await;
    browser.close().await;
}

/// A gateway's console with an admin signed in, in a fresh Chromium; `None` when browser
/// tests are skipped here.
async fn admin_browser(app: &TestApp) -> Option<Browser> {
    add_console_user(app, "ops.admin", PASSWORD, "admin").await;
    let browser = Browser::launch(&app.gateway.url()).await?;
    sign_in(&browser, "ops.admin", PASSWORD).await;
    Some(browser)
}

/// Types `query` into the search box and waits for the session page of `session_id`.
async fn search_lands_on(browser: &Browser, query: &str, session_id: &str) {
    browser.goto("/console").await;
    browser.fill("q", query).await;
    browser.click("search").await;
    browser
        .wait_for_path(&format!("/console/sessions/{session_id}"))
        .await;
    let heading = browser.text_of("main h1").await;
    assert_eq!(
        heading,
        format!("Session {session_id}"),
        "searching {query:?}"
    );
}

/// Waits until the element with id `id` is gone from the page the browser shows.
async fn wait_gone(browser: &Browser, id: &str) {
    browser
        .wait_until(
            &format!("#{id} gone"),
            &format!("return document.getElementById({}) === null", json!(id)),
        )
        .await;
}

/// A session on the Case route (email), escalated; the view the API gives of it.
async fn escalated_case(app: &TestApp, body: &Value) -> gateway::http::sessions::SessionView {
    let (status, answer) = app.post_escalation(body).await;
    assert_eq!(status, 202, "{answer}");
    let id = body["session_id"].as_str().expect("session_id");
    app.driver()
        .wait_escalated(id, WAIT)
        .await
        .expect("the Case is created")
}

fn email_escalation(session_id: &str, email: &str, transcript: Value) -> Value {
    json!({
        "session_id": session_id,
        "channel": "email",
        "customer": {"name": "Ann Example", "email": email},
        "priority": "high",
        "subject": "Cannot reset my password",
        "summary": "Customer cannot reset her password: the reset email never arrives.",
        "transcript": transcript,
    })
}

fn short_transcript() -> Value {
    json!([
        {"role": "customer", "text": "Hi, I asked for a password reset three times and got nothing.", "at": "2026-11-22T09:00:00Z"},
        {"role": "bot", "text": "Sorry about that! Can you confirm the address you use to sign in?", "at": "2026-11-22T09:01:00Z"},
        {"role": "customer", "text": "ann@example.com, and it is not in spam either.", "at": "2026-11-22T09:02:00Z"},
        {"role": "bot", "text": "Thanks. I am handing this to a colleague who can check the mail logs.", "at": "2026-11-22T09:03:00Z"},
    ])
}

// Every kind of id an operator may hold (from a Case, from a live SMS conversation, from a
// provider's delivery report) finds its session through the search box.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_by_each_kind_of_id_opens_the_session() {
    let s = spawn_phone_app(Db::Sqlite, |_| {}, |_| {}).await;
    let app = &s.app;
    let case = escalated_case(
        app,
        &email_escalation(
            "browser-case-1",
            "ann.browser@example.com",
            short_transcript(),
        ),
    )
    .await;
    let case_id = case.salesforce_case_id.clone().expect("Case id");
    let case_number = case.salesforce_case_number.clone().expect("CaseNumber");

    let phone = "+14155550123";
    let conversation = s
        .live_escalation(&json!({
            "session_id": "browser-sms-1",
            "channel": "sms",
            "customer": {"name": "Sam Rivera", "phone": phone},
            "priority": "medium",
            "summary": "Parcel shows delivered but never arrived.",
            "transcript": [
                {"role": "customer", "text": "My parcel says delivered but it is not here.", "at": "2026-11-22T10:00:00Z"},
                {"role": "bot", "text": "A colleague can open a claim with the courier.", "at": "2026-11-22T10:01:00Z"},
            ],
        }))
        .await;
    // The rep accepts: Salesforce names the MessagingSession; the gateway's notices go out
    // through Twilio and get provider message ids.
    let (status, body) = s.rep.accept(&conversation, "Jane Rep").await;
    assert_eq!(status, 200, "{body}");
    let live = app
        .wait_session("browser-sms-1", "MessagingSession and a provider id", |v| {
            v["salesforce_messaging_session_id"].is_string()
                && v["deliveries"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["provider_id"].is_string()))
        })
        .await;
    let messaging_session = live["salesforce_messaging_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let provider_id = live["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|d| d["provider_id"].as_str())
        .unwrap()
        .to_string();

    let Some(browser) = admin_browser(app).await else {
        return;
    };
    for (query, session) in [
        ("browser-case-1", "browser-case-1"),
        (case_id.as_str(), "browser-case-1"),
        (&case_id[..15], "browser-case-1"),
        (case_number.as_str(), "browser-case-1"),
        ("ann.browser@example.com", "browser-case-1"),
        ("browser-sms-1", "browser-sms-1"),
        (conversation.as_str(), "browser-sms-1"),
        (messaging_session.as_str(), "browser-sms-1"),
        (phone, "browser-sms-1"),
        (provider_id.as_str(), "browser-sms-1"),
    ] {
        search_lands_on(&browser, query, session).await;
    }
    // The session page has each of its sections.
    for section in ["#summary", "#transcript", "#timeline", "#outbox"] {
        browser.wait_for(section).await;
    }
    browser.close().await;
}

// A job whose only attempt met a 503 is dead; an admin retries it from the jobs page and the
// Case is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retries_a_dead_job() {
    let app = spawn_app_with(Db::Sqlite, |c| c.worker.max_attempts = 1).await;
    app.emulator.set_faults(Faults {
        fail_next: 1,
        ..Faults::default()
    });
    let (status, body) = app
        .post_escalation(&email_escalation(
            "browser-dead-1",
            "ann@example.com",
            short_transcript(),
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    let store = app.gateway.state.store.clone();
    let job_id = eventually("the job is dead", || async {
        let dead = store.jobs_in_state("dead").await.expect("jobs");
        dead.iter()
            .find(|j| j.session_id == "browser-dead-1")
            .map(|j| j.id)
    })
    .await;

    let Some(browser) = admin_browser(&app).await else {
        return;
    };
    browser.goto("/console/jobs").await;
    let retry = format!("retry-{job_id}");
    browser.click(&retry).await;
    // The job leaves the dead letters and runs again: the Case is created.
    let notice = browser.text_of("p.notice.ok").await;
    assert!(
        notice.contains(&format!("Job {job_id} is queued again")),
        "{notice}"
    );
    wait_gone(&browser, &retry).await;
    let session = app
        .driver()
        .wait_escalated("browser-dead-1", WAIT)
        .await
        .expect("Case created after the retry");
    assert!(session.salesforce_case_id.is_some());
    browser.goto("/console/jobs").await;
    browser.wait_for("#no-dead-jobs").await;
    browser.close().await;
}

// An admin revokes a token (the API then answers 401 to it) and creates one, shown once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_revokes_and_creates_tokens() {
    let app = spawn_app(Db::Sqlite).await;
    let bot = app
        .gateway
        .state
        .store
        .create_token("ci-bot", &[Scope::Read])
        .await
        .expect("token");
    // Known to the API: an unknown session is 404, not 401.
    assert_eq!(
        app.get("/v1/sessions/no-such-session", Some(&bot.secret))
            .await
            .0,
        404
    );

    let Some(browser) = admin_browser(&app).await else {
        return;
    };
    browser.goto("/console/tokens").await;
    let revoke = format!("revoke-{}", bot.id);
    browser.click(&revoke).await;
    wait_gone(&browser, &revoke).await;
    let (status, body) = app
        .get("/v1/sessions/no-such-session", Some(&bot.secret))
        .await;
    assert_eq!(status, 401, "{body}");

    // A new read token: its secret is shown once, and the API takes it.
    browser.goto("/console/tokens").await;
    browser.fill("name", "made-in-the-browser").await;
    browser.click("scope-read").await;
    browser.click("create-token").await;
    let secret = browser.text_of("#new-token").await;
    let secret = secret.trim();
    assert!(secret.starts_with("hnd_"), "{secret}");
    assert_eq!(
        app.get("/v1/sessions/no-such-session", Some(secret))
            .await
            .0,
        404
    );
    // Shown once: the list afterwards names the token but not its secret.
    browser.goto("/console/tokens").await;
    browser.wait_for("main").await;
    let page = browser.source().await;
    assert!(page.contains("made-in-the-browser"));
    assert!(!page.contains(secret));
    browser.close().await;
}

/// The gateway with "Sign in with Salesforce" against the emulator's default app and users:
/// holders of the console permission sets may sign in, the admin set's holders as admins.
async fn salesforce_sign_in_app(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let app = spawn_app_with(Db::Sqlite, |c| {
        let sf = &mut c.console.salesforce;
        sf.client_id = Some(sf_config::DEFAULT_CLIENT_ID.into());
        sf.client_secret = Some(sf_config::DEFAULT_CLIENT_SECRET.to_string().into());
        sf.allowed_permission_sets = vec![
            sf_config::CONSOLE_ADMIN_PERMISSION_SET.into(),
            sf_config::CONSOLE_OPERATOR_PERMISSION_SET.into(),
        ];
        sf.admin_permission_sets = vec![sf_config::CONSOLE_ADMIN_PERMISSION_SET.into()];
        adjust(c);
    })
    .await;
    app.emulator
        .add_callback_url(
            sf_config::DEFAULT_CLIENT_ID,
            &format!("{}/console/oauth/callback", app.gateway.url()),
        )
        .expect("callback URL");
    app
}

/// From the console's sign-in page through the emulator's Salesforce login and back.
async fn sign_in_with_salesforce(browser: &Browser, username: &str, password: &str) {
    browser.goto("/console").await;
    browser.wait_for_path("/console/login").await;
    browser.click("sign-in-salesforce").await;
    browser.wait_for_path("/services/oauth2/authorize").await;
    browser.fill("username", username).await;
    browser.fill("password", password).await;
    browser.click("Login").await;
    browser.wait_for_path("/console").await;
    browser.wait_for("#q").await;
}

// Operators sign in with their Salesforce login (the emulator's authorize page); the permission
// set decides admin or read-only operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_users_sign_in_through_the_salesforce_login() {
    let app = salesforce_sign_in_app(|_| {}).await;
    let Some(browser) = Browser::launch(&app.gateway.url()).await else {
        return;
    };
    sign_in_with_salesforce(
        &browser,
        sf_config::CONSOLE_ADMIN_USERNAME,
        sf_config::CONSOLE_ADMIN_PASSWORD,
    )
    .await;
    let who = browser.text_of("form.who span").await;
    assert!(who.contains("Ada Admin") && who.contains("admin"), "{who}");
    browser.click_css("form.who button[type=submit]").await;
    browser.wait_for("#sign-in").await;

    sign_in_with_salesforce(
        &browser,
        sf_config::CONSOLE_OPERATOR_USERNAME,
        sf_config::CONSOLE_OPERATOR_PASSWORD,
    )
    .await;
    let who = browser.text_of("form.who span").await;
    assert!(
        who.contains("Oscar Operator") && who.contains("operator"),
        "{who}"
    );
    browser.click_css("form.who button[type=submit]").await;
    browser.wait_for("#sign-in").await;

    // A user of the org that no rule lets in: refused, and not signed in.
    browser.click("sign-in-salesforce").await;
    browser.wait_for_path("/services/oauth2/authorize").await;
    browser.fill("username", sf_config::DEFAULT_USERNAME).await;
    browser.fill("password", sf_config::DEFAULT_PASSWORD).await;
    browser.click("Login").await;
    browser
        .wait_until(
            "the refusal is shown",
            "return document.body.innerText.includes('Your Salesforce user may not use this console')",
        )
        .await;
    browser.goto("/console").await;
    browser.wait_for_path("/console/login").await;
    browser.close().await;
}

// A transcript written to attack the page: script tags, event handlers, `javascript:` links
// and a 5,000-character unbroken string. In Chromium nothing runs, it all reads as text, and
// the page does not grow sideways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_transcript_renders_as_inert_text() {
    let app = spawn_app(Db::Sqlite).await;
    let script = "<script>window.__pwned=1</script>";
    let image = "<img src=x onerror=\"window.__pwned=2\">";
    let link = "<a href=\"javascript:window.__pwned=3\">open</a> [click](javascript:window.__pwned=4) javascript:window.__pwned=5";
    let unbroken = "W".repeat(5_000);
    let body = email_escalation(
        "browser-hostile-1",
        "ann@example.com",
        json!([
            {"role": "customer", "text": script, "at": "2026-11-22T09:00:00Z"},
            {"role": "bot", "text": image, "at": "2026-11-22T09:01:00Z"},
            {"role": "customer", "text": link, "at": "2026-11-22T09:02:00Z"},
            {"role": "customer", "text": unbroken, "at": "2026-11-22T09:03:00Z"},
        ]),
    );
    let (status, answer) = app.post_escalation(&body).await;
    assert_eq!(status, 202, "{answer}");

    let Some(browser) = admin_browser(&app).await else {
        return;
    };
    browser.goto("/console/sessions/browser-hostile-1").await;
    browser.wait_for("#transcript").await;
    let transcript = browser.text_of("div.transcript").await;
    for text in [script, image, link, unbroken.as_str()] {
        assert!(
            transcript.contains(text),
            "not shown as text: {}",
            &text[..text.len().min(80)]
        );
    }
    for (what, check) in [
        ("no script ran", "return window.__pwned === undefined"),
        (
            "no script element from the transcript",
            "return document.querySelectorAll('main script').length === 0",
        ),
        (
            "no event-handler attribute",
            "return document.querySelectorAll('[onerror],[onload],[onclick]').length === 0",
        ),
        (
            "no javascript: link",
            "return Array.from(document.querySelectorAll('[href],[src],[action]')).every(e => \
             !/^\\s*javascript:/i.test(e.getAttribute('href') || e.getAttribute('src') || e.getAttribute('action') || ''))",
        ),
        (
            "no horizontal overflow",
            "return document.documentElement.scrollWidth <= window.innerWidth",
        ),
    ] {
        assert_eq!(browser.execute(check).await, json!(true), "{what}");
    }
    browser.close().await;
}

// Screenshots of the main pages, for the README. Written to docs/console/ only with
// HANDOFF_UPDATE_SCREENSHOTS=1, otherwise to a temporary directory, so test runs never
// change the repository; either way each must be a real, non-empty PNG.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_the_main_pages() {
    let app = salesforce_sign_in_app(|c| c.worker.max_attempts = 1).await;
    // One dead job for the jobs page, one Case for the session page.
    app.emulator.set_faults(Faults {
        fail_next: 1,
        ..Faults::default()
    });
    let (status, body) = app
        .post_escalation(&email_escalation(
            "order-4411-refund",
            "sam@example.com",
            short_transcript(),
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    let store = app.gateway.state.store.clone();
    eventually("the job is dead", || async {
        let dead = store.jobs_in_state("dead").await.expect("jobs");
        dead.iter()
            .any(|j| j.session_id == "order-4411-refund")
            .then_some(())
    })
    .await;
    let case = escalated_case(
        &app,
        &email_escalation("password-reset-ann", "ann@example.com", short_transcript()),
    )
    .await;
    store
        .create_token("helpdesk-bot", &[Scope::Escalate, Scope::Read])
        .await
        .expect("token");

    add_console_user(&app, "ops.admin", PASSWORD, "admin").await;
    let Some(browser) = Browser::launch(&app.gateway.url()).await else {
        return;
    };
    let (dir, _keep) = screenshot_dir();
    let mut shots = Vec::new();
    let mut shoot = async |name: &str, ready: &str| {
        browser.wait_for(ready).await;
        let path = dir.join(format!("{name}.png"));
        browser.screenshot(&path).await;
        shots.push(path);
    };
    browser.goto("/console/login").await;
    shoot("sign-in", "#sign-in-salesforce").await;
    browser.click("sign-in-salesforce").await;
    shoot("salesforce-login", "#Login").await;
    sign_in(&browser, "ops.admin", PASSWORD).await;
    shoot("search", "#q").await;
    browser
        .goto(&format!("/console/sessions/{}", case.id))
        .await;
    shoot("session", "div.transcript").await;
    browser.goto("/console/jobs").await;
    shoot("jobs", "[id^=retry-]").await;
    browser.goto("/console/tokens").await;
    shoot("tokens", "#create-token").await;
    browser.goto("/console/salesforce").await;
    shoot("salesforce", "main h1").await;
    browser.close().await;
    for path in shots {
        let bytes = std::fs::read(&path).expect("screenshot written");
        assert!(is_png(&bytes), "{} is not a PNG", path.display());
        assert!(bytes.len() > 2_000, "{} is nearly empty", path.display());
    }
}
