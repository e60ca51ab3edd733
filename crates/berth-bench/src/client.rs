//! A lean HTTP/1.1 client: one explicit keep-alive connection per task, built directly on
//! hyper so that the load generator does as little work as possible per request and never
//! copies request bodies (large bodies are handed to the socket as shared `Bytes` slices).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result, anyhow, bail};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, LOCATION};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::data::BlobStream;

/// Request body: either a small in-memory buffer or a generated blob stream.
pub enum ReqBody {
    Bytes(Option<Bytes>),
    Stream(BlobStream),
}

impl ReqBody {
    pub fn empty() -> Self {
        ReqBody::Bytes(None)
    }

    pub fn bytes(b: Bytes) -> Self {
        ReqBody::Bytes(Some(b))
    }

    fn len(&self) -> u64 {
        match self {
            ReqBody::Bytes(b) => b.as_ref().map_or(0, |b| b.len() as u64),
            ReqBody::Stream(s) => s.remaining(),
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match self.get_mut() {
            ReqBody::Bytes(b) => b.take().filter(|b| !b.is_empty()),
            ReqBody::Stream(s) => s.next_chunk(),
        };
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len())
    }
}

/// One keep-alive HTTP/1.1 connection to a registry; reconnects transparently if the
/// server closed it between requests. It is one simulated client: the `Authorization` value
/// it sends (its own bearer token, Basic credentials, or the run's shared token) is its own.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<http1::SendRequest<ReqBody>>,
    /// Sent on every request unless the request names its own `Authorization`.
    pub auth: Option<String>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let host = HeaderValue::from_str(&addr.to_string())?;
        let mut conn = Conn {
            addr,
            host,
            sender: None,
            auth: None,
        };
        conn.open().await?;
        Ok(conn)
    }

    async fn open(&mut self) -> Result<()> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::Builder::new()
            .max_buf_size(4 << 20)
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends a request; `path` is path-and-query. The response body must be consumed by
    /// the caller before the next request on this connection.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(http::HeaderName, &str)],
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let len = body.len();
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.host.clone());
        if len > 0 || matches!(method, Method::POST | Method::PUT | Method::PATCH) {
            builder = builder.header(CONTENT_LENGTH, len);
        }
        if let Some(a) = &self.auth
            && !headers
                .iter()
                .any(|(k, _)| k == http::header::AUTHORIZATION)
        {
            builder = builder.header(http::header::AUTHORIZATION, a);
        }
        for (k, v) in headers {
            builder = builder.header(k, *v);
        }
        let req = builder.body(body)?;

        let ready = match self.sender.as_mut() {
            Some(s) if !s.is_closed() => s.ready().await.is_ok(),
            _ => false,
        };
        if !ready {
            self.open().await?;
        }
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| anyhow!("no connection"))?;
        sender.ready().await?;
        let resp = sender
            .send_request(req)
            .await
            .with_context(|| format!("{method} {path}"))?;
        Ok(resp)
    }

    /// Sends a request and reads the whole response body into memory.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(http::HeaderName, &str)],
        body: ReqBody,
    ) -> Result<(StatusCode, HeaderMap, Bytes)> {
        let resp = self.send(method, path, headers, body).await?;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    /// Like [`Conn::call`] but fails unless the status is `want`.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(http::HeaderName, &str)],
        body: ReqBody,
        want: StatusCode,
    ) -> Result<HeaderMap> {
        let (status, hdrs, bytes) = self.call(method.clone(), path, headers, body).await?;
        if status != want {
            bail!(
                "{method} {path}: expected {want}, got {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
            );
        }
        Ok(hdrs)
    }
}

/// Turns a `Location` header (absolute URL or absolute path) into a path-and-query.
pub fn location(headers: &HeaderMap) -> Result<String> {
    let loc = headers
        .get(LOCATION)
        .ok_or_else(|| anyhow!("response has no Location header"))?
        .to_str()
        .context("Location header is not ASCII")?;
    if loc.starts_with('/') {
        return Ok(loc.to_string());
    }
    let uri: Uri = loc
        .parse()
        .with_context(|| format!("bad Location {loc:?}"))?;
    let pq = uri
        .path_and_query()
        .ok_or_else(|| anyhow!("Location {loc:?} has no path"))?;
    Ok(pq.as_str().to_string())
}

/// Appends `key=value` to a path that may already have a query string.
pub fn with_query(path: &str, key: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{key}={value}")
}

pub const OCTET: (http::HeaderName, &str) = (CONTENT_TYPE, "application/octet-stream");
