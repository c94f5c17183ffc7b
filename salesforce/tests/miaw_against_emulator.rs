//! `salesforce::miaw` against the project's Salesforce emulator, over real sockets: tokens,
//! the event stream with its replay cursor, conversations, the end-user echo carrying the
//! MessagingSession id, rep events driven through the emulator's rep console, the 417
//! reopen, 401 on expired tokens, 429, files and user verification.
//!
//! Each test has its own emulator and token, so one test's events never reach another's
//! stream. Waiting for an event is bounded by [`EVENT_WAIT`] only so a broken emulator fails
//! the test instead of hanging it; nothing asserts on time.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use salesforce::miaw::{
    AccessToken, ConversationId, EntriesQuery, EventStream, IdentitySigner, MiawClient, MiawConfig,
    MiawError, MiawEvent, OutgoingFile, OutgoingMessage, ParticipantChange, Role, RoutingStatus,
    StreamEvent,
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sf_emulator::{EmulatorConfig, EmulatorHandle};
use tokio::net::TcpListener;
use uuid::Uuid;

const DEPLOYMENT: &str = "Handoff_Chat";
const EVENT_WAIT: Duration = Duration::from_secs(20);
const PRIVATE_KEY: &str = include_str!("fixtures/test-only-rsa-private.pem");
const PUBLIC_KEY: &str = include_str!("fixtures/test-only-rsa-public.pem");

async fn start(config: EmulatorConfig) -> EmulatorHandle {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    sf_emulator::spawn(config, listener).await.unwrap()
}

/// The default emulator config with `edit` applied to its `miaw` table (kept to serde so
/// the test does not depend on how the emulator's config types are re-exported).
fn emulator_config(edit: impl FnOnce(&mut Value)) -> EmulatorConfig {
    let mut value = serde_json::to_value(EmulatorConfig::default()).unwrap();
    edit(&mut value["miaw"]);
    serde_json::from_value(value).unwrap()
}

fn client_for(emulator: &EmulatorHandle) -> MiawClient {
    let mut config = MiawConfig::new(emulator.url(), EmulatorConfig::default().org_id, DEPLOYMENT);
    config.timeout = Duration::from_secs(10);
    MiawClient::new(config).unwrap()
}

fn bearer(token: &AccessToken) -> &str {
    token.token.expose_secret()
}

fn attributes(session: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("OpencxSessionId".to_owned(), session.to_owned()),
        ("Chat_Consumer_Type".to_owned(), "Retail".to_owned()),
    ])
}

fn text_message(text: &str) -> OutgoingMessage {
    OutgoingMessage {
        id: Uuid::new_v4(),
        text: text.to_owned(),
        routing_attributes: Some(attributes("sess")),
        language: Some("en_US".to_owned()),
    }
}

/// The next event that is not a ping.
async fn next_event(stream: &mut EventStream) -> StreamEvent {
    loop {
        let item = tokio::time::timeout(EVENT_WAIT, stream.next())
            .await
            .expect("no event arrived")
            .expect("the stream ended")
            .expect("the stream failed");
        if item.event != MiawEvent::Ping {
            return item;
        }
    }
}

/// Events until (and including) the first one `done` accepts.
async fn events_until(
    stream: &mut EventStream,
    done: impl Fn(&MiawEvent) -> bool,
) -> Vec<StreamEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next_event(stream).await;
        let last = done(&event.event);
        seen.push(event);
        if last {
            return seen;
        }
    }
}

fn is_echo_of(message: &OutgoingMessage) -> impl Fn(&MiawEvent) -> bool {
    let id = message.id.to_string();
    move |event| matches!(event, MiawEvent::Message { role: Role::EndUser, entry_id, .. } if *entry_id == id)
}

/// A token, its stream, and a routed conversation.
struct Chat {
    client: MiawClient,
    token: AccessToken,
    events: EventStream,
    id: ConversationId,
}

