//! The one place where the channel world meets the Salesforce world: a
//! conversation becomes Case fields and internal CaseComments.

use serde_json::{Map, Value, json};

use channels::{ChannelKind, Conversation, Role, Turn, VoiceMode};

use crate::config::CaseConfig;
use crate::escalation::request::{EscalationPayload, SessionId};

/// `CaseComment.CommentBody` holds at most 4,000 bytes (UTF-8).
/// The live-messaging half: routing attributes, opening messages, stream events.
pub mod live;

pub const COMMENT_MAX_BYTES: usize = 4_000;
/// Room kept for the "Transcript k/N" header line of every comment.
const HEADER_RESERVE: usize = 32;
const SUBJECT_MAX_CHARS: usize = 255;
/// `Case.Description` holds at most 32,000 characters.
const DESCRIPTION_MAX_CHARS: usize = 32_000;
/// `Case.SuppliedEmail` (Web Email) holds at most 80 characters.
const SUPPLIED_EMAIL_MAX_CHARS: usize = 80;

/// Why a value was not written to its Case field (the `reason` of a
/// `case.field_omitted` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OmitReason {
    /// Longer than the field holds; cutting it would write a different address.
    TooLong,
    /// Salesforce's email check takes only ASCII letters, digits and
    /// `!#$%&'*+/=?^_`{|}~.-` in the local part and an ASCII dotted domain:
    /// internationalised addresses are refused at write time.
    NotAcceptedBySalesforce,
}

impl OmitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OmitReason::TooLong => "too_long",
            OmitReason::NotAcceptedBySalesforce => "not_accepted_by_salesforce",
        }
    }
}

/// Whether Salesforce's `SuppliedEmail` (an Email field) would take `address`,
/// or why not. The same check Salesforce applies to Email fields: a valid
/// address for the customer may still fail it.
pub fn supplied_email_check(address: &str) -> Result<(), OmitReason> {
    if address.chars().count() > SUPPLIED_EMAIL_MAX_CHARS {
        return Err(OmitReason::TooLong);
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(OmitReason::NotAcceptedBySalesforce);
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(OmitReason::NotAcceptedBySalesforce)
    }
}

/// The `case.field_omitted` events an escalation gets at accept time: one per
/// value that cannot go to its Case field as sent (`field`, `reason`, and where
/// the value is carried instead). Never the value itself.
pub fn omitted_fields(payload: &EscalationPayload) -> Vec<Value> {
    let mut events = Vec::new();
    if let Some(email) = &payload.conversation.customer.email
        && let Err(reason) = supplied_email_check(email.as_str())
    {
        events.push(json!({
            "field": "SuppliedEmail",
            "reason": reason.as_str(),
            "carried_in": "Description",
        }));
    }
    events
}

/// The first line of the Description when the address cannot go to `SuppliedEmail`.
fn email_note(address: &str) -> String {
    format!("Customer email (not accepted by the Web Email field): {address}\n\n")
}

/// Every comment starts with this header line; retries use it to find which parts exist.
pub fn comment_header(index: usize, total: usize) -> String {
    format!("Transcript {index}/{total}\n")
}

/// Parses a header written by [`comment_header`] back into `(index, total)`.
pub fn parse_comment_header(body: &str) -> Option<(usize, usize)> {
    let line = body.strip_prefix("Transcript ")?.split('\n').next()?;
    let (i, n) = line.split_once('/')?;
    Some((i.parse().ok()?, n.parse().ok()?))
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Customer => "Customer",
        Role::Bot => "Bot",
        Role::Agent => "Agent",
        Role::System => "System",
    }
}

/// One turn as it appears in the transcript: time (and, for a call, where in the call:
/// `[2026-11-22 09:00:03 UTC, call 00:03]`), speaker, text.
pub fn render_turn(turn: &Turn) -> String {
    let at = turn.at.format("%Y-%m-%d %H:%M:%S UTC");
    let at = match turn.offset_ms {
        Some(ms) => format!("{at}, call {}", call_clock(ms)),
        None => at.to_string(),
    };
    format!(
        "[{at}] {}: {}\n\n",
        role_label(turn.role),
        turn.text.trim_end()
    )
}

