//! Answers the emulator gives before it reads a request body (the 404 fallback, 401, an unknown
//! API version) must leave the connection usable, over a raw socket so nothing hides a reset.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn spawn() -> sf_emulator::EmulatorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    sf_emulator::spawn(sf_emulator::EmulatorConfig::default(), listener)
        .await
        .unwrap()
}

/// Reads until EOF or an error; returns the bytes and whether the end was a reset.
async fn read_to_end(stream: &mut TcpStream) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), false),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), true),
        }
    }
}

/// Sends `head` with a chunked body in two parts, the second after a pause (long enough for an
/// early answer to go out), then a second request on the same connection asking to close.
/// Returns everything read back and whether the connection was reset.
async fn early_answer_then_reuse(addr: std::net::SocketAddr, head: &str) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let first = format!(
        "{head}Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n5\r\n{{\"a\":\r\n"
    );
    stream.write_all(first.as_bytes()).await.unwrap();
    // The pause only makes the pre-fix failure show; the fixed server passes whatever the timing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rest = "2\r\n1}\r\n0\r\n\r\nGET /services/data/ HTTP/1.1\r\nHost: emulator\r\nConnection: close\r\n\r\n";
    // A write to a closed socket may fail; what matters is what we read back.
    let _ = stream.write_all(rest.as_bytes()).await;
    read_to_end(&mut stream).await
}

/// A response head that announces `Connection: close`.
fn says_close(response: &str) -> bool {
    response
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .any(|l| l.eq_ignore_ascii_case("connection: close"))
}

fn check(path: &str, expected_status: &str, out: &str, reset: bool) {
    assert!(
        out.starts_with(&format!("HTTP/1.1 {expected_status}")),
        "{path}: first answer was {out:?}"
    );
    assert!(!reset, "{path}: the connection was reset after {out:?}");
    let answers = out.matches("HTTP/1.1 ").count();
    // Either the connection stayed usable (the second request was answered), or the first
    // answer said `Connection: close` and the server closed cleanly.
    assert!(
        answers == 2 && out.contains("HTTP/1.1 200") || answers == 1 && says_close(out),
        "{path}: the pooled connection was lost without Connection: close: {out:?}"
    );
}

/// Bug: the 404 fallback, the 401 and the unknown-version 404 were answered before the request
/// body was read, and the socket was then closed without `Connection: close`. With a chunked
/// body still arriving the close became a reset, and a client's next request on that pooled
/// connection failed (measured: 43–48 % of next requests). Fix: every request body is drained
/// (bounded) before the handler answers, so the connection stays usable.
#[tokio::test]
async fn early_answers_do_not_reset_a_connection_with_a_chunked_body_arriving() {
    let sf = spawn().await;
    let addr = sf.local_addr();
    let cases = [
        ("POST /nowhere HTTP/1.1\r\nHost: emulator\r\n", "404"),
        (
            "POST /services/data/v62.0/sobjects/Case HTTP/1.1\r\nHost: emulator\r\n",
            "401",
        ),
        (
            "POST /services/data/v99.0/sobjects/Case HTTP/1.1\r\nHost: emulator\r\nAuthorization: Bearer x\r\n",
            "404",
        ),
    ];
    for (head, status) in cases {
        let (out, reset) = early_answer_then_reuse(addr, head).await;
        check(head.lines().next().unwrap_or_default(), status, &out, reset);
    }
    sf.shutdown().await;
}
