//! Blob uploads: sessions (chunked and resumable), single-request monolithic pushes, and the
//! commit that publishes a verified blob.
//!
//! Every append hashes the bytes as they stream to storage and saves the hash state with the new
//! length in one row update, so the session continues on any request, after a restart, or on
//! another instance. Nothing is trusted from the client: the digest is computed, never taken.

use crate::error::{Malformed, Missing};
use crate::hash_pipe::hashed;
use crate::{Error, Registry, Result};
use berth_oci::{Algorithm, Digest, Hasher, RepoName};
use berth_storage::{ByteStream, StorageError};
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where an upload session stands.
#[derive(Debug, Clone)]
pub struct UploadState {
    pub id: String,
    pub size: u64,
}

/// Counts request bodies being streamed into storage right now.
struct InFlight;
impl InFlight {
    fn new() -> InFlight {
        metrics::gauge!("berth_uploads_in_flight").increment(1.0);
        InFlight
    }
}
impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("berth_uploads_in_flight").decrement(1.0);
    }
}

fn unknown_upload(id: &str) -> Error {
    Error::missing(
        Missing::Upload,
        format!("upload {id} is unknown, finished or cancelled; start a new one with POST"),
    )
}

/// Ends a body stream with an error once it has carried the blob past `max` bytes
/// (`MAXIMUM_LAYER_SIZE`), so a chunk of unknown length is stopped while it streams rather than
/// stored in full first; `over` tells the caller why the stream ended.
fn limited(stream: ByteStream, already: u64, max: u64, over: Arc<AtomicBool>) -> ByteStream {
    let mut total = already;
    stream
        .map(move |item| match item {
            Ok(chunk) => {
                total = total.saturating_add(chunk.len() as u64);
                if total > max {
                    over.store(true, Ordering::Relaxed);
                    Err(std::io::Error::other(
                        "the blob is larger than MAXIMUM_LAYER_SIZE",
                    ))
                } else {
                    Ok(chunk)
                }
            }
            Err(e) => Err(e),
        })
        .boxed()
}

fn storage_err(e: StorageError, id: &str) -> Error {
    match e {
        StorageError::UploadNotFound => unknown_upload(id),
        StorageError::Client(io) => {
            Error::malformed(Malformed::Upload, format!("request body ended early: {io}"))
        }
        other => other.into(),
    }
}

impl Registry {
    /// Opens an upload session in `repo`, creating the repository on first push.
    pub async fn upload_start(&self, repo: &RepoName) -> Result<UploadState> {
        let id = uuid::Uuid::new_v4().to_string();
        self.store.upload_begin(&id).await?;
        let hasher = Hasher::new(Algorithm::Sha256);
        let mut w = self.db.write().await?;
        let repo_id = self
            .db
            .ensure_repo(&mut w, repo.as_str(), repo.namespace())
            .await?;
        self.db
            .create_upload(
                &mut w,
                &id,
                repo_id,
                Algorithm::Sha256.as_str(),
                &hasher.save(),
            )
            .await?;
        w.commit().await?;
        Ok(UploadState { id, size: 0 })
    }

    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> Result<UploadState> {
        let row = self
            .db
            .get_upload(repo.as_str(), id)
            .await?
            .ok_or_else(|| unknown_upload(id))?;
        Ok(UploadState {
            id: row.id,
            size: u64::try_from(row.size).unwrap_or(0),
        })
    }

