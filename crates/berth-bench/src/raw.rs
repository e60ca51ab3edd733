//! A minimal keep-alive HTTP/1.1 GET client for the hot read paths (manifest GET and blob
//! pull). It writes a pre-built request and reads the response into one reused buffer, so
//! a request costs two syscalls and no allocation. Responses must carry Content-Length
//! (the OCI Distribution spec requires it for manifests and blobs).

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawConn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

pub struct RawResponse {
    pub status: u16,
    pub body_len: u64,
    /// The `Location` header of a 3xx response.
    pub location: Option<String>,
}

/// Builds the bytes of a GET request, with `Authorization: auth` when given.
pub fn get_request(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    auth: Option<&str>,
) -> Vec<u8> {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(a) = auth {
        all.push(("Authorization", a));
    }
    get_request_host(&addr.to_string(), path, &all)
}

/// Builds the bytes of a GET request with the given `Host` (e.g. the authority of a
/// presigned URL, which its signature covers).
pub fn get_request_host(host: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

impl RawConn {
    /// `buf_size` bounds the response head and is the read size for bodies.
    pub async fn connect(addr: SocketAddr, buf_size: usize) -> Result<Self> {
        let mut conn = RawConn {
            addr,
            stream: None,
            buf: vec![0u8; buf_size.max(16 << 10)],
        };
        conn.open().await?;
        Ok(conn)
    }

    async fn open(&mut self) -> Result<()> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        self.stream = Some(stream);
        Ok(())
    }

    /// Sends a GET built by [`get_request`] and reads (and discards) the whole response.
    /// A connection the server closed while idle is reopened once.
    pub async fn get(&mut self, req: &[u8]) -> Result<RawResponse> {
        match self.try_get(req, true).await {
            Ok(Some(resp)) => Ok(resp),
            Ok(None) => {
                self.open().await?;
                match self.try_get(req, false).await? {
                    Some(resp) => Ok(resp),
                    None => bail!("connection closed before a response"),
                }
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// `Ok(None)`: the (reused) connection was found closed before any response byte.
    async fn try_get(&mut self, req: &[u8], reused: bool) -> Result<Option<RawResponse>> {
        if self.stream.is_none() {
            self.open().await?;
        }
        let RawConn {
            stream: Some(stream),
            buf,
            ..
        } = self
        else {
            bail!("not connected");
        };
        if let Err(e) = stream.write_all(req).await {
            if reused {
                return Ok(None);
            }
            return Err(e.into());
        }
        let mut filled = 0;
        let (head_len, status, content_length, close, location) = loop {
            if filled == buf.len() {
                bail!("response head larger than {} bytes", buf.len());
            }
            let n = match stream.read(&mut buf[filled..]).await {
                Ok(n) => n,
                Err(_) if reused && filled == 0 => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                if reused && filled == 0 {
                    return Ok(None);
                }
                bail!("connection closed mid-response");
            }
            filled += n;
            let mut headers = [httparse::EMPTY_HEADER; 48];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(head_len) = resp.parse(&buf[..filled])? {
                let status = resp.code.unwrap_or(0);
                let mut content_length = None;
                let mut close = resp.version == Some(0);
                let mut location = None;
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        let v = std::str::from_utf8(h.value)?.trim();
                        content_length = Some(
                            v.parse::<u64>()
                                .with_context(|| format!("bad Content-Length {v:?}"))?,
                        );
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        bail!("chunked responses are not supported by the raw client");
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        close = h.value.eq_ignore_ascii_case(b"close");
                    } else if (300..400).contains(&status)
                        && h.name.eq_ignore_ascii_case("location")
                    {
                        location = Some(String::from_utf8_lossy(h.value).into_owned());
                    }
                }
                let Some(content_length) = content_length else {
                    bail!("response (status {status}) has no Content-Length");
                };
                break (head_len, status, content_length, close, location);
            }
        };
        let already = (filled - head_len) as u64;
        if already > content_length {
            bail!("server sent more than Content-Length (pipelining is not used)");
        }
        let mut remaining = content_length - already;
        while remaining > 0 {
            let want = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let n = stream.read(&mut buf[..want]).await?;
            if n == 0 {
                bail!("connection closed with {remaining} body bytes outstanding");
            }
            remaining -= n as u64;
        }
        if close {
            self.stream = None;
        }
        Ok(Some(RawResponse {
            status,
            body_len: content_length,
            location,
        }))
    }
}
