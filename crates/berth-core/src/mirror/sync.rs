//! One sync of a repository mirror: list the upstream's tags, copy those the globs select
//! (only blobs the repository lacks; an index's children filtered by architecture, the
//! original index bytes kept), end local tags the upstream no longer has (restorable in the
//! time machine), and record the run. Every write goes through the push paths, as the
//! mirror's robot.

use super::{MAX_RETRIES, split_reference};
use crate::auth::Who;
use crate::manifests::Completeness;
use crate::{Error, Registry, Result};
use berth_db::{MirrorRow, MirrorStatus, RunCounts, now_ms};
use berth_oci::manifest::{Descriptor, parse_manifest};
use berth_oci::{Reference, RepoName, Tag};
use berth_registry_client::RegistryClient;
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines a run's log keeps (the first ones, then the last ones).
const LOG_LINES: usize = 400;
/// How deep an index may nest indexes.
const MAX_DEPTH: usize = 2;

/// What a sync has done so far, shared with the lease renewal that records it.
#[derive(Default)]
struct Progress {
    counts: RunCounts,
    log: Vec<String>,
}

type Shared = Arc<Mutex<Progress>>;

fn note(p: &Shared, line: impl Into<String>) {
    let mut line: String = line.into();
    line.truncate(500);
    if let Ok(mut g) = p.lock() {
        if g.log.len() >= LOG_LINES {
            g.log.remove(LOG_LINES / 2);
        }
        g.log.push(line);
    }
}

fn bump(p: &Shared, f: impl FnOnce(&mut RunCounts)) {
    if let Ok(mut g) = p.lock() {
        f(&mut g.counts);
    }
}

fn snapshot(p: &Shared) -> (RunCounts, String) {
    p.lock()
        .map(|g| (g.counts, g.log.join("\n")))
        .unwrap_or_default()
}

/// What became of one tag.
enum TagOutcome {
    Unchanged,
    /// Copied; the digest the tag pointed at before.
    Copied(Option<String>),
    /// Left out by the architecture filter.
    Skipped(String),
}

fn upstream_err(registry: &str, e: berth_registry_client::Error) -> Error {
    crate::upstream::count_error(registry, &e);
    match e {
        berth_registry_client::Error::NotFound(m) => Error::not_found(m),
        other => Error::Upstream(other.to_string()),
    }
}

fn architecture_of(platform: Option<&serde_json::Value>) -> Option<&str> {
    platform?.get("architecture")?.as_str()
}

impl Registry {
    /// The client for a mirror's upstream. With `verify_tls: false` an upstream that speaks
    /// plain HTTP is reached over HTTP (as skopeo's `--src-tls-verify=false` does).
    async fn mirror_client(&self, m: &MirrorRow) -> Result<RegistryClient> {
        let (host, _) = split_reference(&m.external_reference)?;
        let config: super::RegistryConfig =
            serde_json::from_str(&m.registry_config).unwrap_or_default();
        let credentials = self
            .upstream_credentials(
                m.username.clone(),
                m.password_sealed.as_deref(),
                "set it again with PUT …/mirror",
            )
            .await?;
        let settings = config.client_settings("mirror");
        let make = |insecure: bool| {
            self.upstream_client(&host, insecure, credentials.clone(), settings.clone())
        };
        let tls = make(false)?;
        if config.verify_tls {
            return Ok(tls);
        }
        match tls.ping().await {
            Err(berth_registry_client::Error::Unreachable(_)) => make(true),
            _ => Ok(tls),
        }
    }