    /// Appends a chunk. `start` is the Content-Range start if the client sent one; it must equal
    /// the session's length (else 416). `expected_len` is the chunk's declared length, if any.
    pub async fn upload_append(
        &self,
        repo: &RepoName,
        id: &str,
        start: Option<u64>,
        expected_len: Option<u64>,
        body: ByteStream,
    ) -> Result<UploadState> {
        let row = self
            .db
            .get_upload(repo.as_str(), id)
            .await?
            .ok_or_else(|| unknown_upload(id))?;
        let old = u64::try_from(row.size).unwrap_or(0);
        if let Some(start) = start
            && start != old
        {
            return Err(Error::OutOfOrder {
                resume_from: old,
                detail: format!(
                    "chunk starts at byte {start} but the upload has {old} bytes; resume from {old}"
                ),
            });
        }
        if let Some(len) = expected_len {
            self.within_blob_limit(old.saturating_add(len))?;
            self.quota_admits_upload(repo, old.saturating_add(len), None, "this upload")
                .await?;
        }
        let hasher = self
            .resume_hasher(&row.id, &row.hash_algo, row.hash_state.as_deref(), old)
            .await?;
        let _in_flight = InFlight::new();
        let over = Arc::new(AtomicBool::new(false));
        let body = limited(body, old, self.config.max_blob_bytes, over.clone());
        let (body, hashing) = hashed(body, hasher);
        let new = match self.store.upload_append(id, old, body).await {
            Ok(n) => n,
            Err(_) if over.load(Ordering::Relaxed) => {
                // Past MAXIMUM_LAYER_SIZE while streaming: the session goes, nothing is kept.
                self.upload_cancel(repo, id).await?;
                return Err(self.blob_too_large(None));
            }
            Err(e) => return Err(storage_err(e, id)),
        };
        let written = new - old;
        metrics::counter!("berth_bytes_received_total").increment(written);
        if let Err(e) = self.within_blob_limit(new) {
            // A chunk of undeclared length took the blob past the limit: nothing of it counts.
            self.upload_cancel(repo, id).await?;
            return Err(e);
        }
        if let Some(expected) = expected_len
            && expected != written
        {
            return Err(Error::malformed(
                Malformed::Size,
                format!("chunk declared {expected} bytes but {written} arrived; resume from {old}"),
            ));
        }
        let state = hashing
            .finish()
            .await
            .map(|h| h.save())
            .ok_or_else(|| Error::internal("the chunk was stored but its hash was lost"))?;
        let advanced = self
            .db
            .advance_upload(id, row.size, i64::try_from(new).unwrap_or(i64::MAX), &state)
            .await?;
        if !advanced {
            return Err(Error::malformed(
                Malformed::Upload,
                "another request changed this upload at the same time; query its status and resume",
            ));
        }
        Ok(UploadState {
            id: row.id,
            size: new,
        })
    }

