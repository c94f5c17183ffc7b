//! The ops console in a real headless Chromium (see tests/src/browser.rs): signing in and
//! out, search, acting on jobs and tokens, Salesforce sign-in, hostile transcripts, and the
//! README's screenshots. SQLite is enough here; the console's store queries run on both
//! databases in the other console tests.

use handoff_tests::browser::Browser;
use handoff_tests::ops_console::add_console_user;
use handoff_tests::{Db, spawn_app};

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
    assert_eq!(browser.current_path().await, "/console/login?next=%2Fconsole");

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
