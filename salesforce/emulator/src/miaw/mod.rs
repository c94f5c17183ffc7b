//! Messaging for In-App and Web (Enhanced Chat): the custom-client REST API, the SSE event
//! router, and a rep console, as `shared/reference/miaw.md` describes them.
//!
//! State lives behind one mutex ([`Inner`]), never held across an `.await`. Events go to the
//! end user's subject only: each subject keeps its replay log and the senders of its own open
//! streams, so emitting an event costs O(streams of that subject), never O(all streams).
//!
//! Bounds: events per subject `miaw.replay_limit`; subjects and conversations
//! `miaw.max_conversations` each; entries per conversation [`ENTRY_LIMIT`]; files per
//! conversation [`FILE_LIMIT`]; open streams per subject [`STREAMS_PER_SUBJECT`]; events queued
//! per stream [`STREAM_QUEUE`] (a stream that falls further behind is closed; the client
//! reconnects with `Last-Event-Id` and gets the rest from the replay log).

pub(crate) mod console;
pub(crate) mod conversations;
mod entries;
mod error;
pub mod faults;
mod limits;
mod messages;
mod multipart;
mod records;
pub(crate) mod sse;
pub(crate) mod tokens;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{delete, get, post, put};
use tokio::sync::mpsc;

use crate::config::MiawConfig;
use crate::server::AppState;
use entries::Entry;
pub(crate) use error::MiawError;
use faults::MiawFaults;
use limits::RollingWindow;

/// Entries kept per conversation (transcript, console, message-id dedupe); older ones drop.
pub const ENTRY_LIMIT: usize = 2_000;
/// File descriptions kept per conversation (the bytes are never kept).
pub const FILE_LIMIT: usize = 100;
/// Open SSE streams per end-user subject (one per token; the oldest is closed beyond this).
pub const STREAMS_PER_SUBJECT: usize = 8;
/// Events queued for one stream that the client has not read yet.
pub const STREAM_QUEUE: usize = 256;

/// One SSE event as written on the wire (`id`, `event`, one-line JSON `data`).
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) id: u64,
    pub(crate) name: &'static str,
    pub(crate) data: String,
}

/// An open stream of a subject.
struct StreamSlot {
    /// The `jti` of the token it was opened with (one stream per token).
    token_id: String,
    /// Distinguishes this connection from a later one with the same token.
    conn: u64,
    tx: mpsc::Sender<Arc<Event>>,
}

/// An end user (`v2/iamessage/ANON/…` or `…/AUTH/…`): replay log and open streams.
#[derive(Default)]
struct Subject {
    /// The last `replay_limit` events, oldest first.
    log: VecDeque<Arc<Event>>,
    streams: Vec<StreamSlot>,
}

/// The state of a conversation as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Waiting,
    Active,
    Ended,
    Closed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Active => "active",
            Status::Ended => "ended",
            Status::Closed => "closed",
        }
    }
}

/// Omni-Channel's view of the conversation (`GET /conversation/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoutingStatus {
    Initial,
    Routed,
    NeedsRouting,
    Transfer,
}

impl RoutingStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RoutingStatus::Initial => "INITIAL",
            RoutingStatus::Routed => "ROUTED",
            RoutingStatus::NeedsRouting => "NEEDS_ROUTING",
            RoutingStatus::Transfer => "TRANSFER",
        }
    }
}

/// The rep working the conversation.
#[derive(Debug, Clone)]
pub(crate) struct Rep {
    pub(crate) name: String,
    /// A `005…` User id derived from the name.
    pub(crate) user_id: String,
}

/// A file the end user sent (description only).
#[derive(Debug, Clone)]
pub(crate) struct FileMeta {
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) size: usize,
}

