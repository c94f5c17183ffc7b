//! Upgrading a database with work in its queue: `create_case` jobs stored before
//! job kinds were typed (a kind string and the session id, no payload column)
//! must still run after the migration that adds the outbox and `jobs.payload`.

use std::time::{Duration, Instant};

use gateway::Application;
use gateway::config::Config;
use gateway::escalation::request;
use migrations::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;
use tokio::net::TcpListener;

/// A fresh database URL (SQLite file, or a new PostgreSQL database when
/// `HANDOFF_TEST_POSTGRES_URL` is set) and what keeps it alive.
async fn databases() -> Vec<(String, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let mut urls = vec![(sqlite, Some(dir))];
    if let Ok(admin) = std::env::var("HANDOFF_TEST_POSTGRES_URL")
        && !admin.is_empty()
    {
        let name = format!("handoff_upgrade_{}", uuid::Uuid::new_v4().simple());
        let conn = Database::connect(&admin).await.unwrap();
        conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap().to_string();
        urls.push((format!("{base}/{name}"), None));
    }
    urls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_queued_before_typed_kinds_runs_after_the_upgrade() {
    for (url, _keep) in databases().await {
        // The schema as it was: migrations 1–5.
        let db = Database::connect(&url).await.unwrap();
        migrations::Migrator::up(&db, Some(5)).await.unwrap();
        let registry = channels::Registry::builtin();
        let body = json!({
            "session_id": "queued-before-1",
            "channel": "email",
            "customer": {"email": "ann@example.com"},
            "transcript": [{"role": "customer", "text": "hello", "at": "2026-11-22T09:00:00Z"}],
        });
        let escalation = request::parse(
            &body,
            |kind, input| Ok(registry.get(kind).unwrap().normalize(input).unwrap()),
            |name| Ok(name.parse().unwrap()),
        )
        .unwrap();
        // The session row as migrations 1–5 made it (raw SQL: today's entity has more columns).
        let now = chrono::Utc::now();
        let placeholders = |sql: &str| {
            if url.starts_with("sqlite:") {
                sql.replace('$', "?")
            } else {
                sql.to_string()
            }
        };
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            placeholders(
                "INSERT INTO sessions (id, channel, route, status, customer_email, language, priority, \
                 request_hash, payload, comments_written, salesforce_calls, created_at, updated_at) \
                 VALUES ('queued-before-1', 'email', 'case', 'accepted', 'ann@example.com', 'en', \
                 'medium', $1, $2, 0, 0, $3, $3)",
            ),
            [
                escalation.request_hash.clone().into(),
                serde_json::to_string(&escalation.payload).unwrap().into(),
                now.into(),
            ],
        ))
        .await
        .unwrap();
        let ms = now.timestamp_millis();
        let sql = "INSERT INTO jobs (kind, session_id, state, attempts, max_attempts, run_at, created_at, updated_at) \
                   VALUES ('create_case', 'queued-before-1', 'queued', 0, 10, $1, $1, $1)";
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            placeholders(sql),
            [ms.into()],
        ))
        .await
        .unwrap();
        db.close().await.unwrap();

        // The new gateway migrates and works the old job.
        let emulator = sf_emulator::spawn(
            sf_emulator::EmulatorConfig::default(),
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
        )
        .await
        .unwrap();
        let mut config = Config::defaults();
        config.database_url = url.clone();
        config.salesforce.login_url = emulator.url();
        let app = emulator.config().connected_apps[0].clone();
        config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
            client_id: app.client_id,
            client_secret: app.client_secret.into(),
        });
        config.worker.poll_interval_ms = 50;
        let application =
            Application::build(config, TcpListener::bind("127.0.0.1:0").await.unwrap())
                .await
                .unwrap();
        let store = application.state().store.clone();
        let running = application.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let session = store.session("queued-before-1").await.unwrap().unwrap();
            if session.status == "escalated" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still {} on {url}",
                session.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let done = store.jobs_in_state("done").await.unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].kind, "create_case");
        assert_eq!(done[0].payload, None);
        assert_eq!(emulator.records("Case").len(), 1);
        running.stop().await;
        emulator.shutdown().await;
    }
}
