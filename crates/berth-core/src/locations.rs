//! Storage locations and geo-replication. Every instance writes to its preferred location; the
//! transaction that records a new blob also records its placement there and enqueues a
//! `ReplicateBlob` job for every other location it must reach. Reads use the preferred location
//! when it holds the blob, else the first location in preference order that does.

use crate::error::Missing;
use crate::jobs::ReplicateBlob;
use crate::{Error, Registry, Result};
use berth_db::WriteTx;
use berth_oci::{Digest, Hasher};
use berth_storage::{BlobStore, ByteStream, StorageError};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The storage locations this instance knows, in its order of preference.
pub struct Locations {
    /// Location names, preferred first.
    order: Vec<String>,
    stores: BTreeMap<String, Arc<dyn BlobStore>>,
    preferred: Arc<dyn BlobStore>,
    /// Locations every new blob must be copied to (empty: no replication).
    replicate_to: Vec<String>,
}

impl Locations {
    /// `order` names the locations, preferred first; each must have a store.
    pub fn new(
        order: Vec<String>,
        stores: BTreeMap<String, Arc<dyn BlobStore>>,
        replicate_to: Vec<String>,
    ) -> std::result::Result<Locations, String> {
        let first = order.first().ok_or("no storage location is preferred")?;
        let preferred = stores
            .get(first)
            .cloned()
            .ok_or_else(|| format!("storage location {first} has no backend"))?;
        if let Some(missing) = order
            .iter()
            .chain(&replicate_to)
            .find(|n| !stores.contains_key(*n))
        {
            return Err(format!("storage location {missing} has no backend"));
        }
        Ok(Locations {
            order,
            stores,
            preferred,
            replicate_to,
        })
    }
    /// One location and no replication.
    pub fn single(name: &str, store: Arc<dyn BlobStore>) -> Locations {
        Locations {
            order: vec![name.to_string()],
            stores: BTreeMap::from([(name.to_string(), store.clone())]),
            preferred: store,
            replicate_to: Vec::new(),
        }
    }
    pub fn preferred(&self) -> &str {
        self.order.first().map(String::as_str).unwrap_or_default()
    }
    pub fn preferred_store(&self) -> Arc<dyn BlobStore> {
        self.preferred.clone()
    }
    pub fn names(&self) -> &[String] {
        &self.order
    }
    /// Every configured store, each once.
    pub fn stores(&self) -> impl Iterator<Item = (&String, &Arc<dyn BlobStore>)> {
        self.stores.iter()
    }
}

impl Registry {
    /// Records a newly committed blob's placement in the preferred location and enqueues its
    /// replication, in the caller's transaction.
    pub(crate) async fn place_new_blob(&self, w: &mut WriteTx, digest: &Digest) -> Result<()> {
        let d = digest.to_string();
        let here = self.locations.preferred().to_string();
        self.db.add_placement(w, &d, &here).await?;
        for target in self.locations.replicate_to.iter().filter(|t| **t != here) {
            self.enqueue(
                w,
                &ReplicateBlob {
                    digest: d.clone(),
                    location: target.clone(),
                },
            )
            .await?;
        }
        Ok(())
    }

    /// The store to read a blob from.
    pub(crate) async fn read_store(&self, digest: &Digest) -> Result<Arc<dyn BlobStore>> {
        if self.locations.stores.len() == 1 {
            return Ok(self.store.clone());
        }
        let placed = self.db.placements(&digest.to_string()).await?;
        let has = |name: &str| placed.iter().any(|(l, _)| l == name);
        if placed.is_empty() || has(self.locations.preferred()) {
            return Ok(self.store.clone());
        }
        let name = self
            .locations
            .order
            .iter()
            .find(|n| has(n))
            .ok_or_else(|| {
                Error::missing(
                    Missing::Blob,
                    format!("blob {digest} is in no storage location this instance can reach"),
                )
            })?;
        metrics::counter!("berth_blob_reads_from_other_location_total", "location" => name.clone())
            .increment(1);
        Ok(self.locations.stores[name].clone())
    }

