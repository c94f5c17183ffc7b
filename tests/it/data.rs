//! What the gateway stores and hands on: session ids Salesforce compares
//! ignoring case, values Salesforce would refuse, NUL, duplicate JSON keys,
//! phone lookup, pagination and retention.

use std::time::Duration;

use chrono::Utc;
use gateway::store::{RetentionPolicy, job};
use handoff_tests::{Db, TestApp, both_databases, spawn_app};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::support::{escalation, unique};

/// An edit to an escalation body.
type Change = Box<dyn Fn(&mut Value)>;

/// POSTs the exact bytes (for bodies `serde_json::Value` cannot express).
async fn post_text(app: &TestApp, text: &str) -> (u16, Value) {
    app.post_raw(
        "/v1/escalations",
        Some(&app.escalate_token),
        "application/json",
        text.as_bytes().to_vec(),
    )
    .await
}

fn assert_problem(answer: &(u16, Value), status: u16, code: &str, field: Option<&str>) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
}

async fn session_status(app: &TestApp, id: &str) -> u16 {
    app.get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
        .await
        .0
}

/// The customer and Case texts of one escalation, distinct per customer.
fn customer_escalation(session_id: &str, name: &str, subject: &str) -> Value {
    let mut body = escalation(session_id, 3);
    body["customer"] = json!({"name": name, "email": format!("{}@example.com", name.to_lowercase().replace(' ', "."))});
    body["subject"] = json!(subject);
    body
}

// Defect 1. The emulator, like Salesforce, matches the external-id upsert
// without regard to case: `Mix-A` then `mix-a` were both accepted and the
// second customer's name, subject and transcript were written onto the first
// customer's Case. A unique index on the case-folded id now refuses the second
// with 409 `session_id_conflict` (saying nothing about the other session), and
// the exact same id keeps its replay semantics.
both_databases!(
    session_ids_differing_only_in_case_never_share_a_case,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let upper = format!("Mix-A-{}", uuid::Uuid::new_v4().simple());
        let lower = upper.to_lowercase();
        let first = customer_escalation(&upper, "Ann First", "First customer's parcel");
        let second = customer_escalation(&lower, "Bob Second", "Second customer's refund");

        assert_eq!(app.post_escalation(&first).await.0, 202);
        let refused = app.post_escalation(&second).await;
        assert_problem(&refused, 409, "session_id_conflict", Some("session_id"));
        let text = refused.1.to_string();
        for private in ["Ann", "First", "parcel", upper.as_str()] {
            assert!(!text.contains(private), "409 reveals {private}: {text}");
        }
        assert_eq!(session_status(&app, &lower).await, 404, "nothing stored");
        // The exact id is still the natural idempotency key.
        assert_eq!(app.post_escalation(&first).await.0, 202);

        app.driver()
            .wait_escalated(&upper, Duration::from_secs(30))
            .await
            .expect("Case created");
        let cases = app
            .soql(&format!(
                "SELECT SuppliedName, Subject FROM Case WHERE Handoff_Session_Id__c = '{lower}'"
            ))
            .await;
        assert_eq!(cases.len(), 1, "{cases:?}");
        assert_eq!(cases[0]["SuppliedName"], "Ann First");
        assert_eq!(cases[0]["Subject"], "First customer's parcel");
        let all = app.soql("SELECT Id FROM Case").await;
        assert_eq!(all.len(), 1);
    }
);

// Defect 1, raced: case variants of one id sent at once (as two replicas would
// take them) get exactly one 202; the database index decides, not a read.
both_databases!(
    case_variants_sent_at_once_get_one_session,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let base = format!("race-{}", uuid::Uuid::new_v4().simple());
        let variants: Vec<String> = (0..8)
            .map(|i| {
                base.chars()
                    .enumerate()
                    .map(|(j, c)| {
                        if (i >> (j % 3)) & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect()
            })
            .collect();
        let bodies = variants
            .iter()
            .map(|id| customer_escalation(id, &format!("Customer {id}"), "Parcel"))
            .collect();
        let statuses = app.post_concurrently(bodies).await;
        assert_eq!(
            statuses.iter().filter(|s| **s == 202).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 409).count(),
            7,
            "{statuses:?}"
        );
        let mut found = 0;
        for id in &variants {
            if session_status(&app, id).await == 200 {
                found += 1;
                app.driver()
                    .wait_escalated(id, Duration::from_secs(30))
                    .await
                    .expect("Case created");
            }
        }
        assert_eq!(found, 1);
        assert_eq!(app.soql("SELECT Id FROM Case").await.len(), 1);
    }
);