    /// Restores the saved hash state, or re-hashes the stored bytes when there is none.
    async fn resume_hasher(
        &self,
        id: &str,
        algo: &str,
        state: Option<&[u8]>,
        len: u64,
    ) -> Result<Hasher> {
        let algo = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            // No version of Berth records another: a corrupt row, not a guess.
            other => {
                return Err(Error::internal(format!(
                    "upload {id} records an unknown hash algorithm {other:?}"
                )));
            }
        };
        if let Some(h) = state.and_then(|s| Hasher::restore(algo, s)) {
            return Ok(h);
        }
        self.rehash(id, algo, len).await
    }

    async fn rehash(&self, id: &str, algo: Algorithm, len: u64) -> Result<Hasher> {
        let mut h = Hasher::new(algo);
        let mut s = self
            .store
            .upload_read(id, len)
            .await
            .map_err(|e| storage_err(e, id))?;
        while let Some(chunk) = s.next().await {
            h.update(&chunk.map_err(StorageError::Io)?);
        }
        Ok(h)
    }

    /// Finishes a session: appends the optional last chunk (with its Content-Range start, which
    /// must follow the session's bytes exactly as a PATCH's must: else 416 and the session stays),
    /// verifies `digest` against the bytes, publishes the blob and links it to the repository.
    pub async fn upload_finish(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        last_chunk: Option<LastChunk>,
    ) -> Result<()> {
        if let Some(c) = last_chunk {
            self.upload_append(repo, id, c.start, c.len, c.body).await?;
        }
        let row = self
            .db
            .get_upload(repo.as_str(), id)
            .await?
            .ok_or_else(|| unknown_upload(id))?;
        let state = UploadState {
            size: u64::try_from(row.size).unwrap_or(0),
            id: row.id.clone(),
        };
        let hasher = if digest.algorithm().as_str() == row.hash_algo {
            self.resume_hasher(id, &row.hash_algo, row.hash_state.as_deref(), state.size)
                .await?
        } else {
            self.rehash(id, digest.algorithm(), state.size).await?
        };
        let actual = hasher.finish();
        if &actual != digest {
            self.upload_cancel(repo, id).await?;
            return Err(Error::malformed(
                Malformed::Digest,
                format!(
                    "uploaded content has digest {actual}, not {digest}; the upload was discarded, push it again"
                ),
            ));
        }
        if let Err(e) = self
            .quota_admits_upload(repo, state.size, Some(digest), "this blob")
            .await
        {
            self.upload_cancel(repo, id).await?;
            return Err(e);
        }
        if let Err(e) = self.store.upload_commit(id, state.size, digest).await {
            // A crash between publishing the bytes and recording the rows leaves the session row
            // with its bytes already published (and its parts partly cleaned up). The saved hash
            // state proves the session's bytes are this blob, and a published blob was verified
            // before it was published, so the session can be completed from it.
            if self.store.stat(digest).await? != Some(state.size) {
                return Err(storage_err(e, id));
            }
            tracing::info!(upload = id, %digest, "completing an upload whose blob was already published");
            let _ = self.store.upload_abort(id).await;
        }
        let mut w = self.db.write().await?;
        if !self.published_still(&mut w, digest, state.size).await? {
            drop(w);
            let mut w = self.db.write().await?;
            self.db.delete_upload(&mut w, id).await?;
            w.commit().await?;
            return Err(collected_meanwhile(digest));
        }
        self.record_blob(&mut w, row.repo_id, digest, state.size)
            .await?;
        self.db.delete_upload(&mut w, id).await?;
        w.commit().await?;
        Ok(())
    }

    /// A whole blob in one request (`POST ...?digest=`). No session row is written: the bytes go to
    /// a temporary object, are verified, committed, and linked in one transaction. A crash leaves at
    /// most an orphan temporary object, swept by garbage collection.
    pub async fn upload_monolithic(
        &self,
        repo: &RepoName,
        digest: &Digest,
        expected_len: Option<u64>,
        body: ByteStream,
    ) -> Result<u64> {
        if let Some(len) = expected_len {
            self.within_blob_limit(len)?;
            self.quota_admits_upload(repo, len, Some(digest), "this blob")
                .await?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        self.store.upload_begin(&id).await?;
        let result = self
            .monolithic_inner(repo, digest, expected_len, body, &id)
            .await;
        if result.is_err() {
            let _ = self.store.upload_abort(&id).await;
        }
        result
    }

    async fn monolithic_inner(
        &self,
        repo: &RepoName,
        digest: &Digest,
        expected_len: Option<u64>,
        body: ByteStream,
        id: &str,
    ) -> Result<u64> {
        let _in_flight = InFlight::new();
        let over = Arc::new(AtomicBool::new(false));
        let body = limited(body, 0, self.config.max_blob_bytes, over.clone());
        let (body, hashing) = hashed(body, Hasher::new(digest.algorithm()));
        let size = match self.store.upload_append(id, 0, body).await {
            Ok(n) => n,
            // The temporary object is removed by the caller on any error.
            Err(_) if over.load(Ordering::Relaxed) => {
                return Err(self.blob_too_large(None));
            }
            Err(e) => return Err(storage_err(e, id)),
        };
        metrics::counter!("berth_bytes_received_total").increment(size);
        // The temporary object is removed by the caller on any error.
        self.within_blob_limit(size)?;
        if let Some(expected) = expected_len
            && expected != size
        {
            return Err(Error::malformed(
                Malformed::Size,
                format!("Content-Length was {expected} but {size} bytes arrived"),
            ));
        }
        let actual = hashing
            .finish()
            .await
            .map(Hasher::finish)
            .ok_or_else(|| Error::internal("the blob was stored but its hash was lost"))?;
        if &actual != digest {
            return Err(Error::malformed(
                Malformed::Digest,
                format!("uploaded content has digest {actual}, not {digest}"),
            ));
        }
        self.store.upload_commit(id, size, digest).await?;
        let mut w = self.db.write().await?;
        if !self.published_still(&mut w, digest, size).await? {
            return Err(collected_meanwhile(digest));
        }
        let repo_id = self
            .db
            .ensure_repo(&mut w, repo.as_str(), repo.namespace())
            .await?;
        self.record_blob(&mut w, repo_id, digest, size).await?;
        w.commit().await?;
        Ok(size)
    }

    /// Takes the blob row's lock (creating the row if needed) and checks that the bytes just
    /// published are still there. The blob sweep deletes bytes only under that same lock, so
    /// once this answers true they stay until the caller's transaction has linked them; false
    /// means the sweep deleted this digest between the publish and the lock.
    async fn published_still(
        &self,
        w: &mut berth_db::WriteTx,
        digest: &Digest,
        size: u64,
    ) -> Result<bool> {
        self.db
            .lock_blob(w, &digest.to_string(), to_i64(size))
            .await?;
        Ok(self.store.stat(digest).await? == Some(size))
    }

    /// Records a verified, published blob: links it to the repository, notes its placement and
    /// enqueues its replication, all in the caller's transaction.
    async fn record_blob(
        &self,
        w: &mut berth_db::WriteTx,
        repo_id: i64,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let d = digest.to_string();
        self.db
            .link_blob(w, repo_id, &d, i64::try_from(size).unwrap_or(i64::MAX))
            .await?;
        self.place_new_blob(w, digest).await
    }

    /// Cancels a session and removes its bytes.
    pub async fn upload_cancel(&self, repo: &RepoName, id: &str) -> Result<()> {
        let row = self
            .db
            .get_upload(repo.as_str(), id)
            .await?
            .ok_or_else(|| unknown_upload(id))?;
        let mut w = self.db.write().await?;
        self.db.delete_upload(&mut w, &row.id).await?;
        w.commit().await?;
        self.store.upload_abort(id).await?;
        Ok(())
    }
}

