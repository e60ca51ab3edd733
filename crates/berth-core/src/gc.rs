//! Online garbage collection. Three sweeps, none of which stops pushes or pulls:
//!
//! * **Repository sweep** (`gc_repo`), under the repository's lock (the lock every manifest and
//!   tag write takes): keeps every manifest reachable from a root — a live tag, a tag row that
//!   ended inside the namespace's time-machine window, a manifest younger than the grace period —
//!   following index children and, for referrers, their subject; deletes the rest, forgets tag
//!   rows that left the window, and unlinks blobs no remaining manifest of the repository
//!   references and that were linked before the grace period. Unlinked blobs are queued.
//! * **Blob sweep** (`gc_blobs`): takes queued blobs under their row lock; a blob no repository
//!   links and no manifest references loses its rows and its bytes in every storage location.
//!   Writers publish bytes under the same row lock, so a publish and a deletion of one digest
//!   never interleave.
//! * **Upload sweep** (`gc_uploads`): removes upload sessions untouched for the configured age.
//!
//! docs/ARCHITECTURE.md gives the argument that no push can lose a blob to these sweeps.

use crate::auth::Who;
use crate::caller::record_in;
use crate::jobs::{DeleteRepo, GcBlobs, GcOrphans, GcRepo};
use crate::{Error, Registry, Result};
use berth_db::GcTotals;
use berth_oci::{Digest, RepoName};
use std::collections::HashMap;

/// Garbage-collection settings (Quay's keys where Quay has one).
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// `FEATURE_GARBAGE_COLLECTION`: run the periodic sweeps.
    pub enabled: bool,
    /// `GARBAGE_COLLECTION_FREQUENCY`: seconds between periodic sweeps.
    pub interval_s: u64,
    /// `PUSH_TEMP_TAG_EXPIRATION_SEC`: how long a blob link or an untagged manifest is kept
    /// without being referenced (a push in progress).
    pub grace_s: i64,
    /// `DEFAULT_TAG_EXPIRATION`: the time-machine window of namespaces that chose none.
    pub default_window_s: i64,
    /// `CLEAN_BLOB_UPLOAD_FOLDER`: remove abandoned upload sessions.
    pub clean_uploads: bool,
    /// `BLOB_UPLOAD_STALE_AFTER_S`: an upload session untouched this long is abandoned.
    pub upload_stale_s: i64,
    /// Every this many seconds a sweep visits every repository, not only those with pending
    /// changes (it catches blobs uploaded but never referenced).
    pub full_sweep_s: u64,
    /// `FEATURE_AUTO_PRUNE`: apply auto-prune policies in the background (Berth: on by default;
    /// nothing happens without policies).
    pub autoprune: bool,
    /// `AUTO_PRUNE_FREQUENCY_S`: seconds between auto-prune runs.
    pub autoprune_interval_s: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            enabled: true,
            interval_s: 30,
            grace_s: 3600,
            default_window_s: 14 * 86_400,
            clean_uploads: true,
            upload_stale_s: 2 * 86_400,
            full_sweep_s: 3600,
            autoprune: true,
            autoprune_interval_s: 300,
        }
    }
}

/// What one or more sweeps did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GcReport {
    pub repositories_swept: i64,
    pub manifests_deleted: i64,
    pub tags_purged: i64,
    pub links_removed: i64,
    pub blobs_deleted: i64,
    pub bytes_freed: i64,
    pub uploads_removed: i64,
    pub repositories_deleted: i64,
    /// Blobs found in storage that no row knew of (a crash between writing and recording
    /// them), recorded and queued for the blob sweep.
    pub orphan_blobs: i64,
}

impl GcReport {
    fn add(&mut self, o: &GcReport) {
        self.repositories_swept += o.repositories_swept;
        self.manifests_deleted += o.manifests_deleted;
        self.tags_purged += o.tags_purged;
        self.links_removed += o.links_removed;
        self.blobs_deleted += o.blobs_deleted;
        self.bytes_freed += o.bytes_freed;
        self.uploads_removed += o.uploads_removed;
        self.repositories_deleted += o.repositories_deleted;
        self.orphan_blobs += o.orphan_blobs;
    }
    fn is_empty(&self) -> bool {
        GcReport {
            repositories_swept: self.repositories_swept,
            ..GcReport::default()
        } == *self
    }
}

