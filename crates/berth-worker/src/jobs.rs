//! Running queued jobs: the table of job kinds this worker knows, and the worker that claims jobs
//! from the queue and runs them through it. A new job type is its `Job` impl in `berth-core` and
//! one line in `JobTable::standard`.

use crate::runner::{Worker, WorkerState};
use berth_core::jobs::{
    ClaimedJob, DeleteRepo, GcBlobs, GcOrphans, GcRepo, Job, JobContext, JobError, JobResult,
    ReplicateBlob,
};
use berth_core::mirror::{MirrorSync, OrgMirrorDiscover};
use berth_core::notify::DeliverNotification;
use berth_core::scan::IndexLayer;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

/// Jobs claimed per step.
const BATCH: i64 = 4;
/// Wait between polls of an empty queue: starts short, doubles while the queue stays empty.
const IDLE_MIN: Duration = Duration::from_millis(250);
const IDLE_MAX: Duration = Duration::from_secs(4);

/// Retry delay after the n-th failed attempt: 2, 4, 8 … seconds, at most an hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 12)).unwrap_or(12);
    (1000i64 << exp).min(3_600_000)
}

type Running<'a> = Pin<Box<dyn Future<Output = JobResult> + Send + 'a>>;
type Runner = for<'a> fn(&'a JobContext, &'a str) -> Running<'a>;

/// Reads a `J` from its payload and runs it.
fn decode_and_run<'a, J: Job>(ctx: &'a JobContext, payload: &'a str) -> Running<'a> {
    Box::pin(async move {
        let job: J = serde_json::from_str(payload)
            .map_err(|e| JobError::Permanent(format!("bad payload: {e}")))?;
        job.run(ctx).await
    })
}

/// Job kinds and how to read and run each, and which kinds its worker claims.
pub struct JobTable {
    kinds: BTreeMap<&'static str, Runner>,
    /// Claim only the table's kinds (a dedicated worker); otherwise every kind but those of
    /// the dedicated workers (so a kind nobody knows is still claimed, and fails for good).
    only_own: bool,
}

/// Kinds a worker of their own runs (long syncs must not hold up deliveries and GC).
const DEDICATED: &[&str] = &[MirrorSync::KIND, OrgMirrorDiscover::KIND];

impl JobTable {
    pub fn empty() -> JobTable {
        JobTable {
            kinds: BTreeMap::new(),
            only_own: false,
        }
    }

    /// Every job type Berth enqueues.
    pub fn standard() -> JobTable {
        JobTable::empty()
            .with::<ReplicateBlob>()
            .with::<DeleteRepo>()
            .with::<GcRepo>()
            .with::<GcBlobs>()
            .with::<GcOrphans>()
            .with::<DeliverNotification>()
            .with::<IndexLayer>()
    }

    /// Mirror syncs and organization mirror discoveries, which may run for long: on a worker
    /// of their own.
    pub fn mirrors() -> JobTable {
        let mut t = JobTable::empty()
            .with::<MirrorSync>()
            .with::<OrgMirrorDiscover>();
        t.only_own = true;
        t
    }

    /// The kinds its worker claims, and whether only those (else every kind but them).
    fn claims(&self) -> (Vec<&'static str>, bool) {
        if self.only_own {
            (self.kinds().collect(), true)
        } else {
            (DEDICATED.to_vec(), false)
        }
    }

    /// Registers `J`. Two types with one kind are a programming error, caught at start-up.
    pub fn with<J: Job>(mut self) -> JobTable {
        let earlier = self.kinds.insert(J::KIND, decode_and_run::<J>);
        assert!(earlier.is_none(), "job kind {:?} registered twice", J::KIND);
        self
    }

    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// Runs one job by kind. An unknown kind or an unreadable payload fails for good.
    pub async fn run(&self, ctx: &JobContext, kind: &str, payload: &str) -> JobResult {
        let run = self
            .kinds
            .get(kind)
            .ok_or_else(|| JobError::Permanent(format!("no worker knows job kind {kind:?}")))?;
        run(ctx, payload).await
    }
}

/// The worker that claims jobs from the queue, a few at a time, and runs them. Busy while the
/// queue yields jobs; when it is empty, polls again after 250 ms, backing off to every 4 s.
pub struct JobWorker {
    ctx: JobContext,
    table: JobTable,
    /// This process's name in the queue's leases.
    holder: String,
    lease: Duration,
    idle_wait: Duration,
    /// The kinds it claims (`only`), or does not claim.
    kinds: Vec<&'static str>,
    only: bool,
}