// Defect 3. `.` and `..` were accepted (202) and then dead-lettered: as an
// external id in the URL path they are dot segments. They are refused at accept.
both_databases!(dot_session_ids_are_refused, |db: Db| async move {
    let app = spawn_app(db).await;
    for id in [".", "..", "order.json", "ticket.XML"] {
        let answer = app.post_escalation(&escalation(id, 2)).await;
        assert_problem(&answer, 400, "invalid_session_id", Some("session_id"));
    }
    assert_eq!(
        app.gateway
            .state
            .store
            .jobs_page("queued", None, 10)
            .await
            .expect("jobs")
            .len(),
        0,
        "nothing queued"
    );
});

// Defect 3. A valid address Salesforce's Web Email field refuses (a non-ASCII
// local part, or longer than its 80 characters) was accepted and then the job
// died (or, cut to 80, a wrong address was written). Now the Case is written
// without `SuppliedEmail`, the full address is the first line of the
// Description, and a `case.field_omitted` event names the field and the reason
// (never the address).
both_databases!(
    emails_salesforce_refuses_are_carried_in_the_description,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let long = format!("{}@{}.example.com", "a".repeat(60), "b".repeat(30));
        for (address, reason) in [
            ("jürgen.müller@example.de", "not_accepted_by_salesforce"),
            (long.as_str(), "too_long"),
        ] {
            let id = unique("email");
            let mut body = escalation(&id, 3);
            body["customer"]["email"] = json!(address);
            let (status, answer) = app.post_escalation(&body).await;
            assert_eq!(status, 202, "{answer}");
            let session = app
                .driver()
                .wait_escalated(&id, Duration::from_secs(30))
                .await
                .expect("the Case is written, the job is not dead");
            let case_id = session.salesforce_case_id.expect("case id");
            let cases = app
                .soql(&format!(
                    "SELECT SuppliedEmail, Description FROM Case WHERE Id = '{case_id}'"
                ))
                .await;
            assert_eq!(cases[0]["SuppliedEmail"], Value::Null);
            let description = cases[0]["Description"].as_str().expect("description");
            assert!(
                description.lines().next().unwrap().ends_with(address),
                "{description}"
            );
            assert!(description.contains(body["summary"].as_str().unwrap()));

            let (_, events) = app
                .get(&format!("/v1/sessions/{id}/events"), Some(&app.read_token))
                .await;
            let omitted: Vec<&Value> = events["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "case.field_omitted")
                .collect();
            assert_eq!(omitted.len(), 1, "{events}");
            assert_eq!(omitted[0]["data"]["field"], "SuppliedEmail");
            assert_eq!(omitted[0]["data"]["reason"], reason);
            assert!(
                !events
                    .to_string()
                    .contains(address.split('@').next().unwrap())
            );
        }
        assert!(
            app.gateway
                .state
                .store
                .jobs_page("dead", None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
);

// Defect 4. A NUL character in `customer.name` or `subject` reached
// PostgreSQL, which cannot store it in text: 500. Every string in the body
// (values and keys, at any depth) is now checked at accept: 400 `invalid_text`
// naming the field, on both databases, and nothing is stored.
both_databases!(
    nul_characters_are_refused_naming_the_field,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("nul");
        let cases: Vec<(&str, Change)> = vec![
            (
                "customer.name",
                Box::new(|b| b["customer"]["name"] = json!("Ann\u{0}Example")),
            ),
            ("subject", Box::new(|b| b["subject"] = json!("late\u{0}"))),
            ("summary", Box::new(|b| b["summary"] = json!("\u{0}"))),
            (
                "transcript[1].text",
                Box::new(|b| b["transcript"][1]["text"] = json!("a\u{0}b")),
            ),
            (
                "attributes.tier",
                Box::new(|b| b["attributes"] = json!({"tier": "gold\u{0}"})),
            ),
            (
                "attributes.ti\u{0}er",
                Box::new(|b| b["attributes"] = json!({"ti\u{0}er": "gold"})),
            ),
            (
                "reply_to.address",
                Box::new(|b| b["reply_to"] = json!({"address": "x\u{0}"})),
            ),
        ];
        for (field, change) in cases {
            let mut body = escalation(&id, 3);
            change(&mut body);
            let answer = app.post_escalation(&body).await;
            assert_problem(&answer, 400, "invalid_text", Some(field));
        }
        // Encoded inside a raw email (base64 of "Hello, my parcel\0is late").
        let mut body = escalation(&id, 3);
        body.as_object_mut().unwrap().remove("transcript");
        body["raw_email"] = json!([
            "From: Ann <ann@example.com>\r\nTo: support@shop.example\r\nSubject: Parcel\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\nMessage-ID: <nul@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8sIG15IHBhcmNlbABpcyBsYXRl\r\n"
        ]);
        let answer = app.post_escalation(&body).await;
        assert_problem(&answer, 400, "invalid_text", Some("raw_email"));
        assert_eq!(session_status(&app, &id).await, 404);
    }
);

// Defect 5. With duplicate keys the last one silently won, so a body could say
// two things at once (and the idempotency hash saw only one). Any duplicate,
// at any depth, is now 400 `duplicate_key` naming its JSON path; deeply nested
// input is a 400, not a stack overflow.
both_databases!(
    duplicate_keys_are_refused_with_their_path,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let id = unique("dup");
        let cases = [
            (
                format!(
                    r#"{{"session_id":"{id}","channel":"email","session_id":"other","transcript":[{{"role":"customer","text":"hi"}}]}}"#
                ),
                "session_id",
            ),
            (
                format!(
                    r#"{{"session_id":"{id}","channel":"email","customer":{{"email":"a@example.com","email":"b@example.com"}},"transcript":[{{"role":"customer","text":"hi"}}]}}"#
                ),
                "customer.email",
            ),
            (
                format!(
                    r#"{{"session_id":"{id}","channel":"email","transcript":[{{"role":"customer","text":"hi"}},{{"role":"bot","text":"a","text":"b"}}]}}"#
                ),
                "transcript[1].text",
            ),
        ];
        for (text, field) in &cases {
            assert_problem(
                &post_text(&app, text).await,
                400,
                "duplicate_key",
                Some(field),
            );
        }
        let deep = format!(
            r#"{{"session_id":"{id}","attributes":{}{}}}"#,
            "[".repeat(200_000),
            "]".repeat(200_000)
        );
        assert_problem(&post_text(&app, &deep).await, 400, "invalid_json", None);
        assert_eq!(session_status(&app, &id).await, 404);
        // The gateway is still there.
        assert_eq!(app.get("/healthz", None).await.0, 200);
    }
);

// Defect 6. A phone stored as `+15550107788` was not found by
// `+1 (555) 010-7788`: lookups compared the text. Phones are now stored and
// looked up in E.164 (what was sent is kept for display); two different
// numbers never match; a number with no country code is kept and found only
// by its exact text. Email lookups ignore case (local part too).
both_databases!(
    phone_and_email_lookup_ignore_formatting,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let sent = [
            ("+15550107788", unique("ph1")),
            ("+1 (555) 010-7789", unique("ph2")),
            ("555 0107", unique("ph3")),
        ];
        for (phone, id) in &sent {
            let mut body = escalation(id, 2);
            body["customer"]["phone"] = json!(phone);
            assert_eq!(app.post_escalation(&body).await.0, 202);
        }
        let find = |any: &str| {
            let any = any.to_string();
            let app = &app;
            async move {
                let query: String = url_encode(&any);
                let (status, found) = app
                    .get(&format!("/v1/sessions?id={query}"), Some(&app.read_token))
                    .await;
                assert_eq!(status, 200, "{found}");
                let mut ids: Vec<String> = found["sessions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s["id"].as_str().unwrap().to_string())
                    .collect();
                ids.sort();
                ids
            }
        };
        for any in [
            "+15550107788",
            "+1 (555) 010-7788",
            "+1.555.010.7788",
            "+1 555 010 7788",
        ] {
            assert_eq!(find(any).await, vec![sent[0].1.clone()], "{any}");
        }
        for any in ["+15550107789", "+1 (555) 010-7789"] {
            assert_eq!(find(any).await, vec![sent[1].1.clone()], "{any}");
        }
        assert_eq!(find("555 0107").await, vec![sent[2].1.clone()]);
        assert!(find("+1 555 0107").await.is_empty());
        let (_, view) = app
            .get(
                &format!("/v1/sessions/{}", sent[1].1),
                Some(&app.read_token),
            )
            .await;
        assert_eq!(
            view["customer"]["phone"], "+1 (555) 010-7789",
            "kept as sent"
        );

        let mut emails = find("ann.example@example.com").await;
        let mut upper = find("ANN.EXAMPLE@EXAMPLE.COM").await;
        emails.sort();
        upper.sort();
        assert_eq!(emails.len(), 3);
        assert_eq!(emails, upper);
    }
);

/// Percent-encodes a query value (every byte but letters and digits).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Pages of a list: every row once, in order, then `next_cursor: null`.
async fn collect_pages(app: &TestApp, path: &str, key: &str, token: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    for _ in 0..100 {
        let url = match &cursor {
            None => format!("{path}{sep}limit=2"),
            Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
        };
        let (status, page) = app.get(&url, Some(token)).await;
        assert_eq!(status, 200, "{page}");
        let items = page[key].as_array().expect("items");
        assert!(items.len() <= 2);
        rows.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert!(page["next_cursor"].is_null());
                return rows;
            }
        }
    }
    panic!("pagination did not end");
}

