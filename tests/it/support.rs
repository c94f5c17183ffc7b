//! Helpers shared by the tests in this binary.

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use serde_json::{Value, json};

/// A transcript of `n` turns alternating customer and bot, with distinct texts.
pub fn transcript(n: usize) -> Vec<Value> {
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
    (0..n)
        .map(|i| {
            let role = if i % 2 == 0 { "customer" } else { "bot" };
            json!({
                "role": role,
                "text": format!("Turn {i}: {} — ünïcødé ✓ {}", if i % 2 == 0 { "my parcel is late" } else { "let me check that" }, "detail ".repeat(i % 60 + 20)),
                "at": (start + ChronoDuration::seconds(i as i64 * 30)).to_rfc3339(),
            })
        })
        .collect()
}

pub fn escalation(session_id: &str, turns: usize) -> Value {
    json!({
        "session_id": session_id,
        "channel": "email",
        "customer": {"name": "Ann Example", "email": "Ann.Example@Example.com", "phone": "+14155550100"},
        "priority": "high",
        "subject": "Parcel is late",
        "summary": "Customer's parcel is two weeks late; bot could not locate it. Needs a human to open a courier claim.",
        "transcript": transcript(turns),
    })
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// What the transcript looks like once rendered: what the comments must hold.
pub fn rendered(turns: &[Value]) -> String {
    turns
        .iter()
        .map(|t| {
            let at = chrono::DateTime::parse_from_rfc3339(t["at"].as_str().unwrap())
                .unwrap()
                .with_timezone(&Utc);
            let role = match t["role"].as_str().unwrap() {
                "customer" => "Customer",
                "bot" => "Bot",
                "agent" => "Agent",
                _ => "System",
            };
            format!(
                "[{}] {}: {}\n\n",
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                role,
                t["text"].as_str().unwrap().trim_end()
            )
        })
        .collect()
}

/// Strips "Transcript k/N" headers (checking they are complete and in order)
/// and concatenates the bodies.
pub fn reassemble(bodies: &[String]) -> String {
    let total = bodies.len();
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let header = format!("Transcript {}/{}\n", i + 1, total);
            assert!(
                b.starts_with(&header),
                "comment {} does not start with {header:?}",
                i + 1
            );
            assert!(b.len() <= 4000, "comment {} is {} bytes", i + 1, b.len());
            b[header.len()..].to_string()
        })
        .collect()
}
