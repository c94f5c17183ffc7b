//! [`EventStream`]: one MIAW SSE connection as a stream of typed events (miaw.md §4).
//!
//! Bytes from the connection are cut into lines here before `eventsource-stream` sees them,
//! one line per item: that keeps its parser linear (it re-scans an unfinished line on every
//! chunk otherwise) and bounds memory. An event whose lines add up to more than
//! [`MAX_EVENT_DATA`] (plus [`FIELD_ALLOWANCE`] for its `id:`/`event:` lines), or whose
//! `data` is larger than [`MAX_EVENT_DATA`], ends the stream with [`MiawError::Protocol`].
//! So does silence longer than [`HEARTBEAT_TIMEOUT`] (MIAW pings every few seconds), as
//! [`MiawError::Unavailable`].

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::stream::{self, BoxStream, Stream, StreamExt};

use super::error::MiawError;
use super::events::{StreamEvent, parse_event};

/// Largest `data` of one event: 1 MiB.
pub const MAX_EVENT_DATA: usize = 1024 * 1024;
/// Room for an event's other lines (`id:`, `event:`, comments) on top of its data.
pub const FIELD_ALLOWANCE: usize = 4 * 1024;
/// Longest silence (no bytes at all, pings included) before the connection is given up.
/// Salesforce's sample client uses the same 90 s heartbeat timeout.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(90);

/// `impl futures_util::Stream<Item = Result<StreamEvent, MiawError>> + Unpin + Send`.
///
/// Ends (`None`) when the server closes the connection, after a transport error, an
/// oversized event or a heartbeat timeout (each reported once as the last item). An event of
/// a known type with malformed data is reported as `Err(Protocol)` and the stream goes on;
/// the next event's id moves the cursor past it. Pings are items too
/// ([`MiawEvent::Ping`](super::MiawEvent::Ping)): they prove the connection is alive.
pub struct EventStream {
    inner: BoxStream<'static, Result<StreamEvent, MiawError>>,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl Stream for EventStream {
    type Item = Result<StreamEvent, MiawError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// What one SSE event turns into.
enum Step {
    /// An item; the stream goes on.
    Item(Result<StreamEvent, MiawError>),
    /// The last item; the stream ends after it.
    Fatal(MiawError),
}

impl EventStream {
    /// A stream over the body of a `200 text/event-stream` response.
    pub(crate) fn from_response(response: reqwest::Response) -> Self {
        let bytes = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(|err| MiawError::transport(&err)));
        Self::from_bytes(bytes, HEARTBEAT_TIMEOUT)
    }

    /// A stream over raw SSE bytes.
    pub(crate) fn from_bytes<S, B>(bytes: S, heartbeat: Duration) -> Self
    where
        S: Stream<Item = Result<B, MiawError>> + Send + 'static,
        B: AsRef<[u8]> + Send + 'static,
    {
        let lines = framed_lines(bytes, heartbeat);
        let inner = lines
            .eventsource()
            .map(|item| match item {
                Ok(event) => convert(event),
                Err(EventStreamError::Transport(err)) => Step::Fatal(err),
                Err(EventStreamError::Utf8(_)) => {
                    Step::Fatal(MiawError::Protocol("event stream is not UTF-8".into()))
                }
                Err(EventStreamError::Parser(_)) => {
                    Step::Fatal(MiawError::Protocol("event stream line is not SSE".into()))
                }
            })
            .scan(false, |ended, step| {
                let item = match step {
                    _ if *ended => None,
                    Step::Item(item) => Some(item),
                    Step::Fatal(err) => {
                        *ended = true;
                        Some(Err(err))
                    }
                };
                std::future::ready(item)
            })
            .boxed();
        EventStream { inner }
    }
}

fn convert(event: Event) -> Step {
    if event.data.len() > MAX_EVENT_DATA {
        return Step::Fatal(MiawError::Protocol(format!(
            "a {} event carries more than {MAX_EVENT_DATA} bytes of data",
            event.event
        )));
    }
    let id = (!event.id.is_empty()).then_some(event.id);
    Step::Item(parse_event(&event.event, &event.data).map(|event| StreamEvent { id, event }))
}