// Defect 11. `GET /v1/jobs?state=done` returned every job ever, and the other
// lists had no bound either. Every list now pages with `limit` and an opaque
// cursor in a stable order; a bad cursor or limit is a 400.
both_databases!(every_list_is_paginated, |db: Db| async move {
    let app = spawn_app(db).await;
    let admin = app
        .gateway
        .state
        .store
        .create_token(
            "admin",
            &[gateway::store::Scope::Admin, gateway::store::Scope::Read],
        )
        .await
        .expect("token")
        .secret;
    let ids: Vec<String> = (0..5).map(|i| unique(&format!("page{i}"))).collect();
    for id in &ids {
        assert_eq!(app.post_escalation(&escalation(id, 2)).await.0, 202);
    }
    for id in &ids {
        app.driver()
            .wait_escalated(id, Duration::from_secs(30))
            .await
            .expect("Case created");
    }

    let jobs = collect_pages(&app, "/v1/jobs?state=done", "jobs", &admin).await;
    let job_ids: Vec<i64> = jobs.iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert_eq!(job_ids.len(), 5);
    assert!(job_ids.windows(2).all(|w| w[0] < w[1]), "{job_ids:?}");

    let sessions = collect_pages(
        &app,
        "/v1/sessions?id=ann.example%40example.com",
        "sessions",
        &admin,
    )
    .await;
    let mut found: Vec<&str> = sessions.iter().map(|s| s["id"].as_str().unwrap()).collect();
    let created: Vec<&str> = sessions
        .iter()
        .map(|s| s["created_at"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    found.sort();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(found, want);

    let events = collect_pages(
        &app,
        &format!("/v1/sessions/{}/events", ids[0]),
        "events",
        &admin,
    )
    .await;
    let all = app.event_kinds(&ids[0]).await;
    let paged: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(paged, all);

    let (status, unpaged) = app.get("/v1/jobs?state=done&limit=500", Some(&admin)).await;
    assert_eq!(status, 200);
    assert!(unpaged["next_cursor"].is_null());
    for (path, field) in [
        ("/v1/jobs?limit=0", "limit"),
        ("/v1/jobs?limit=501", "limit"),
        ("/v1/jobs?limit=x", "limit"),
        ("/v1/jobs?cursor=bm9wZQ", "cursor"),
        ("/v1/sessions?id=x&cursor=%%%", "cursor"),
        ("/v1/sessions?id=x&limit=-1", "limit"),
    ] {
        let answer = app.get(path, Some(&admin)).await;
        let code = if field == "limit" {
            "invalid_limit"
        } else {
            "invalid_cursor"
        };
        assert_problem(&answer, 400, code, Some(field));
    }
    // A cursor of one list is not a cursor of another.
    let (_, first) = app.get("/v1/jobs?state=done&limit=1", Some(&admin)).await;
    let job_cursor = first["next_cursor"].as_str().expect("more jobs");
    let answer = app
        .get(
            &format!("/v1/sessions/{}/events?cursor={job_cursor}", ids[0]),
            Some(&admin),
        )
        .await;
    assert_problem(&answer, 400, "invalid_cursor", Some("cursor"));
});

// Defect 11. Transcripts, names, emails and phones were kept forever. The
// retention sweep (with an injected "now") erases payloads and customer data
// first, events' data next, the events and jobs rows last, and keeps the
// session row; a session whose job is not done (here: dead, which an operator
// may retry) keeps everything.
both_databases!(
    retention_erases_in_stages_and_spares_unfinished_work,
    |db: Db| async move {
        let app = spawn_app(db).await;
        let store = &app.gateway.state.store;
        let (done, dead) = (unique("keep-shape"), unique("dead-job"));
        for id in [&done, &dead] {
            assert_eq!(app.post_escalation(&escalation(id, 4)).await.0, 202);
            app.driver()
                .wait_escalated(id, Duration::from_secs(30))
                .await
                .expect("Case created");
        }
        // An operator has not resolved this one yet.
        let dead_job = job::Entity::find()
            .filter(job::Column::SessionId.eq(dead.as_str()))
            .one(store.connection())
            .await
            .unwrap()
            .unwrap();
        let mut dead_job: job::ActiveModel = dead_job.into();
        dead_job.state = Set("dead".into());
        dead_job.update(store.connection()).await.unwrap();

        let policy = RetentionPolicy {
            erase_payload_after: chrono::Duration::days(30),
            erase_event_data_after: chrono::Duration::days(90),
            delete_timeline_after: Some(chrono::Duration::days(365)),
        };
        let now = Utc::now();
        let sweep = |days: i64| store.sweep_retention(now + chrono::Duration::days(days), policy);

        assert_eq!(
            sweep(29).await.unwrap(),
            Default::default(),
            "nothing is due yet"
        );

        let report = sweep(31).await.unwrap();
        assert_eq!(report.sessions_erased, 1);
        let row = store.session(&done).await.unwrap().unwrap();
        assert_eq!(row.payload, "");
        assert_eq!(
            (row.customer_name, row.customer_email, row.customer_phone),
            (None, None, None)
        );
        assert_eq!(row.subject, None);
        assert!(row.salesforce_case_id.is_some(), "ids stay");
        let found = app.driver().find("ann.example@example.com").await.unwrap();
        assert_eq!(
            found.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            vec![dead.as_str()]
        );
        assert_eq!(sweep(31).await.unwrap(), Default::default(), "idempotent");
        let events = store.events(&done).await.unwrap();
        assert!(
            events.iter().any(|e| e.data != "{}"),
            "event data outlives payloads"
        );

        let report = sweep(91).await.unwrap();
        let with_data = events.iter().filter(|e| e.data != "{}").count();
        assert_eq!(report.events_erased as usize, with_data);
        assert!(
            store
                .events(&done)
                .await
                .unwrap()
                .iter()
                .all(|e| e.data == "{}")
        );
        assert_eq!(
            app.event_kinds(&done).await.len(),
            events.len(),
            "the shape stays"
        );

        let report = sweep(366).await.unwrap();
        assert_eq!(report.timelines_deleted, 1);
        assert!(store.events(&done).await.unwrap().is_empty());
        assert_eq!(
            session_status(&app, &done).await,
            200,
            "the session row stays"
        );
        // Its id stays taken: a new customer cannot reuse it onto the old Case.
        let reuse = app
            .post_escalation(&customer_escalation(&done.to_uppercase(), "Eve", "x"))
            .await;
        assert_problem(&reuse, 409, "session_id_conflict", Some("session_id"));

        let kept = store.session(&dead).await.unwrap().unwrap();
        assert_ne!(
            kept.payload, "",
            "a dead job's payload is kept for its retry"
        );
        assert!(kept.customer_email.is_some());
        assert!(
            store
                .events(&dead)
                .await
                .unwrap()
                .iter()
                .any(|e| e.data != "{}")
        );
    }
);

// Defects 1 and 6, for data already stored: the migration fills `id_folded`
// and `customer_phone_e164` for existing rows. Ids that already collide ignoring
// case (accepted before the fix) keep working: the oldest gets the plain folded
// id, the others a value no new id can take; phones written in any format
// become findable by any other format of the same number.
both_databases!(
    migration_backfills_folded_ids_and_e164_phones,
    |db: Db| async move {
        use migrations::MigratorTrait;
        use sea_orm::{ConnectionTrait, Statement};

        let (url, _dir) = handoff_tests::fresh_database(db).await;
        let conn = sea_orm::Database::connect(&url).await.expect("connect");
        migrations::Migrator::up(&conn, Some(5))
            .await
            .expect("migrations before 000008");
        let backend = conn.get_database_backend();
        let insert = match backend {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO sessions (id, channel, route, status, customer_phone, language, priority, request_hash, payload, comments_written, salesforce_calls, created_at, updated_at) \
                 VALUES ($1, 'email', 'case', 'escalated', $2, 'en', 'medium', 'h', '{}', 0, 0, $3, $3)"
            }
            _ => {
                "INSERT INTO sessions (id, channel, route, status, customer_phone, language, priority, request_hash, payload, comments_written, salesforce_calls, created_at, updated_at) \
                 VALUES (?1, 'email', 'case', 'escalated', ?2, 'en', 'medium', 'h', '{}', 0, 0, ?3, ?3)"
            }
        };
        let t0 = Utc::now() - chrono::Duration::days(3);
        for (i, (id, phone)) in [
            ("Dup-A", Some("+15550107788")),
            ("dup-a", Some("+1 (555) 010-7788")),
            ("DUP-a", None),
            ("solo", Some("5550107788")),
        ]
        .into_iter()
        .enumerate()
        {
            conn.execute_raw(Statement::from_sql_and_values(
                backend,
                insert,
                [
                    id.into(),
                    phone.map(str::to_string).into(),
                    (t0 + chrono::Duration::minutes(i as i64)).into(),
                ],
            ))
            .await
            .expect("insert");
        }
        conn.close().await.expect("close");

        let store = gateway::store::Store::open(&url).await.expect("migrates");
        let folded = |id: &'static str| {
            let store = store.clone();
            async move { store.session(id).await.unwrap().unwrap().id_folded }
        };
        assert_eq!(folded("Dup-A").await.as_deref(), Some("dup-a"));
        assert_eq!(folded("dup-a").await.as_deref(), Some("dup-a#dup-a"));
        assert_eq!(folded("DUP-a").await.as_deref(), Some("dup-a#DUP-a"));
        assert_eq!(folded("solo").await.as_deref(), Some("solo"));

        let mut found: Vec<String> = store
            .find_sessions("+1 555 010 7788")
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        found.sort();
        assert_eq!(found, ["Dup-A", "dup-a"]);
        let solo = store.session("solo").await.unwrap().unwrap();
        assert_eq!(
            solo.customer_phone_e164, None,
            "no country code: display only"
        );
        assert_eq!(store.find_sessions("5550107788").await.unwrap().len(), 1);
    }
);