/// One MIAW conversation.
pub(crate) struct Conversation {
    pub(crate) id: String,
    pub(crate) subject: String,
    pub(crate) deployment: String,
    /// The `Conversation` record `0dw…`.
    pub(crate) record_id: String,
    /// The current (latest) MessagingSession `0Mw…`.
    pub(crate) session_id: String,
    pub(crate) status: Status,
    pub(crate) routing_status: RoutingStatus,
    pub(crate) routing_attributes: BTreeMap<String, String>,
    pub(crate) dropped_attributes: Vec<String>,
    pub(crate) language: Option<String>,
    pub(crate) rep: Option<Rep>,
    pub(crate) created_at: String,
    pub(crate) created_ms: i64,
    pub(crate) entries: VecDeque<Entry>,
    /// `message.id`s of the end-user messages still in `entries` (dedupe).
    message_ids: HashSet<String>,
    pub(crate) files: VecDeque<FileMeta>,
    sent: RollingWindow,
}

/// Everything behind the MIAW lock.
pub(crate) struct Inner {
    /// The org's event counter: every event id is larger than every earlier one.
    next_event_id: u64,
    subjects: HashMap<String, Subject>,
    /// Subjects in creation order (eviction order).
    subject_order: VecDeque<String>,
    conversations: HashMap<String, Conversation>,
    /// Conversations in creation order (eviction order).
    conversation_order: VecDeque<String>,
    pub(crate) agents_available: bool,
    pub(crate) faults: MiawFaults,
    token_window: RollingWindow,
    next_conn: u64,
}

