//! The example bridge (`deploy/examples/bridge/bridge.py`) against the real gateway, over real
//! sockets: the bridge runs as a `python3` child process, configured as `[channels.line]
//! type = "bridge"`; a LINE escalation goes live in the Salesforce emulator's MIAW, the rep's
//! messages reach the bridge signed (it verifies them) and once each, the customer's answer
//! posted to the bridge is signed by it and reaches the rep, and the rep closes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use handoff_tests::console::{RepConsole, texts_by};
use handoff_tests::{Db, TEST_WEBHOOK_SECRET, TestApp, both_databases, spawn_live_app};
use serde_json::{Value, json};

/// The customer's address on the bridged channel.
const ADDRESS: &str = "line:U4af4980629";

/// The bridge program, run from the workspace root.
fn bridge_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/bridge/bridge.py")
}

/// `python3`, when it is installed.
fn python3() -> Option<&'static str> {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| "python3")
}

/// The bridge process; killed when dropped.
struct Bridge {
    child: Child,
    url: String,
}

impl Bridge {
    /// Starts the bridge on a free loopback port, forwarding customer messages to
    /// `handoff_url`; waits (hang guard: 30 s) for its "listening" line.
    fn start(python: &str, handoff_url: &str) -> Bridge {
        let mut child = Command::new(python)
            .arg(bridge_script())
            .args(["--listen", "127.0.0.1:0", "--handoff-url", handoff_url])
            .args(["--channel", "line"])
            .env("BRIDGE_SECRET", TEST_WEBHOOK_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the example bridge");
        let stdout = child.stdout.take().expect("bridge stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the first line, then keeps draining so the bridge never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = tx.send(first);
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("the bridge did not say where it listens")
            });
        let url = line
            .strip_prefix("bridge listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from the bridge: {line}"))
            .trim()
            .to_string();
        Bridge { child, url }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bridge's `GET /messages`: what it delivered to "the channel", and how many webhooks
/// it received again (and dropped).
async fn bridge_state(http: &reqwest::Client, bridge: &str) -> Value {
    http.get(format!("{bridge}/messages"))
        .send()
        .await
        .expect("bridge reachable")
        .json()
        .await
        .expect("bridge answers JSON")
}

async fn bridge_messages(http: &reqwest::Client, bridge: &str) -> Vec<Value> {
    bridge_state(http, bridge).await["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits (hang guard: 30 s) until the bridge holds a message for which `ready` holds.
async fn wait_bridge(
    http: &reqwest::Client,
    bridge: &str,
    what: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let messages = bridge_messages(http, bridge).await;
        if ready(&messages) {
            return messages;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {messages:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn session(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/v1/sessions/{id}"), Some(&app.read_token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn wait_session(
    app: &TestApp,
    id: &str,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = session(app, id).await;
        if ready(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn texts_of(messages: &[Value], kind: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["type"] == kind)
        .filter_map(|m| m["data"]["text"].as_str().map(str::to_string))
        .collect()
}

// The round trip through the example bridge: escalation on `line` with a bridge address →
// live conversation → the rep's messages reach the bridge once each, signed (a forged post to
// the bridge is refused) → the customer's answer through the bridge reaches the rep → the rep
// closes and the bridge hears of it.
both_databases!(the_example_bridge_round_trip, |db: Db| async move {
    let Some(python) = python3() else {
        eprintln!("SKIPPED the_example_bridge_round_trip: python3 is not installed");
        return;
    };
    let mut bridge = None;
    let app = spawn_live_app(db, sf_emulator::EmulatorConfig::default(), |c| {
        // The harness has set public_url to the gateway's own address: the bridge posts there.
        let gateway = c.public_url.clone().expect("public_url");
        let started = Bridge::start(python, &gateway);
        let table = json!({
            "type": "bridge",
            "url": format!("{}/handoff", started.url),
            "secret": TEST_WEBHOOK_SECRET,
            "allow_private_url": true,
        });
        c.channels.insert(
            "line".into(),
            serde_json::from_value(table).expect("a bridge table"),
        );
        c.miaw.channels = vec!["line".into()];
        bridge = Some(started);
    })
    .await;
    let bridge = bridge.expect("bridge started");
    let http = reqwest::Client::new();
    let rep = RepConsole::new(&app.emulator.url());

    // The bridge refuses what Handoff did not sign.
    let forged = http
        .post(format!("{}/handoff", bridge.url))
        .header("webhook-id", "msg_forged")
        .header(
            "webhook-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl")
        .body(r#"{"type":"agent.message","data":{"text":"forged"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let (status, answer) = app
        .post_escalation(&json!({
            "session_id": "line-1",
            "channel": "line",
            "customer": {"name": "Ana Ruiz"},
            "language": "en",
            "summary": "The customer's parcel 4471 is late.",
            "transcript": [
                {"role": "customer", "text": "My parcel 4471 is late.", "at": "2026-12-01T10:00:00Z"},
                {"role": "bot", "text": "A colleague will look into it.", "at": "2026-12-01T10:00:20Z"},
            ],
            "reply_to": {"address": ADDRESS},
        }))
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["route"], "messaging", "{answer}");
    let conversation = answer["salesforce_miaw_session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let conv = rep
        .wait_for(&conversation, "the transcript at the rep", |c| {
            c["status"] == "waiting"
                && texts_by(c, "EndUser")
                    .join("\n")
                    .contains("A colleague will look into it.")
        })
        .await;
    assert_eq!(conv["routing_attributes"]["Origin"], "line", "{conv}");

    let (status, body) = rep.accept(&conversation, "Jane Rep").await;
    assert_eq!(status, 200, "{body}");
    let said = ["Hi Ana, I'm Jane.", "Your parcel ships today."];
    for text in said {
        let (status, body) = rep.say(&conversation, text).await;
        assert_eq!(status, 202, "{body}");
    }
    let messages = wait_bridge(&http, &bridge.url, "the rep's messages", |m| {
        texts_of(m, "agent.message").len() >= 2
    })
    .await;
    assert_eq!(texts_of(&messages, "agent.message"), said);
    assert!(
        messages
            .iter()
            .all(|m| m["data"]["address"] == ADDRESS && m["session_id"] == "line-1"),
        "{messages:?}"
    );

    // The customer answers on the channel: the bridge signs it and posts it to Handoff.
    let forwarded: Value = http
        .post(format!("{}/customer", bridge.url))
        .json(&json!({"address": ADDRESS, "text": "Great, thank you!"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(forwarded["handoff_status"], 200, "{forwarded}");
    let conv = rep
        .wait_for(&conversation, "the customer's answer", |c| {
            texts_by(c, "EndUser")
                .iter()
                .any(|t| t == "Great, thank you!")
        })
        .await;
    assert_eq!(
        texts_by(&conv, "EndUser")
            .iter()
            .filter(|t| *t == "Great, thank you!")
            .count(),
        1
    );

    let (status, body) = rep.close(&conversation).await;
    assert_eq!(status, 200, "{body}");
    wait_session(&app, "line-1", "closed", |s| s["status"] == "closed").await;
    let view = wait_session(&app, "line-1", "every delivery sent", |s| {
        let d = s["deliveries"].as_array().unwrap();
        d.iter().any(|d| d["type"] == "session.closed") && d.iter().all(|d| d["state"] == "sent")
    })
    .await;
    // Each delivery reached the bridge exactly once (its webhook-id is the delivery id).
    let ids: Vec<&str> = view["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    let messages = wait_bridge(&http, &bridge.url, "the closing message", |m| {
        m.iter().any(|m| m["type"] == "session.closed")
    })
    .await;
    let received: Vec<&str> = messages
        .iter()
        .map(|m| m["webhook_id"].as_str().unwrap())
        .collect();
    assert_eq!(received, ids, "each once, in order");
    assert_eq!(
        bridge_state(&http, &bridge.url).await["duplicates"],
        0,
        "no webhook was sent twice"
    );
    assert_eq!(texts_of(&messages, "agent.message"), said);
});
