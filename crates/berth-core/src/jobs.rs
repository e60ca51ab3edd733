//! Typed background jobs. Each is a small serialisable struct with a kind and a deduplication key;
//! it is enqueued inside the transaction of the change that needs it, and run by `berth-worker`.

use crate::{Registry, Result};
use berth_db::WriteTx;
use serde::{Serialize, de::DeserializeOwned};

pub trait Job: Serialize + DeserializeOwned {
    /// The job's name in the queue.
    const KIND: &'static str;
    /// Jobs with equal keys are one job while queued or running.
    fn dedup_key(&self) -> String;
}

/// Copy a blob into a storage location that lacks it (geo-replication).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplicateBlob {
    pub digest: String,
    pub location: String,
}

impl Job for ReplicateBlob {
    const KIND: &'static str = "replicate_blob";
    fn dedup_key(&self) -> String {
        format!("{}@{}", self.digest, self.location)
    }
}

/// Remove a deleted repository's contents.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DeleteRepo {
    pub repo_id: i64,
}

impl Job for DeleteRepo {
    const KIND: &'static str = "delete_repository";
    fn dedup_key(&self) -> String {
        self.repo_id.to_string()
    }
}

/// Sweep one repository (garbage collection).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GcRepo {
    pub repo_id: i64,
}

impl Job for GcRepo {
    const KIND: &'static str = "gc_repository";
    fn dedup_key(&self) -> String {
        self.repo_id.to_string()
    }
}

/// Delete queued blobs nothing uses any more, and abandoned upload sessions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GcBlobs {}

impl Job for GcBlobs {
    const KIND: &'static str = "gc_blobs";
    fn dedup_key(&self) -> String {
        "blobs".into()
    }
}

/// Find bytes in storage that no row knows of (left by a crash).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GcOrphans {}

impl Job for GcOrphans {
    const KIND: &'static str = "gc_orphans";
    fn dedup_key(&self) -> String {
        "orphans".into()
    }
}

impl Registry {
    /// Enqueues `job` in the caller's transaction.
    pub async fn enqueue<J: Job>(&self, w: &mut WriteTx, job: &J) -> Result<bool> {
        let payload = serde_json::to_string(job).map_err(|e| {
            crate::Error::Storage(berth_storage::StorageError::Io(std::io::Error::other(e)))
        })?;
        Ok(self
            .db
            .enqueue_job(w, J::KIND, &job.dedup_key(), &payload)
            .await?)
    }
}