/// Cuts `bytes` into complete lines (terminator included), one per item; ends with an
/// error on silence longer than `heartbeat`, on a transport error, or when the event being
/// read grows past the limit.
fn framed_lines<S, B>(
    bytes: S,
    heartbeat: Duration,
) -> BoxStream<'static, Result<Vec<u8>, MiawError>>
where
    S: Stream<Item = Result<B, MiawError>> + Send + 'static,
    B: AsRef<[u8]> + Send + 'static,
{
    struct State<S> {
        bytes: Pin<Box<S>>,
        framer: LineFramer,
        ready: VecDeque<Vec<u8>>,
        done: bool,
    }
    let state = State {
        bytes: Box::pin(bytes),
        framer: LineFramer::new(MAX_EVENT_DATA + FIELD_ALLOWANCE),
        ready: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, move |mut state| async move {
        loop {
            if let Some(line) = state.ready.pop_front() {
                return Some((Ok(line), state));
            }
            if state.done {
                return None;
            }
            let failure = match tokio::time::timeout(heartbeat, state.bytes.next()).await {
                Err(_) => MiawError::Unavailable {
                    status: None,
                    message: format!("no event or ping for {} s", heartbeat.as_secs()),
                },
                Ok(None) => {
                    state.framer.finish(&mut state.ready);
                    state.done = true;
                    continue;
                }
                Ok(Some(Err(err))) => err,
                Ok(Some(Ok(chunk))) => match state.framer.push(chunk.as_ref(), &mut state.ready) {
                    Ok(()) => continue,
                    Err(err) => err,
                },
            };
            // `ready` was empty before this chunk; lines it completed belong to the event
            // that overflowed and are dropped with it.
            state.ready.clear();
            state.done = true;
            return Some((Err(failure), state));
        }
    })
    .boxed()
}

/// Splits bytes into SSE lines (ended by CRLF, LF or CR) and tracks the size of the event
/// being read: the lengths of its lines since the last blank line.
struct LineFramer {
    /// The unfinished line. Bounded by `limit`.
    partial: Vec<u8>,
    /// Bytes (without terminators) of the current event's finished lines.
    event_bytes: usize,
    limit: usize,
}

impl LineFramer {
    fn new(limit: usize) -> Self {
        LineFramer {
            partial: Vec::new(),
            event_bytes: 0,
            limit,
        }
    }

    fn push(&mut self, chunk: &[u8], out: &mut VecDeque<Vec<u8>>) -> Result<(), MiawError> {
        for &byte in chunk {
            // A CR ends a line by itself unless an LF follows it.
            if self.partial.last() == Some(&b'\r') && byte != b'\n' {
                self.finish_line(out);
            }
            self.partial.push(byte);
            if byte == b'\n' {
                self.finish_line(out);
            } else if self.event_bytes + self.partial.len() > self.limit {
                return Err(MiawError::Protocol(format!(
                    "an event is larger than {MAX_EVENT_DATA} bytes"
                )));
            }
        }
        Ok(())
    }

    /// The last, unterminated line at the end of the body.
    fn finish(&mut self, out: &mut VecDeque<Vec<u8>>) {
        if !self.partial.is_empty() {
            self.finish_line(out);
        }
    }

