//! Keeps HTTP/1.1 connections usable when an answer goes out before the request body was read.
//!
//! A 401 to an unauthenticated PATCH, a 404 to an upload that does not exist, or a 413/416 is
//! decided before a byte of the body is read. Left alone, hyper sends that answer and then cannot
//! reuse the connection (the unread body is still on the wire), yet says nothing: the client's
//! next request on the kept-alive connection fails, and a client still sending can see the
//! connection reset before it reads the answer. As Go's net/http does, the rest of the body is
//! read and discarded when it is small enough to arrive quickly; otherwise the answer says
//! `Connection: close`, so the client knows to open a new connection.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// At most this much of an unread body is read and discarded to keep the connection.
const DRAIN_LIMIT: usize = 4 << 20;
/// And for at most this long.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The request body, shared with the middleware so that what the handler left unread can still
/// be read after it answered.
struct SharedBody(Arc<Mutex<Body>>, Arc<AtomicBool>);

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.1.store(true, Ordering::Relaxed);
        match self.0.lock() {
            Ok(mut body) => Pin::new(&mut *body).poll_frame(cx),
            Err(_) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().map(|b| b.is_end_stream()).unwrap_or(true)
    }

    fn size_hint(&self) -> SizeHint {
        self.0.lock().map(|b| b.size_hint()).unwrap_or_default()
    }
}

/// Reads what is left of `body`, up to the limits; true when it ended within them.
async fn discard(mut body: Body) -> bool {
    let mut read = 0usize;
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(None) => return true,
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.len());
                    if read > DRAIN_LIMIT {
                        return false;
                    }
                }
            }
            Ok(Some(Err(_))) | Err(_) => return false,
        }
    }
}

pub async fn keep_connection_usable(req: Request, next: Next) -> Response {
    // HTTP/2 streams end on their own; a request without a body leaves nothing on the wire.
    if req.version() != Version::HTTP_11 || req.body().is_end_stream() {
        return next.run(req).await;
    }
    // A client waiting for `100 Continue` sends nothing until the body is first read: reading it
    // now would only invite bytes to throw away, so such a connection is closed instead.
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, body) = req.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let polled = Arc::new(AtomicBool::new(false));
    let req = Request::from_parts(parts, Body::new(SharedBody(shared.clone(), polled.clone())));
    let mut resp = next.run(req).await;
    let rest = match shared.lock() {
        Ok(mut b) => std::mem::take(&mut *b),
        Err(_) => Body::empty(),
    };
    let unread_waiting = expects_continue && !polled.load(Ordering::Relaxed);
    if !rest.is_end_stream() && (unread_waiting || !discard(rest).await) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
