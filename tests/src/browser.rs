//! A real headless Chromium for console tests, driven over W3C WebDriver (`chromedriver` +
//! `fantoccini`).
//!
//! [`Browser::launch`] starts `chromedriver` on a port the OS picks, waits for its `/status`
//! to say ready, and opens one Chromium session with a fresh profile. Browser tests run one
//! at a time (a process-wide lock the [`Browser`] holds): the machines that run them have
//! few cores, and a second Chromium only makes both slower.
//!
//! Without `chromedriver` or `chromium`, [`Browser::launch`] prints why and returns `None`
//! (the test then skips) — unless `HANDOFF_REQUIRE_BROWSER=1` (set by `.ci/run`), where it
//! fails. `HANDOFF_CHROMEDRIVER` and `HANDOFF_CHROMIUM` override the programs' paths.
//!
//! Waits poll the page until a generous deadline; they bound a test, they never measure it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard};

/// How long a wait for the page may take before the test fails (a bound, not a measurement:
/// a loaded CI machine may be slow, a broken page never gets there).
pub const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// How long chromedriver may take to start and say ready.
const DRIVER_START: Duration = Duration::from_secs(60);

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// One Chromium, its chromedriver and its profile; all go away on drop.
pub struct Browser {
    client: Client,
    base: String,
    driver: Driver,
    session: Option<String>,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

/// The chromedriver child process (its own process group, killed on drop).
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn program(env: &str, default: &str) -> PathBuf {
    std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

fn required() -> bool {
    std::env::var("HANDOFF_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// Whether browser tests can run here; `Err` says what is missing.
pub fn available() -> Result<(PathBuf, PathBuf), String> {
    let driver = program("HANDOFF_CHROMEDRIVER", "/usr/bin/chromedriver");
    let chromium = program("HANDOFF_CHROMIUM", "/usr/bin/chromium");
    for (path, package) in [(&driver, "chromium-driver"), (&chromium, "chromium")] {
        if !path.is_file() {
            return Err(format!(
                "{} not found (install the Debian package `{package}`)",
                path.display()
            ));
        }
    }
    Ok((driver, chromium))
}

impl Browser {
    /// A fresh headless Chromium whose relative URLs resolve against `base` (the gateway),
    /// or `None` when browsers are not installed and not required.
    pub async fn launch(base: &str) -> Option<Browser> {
        let (driver_path, chromium) = match available() {
            Ok(paths) => paths,
            Err(why) if required() => panic!("HANDOFF_REQUIRE_BROWSER=1 but {why}"),
            Err(why) => {
                eprintln!(
                    "browser test skipped: {why}; set HANDOFF_REQUIRE_BROWSER=1 to fail instead"
                );
                return None;
            }
        };
        let turn = ONE_AT_A_TIME.lock().await;
        let driver = start_driver(&driver_path).await;
        let profile = tempfile::Builder::new()
            .prefix("handoff-chromium-")
            .tempdir()
            .expect("profile dir");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("pageLoadStrategy".into(), json!("normal"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium.display().to_string(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("TLS roots for the WebDriver client")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| panic!("Chromium did not start under chromedriver: {e}"));
        let session = client.session_id().await.ok().flatten();
        Some(Browser {
            client,
            base: base.trim_end_matches('/').to_string(),
            driver,
            session,
            _profile: profile,
            _turn: turn,
        })
    }

    /// The WebDriver client, for anything the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `path` made absolute against the gateway (absolute URLs pass through).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Opens `path` (relative to the gateway, or absolute) and waits for it to load.
    pub async fn goto(&self, path: &str) {
        let url = self.url(path);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The address the browser shows now.
    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// The path (and query) the browser shows now.
    pub async fn current_path(&self) -> String {
        let url = self.current_url().await;
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits for an element matching the CSS `selector` and returns it.
    pub async fn wait_for(&self, selector: &str) -> fantoccini::elements::Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.client.find(Locator::Css(selector)).await {
                Ok(element) => return element,
                Err(e) if e.is_no_such_element() => {}
                Err(e) => panic!("looking for {selector}: {e}"),
            }
            if Instant::now() >= deadline {
                panic!(
                    "no {selector} within {WAIT:?} on {}: {}",
                    self.current_url().await,
                    self.excerpt().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the browser's path (without query) is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.current_url().await;
            if now.path() == path {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "still on {now} after {WAIT:?}, expected {path}: {}",
                    self.excerpt().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `script` (a function body) returns `true`.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.execute(script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{what}: not so within {WAIT:?} on {}: {}",
                    self.current_url().await,
                    self.excerpt().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `text` into the field with id `id` (after clearing it).
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.wait_for(&format!("#{id}")).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear #{id}: {e}"));
        field
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into #{id}: {e}"));
    }

    /// Clicks the element with id `id`.
    pub async fn click(&self, id: &str) {
        self.click_css(&format!("#{id}")).await;
    }

    /// Clicks the first element matching the CSS `selector`.
    pub async fn click_css(&self, selector: &str) {
        let element = self.wait_for(selector).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    /// The rendered text of the first element matching the CSS `selector`.
    pub async fn text_of(&self, selector: &str) -> String {
        self.wait_for(selector)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {selector}: {e}"))
    }

    /// Runs `script` (a function body) in the page and returns its value.
    pub async fn execute(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// The page's HTML.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    /// A PNG of the viewport, written to `path` (directories made as needed).
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.expect("screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// The start of the page's visible text, for failure messages.
    async fn excerpt(&self) -> String {
        let text = self
            .client
            .execute(
                "return document.body ? document.body.innerText : ''",
                Vec::new(),
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        text.chars().take(600).collect()
    }

    /// Ends the WebDriver session (Chromium exits) and stops chromedriver.
    pub async fn close(mut self) {
        if self.client.clone().close().await.is_ok() {
            self.session = None;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that panicked never called `close`; ending the session makes chromedriver
        // quit Chromium before chromedriver itself is killed (Driver's drop, after this).
        if let Some(session) = self.session.take() {
            delete_session(self.driver.port, &session);
        }
    }
}

/// `DELETE /session/{id}` with a plain blocking socket (drop may run while the async
/// runtime is shutting down).
fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    }
}

/// Starts chromedriver on a port the OS picks (`--port=0`; it prints the port) and waits
/// until `/status` says ready.
async fn start_driver(path: &Path) -> Driver {
    let mut child = Command::new(path)
        .arg("--port=0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
    let stdout = child.stdout.take().expect("chromedriver stdout");
    let (port_tx, port_rx) = tokio::sync::oneshot::channel();
    // Reads the port, then keeps draining stdout so chromedriver never blocks on it.
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = started_on(&line)
                && let Some(tx) = port_tx.take()
            {
                let _ = tx.send(port);
            }
        }
    });
    let mut driver = Driver { child, port: 0 };
    driver.port = match tokio::time::timeout(DRIVER_START, port_rx).await {
        Ok(Ok(port)) => port,
        _ => panic!(
            "chromedriver did not report its port within {DRIVER_START:?} (exit: {:?})",
            driver.child.try_wait()
        ),
    };
    let status = format!("http://127.0.0.1:{}/status", driver.port);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + DRIVER_START;
    loop {
        let ready = match http.get(&status).send().await {
            Ok(response) => response
                .json::<Value>()
                .await
                .is_ok_and(|v| v["value"]["ready"] == json!(true)),
            Err(_) => false,
        };
        if ready {
            return driver;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver not ready within {DRIVER_START:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The port in chromedriver's "… was started successfully on port 12345." line.
fn started_on(line: &str) -> Option<u16> {
    let rest = line.split("started successfully on port ").nth(1)?;
    rest.trim().trim_end_matches('.').parse().ok()
}

/// Whether `bytes` is a PNG: the signature, then an IHDR chunk with a non-zero size.
pub fn is_png(bytes: &[u8]) -> bool {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    bytes.len() > 33
        && bytes.starts_with(SIGNATURE)
        && &bytes[12..16] == b"IHDR"
        && u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]) > 0
        && u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]) > 0
}

/// Where screenshots go: `docs/console/` when `HANDOFF_UPDATE_SCREENSHOTS=1` (to refresh the
/// README's images), otherwise a temporary directory (kept alive by the returned guard), so
/// test runs never change the repository.
pub fn screenshot_dir() -> (PathBuf, Option<tempfile::TempDir>) {
    if std::env::var("HANDOFF_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/console");
        std::fs::create_dir_all(&dir).expect("docs/console");
        (dir, None)
    } else {
        let tmp = tempfile::tempdir().expect("temp dir");
        (tmp.path().to_path_buf(), Some(tmp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_chromedrivers_port_line() {
        assert_eq!(
            started_on("ChromeDriver was started successfully on port 37327."),
            Some(37327)
        );
        assert_eq!(started_on("Only local connections are allowed."), None);
    }

    #[test]
    fn png_check_wants_a_real_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 3, 8, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(is_png(&png));
        png[19] = 0;
        assert!(!is_png(&png));
        assert!(!is_png(b"not a png at all, but long enough to be checked"));
    }
}