    /// Moves the unfinished line to `out`. A lone CR terminator becomes LF (the same line
    /// end to SSE), so the parser never waits to see whether an LF follows it.
    fn finish_line(&mut self, out: &mut VecDeque<Vec<u8>>) {
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
            line.push(b'\n');
        }
        let terminator = if line.ends_with(b"\r\n") {
            2
        } else {
            usize::from(line.ends_with(b"\n"))
        };
        let content = line.len() - terminator;
        if content == 0 {
            self.event_bytes = 0;
        } else {
            self.event_bytes += content;
        }
        out.push_back(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::miaw::{MiawEvent, Role};
    use serde_json::json;

    fn stream_of(chunks: Vec<Vec<u8>>) -> EventStream {
        let items: Vec<Result<Vec<u8>, MiawError>> = chunks.into_iter().map(Ok).collect();
        EventStream::from_bytes(stream::iter(items), HEARTBEAT_TIMEOUT)
    }

    async fn collect(stream: EventStream) -> Vec<Result<StreamEvent, MiawError>> {
        stream.collect().await
    }

    fn message_frame(id: &str, text: &str) -> String {
        let payload = json!({"entryType": "Message", "id": id, "abstractMessage": {
            "messageType": "StaticContentMessage", "id": id,
            "staticContent": {"formatType": "Text", "text": text}}});
        let data = json!({"conversationId": "01c25401-3353-444e-8323-ace07e1b7375",
            "conversationEntry": {"identifier": id, "entryType": "Message",
            "entryPayload": payload.to_string(), "sender": {"role": "Agent"},
            "senderDisplayName": "Jane Rep", "relatedRecords": ["0MwV900000EL6f3AAD"]}});
        format!("id: {id}\nevent: CONVERSATION_MESSAGE\ndata: {data}\n\n")
    }

    #[test]
    fn the_stream_is_send_and_unpin() {
        fn check<T: Send + Unpin + Stream<Item = Result<StreamEvent, MiawError>>>() {}
        check::<EventStream>();
    }

    #[tokio::test]
    async fn events_split_across_chunks_and_pings_parse() {
        let body = format!(
            "event: ping\ndata: 0\n\n{}: a comment\r\n{}",
            message_frame("101", "hello"),
            message_frame("102", "ünïcode")
        );
        // Three-byte chunks cut lines, CRLFs and UTF-8 characters apart.
        let chunks = body.as_bytes().chunks(3).map(<[u8]>::to_vec).collect();
        let items = collect(stream_of(chunks)).await;
        let events: Vec<StreamEvent> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0],
            StreamEvent {
                id: None,
                event: MiawEvent::Ping
            }
        );
        assert_eq!(events[1].id.as_deref(), Some("101"));
        let MiawEvent::Message { text, role, .. } = &events[2].event else {
            panic!("expected a message");
        };
        assert_eq!(text.as_deref(), Some("ünïcode"));
        assert_eq!(*role, Role::Agent);
        assert_eq!(events[2].id.as_deref(), Some("102"));
    }

    #[tokio::test]
    async fn cr_only_line_endings_work() {
        let body = message_frame("7", "hi").replace('\n', "\r");
        let items = collect(stream_of(vec![body.into_bytes()])).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().id.as_deref(), Some("7"));
    }

    #[tokio::test]
    async fn unknown_types_pass_and_malformed_known_events_do_not_end_the_stream() {
        let body = format!(
            "id: 1\nevent: CONVERSATION_STREAMING_TOKEN\ndata: {{}}\n\n\
             id: 2\nevent: CONVERSATION_MESSAGE\ndata: {{not json\n\n{}",
            message_frame("3", "after")
        );
        let items = collect(stream_of(vec![body.into_bytes()])).await;
        assert_eq!(items.len(), 3);
        assert!(matches!(
            items[0].as_ref().unwrap().event,
            MiawEvent::Other { .. }
        ));
        assert!(matches!(items[1], Err(MiawError::Protocol(_))));
        assert_eq!(items[2].as_ref().unwrap().id.as_deref(), Some("3"));
    }

    #[tokio::test]
    async fn data_over_one_mib_ends_the_stream() {
        let big = "x".repeat(MAX_EVENT_DATA + 1);
        let body =
            format!("event: ping\ndata: 0\n\nid: 5\nevent: CONVERSATION_MESSAGE\ndata: {big}\n\n");
        // Even fed in small chunks, and even though more events follow.
        let mut chunks: Vec<Vec<u8>> = body
            .as_bytes()
            .chunks(64 * 1024)
            .map(<[u8]>::to_vec)
            .collect();
        chunks.push(message_frame("6", "never seen").into_bytes());
        let items = collect(stream_of(chunks)).await;
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(matches!(items[0].as_ref().unwrap().event, MiawEvent::Ping));
        assert!(matches!(items[1], Err(MiawError::Protocol(_))));
    }

    #[tokio::test]
    async fn data_split_over_many_lines_is_bounded_too() {
        let line = format!("data: {}\n", "y".repeat(1000));
        let body = format!("event: CONVERSATION_MESSAGE\n{}\n", line.repeat(1100));
        let items = collect(stream_of(vec![body.into_bytes()])).await;
        assert_eq!(items.len(), 1);
        assert!(matches!(items[0], Err(MiawError::Protocol(_))));
    }

    #[tokio::test]
    async fn data_of_exactly_one_mib_is_accepted() {
        let data = format!("\"{}\"", "z".repeat(MAX_EVENT_DATA - 2));
        let body = format!("id: 9\nevent: SOMETHING_NEW\ndata: {data}\n\n");
        let items = collect(stream_of(vec![body.into_bytes()])).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].as_ref().unwrap().id.as_deref(), Some("9"));
    }

    #[tokio::test]
    async fn transport_errors_end_the_stream_after_complete_events() {
        let items: Vec<Result<Vec<u8>, MiawError>> = vec![
            Ok(message_frame("1", "a").into_bytes()),
            Err(MiawError::Unavailable {
                status: None,
                message: "reset".into(),
            }),
            Ok(message_frame("2", "b").into_bytes()),
        ];
        let events = collect(EventStream::from_bytes(
            stream::iter(items),
            HEARTBEAT_TIMEOUT,
        ))
        .await;
        assert_eq!(events.len(), 2);
        assert!(events[0].is_ok());
        assert!(matches!(events[1], Err(MiawError::Unavailable { .. })));
    }

    #[tokio::test]
    async fn silence_past_the_heartbeat_ends_the_stream() {
        // The source never yields again, so the heartbeat is what ends the stream.
        let first: Vec<Result<Vec<u8>, MiawError>> = vec![Ok(b"event: ping\ndata: 0\n\n".to_vec())];
        let bytes = stream::iter(first).chain(stream::pending());
        let events = collect(EventStream::from_bytes(bytes, Duration::from_millis(50))).await;
        assert_eq!(events.len(), 2);
        assert!(matches!(
            events[1],
            Err(MiawError::Unavailable { status: None, .. })
        ));
    }
}
