//! The console's pages over real sessions: search by every kind of id, the session page
//! (deep links, hostile transcripts rendered as text), dead jobs retried and tokens created
//! and revoked by an admin, and nothing of that for a read-only operator or a forged form.

use std::time::Duration;

use handoff_tests::ops_console::{ConsoleClient, Page, add_console_user};
use handoff_tests::phone::{eventually, spawn_phone_app};
use handoff_tests::receiver::receiver;
use handoff_tests::{Db, TestApp, both_databases, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use sf_emulator::Faults;

use crate::support::unique;

const PASSWORD: &str = "a long enough password";

/// A browser signed in as a new local account with `role`.
async fn signed_in(app: &TestApp, username: &str, role: &str) -> ConsoleClient {
    add_console_user(app, username, PASSWORD, role).await;
    let mut browser = ConsoleClient::new(&app.gateway.url());
    browser.sign_in(username, PASSWORD).await;
    browser
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `GET /console/search?q=…`.
async fn search(browser: &mut ConsoleClient, q: &str) -> Page {
    browser
        .get(&format!("/console/search?q={}", encode(q)))
        .await
}

/// Searching `q` lands on the page of session `id`.
async fn lands_on(browser: &mut ConsoleClient, q: &str, id: &str) {
    let page = search(browser, q).await;
    assert_eq!(page.status, 303, "{q}: {}", page.body);
    assert_eq!(
        page.location(),
        Some(format!("/console/sessions/{id}").as_str()),
        "{q}"
    );
}

/// An email escalation (the Case route) from `email` / `phone`.
fn email_escalation(id: &str, email: &str, phone: &str) -> Value {
    json!({
        "session_id": id,
        "channel": "email",
        "customer": {"name": "Pat Case", "email": email, "phone": phone},
        "priority": "high",
        "subject": "Refund",
        "summary": "Customer wants a refund for a broken kettle.",
        "transcript": [
            {"role": "customer", "text": "My kettle broke after a week.", "at": "2026-11-22T10:00:00Z"},
            {"role": "bot", "text": "I am sorry; a colleague will arrange the refund.", "at": "2026-11-22T10:01:00Z"},
        ],
    })
}

fn sms_escalation(id: &str, phone: &str) -> Value {
    json!({
        "session_id": id,
        "channel": "sms",
        "customer": {"name": "Ana Ruiz", "phone": phone},
        "language": "en",
        "priority": "medium",
        "summary": "Customer's router has not arrived.",
        "transcript": [
            {"role": "customer", "text": "My router still has not arrived.", "at": "2026-11-22T10:00:00Z"},
            {"role": "bot", "text": "It is stuck at the depot.", "at": "2026-11-22T10:01:00Z"},
        ],
    })
}

// Every kind of id finds its session: session id, Case id (18 in any case, 15 exactly),
// CaseNumber, email (any case), phone (any punctuation), MIAW conversation id,
// MessagingSession id, an outbound SMS's sid and an inbound SMS's sid. Several matches are
// listed; none says so; empty and oversized searches explain themselves. The session page
// links into the org; the live, inbound and Salesforce pages show what happened.
both_databases!(search_finds_a_session_by_any_id, |db: Db| async move {
    let s = spawn_phone_app(db, |_| {}, |_| {}).await;
    let app = &s.app;
    let mut browser = signed_in(app, "viewer", "operator").await;

    // A Case session, and another session of the same phone.
    let case_id_session = unique("pages-case");
    let other = unique("pages-other");
    let (status, body) = app
        .post_escalation(&email_escalation(
            &case_id_session,
            "Pat.Case@Example.com",
            "+14155550177",
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = app
        .post_escalation(&email_escalation(
            &other,
            "someone.else@example.com",
            "+1 415 555 0177",
        ))
        .await;
    assert_eq!(status, 202, "{body}");
    let case = app
        .driver()
        .wait_escalated(&case_id_session, Duration::from_secs(30))
        .await
        .expect("the Case is created");
    let case18 = case.salesforce_case_id.clone().expect("Case id");
    let case_number = case.salesforce_case_number.clone().expect("CaseNumber");
    assert_eq!(case18.len(), 18);

    // A live SMS session: its conversation, MessagingSession, an SMS sent and one received.
    let sms_id = unique("pages-sms");
    let conversation = s
        .live_escalation(&sms_escalation(&sms_id, "+1 (415) 555-0100"))
        .await;
    let view = app
        .wait_session(&sms_id, "the MessagingSession id", |v| {
            v["salesforce_messaging_session_id"].is_string()
        })
        .await;
    let messaging_session = view["salesforce_messaging_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let sent_sid = eventually("an SMS sent to the customer", || async {
        app.deliveries(&sms_id)
            .await
            .into_iter()
            .find_map(|d| d.provider_id)
    })
    .await;
    let received_sid = s.text_from("+14155550100", "Any news?").await;
    eventually("the text reaches the session", || async {
        app.inbound_list("to_rep")
            .await
            .iter()
            .any(|m| m["session_id"] == sms_id.as_str())
            .then_some(())
    })
    .await;
    // A text from a stranger matches nothing.
    let stranger_sid = s.text_from("+14155550199", "Who is this?").await;
    eventually("the stranger's text is unmatched", || async {
        (!app.inbound_list("unmatched").await.is_empty()).then_some(())
    })
    .await;

    for (q, id) in [
        (case_id_session.as_str(), case_id_session.as_str()),
        (&case18, &case_id_session),
        (&case18.to_lowercase(), &case_id_session),
        (&case18[..15], &case_id_session),
        (&case_number, &case_id_session),
        ("pat.case@example.COM", &case_id_session),
        (&sms_id, &sms_id),
        ("+14155550100", &sms_id),
        ("+1 415-555-0100", &sms_id),
        (&conversation, &sms_id),
        (&conversation.to_uppercase(), &sms_id),
        (&messaging_session, &sms_id),
        (&sent_sid, &sms_id),
        (&received_sid, &sms_id),
    ] {
        lands_on(&mut browser, q, id).await;
    }

    // A 15-character id is case-sensitive; a session id too.
    let flipped: String = case18[..15]
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    assert_ne!(flipped, case18[..15]);
    let page = search(&mut browser, &flipped).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No session matches"), "{}", page.body);
    let page = search(&mut browser, &case_id_session.to_uppercase()).await;
    assert!(page.body.contains("No session matches"), "{}", page.body);
    // The stranger's message has no session.
    let page = search(&mut browser, &stranger_sid).await;
    assert!(page.body.contains("No session matches"), "{}", page.body);

    // Two sessions share a phone: both are listed.
    let page = search(&mut browser, "+1-415-555-0177").await;
    assert_eq!(page.status, 200, "{}", page.body);
    for id in [&case_id_session, &other] {
        assert!(
            page.body
                .contains(&format!("href=\"/console/sessions/{id}\"")),
            "{id}: {}",
            page.body
        );
    }

    // Empty and oversized searches explain themselves.
    let page = browser.get("/console/search?q=").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Type an id to search"));
    let page = search(&mut browser, &"x".repeat(513)).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("at most 512 bytes"), "{}", page.body);
    assert!(page.body.contains("id=\"q\""));

    // The Case session's page: deep link into the org, the sections.
    let page = browser
        .get(&format!("/console/sessions/{case_id_session}"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let org = app.emulator.url();
    let org = org.trim_end_matches('/');
    let case_link = format!("href=\"{org}/lightning/r/Case/{case18}/view\"");
    assert!(page.body.contains(&case_link), "{case_link}: {}", page.body);
    assert!(page.body.contains("rel=\"noopener noreferrer\""));
    for heading in ["summary", "transcript", "timeline", "outbox"] {
        assert!(
            page.body.contains(&format!("id=\"{heading}\"")),
            "{heading}"
        );
    }
    assert!(page.body.contains("broken kettle"));
    assert!(page.body.contains("My kettle broke after a week."));
    assert!(page.body.contains("case.created") || page.body.contains("accepted"));
    assert!(page.body.contains(&case_number));

    // The SMS session's page: MessagingSession link, the outbox and the inbound text.
    let page = browser.get(&format!("/console/sessions/{sms_id}")).await;
    assert_eq!(page.status, 200);
    let ms_link = format!("href=\"{org}/lightning/r/MessagingSession/{messaging_session}/view\"");
    assert!(page.body.contains(&ms_link), "{ms_link}: {}", page.body);
    assert!(page.body.contains(&sent_sid));
    assert!(page.body.contains(&received_sid));

    // Live sessions: the conversation and the replica holding its stream.
    let page = browser.get("/console/live").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&conversation), "{}", page.body);
    let live = app
        .gateway
        .state
        .store
        .live_session(&sms_id)
        .await
        .unwrap()
        .unwrap();
    let owner = live.owner.expect("a replica holds the stream");
    assert!(page.body.contains(&owner), "{owner}: {}", page.body);

    // Unmatched inbound: the stranger's text.
    let page = browser.get("/console/inbound").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&stranger_sid), "{}", page.body);
    assert!(!page.body.contains(&received_sid));

    // Salesforce: the breaker, the day's usage as the emulator reported it, the grant.
    let page = browser.get("/console/salesforce").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("id=\"breaker-state\">closed<"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("of 100000 requests used"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<section id=\"connection\">"));
    assert!(page.body.contains("client_credentials"));

    // Any unknown id is 404.
    let page = browser.get("/console/sessions/no-such-session").await;
    assert_eq!(page.status, 404);
});