async fn open_chat(emulator: &EmulatorHandle, session: &str) -> Chat {
    let client = client_for(emulator);
    let token = client.unauthenticated_token().await.unwrap();
    let mut events = client
        .subscribe(bearer(&token), token.last_event_id.as_deref())
        .await
        .unwrap();
    let id = ConversationId::for_session(session);
    client
        .create_conversation(bearer(&token), &id, &attributes(session), Some("en_US"))
        .await
        .unwrap();
    let routed = next_event(&mut events).await;
    assert_eq!(
        routed.event,
        MiawEvent::RoutingResult {
            conversation_id: id.to_string(),
            routing_type: "Initial".into(),
            failure_type: "None".into(),
            failure_reason: None,
        }
    );
    Chat {
        client,
        token,
        events,
        id,
    }
}

async fn console(
    emulator: &EmulatorHandle,
    id: &ConversationId,
    action: &str,
    body: Value,
) -> Value {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/__emulator/miaw/conversations/{id}/{action}",
            emulator.url()
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "console {action}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

async fn set_faults(emulator: &EmulatorHandle, faults: Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/__emulator/miaw/faults", emulator.url()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "faults: {}",
        response.status()
    );
}

async fn console_show(emulator: &EmulatorHandle, id: &ConversationId) -> Value {
    reqwest::get(format!(
        "{}/__emulator/miaw/conversations/{id}",
        emulator.url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap()
}

fn session_record(event: &MiawEvent) -> String {
    let MiawEvent::Message {
        related_records, ..
    } = event
    else {
        panic!("expected a message, got {event:?}");
    };
    assert_eq!(related_records.len(), 1, "{related_records:?}");
    let record = related_records[0].clone();
    assert!(record.starts_with("0Mw") && record.len() == 18, "{record}");
    record
}

#[tokio::test]
async fn token_stream_conversation_and_the_end_user_echo_with_its_session_record() {
    let emulator = start(EmulatorConfig::default()).await;
    let client = client_for(&emulator);
    let token = client.unauthenticated_token().await.unwrap();
    assert!(
        token
            .subject
            .as_deref()
            .unwrap()
            .starts_with("v2/iamessage/ANON/")
    );
    assert!(!token.is_authenticated());
    assert!(token.last_event_id.is_some());
    assert!(token.expires_at.is_some());

    let mut chat = open_chat(&emulator, "sess-echo").await;
    let message = text_message("my printer is on fire");
    let sent = chat
        .client
        .send_message(bearer(&chat.token), &chat.id, &message)
        .await
        .unwrap();
    assert!(!sent.reopened);

    let echo = next_event(&mut chat.events).await;
    assert!(is_echo_of(&message)(&echo.event), "{echo:?}");
    let MiawEvent::Message {
        conversation_id,
        text,
        ..
    } = &echo.event
    else {
        unreachable!()
    };
    assert_eq!(conversation_id, &chat.id.to_string());
    assert_eq!(text.as_deref(), Some("my printer is on fire"));
    let record = session_record(&echo.event);
    assert_eq!(
        console_show(&emulator, &chat.id).await["messaging_session_id"],
        json!(record)
    );
    assert!(echo.id.is_some());
}

#[tokio::test]
async fn the_same_message_id_twice_is_one_entry() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-dedupe").await;
    let first = text_message("once");
    let second = text_message("marker");
    for message in [&first, &first, &second] {
        chat.client
            .send_message(bearer(&chat.token), &chat.id, message)
            .await
            .unwrap();
    }
    let seen = events_until(&mut chat.events, is_echo_of(&second)).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(is_echo_of(&first)(&seen[0].event));
}

#[tokio::test]
async fn creating_the_same_conversation_again_is_idempotent_but_not_for_another_subject() {
    let emulator = start(EmulatorConfig::default()).await;
    let chat = open_chat(&emulator, "sess-idem").await;
    chat.client
        .create_conversation(
            bearer(&chat.token),
            &chat.id,
            &attributes("sess-idem"),
            Some("en_US"),
        )
        .await
        .unwrap();

    let stranger = chat.client.unauthenticated_token().await.unwrap();
    let err = chat
        .client
        .create_conversation(bearer(&stranger), &chat.id, &BTreeMap::new(), None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err:?}");
    assert!(matches!(err, MiawError::Rejected { .. }));
}

#[tokio::test]
async fn rep_accept_and_reply_arrive_as_typed_events() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-rep").await;

    console(
        &emulator,
        &chat.id,
        "accept",
        json!({"rep_name": "Jane Rep"}),
    )
    .await;
    let joined = next_event(&mut chat.events).await;
    assert_eq!(
        joined.event,
        MiawEvent::ParticipantChanged {
            conversation_id: chat.id.to_string(),
            changes: vec![ParticipantChange {
                added: true,
                role: Role::Agent,
                display_name: Some("Jane Rep".into()),
            }],
        }
    );
    let active = next_event(&mut chat.events).await;
    assert!(
        matches!(&active.event, MiawEvent::SessionStatusChanged { status, .. } if status == "Active"),
        "{active:?}"
    );

    console(
        &emulator,
        &chat.id,
        "messages",
        json!({"text": "Hi, I'm Jane."}),
    )
    .await;
    let reply = next_event(&mut chat.events).await;
    let MiawEvent::Message {
        role,
        sender_name,
        text,
        ..
    } = &reply.event
    else {
        panic!("expected a message, got {reply:?}");
    };
    assert_eq!(*role, Role::Agent);
    assert_eq!(sender_name.as_deref(), Some("Jane Rep"));
    assert_eq!(text.as_deref(), Some("Hi, I'm Jane."));
    session_record(&reply.event);

    let status = chat
        .client
        .routing_status(bearer(&chat.token), &chat.id)
        .await
        .unwrap();
    assert_eq!(status, RoutingStatus::Routed);

    let entries = chat
        .client
        .list_entries(
            bearer(&chat.token),
            &chat.id,
            &EntriesQuery {
                limit: Some(50),
                direction_from_end: false,
            },
        )
        .await
        .unwrap();
    let agent_message = entries
        .iter()
        .find(|e| e.entry_type == "Message" && e.role == Some(Role::Agent))
        .expect("the rep's message is in the transcript");
    assert_eq!(agent_message.text.as_deref(), Some("Hi, I'm Jane."));
    assert_eq!(agent_message.sender_name.as_deref(), Some("Jane Rep"));
}

