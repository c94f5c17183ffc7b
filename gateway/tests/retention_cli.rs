//! `handoff retention run`: one sweep from the command line, with the configured
//! periods, against the same database `serve` uses.

use std::process::Command;

use chrono::{Duration, Utc};
use gateway::escalation::request;
use gateway::store::{Store, job, session};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

fn handoff(db_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_handoff"))
        .args(args)
        .env("HANDOFF_DATABASE_URL", db_url)
        .env_remove("HANDOFF_CONFIG")
        .output()
        .expect("handoff runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A session accepted 40 days ago whose job is done, and one accepted now.
async fn seed(store: &Store) {
    let registry = channels::Registry::builtin();
    for id in ["old-session", "new-session"] {
        let body = json!({
            "session_id": id,
            "channel": "email",
            "customer": {"name": "Ann", "email": "ann@example.com"},
            "transcript": [{"role": "customer", "text": "hello", "at": "2026-11-22T09:00:00Z"}],
        });
        let escalation = request::parse(
            &body,
            |kind, input| Ok(registry.get(kind).unwrap().normalize(input).unwrap()),
            |name| Ok(name.parse().unwrap()),
        )
        .unwrap();
        store
            .accept_escalation(&escalation, "case", "create_case", 3, None, None)
            .await
            .unwrap();
        let db = store.connection();
        let job = job::Entity::find()
            .filter(job::Column::SessionId.eq(id))
            .one(db)
            .await
            .unwrap()
            .unwrap();
        let mut job: job::ActiveModel = job.into();
        job.state = Set("done".into());
        job.update(db).await.unwrap();
    }
    let db = store.connection();
    let old = store.session("old-session").await.unwrap().unwrap();
    let mut old: session::ActiveModel = old.into();
    old.created_at = Set(Utc::now() - Duration::days(40));
    old.update(db).await.unwrap();
}

#[tokio::test]
async fn retention_run_erases_what_has_expired_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    let store = Store::open(&url).await.unwrap();
    seed(&store).await;

    let (ok, stdout, stderr) = handoff(&url, &["retention", "run"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1 sessions erased"), "{stdout}");
    let old = store.session("old-session").await.unwrap().unwrap();
    assert_eq!(old.payload, "");
    assert_eq!(old.customer_email, None);
    let new = store.session("new-session").await.unwrap().unwrap();
    assert_ne!(new.payload, "");

    let (ok, stdout, _) = handoff(&url, &["retention", "run"]);
    assert!(ok);
    assert!(stdout.contains("0 sessions erased"), "{stdout}");
}
