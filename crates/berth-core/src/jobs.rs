//! Typed background jobs and the queue they wait in. A job is a small serialisable struct with a
//! kind, a deduplication key and a `run`; it is enqueued through `enqueue` (the one door into the
//! queue) inside the transaction of the change that needs it, and claimed and run by
//! `berth-worker`, which reaches the queue only through the `Registry` methods below.

use crate::{Error, Registry, Result};
use berth_db::{Db, WriteTx};
use serde::{Serialize, de::DeserializeOwned};
use std::time::Duration;

/// What a job's `run` is given.
#[derive(Clone)]
pub struct JobContext {
    pub registry: Registry,
}

/// Why a run failed, and so whether another attempt can help.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The job can never succeed (an unknown kind, an unreadable payload): it fails for good.
    #[error("{0}")]
    Permanent(String),
    /// The work could not be done now (storage or database trouble): the job is retried later.
    #[error(transparent)]
    Retryable(#[from] Error),
}

/// What a job's run comes to.
pub type JobResult = std::result::Result<(), JobError>;

impl JobError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Retryable(_))
    }
}

pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The job's name in the queue.
    const KIND: &'static str;
    /// Jobs with equal keys are one job while queued or running.
    fn dedup_key(&self) -> String;
    /// Does the work. A run may be repeated (a retry, or a worker that died before recording
    /// the outcome), so it must be idempotent.
    fn run(&self, ctx: &JobContext) -> impl Future<Output = JobResult> + Send;
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
    async fn run(&self, ctx: &JobContext) -> JobResult {
        Ok(ctx.registry.replicate_blob(self).await?)
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
    async fn run(&self, ctx: &JobContext) -> JobResult {
        ctx.registry.purge_repository(self).await?;
        Ok(())
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
    async fn run(&self, ctx: &JobContext) -> JobResult {
        Ok(ctx.registry.run_gc_repo(self).await?)
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
    async fn run(&self, ctx: &JobContext) -> JobResult {
        Ok(ctx.registry.run_gc_blobs().await?)
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
    async fn run(&self, ctx: &JobContext) -> JobResult {
        Ok(ctx.registry.run_gc_orphans().await?)
    }
}

/// The one door into the queue: enqueues `job` in the caller's transaction, so that it exists
/// exactly when the change that needs it commits. False when an equal job is already queued or
/// running. `Registry::enqueue` and the account services both come here.
pub(crate) async fn enqueue<J: Job>(db: &Db, w: &mut WriteTx, job: &J) -> Result<bool> {
    let payload = serde_json::to_string(job)
        .map_err(|e| Error::Internal(format!("cannot encode a {} job: {e}", J::KIND)))?;
    Ok(db
        .enqueue_job(w, J::KIND, &job.dedup_key(), &payload)
        .await?)
}

/// A job claimed from the queue by one worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub max_attempts: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Registry {
    /// Enqueues `job` in the caller's transaction.
    pub async fn enqueue<J: Job>(&self, w: &mut WriteTx, job: &J) -> Result<bool> {
        enqueue(&self.db, w, job).await
    }

    /// Enqueues `job` in a transaction of its own: for work that follows a change already
    /// committed, or that no change calls for.
    pub async fn enqueue_alone<J: Job>(&self, job: &J) -> Result<bool> {
        let mut w = self.db.write().await?;
        let queued = enqueue(&self.db, &mut w, job).await?;
        w.commit().await?;
        Ok(queued)
    }

    /// Claims up to `limit` runnable jobs for `worker` — of `kinds` only, or (`only` false) of
    /// every kind but those — each leased to it for `lease` (a job whose worker died is
    /// runnable again once its lease ends).
    pub async fn claim_jobs(
        &self,
        worker: &str,
        limit: i64,
        lease: Duration,
        kinds: &[&str],
        only: bool,
    ) -> Result<Vec<ClaimedJob>> {
        let rows = self
            .db
            .claim_jobs_of(worker, limit, ms(lease), kinds, only)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ClaimedJob {
                id: r.id,
                kind: r.kind,
                payload: r.payload,
                attempts: r.attempts,
                max_attempts: r.max_attempts,
            })
            .collect())
    }

    /// Records that `worker` finished `job` (nothing happens if its lease passed to another).
    pub async fn finish_job(&self, job: &ClaimedJob, worker: &str) -> Result<()> {
        Ok(self.db.finish_job(job.id, worker).await?)
    }

    /// Records a failure: the job is queued again at `retry_at`, or failed for good when `None`.
    pub async fn fail_job(
        &self,
        job: &ClaimedJob,
        worker: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        Ok(self.db.fail_job(job.id, worker, error, retry_at).await?)
    }

    /// Forgets finished jobs older than `age`. Returns how many.
    pub async fn prune_jobs(&self, age: Duration) -> Result<u64> {
        Ok(self.db.prune_jobs(ms(age)).await?)
    }

    /// (kind, state, count) over the queue.
    pub async fn job_counts(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(self
            .db
            .job_counts()
            .await?
            .into_iter()
            .map(|(kind, state, n)| (kind, state.as_str().to_string(), n))
            .collect())
    }

    /// Takes or renews the cluster-wide lease `name` for `holder` for `ttl`; false while another
    /// holder's lease runs. Instances sharing one database use it to run a chore one at a time.
    pub async fn take_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        Ok(self.db.acquire_lease(name, holder, ms(ttl)).await?)
    }
}
