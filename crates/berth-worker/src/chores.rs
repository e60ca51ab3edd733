//! Periodic chores: work that is not queued but due every so often, done by one instance at a
//! time. Each is a `Chore` run by `Periodic`, which waits out its interval and takes its
//! cluster-wide lease (instances share one database) before every turn.

use crate::runner::{Worker, WorkerState};
use berth_core::Registry;
use std::time::{Duration, Instant};

/// Finished jobs are kept this long for inspection.
const KEEP_DONE: Duration = Duration::from_secs(24 * 3600);

/// One turn of a periodic chore.
pub trait Chore: Send + 'static {
    /// Its name in logs, which is also the name of its lease.
    const NAME: &'static str;
    /// Does the chore once. A failure is logged and the chore runs again at its next turn.
    fn run(&mut self, reg: &Registry) -> impl Future<Output = berth_core::Result<()>> + Send;
}

/// Runs a chore every `every` (start to start), first after `first_after`, on whichever
/// instance holds its lease.
pub struct Periodic<C> {
    chore: C,
    reg: Registry,
    holder: String,
    every: Duration,
    next: Instant,
}

impl<C: Chore> Periodic<C> {
    pub fn new(
        chore: C,
        reg: Registry,
        holder: String,
        every: Duration,
        first_after: Duration,
    ) -> Periodic<C> {
        Periodic {
            chore,
            reg,
            holder,
            every,
            next: Instant::now() + first_after,
        }
    }
}

impl<C: Chore> Worker for Periodic<C> {
    fn name(&self) -> &'static str {
        C::NAME
    }

    async fn work(&mut self) -> WorkerState {
        let now = Instant::now();
        if now < self.next {
            return WorkerState::Idle(self.next - now);
        }
        self.next = now + self.every;
        // The lease lasts one interval: its holder renews it at its next turn, and if that
        // holder dies another instance takes over one interval later.
        if holds_lease(&self.reg, C::NAME, &self.holder, self.every).await
            && let Err(e) = self.chore.run(&self.reg).await
        {
            tracing::warn!(chore = C::NAME, error = %e, "chore failed; it runs again at its next turn");
        }
        WorkerState::Idle(self.next.saturating_duration_since(Instant::now()))
    }
}

/// Whether `holder` holds (took or renewed) the cluster-wide lease `name` for `ttl`. A database
/// that cannot answer holds no lease for anyone: the chore waits for its next turn.
pub async fn holds_lease(reg: &Registry, name: &str, holder: &str, ttl: Duration) -> bool {
    match reg.take_lease(name, holder, ttl).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(lease = name, error = %e, "cannot take a worker lease; skipping this turn");
            false
        }
    }
}

/// Forgets finished jobs kept for a day.
pub struct PruneJobs;

impl Chore for PruneJobs {
    const NAME: &'static str = "prune_jobs";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.prune_jobs(KEEP_DONE).await?;
        tracing::debug!(jobs = n, "finished jobs pruned");
        Ok(())
    }
}

/// Queues the delivery job of every notification whose next attempt is due (retries after
/// their backoff).
pub struct ScheduleDeliveries;

impl Chore for ScheduleDeliveries {
    const NAME: &'static str = "notification_deliveries";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.schedule_deliveries().await?;
        if n > 0 {
            tracing::debug!(notifications = n, "notification deliveries due");
        }
        Ok(())
    }
}

/// Tells repo_image_expiry notifications of tags about to expire.
pub struct ExpiryNotices;

impl Chore for ExpiryNotices {
    const NAME: &'static str = "expiry_notices";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.expiry_notices().await?;
        if n > 0 {
            tracing::debug!(notifications = n, "expiring tags told about");
        }
        Ok(())
    }
}

/// Imports the configured vulnerability data sources (only what changed since the last time).
pub struct ImportVulnData;

impl Chore for ImportVulnData {
    const NAME: &'static str = "vulnerability_data";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        reg.import_vuln_sources().await
    }
}

/// Queues layers no push queued for indexing: pushed while scanning was off, failed with
/// retries left, or indexed by an older indexer.
pub struct QueueIndexing;

