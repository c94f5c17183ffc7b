//! The job queue under process death: a re-claimed job counts the attempt, and
//! a job whose every attempt was abandoned is dead-lettered.

use std::time::{Duration, Instant};

use gateway::escalation::gate::{CallOutcome, Permit};
use gateway::jobs::JobClass;
use gateway::store::{ABANDONED_ERROR, Store};
use handoff_tests::{Db, both_databases, spawn_app_with};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

/// Moves a running job's lease into the past, as if its worker died long ago.
async fn expire_lease(store: &Store, job_id: i64) {
    let sql = match store.backend() {
        sea_orm::DbBackend::Postgres => "UPDATE jobs SET lease_until = 0 WHERE id = $1",
        _ => "UPDATE jobs SET lease_until = 0 WHERE id = ?1",
    };
    store
        .connection()
        .execute_raw(Statement::from_sql_and_values(
            store.backend(),
            sql,
            [job_id.into()],
        ))
        .await
        .unwrap();
}

// A job whose attempt kills the process (say, a payload that makes the process
// abort) was re-claimed after every lease expiry, forever: each re-claim started
// a new attempt but nothing ever compared it with `max_attempts`, so one such job
// crash-looped every replica that took it. A re-claim now counts as an attempt,
// an expired job with no attempts left is not re-claimed, and the dispatcher
// dead-letters it with a `last_error` saying its attempts were abandoned, marks
// the session failed and records `job.dead`. The "crashes" here are claims by
// workers that never finish, with their leases set in the past through the
// store: no sleeping on wall-clock margins.
both_databases!(
    a_job_abandoned_on_every_attempt_is_dead_lettered,
    |db: Db| async move {
        let app = spawn_app_with(db, |c| {
            c.worker.max_attempts = 2;
            c.salesforce.breaker_open_secs = 3600;
        })
        .await;
        let store = app.gateway.state.store.clone();
        // Hold the gateway's own Salesforce work (breaker open for an hour), so
        // only the "crashing" workers below claim the job.
        for _ in 0..app.config.salesforce.breaker_failure_threshold {
            app.gateway.state.gate.record(
                Permit::Go,
                CallOutcome::Failed(salesforce::ErrorClass::Retryable),
            );
        }
        let (status, body) = app
            .post_escalation(&json!({
                "session_id": "crashes-1",
                "channel": "email",
                "customer": {"email": "ann@example.com"},
                "transcript": [{"role": "customer", "text": "hi", "at": "2026-11-22T09:00:00Z"}],
            }))
            .await;
        assert_eq!(status, 202, "{body}");

        let lease_ms = 60_000;
        let first = store
            .claim_jobs("crashed-a", lease_ms, JobClass::Salesforce, 10)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].attempt, 1);
        let job_id = first[0].id;
        // Its lease still runs: nobody else may take it.
        assert!(
            store
                .claim_jobs("crashed-b", lease_ms, JobClass::Salesforce, 10)
                .await
                .unwrap()
                .is_empty()
        );
        expire_lease(&store, job_id).await;
        let second = store
            .claim_jobs("crashed-b", lease_ms, JobClass::Salesforce, 10)
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempt, 2, "a re-claim is an attempt");
        expire_lease(&store, job_id).await;
        assert!(
            store
                .claim_jobs("crashed-c", lease_ms, JobClass::Salesforce, 10)
                .await
                .unwrap()
                .is_empty(),
            "no attempts left: not re-claimed"
        );

        // The gateway's dispatcher dead-letters it, then records that on the
        // session (a second transaction: wait for both, not just the first).
        let deadline = Instant::now() + Duration::from_secs(20);
        let dead = loop {
            let job = store.job(job_id).await.unwrap().unwrap();
            let session = store.session("crashes-1").await.unwrap().unwrap();
            if job.state == "dead" && session.status != "accepted" {
                break job;
            }
            assert!(
                Instant::now() < deadline,
                "job still {}, session {}",
                job.state,
                session.status
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert_eq!(dead.attempts, 2);
        assert_eq!(dead.last_error.as_deref(), Some(ABANDONED_ERROR));
        assert!(ABANDONED_ERROR.contains("every attempt was abandoned"));
        let session = store.session("crashes-1").await.unwrap().unwrap();
        assert_eq!(session.status, "failed");
        let events = store.events("crashes-1").await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.kind, "job.dead");
        let data: serde_json::Value = serde_json::from_str(&last.data).unwrap();
        assert_eq!(data["abandoned"], true);
        assert_eq!(data["attempts"], 2);
        assert_eq!(app.emulator.records("Case").len(), 0);
    }
);
