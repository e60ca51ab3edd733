//! Blob bytes: the narrow `BlobStore` contract and its backends — the local filesystem, and S3,
//! S3-compatible stores and Azure through the `object_store` crate. Knows nothing of repositories,
//! tags or SQL — only content-addressed blobs and the temporary objects of upload sessions.

#[cfg(test)]
mod contract;
mod fs;
mod object;

pub use fs::FsStore;
pub use object::ObjectBlobStore;

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
    /// Everything stored: committed blobs and upload sessions, with when each was last written.
    /// Garbage collection compares it with the database to find bytes no row knows (left by a
    /// crash between writing bytes and recording them).
    async fn inventory(&self) -> Result<Inventory>;
}

/// What a store holds (see `BlobStore::inventory`).
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// (digest, size, last written, ms since the epoch).
    pub blobs: Vec<(Digest, u64, i64)>,
    /// (session id, last written, ms since the epoch).
    pub uploads: Vec<(String, i64)>,
}

fn system_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Where a storage location keeps its bytes; built from Quay's `DISTRIBUTED_STORAGE_CONFIG`.
/// Its `Debug` and `Display` never show credentials.
#[derive(Clone, PartialEq)]
pub enum StorageSpec {
    Local {
        path: std::path::PathBuf,
        fsync: bool,
    },
    /// AWS S3 or any S3-compatible endpoint (RADOS Gateway, MinIO, GCS interoperability).
    S3 {
        bucket: String,
        prefix: String,
        region: Option<String>,
        /// `scheme://host[:port]`; `None` means AWS.
        endpoint: Option<String>,
        /// Credentials; `None` reads the usual AWS environment and instance metadata.
        access_key: Option<String>,
        secret_key: Option<String>,
        session_token: Option<String>,
    },
    Azure {
        container: String,
        prefix: String,
        account: String,
        access_key: Option<String>,
        sas_token: Option<String>,
        endpoint: Option<String>,
    },
}

impl std::fmt::Display for StorageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageSpec::Local { path, fsync } => {
                write!(f, "filesystem {} (fsync {fsync})", path.display())
            }
            StorageSpec::S3 {
                bucket,
                prefix,
                endpoint,
                ..
            } => write!(
                f,
                "s3 bucket {bucket:?} prefix {prefix:?} at {}",
                endpoint.as_deref().unwrap_or("AWS")
            ),
            StorageSpec::Azure {
                container,
                prefix,
                account,
                ..
            } => write!(
                f,
                "azure account {account:?} container {container:?} prefix {prefix:?}"
            ),
        }
    }
}

impl std::fmt::Debug for StorageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Opens the backend a spec names.
pub fn open(spec: &StorageSpec) -> Result<std::sync::Arc<dyn BlobStore>> {
    use std::sync::Arc;
    let cfg_err = |e: object_store::Error| StorageError::Io(std::io::Error::other(e));
    match spec {
        StorageSpec::Local { path, fsync } => Ok(Arc::new(FsStore::open(path, *fsync)?)),
        StorageSpec::S3 {
            bucket,
            prefix,
            region,
            endpoint,
            access_key,
            secret_key,
            session_token,
        } => {
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            b = b.with_region(region.clone().unwrap_or_else(|| "us-east-1".into()));
            if let Some(ep) = endpoint {
                b = b
                    .with_endpoint(ep)
                    .with_allow_http(ep.starts_with("http://"));
            }
            if let (Some(a), Some(s)) = (access_key, secret_key) {
                b = b.with_access_key_id(a).with_secret_access_key(s);
            }
            if let Some(t) = session_token {
                b = b.with_token(t);
            }
            let s3 = Arc::new(b.build().map_err(cfg_err)?);
            Ok(Arc::new(ObjectBlobStore::new(
                s3.clone(),
                Some(s3),
                prefix,
                "s3",
            )))
        }
        StorageSpec::Azure {
            container,
            prefix,
            account,
            access_key,
            sas_token,
            endpoint,
        } => {
            let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_account(account)
                .with_container_name(container);
            if let Some(k) = access_key {
                b = b.with_access_key(k);
            }
            if let Some(t) = sas_token {
                let pairs = form_pairs(t);
                b = b.with_sas_authorization(pairs);
            }
            if let Some(ep) = endpoint {
                b = b
                    .with_endpoint(ep.clone())
                    .with_allow_http(ep.starts_with("http://"));
            }
            let az = Arc::new(b.build().map_err(cfg_err)?);
            Ok(Arc::new(ObjectBlobStore::new(
                az.clone(),
                Some(az),
                prefix,
                "azure",
            )))
        }
    }
}

/// `a=1&b=2` into pairs (an Azure SAS token).
fn form_pairs(s: &str) -> Vec<(String, String)> {
    s.trim_start_matches('?')
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