    /// Runs one sync of mirror `repo_id` if it can still be claimed with `txn`.
    pub async fn mirror_sync(&self, repo_id: i64, txn: &str) -> Result<()> {
        let holder = format!("sync-{}", uuid::Uuid::new_v4());
        let lease = self.config.mirror.lease;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let Some((mine, run_id)) = self
            .db
            .claim_mirror(repo_id, txn, &holder, now_ms().saturating_add(lease_ms))
            .await?
        else {
            return Ok(());
        };
        let Some(m) = self.db.mirror(repo_id).await? else {
            return Ok(());
        };
        let started = Instant::now();
        let progress: Shared = Arc::default();
        tracing::info!(repo = %m.repo_name, upstream = %m.external_reference, "mirror sync started");
        self.mirror_event(&m, "repo_mirror_sync_started", "Mirror sync started", None)
            .await?;
        // The lease is renewed on a task of its own: the sync holds database write
        // transactions while it copies, and a renewal waiting on it inside one task would wait
        // for itself.
        let (lost_tx, mut lost) = tokio::sync::watch::channel(false);
        let heartbeat = tokio::spawn({
            let reg = self.clone();
            let progress = progress.clone();
            let mine = mine.clone();
            let repo = m.repo_name.clone();
            async move {
                let mut beat = tokio::time::interval((lease / 4).max(Duration::from_millis(200)));
                beat.tick().await;
                loop {
                    beat.tick().await;
                    let (counts, log) = snapshot(&progress);
                    let until = now_ms().saturating_add(lease_ms);
                    match reg
                        .db
                        .renew_mirror(repo_id, &mine, until, run_id, &counts, &log)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            let _ = lost_tx.send(true);
                            break;
                        }
                        // The lease may lapse if this persists; another sync then takes over.
                        Err(e) => {
                            tracing::warn!(repo = %repo, error = %e, "cannot renew a mirror sync's lease")
                        }
                    }
                }
            }
        });
        let result = tokio::select! {
            r = self.sync_tags(&m, progress.clone()) => Some(r),
            _ = lost.wait_for(|l| *l) => None,
        };
        heartbeat.abort();
        let (outcome, status_msg) = match &result {
            None => (
                "cancelled",
                "cancelled or reconfigured while running".to_string(),
            ),
            Some(Ok(())) => {
                let c = snapshot(&progress).0;
                if c.tags_failed > 0 {
                    ("failed", format!("{} tags failed", c.tags_failed))
                } else {
                    ("success", "mirror is up to date".to_string())
                }
            }
            Some(Err(e)) => ("failed", e.to_string()),
        };
        if outcome != "success" {
            note(&progress, format!("sync {outcome}: {status_msg}"));
        }
        let secs = started.elapsed().as_secs_f64();
        metrics::counter!("berth_mirror_syncs_total", "outcome" => outcome).increment(1);
        metrics::histogram!("berth_mirror_sync_seconds").record(secs);
        let (counts, log) = snapshot(&progress);
        let now = now_ms();
        let interval_ms = m.sync_interval_s.saturating_mul(1000);
        let next_scheduled = match m.sync_start_at {
            Some(s) if s > now => s,
            Some(s) if interval_ms > 0 => s + ((now - s) / interval_ms + 1) * interval_ms,
            _ => now.saturating_add(interval_ms),
        };
        let (status, start, retries) = match outcome {
            "success" => (MirrorStatus::Success, Some(next_scheduled), MAX_RETRIES),
            "cancelled" => (MirrorStatus::Cancel, None, 0),
            _ if m.sync_retries_remaining > 1 => (
                MirrorStatus::Fail,
                Some(m.sync_start_at.unwrap_or(now).min(now)),
                m.sync_retries_remaining - 1,
            ),
            _ => (MirrorStatus::Fail, Some(next_scheduled), MAX_RETRIES),
        };
        let mut w = self.db.write().await?;
        let held = self
            .db
            .release_mirror(
                &mut w, repo_id, &mine, status, start, retries, run_id, &counts, &log, outcome,
            )
            .await?;
        if held && outcome != "cancelled" {
            let (kind, msg) = if outcome == "success" {
                (
                    "repo_mirror_sync_success",
                    "Mirror sync succeeded".to_string(),
                )
            } else {
                (
                    "repo_mirror_sync_failed",
                    format!("Mirror sync failed: {status_msg}"),
                )
            };
            self.mirror_event_in(&mut w, &m, kind, &msg, Some(&counts))
                .await?;
        }
        w.commit().await?;
        tracing::info!(repo = %m.repo_name, outcome, seconds = secs, copied = counts.tags_copied, removed = counts.tags_removed, failed = counts.tags_failed, "mirror sync finished");
        Ok(())
    }

    async fn mirror_event(
        &self,
        m: &MirrorRow,
        kind: &str,
        message: &str,
        counts: Option<&RunCounts>,
    ) -> Result<()> {
        let mut w = self.db.write().await?;
        self.mirror_event_in(&mut w, m, kind, message, counts)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// The audit record and notification of a sync event, in `w`.
    async fn mirror_event_in(
        &self,
        w: &mut berth_db::WriteTx,
        m: &MirrorRow,
        kind: &str,
        message: &str,
        counts: Option<&RunCounts>,
    ) -> Result<()> {
        let mut meta = serde_json::json!({"verb": kind.trim_start_matches("repo_mirror_sync_"), "message": message,
            "external_reference": m.external_reference});
        if let Some(c) = counts {
            meta["tags_copied"] = c.tags_copied.into();
            meta["tags_removed"] = c.tags_removed.into();
            meta["tags_failed"] = c.tags_failed.into();
        }
        let who = robot_who(m);
        crate::caller::record_in(&self.db, w, who.entry(kind).repo(&m.repo_name).meta(meta))
            .await?;
        self.notify_in(
            w,
            m.repo_id,
            &m.repo_name,
            kind,
            serde_json::json!({"message": message}),
        )
        .await?;
        Ok(())
    }

    /// The body of a sync: every selected tag, then the tags to end.
    async fn sync_tags(&self, m: &MirrorRow, p: Shared) -> Result<()> {
        let (_, path) = split_reference(&m.external_reference)?;
        let repo: RepoName = m
            .repo_name
            .parse()
            .map_err(|_| Error::internal(format!("stored repository name {:?}", m.repo_name)))?;
        let client = self.mirror_client(m).await?;
        let registry = client.registry().to_string();
        let who = robot_who(m);
        let globs = super::json_list(&m.tag_globs);
        let archs = super::json_list(&m.architecture_filter);
        let upstream = client
            .list_tags(&path)
            .await
            .map_err(|e| upstream_err(&registry, e))?;
        let wanted = super::select_tags(&upstream, &globs);
        note(
            &p,
            format!(
                "{} tags at {registry}/{path}; {} match {}",
                upstream.len(),
                wanted.len(),
                globs.join(",")
            ),
        );
        let mut changed: Vec<(String, Option<String>)> = Vec::new();
        let per_tag = Duration::from_secs(u64::try_from(m.timeout_s.max(1)).unwrap_or(300));
        for tag in &wanted {
            let copy = self.mirror_tag(&client, &path, &repo, &who, tag, &archs, &p);
            let r = match tokio::time::timeout(per_tag, copy).await {
                Ok(r) => r,
                Err(_) => Err(Error::Upstream(format!(
                    "gave up after {}s (skopeo_timeout_interval)",
                    per_tag.as_secs()
                ))),
            };
            match r {
                Ok(TagOutcome::Unchanged) => bump(&p, |c| c.tags_unchanged += 1),
                Ok(TagOutcome::Copied(before)) => {
                    bump(&p, |c| c.tags_copied += 1);
                    note(&p, format!("{tag}: copied"));
                    self.audit_tag(m, &who, "repo_mirror_sync_tag_success", tag, None)
                        .await;
                    changed.push((tag.clone(), before));
                }
                Ok(TagOutcome::Skipped(why)) => note(&p, format!("{tag}: skipped ({why})")),
                Err(e) => {
                    bump(&p, |c| c.tags_failed += 1);
                    note(&p, format!("{tag}: failed: {e}"));
                    self.audit_tag(
                        m,
                        &who,
                        "repo_mirror_sync_tag_failed",
                        tag,
                        Some(&e.to_string()),
                    )
                    .await;
                }
            }
        }
        let failed = snapshot(&p).0.tags_failed > 0;
        if failed && self.config.mirror.rollback {
            self.roll_back(&repo, &who, &changed, &p).await;
            return Ok(());
        }
        // The mirror is exact: a tag the upstream no longer has (or the globs no longer
        // select) ends, and stays restorable in the time machine.
        let mut stale = Vec::new();
        let mut last: Option<String> = None;
        loop {
            let page = self.tags(&repo, last.as_deref(), 1000).await?;
            let Some(end) = page.last().cloned() else {
                break;
            };
            for t in page {
                if wanted.binary_search(&t).is_err() {
                    stale.push(t);
                }
            }
            last = Some(end);
        }
        let repo_id = self.repo_id_of(&repo).await?;
        let mut ending = Vec::new();
        for t in stale {
            if self.tag_is_immutable(&repo, repo_id, &t).await? {
                note(&p, format!("{t}: gone upstream, but immutable here: kept"));
            } else {
                ending.push(t);
            }
        }
        if !ending.is_empty() {
            let n = self.tags_end(&who, &repo, &ending).await?;
            bump(&p, |c| c.tags_removed += i64::try_from(n).unwrap_or(0));
            note(&p, format!("ended (restorable): {}", ending.join(", ")));
        }
        Ok(())
    }

    async fn audit_tag(&self, m: &MirrorRow, who: &Who, kind: &str, tag: &str, err: Option<&str>) {
        let mut meta =
            serde_json::json!({"tag": tag, "verb": "tag", "message": err.unwrap_or("copied")});
        if err.is_some() {
            meta["stderr"] = err.unwrap_or_default().into();
        }
        self.audit
            .record(who.entry(kind).repo(&m.repo_name).meta(meta))
            .await;
    }

    /// `REPO_MIRROR_ROLLBACK`: puts back every tag this sync changed.
    async fn roll_back(
        &self,
        repo: &RepoName,
        who: &Who,
        changed: &[(String, Option<String>)],
        p: &Shared,
    ) {
        for (tag, before) in changed.iter().rev() {
            let r = match before {
                Some(d) => self.tag_point(who, repo, tag, d, None).await,
                None => self
                    .tags_end(who, repo, std::slice::from_ref(tag))
                    .await
                    .map(|_| ()),
            };
            match r {
                Ok(()) => note(p, format!("{tag}: rolled back")),
                Err(e) => note(p, format!("{tag}: cannot roll back: {e}")),
            }
        }
    }

    /// Copies one tag if the upstream's manifest differs from the local one.
    #[allow(clippy::too_many_arguments)]
    async fn mirror_tag(
        &self,
        client: &RegistryClient,
        path: &str,
        repo: &RepoName,
        who: &Who,
        tag: &str,
        archs: &[String],
        p: &Shared,
    ) -> Result<TagOutcome> {
        let registry = client.registry().to_string();
        let t: Tag = tag
            .parse()
            .map_err(|_| Error::invalid(format!("upstream tag {tag:?} is not a valid tag")))?;
        let head = client
            .head_manifest(path, tag)
            .await
            .map_err(|e| upstream_err(&registry, e))?;
        let before = self.tag_current(repo, tag).await?;
        if before.as_deref() == Some(head.digest.to_string().as_str())
            && self.children_present(repo, &head.digest, archs).await?
        {
            return Ok(TagOutcome::Unchanged);
        }
        let top = client
            .get_manifest(path, &head.digest.to_string())
            .await
            .map_err(|e| upstream_err(&registry, e))?;
        let parsed = parse_manifest(Some(&top.media_type), &top.bytes)
            .map_err(|e| Error::Upstream(format!("upstream manifest of {tag}: {}", e.0)))?;
        let sparse = if parsed.manifests.is_empty() {
            if !archs.is_empty()
                && let Some(arch) = self.image_architecture(client, path, &parsed).await?
                && !archs.contains(&arch)
            {
                return Ok(TagOutcome::Skipped(format!(
                    "architecture {arch} is not in the filter"
                )));
            }
            self.copy_blobs(client, path, repo, &parsed, p).await?;
            false
        } else {
            let mut kept = 0;
            for child in &parsed.manifests {
                let arch = architecture_of(child.platform.as_ref());
                if !archs.is_empty() && !arch.is_some_and(|a| archs.iter().any(|x| x == a)) {
                    continue;
                }
                self.copy_child(client, path, repo, who, child, p, 1)
                    .await?;
                kept += 1;
            }
            if kept == 0 {
                return Err(Error::Upstream(format!(
                    "no platform of {tag} matches the architecture filter {}",
                    archs.join(",")
                )));
            }
            kept < parsed.manifests.len()
        };
        self.manifest_put_as(
            who,
            repo,
            &Reference::Tag(t),
            &[],
            Some(&top.media_type),
            top.bytes.to_vec(),
            if sparse || self.config.mirror.sparse_index {
                Completeness::SparseIndex
            } else {
                Completeness::Full
            },
        )
        .await?;
        Ok(TagOutcome::Copied(before))
    }

    /// Whether the local manifest `digest` has every child the architecture filter selects
    /// (an index the filter has widened since it was copied lacks some).
    async fn children_present(
        &self,
        repo: &RepoName,
        digest: &berth_oci::Digest,
        archs: &[String],
    ) -> Result<bool> {
        let m = self
            .manifest_read(repo, &Reference::Digest(digest.clone()))
            .await?;
        let Ok(parsed) = parse_manifest(Some(&m.media_type), &m.content) else {
            return Ok(true);
        };
        for child in &parsed.manifests {
            let arch = architecture_of(child.platform.as_ref());
            if !archs.is_empty() && !arch.is_some_and(|a| archs.iter().any(|x| x == a)) {
                continue;
            }
            let r = Reference::Digest(child.digest.clone());
            if self.manifest_get_quiet(repo, &r).await?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Copies a child manifest of an index (and, for a nested index, its children), by digest.
    #[allow(clippy::too_many_arguments)]
    fn copy_child<'a>(
        &'a self,
        client: &'a RegistryClient,
        path: &'a str,
        repo: &'a RepoName,
        who: &'a Who,
        child: &'a Descriptor,
        p: &'a Shared,
        depth: usize,
    ) -> futures::future::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let registry = client.registry().to_string();
            let reference = Reference::Digest(child.digest.clone());
            if self.manifest_get_quiet(repo, &reference).await?.is_some() {
                return Ok(());
            }
            let m = client
                .get_manifest(path, &child.digest.to_string())
                .await
                .map_err(|e| upstream_err(&registry, e))?;
            let parsed = parse_manifest(Some(&m.media_type), &m.bytes).map_err(|e| {
                Error::Upstream(format!("upstream manifest {}: {}", child.digest, e.0))
            })?;
            if !parsed.manifests.is_empty() {
                if depth >= MAX_DEPTH {
                    return Err(Error::Upstream(format!(
                        "index {} nests indexes deeper than {MAX_DEPTH}",
                        child.digest
                    )));
                }
                for c in &parsed.manifests {
                    self.copy_child(client, path, repo, who, c, p, depth + 1)
                        .await?;
                }
            }
            self.copy_blobs(client, path, repo, &parsed, p).await?;
            self.manifest_put_as(
                who,
                repo,
                &reference,
                &[],
                Some(&m.media_type),
                m.bytes.to_vec(),
                Completeness::SparseIndex,
            )
            .await?;
            Ok(())
        })
    }

    /// An image's architecture, from its config blob.
    async fn image_architecture(
        &self,
        client: &RegistryClient,
        path: &str,
        parsed: &berth_oci::manifest::ParsedManifest,
    ) -> Result<Option<String>> {
        let Some(config) = &parsed.config else {
            return Ok(None);
        };
        if config.size > 1 << 20 {
            return Ok(None);
        }
        let registry = client.registry().to_string();
        let mut s = client
            .get_blob(path, &config.digest, u64::try_from(config.size).ok())
            .await
            .map_err(|e| upstream_err(&registry, e))?;
        let mut buf = Vec::new();
        while let Some(chunk) = s.next().await {
            buf.extend_from_slice(&chunk.map_err(|e| upstream_err(&registry, e))?);
        }
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap_or_default();
        Ok(v.get("architecture")
            .and_then(|a| a.as_str())
            .map(str::to_string))
    }

    /// Copies the blobs of a manifest the repository lacks, each verified on the way in.
    async fn copy_blobs(
        &self,
        client: &RegistryClient,
        path: &str,
        repo: &RepoName,
        parsed: &berth_oci::manifest::ParsedManifest,
        p: &Shared,
    ) -> Result<()> {
        let registry = client.registry().to_string();
        let blobs: Vec<&Descriptor> = parsed
            .config
            .iter()
            .chain(parsed.layers.iter())
            .filter(|d| !d.is_foreign())
            .collect();
        for d in blobs {
            if self
                .db
                .blob_in_repo(repo.as_str(), &d.digest.to_string())
                .await?
                .is_some()
            {
                continue;
            }
            let size = u64::try_from(d.size).ok();
            let stream = client
                .get_blob(path, &d.digest, size)
                .await
                .map_err(|e| upstream_err(&registry, e))?;
            let body = stream
                .map(|r| r.map_err(|e| std::io::Error::other(e.to_string())))
                .boxed();
            let n = self.upload_monolithic(repo, &d.digest, size, body).await?;
            metrics::counter!("berth_mirror_bytes_total").increment(n);
            bump(p, |c| {
                c.blobs_copied += 1;
                c.bytes_copied += i64::try_from(n).unwrap_or(0);
            });
        }
        Ok(())
    }
}

/// A mirror's writes are its robot's.
fn robot_who(m: &MirrorRow) -> Who {
    Who {
        performer: Some((m.robot_name.clone(), "robot".to_string())),
        ip: None,
    }
}
