//! Object-store backend (S3 and every S3-compatible store — Ceph RADOS Gateway, MinIO, GCS through
//! its S3 interoperability API — and Azure Blob Storage), built on the `object_store` crate.
//! Layout under the location's `storage_path` prefix:
//!
//! ```text
//! blobs/<algorithm>/<first two hex chars>/<hex>   committed blobs
//! uploads/<session id>/<start offset, 20 digits>  one object per appended chunk of a session
//! health/<random>                                 short-lived probe objects of /health/endtoend
//! ```
//!
//! Object stores cannot append, so each chunk of an upload session is its own object, named by the
//! offset it starts at. Appending at an offset overwrites any object a crashed write left there,
//! and chunks starting at or beyond the recorded length are ignored, so the database's length stays
//! authoritative. Committing copies a single chunk server-side, or streams the chunks into one
//! multipart upload; either way the blob object appears whole or not at all.

use crate::{BlobStore, ByteStream, Result, StorageError};
use async_trait::async_trait;
use berth_oci::Digest;
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use std::sync::Arc;
use std::time::Duration;

/// Chunk size of multipart uploads (S3 needs ≥ 5 MiB for every part but the last).
const PART_SIZE: usize = 8 << 20;
/// Parts in flight per multipart upload; bounds memory at PART_SIZE × this.
const PARTS_IN_FLIGHT: usize = 2;
const PRESIGN_TTL: Duration = Duration::from_secs(15 * 60);
/// Largest object a single server-side copy may produce (S3's CopyObject limit).
const MAX_COPY: u64 = 5 << 30;

pub struct ObjectBlobStore {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<dyn Signer>>,
    prefix: String,
    kind: &'static str,
}

fn io(e: object_store::Error) -> StorageError {
    match e {
        object_store::Error::NotFound { .. } => StorageError::NotFound,
        other => StorageError::Io(std::io::Error::other(other)),
    }
}

impl ObjectBlobStore {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        signer: Option<Arc<dyn Signer>>,
        prefix: &str,
        kind: &'static str,
    ) -> ObjectBlobStore {
        let prefix = prefix.trim_matches('/').to_string();
        ObjectBlobStore {
            store,
            signer,
            prefix,
            kind,
        }
    }

    fn key(&self, rest: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.prefix))
        }
    }

    fn blob_key(&self, d: &Digest) -> Path {
        let hex = d.hex();
        self.key(&format!(
            "blobs/{}/{}/{hex}",
            d.algorithm().as_str(),
            &hex[..2]
        ))
    }

    fn upload_dir(&self, id: &str) -> Result<Path> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(StorageError::UploadNotFound);
        }
        Ok(self.key(&format!("uploads/{id}")))
    }

    fn part_key(&self, id: &str, offset: u64) -> Result<Path> {
        Ok(self.upload_dir(id)?.join(format!("{offset:020}")))
    }

    /// Every chunk object of a session: (key, start offset, size), in offset order.
    async fn listing(&self, id: &str) -> Result<Vec<(Path, u64, u64)>> {
        let dir = self.upload_dir(id)?;
        let mut parts: Vec<(Path, u64, u64)> = self
            .store
            .list(Some(&dir))
            .map_err(io)
            .try_filter_map(|m| async move {
                let start = m.location.filename().and_then(|f| f.parse::<u64>().ok());
                Ok(start.map(|s| (m.location.clone(), s, m.size)))
            })
            .try_collect()
            .await?;
        parts.sort_by_key(|p| p.1);
        Ok(parts)
    }

    /// The chunks of a session that make up its first `len` bytes, in order: (key, start, bytes
    /// to take from it).
    fn chain(parts: &[(Path, u64, u64)], len: u64) -> Result<Vec<(Path, u64, u64)>> {
        if parts.is_empty() && len > 0 {
            return Err(StorageError::UploadNotFound);
        }
        // A chunk is only ever written at the then-recorded length, so a chunk starting at `s`
        // means every byte an earlier chunk holds at or beyond `s` was never recorded.
        let starts: Vec<u64> = parts
            .iter()
            .map(|p| p.1)
            .skip(1)
            .chain([u64::MAX])
            .collect();
        let mut chain = Vec::new();
        let mut at = 0u64;
        for ((key, start, size), next) in parts.iter().zip(starts) {
            if at >= len {
                break;
            }
            if *start != at {
                return Err(StorageError::UploadShort {
                    expected: len,
                    actual: at,
                });
            }
            let take = (*size).min(next - start).min(len - at);
            chain.push((key.clone(), *start, take));
            at += take;
        }
        if at < len {
            return Err(StorageError::UploadShort {
                expected: len,
                actual: at,
            });
        }
        Ok(chain)
    }

    async fn parts(&self, id: &str, len: u64) -> Result<Vec<(Path, u64, u64)>> {
        Self::chain(&self.listing(id).await?, len)
    }

    async fn delete_keys(&self, keys: impl Iterator<Item = &Path>) -> Result<()> {
        for k in keys {
            match self.store.delete(k).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io(e)),
            }
        }
        Ok(())
    }

    fn concat(&self, parts: Vec<(Path, u64, u64)>) -> ByteStream {
        let store = self.store.clone();
        futures::stream::iter(parts)
            .then(move |(key, _, size)| {
                let store = store.clone();
                async move {
                    let opts = GetOptions {
                        range: (size > 0).then_some(GetRange::Bounded(0..size)),
                        ..Default::default()
                    };
                    let r = store.get_opts(&key, opts).await.map_err(to_io)?;
                    Ok::<_, std::io::Error>(r.into_stream().map_err(to_io))
                }
            })
            .try_flatten()
            .boxed()
    }

    /// Streams `data` into one object, as a single PUT when small, else as a multipart upload.
    async fn write_stream(&self, key: &Path, mut data: ByteStream) -> Result<u64> {
        let mut head = BytesMut::new();
        let mut written = 0u64;
        while head.len() < PART_SIZE {
            match data.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(StorageError::Client(e)),
                None => {
                    let len = head.len() as u64;
                    self.store
                        .put(key, PutPayload::from(head.freeze()))
                        .await
                        .map_err(io)?;
                    return Ok(len);
                }
            }
        }
        let upload = self.store.put_multipart(key).await.map_err(io)?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        written += head.len() as u64;
        w.put(head.freeze());
        while let Some(item) = data.next().await {
            match item {
                Ok(chunk) => {
                    if let Err(e) = w.wait_for_capacity(PARTS_IN_FLIGHT).await {
                        let _ = w.abort().await;
                        return Err(io(e));
                    }
                    written += chunk.len() as u64;
                    w.put(chunk);
                }
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(StorageError::Client(e));
                }
            }
        }
        w.finish().await.map_err(io)?;
        Ok(written)
    }
}