/// An offset into a call as `mm:ss`, or `h:mm:ss` from the first hour.
fn call_clock(ms: u64) -> String {
    let seconds = ms / 1000;
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// The line that tells a rep how a voice call was handed over, for voice conversations.
pub fn voice_note(conversation: &Conversation) -> Option<String> {
    let voice = conversation.voice?;
    let what = match voice.mode {
        VoiceMode::LiveTransfer => "the caller is being connected to you by phone",
        VoiceMode::Logged => "the AI assistant ended the call; follow up in writing",
    };
    Some(format!("Voice call ({}): {what}.", voice.mode.describe()))
}

/// The whole transcript as one text: the concatenation of every comment's body
/// (headers removed) equals this, byte for byte.
pub fn render_transcript(turns: &[Turn]) -> String {
    turns.iter().map(render_turn).collect()
}

/// Packs the transcript into as few comment bodies as fit in 4,000 bytes each:
/// cut on turn boundaries; a turn that does not fit in one comment is cut
/// mid-text, on a character boundary (preferring whitespace). Each body starts
/// with "Transcript k/N".
pub fn pack_comments(turns: &[Turn]) -> Vec<String> {
    let budget = COMMENT_MAX_BYTES - HEADER_RESERVE;
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    for turn in turns {
        let mut piece = render_turn(turn);
        if current.len() + piece.len() <= budget {
            current.push_str(&piece);
            continue;
        }
        if !current.is_empty() && piece.len() <= budget {
            chunks.push(std::mem::take(&mut current));
            current.push_str(&piece);
            continue;
        }
        // The turn is larger than what is left: fill the current comment, then whole ones.
        while current.len() + piece.len() > budget {
            let room = budget - current.len();
            let cut = split_point(&piece, room);
            if cut == 0 {
                chunks.push(std::mem::take(&mut current));
                continue;
            }
            current.push_str(&piece[..cut]);
            piece = piece[cut..].to_string();
            chunks.push(std::mem::take(&mut current));
        }
        current.push_str(&piece);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    let total = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let body = format!("{}{}", comment_header(i + 1, total), chunk);
            debug_assert!(body.len() <= COMMENT_MAX_BYTES);
            body
        })
        .collect()
}

/// The largest cut ≤ `room` bytes that lands on a char boundary, preferring just
/// after a whitespace character in the last quarter of the window.
pub(crate) fn split_point(text: &str, room: usize) -> usize {
    if text.len() <= room {
        return text.len();
    }
    let mut cut = room;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut window_start = cut - cut / 4;
    while !text.is_char_boundary(window_start) {
        window_start += 1;
    }
    match text[window_start..cut].rfind(char::is_whitespace) {
        Some(pos) => {
            let ws = window_start + pos;
            // Cut just after the whitespace character.
            ws + text[ws..].chars().next().map_or(1, char::len_utf8)
        }
        None => cut,
    }
}

