//! Blobs as verified streams: hashed as they pass, checked against the digest and the size at
//! the end, where a mismatch is the stream's last item instead of a clean end.

use crate::client::RegistryClient;
use crate::error::{Error, from_reqwest};
use berth_oci::{Digest, Hasher};
use bytes::Bytes;
use futures::Stream;
use reqwest::Method;
use reqwest::header::CONTENT_LENGTH;
use std::pin::Pin;
use std::task::{Context, Poll};

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send + Sync>>;

/// A blob's bytes as they arrive. The last item is `Err(DigestMismatch)` if the bytes do not
/// hash to the digest asked for, `Err(Invalid)` if they are more or fewer than the expected size
/// (or the Content-Length); a stream that ends cleanly delivered exactly the blob.
pub struct BlobStream {
    /// The size expected (asked for, else the Content-Length), if known.
    pub size: Option<u64>,
    body: Option<Body>,
    hasher: Option<Hasher>,
    expected: Digest,
    received: u64,
    what: String,
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStream")
            .field("digest", &self.expected.to_string())
            .field("size", &self.size)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl BlobStream {
    fn end(&mut self, item: Option<Result<Bytes, Error>>) -> Poll<Option<Result<Bytes, Error>>> {
        self.body = None;
        self.hasher = None;
        Poll::Ready(item)
    }

    fn size_error(&self) -> Error {
        Error::Invalid(format!(
            "{} delivered {} bytes; {} were expected",
            self.what,
            self.received,
            self.size.unwrap_or_default()
        ))
    }
}

impl Stream for BlobStream {
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        match body.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                this.received = this.received.saturating_add(chunk.len() as u64);
                if this.size.is_some_and(|s| this.received > s) {
                    let e = this.size_error();
                    return this.end(Some(Err(e)));
                }
                if let Some(h) = this.hasher.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e = from_reqwest(&this.what, e);
                this.end(Some(Err(e)))
            }
            Poll::Ready(None) => {
                if this.size.is_some_and(|s| this.received != s) {
                    let e = this.size_error();
                    return this.end(Some(Err(e)));
                }
                let actual = this.hasher.take().map(Hasher::finish);
                match actual {
                    Some(actual) if actual == this.expected => this.end(None),
                    Some(actual) => {
                        let e = Error::DigestMismatch {
                            expected: this.expected.to_string(),
                            actual: actual.to_string(),
                        };
                        this.end(Some(Err(e)))
                    }
                    None => this.end(None),
                }
            }
        }
    }
}

impl RegistryClient {
    /// Streams blob `digest` of `repo`, following the registry's redirect to its storage.
    /// `expected_size` (from the manifest's descriptor) is checked against the Content-Length
    /// up front and against the bytes at the end.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobStream, Error> {
        let path = self.repo_path(repo)?;
        let url = self.url(&format!("/v2/{path}/blobs/{digest}"))?;
        let scope = format!("repository:{path}:pull");
        let what = format!("blob {digest} of {path}");
        let sent = self
            .send(Method::GET, url, None, Some(&scope), false)
            .await?;
        if !sent.resp.status().is_success() {
            return Err(self.fail(sent.resp, &what, sent.authenticated).await);
        }
        let length = match sent.resp.headers().get(CONTENT_LENGTH) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .ok_or_else(|| Error::Invalid(format!("{what}: bad Content-Length")))?,
            ),
        };
        if let (Some(want), Some(got)) = (expected_size, length)
            && want != got
        {
            return Err(Error::Invalid(format!(
                "{what} is {got} bytes upstream; {want} were expected"
            )));
        }
        Ok(BlobStream {
            size: expected_size.or(length),
            body: Some(Box::pin(sent.resp.bytes_stream())),
            hasher: Some(Hasher::new(digest.algorithm())),
            expected: digest.clone(),
            received: 0,
            what,
        })
    }
}