/// How a pass's sweeps run.
#[derive(Debug, Clone, Copy)]
enum GcRun {
    /// Queued as jobs, for any worker of any instance.
    Queued,
    /// Here and now, one after the other, adding up what they collected.
    Here,
}

/// What a pass did: the jobs it queued, or what the sweeps it ran collected.
#[derive(Debug, Default)]
struct GcPass {
    queued: usize,
    report: GcReport,
}

/// One sweep of a pass, as the job that runs it.
enum GcStep {
    Repo(GcRepo),
    Purge(DeleteRepo),
    Blobs(GcBlobs),
    Orphans(GcOrphans),
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Which of `facts`' manifests are kept, and the earliest moment one kept only by time (window
/// or grace) stops being kept.
pub(crate) fn reachable(
    facts: &berth_db::RepoGcFacts,
    now: i64,
    window_ms: i64,
    grace_ms: i64,
) -> (Vec<bool>, Option<i64>) {
    let m = &facts.manifests;
    let index: HashMap<&str, usize> = m
        .iter()
        .enumerate()
        .map(|(i, x)| (x.digest.as_str(), i))
        .collect();
    let by_id: HashMap<i64, usize> = m.iter().enumerate().map(|(i, x)| (x.id, i)).collect();
    let mut keep = vec![false; m.len()];
    let mut next: Option<i64> = None;
    let mut soonest = |t: i64| next = Some(next.map_or(t, |n: i64| n.min(t)));
    for (digest, end, expires) in &facts.tags {
        let Some(&i) = index.get(digest.as_str()) else {
            continue;
        };
        match end {
            None => {
                keep[i] = true;
                // An expiring tag is closed at its expiry and then kept for the window: look
                // again then, whoever closes it.
                if let Some(e) = expires {
                    soonest(e.saturating_add(window_ms));
                }
            }
            Some(e) if e.saturating_add(window_ms) >= now => {
                keep[i] = true;
                soonest(e.saturating_add(window_ms));
            }
            Some(_) => {}
        }
    }
    for (i, x) in m.iter().enumerate() {
        if x.created_at.saturating_add(grace_ms) >= now {
            keep[i] = true;
            soonest(x.created_at.saturating_add(grace_ms));
        }
    }
    loop {
        let mut changed = false;
        for (parent, child) in &facts.children {
            if let (Some(&p), Some(&c)) = (by_id.get(parent), index.get(child.as_str()))
                && keep[p]
                && !keep[c]
            {
                keep[c] = true;
                changed = true;
            }
        }
        for (i, x) in m.iter().enumerate() {
            if keep[i] || x.deleted {
                continue;
            }
            if let Some(s) = &x.subject
                && let Some(&si) = index.get(s.as_str())
                && keep[si]
            {
                keep[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    (keep, next)
}

impl Registry {
    /// The time-machine window of a namespace, in milliseconds.
    pub async fn window_ms(&self, namespace: &str) -> Result<i64> {
        let s = self
            .db
            .namespace_window_s(namespace)
            .await?
            .unwrap_or(self.config.gc.default_window_s);
        Ok(s.saturating_mul(1000))
    }

    /// Sweeps one repository (see the module documentation).
    pub async fn gc_repo(&self, repo_id: i64, name: &str) -> Result<GcReport> {
        let namespace = name.split('/').next().unwrap_or(name);
        let window_ms = self.window_ms(namespace).await?;
        let grace_ms = self.config.gc.grace_s.saturating_mul(1000);
        let now = berth_db::now_ms();
        let mut w = self.db.write().await?;
        let facts = self.db.repo_gc_facts(&mut w, repo_id).await?;
        let (keep, mut next) = reachable(&facts, now, window_ms, grace_ms);
        let doomed: Vec<i64> = facts
            .manifests
            .iter()
            .zip(&keep)
            .filter(|(_, k)| !**k)
            .map(|(m, _)| m.id)
            .collect();
        let manifests = self.db.gc_delete_manifests(&mut w, &doomed).await?;
        let purged = self
            .db
            .gc_purge_history(&mut w, repo_id, now.saturating_sub(window_ms))
            .await?;
        let (links, oldest) = self
            .db
            .gc_unlink_unreferenced(&mut w, repo_id, now.saturating_sub(grace_ms))
            .await?;
        if let Some(o) = oldest {
            let t = o.saturating_add(grace_ms);
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        self.db.set_next_gc(&mut w, repo_id, next).await?;
        w.commit().await?;
        if manifests + links > 0 {
            tracing::info!(
                repository = name,
                manifests,
                links,
                tags = purged,
                "repository swept"
            );
        }
        Ok(GcReport {
            repositories_swept: 1,
            manifests_deleted: count(manifests),
            tags_purged: count(purged),
            links_removed: count(links),
            ..GcReport::default()
        })
    }

    /// Deletes queued blobs that nothing links or references any more, from every storage
    /// location. Runs until the queue is empty or `max` blobs were examined.
    pub async fn gc_blobs(&self, max: usize) -> Result<GcReport> {
        let mut report = GcReport::default();
        let mut examined = 0;
        while examined < max {
            let candidates = self.db.gc_blob_candidates(64).await?;
            if candidates.is_empty() {
                break;
            }
            examined += candidates.len();
            let mut w = self.db.write().await?;
            let taken = self.db.gc_take_blobs(&mut w, &candidates).await?;
            // Bytes go while the rows' deletion is still uncommitted and the rows locked: a
            // failure rolls the rows (and the queue entries) back for the next sweep.
            for (digest, size) in &taken {
                let d: Digest = digest.parse().map_err(|_| {
                    Error::internal(format!("recorded blob digest {digest:?} is malformed"))
                })?;
                for (_, store) in self.locations.stores() {
                    store.delete(&d).await?;
                }
                report.blobs_deleted += 1;
                report.bytes_freed += size;
            }
            w.commit().await?;
        }
        Ok(report)
    }

    /// Removes upload sessions untouched for longer than the configured age, and their bytes.
    pub async fn gc_uploads(&self, stale_after_s: i64) -> Result<GcReport> {
        let mut report = GcReport::default();
        let before = berth_db::now_ms().saturating_sub(stale_after_s.saturating_mul(1000));
        for id in self.db.stale_uploads(before, 500).await? {
            if self.db.remove_stale_upload(&id, before).await? {
                for (_, store) in self.locations.stores() {
                    store.upload_abort(&id).await?;
                }
                report.uploads_removed += 1;
            }
        }
        Ok(report)
    }

    /// Finds bytes no row knows of, in every storage location: blobs written by a push that
    /// crashed before recording them (recorded now as unlinked blobs and queued, so the blob sweep
    /// deletes them under their row lock), and upload objects of sessions that have no row (a
    /// crashed single-request upload or replication copy), once untouched for the stale age.
    /// Blobs younger than the grace period are left alone: a push may be about to record them.
    pub async fn gc_orphans(&self) -> Result<GcReport> {
        let mut report = GcReport::default();
        let now = berth_db::now_ms();
        let blob_before = now.saturating_sub(self.config.gc.grace_s.saturating_mul(1000));
        let upload_before = now.saturating_sub(self.config.gc.upload_stale_s.saturating_mul(1000));
        for (location, store) in self.locations.stores() {
            let inv = store.inventory().await?;
            let digests: Vec<String> = inv.blobs.iter().map(|b| b.0.to_string()).collect();
            let known = self.db.known_blobs(&digests).await?;
            for (d, size, at) in &inv.blobs {
                let ds = d.to_string();
                if known.contains(&ds) || *at >= blob_before {
                    continue;
                }
                let mut w = self.db.write().await?;
                self.db
                    .lock_blob(&mut w, &ds, i64::try_from(*size).unwrap_or(i64::MAX))
                    .await?;
                self.db.add_placement(&mut w, &ds, location).await?;
                self.db.queue_blob_gc(&mut w, &ds, now).await?;
                w.commit().await?;
                report.orphan_blobs += 1;
            }
            if self.config.gc.clean_uploads {
                let ids: Vec<String> = inv.uploads.iter().map(|u| u.0.clone()).collect();
                let known = self.db.known_uploads(&ids).await?;
                for (id, at) in &inv.uploads {
                    if !known.contains(id) && *at < upload_before {
                        store.upload_abort(id).await?;
                        report.uploads_removed += 1;
                    }
                }
            }
        }
        if report.orphan_blobs > 0 {
            tracing::warn!(
                blobs = report.orphan_blobs,
                "found blobs in storage that no row knew of (left by a crash); queued for collection"
            );
        }
        Ok(report)
    }

    /// One collection pass run here and now (the superuser endpoint's): over every repository
    /// when `full`, else those whose sweep is due. Returns what its sweeps collected, which are
    /// added to the totals and metrics. The same driver as `gc_schedule`, running the jobs'
    /// sweeps in order instead of queuing them.
    pub async fn gc_pass(&self, full: bool) -> Result<GcReport> {
        Ok(self.drive_gc(full, GcRun::Here).await?.report)
    }

    /// A full collection now, asked for by a superuser through the API; audited as `gc_run`
    /// with its report.
    pub async fn collect_now(&self, caller: crate::Caller<'_>) -> Result<GcReport> {
        crate::auth::authz::require_superuser(caller.actor)?;
        let report = self.gc_pass(true).await?;
        self.audit
            .record(
                caller
                    .audit("gc_run")
                    .meta(serde_json::to_value(&report).unwrap_or_default()),
            )
            .await;
        Ok(report)
    }

    /// The collector's schedule, run by one worker at a time every `GARBAGE_COLLECTION_FREQUENCY`:
    /// the pass `gc_pass` runs, its sweeps queued as jobs — a `GcRepo` job for every repository
    /// whose sweep is due (every repository when `full`), a `DeleteRepo` job for deleted
    /// repositories whose job was lost, a `GcBlobs` job, and on full passes a `GcOrphans` job.
    /// Any worker of any instance then runs them, with the job queue's retries. Returns how many
    /// jobs were queued.
    pub async fn gc_schedule(&self, full: bool) -> Result<usize> {
        Ok(self.drive_gc(full, GcRun::Queued).await?.queued)
    }

    /// The one pass driver: chooses the pass's sweeps, queues them or runs them, then counts the
    /// pass in the totals and metrics.
    async fn drive_gc(&self, full: bool, how: GcRun) -> Result<GcPass> {
        let steps = self.gc_steps(full).await?;
        let mut pass = GcPass::default();
        match how {
            GcRun::Queued => {
                for chunk in steps.chunks(200) {
                    let mut w = self.db.write().await?;
                    for step in chunk {
                        let queued = match step {
                            GcStep::Repo(j) => self.enqueue(&mut w, j).await?,
                            GcStep::Purge(j) => self.enqueue(&mut w, j).await?,
                            GcStep::Blobs(j) => self.enqueue(&mut w, j).await?,
                            GcStep::Orphans(j) => self.enqueue(&mut w, j).await?,
                        };
                        pass.queued += usize::from(queued);
                    }
                    w.commit().await?;
                }
            }
            GcRun::Here => {
                for step in &steps {
                    let r = match step {
                        GcStep::Repo(j) => self.sweep_repo(j).await?,
                        GcStep::Purge(j) => self.purge_repository_rows(j).await?,
                        GcStep::Blobs(_) => self.sweep_blobs().await?,
                        GcStep::Orphans(_) => self.sweep_orphans().await?,
                    };
                    pass.report.add(&r);
                }
            }
        }
        self.record_gc(&pass.report).await?;
        if self.config.quota.enabled
            && let Err(e) = self.quota_metrics().await
        {
            tracing::warn!(error = %e, "cannot refresh quota usage metrics");
        }
        Ok(pass)
    }

    /// A pass's sweeps, in the order they should run: repositories (all of them when `full`,
    /// else those due, bounded so that a backlog is worked off over the following passes),
    /// deleted repositories whose job has not run (it is queued, or was lost in a crash), queued
    /// blobs, and on full passes the storage inventory.
    async fn gc_steps(&self, full: bool) -> Result<Vec<GcStep>> {
        let mut steps = Vec::new();
        if full {
            let mut after = 0;
            loop {
                let page = self.db.repos_after(after, 500).await?;
                let Some(last) = page.last() else { break };
                after = last.0;
                steps.extend(page.iter().map(|r| GcStep::Repo(GcRepo { repo_id: r.0 })));
            }
        } else {
            let due = self.db.repos_due_for_gc(berth_db::now_ms(), 5000).await?;
            steps.extend(due.iter().map(|r| GcStep::Repo(GcRepo { repo_id: r.0 })));
        }
        for repo_id in self.db.deleted_repos(100).await? {
            steps.push(GcStep::Purge(DeleteRepo { repo_id }));
        }
        steps.push(GcStep::Blobs(GcBlobs {}));
        if full {
            steps.push(GcStep::Orphans(GcOrphans {}));
        }
        Ok(steps)
    }

    /// The `GcRepo` sweep: a repository deleted meanwhile is left to its `DeleteRepo` job.
    async fn sweep_repo(&self, job: &GcRepo) -> Result<GcReport> {
        match self.db.live_repo_name(job.repo_id).await? {
            Some(name) => self.gc_repo(job.repo_id, &name).await,
            None => Ok(GcReport::default()),
        }
    }

    /// The `GcBlobs` sweep: queued blobs, then abandoned upload sessions.
    async fn sweep_blobs(&self) -> Result<GcReport> {
        let mut r = self.gc_blobs(10_000).await?;
        if self.config.gc.clean_uploads {
            r.add(&self.gc_uploads(self.config.gc.upload_stale_s).await?);
        }
        Ok(r)
    }

    /// The `GcOrphans` sweep: adopted orphans go to the blob sweep at once.
    async fn sweep_orphans(&self) -> Result<GcReport> {
        let mut r = self.gc_orphans().await?;
        if r.orphan_blobs > 0 {
            r.add(&self.gc_blobs(10_000).await?);
        }
        Ok(r)
    }

    /// The `GcRepo` job: its sweep, and a blob sweep for the links it removed.
    pub(crate) async fn run_gc_repo(&self, job: &GcRepo) -> Result<()> {
        let r = self.sweep_repo(job).await?;
        if r.links_removed > 0 {
            self.enqueue_alone(&GcBlobs {}).await?;
        }
        self.record_figures(&r).await
    }

    /// The `GcBlobs` job.
    pub(crate) async fn run_gc_blobs(&self) -> Result<()> {
        let r = self.sweep_blobs().await?;
        self.record_figures(&r).await
    }

    /// The `GcOrphans` job.
    pub(crate) async fn run_gc_orphans(&self) -> Result<()> {
        let r = self.sweep_orphans().await?;
        self.record_figures(&r).await
    }

    /// Adds one job's figures to the totals and metrics (a pass is counted by its schedule).
    async fn record_figures(&self, r: &GcReport) -> Result<()> {
        if r.is_empty() {
            return Ok(());
        }
        self.record(r, false).await
    }

    /// Adds a report to the database totals and the process's metrics.
    async fn record_gc(&self, r: &GcReport) -> Result<()> {
        self.record(r, true).await
    }

    async fn record(&self, r: &GcReport, pass: bool) -> Result<()> {
        let now = berth_db::now_ms();
        if pass {
            metrics::gauge!("berth_gc_last_run_timestamp_seconds").set(now as f64 / 1000.0);
            metrics::counter!("berth_gc_runs_total").increment(1);
        }
        for (name, v) in [
            ("berth_gc_manifests_deleted_total", r.manifests_deleted),
            ("berth_gc_tags_purged_total", r.tags_purged),
            ("berth_gc_links_removed_total", r.links_removed),
            ("berth_gc_blobs_deleted_total", r.blobs_deleted),
            ("berth_gc_bytes_freed_total", r.bytes_freed),
            ("berth_gc_uploads_removed_total", r.uploads_removed),
            (
                "berth_gc_repositories_deleted_total",
                r.repositories_deleted,
            ),
            ("berth_gc_orphan_blobs_total", r.orphan_blobs),
        ] {
            metrics::counter!(name).increment(u64::try_from(v).unwrap_or(0));
        }
        if let Ok(depth) = self.db.gc_blob_queue_depth().await {
            metrics::gauge!("berth_gc_blob_queue_depth").set(depth as f64);
        }
        if !r.is_empty() {
            tracing::info!(?r, "garbage collected");
        }
        self.db
            .gc_add_totals(&GcTotals {
                runs: i64::from(pass),
                last_run_at: pass.then_some(now),
                manifests_deleted: r.manifests_deleted,
                tags_purged: r.tags_purged,
                links_removed: r.links_removed,
                blobs_deleted: r.blobs_deleted,
                bytes_freed: r.bytes_freed,
                uploads_removed: r.uploads_removed,
                repos_deleted: r.repositories_deleted,
            })
            .await?;
        Ok(())
    }

    /// Deletes a repository: its name is free at once, and a job removes its contents (the
    /// blobs it alone held go with the blob sweep).
    pub(crate) async fn delete_repository(&self, who: &Who, repo: &RepoName) -> Result<()> {
        let id = self.repo_id_of(repo).await?;
        let mut w = self.db.write().await?;
        if !self.db.mark_repo_deleted(&mut w, id).await? {
            return Err(Error::not_found(format!("repository {repo} not found")));
        }
        self.enqueue(&mut w, &DeleteRepo { repo_id: id }).await?;
        record_in(
            &self.db,
            &mut w,
            who.entry("delete_repo").repo(repo.as_str()),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// The `DeleteRepo` job: removes a deleted repository's rows and upload sessions, then
    /// collects the blobs it alone held.
    pub(crate) async fn purge_repository(&self, job: &DeleteRepo) -> Result<GcReport> {
        let report = self.purge_repository_rows(job).await?;
        if report.repositories_deleted > 0 {
            self.record_gc(&report).await?;
        }
        Ok(report)
    }

    async fn purge_repository_rows(&self, job: &DeleteRepo) -> Result<GcReport> {
        let mut w = self.db.write().await?;
        let Some((uploads, manifests, links)) =
            self.db.purge_deleted_repo(&mut w, job.repo_id).await?
        else {
            return Ok(GcReport::default());
        };
        w.commit().await?;
        for id in &uploads {
            for (_, store) in self.locations.stores() {
                store.upload_abort(id).await?;
            }
        }
        let mut report = GcReport {
            manifests_deleted: count(manifests),
            links_removed: count(links),
            uploads_removed: count(uploads.len() as u64),
            repositories_deleted: 1,
            ..GcReport::default()
        };
        report.add(&self.gc_blobs(usize::MAX).await?);
        tracing::info!(repo_id = job.repo_id, "deleted repository purged");
        Ok(report)
    }

    /// Totals of every collection so far, with the blob queue's depth, for superusers.
    pub async fn gc_overview(&self, actor: &crate::auth::Actor) -> Result<(GcTotals, i64)> {
        crate::auth::authz::require_superuser(actor)?;
        self.gc_status().await
    }

    /// Totals of every collection so far, with the blob queue's depth.
    pub async fn gc_status(&self) -> Result<(GcTotals, i64)> {
        Ok((
            self.db.gc_totals().await?,
            self.db.gc_blob_queue_depth().await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::reachable;
    use berth_db::{GcManifest, RepoGcFacts};

    fn m(id: i64, digest: &str, created: i64, deleted: bool, subject: Option<&str>) -> GcManifest {
        GcManifest {
            id,
            digest: digest.into(),
            created_at: created,
            deleted,
            subject: subject.map(Into::into),
            size: 1,
        }
    }

    #[test]
    fn roots_children_referrers_window_and_grace() {
        let facts = RepoGcFacts {
            manifests: vec![
                m(1, "index", 0, false, None),
                m(2, "child", 0, false, None),
                m(3, "sig-of-child", 0, false, Some("child")),
                m(4, "old-untagged", 0, false, None),
                m(5, "fresh-untagged", 950, false, None),
                m(6, "in-window", 0, true, None),
                m(7, "out-of-window", 0, false, None),
                m(8, "deleted-referrer", 0, true, Some("child")),
                m(9, "dangling-referrer", 0, false, Some("nothing")),
            ],
            children: vec![(1, "child".into())],
            tags: vec![
                ("index".into(), None, None),
                ("in-window".into(), Some(900), None),
                ("out-of-window".into(), Some(100), None),
            ],
        };
        let (keep, next) = reachable(&facts, 1000, 200, 100);
        assert_eq!(
            keep,
            vec![true, true, true, false, true, true, false, false, false]
        );
        // fresh-untagged leaves the grace period at 1050; in-window leaves the window at 1100.
        assert_eq!(next, Some(1050));
    }

    #[test]
    fn an_expiring_live_tag_is_looked_at_again_when_its_window_ends() {
        let facts = RepoGcFacts {
            manifests: vec![m(1, "a", 0, false, None)],
            children: Vec::new(),
            tags: vec![("a".into(), None, Some(2000))],
        };
        let (keep, next) = reachable(&facts, 1000, 200, 100);
        assert_eq!(keep, vec![true]);
        assert_eq!(next, Some(2200));
    }
}