fn truncate_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The Case fields for an escalation (without the external-id field, which is the
/// upsert key and goes in the URL).
pub fn case_fields(
    config: &CaseConfig,
    channel: &ChannelKind,
    session_id: &SessionId,
    payload: &EscalationPayload,
) -> Map<String, Value> {
    let conversation: &Conversation = &payload.conversation;
    let mut fields = Map::new();
    fields.insert(
        "Subject".into(),
        json!(subject(channel, conversation, payload.summary.as_deref())),
    );
    let description = payload.summary.clone().unwrap_or_else(|| {
        format!(
            "No AI summary was provided. The full transcript of Handoff session {session_id} is in the internal comments."
        )
    });
    let description = match voice_note(conversation) {
        Some(note) => {
            let note = format!("{note}\n\n");
            let room = DESCRIPTION_MAX_CHARS - note.chars().count();
            format!("{note}{}", truncate_chars(&description, room))
        }
        None => description,
    };
    let customer = &conversation.customer;
    let description = match &customer.email {
        Some(email) if supplied_email_check(email.as_str()).is_err() => {
            let note = email_note(email.as_str());
            let room = DESCRIPTION_MAX_CHARS - note.chars().count();
            format!("{note}{}", truncate_chars(&description, room))
        }
        _ => description,
    };
    fields.insert("Description".into(), json!(description));
    fields.insert(config.from_field.clone(), json!(config.from_value));
    if let Some(origin) = config.origin.get(&channel.to_string()) {
        fields.insert("Origin".into(), json!(origin));
    }
    if let Some(priority) = config.priority.get(payload.priority.as_str()) {
        fields.insert("Priority".into(), json!(priority));
    }
    if let Some(email) = &customer.email
        && supplied_email_check(email.as_str()).is_ok()
    {
        fields.insert("SuppliedEmail".into(), json!(email.as_str()));
    }
    if let Some(name) = &customer.name {
        fields.insert("SuppliedName".into(), json!(truncate_chars(name, 80)));
    }
    if let Some(phone) = &customer.phone {
        fields.insert("SuppliedPhone".into(), json!(truncate_chars(phone, 40)));
    }
    for (attribute, value) in &payload.attributes {
        if let Some(field) = config.attribute_fields.get(attribute) {
            fields.insert(field.clone(), json!(value));
        }
    }
    fields
}

fn subject(channel: &ChannelKind, conversation: &Conversation, summary: Option<&str>) -> String {
    let from_summary = summary
        .and_then(|s| s.lines().map(str::trim).find(|l| !l.is_empty()))
        .map(str::to_string);
    let raw = conversation
        .subject
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or(from_summary)
        .unwrap_or_else(|| format!("Escalated {channel} conversation"));
    truncate_chars(raw.trim(), SUBJECT_MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn turn(role: Role, text: &str, minute: u32) -> Turn {
        Turn {
            role,
            text: text.to_string(),
            at: Utc
                .with_ymd_and_hms(2026, 11, 22, 9, minute % 60, 0)
                .unwrap(),
            offset_ms: None,
        }
    }

    fn strip_headers(bodies: &[String]) -> String {
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let header = comment_header(i + 1, bodies.len());
                assert!(b.starts_with(&header), "comment {i} lacks its header");
                b[header.len()..].to_string()
            })
            .collect()
    }

    #[test]
    fn short_transcript_is_one_comment() {
        let turns = vec![
            turn(Role::Customer, "My order is late", 1),
            turn(Role::Bot, "Sorry!", 2),
        ];
        let bodies = pack_comments(&turns);
        assert_eq!(bodies.len(), 1);
        assert!(
            bodies[0].starts_with(
                "Transcript 1/1\n[2026-11-22 09:01:00 UTC] Customer: My order is late"
            )
        );
        assert_eq!(strip_headers(&bodies), render_transcript(&turns));
    }

    #[test]
    fn long_transcript_packs_under_the_byte_limit_in_order() {
        let turns: Vec<Turn> = (0..300)
            .map(|i| {
                turn(
                    if i % 2 == 0 {
                        Role::Customer
                    } else {
                        Role::Bot
                    },
                    &format!("turn {i} — ünïcödé text {}", "x".repeat(i % 97)),
                    i as u32,
                )
            })
            .collect();
        let bodies = pack_comments(&turns);
        assert!(bodies.len() > 1);
        for b in &bodies {
            assert!(b.len() <= COMMENT_MAX_BYTES, "{} bytes", b.len());
        }
        assert_eq!(strip_headers(&bodies), render_transcript(&turns));
        // Few comments: no comment except the last is less than half full.
        for b in &bodies[..bodies.len() - 1] {
            assert!(b.len() > COMMENT_MAX_BYTES / 2);
        }
    }

    #[test]
    fn huge_multibyte_turn_is_split_on_char_boundaries() {
        let text = "日本語のテキスト".repeat(2_000); // 3 bytes per char, ~48 KB
        let turns = vec![
            turn(Role::Customer, "hi", 0),
            turn(Role::Customer, &text, 1),
            turn(Role::Bot, "ok", 2),
        ];
        let bodies = pack_comments(&turns);
        assert!(bodies.len() >= 12);
        for b in &bodies {
            assert!(b.len() <= COMMENT_MAX_BYTES);
        }
        assert_eq!(strip_headers(&bodies), render_transcript(&turns));
    }

    #[test]
    fn supplied_email_takes_what_salesforce_takes() {
        assert_eq!(supplied_email_check("Ann.Example@example.com"), Ok(()));
        assert_eq!(
            supplied_email_check("jürgen@example.de"),
            Err(OmitReason::NotAcceptedBySalesforce)
        );
        let long = format!("{}@example.com", "a".repeat(64));
        assert_eq!(long.len(), 76);
        assert_eq!(supplied_email_check(&long), Ok(()));
        let longer = format!("{}@example-mail.com", "a".repeat(64));
        assert_eq!(supplied_email_check(&longer), Err(OmitReason::TooLong));
    }

    #[test]
    fn call_turns_show_where_in_the_call_they_are() {
        let mut t = turn(Role::Customer, "My card was declined.", 1);
        assert_eq!(
            render_turn(&t),
            "[2026-11-22 09:01:00 UTC] Customer: My card was declined.\n\n"
        );
        t.offset_ms = Some(3_840);
        assert_eq!(
            render_turn(&t),
            "[2026-11-22 09:01:00 UTC, call 00:03] Customer: My card was declined.\n\n"
        );
        t.offset_ms = Some(3_723_999);
        assert!(render_turn(&t).contains(", call 1:02:03]"));
    }

    #[test]
    fn voice_calls_say_how_they_were_handed_over() {
        let payload = |voice: Option<channels::VoiceInfo>| EscalationPayload {
            conversation: Conversation {
                subject: None,
                customer: channels::Customer::default(),
                language: "en".into(),
                turns: vec![turn(Role::Customer, "hi", 0)],
                thread: None,
                voice,
            },
            summary: Some("s".repeat(DESCRIPTION_MAX_CHARS)),
            priority: crate::escalation::request::Priority::Low,
            attributes: Default::default(),
            reply_to: None,
            verified_subject: None,
        };
        let config = crate::config::Config::defaults().case;
        let session = SessionId::parse("call-1").unwrap();
        let live = payload(Some(channels::VoiceInfo {
            mode: VoiceMode::LiveTransfer,
            format: Some(channels::VoiceFormat::Webvtt),
        }));
        let fields = case_fields(&config, &ChannelKind::Voice, &session, &live);
        let description = fields["Description"].as_str().unwrap();
        assert!(
            description.starts_with(
                "Voice call (live transfer): the caller is being connected to you by phone.\n\nsss"
            ),
            "{description}"
        );
        assert_eq!(description.chars().count(), DESCRIPTION_MAX_CHARS);
        let logged = payload(Some(channels::VoiceInfo {
            mode: VoiceMode::Logged,
            format: None,
        }));
        assert!(
            voice_note(&logged.conversation)
                .unwrap()
                .starts_with("Voice call (logged): the AI assistant ended the call")
        );
        let fields = case_fields(&config, &ChannelKind::Voice, &session, &payload(None));
        assert!(fields["Description"].as_str().unwrap().starts_with("sss"));
    }

    #[test]
    fn headers_round_trip() {
        assert_eq!(parse_comment_header(&comment_header(3, 12)), Some((3, 12)));
        assert_eq!(parse_comment_header("hello"), None);
    }
}