impl JobWorker {
    pub fn new(ctx: JobContext, table: JobTable, holder: String, lease: Duration) -> JobWorker {
        let (kinds, only) = table.claims();
        JobWorker {
            ctx,
            table,
            holder,
            lease,
            idle_wait: IDLE_MIN,
            kinds,
            only,
        }
    }

    /// Runs one claimed job and records its outcome.
    async fn run_one(&self, job: ClaimedJob) {
        let reg = &self.ctx.registry;
        let outcome = self.table.run(&self.ctx, &job.kind, &job.payload).await;
        let label = job.kind.clone();
        let recorded = match outcome {
            Ok(()) => {
                metrics::counter!("berth_jobs_completed_total", "kind" => label).increment(1);
                reg.finish_job(&job, &self.holder).await
            }
            Err(error) => {
                let retry = (error.is_retryable() && job.attempts < job.max_attempts)
                    .then(|| berth_core::now_ms() + backoff_ms(job.attempts));
                tracing::warn!(job = job.id, kind = %job.kind, attempts = job.attempts, %error, will_retry = retry.is_some(), "job failed");
                metrics::counter!("berth_jobs_failed_total", "kind" => label).increment(1);
                reg.fail_job(&job, &self.holder, &error.to_string(), retry)
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(job = job.id, error = %e, "cannot record job outcome; its lease will expire and it will run again");
        }
    }
}

impl Worker for JobWorker {
    fn name(&self) -> &'static str {
        "jobs"
    }

