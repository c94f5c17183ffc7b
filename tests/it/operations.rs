//! Operators: the dead-letter queue, retries, readiness, metrics, graceful stop.

use std::time::{Duration, Instant};

use gateway::store::Scope;
use handoff_tests::{Db, both_databases, spawn_app_with};
use sf_emulator::Faults;

use crate::support::{escalation, unique};

both_databases!(
    dead_jobs_are_listed_and_retried_by_an_admin,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| c.worker.max_attempts = 1).await;
        let admin = app
            .gateway
            .state
            .store
            .create_token("ops", &[Scope::Admin])
            .await
            .unwrap()
            .secret;
        let id = unique("dlq");
        app.emulator.set_faults(Faults {
            fail_next: 1,
            ..Faults::default()
        });
        assert_eq!(app.post_escalation(&escalation(&id, 5)).await.0, 202);

        // One attempt allowed, and it met a 503: the job is dead, the session failed.
        let deadline = Instant::now() + Duration::from_secs(30);
        let job = loop {
            let (status, body) = app.get("/v1/jobs?state=dead", Some(&admin)).await;
            assert_eq!(status, 200, "{body}");
            if let Some(job) = body["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["session_id"] == id.as_str())
            {
                break job.clone();
            }
            assert!(Instant::now() < deadline, "the job never died");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            job["last_error"]
                .as_str()
                .unwrap()
                .contains("SERVER_UNAVAILABLE"),
            "{job}"
        );
        let (_, session) = app
            .get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
            .await;
        assert_eq!(session["status"], "failed");
        assert!(app.event_kinds(&id).await.contains(&"job.dead".to_string()));

        // Only admins see or retry jobs.
        assert_eq!(
            app.get("/v1/jobs?state=dead", Some(&app.escalate_token))
                .await
                .0,
            403
        );
        let retry_path = format!("/v1/jobs/{}/retry", job["id"]);
        let (status, _) = app
            .post_raw(
                &retry_path,
                Some(&app.escalate_token),
                "application/json",
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(status, 403);
        let (status, body) = app.get("/v1/jobs?state=stuck", Some(&admin)).await;
        assert_eq!((status, body["field"].as_str()), (400, Some("state")));

        // Retry: it runs again and lands.
        let (status, body) = app
            .post_raw(
                &retry_path,
                Some(&admin),
                "application/json",
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["state"], "queued");
        let session = app
            .driver()
            .wait_escalated(&id, Duration::from_secs(30))
            .await
            .expect("Case created after retry");
        assert!(session.salesforce_case_id.is_some());
        assert!(
            app.event_kinds(&id)
                .await
                .contains(&"job.retried".to_string())
        );

        // A job that is not dead cannot be retried; an unknown one is 404.
        let (status, body) = app
            .post_raw(
                &retry_path,
                Some(&admin),
                "application/json",
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("job_not_dead")),
            "{body}"
        );
        let (status, _) = app
            .post_raw(
                "/v1/jobs/999999/retry",
                Some(&admin),
                "application/json",
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(status, 404);
    }
);

both_databases!(
    a_payload_that_no_longer_parses_is_dead_lettered,
    |db: Db| async move {
        use sea_orm::ConnectionTrait;
        // The session is written with its damaged payload first and its job only
        // after, so the worker can never see the job with a good payload (an
        // earlier version damaged an accepted session's row and raced the worker).
        let app = spawn_app_with(db, |c| c.worker.poll_interval_ms = 60_000).await;
        let id = unique("rot");
        let store = &app.gateway.state.store;
        store
            .connection()
            .execute_unprepared(&format!(
                "INSERT INTO sessions (id, channel, route, status, language, priority, request_hash, \
                 payload, comments_written, salesforce_calls, created_at, updated_at, id_folded) \
                 VALUES ('{id}', 'email', 'case', 'accepted', 'en', 'medium', 'x', \
                 '{{\"not\": \"a payload\"}}', 0, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '{id}')"
            ))
            .await
            .unwrap();
        store
            .connection()
            .execute_unprepared(&format!(
                "INSERT INTO jobs (kind, session_id, state, attempts, max_attempts, run_at, created_at, updated_at) \
                 VALUES ('create_case', '{id}', 'queued', 0, 5, 0, 0, 0)"
            ))
            .await
            .unwrap();
        app.gateway.state.wake.notify_waiters();

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let dead = store.jobs_in_state("dead").await.unwrap();
            if let Some(job) = dead.iter().find(|j| j.session_id == id) {
                assert_eq!(job.attempts, 1, "not retried");
                assert!(
                    job.last_error
                        .as_deref()
                        .unwrap()
                        .contains("no longer parses")
                );
                break;
            }
            assert!(Instant::now() < deadline, "the job was not dead-lettered");
            app.gateway.state.wake.notify_waiters();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            app.emulator.stats().api_calls,
            0,
            "nothing was sent to Salesforce"
        );
    }
);

