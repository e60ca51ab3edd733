//! Blob bytes: the narrow `BlobStore` contract and its backends (filesystem now; S3-compatible
//! object stores fit the same contract). Knows nothing of repositories, tags or SQL — only
//! content-addressed blobs and the temporary objects of upload sessions.

mod fs;

pub use fs::FsStore;

use async_trait::async_trait;
use berth_oci::Digest;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A stream of blob bytes.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("blob not found in storage")]
    NotFound,
    #[error("upload session storage not found")]
    UploadNotFound,
    #[error("upload has {actual} bytes in storage, fewer than the {expected} recorded")]
    UploadShort { expected: u64, actual: u64 },
    #[error("client stream failed: {0}")]
    Client(std::io::Error),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// The contract every backend keeps. Uploads are addressed by an opaque session id and their
/// recorded length lives in the database, not here: `offset` arguments come from there.
///
/// * Nothing is ever visible under a blob's digest until `upload_commit` (bytes first, then the
///   caller records rows), and commit is atomic: a reader sees the whole blob or nothing.
/// * `upload_append(id, offset, …)` writes at `offset`, discarding any bytes beyond `offset` left by
///   an earlier write that was never recorded (a crash or a dropped client), so that the database's
///   length is always authoritative. It returns the new length.
/// * Upload storage is shared by all instances using the same backend: a session begun on one
///   instance can be continued on another.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// A short name for logs and metrics (`filesystem`, `s3`).
    fn kind(&self) -> &'static str;
    /// The size of a committed blob, or `None`.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>>;
    /// Streams a committed blob, or the inclusive byte range `[start, end]` of it.
    async fn get(&self, digest: &Digest, range: Option<(u64, u64)>) -> Result<ByteStream>;
    /// Removes a committed blob; absent blobs are not an error.
    async fn delete(&self, digest: &Digest) -> Result<()>;
    /// Creates empty storage for an upload session.
    async fn upload_begin(&self, id: &str) -> Result<()>;
    /// Appends `data` at `offset` (see the trait doc); returns the new length.
    async fn upload_append(&self, id: &str, offset: u64, data: ByteStream) -> Result<u64>;
    /// Streams the first `len` bytes of an upload, to re-hash it when no hash state was saved.
    async fn upload_read(&self, id: &str, len: u64) -> Result<ByteStream>;
    /// Atomically publishes the first `len` bytes of the upload as blob `digest` and removes the
    /// session storage. The caller has verified the digest. Publishing over an existing blob with
    /// the same digest is harmless.
    async fn upload_commit(&self, id: &str, len: u64, digest: &Digest) -> Result<()>;
    /// Removes an upload session's storage; absent sessions are not an error.
    async fn upload_abort(&self, id: &str) -> Result<()>;
    /// A URL a client may fetch the blob from directly, if the backend can make one.
    async fn presigned_url(&self, _digest: &Digest) -> Result<Option<String>> {
        Ok(None)
    }
    /// Writes, reads back and removes a probe object: the storage half of `/health/endtoend`.
    async fn health(&self) -> Result<()>;
}