impl Chore for QueueIndexing {
    const NAME: &'static str = "layer_indexing";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.queue_pending_indexing(200).await?;
        if n > 0 {
            tracing::debug!(layers = n, "layers queued for indexing");
        }
        Ok(())
    }
}

/// Matches image manifests again where needed (new layers indexed, new data), storing each
/// result and notifying what is new.
pub struct MatchManifests;

impl Chore for MatchManifests {
    const NAME: &'static str = "manifest_matching";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.refresh_manifest_scans(200).await?;
        if n > 0 {
            tracing::debug!(manifests = n, "manifests matched");
        }
        Ok(())
    }
}

/// Queues a sync of every repository mirror that is due, asked to sync now, or held by a
/// sync whose lease lapsed.
pub struct ScheduleMirrors;

impl Chore for ScheduleMirrors {
    const NAME: &'static str = "repo_mirror";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.schedule_mirrors().await?;
        if n > 0 {
            tracing::debug!(syncs = n, "mirror syncs queued");
        }
        Ok(())
    }
}

/// Queues a discovery of every organization mirror that is due, asked to sync now, or held by
/// a discovery whose lease lapsed.
pub struct ScheduleOrgMirrors;

impl Chore for ScheduleOrgMirrors {
    const NAME: &'static str = "org_mirror";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.schedule_org_mirrors().await?;
        if n > 0 {
            tracing::debug!(discoveries = n, "organization mirror discoveries queued");
        }
        Ok(())
    }
}

/// Moves expired tags into history (reads already hide them).
pub struct ExpireTags;

impl Chore for ExpireTags {
    const NAME: &'static str = "expire_tags";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.expire_tags().await?;
        if n > 0 {
            tracing::info!(tags = n, "expired tags moved into history");
        }
        Ok(())
    }
}

/// Queues the garbage collector's sweeps (`Registry::gc_schedule`): every repository whose
/// sweep is due, and every repository once `full_every` has passed since the last full pass.
/// The sweeps are safe to run concurrently with pushes and with each other; the lease only
/// avoids duplicated work.
pub struct ScheduleGc {
    pub full_every: Duration,
    pub last_full: Instant,
}

impl Chore for ScheduleGc {
    const NAME: &'static str = "garbage_collection";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let full = self.last_full.elapsed() >= self.full_every;
        if full {
            self.last_full = Instant::now();
        }
        let n = reg.gc_schedule(full).await?;
        tracing::debug!(jobs = n, full, "garbage collection scheduled");
        Ok(())
    }
}

/// Applies the auto-prune policies.
pub struct Autoprune;

impl Chore for Autoprune {
    const NAME: &'static str = "autoprune";
    async fn run(&mut self, reg: &Registry) -> berth_core::Result<()> {
        let n = reg.run_autoprune().await?;
        if n > 0 {
            tracing::info!(tags = n, "auto-prune policies deleted tags");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::registry;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Count(Arc<AtomicU32>);

    impl Chore for Count {
        const NAME: &'static str = "count";
        async fn run(&mut self, _: &Registry) -> berth_core::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_chore_waits_for_its_turn_and_runs_only_under_its_lease() {
        let (_dir, reg) = registry().await;
        let every = Duration::from_secs(60);
        let runs = Arc::new(AtomicU32::new(0));
        let mut late = Periodic::new(
            Count(runs.clone()),
            reg.clone(),
            "a".into(),
            every,
            Duration::from_secs(30),
        );
        match late.work().await {
            WorkerState::Idle(d) => assert!(d > Duration::from_secs(29) && d <= every, "{d:?}"),
            s => panic!("{s:?}"),
        }
        assert_eq!(runs.load(Ordering::SeqCst), 0, "not its turn yet");

        let mut a = Periodic::new(
            Count(runs.clone()),
            reg.clone(),
            "a".into(),
            every,
            Duration::ZERO,
        );
        let mut b = Periodic::new(
            Count(runs.clone()),
            reg.clone(),
            "b".into(),
            every,
            Duration::ZERO,
        );
        match a.work().await {
            WorkerState::Idle(d) => assert!(d > Duration::from_secs(59) && d <= every, "{d:?}"),
            s => panic!("{s:?}"),
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        b.work().await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "another holder's lease is running"
        );
    }
}
