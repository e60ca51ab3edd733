//! Background work: the loop that claims jobs from the database queue and runs them through
//! `berth-core`. Any number of workers, in `berth serve` processes or `berth worker` processes,
//! share one queue; a job is leased to one worker at a time, retried with exponential backoff,
//! and claimed again if its worker dies. Depends on `berth-core` only.

use berth_core::Registry;
use berth_core::jobs::{DeleteRepo, GcBlobs, GcOrphans, GcRepo, Job, ReplicateBlob};
use std::time::Duration;
use tokio::sync::watch;

/// How long a claimed job belongs to its worker before others may take it over, by default.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);
/// Jobs claimed per poll.
const BATCH: i64 = 4;
/// Wait between polls of an empty queue: starts short, doubles while the queue stays empty.
const IDLE_MIN: Duration = Duration::from_millis(250);
const IDLE_MAX: Duration = Duration::from_secs(4);
/// Finished jobs are kept this long for inspection.
const KEEP_DONE_MS: i64 = 24 * 3600 * 1000;

/// Retry delay after the n-th failed attempt: 2, 4, 8 … seconds, at most an hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 12)).unwrap_or(12);
    (1000i64 << exp).min(3_600_000)
}

/// Runs one job by kind. An unknown kind or an unreadable payload fails for good.
async fn run_job(reg: &Registry, kind: &str, payload: &str) -> Result<(), (String, bool)> {
    match kind {
        ReplicateBlob::KIND => {
            let job: ReplicateBlob =
                serde_json::from_str(payload).map_err(|e| (format!("bad payload: {e}"), false))?;
            reg.replicate_blob(&job)
                .await
                .map_err(|e| (e.to_string(), true))
        }
        DeleteRepo::KIND => {
            let job: DeleteRepo =
                serde_json::from_str(payload).map_err(|e| (format!("bad payload: {e}"), false))?;
            reg.purge_repository(&job)
                .await
                .map(|_| ())
                .map_err(|e| (e.to_string(), true))
        }
        GcRepo::KIND => {
            let job: GcRepo =
                serde_json::from_str(payload).map_err(|e| (format!("bad payload: {e}"), false))?;
            reg.run_gc_repo(&job)
                .await
                .map_err(|e| (e.to_string(), true))
        }
        GcBlobs::KIND => reg.run_gc_blobs().await.map_err(|e| (e.to_string(), true)),
        GcOrphans::KIND => reg
            .run_gc_orphans()
            .await
            .map_err(|e| (e.to_string(), true)),
        other => Err((format!("no worker knows job kind {other:?}"), false)),
    }
}

/// How often expired tags are moved into history.
const EXPIRY_EVERY: Duration = Duration::from_secs(5);

/// Claims and runs jobs until `shutdown` turns true. Returns after finishing the jobs in hand.
/// A job held longer than `lease` by a worker that died is claimed again by another.
pub async fn run(reg: Registry, lease: Duration, mut shutdown: watch::Receiver<bool>) {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let me = format!("worker-{}", uuid::Uuid::new_v4());
    tracing::info!(worker = %me, "background worker started");
    let mut last_prune = std::time::Instant::now();
    let mut last_expiry = std::time::Instant::now() - EXPIRY_EVERY;
    let mut idle_wait = IDLE_MIN;
    let gc_every = Duration::from_secs(reg.config.gc.interval_s.max(1));
    let full_every = Duration::from_secs(reg.config.gc.full_sweep_s.max(1));
    let mut last_gc = std::time::Instant::now();
    let mut last_full = std::time::Instant::now();
    let prune_every = Duration::from_secs(reg.config.gc.autoprune_interval_s.max(1));
    let mut last_autoprune = std::time::Instant::now();
    while !*shutdown.borrow() {
        let jobs = match reg.db.claim_jobs(&me, BATCH, lease_ms).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim jobs; retrying");
                Vec::new()
            }
        };
        let idle = jobs.is_empty();
        for job in jobs {
            let outcome = run_job(&reg, &job.kind, &job.payload).await;
            let label = job.kind.clone();
            let res = match outcome {
                Ok(()) => {
                    metrics::counter!("berth_jobs_completed_total", "kind" => label).increment(1);
                    reg.db.finish_job(job.id, &me).await
                }
                Err((error, retryable)) => {
                    let retry = (retryable && job.attempts < job.max_attempts)
                        .then(|| berth_core::now_ms() + backoff_ms(job.attempts));
                    tracing::warn!(job = job.id, kind = %job.kind, attempts = job.attempts, %error, will_retry = retry.is_some(), "job failed");
                    metrics::counter!("berth_jobs_failed_total", "kind" => label).increment(1);
                    reg.db.fail_job(job.id, &me, &error, retry).await
                }
            };
            if let Err(e) = res {
                tracing::warn!(job = job.id, error = %e, "cannot record job outcome; its lease will expire and it will run again");
            }
        }
        if last_prune.elapsed() > Duration::from_secs(3600) {
            last_prune = std::time::Instant::now();
            // A singleton chore: whichever worker holds the lease prunes, the others skip.
            if reg
                .db
                .acquire_lease("prune_jobs", &me, 3_600_000)
                .await
                .unwrap_or(false)
            {
                let _ = reg.db.prune_jobs(KEEP_DONE_MS).await;
            }
        }
        if last_expiry.elapsed() >= EXPIRY_EVERY {
            last_expiry = std::time::Instant::now();
            // Singleton chore: expired tags move into history (reads already hide them).
            let lease = i64::try_from(EXPIRY_EVERY.as_millis()).unwrap_or(10_000);
            if reg
                .db
                .acquire_lease("expire_tags", &me, lease)
                .await
                .unwrap_or(false)
            {
                match reg.expire_tags().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(tags = n, "expired tags moved into history"),
                    Err(e) => tracing::warn!(error = %e, "cannot expire tags; will retry"),
                }
            }
        }
        if reg.config.gc.enabled && last_gc.elapsed() >= gc_every {
            last_gc = std::time::Instant::now();
            // Singleton chore across instances; the sweeps are safe to run concurrently with
            // pushes (and with each other), the lease only avoids duplicated work.
            let lease = i64::try_from(gc_every.as_millis()).unwrap_or(30_000);
            if reg
                .db
                .acquire_lease("garbage_collection", &me, lease)
                .await
                .unwrap_or(false)
            {
                let full = last_full.elapsed() >= full_every;
                if full {
                    last_full = std::time::Instant::now();
                }
                match reg.gc_schedule(full).await {
                    Ok(n) => tracing::debug!(jobs = n, full, "garbage collection scheduled"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot schedule garbage collection; will retry")
                    }
                }
            }
        }
        if reg.config.gc.autoprune && last_autoprune.elapsed() >= prune_every {
            last_autoprune = std::time::Instant::now();
            let lease = i64::try_from(prune_every.as_millis()).unwrap_or(300_000);
            if reg
                .db
                .acquire_lease("autoprune", &me, lease)
                .await
                .unwrap_or(false)
            {
                match reg.run_autoprune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(tags = n, "auto-prune policies deleted tags"),
                    Err(e) => tracing::warn!(error = %e, "auto-prune failed; will retry"),
                }
            }
        }
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(idle_wait) => {},
                _ = shutdown.changed() => {},
            }
            idle_wait = (idle_wait * 2).min(IDLE_MAX);
        } else {
            idle_wait = IDLE_MIN;
        }
    }
    tracing::info!(worker = %me, "background worker stopped");
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(super::backoff_ms(1), 2000);
        assert_eq!(super::backoff_ms(2), 4000);
        assert_eq!(super::backoff_ms(30), 3_600_000);
    }
}
