//! Background work. Rule: every background loop is a `Worker` (a named step that reports busy or
//! idle, stopped by a shutdown signal between steps), and every piece of work goes through a
//! `berth-core` method: a queued job runs through its `Job::run`, a periodic chore calls the core
//! under its lease; this crate holds no SQL and no registry logic, only scheduling.
//!
//! Any number of processes (`berth serve`, `berth worker`) share one queue: a job is leased to one
//! worker at a time, retried with exponential backoff, and claimed again if its worker dies.

mod chores;
mod jobs;
mod runner;
#[cfg(test)]
mod testing;

pub use chores::{
    Autoprune, Chore, ExpireTags, ExpiryNotices, ImportVulnData, MatchManifests, Periodic,
    PruneJobs, QueueIndexing, ScheduleDeliveries, ScheduleGc, ScheduleMirrors, ScheduleOrgMirrors,
    holds_lease,
};
pub use jobs::{JobTable, JobWorker, backoff_ms};
pub use runner::{Worker, WorkerState, run_worker};

use berth_core::Registry;
use berth_core::jobs::JobContext;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long a claimed job belongs to its worker before others may take it over, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// How often expired tags are moved into history.
const EXPIRY_EVERY: Duration = Duration::from_secs(5);
/// How often due notification deliveries (retries) are queued.
const DELIVERIES_EVERY: Duration = Duration::from_secs(2);
/// How often tags about to expire are looked for (each is told about once).
const EXPIRY_NOTICES_EVERY: Duration = Duration::from_secs(10);
/// How often manifests are matched again where their layers or the data changed.
const MATCH_EVERY: Duration = Duration::from_secs(2);
/// How often finished jobs are pruned.
const PRUNE_JOBS_EVERY: Duration = Duration::from_secs(3600);

/// Runs this process's workers — the job queue's, and the periodic chores the configuration
/// turns on — until `shutdown` turns true, and returns once each has finished the step in hand.
/// A job held longer than `lease` by a worker that died is claimed again by another.
pub async fn run(reg: Registry, lease: Duration, shutdown: watch::Receiver<bool>) {
    let me = format!("worker-{}", uuid::Uuid::new_v4());
    tracing::info!(worker = %me, "background worker started");
    let mut w = Workers {
        set: JoinSet::new(),
        shutdown,
        reg: reg.clone(),
        holder: me.clone(),
    };
    let ctx = JobContext {
        registry: reg.clone(),
    };
    w.start(JobWorker::new(
        ctx.clone(),
        JobTable::standard(),
        me.clone(),
        lease,
    ));
    if reg.config.mirror.enabled {
        w.start(JobWorker::new(ctx, JobTable::mirrors(), me.clone(), lease));
        let every = reg.config.mirror.interval;
        w.chore(ScheduleMirrors, every, Duration::ZERO);
        if reg.config.mirror.org_enabled {
            w.chore(
                ScheduleOrgMirrors,
                reg.config.mirror.org_interval,
                Duration::ZERO,
            );
        }
    }
    // Each chore: its interval (start to start), then when its first turn comes.
    w.chore(PruneJobs, PRUNE_JOBS_EVERY, PRUNE_JOBS_EVERY);
    w.chore(ExpireTags, EXPIRY_EVERY, Duration::ZERO);
    w.chore(ScheduleDeliveries, DELIVERIES_EVERY, DELIVERIES_EVERY);
    w.chore(ExpiryNotices, EXPIRY_NOTICES_EVERY, EXPIRY_NOTICES_EVERY);
    let scan = &reg.config.scan;
    if scan.enabled && scan.indexing {
        if !scan.sources.is_empty() {
            w.chore(ImportVulnData, scan.update_interval, Duration::ZERO);
        }
        w.chore(
            QueueIndexing,
            scan.indexing_interval,
            scan.indexing_interval,
        );
    }
    if scan.enabled {
        w.chore(MatchManifests, MATCH_EVERY, MATCH_EVERY);
    }
    let gc = &reg.config.gc;
    if gc.enabled {
        let every = Duration::from_secs(gc.interval_s.max(1));
        let schedule = ScheduleGc {
            full_every: Duration::from_secs(gc.full_sweep_s.max(1)),
            last_full: Instant::now(),
        };
        w.chore(schedule, every, every);
    }
    if gc.autoprune {
        let every = Duration::from_secs(gc.autoprune_interval_s.max(1));
        w.chore(Autoprune, every, every);
    }
    while let Some(done) = w.set.join_next().await {
        if let Err(e) = done {
            tracing::error!(worker = %me, error = %e, "a background worker panicked");
        }
    }
    tracing::info!(worker = %me, "background worker stopped");
}

/// The workers of one `run`, each on its own task.
struct Workers {
    set: JoinSet<()>,
    shutdown: watch::Receiver<bool>,
    reg: Registry,
    holder: String,
}

impl Workers {
    fn start<W: Worker>(&mut self, worker: W) {
        self.set.spawn(run_worker(worker, self.shutdown.clone()));
    }

    fn chore<C: Chore>(&mut self, chore: C, every: Duration, first_after: Duration) {
        let p = Periodic::new(
            chore,
            self.reg.clone(),
            self.holder.clone(),
            every,
            first_after,
        );
        self.start(p);
    }
}