both_databases!(
    readiness_and_metrics_show_the_breaker,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| {
            c.salesforce.breaker_failure_threshold = 2;
            c.salesforce.breaker_open_secs = 30;
        })
        .await;
        let (status, ready) = app.get("/readyz", None).await;
        assert_eq!(status, 200);
        assert_eq!(ready["salesforce"]["state"], "closed");

        app.emulator.set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        });
        for i in 0..3 {
            assert_eq!(
                app.post_escalation(&escalation(&unique(&format!("brk{i}")), 2))
                    .await
                    .0,
                202
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, ready) = app.get("/readyz", None).await;
            if ready["salesforce"]["state"] == "open" {
                assert_eq!(ready["salesforce"]["reason"], "unavailable");
                break;
            }
            assert!(Instant::now() < deadline, "breaker never opened: {ready}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let metrics = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let value = |name: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
                .unwrap_or_else(|| panic!("no {name} in {metrics}"))
        };
        assert_eq!(
            value("handoff_salesforce_breaker_state{state=\"open\"}"),
            1.0
        );
        assert_eq!(value("handoff_salesforce_breaker_opened_total"), 1.0);
        // Two failures open it; the other two jobs may each have had a call in flight then.
        let calls = value("handoff_salesforce_api_calls_total");
        assert!((2.0..=4.0).contains(&calls), "{calls} calls");
        // Nothing is lost or given up on while the breaker is open.
        assert_eq!(value("handoff_jobs{state=\"dead\"}"), 0.0);
        assert_eq!(value("handoff_jobs{state=\"done\"}"), 0.0);
        assert_eq!(
            value("handoff_jobs{state=\"queued\"}") + value("handoff_jobs{state=\"running\"}"),
            3.0
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_finishes_the_job_in_hand() {
    let app = spawn_app_with(Db::Sqlite, |_| {}).await;
    let id = unique("stop");
    // Salesforce is slow: the job is mid-call when the stop comes.
    app.emulator.set_faults(Faults {
        latency_ms: 1_500,
        ..Faults::default()
    });
    assert_eq!(app.post_escalation(&escalation(&id, 4)).await.0, 202);
    let store = app.gateway.state.store.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.jobs_in_state("running").await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the job was never claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Keep the emulator alive; stop only the gateway.
    let handoff_tests::TestApp {
        gateway,
        emulator,
        dir: _dir,
        ..
    } = app;
    gateway.stop().await;
    let jobs = store.jobs_in_state("done").await.unwrap();
    assert!(
        jobs.iter().any(|j| j.session_id == id),
        "the in-flight job finished before the stop returned"
    );
    let session = store.session(&id).await.unwrap().unwrap();
    assert_eq!(session.status, "escalated");
    assert_eq!(emulator.records("Case").len(), 1);
}

/// PostgreSQL only: refusing connections to one database is something a test can
/// do to a real server and undo a moment later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_problems_then_recovers() {
    use sea_orm::ConnectionTrait;
    let Some(admin_url) = handoff_tests::postgres_admin_url() else {
        return;
    };
    let app = handoff_tests::spawn_app(Db::Postgres).await;
    let db_name = app
        .config
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
    let body = escalation(&unique("dbdown"), 3);

    admin
        .execute_unprepared(&format!("ALTER DATABASE {db_name} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db_name}'"
        ))
        .await
        .unwrap();
    let (status, problem) = app.post_escalation(&body).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "unavailable");
    assert_eq!(
        problem["detail"], "service temporarily unavailable",
        "no internals leak"
    );
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, 503);

    admin
        .execute_unprepared(&format!("ALTER DATABASE {db_name} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = app.post_escalation(&body).await;
        if status == 202 {
            break;
        }
        assert_eq!(status, 503);
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let id = body["session_id"].as_str().unwrap();
    app.driver()
        .wait_escalated(id, Duration::from_secs(30))
        .await
        .expect("Case created after the database came back");
}
