//! Salesforce down or out of API calls: escalations are still accepted, the
//! gateway probes at most once per interval, and everything drains afterwards.

use std::time::{Duration, Instant};

use handoff_tests::{Db, TestApp, both_databases, spawn_app_with};
use sf_emulator::Faults;

use crate::support::{escalation, unique};

/// Waits until every session has its Case, then checks one Case each and no dead job.
async fn assert_all_drained(app: &TestApp, ids: &[String]) {
    let driver = app.driver();
    for id in ids {
        driver
            .wait_escalated(id, Duration::from_secs(60))
            .await
            .expect("drained after the outage");
    }
    let cases = app.soql("SELECT Handoff_Session_Id__c FROM Case").await;
    assert_eq!(cases.len(), ids.len(), "one Case per escalation");
    let dead = app.gateway.state.store.jobs_in_state("dead").await.unwrap();
    assert!(dead.is_empty(), "no work given up: {dead:?}");
}

fn rejected(app: &TestApp, code: &str) -> u64 {
    app.emulator
        .stats()
        .rejected
        .get(code)
        .copied()
        .unwrap_or(0)
}

/// Salesforce attempts the dispatcher may have in flight at once.
fn in_flight(app: &handoff_tests::TestApp) -> u64 {
    (app.config.salesforce.max_concurrency
        * gateway::escalation::worker::ATTEMPTS_PER_SALESFORCE_SLOT) as u64
}

both_databases!(
    an_outage_is_probed_gently_and_drains_after,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| {
            c.salesforce.breaker_failure_threshold = 3;
            c.salesforce.breaker_open_secs = 1;
        })
        .await;
        app.emulator.set_faults(Faults {
            error_rate: 1.0,
            ..Faults::default()
        });
        let outage = Instant::now();
        let mut ids = Vec::new();
        for i in 0..20 {
            let id = unique(&format!("down{i}"));
            let (status, body) = app.post_escalation(&escalation(&id, 8)).await;
            assert_eq!(status, 202, "accepted while Salesforce is down: {body}");
            ids.push(id);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        while outage.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seconds = outage.elapsed().as_secs_f64();
        let failed_calls = rejected(&app, "SERVER_UNAVAILABLE");
        app.emulator.set_faults(Faults::default());

        // Threshold failures (plus attempts already in flight), then at most one
        // probe per open interval.
        let concurrency = in_flight(&app);
        let bound = 3 + (concurrency - 1) + seconds.ceil() as u64 + 1;
        assert!(
            failed_calls >= 3,
            "the breaker opened only after failures: {failed_calls}"
        );
        assert!(
            failed_calls <= bound,
            "{failed_calls} calls in a {seconds:.1}s outage (bound {bound})"
        );
        assert_all_drained(&app, &ids).await;
    }
);

both_databases!(
    the_daily_limit_pauses_all_work_without_failing_it,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| {
            c.salesforce.rate_limit_pause_secs = 1;
            c.worker.max_attempts = 2;
        })
        .await;
        // Every call answers 403 REQUEST_LIMIT_EXCEEDED.
        app.emulator.set_faults(Faults {
            daily_limit: Some(0),
            ..Faults::default()
        });
        let limited = Instant::now();
        let mut ids = Vec::new();
        for i in 0..6 {
            let id = unique(&format!("limit{i}"));
            assert_eq!(app.post_escalation(&escalation(&id, 4)).await.0, 202);
            ids.push(id);
        }
        while limited.elapsed() < Duration::from_secs(4) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seconds = limited.elapsed().as_secs_f64();
        let refused = rejected(&app, "REQUEST_LIMIT_EXCEEDED");
        let (_, ready) = app.get("/readyz", None).await;
        app.emulator.set_faults(Faults::default());

        let concurrency = in_flight(&app);
        let bound = concurrency + seconds.ceil() as u64 + 1;
        assert!(refused >= 1);
        assert!(
            refused <= bound,
            "{refused} calls while over the limit for {seconds:.1}s (bound {bound})"
        );
        assert_eq!(ready["salesforce"]["reason"], "rate_limited", "{ready}");
        // max_attempts is 2, yet no job died: waiting out a limit spends no attempts.
        assert_all_drained(&app, &ids).await;
    }
);
