//! What the gateway sends: messages and files, and their request bodies (miaw.md §3.5–3.6).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use super::error::MiawError;

/// Largest file MIAW accepts (5 MB); larger ones are refused before sending, as 413.
pub const MAX_FILE_BYTES: usize = 5 * 1024 * 1024;

/// A text message from the end user (the customer, relayed by the gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The message id (`message.id`). Reuse it on retries: MIAW drops a repeated id, and the
    /// end-user echo carries it as its entry id.
    pub id: Uuid,
    /// The text. Never logged.
    pub text: String,
    /// Routing attributes sent when the message has to start a new messaging session
    /// (after a 417); `None` sends `{}`.
    pub routing_attributes: Option<BTreeMap<String, String>>,
    /// Language (e.g. `en_US`) sent when the message starts a new messaging session.
    pub language: Option<String>,
}

/// The outcome of [`MiawClient::send_message`](super::MiawClient::send_message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentMessage {
    /// A 417 was answered by starting a new messaging session.
    pub reopened: bool,
}

/// A file from the end user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    /// The message id of the file entry (reuse it on retries).
    pub id: Uuid,
    /// The file name shown to the rep.
    pub file_name: String,
    /// The MIME type, e.g. `image/png`.
    pub content_type: String,
    /// The content, at most [`MAX_FILE_BYTES`].
    pub bytes: Vec<u8>,
    /// An optional caption.
    pub text: Option<String>,
}

/// The JSON body of a send-message request.
pub(crate) fn message_body(
    deployment: &str,
    message: &OutgoingMessage,
    new_session: bool,
) -> Value {
    let mut body = json!({
        "message": {
            "id": message.id.to_string(),
            "messageType": "StaticContentMessage",
            "staticContent": {"formatType": "Text", "text": message.text},
        },
        "esDeveloperName": deployment,
        "isNewMessagingSession": new_session,
    });
    if new_session {
        body["routingAttributes"] = json!(message.routing_attributes.clone().unwrap_or_default());
        if let Some(language) = &message.language {
            body["language"] = json!(language);
        }
    }
    body
}

/// A `multipart/form-data` body for send-file: the `messageEntry` JSON part and the
/// `fileData` part. Returns the content type (with its boundary) and the body.
pub(crate) fn file_body(
    deployment: &str,
    file: &OutgoingFile,
) -> Result<(String, Vec<u8>), MiawError> {
    if file.bytes.len() > MAX_FILE_BYTES {
        return Err(MiawError::Rejected {
            status: 413,
            message: format!("the file is larger than MIAW's limit of {MAX_FILE_BYTES} bytes"),
        });
    }
    if file.content_type.is_empty()
        || file
            .content_type
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'"')
    {
        return Err(MiawError::Rejected {
            status: 415,
            message: "the file's content type is empty or malformed".to_owned(),
        });
    }
    let entry = json!({
        "esDeveloperName": deployment,
        "message": {
            "id": file.id.to_string(),
            // Derived from the message id so that a retry sends the same file id.
            "fileId": Uuid::new_v5(&file.id, b"fileData").to_string(),
            "text": file.text.clone().unwrap_or_default(),
        },
        "isNewMessagingSession": false,
    });
    // 122 random bits: the boundary cannot plausibly occur in the content.
    let boundary = format!("handoff-{}", Uuid::new_v4().simple());
    let mut body = Vec::with_capacity(file.bytes.len() + 512);
    body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    body.extend_from_slice(b"Content-Disposition: form-data; name=\"messageEntry\"\r\n");
    body.extend_from_slice(b"Content-Type: application/json\r\n\r\n");
    body.extend_from_slice(entry.to_string().as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    body.extend_from_slice(
        format!(
            "Content-Disposition: form-data; name=\"fileData\"; filename=\"{}\"\r\n",
            escape_file_name(&file.file_name)
        )
        .as_bytes(),
    );
    body.extend_from_slice(format!("Content-Type: {}\r\n\r\n", file.content_type).as_bytes());
    body.extend_from_slice(&file.bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), body))
}

/// A file name safe inside a quoted `filename=` (the HTML form encoding: `"`, CR and LF
/// percent-encoded; other control characters dropped).
fn escape_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    if out.is_empty() {
        "file".to_owned()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> OutgoingMessage {
        OutgoingMessage {
            id: Uuid::from_u128(1),
            text: "hello".into(),
            routing_attributes: Some(BTreeMap::from([("OpencxSessionId".into(), "s1".into())])),
            language: Some("en_US".into()),
        }
    }

    #[test]
    fn first_send_is_plain_and_reopen_carries_routing() {
        let plain = message_body("Handoff_Chat", &message(), false);
        assert_eq!(plain["isNewMessagingSession"], false);
        assert_eq!(plain["message"]["staticContent"]["text"], "hello");
        assert_eq!(
            plain["message"]["id"],
            "00000000-0000-0000-0000-000000000001"
        );
        assert!(plain.get("routingAttributes").is_none());
        let reopen = message_body("Handoff_Chat", &message(), true);
        assert_eq!(reopen["isNewMessagingSession"], true);
        assert_eq!(reopen["routingAttributes"]["OpencxSessionId"], "s1");
        assert_eq!(reopen["language"], "en_US");
        let mut bare = message();
        bare.routing_attributes = None;
        assert_eq!(
            message_body("D", &bare, true)["routingAttributes"],
            json!({})
        );
    }

    #[test]
    fn file_body_has_both_parts_and_escapes_the_name() {
        let file = OutgoingFile {
            id: Uuid::from_u128(2),
            file_name: "a\"b\r\n.png".into(),
            content_type: "image/png".into(),
            bytes: vec![0, 1, 2, 255],
            text: Some("caption".into()),
        };
        let (content_type, body) = file_body("Handoff_Chat", &file).unwrap();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"messageEntry\""));
        assert!(text.contains("\"fileId\""));
        assert!(text.contains("filename=\"a%22b%0D%0A.png\""));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert!(body.windows(4).any(|w| w == [0, 1, 2, 255]));
    }

    #[test]
    fn oversized_or_malformed_files_are_refused_before_sending() {
        let mut file = OutgoingFile {
            id: Uuid::from_u128(3),
            file_name: "big.bin".into(),
            content_type: "application/octet-stream".into(),
            bytes: vec![0; MAX_FILE_BYTES + 1],
            text: None,
        };
        assert_eq!(file_body("D", &file).unwrap_err().status(), Some(413));
        file.bytes = vec![1];
        file.content_type = "text/plain\r\nX-Evil: 1".into();
        assert_eq!(file_body("D", &file).unwrap_err().status(), Some(415));
    }
}