    async fn work(&mut self) -> WorkerState {
        let claimed = self
            .ctx
            .registry
            .claim_jobs(&self.holder, BATCH, self.lease, &self.kinds, self.only)
            .await;
        let jobs = claimed.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot claim jobs; retrying");
            Vec::new()
        });
        if jobs.is_empty() {
            let wait = self.idle_wait;
            self.idle_wait = (wait * 2).min(IDLE_MAX);
            return WorkerState::Idle(wait);
        }
        for job in jobs {
            self.run_one(job).await;
        }
        self.idle_wait = IDLE_MIN;
        WorkerState::Busy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::registry;

    /// A job that succeeds, or fails as its payload says.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Probe {
        key: String,
        fail: Option<bool>,
    }

    impl Job for Probe {
        const KIND: &'static str = "probe";
        fn dedup_key(&self) -> String {
            self.key.clone()
        }
        async fn run(&self, _: &JobContext) -> JobResult {
            match self.fail {
                None => Ok(()),
                Some(true) => Err(JobError::Retryable(berth_core::Error::Internal(
                    "try again".into(),
                ))),
                Some(false) => Err(JobError::Permanent("never".into())),
            }
        }
    }

    /// A job no table below registers.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Stray {}

    impl Job for Stray {
        const KIND: &'static str = "stray";
        fn dedup_key(&self) -> String {
            String::new()
        }
        async fn run(&self, _: &JobContext) -> JobResult {
            Ok(())
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(1), 2000);
        assert_eq!(backoff_ms(2), 4000);
        assert_eq!(backoff_ms(30), 3_600_000);
    }

    #[test]
    fn the_standard_table_knows_every_job_berth_enqueues() {
        let kinds: Vec<_> = JobTable::standard().kinds().collect();
        assert_eq!(
            kinds,
            [
                "delete_repository",
                "deliver_notification",
                "gc_blobs",
                "gc_orphans",
                "gc_repository",
                "index_layer",
                "replicate_blob"
            ]
        );
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_kind_registered_twice_is_refused() {
        let _ = JobTable::empty().with::<GcBlobs>().with::<GcBlobs>();
    }

    #[tokio::test]
    async fn unknown_kinds_and_bad_payloads_fail_for_good() {
        let (_dir, reg) = registry().await;
        let ctx = JobContext { registry: reg };
        let table = JobTable::standard().with::<Probe>();
        let unknown = table.run(&ctx, "no_such_kind", "{}").await;
        assert!(
            matches!(&unknown, Err(JobError::Permanent(m)) if m.contains("no_such_kind")),
            "{unknown:?}"
        );
        let bad = table.run(&ctx, "probe", "{not json").await;
        assert!(
            matches!(&bad, Err(JobError::Permanent(m)) if m.starts_with("bad payload")),
            "{bad:?}"
        );
        let retry = table.run(&ctx, "probe", r#"{"key":"a","fail":true}"#).await;
        assert!(matches!(retry, Err(ref e) if e.is_retryable()), "{retry:?}");
        assert!(
            table
                .run(&ctx, "probe", r#"{"key":"a","fail":null}"#)
                .await
                .is_ok()
        );
    }

    async fn counts(reg: &berth_core::Registry) -> Vec<(String, String, i64)> {
        let mut c = reg.job_counts().await.expect("counts");
        c.sort();
        c
    }

    #[tokio::test]
    async fn the_job_worker_records_done_retried_and_failed_jobs() {
        // Retried: a retryable failure. Failed for good: a permanent one, and a kind no one knows.
        let (_dir, reg) = registry().await;
        for (key, fail) in [("ok", None), ("again", Some(true)), ("never", Some(false))] {
            let job = Probe {
                key: key.into(),
                fail,
            };
            assert!(reg.enqueue_alone(&job).await.expect("enqueue"));
        }
        assert!(reg.enqueue_alone(&Stray {}).await.expect("enqueue"));
        let mut worker = JobWorker::new(
            JobContext {
                registry: reg.clone(),
            },
            JobTable::standard().with::<Probe>(),
            "test-worker".into(),
            Duration::from_secs(60),
        );
        assert_eq!(worker.work().await, WorkerState::Busy);
        // The retryable failure waits out its backoff; nothing else is runnable.
        assert_eq!(worker.work().await, WorkerState::Idle(IDLE_MIN));
        assert_eq!(worker.work().await, WorkerState::Idle(IDLE_MIN * 2));
        assert_eq!(
            counts(&reg).await,
            [
                ("probe".into(), "done".into(), 1),
                ("probe".into(), "failed".into(), 1),
                ("probe".into(), "queued".into(), 1),
                ("stray".into(), "failed".into(), 1),
            ]
        );
    }

    #[tokio::test]
    async fn mirror_syncs_run_only_on_their_own_worker() {
        let (_dir, reg) = registry().await;
        let sync = MirrorSync {
            repo_id: 999,
            txn: "gone".into(),
        };
        assert!(reg.enqueue_alone(&sync).await.expect("enqueue"));
        let probe = Probe {
            key: "p".into(),
            fail: None,
        };
        assert!(reg.enqueue_alone(&probe).await.expect("enqueue"));
        let ctx = JobContext {
            registry: reg.clone(),
        };
        let lease = Duration::from_secs(60);
        let mut general = JobWorker::new(
            ctx.clone(),
            JobTable::standard().with::<Probe>(),
            "general".into(),
            lease,
        );
        assert_eq!(general.work().await, WorkerState::Busy);
        assert_eq!(general.work().await, WorkerState::Idle(IDLE_MIN));
        assert_eq!(
            counts(&reg).await,
            [
                ("mirror_sync".into(), "queued".into(), 1),
                ("probe".into(), "done".into(), 1),
            ]
        );
        let mut mirrors = JobWorker::new(ctx, JobTable::mirrors(), "mirrors".into(), lease);
        assert_eq!(mirrors.work().await, WorkerState::Busy);
        // A sync whose mirror is gone (its claim fails) is done, having done nothing.
        assert_eq!(
            counts(&reg).await,
            [
                ("mirror_sync".into(), "done".into(), 1),
                ("probe".into(), "done".into(), 1),
            ]
        );
    }

    #[tokio::test]
    async fn the_jobs_a_full_gc_pass_queues_all_run() {
        let (_dir, reg) = registry().await;
        assert_eq!(reg.gc_schedule(true).await.expect("schedule"), 2);
        let mut worker = JobWorker::new(
            JobContext {
                registry: reg.clone(),
            },
            JobTable::standard(),
            "test-worker".into(),
            Duration::from_secs(60),
        );
        assert_eq!(worker.work().await, WorkerState::Busy);
        assert_eq!(
            counts(&reg).await,
            [
                ("gc_blobs".into(), "done".into(), 1),
                ("gc_orphans".into(), "done".into(), 1),
            ]
        );
        // Run here, the same pass collects nothing in an empty registry, and counts as a run.
        assert_eq!(
            reg.gc_pass(true).await.expect("pass"),
            berth_core::GcReport::default()
        );
        let (totals, queue) = reg.gc_status().await.expect("status");
        assert_eq!((totals.runs, queue), (2, 0));
    }
}