    /// Copies a blob into `target`, verifying its digest on the way, and records the placement.
    /// Idempotent: a blob already placed there is left alone.
    pub async fn replicate_blob(&self, job: &ReplicateBlob) -> Result<()> {
        let digest: Digest = job
            .digest
            .parse()
            .map_err(|_| Error::internal(format!("bad digest in job: {}", job.digest)))?;
        let target = self.locations.stores.get(&job.location).ok_or_else(|| {
            Error::Unsupported(format!("location {} is not configured here", job.location))
        })?;
        let placed = self.db.placements(&job.digest).await?;
        if placed.iter().any(|(l, _)| *l == job.location) {
            return Ok(());
        }
        if placed.is_empty() && self.db.blob_totals_of(&job.digest).await?.is_none() {
            // Collected before it was copied: nothing left to replicate.
            return Ok(());
        }
        let source_name = self
            .locations
            .order
            .iter()
            .find(|n| **n != job.location && placed.iter().any(|(l, _)| l == *n))
            .ok_or_else(|| {
                Error::missing(Missing::Blob, format!("no location holds {digest} yet"))
            })?;
        let source = &self.locations.stores[source_name];
        let hasher = Arc::new(Mutex::new(Hasher::new(digest.algorithm())));
        let h = hasher.clone();
        let stream: ByteStream = source
            .get(&digest, None)
            .await?
            .map(move |c| {
                if let (Ok(chunk), Ok(mut h)) = (&c, h.lock()) {
                    h.update(chunk);
                }
                c
            })
            .boxed();
        let id = uuid::Uuid::new_v4().to_string();
        target.upload_begin(&id).await?;
        let size = match target.upload_append(&id, 0, stream).await {
            Ok(n) => n,
            Err(e) => {
                let _ = target.upload_abort(&id).await;
                return Err(e.into());
            }
        };
        let actual = hasher.lock().map(|h| h.clone().finish()).map_err(|_| {
            Error::Storage(StorageError::Io(std::io::Error::other(
                "hasher lock poisoned",
            )))
        })?;
        if actual != digest {
            let _ = target.upload_abort(&id).await;
            return Err(Error::internal(format!(
                "copy of {digest} from {source_name} hashed to {actual}; the source is corrupt"
            )));
        }
        target.upload_commit(&id, size, &digest).await?;
        // Record the copy under the blob row's lock, the lock the blob sweep deletes under: if
        // the blob was collected meanwhile, the copy is recorded as an unlinked blob and queued,
        // so the sweep removes it (a plain delete here could remove a new upload's bytes); if the
        // sweep removed the copy between the publish and the lock, the job runs again.
        let mut w = self.db.write().await?;
        if !self.db.blob_row_locked(&mut w, &job.digest).await? {
            let size_i = i64::try_from(size).unwrap_or(i64::MAX);
            self.db.lock_blob(&mut w, &job.digest, size_i).await?;
            self.db
                .add_placement(&mut w, &job.digest, &job.location)
                .await?;
            self.db
                .queue_blob_gc(&mut w, &job.digest, berth_db::now_ms())
                .await?;
            w.commit().await?;
            tracing::info!(%digest, to = %job.location, "blob was collected before its copy finished; copy queued for collection");
            return Ok(());
        }
        if target.stat(&digest).await? != Some(size) {
            return Err(Error::missing(
                Missing::Blob,
                format!(
                    "copy of {digest} in {} vanished before it was recorded; retrying",
                    job.location
                ),
            ));
        }
        self.db
            .add_placement(&mut w, &job.digest, &job.location)
            .await?;
        w.commit().await?;
        metrics::counter!("berth_replicated_bytes_total", "location" => job.location.clone())
            .increment(size);
        tracing::info!(%digest, from = %source_name, to = %job.location, size, "blob replicated");
        Ok(())
    }
}
