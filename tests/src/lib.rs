#![forbid(unsafe_code)]
//! Test harness: the real gateway over real sockets, against the Salesforce
//! emulator, on a fresh SQLite file or a fresh PostgreSQL database per test.

use std::time::Duration;

use gateway::config::Config;
use gateway::store::Scope;
use gateway::{Application, RunningApp};
use serde_json::Value;
use tokio::net::TcpListener;

pub mod browser;
pub mod console;
pub mod dbdump;
pub mod ops_console;
pub mod phone;
pub mod receiver;
pub mod smtp;
pub mod textline;

pub use gateway::demo::Driver;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs a test body once per database: `both_databases!(name, |db| async move { … })`.
/// PostgreSQL comes from `HANDOFF_TEST_POSTGRES_URL` (an admin URL; each test
/// creates its own database). Without it the PostgreSQL variant reports itself
/// skipped — unless `HANDOFF_REQUIRE_POSTGRES=1` (set by `.ci/run`), where a
/// missing server fails the test.
#[macro_export]
macro_rules! both_databases {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::Db::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::postgres_admin_url().is_none() {
                    return;
                }
                ($body)($crate::Db::Postgres).await
            }
        }
    };
}

/// The PostgreSQL admin URL, or `None` (and a note) when PostgreSQL tests are off.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("HANDOFF_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("HANDOFF_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("HANDOFF_REQUIRE_POSTGRES=1 but HANDOFF_TEST_POSTGRES_URL is not set");
            }
            eprintln!("PostgreSQL variant skipped: set HANDOFF_TEST_POSTGRES_URL to run it");
            None
        }
    }
}

/// A database URL no other test uses, and what keeps it alive.
pub async fn fresh_database(db: Db) -> (String, Option<tempfile::TempDir>) {
    match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("handoff.db").display()
            );
            (url, Some(dir))
        }
        Db::Postgres => {
            use sea_orm::ConnectionTrait;
            let admin = postgres_admin_url().expect("postgres url");
            let name = format!("handoff_test_{}", uuid::Uuid::new_v4().simple());
            let conn = sea_orm::Database::connect(&admin)
                .await
                .expect("connect to PostgreSQL");
            conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            (format!("{base}/{name}"), None)
        }
    }
}

/// A running gateway and emulator, plus tokens for each scope.
pub struct TestApp {
    pub gateway: RunningApp,
    pub emulator: sf_emulator::EmulatorHandle,
    pub escalate_token: String,
    pub read_token: String,
    pub http: reqwest::Client,
    pub salesforce: salesforce::Client,
    pub config: Config,
    /// Keeps a SQLite database file alive for the test.
    pub dir: Option<tempfile::TempDir>,
}

/// Test settings: fast retries, the emulator's default app.
pub fn test_config(db_url: &str, emulator: &sf_emulator::EmulatorHandle) -> Config {
    let mut config = Config::defaults();
    config.database_url = db_url.to_string();
    config.salesforce.login_url = emulator.url();
    let app = emulator.config().connected_apps[0].clone();
    config.salesforce.credentials = Some(salesforce::Credentials::ClientCredentials {
        client_id: app.client_id,
        client_secret: app.client_secret.into(),
    });
    config.worker.retry_base_ms = 50;
    config.worker.retry_max_ms = 500;
    config.worker.poll_interval_ms = 50;
    // Test escalations share one customer address; each makes its own Case unless a test
    // turns Case append on (tests/it/case_join.rs).
    config.case.append_to_open_case = false;
    // Secrets the gateway stores (console credentials) are sealed with a per-test random key.
    config.secrets.ephemeral_fallback = true;
    // Chat signs its webhooks with the published Standard Webhooks test secret and may call a
    // receiver the test runs on loopback.
    config.channels.insert(
        "chat".into(),
        channels::ChannelConfig::Chat(channels::ChatConfig {
            enabled: true,
            webhook_secret: Some(TEST_WEBHOOK_SECRET.into()),
            webhook_secret_file: None,
            allow_private_webhook_urls: true,
        }),
    );
    config
}