fn to_io(e: object_store::Error) -> std::io::Error {
    std::io::Error::other(e)
}

#[async_trait]
impl BlobStore for ObjectBlobStore {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>> {
        match self.store.head(&self.blob_key(digest)).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    async fn get(&self, digest: &Digest, range: Option<(u64, u64)>) -> Result<ByteStream> {
        let opts = GetOptions {
            range: range.map(|(s, e)| GetRange::Bounded(s..e + 1)),
            ..Default::default()
        };
        let r = self
            .store
            .get_opts(&self.blob_key(digest), opts)
            .await
            .map_err(io)?;
        Ok(r.into_stream().map_err(to_io).boxed())
    }

    async fn delete(&self, digest: &Digest) -> Result<()> {
        match self.store.delete(&self.blob_key(digest)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    async fn upload_begin(&self, id: &str) -> Result<()> {
        // Sessions exist in the database; their storage appears with their first chunk.
        self.upload_dir(id).map(|_| ())
    }

    async fn upload_append(&self, id: &str, offset: u64, data: ByteStream) -> Result<u64> {
        let key = self.part_key(id, offset)?;
        let mut data = data.peekable();
        if std::pin::Pin::new(&mut data).peek().await.is_none() {
            return Ok(offset); // nothing to append: make no empty object
        }
        let written = self.write_stream(&key, data.boxed()).await?;
        Ok(offset + written)
    }

    async fn upload_read(&self, id: &str, len: u64) -> Result<ByteStream> {
        let parts = self.parts(id, len).await?;
        Ok(self.concat(parts))
    }

    async fn upload_commit(&self, id: &str, len: u64, digest: &Digest) -> Result<()> {
        let target = self.blob_key(digest);
        let listing = self.listing(id).await?;
        let parts = Self::chain(&listing, len)?;
        match (parts.as_slice(), listing.as_slice()) {
            ([], _) => {
                self.store
                    .put(&target, PutPayload::from(Bytes::new()))
                    .await
                    .map_err(io)?;
            }
            // One chunk holding exactly the blob: a server-side copy (S3 copies up to 5 GiB).
            ([(key, 0, take)], [(_, 0, size)])
                if *take == len && *size == len && len <= MAX_COPY =>
            {
                self.store.copy(key, &target).await.map_err(io)?;
            }
            _ => {
                let s = self.concat(parts.clone());
                self.write_stream(&target, s).await?;
            }
        }
        self.delete_keys(listing.iter().map(|p| &p.0)).await
    }

    async fn inventory(&self) -> Result<crate::Inventory> {
        let mut inv = crate::Inventory::default();
        let objects: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&self.key("blobs")))
            .map_err(io)
            .try_collect()
            .await?;
        for m in objects {
            let parts: Vec<&str> = m.location.as_ref().rsplit('/').take(3).collect();
            if let [hex, _, algo] = parts.as_slice()
                && let Ok(d) = format!("{algo}:{hex}").parse::<Digest>()
            {
                inv.blobs
                    .push((d, m.size, m.last_modified.timestamp_millis()));
            }
        }
        let chunks: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&self.key("uploads")))
            .map_err(io)
            .try_collect()
            .await?;
        let mut sessions: std::collections::BTreeMap<String, i64> = Default::default();
        for m in chunks {
            let parts: Vec<&str> = m.location.as_ref().rsplit('/').take(2).collect();
            if let [_, id] = parts.as_slice() {
                let t = m.last_modified.timestamp_millis();
                let e = sessions.entry(id.to_string()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        inv.uploads = sessions.into_iter().collect();
        Ok(inv)
    }

    async fn upload_abort(&self, id: &str) -> Result<()> {
        let listing = self.listing(id).await?;
        self.delete_keys(listing.iter().map(|p| &p.0)).await
    }

    async fn presigned_url(&self, digest: &Digest) -> Result<Option<String>> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let url = signer
            .signed_url(http::Method::GET, &self.blob_key(digest), PRESIGN_TTL)
            .await
            .map_err(io)?;
        Ok(Some(url.to_string()))
    }

    async fn health(&self) -> Result<()> {
        let key = self.key(&format!("health/{}", uuid::Uuid::new_v4()));
        let probe = Bytes::from_static(b"berth health probe");
        self.store
            .put(&key, PutPayload::from(probe.clone()))
            .await
            .map_err(io)?;
        let back = self
            .store
            .get(&key)
            .await
            .map_err(io)?
            .bytes()
            .await
            .map_err(io);
        let _ = self.store.delete(&key).await;
        if back? != probe {
            return Err(StorageError::Io(std::io::Error::other(
                "health probe read back different bytes",
            )));
        }
        Ok(())
    }
}