impl Registry {
    /// `MAXIMUM_LAYER_SIZE`: 413 for a blob of `size` bytes over the limit, as Quay refuses it.
    fn within_blob_limit(&self, size: u64) -> Result<()> {
        if size <= self.config.max_blob_bytes {
            return Ok(());
        }
        Err(self.blob_too_large(Some(size)))
    }

    /// The refusal of a blob over `MAXIMUM_LAYER_SIZE` (its size, when known).
    fn blob_too_large(&self, size: Option<u64>) -> Error {
        let human = |n: u64| crate::quotas::human_size(i64::try_from(n).unwrap_or(i64::MAX));
        let what = match size {
            Some(n) => format!("Uploaded blob of {}", human(n)),
            None => "Uploaded blob".to_string(),
        };
        Error::TooLarge(format!(
            "{what} is larger than the {} this registry allows (MAXIMUM_LAYER_SIZE); an administrator can raise the limit",
            human(self.config.max_blob_bytes),
        ))
    }
}

/// The bytes a closing PUT carries.
pub struct LastChunk {
    /// Where the chunk starts, from its `Content-Range`, when the client sent one.
    pub start: Option<u64>,
    /// Its declared length, when known.
    pub len: Option<u64>,
    pub body: ByteStream,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn collected_meanwhile(digest: &Digest) -> Error {
    Error::missing(
        Missing::Upload,
        format!(
            "blob {digest} was removed by garbage collection while this upload finished; push it again"
        ),
    )
}