/// The chat webhook secret of [`test_config`] (the Standard Webhooks specification's example).
pub const TEST_WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub async fn spawn_emulator() -> sf_emulator::EmulatorHandle {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind emulator");
    sf_emulator::spawn(sf_emulator::EmulatorConfig::default(), listener)
        .await
        .expect("start emulator")
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

/// Like [`spawn_app`], letting the test adjust the config first.
pub async fn spawn_app_with(db: Db, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let emulator = spawn_emulator().await;
    spawn_app_on(db, emulator, Vec::new(), adjust).await
}

/// The gateway with live messaging (MIAW) on, against an emulator started
/// with `emulator_config`; `adjust` changes the gateway's settings last.
pub async fn spawn_live_app(
    db: Db,
    emulator_config: sf_emulator::EmulatorConfig,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind emulator");
    let emulator = sf_emulator::spawn(emulator_config, listener)
        .await
        .expect("start emulator");
    let live = live_settings(&emulator);
    spawn_app_on(db, emulator, Vec::new(), |config| {
        live(config);
        adjust(config);
    })
    .await
}

/// Like [`spawn_live_app`] with the emulator's defaults, with channel adapters of the test's
/// own registered as plugins.
pub async fn spawn_live_app_with_channels(
    db: Db,
    plugins: Vec<std::sync::Arc<dyn channels::Channel>>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let emulator = spawn_emulator().await;
    let live = live_settings(&emulator);
    spawn_app_on(db, emulator, plugins, |config| {
        live(config);
        adjust(config);
    })
    .await
}

/// Live messaging against `emulator`'s default deployment, with short leases
/// and supervisor rounds so tests see takeovers quickly.
pub fn live_settings(emulator: &sf_emulator::EmulatorHandle) -> impl FnOnce(&mut Config) + use<> {
    let url = emulator.url();
    let org_id = emulator.config().org_id.clone();
    move |config: &mut Config| {
        config.miaw.enabled = true;
        config.miaw.url = url;
        config.miaw.org_id = org_id;
        config.miaw.deployment = gateway::app::SANDBOX_MIAW_DEPLOYMENT.into();
        config.miaw.stream_lease_secs = 3;
        config.miaw.supervisor_interval_ms = 100;
    }
}

async fn spawn_app_on(
    db: Db,
    emulator: sf_emulator::EmulatorHandle,
    plugins: Vec<std::sync::Arc<dyn channels::Channel>>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        gateway::telemetry::init("info,sqlx=warn");
    }
    let (url, dir) = fresh_database(db).await;
    let mut config = test_config(&url, &emulator);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind gateway");
    // Providers (Twilio, Meta, bridges) sign the URL they call: the gateway's own address.
    config.public_url = Some(format!(
        "http://{}",
        listener.local_addr().expect("gateway address")
    ));
    adjust(&mut config);
    let app = Application::build_with_channels(config.clone(), listener, plugins)
        .await
        .expect("gateway builds");
    let store = app.state().store.clone();
    let escalate_token = store
        .create_token("test-escalate", &[Scope::Escalate])
        .await
        .expect("token")
        .secret;
    let read_token = store
        .create_token("test-read", &[Scope::Read])
        .await
        .expect("token")
        .secret;
    let gateway = app.spawn().expect("gateway runs");
    let salesforce = salesforce::Client::new(salesforce::ClientConfig {
        login_url: emulator.url(),
        api_version: config.salesforce.api_version.clone(),
        credentials: config.salesforce.credentials.clone().expect("credentials"),
        timeout: Duration::from_secs(10),
        max_concurrency: 4,
    })
    .expect("salesforce client");
    TestApp {
        gateway,
        emulator,
        escalate_token,
        read_token,
        http: reqwest::Client::new(),
        salesforce,
        config,
        dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.url())
    }

    pub fn driver(&self) -> Driver {
        Driver::new(self.gateway.url(), self.escalate_token.clone()).expect("driver")
    }

    /// POSTs a JSON escalation with the escalate token; returns status and body.
    pub async fn post_escalation(&self, body: &Value) -> (u16, Value) {
        self.post_raw(
            "/v1/escalations",
            Some(&self.escalate_token),
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// SOQL against the emulator, all pages.
    pub async fn soql(&self, query: &str) -> Vec<Value> {
        self.salesforce
            .query_all_pages(query)
            .await
            .expect("SOQL query")
    }
}

impl TestApp {
    /// The bodies of a Case's comments, oldest first, read from Salesforce.
    pub async fn comment_bodies(&self, case_id: &str) -> Vec<String> {
        self.soql(&format!(
            "SELECT CommentBody FROM CaseComment WHERE ParentId = '{case_id}' ORDER BY CreatedDate"
        ))
        .await
        .iter()
        .map(|c| c["CommentBody"].as_str().expect("CommentBody").to_string())
        .collect()
    }

    /// The kinds of a session's events, oldest first.
    pub async fn event_kinds(&self, session_id: &str) -> Vec<String> {
        let (status, events) = self
            .get(
                &format!("/v1/sessions/{session_id}/events"),
                Some(&self.read_token),
            )
            .await;
        assert_eq!(status, 200, "{events}");
        events["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| e["kind"].as_str().expect("kind").to_string())
            .collect()
    }

    /// Posts every body at once (one task each) and returns the statuses.
    pub async fn post_concurrently(&self, bodies: Vec<Value>) -> Vec<u16> {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let http = self.http.clone();
                let url = self.url("/v1/escalations");
                let token = self.escalate_token.clone();
                tokio::spawn(async move {
                    http.post(url)
                        .bearer_auth(token)
                        .json(&body)
                        .send()
                        .await
                        .expect("request sent")
                        .status()
                        .as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.expect("task"));
        }
        statuses
    }
}