#[tokio::test]
async fn rep_closing_the_chat_ends_the_session_and_routing_says_needs_routing() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-close").await;
    console(
        &emulator,
        &chat.id,
        "accept",
        json!({"rep_name": "Jane Rep"}),
    )
    .await;
    events_until(
        &mut chat.events,
        |e| matches!(e, MiawEvent::SessionStatusChanged { status, .. } if status == "Active"),
    )
    .await;

    console(&emulator, &chat.id, "close", json!({})).await;
    let left = next_event(&mut chat.events).await;
    assert!(
        matches!(&left.event, MiawEvent::ParticipantChanged { changes, .. }
            if changes.len() == 1 && !changes[0].added && changes[0].role == Role::Agent),
        "{left:?}"
    );
    let ended = next_event(&mut chat.events).await;
    assert!(
        matches!(&ended.event, MiawEvent::SessionStatusChanged { status, ended_by_role, .. }
            if status == "Ended" && ended_by_role.as_deref() == Some("Agent")),
        "{ended:?}"
    );
    let status = chat
        .client
        .routing_status(bearer(&chat.token), &chat.id)
        .await
        .unwrap();
    assert_eq!(status, RoutingStatus::NeedsRouting);
}

#[tokio::test]
async fn a_message_after_the_session_ended_reopens_it_with_a_new_session_record() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-417").await;
    let before = text_message("before");
    chat.client
        .send_message(bearer(&chat.token), &chat.id, &before)
        .await
        .unwrap();
    let first_session = session_record(&next_event(&mut chat.events).await.event);

    chat.client
        .end_session(bearer(&chat.token), &chat.id)
        .await
        .unwrap();
    let ended = next_event(&mut chat.events).await;
    assert!(
        matches!(&ended.event, MiawEvent::SessionStatusChanged { status, .. } if status == "Ended"),
        "{ended:?}"
    );

    let after = text_message("after");
    let sent = chat
        .client
        .send_message(bearer(&chat.token), &chat.id, &after)
        .await
        .unwrap();
    assert!(sent.reopened);
    let seen = events_until(&mut chat.events, is_echo_of(&after)).await;
    let second_session = session_record(&seen.last().unwrap().event);
    assert_ne!(first_session, second_session);
    assert!(
        seen.iter().any(|e| matches!(&e.event, MiawEvent::RoutingResult { failure_type, .. } if failure_type == "None")),
        "the new session is routed: {seen:?}"
    );
}