#[test]
fn retention_config_is_validated() {
    let mut config = gateway::Config::defaults();
    config.validate().expect("defaults are valid");
    let policy = config.retention.policy();
    assert_eq!(policy.erase_payload_after, chrono::Duration::days(30));
    assert_eq!(policy.erase_event_data_after, chrono::Duration::days(90));
    assert_eq!(
        policy.delete_timeline_after,
        Some(chrono::Duration::days(365))
    );

    config.retention.delete_timeline_after_days = 0;
    config.validate().expect("0 keeps the timeline");
    assert_eq!(config.retention.policy().delete_timeline_after, None);
    config.retention.delete_timeline_after_days = 60;
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("delete_timeline_after_days"), "{error}");
    config.retention.delete_timeline_after_days = 365;
    config.retention.erase_payload_after_days = 0;
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("erase_payload_after_days"), "{error}");
}

// Rep replies and inbound emails hold the rep's and the customer's words: the
// sweep erases them with the payloads (30 days), deletes the records with the
// timeline, and removes done rep-reply sync jobs, which would otherwise add a
// row per reply for ever.
both_databases!(
    retention_covers_rep_replies_and_inbound_email,
    |db: Db| async move {
        use gateway::store::{inbound_email, salesforce_event};
        let app = spawn_app(db).await;
        let store = &app.gateway.state.store;
        let t = Utc::now().timestamp_millis();
        salesforce_event::ActiveModel {
            event_id: Set("00a5g0000000001AAA".into()),
            source: Set("push".into()),
            kind: Set("case_comment.created".into()),
            case_id: Set("5005g0000000001AAA".into()),
            session_id: Set(None),
            outcome: Set("ignored_unknown_case".into()),
            payload: Set(r#"{"body":{"text":"the rep's words"}}"#.into()),
            received_at: Set(t),
            updated_at: Set(t),
        }
        .insert(store.connection())
        .await
        .unwrap();
        inbound_email::ActiveModel {
            id: Set("ib-1".into()),
            state: Set("unmatched".into()),
            session_id: Set(None),
            message_id: Set(Some("m1@example.com".into())),
            from_address: Set(Some("ann@example.com".into())),
            subject: Set(Some("Re: parcel".into())),
            size: Set(100),
            reason: Set(None),
            raw: Set(Some("From: ann@example.com\r\n\r\nhello".into())),
            received_at: Set(t),
            updated_at: Set(t),
        }
        .insert(store.connection())
        .await
        .unwrap();
        job::ActiveModel {
            kind: Set("sync_case_event".into()),
            session_id: Set("_case_events".into()),
            state: Set("done".into()),
            attempts: Set(1),
            max_attempts: Set(5),
            run_at: Set(t),
            created_at: Set(t),
            updated_at: Set(t),
            payload: Set(Some(
                r#"{"kind":"sync_case_event","event_id":"00a5g0000000001AAA"}"#.into(),
            )),
            ..Default::default()
        }
        .insert(store.connection())
        .await
        .unwrap();
        let policy = RetentionPolicy {
            erase_payload_after: chrono::Duration::days(30),
            erase_event_data_after: chrono::Duration::days(90),
            delete_timeline_after: Some(chrono::Duration::days(365)),
        };
        let now = Utc::now();
        let sweep = |days: i64| store.sweep_retention(now + chrono::Duration::days(days), policy);
        let event = || salesforce_event::Entity::find().one(store.connection());
        let email = || inbound_email::Entity::find().one(store.connection());
        let sync_jobs = || {
            job::Entity::find()
                .filter(job::Column::SessionId.eq("_case_events"))
                .all(store.connection())
        };

        sweep(29).await.unwrap();
        assert_ne!(event().await.unwrap().unwrap().payload, "{}", "not due yet");
        assert!(email().await.unwrap().unwrap().raw.is_some());

        sweep(31).await.unwrap();
        assert_eq!(event().await.unwrap().unwrap().payload, "{}");
        let kept = email().await.unwrap().unwrap();
        assert_eq!(
            (kept.raw, kept.from_address, kept.subject),
            (None, None, None)
        );
        assert_eq!(
            kept.message_id.as_deref(),
            Some("m1@example.com"),
            "the dedupe key stays"
        );
        assert_eq!(
            sync_jobs().await.unwrap().len(),
            1,
            "sync jobs go at 90 days"
        );

        sweep(91).await.unwrap();
        assert!(sync_jobs().await.unwrap().is_empty());

        sweep(366).await.unwrap();
        assert!(event().await.unwrap().is_none());
        assert!(email().await.unwrap().is_none());
    }
);
