//! Serving a router on a listener until shutdown, with a bounded request body.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Largest request body either emulator reads (1 MiB; the providers' limits are smaller than
/// any request a client of these APIs sends).
pub(crate) const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Locks a mutex, recovering the data if a panicking thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Middleware: reads the whole body (bounded) before the handler answers, so answers decided
/// from the head alone (401, 404) never leave unread bytes on a pooled connection.
pub(crate) async fn buffer_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => {
            let mut resp = (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"message":"Request body too large","status":413}"#,
            )
                .into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}

/// The URL clients use for a listener: `http://127.0.0.1:PORT` for a wildcard bind.
pub(crate) fn base_url(addr: SocketAddr) -> String {
    let shown = if addr.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    format!("http://{shown}")
}

/// Serves `router` on `listener` until `cancel` fires (in-flight requests finish).
pub(crate) fn serve(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    // Answers go out without waiting for Nagle's algorithm (small JSON answers).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "emulator server ended with an error");
        }
    })
}