#[tokio::test]
async fn a_closed_conversation_refuses_messages() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-closed").await;
    chat.client
        .close_conversation(bearer(&chat.token), &chat.id)
        .await
        .unwrap();
    // Closing ends the open messaging session too (sessionStatus Ended), then the close.
    let seen = events_until(&mut chat.events, |e| {
        matches!(e, MiawEvent::CloseConversation { .. })
    })
    .await;
    assert_eq!(
        seen.last().unwrap().event,
        MiawEvent::CloseConversation {
            conversation_id: chat.id.to_string()
        }
    );
    let err = chat
        .client
        .send_message(bearer(&chat.token), &chat.id, &text_message("anyone?"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MiawError::Rejected {
                status: 400..=499,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_expired_token_is_401_on_rest_and_on_the_stream() {
    // A zero lifetime: every token is expired as soon as it is minted.
    let emulator = start(emulator_config(|miaw| miaw["token_ttl_secs"] = json!(0))).await;
    let client = client_for(&emulator);
    let token = client.unauthenticated_token().await.unwrap();
    let id = ConversationId::for_session("sess-expired");

    let err = client
        .create_conversation(bearer(&token), &id, &BTreeMap::new(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        MiawError::Unauthorized {
            message: "Jwt is expired".into()
        }
    );
    assert!(!err.is_retryable());

    let err = client
        .subscribe(bearer(&token), token.last_event_id.as_deref())
        .await
        .unwrap_err();
    assert!(matches!(err, MiawError::Unauthorized { .. }), "{err:?}");
}

#[tokio::test]
async fn too_many_messages_is_rate_limited() {
    let emulator = start(emulator_config(|miaw| {
        miaw["messages_per_minute"] = json!(2)
    }))
    .await;
    let chat = open_chat(&emulator, "sess-429").await;
    for text in ["one", "two"] {
        chat.client
            .send_message(bearer(&chat.token), &chat.id, &text_message(text))
            .await
            .unwrap();
    }
    let err = chat
        .client
        .send_message(bearer(&chat.token), &chat.id, &text_message("three"))
        .await
        .unwrap_err();
    let MiawError::RateLimited { retry_after } = &err else {
        panic!("expected 429, got {err:?}");
    };
    let retry_after = retry_after.expect("Retry-After is read");
    assert!(retry_after <= Duration::from_secs(60), "{retry_after:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn resuming_with_last_event_id_replays_exactly_the_missed_events() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-resume").await;
    let seen_live = text_message("seen live");
    chat.client
        .send_message(bearer(&chat.token), &chat.id, &seen_live)
        .await
        .unwrap();
    let cursor = events_until(&mut chat.events, is_echo_of(&seen_live))
        .await
        .pop()
        .unwrap()
        .id
        .expect("events carry ids");
    drop(chat.events);

    // Missed while disconnected.
    let missed = [text_message("missed 1"), text_message("missed 2")];
    for message in &missed {
        chat.client
            .send_message(bearer(&chat.token), &chat.id, message)
            .await
            .unwrap();
    }
    console(
        &emulator,
        &chat.id,
        "accept",
        json!({"rep_name": "Jane Rep"}),
    )
    .await;

    let mut resumed = chat
        .client
        .subscribe(bearer(&chat.token), Some(&cursor))
        .await
        .unwrap();
    // Something new after the reconnect marks the end of the replay.
    console(
        &emulator,
        &chat.id,
        "messages",
        json!({"text": "live again"}),
    )
    .await;
    let seen = events_until(&mut resumed, |e| {
        matches!(
            e,
            MiawEvent::Message {
                role: Role::Agent,
                ..
            }
        )
    })
    .await;

    let kinds: Vec<String> = seen
        .iter()
        .map(|e| match &e.event {
            MiawEvent::Message { role, entry_id, .. } => format!("{role:?}:{entry_id}"),
            MiawEvent::ParticipantChanged { .. } => "joined".to_owned(),
            MiawEvent::SessionStatusChanged { status, .. } => status.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        &kinds[..4],
        [
            format!("EndUser:{}", missed[0].id),
            format!("EndUser:{}", missed[1].id),
            "joined".to_owned(),
            "Active".to_owned(),
        ],
        "{kinds:?}"
    );
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    let ids: Vec<u64> = seen
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    let cursor: u64 = cursor.parse().unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids[0] > cursor, "{ids:?} after {cursor}");
}

#[tokio::test]
async fn a_second_stream_with_the_same_token_ends_the_first() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-twice").await;
    let mut second = chat
        .client
        .subscribe(bearer(&chat.token), None)
        .await
        .unwrap();
    let rest: Vec<_> = tokio::time::timeout(EVENT_WAIT, (&mut chat.events).collect::<Vec<_>>())
        .await
        .expect("the first stream ends");
    assert!(
        rest.iter().all(|e| matches!(
            e,
            Ok(StreamEvent {
                event: MiawEvent::Ping,
                ..
            })
        )),
        "{rest:?}"
    );

    let message = text_message("to the second stream");
    chat.client
        .send_message(bearer(&chat.token), &chat.id, &message)
        .await
        .unwrap();
    events_until(&mut second, is_echo_of(&message)).await;
}

#[tokio::test]
async fn continuation_token_keeps_the_subject_and_the_cursor() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-continue").await;
    let message = text_message("hello");
    chat.client
        .send_message(bearer(&chat.token), &chat.id, &message)
        .await
        .unwrap();
    let last = events_until(&mut chat.events, is_echo_of(&message))
        .await
        .pop()
        .unwrap();

    let renewed = chat
        .client
        .continuation_token(bearer(&chat.token))
        .await
        .unwrap();
    assert_eq!(renewed.subject, chat.token.subject);
    assert_ne!(bearer(&renewed), bearer(&chat.token));
    assert_eq!(renewed.last_event_id, last.id);
    // The new token works on the same conversation.
    chat.client
        .send_message(bearer(&renewed), &chat.id, &text_message("still me"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_file_reaches_the_rep_console_and_the_stream() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-file").await;
    let file = OutgoingFile {
        id: Uuid::new_v4(),
        file_name: "receipt.png".into(),
        content_type: "image/png".into(),
        bytes: vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3],
        text: Some("my receipt".into()),
    };
    chat.client
        .send_file(bearer(&chat.token), &chat.id, &file)
        .await
        .unwrap();
    let echo = next_event(&mut chat.events).await;
    let MiawEvent::Message {
        role, attachments, ..
    } = &echo.event
    else {
        panic!("expected a message, got {echo:?}");
    };
    assert_eq!(*role, Role::EndUser);
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(attachments[0].name.as_deref(), Some("receipt.png"));

    let shown = console_show(&emulator, &chat.id).await;
    assert_eq!(
        shown["files"],
        json!([{"name": "receipt.png", "content_type": "image/png", "size": 8}])
    );
}

#[tokio::test]
async fn a_verified_identity_gets_an_auth_subject_and_a_bad_one_stays_anonymous() {
    let issuer = "https://handoff.example";
    let emulator = start(emulator_config(|miaw| {
        miaw["identity_keys"] =
            json!([{"kid": "handoff-1", "issuer": issuer, "public_key_pem": PUBLIC_KEY}]);
    }))
    .await;
    let client = client_for(&emulator);
    let audience = emulator.url();
    let signer = IdentitySigner::from_pem(
        PRIVATE_KEY,
        "handoff-1",
        issuer,
        &audience,
        Duration::from_secs(300),
    )
    .unwrap();
    let token = client
        .authenticated_token(&signer.sign("customer-42").unwrap())
        .await
        .unwrap();
    assert!(token.is_authenticated(), "{:?}", token.subject);
    assert!(
        token
            .subject
            .as_deref()
            .unwrap()
            .ends_with("uid:customer-42")
    );

    let stranger = IdentitySigner::from_pem(
        PRIVATE_KEY,
        "handoff-1",
        "https://other.example",
        &audience,
        Duration::from_secs(300),
    )
    .unwrap();
    let token = client
        .authenticated_token(&stranger.sign("customer-42").unwrap())
        .await
        .unwrap();
    assert!(!token.is_authenticated(), "{:?}", token.subject);
}

#[tokio::test]
async fn an_unknown_deployment_or_an_overlong_attribute_is_rejected() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut config = MiawConfig::new(
        emulator.url(),
        EmulatorConfig::default().org_id,
        "Other_Chat",
    );
    config.timeout = Duration::from_secs(10);
    let err = MiawClient::new(config)
        .unwrap()
        .unauthenticated_token()
        .await
        .unwrap_err();
    assert!(
        matches!(err, MiawError::Rejected { status: 400, .. }),
        "{err:?}"
    );

    let client = client_for(&emulator);
    let token = client.unauthenticated_token().await.unwrap();
    let long = BTreeMap::from([("Priority".to_owned(), "x".repeat(41))]);
    let err = client
        .create_conversation(
            bearer(&token),
            &ConversationId::for_session("sess-long"),
            &long,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, MiawError::Rejected { status: 400, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_session_that_cannot_be_reopened_is_session_ended() {
    let emulator = start(EmulatorConfig::default()).await;
    let chat = open_chat(&emulator, "sess-417-twice").await;
    set_faults(
        &emulator,
        json!({"fail": [{"operation": "send_message", "status": 417, "times": 2}]}),
    )
    .await;
    let err = chat
        .client
        .send_message(bearer(&chat.token), &chat.id, &text_message("hello?"))
        .await
        .unwrap_err();
    assert_eq!(err, MiawError::SessionEnded);
    assert_eq!(err.status(), Some(417));
}

#[tokio::test]
async fn server_errors_are_unavailable_and_a_retry_succeeds() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-503").await;
    set_faults(
        &emulator,
        json!({"fail": [
            {"operation": "send_message", "status": 503, "times": 1},
            {"operation": "sse", "status": 500, "times": 1}
        ]}),
    )
    .await;
    let message = text_message("eventually");
    let err = chat
        .client
        .send_message(bearer(&chat.token), &chat.id, &message)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MiawError::Unavailable {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    chat.client
        .send_message(bearer(&chat.token), &chat.id, &message)
        .await
        .unwrap();
    events_until(&mut chat.events, is_echo_of(&message)).await;

    let err = chat
        .client
        .subscribe(bearer(&chat.token), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            MiawError::Unavailable {
                status: Some(500),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_agents_available_is_a_routing_error() {
    let emulator = start(emulator_config(|miaw| {
        miaw["agents_available"] = json!(false)
    }))
    .await;
    let client = client_for(&emulator);
    let token = client.unauthenticated_token().await.unwrap();
    let mut events = client
        .subscribe(bearer(&token), token.last_event_id.as_deref())
        .await
        .unwrap();
    let id = ConversationId::for_session("sess-nobody");
    client
        .create_conversation(
            bearer(&token),
            &id,
            &attributes("sess-nobody"),
            Some("en_US"),
        )
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut events).await.event,
        MiawEvent::RoutingResult {
            conversation_id: id.to_string(),
            routing_type: "Initial".into(),
            failure_type: "RoutingError".into(),
            failure_reason: Some("NoAgentsAvailable".into()),
        }
    );
    assert_eq!(
        client.routing_status(bearer(&token), &id).await.unwrap(),
        RoutingStatus::NeedsRouting
    );
}

#[tokio::test]
async fn typing_indicators_are_accepted() {
    let emulator = start(EmulatorConfig::default()).await;
    let chat = open_chat(&emulator, "sess-typing").await;
    for started in [true, false] {
        chat.client
            .typing(bearer(&chat.token), &chat.id, started)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_transfer_is_a_routing_result_then_remove_and_add() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-transfer").await;
    console(
        &emulator,
        &chat.id,
        "accept",
        json!({"rep_name": "Jane Rep"}),
    )
    .await;
    events_until(
        &mut chat.events,
        |e| matches!(e, MiawEvent::SessionStatusChanged { status, .. } if status == "Active"),
    )
    .await;

    console(
        &emulator,
        &chat.id,
        "transfer",
        json!({"rep_name": "Omar Rep"}),
    )
    .await;
    let routed = next_event(&mut chat.events).await;
    assert!(
        matches!(&routed.event, MiawEvent::RoutingResult { routing_type, .. } if routing_type == "Transfer"),
        "{routed:?}"
    );
    let mut changes = Vec::new();
    for _ in 0..2 {
        let MiawEvent::ParticipantChanged { changes: more, .. } =
            next_event(&mut chat.events).await.event
        else {
            panic!("expected a participant change");
        };
        changes.extend(more);
    }
    assert_eq!(
        changes,
        [
            ParticipantChange {
                added: false,
                role: Role::Agent,
                display_name: Some("Jane Rep".into())
            },
            ParticipantChange {
                added: true,
                role: Role::Agent,
                display_name: Some("Omar Rep".into())
            },
        ]
    );
    assert_eq!(
        chat.client
            .routing_status(bearer(&chat.token), &chat.id)
            .await
            .unwrap(),
        RoutingStatus::Routed
    );
}

#[tokio::test]
async fn a_stream_dropped_by_the_server_ends_and_resumes_from_its_cursor() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-drop").await;
    let before = text_message("before the drop");
    chat.client
        .send_message(bearer(&chat.token), &chat.id, &before)
        .await
        .unwrap();
    let cursor = events_until(&mut chat.events, is_echo_of(&before))
        .await
        .pop()
        .unwrap()
        .id;

    set_faults(&emulator, json!({"drop_stream_every_secs": 1})).await;
    let mut dropping = chat
        .client
        .subscribe(bearer(&chat.token), cursor.as_deref())
        .await
        .unwrap();
    // The server ends the connection: the stream ends (after at most one transport error).
    let rest: Vec<_> = tokio::time::timeout(EVENT_WAIT, (&mut dropping).collect::<Vec<_>>())
        .await
        .expect("the dropped stream ends");
    assert!(
        rest.iter().all(|item| match item {
            Ok(event) => event.event == MiawEvent::Ping,
            Err(err) => err.is_retryable(),
        }),
        "{rest:?}"
    );

    reqwest::Client::new()
        .delete(format!("{}/__emulator/miaw/faults", emulator.url()))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let after = text_message("after the drop");
    chat.client
        .send_message(bearer(&chat.token), &chat.id, &after)
        .await
        .unwrap();
    let mut resumed = chat
        .client
        .subscribe(bearer(&chat.token), cursor.as_deref())
        .await
        .unwrap();
    let seen = events_until(&mut resumed, is_echo_of(&after)).await;
    assert_eq!(seen.len(), 1, "nothing before the cursor again: {seen:?}");
}

#[tokio::test]
async fn transcript_pages_in_both_directions() {
    let emulator = start(EmulatorConfig::default()).await;
    let mut chat = open_chat(&emulator, "sess-pages").await;
    let messages = [
        text_message("one"),
        text_message("two"),
        text_message("three"),
    ];
    for message in &messages {
        chat.client
            .send_message(bearer(&chat.token), &chat.id, message)
            .await
            .unwrap();
    }
    events_until(&mut chat.events, is_echo_of(&messages[2])).await;

    let texts = |entries: Vec<salesforce::miaw::ConversationEntry>| -> Vec<String> {
        entries
            .into_iter()
            .filter(|e| e.entry_type == "Message")
            .filter_map(|e| e.text)
            .collect()
    };
    let oldest_first = chat
        .client
        .list_entries(bearer(&chat.token), &chat.id, &EntriesQuery::default())
        .await
        .unwrap();
    assert_eq!(texts(oldest_first), ["one", "two", "three"]);
    let newest_two = chat
        .client
        .list_entries(
            bearer(&chat.token),
            &chat.id,
            &EntriesQuery {
                limit: Some(2),
                direction_from_end: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(newest_two.len(), 2);
    assert_eq!(texts(newest_two), ["three", "two"]);
}
