//! A real SMTP server for tests: aiosmtpd (Python, `pip install 'aiosmtpd==1.4.6'`) on a
//! loopback port, storing what it accepts in a Maildir the test reads back and parses with
//! mail-parser. Or, with the `reply_handler.Reply` fixture, a server that refuses every
//! message with a chosen SMTP reply.
//!
//! Without python3 or aiosmtpd the SMTP tests report themselves skipped — unless
//! `HANDOFF_REQUIRE_SMTP=1` (set by `.ci/run`), where a missing server fails the test.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::{Address, HeaderValue, MessageParser};

/// How long the server may take to accept connections after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// The command that installs the server.
pub const INSTALL: &str = "python3 -m pip install 'aiosmtpd==1.4.6'";

/// A running aiosmtpd on 127.0.0.1, killed when dropped.
pub struct SmtpSink {
    port: u16,
    child: Child,
    maildir: PathBuf,
    /// Holds the Maildir and the server's log.
    dir: tempfile::TempDir,
}

/// One message the sink accepted, parsed.
#[derive(Debug, Clone)]
pub struct SinkMessage {
    /// The bytes as stored (aiosmtpd adds `X-Peer`, `X-MailFrom` and `X-RcptTo` on top).
    pub raw: Vec<u8>,
    /// Without angle brackets, as are the ids below.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Decoded (RFC 2047).
    pub subject: Option<String>,
    /// The `From` display name (decoded) and address.
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub to: Vec<String>,
    pub reply_to: Option<String>,
    /// The envelope recipients (`X-RcptTo`).
    pub rcpt_to: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl SinkMessage {
    fn parse(raw: Vec<u8>) -> SinkMessage {
        let parsed = MessageParser::default()
            .parse(&raw)
            .expect("the sink stored an RFC 5322 message");
        let ids = |value: &HeaderValue<'_>| -> Vec<String> {
            match value {
                HeaderValue::Text(id) => vec![id.to_string()],
                HeaderValue::TextList(ids) => ids.iter().map(ToString::to_string).collect(),
                _ => Vec::new(),
            }
        };
        let first_address = |address: Option<&Address<'_>>| {
            address
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_owned)
        };
        let from = parsed.from().and_then(|a| a.first());
        SinkMessage {
            message_id: parsed.message_id().map(str::to_owned),
            in_reply_to: ids(parsed.in_reply_to()),
            references: ids(parsed.references()),
            subject: parsed.subject().map(str::to_owned),
            from_name: from.and_then(|a| a.name()).map(str::to_owned),
            from_address: from.and_then(|a| a.address()).map(str::to_owned),
            to: parsed
                .to()
                .map(|a| {
                    a.iter()
                        .filter_map(|a| a.address())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            reply_to: first_address(parsed.reply_to()),
            rcpt_to: parsed.header_raw("X-RcptTo").map(|v| v.trim().to_owned()),
            text: parsed.body_text(0).map(|t| t.into_owned()),
            html: parsed.body_html(0).map(|t| t.into_owned()),
            raw,
        }
    }

    /// How many times a header appears in the stored message (ASCII case-insensitive).
    pub fn header_count(&self, name: &str) -> usize {
        let parsed = MessageParser::default().parse(&self.raw).expect("parses");
        parsed
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .count()
    }
}

/// Whether aiosmtpd can run here; without it, `None` and a note, or a panic with the install
/// command when `HANDOFF_REQUIRE_SMTP=1`.
fn available() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("HANDOFF_REQUIRE_SMTP").is_ok_and(|v| v == "1") {
            panic!(
                "HANDOFF_REQUIRE_SMTP=1 but python3 cannot import aiosmtpd; install it: {INSTALL}"
            );
        }
        eprintln!("SMTP test skipped: python3 with aiosmtpd not found (install: {INSTALL})");
    }
    found
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl SmtpSink {
    /// A sink storing every message, on a free port; `None` when aiosmtpd is not installed
    /// (the test then returns early).
    pub async fn start() -> Option<SmtpSink> {
        Self::start_on(free_port()).await
    }

    /// A storing sink on `port` (a port a test first used while nothing listened on it).
    pub async fn start_on(port: u16) -> Option<SmtpSink> {
        Self::spawn(port, |maildir| {
            vec![
                "-c".into(),
                "aiosmtpd.handlers.Mailbox".into(),
                maildir.display().to_string(),
            ]
        })
        .await
    }

    /// A server that answers `command` (`RCPT` or `DATA`) with `reply` (e.g.
    /// `"550 5.1.1 No such user"`) and stores nothing.
    pub async fn replying(command: &str, reply: &str) -> Option<SmtpSink> {
        let (command, reply) = (command.to_owned(), reply.to_owned());
        Self::spawn(free_port(), move |_| {
            vec![
                "-c".into(),
                "reply_handler.Reply".into(),
                command.clone(),
                reply.clone(),
            ]
        })
        .await
    }

    async fn spawn(port: u16, handler: impl Fn(&Path) -> Vec<String>) -> Option<SmtpSink> {
        if !available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // The Mailbox handler creates the Maildir (cur/new/tmp) itself; it must not exist yet.
        let maildir = dir.path().join("maildir");
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).expect("log file");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/smtp");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(handler(&maildir))
            .env("PYTHONPATH", &fixtures)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn python3 -m aiosmtpd");
        let mut sink = SmtpSink {
            port,
            child,
            maildir,
            dir,
        };
        sink.wait_until_listening().await;
        Some(sink)
    }

    async fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "aiosmtpd exited ({status}) before listening: {}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on port {} within {START_TIMEOUT:?}: {}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The messages stored so far, oldest first.
    pub fn messages(&self) -> Vec<SinkMessage> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| {
                let modified = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (modified, e.path())
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| {
                SinkMessage::parse(std::fs::read(path).expect("read a stored message"))
            })
            .collect()
    }

    /// Waits until at least `n` messages are stored; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<SinkMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "the SMTP sink got {} message(s), expected {n}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[channels.email]` sending through a sink on `port` (plain SMTP on loopback), from
/// `Acme Support <support@acme.example>` with Reply-To `support+{token}@acme.example`.
pub fn email_channel_config(port: u16) -> channels::ChannelConfig {
    serde_json::from_value(serde_json::json!({
        "type": "email",
        "from": "Acme Support <support@acme.example>",
        "reply_to": "support+{token}@acme.example",
        "smtp": {"host": "127.0.0.1", "port": port, "tls": "plain", "timeout_secs": 10},
    }))
    .expect("a valid [channels.email] table")
}
