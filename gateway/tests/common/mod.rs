//! What the process-level tests share: a fleet of real `handoff serve` child
//! processes (started on port 0, killed with SIGKILL, their logs kept), the
//! harness that kills them on drop, and fresh PostgreSQL databases.
//!
//! Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Each replica's current base URL (`http://127.0.0.1:PORT`), updated on restart.
pub type Urls = Arc<Mutex<Vec<String>>>;

/// The base URL of replica `n % replicas`, as of now.
pub fn url_of(urls: &Urls, n: usize) -> String {
    let urls = lock(urls);
    urls[n % urls.len()].clone()
}

/// The gateway processes. Every process it starts is killed by `kill_all`, which
/// the [`Harness`] runs on drop, panics included.
pub struct Fleet {
    env: Vec<(String, String)>,
    urls: Urls,
    dir: PathBuf,
    running: Vec<Option<Child>>,
    /// Every instance's log, oldest first, with its replica.
    logs: Vec<(usize, PathBuf)>,
}

impl Fleet {
    /// `replicas` gateways configured by `env` (the only `HANDOFF_*` settings
    /// they see), logging into `dir`.
    pub fn new(env: Vec<(String, String)>, replicas: usize, dir: PathBuf) -> Fleet {
        Fleet {
            env,
            urls: Arc::new(Mutex::new(vec![String::new(); replicas])),
            dir,
            running: (0..replicas).map(|_| None).collect(),
            logs: Vec::new(),
        }
    }

    /// The replicas' URLs, shared: they follow restarts.
    pub fn urls(&self) -> Urls {
        self.urls.clone()
    }

    /// Replica `replica`'s current base URL.
    pub fn url(&self, replica: usize) -> String {
        lock(&self.urls)[replica].clone()
    }

    pub fn replicas(&self) -> usize {
        self.running.len()
    }

    pub fn is_running(&self, replica: usize) -> bool {
        self.running[replica].is_some()
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// Starts `handoff serve --listen 127.0.0.1:0` for a replica and waits for
    /// the address it prints first; its stdout and stderr go to a log file.
    pub fn start(&mut self, replica: usize) {
        assert!(self.running[replica].is_none(), "replica {replica} runs");
        let log = self
            .dir
            .join(format!("gateway-{replica}-{:03}.log", self.logs.len()));
        let mut out = File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log");
        let mut child = handoff_command(&self.env)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("start handoff serve");
        self.logs.push((replica, log.clone()));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let Some(addr) = first
            .trim()
            .rsplit_once("listening on http://")
            .map(|(_, a)| a.to_string())
        else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "replica {replica} did not print its address ({first:?}):\n{}",
                tail(&log, 40)
            );
        };
        // The rest of stdout goes to the log, as stderr does.
        std::thread::spawn(move || {
            let _ = out.write_all(first.as_bytes());
            let _ = std::io::copy(&mut stdout, &mut out);
        });
        lock(&self.urls)[replica] = format!("http://{addr}");
        self.running[replica] = Some(child);
    }

    /// SIGKILL (`Child::kill` on Unix), then reap.
    pub fn kill(&mut self, replica: usize) {
        if let Some(mut child) = self.running[replica].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn kill_all(&mut self) {
        for replica in 0..self.running.len() {
            self.kill(replica);
        }
    }

    /// Fails if a gateway process exited by itself: it must only die when killed.
    pub fn check_alive(&mut self) {
        for replica in 0..self.running.len() {
            let exited = match self.running[replica].as_mut() {
                Some(child) => child.try_wait().expect("child status"),
                None => None,
            };
            if let Some(status) = exited {
                self.running[replica] = None;
                panic!("gateway replica {replica} exited by itself: {status}");
            }
        }
    }

    /// The tail of each replica's last two logs.
    pub fn tails(&self) -> String {
        let mut out = Vec::new();
        for replica in 0..self.running.len() {
            let mine: Vec<&PathBuf> = self
                .logs
                .iter()
                .filter(|(r, _)| *r == replica)
                .map(|(_, p)| p)
                .collect();
            for log in mine.iter().rev().take(2).rev() {
                out.push(format!(
                    "---- tail of {} ----\n{}",
                    log.display(),
                    tail(log, 40)
                ));
            }
        }
        out.join("\n")
    }
}

/// Owns the fleet and the temp dir. On drop, kills every gateway process; when
/// dropped by a panic, also prints the logs' tails and keeps the temp dir.
pub struct Harness {
    fleet: Arc<Mutex<Fleet>>,
    dir: Option<tempfile::TempDir>,
    label: &'static str,
}

impl Harness {
    pub fn new(fleet: Fleet, dir: tempfile::TempDir, label: &'static str) -> Harness {
        Harness {
            fleet: Arc::new(Mutex::new(fleet)),
            dir: Some(dir),
            label,
        }
    }

    pub fn fleet(&self) -> MutexGuard<'_, Fleet> {
        lock(&self.fleet)
    }

    /// The fleet, shared with a task that kills and restarts replicas.
    pub fn shared_fleet(&self) -> Arc<Mutex<Fleet>> {
        Arc::clone(&self.fleet)
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let mut fleet = lock(&self.fleet);
        fleet.kill_all();
        if std::thread::panicking() {
            eprintln!("{}", fleet.tails());
            drop(fleet);
            if let Some(dir) = self.dir.take() {
                eprintln!("{} test files kept in {}", self.label, dir.keep().display());
            }
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The last `lines` lines of a log (read from its last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("(cannot open: {e})"),
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut text = Vec::new();
    let _ = file.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `handoff` with exactly our `HANDOFF_*` settings (none inherited).
pub fn handoff_command(env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_handoff"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HANDOFF_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// An API token (`escalate`, which includes `read`) named `name`; also applies
/// the migrations, so replicas never race to create the schema.
pub fn create_token(env: &[(String, String)], name: &str) -> String {
    let out = handoff_command(env)
        .args(["tokens", "create", "--name", name, "--scopes", "escalate"])
        .output()
        .expect("run handoff tokens create");
    assert!(
        out.status.success(),
        "handoff tokens create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("token is UTF-8")
        .trim()
        .to_string()
}

/// The PostgreSQL admin URL, or `None` (with a note) when PostgreSQL tests are off;
/// `HANDOFF_REQUIRE_POSTGRES=1` turns a missing URL into a failure.
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

/// A database no other test uses, named `<prefix>_<uuid>`: its URL and name.
pub async fn fresh_postgres_database(admin: &str, prefix: &str) -> (String, String) {
    use sea_orm::ConnectionTrait;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let conn = sea_orm::Database::connect(admin)
        .await
        .expect("connect to PostgreSQL");
    conn.execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    (format!("{base}/{name}"), name)
}

pub async fn drop_postgres_database(admin: &str, name: &str) {
    use sea_orm::ConnectionTrait;
    if let Ok(conn) = sea_orm::Database::connect(admin).await {
        let _ = conn
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

/// One API request with the bearer `token`: its status and JSON body (`Null`
/// when the body is not JSON); status 0 with the error text when the request
/// never got an answer (a killed gateway).
pub async fn api_call(
    http: &reqwest::Client,
    token: &str,
    method: reqwest::Method,
    url: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (
                status,
                response.json().await.unwrap_or(serde_json::Value::Null),
            )
        }
        Err(e) => (0, serde_json::Value::String(e.to_string())),
    }
}