/// The MIAW side of the emulator.
pub(crate) struct Miaw {
    pub(crate) config: MiawConfig,
    pub(crate) keys: tokens::Keys,
    inner: Mutex<Inner>,
    /// Live copy of `faults.delay_events_ms`, read by streams without the lock.
    pub(crate) delay_events_ms: AtomicU64,
    /// Ends every stream when the emulator shuts down (streams never end by themselves).
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

impl Miaw {
    pub(crate) fn new(config: MiawConfig) -> Result<Self, String> {
        let keys = tokens::Keys::new(&config)?;
        Ok(Miaw {
            inner: Mutex::new(Inner {
                next_event_id: 1,
                subjects: HashMap::new(),
                subject_order: VecDeque::new(),
                conversations: HashMap::new(),
                conversation_order: VecDeque::new(),
                agents_available: config.agents_available,
                faults: MiawFaults::default(),
                token_window: RollingWindow::default(),
                next_conn: 0,
            }),
            delay_events_ms: AtomicU64::new(0),
            shutdown: tokio_util::sync::CancellationToken::new(),
            keys,
            config,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::server::lock(&self.inner)
    }
}

impl Inner {
    /// Makes sure a subject exists (forgetting the oldest idle one beyond `max`).
    pub(crate) fn touch_subject(&mut self, subject: &str, max: usize) {
        if self.subjects.contains_key(subject) {
            return;
        }
        // Bounded scan: subjects with open streams go to the back once.
        let mut budget = self.subject_order.len();
        while self.subjects.len() >= max && budget > 0 {
            budget -= 1;
            let Some(old) = self.subject_order.pop_front() else {
                break;
            };
            if self
                .subjects
                .get(&old)
                .is_some_and(|s| !s.streams.is_empty())
            {
                self.subject_order.push_back(old);
            } else {
                self.subjects.remove(&old);
            }
        }
        self.subjects
            .insert(subject.to_string(), Subject::default());
        self.subject_order.push_back(subject.to_string());
    }

    /// The id of the subject's latest event still in its log, or the org's latest event id.
    pub(crate) fn last_event_id(&self, subject: &str) -> u64 {
        self.subjects
            .get(subject)
            .and_then(|s| s.log.back())
            .map(|e| e.id)
            .unwrap_or(self.next_event_id - 1)
    }

    /// Appends an event to the subject's log and hands it to the subject's open streams.
    fn emit(&mut self, subject: &str, name: &'static str, data: String, config: &MiawConfig) {
        let id = self.next_event_id;
        self.next_event_id += 1;
        let event = Arc::new(Event { id, name, data });
        self.touch_subject(subject, config.max_conversations);
        let s = self.subjects.entry(subject.to_string()).or_default();
        s.log.push_back(event.clone());
        while s.log.len() > config.replay_limit {
            s.log.pop_front();
        }
        // A stream whose client is gone or too far behind is closed (dropping its sender).
        s.streams
            .retain(|slot| slot.tx.try_send(event.clone()).is_ok());
    }

    /// Registers a stream for `token_id`, closing an earlier one with the same token, and
    /// returns the events to replay (those after `after`) and the receiver, atomically.
    pub(crate) fn open_stream(
        &mut self,
        subject: &str,
        token_id: &str,
        after: Option<u64>,
        max_subjects: usize,
    ) -> (u64, Vec<Arc<Event>>, mpsc::Receiver<Arc<Event>>) {
        self.touch_subject(subject, max_subjects);
        self.next_conn += 1;
        let conn = self.next_conn;
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let s = self.subjects.entry(subject.to_string()).or_default();
        s.streams.retain(|slot| slot.token_id != token_id);
        if s.streams.len() >= STREAMS_PER_SUBJECT {
            s.streams.remove(0);
        }
        s.streams.push(StreamSlot {
            token_id: token_id.to_string(),
            conn,
            tx,
        });
        let replay = match after {
            Some(after) => s.log.iter().filter(|e| e.id > after).cloned().collect(),
            None => Vec::new(),
        };
        (conn, replay, rx)
    }

    /// Forgets a stream that ended (no-op when a newer connection replaced it).
    pub(crate) fn close_stream(&mut self, subject: &str, conn: u64) {
        if let Some(s) = self.subjects.get_mut(subject) {
            s.streams.retain(|slot| slot.conn != conn);
        }
    }

    pub(crate) fn conversation(&self, id: &str) -> Option<&Conversation> {
        self.conversations.get(id)
    }

    pub(crate) fn conversation_mut(&mut self, id: &str) -> Option<&mut Conversation> {
        self.conversations.get_mut(id)
    }

    /// Conversations, oldest first.
    pub(crate) fn conversations(&self) -> impl Iterator<Item = &Conversation> {
        self.conversation_order
            .iter()
            .filter_map(|id| self.conversations.get(id))
    }

    /// Room for one more conversation: forgets the oldest closed one when full.
    fn make_room(&mut self, max: usize) -> bool {
        if self.conversations.len() < max {
            return true;
        }
        let closed = self.conversation_order.iter().position(|id| {
            self.conversations
                .get(id)
                .is_none_or(|c| c.status == Status::Closed)
        });
        match closed {
            Some(i) => {
                if let Some(id) = self.conversation_order.remove(i) {
                    self.conversations.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    fn insert_conversation(&mut self, c: Conversation) {
        self.conversation_order.push_back(c.id.clone());
        self.conversations.insert(c.id.clone(), c);
    }

    /// Records an entry on the conversation and emits it on the end user's stream.
    pub(crate) fn record(&mut self, conversation_id: &str, entry: Entry, config: &MiawConfig) {
        let Some(c) = self.conversations.get_mut(conversation_id) else {
            return;
        };
        let subject = c.subject.clone();
        let data = entry.envelope(c).to_string();
        let name = entry.event_name;
        if let Some(id) = entry.client_message_id() {
            c.message_ids.insert(id.to_string());
        }
        c.entries.push_back(entry);
        while c.entries.len() > ENTRY_LIMIT {
            if let Some(old) = c.entries.pop_front()
                && let Some(id) = old.client_message_id()
            {
                c.message_ids.remove(id);
            }
        }
        self.emit(&subject, name, data, config);
    }
}

/// Routes of the MIAW API and the rep console.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    const V2: &str = "/iamessage/api/v2";
    Router::new()
        .route(
            &format!("{V2}/authorization/unauthenticated/access-token"),
            post(tokens::unauthenticated),
        )
        .route(
            &format!("{V2}/authorization/authenticated/access-token"),
            post(tokens::authenticated),
        )
        .route(
            &format!("{V2}/authorization/continuation-access-token"),
            get(tokens::continuation),
        )
        .route(&format!("{V2}/conversation"), post(conversations::create))
        .route(&format!("{V2}/conversation/list"), get(conversations::list))
        .route(
            &format!("{V2}/conversation/{{id}}"),
            get(conversations::routing_status).delete(conversations::close),
        )
        .route(
            &format!("{V2}/conversation/{{id}}/session"),
            delete(conversations::end_session_route),
        )
        .route(
            &format!("{V2}/conversation/{{id}}/message"),
            post(messages::send_message),
        )
        .route(
            &format!("{V2}/conversation/{{id}}/file"),
            // The whole body is already buffered (bounded by the server's body limit); the
            // 5 MB file rule answers 413 with a `message` itself.
            post(messages::send_file).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            &format!("{V2}/conversation/{{id}}/entry"),
            post(messages::typing),
        )
        .route(
            &format!("{V2}/conversation/{{id}}/acknowledge-entries"),
            post(messages::acknowledge),
        )
        .route(
            &format!("{V2}/conversation/{{id}}/entries"),
            get(conversations::entries),
        )
        .route("/eventrouter/v1/sse", get(sse::subscribe))
        .route("/__emulator/miaw/conversations", get(console::list))
        .route("/__emulator/miaw/conversations/{id}", get(console::show))
        .route(
            "/__emulator/miaw/conversations/{id}/accept",
            post(console::accept),
        )
        .route(
            "/__emulator/miaw/conversations/{id}/messages",
            post(console::message),
        )
        .route(
            "/__emulator/miaw/conversations/{id}/transfer",
            post(console::transfer),
        )
        .route(
            "/__emulator/miaw/conversations/{id}/leave",
            post(console::leave),
        )
        .route(
            "/__emulator/miaw/conversations/{id}/close",
            post(console::close),
        )
        .route("/__emulator/miaw/availability", put(console::availability))
        .route(
            "/__emulator/miaw/faults",
            get(console::get_faults)
                .put(console::put_faults)
                .delete(console::clear_faults),
        )
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner() -> (Inner, MiawConfig) {
        let config = MiawConfig {
            replay_limit: 3,
            max_conversations: 2,
            ..MiawConfig::default()
        };
        (
            Miaw::new(config.clone())
                .unwrap()
                .inner
                .into_inner()
                .unwrap(),
            config,
        )
    }

    #[test]
    fn a_stream_that_falls_too_far_behind_is_closed_and_can_replay() {
        let (mut inner, config) = inner();
        let (_, _, mut rx) = inner.open_stream("s", "t", None, 10);
        for _ in 0..=STREAM_QUEUE {
            inner.emit("s", "E", "{}".into(), &config);
        }
        assert!(inner.subjects["s"].streams.is_empty());
        let mut got = 0;
        while rx.try_recv().is_ok() {
            got += 1;
        }
        assert_eq!(got, STREAM_QUEUE);
        // The log kept the last `replay_limit` events for the reconnect.
        let last = inner.last_event_id("s");
        let (_, replay, _) = inner.open_stream("s", "t", Some(last - 2), 10);
        assert_eq!(replay.len(), 2);
        assert_eq!(inner.subjects["s"].log.len(), 3);
    }

    #[test]
    fn subjects_beyond_the_bound_forget_the_oldest_idle_one() {
        let (mut inner, config) = inner();
        let (_, _, _rx) = inner.open_stream("busy", "t", None, 2);
        inner.emit("idle", "E", "{}".into(), &config);
        inner.emit("new", "E", "{}".into(), &config);
        assert!(inner.subjects.contains_key("busy"));
        assert!(!inner.subjects.contains_key("idle"));
        assert!(inner.subjects.contains_key("new"));
        assert_eq!(inner.subjects.len(), 2);
    }

    #[test]
    fn event_ids_increase_across_subjects() {
        let (mut inner, config) = inner();
        inner.emit("a", "E", "{}".into(), &config);
        inner.emit("b", "E", "{}".into(), &config);
        assert!(inner.last_event_id("b") > inner.last_event_id("a"));
    }
}