// What a customer or a bot wrote renders as text: script tags, attribute breakouts and
// javascript: "links" come out escaped, and a 5,000-character word is kept whole (CSS wraps
// it).
both_databases!(hostile_transcripts_render_as_text, |db: Db| async move {
    let app = spawn_app(db).await;
    let mut browser = signed_in(&app, "viewer", "operator").await;
    let id = unique("pages-hostile");
    let long = "A".repeat(5000);
    let (status, body) = app
        .post_escalation(&json!({
            "session_id": id,
            "channel": "email",
            "customer": {"name": "<b>Mallory</b>", "email": "mallory@example.com"},
            "summary": "<script>alert(1)</script> in the summary",
            "transcript": [
                {"role": "customer", "text": "<script>alert(1)</script>", "at": "2026-11-22T10:00:00Z"},
                {"role": "customer", "text": "javascript:alert(1)", "at": "2026-11-22T10:00:10Z"},
                {"role": "bot", "text": "\"><img src=x onerror=alert(1)>", "at": "2026-11-22T10:00:20Z"},
                {"role": "customer", "text": long, "at": "2026-11-22T10:00:30Z"},
            ],
        }))
        .await;
    assert_eq!(status, 202, "{body}");
    let page = browser.get(&format!("/console/sessions/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let html = &page.body;
    assert!(!html.contains("<script>alert(1)</script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains("<b>Mallory</b>"));
    assert!(html.contains("&lt;b&gt;Mallory&lt;/b&gt;"));
    assert!(!html.contains("href=\"javascript:"));
    assert!(html.contains("javascript:alert(1)"));
    assert!(html.contains(&long));
    // No script of ours either: the page is HTML and a stylesheet.
    assert!(!html.contains("<script"));

    // A hostile search is shown escaped too.
    let page = search(&mut browser, "<script>alert(1)</script>").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script>alert(1)</script>"));
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
});

/// The id of the dead job of `session_id`, once it is dead.
async fn dead_job(app: &TestApp, session_id: &str) -> i64 {
    eventually("the job is dead", || async {
        app.gateway
            .state
            .store
            .jobs_in_state("dead")
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.session_id == session_id)
            .map(|j| j.id)
    })
    .await
}

async fn job_state(app: &TestApp, id: i64) -> String {
    app.gateway
        .state
        .store
        .job(id)
        .await
        .unwrap()
        .expect("job")
        .state
}

async fn token_count(app: &TestApp) -> usize {
    app.gateway
        .state
        .store
        .list_tokens(None, 1000)
        .await
        .unwrap()
        .len()
}

// A read-only operator sees dead jobs and tokens but no buttons, and a form they forge
// anyway is refused and changes nothing. An admin's forms need the CSRF token: without it,
// or with another, nothing happens; with it the dead job runs again and lands, a token is
// revoked (the API refuses it from then on) and a new one is shown once.
both_databases!(
    admins_retry_and_revoke_and_operators_only_read,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| c.worker.max_attempts = 1).await;
        app.emulator.set_faults(Faults {
            fail_next: 1,
            ..Faults::default()
        });
        let id = unique("pages-dlq");
        let (status, body) = app
            .post_escalation(&email_escalation(&id, "dlq@example.com", "+14155550123"))
            .await;
        assert_eq!(status, 202, "{body}");
        let job = dead_job(&app, &id).await;
        // A chat notice the customer's webhook refuses for good: a failed delivery.
        let hook = receiver(vec![410]).await;
        let refused = unique("pages-refused");
        let (status, body) = app
            .post_escalation(&json!({
                "session_id": refused,
                "channel": "chat",
                "customer": {"name": "Ann"},
                "transcript": [{"role": "customer", "text": "I need a human", "at": "2026-11-22T09:00:00Z"}],
                "reply_to": {"webhook_url": hook.url},
            }))
            .await;
        assert_eq!(status, 202, "{body}");
        eventually("the notice failed", || async {
            app.deliveries(&refused)
                .await
                .iter()
                .any(|d| d.state == "failed")
                .then_some(())
        })
        .await;
        let read_token_id = app
            .gateway
            .state
            .store
            .list_tokens(None, 100)
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.name == "test-read")
            .expect("the read token")
            .id;

        // The read-only operator.
        let mut viewer = signed_in(&app, "viewer", "operator").await;
        let jobs = viewer.get("/console/jobs").await;
        assert_eq!(jobs.status, 200);
        assert!(
            jobs.body.contains(&format!("id=\"job-{job}\"")),
            "{}",
            jobs.body
        );
        assert!(!jobs.body.contains("retry-"), "{}", jobs.body);
        let tokens = viewer.get("/console/tokens").await;
        assert_eq!(tokens.status, 200);
        assert!(tokens.body.contains("test-read"));
        assert!(!tokens.body.contains("revoke-"));
        assert!(!tokens.body.contains("create-token"));
        assert!(!tokens.body.contains("token_hash"));
        let deliveries = viewer.get("/console/deliveries").await;
        assert_eq!(deliveries.status, 200);
        assert!(
            deliveries
                .body
                .contains(&format!("href=\"/console/sessions/{refused}\"")),
            "{}",
            deliveries.body
        );
        assert!(deliveries.body.contains("410"));
        let csrf = jobs.csrf().expect("the sign-out form's token");
        for (path, form) in [
            (
                format!("/console/jobs/{job}/retry"),
                vec![("csrf", csrf.as_str())],
            ),
            (
                format!("/console/tokens/{read_token_id}/revoke"),
                vec![("csrf", csrf.as_str())],
            ),
            (
                "/console/tokens".to_string(),
                vec![
                    ("csrf", csrf.as_str()),
                    ("name", "mine"),
                    ("scope_admin", "on"),
                ],
            ),
        ] {
            let page = viewer.post_form(&path, &form).await;
            assert_eq!(page.status, 403, "{path}: {}", page.body);
        }
        assert_eq!(job_state(&app, job).await, "dead");
        assert_eq!(token_count(&app).await, 2);
        assert_eq!(
            app.get("/v1/sessions/nothing-here", Some(&app.read_token))
                .await
                .0,
            404
        );

        // The admin: no token, another sign-in's token → 403 and nothing changes.
        let mut admin = signed_in(&app, "boss", "admin").await;
        let jobs = admin.get("/console/jobs").await;
        assert!(
            jobs.body.contains(&format!("id=\"retry-{job}\"")),
            "{}",
            jobs.body
        );
        let admin_csrf = jobs.csrf().unwrap();
        assert_ne!(admin_csrf, csrf);
        for form in [
            vec![],
            vec![("csrf", "forged")],
            vec![("csrf", csrf.as_str())],
        ] {
            let page = admin
                .post_form(&format!("/console/jobs/{job}/retry"), &form)
                .await;
            assert_eq!(page.status, 403, "{form:?}");
            let page = admin
                .post_form(&format!("/console/tokens/{read_token_id}/revoke"), &form)
                .await;
            assert_eq!(page.status, 403, "{form:?}");
        }
        assert_eq!(job_state(&app, job).await, "dead");
        assert_eq!(
            app.get("/v1/sessions/nothing-here", Some(&app.read_token))
                .await
                .0,
            404
        );

        // Retry: back to the list with a notice; the job runs and the Case is made.
        let page = admin
            .post_form(
                &format!("/console/jobs/{job}/retry"),
                &[("csrf", &admin_csrf)],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(
            page.location(),
            Some(format!("/console/jobs?retried={job}").as_str())
        );
        let page = admin.get(page.location().unwrap()).await;
        assert!(page.body.contains("is queued again"), "{}", page.body);
        app.driver()
            .wait_escalated(&id, Duration::from_secs(30))
            .await
            .expect("the Case is created after the retry");
        // Retrying it again changes nothing and says so; an unknown job is 404.
        let page = admin
            .post_form(
                &format!("/console/jobs/{job}/retry"),
                &[("csrf", &admin_csrf)],
            )
            .await;
        assert_eq!(
            page.location(),
            Some(format!("/console/jobs?not_dead={job}").as_str())
        );
        let page = admin
            .post_form("/console/jobs/999999/retry", &[("csrf", &admin_csrf)])
            .await;
        assert_eq!(page.status, 404);

        // Revoke: the token is refused by the API from now on.
        let tokens = admin.get("/console/tokens").await;
        assert!(
            tokens
                .body
                .contains(&format!("id=\"revoke-{read_token_id}\""))
        );
        let page = admin
            .post_form(
                &format!("/console/tokens/{read_token_id}/revoke"),
                &[("csrf", &admin_csrf)],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        assert_eq!(
            app.get("/v1/sessions/nothing-here", Some(&app.read_token))
                .await
                .0,
            401
        );
        let tokens = admin.get(page.location().unwrap()).await;
        assert!(tokens.body.contains("is revoked"));
        assert!(
            !tokens
                .body
                .contains(&format!("id=\"revoke-{read_token_id}\""))
        );

        // Create: a bad name or no scope is explained and creates nothing.
        for form in [
            vec![
                ("csrf", admin_csrf.as_str()),
                ("name", "  "),
                ("scope_read", "on"),
            ],
            vec![
                ("csrf", admin_csrf.as_str()),
                ("name", "bad\u{1}name"),
                ("scope_read", "on"),
            ],
            vec![("csrf", admin_csrf.as_str()), ("name", "no scopes")],
        ] {
            let page = admin.post_form("/console/tokens", &form).await;
            assert_eq!(page.status, 400, "{form:?}");
            assert!(page.body.contains("role=\"alert\""));
        }
        assert_eq!(token_count(&app).await, 2);
        let page = admin
            .post_form(
                "/console/tokens",
                &[
                    ("csrf", &admin_csrf),
                    ("name", "ci reader"),
                    ("scope_read", "on"),
                ],
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.location().is_none());
        let secret = page
            .body
            .split("<code id=\"new-token\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .expect("the new token is shown")
            .to_string();
        assert!(secret.starts_with("hnd_"), "{secret}");
        assert_eq!(
            app.get("/v1/sessions/nothing-here", Some(&secret)).await.0,
            404
        );
        let tokens = admin.get("/console/tokens").await;
        assert!(tokens.body.contains("ci reader"));
        assert!(!tokens.body.contains(&secret), "shown once only");
    }
);
