//! Storage quotas per namespace and storage usage. Usage counts each blob once per namespace,
//! from the manifests present, so it follows pushes, deletes and garbage collection exactly. A
//! manifest push that would take a namespace past a `Reject` threshold is refused before anything
//! is written; crossing a `Warning` threshold records a `quota_warning` event, a refusal a
//! `quota_error` event (in the audit log, where notifications read events).

mod admin;
pub use admin::{NamespaceQuota, QuotaPath, QuotaSize, QuotaThreshold, Quotas, ThresholdFields};

use crate::{Error, Registry, Result};
use berth_db::{AuditRow, QuotaLimitKind, QuotaRow, WriteTx};
use berth_oci::RepoName;
use std::collections::{BTreeMap, BTreeSet};

/// Quota settings (Quay's keys).
#[derive(Debug, Clone)]
pub struct QuotaConfig {
    /// `FEATURE_QUOTA_MANAGEMENT` (Berth: on by default; without quotas it costs nothing).
    pub enabled: bool,
    /// `FEATURE_VERIFY_QUOTA`: refuse pushes over a reject threshold.
    pub verify: bool,
    /// `FEATURE_EDIT_QUOTA`: quotas may be changed through the API.
    pub edit: bool,
    /// `DEFAULT_SYSTEM_REJECT_QUOTA_BYTES`: a reject limit for namespaces without a quota (0: none).
    pub system_reject_bytes: i64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            enabled: true,
            verify: true,
            edit: true,
            system_reject_bytes: 0,
        }
    }
}

/// Storage of one repository.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RepoUsage {
    /// Distinct blobs its manifests reference.
    pub size_bytes: i64,
    /// Freed if the repository were deleted: blobs no other repository holds.
    pub exclusive_bytes: i64,
    pub tags: Vec<TagUsage>,
}

/// Storage of one live tag.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TagUsage {
    pub name: String,
    pub manifest_digest: String,
    /// Distinct blobs of its manifest (and an index's children).
    pub size_bytes: i64,
    /// Freed if the tag were deleted, once the time machine's window has passed: blobs no other
    /// live tag of the repository and no other repository holds.
    pub exclusive_bytes: i64,
}

/// The quota check's answer to a manifest push.
pub(crate) enum QuotaOutcome {
    /// Go ahead; record these warnings once committed.
    Allow(Vec<AuditRow>),
    /// Refuse with this error; record this event.
    Refuse(Error, Box<AuditRow>),
}

/// What a quota allows, in bytes.
struct Thresholds {
    limit: i64,
    reject: Option<(i64, i64)>,
    warnings: Vec<(i64, i64)>,
}

/// The thresholds that apply to a namespace: its own quota's, and the system default reject limit
/// (`DEFAULT_SYSTEM_REJECT_QUOTA_BYTES`) unless the namespace's quota has a Reject threshold of
/// its own, which then replaces it (larger or smaller: an administrator set it for this
/// namespace). A quota with only Warning thresholds never lifts the system default.
fn thresholds(q: Option<&QuotaRow>, system_reject: i64) -> Option<Thresholds> {
    let system = (system_reject > 0).then_some((system_reject, 100));
    let Some(q) = q else {
        return system.map(|reject| Thresholds {
            limit: system_reject,
            reject: Some(reject),
            warnings: Vec::new(),
        });
    };
    let at = |pct: i64| {
        i64::try_from(i128::from(q.limit_bytes) * i128::from(pct) / 100).unwrap_or(i64::MAX)
    };
    let own_reject = q
        .limits
        .iter()
        .filter(|l| l.kind == QuotaLimitKind::Reject)
        .map(|l| (at(l.percent), l.percent))
        .min();
    Some(Thresholds {
        limit: q.limit_bytes,
        reject: own_reject.or(system),
        warnings: q
            .limits
            .iter()
            .filter(|l| l.kind == QuotaLimitKind::Warning)
            .map(|l| (at(l.percent), l.percent))
            .collect(),
    })
}

fn over_quota(ns: &str, after: i64, reject: i64, when: &str) -> Error {
    Error::denied(format!(
        "namespace {ns} is over its storage quota: {when} would use {} of the {} allowed; delete tags, or ask an administrator to raise the quota",
        human_size(after),
        human_size(reject),
    ))
}

/// `10 GiB`, `500 MB`, `20G`, `1024` (bytes) into bytes.
pub fn parse_size(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mul: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        // Quay's MAXIMUM_LAYER_SIZE style ("20G"), read as bitmath reads it: SI units.
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = n * mul;
    (v.is_finite() && (0.0..9.2e18).contains(&v)).then_some(v as i64)
}

/// Bytes as Quay shows a quota: `10.0 GiB`.
pub fn human_size(bytes: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// A quota event's notification keys (Quay's) from its audit metadata: the usage the push
/// would reach (or reached), the limit and the threshold crossed.
pub(crate) fn quota_event_data(metadata: &str) -> serde_json::Value {
    let m: serde_json::Value = serde_json::from_str(metadata).unwrap_or_default();
    let usage = m["would_use_bytes"]
        .as_i64()
        .or(m["usage_bytes"].as_i64())
        .unwrap_or(0);
    crate::notify::events::quota_data(
        usage,
        m["limit_bytes"].as_i64().unwrap_or(0),
        m["threshold_percent"].as_i64().unwrap_or(0),
    )
}

fn event(kind: &str, repo: &RepoName, meta: serde_json::Value) -> AuditRow {
    AuditRow {
        at: berth_db::now_ms(),
        kind: kind.into(),
        performer_kind: Some("system".into()),
        namespace: Some(repo.namespace().to_string()),
        repository: Some(repo.as_str().to_string()),
        metadata: meta.to_string(),
        ..AuditRow::default()
    }
}

impl Registry {
    /// The namespace's quota as the push check sees it; `None` when nothing is enforced.
    pub(crate) async fn quota_to_check(&self, namespace: &str) -> Result<Option<QuotaRow>> {
        let q = &self.config.quota;
        if !q.enabled || !q.verify {
            return Ok(None);
        }
        let row = self.db.quota_for(namespace).await?;
        if row.is_none() && q.system_reject_bytes <= 0 {
            return Ok(None);
        }
        Ok(Some(row.unwrap_or(QuotaRow {
            id: 0,
            namespace: namespace.into(),
            limit_bytes: q.system_reject_bytes,
            limits: Vec::new(),
        })))
    }

    /// The reject threshold of `quota` in bytes, if it has one.
    pub(crate) fn reject_bytes(&self, quota: &QuotaRow) -> Option<i64> {
        let own = (quota.id != 0).then_some(quota);
        thresholds(own, self.config.quota.system_reject_bytes)?
            .reject
            .map(|(bytes, _)| bytes)
    }

    /// Inside a manifest push's transaction: whether referencing `blobs` would take the
    /// namespace past its reject threshold. The events to record (after the transaction ends:
    /// `quota_error` for a refusal, `quota_warning` for each warning threshold crossed) come with
    /// the answer.
    pub(crate) async fn quota_gate(
        &self,
        w: &mut WriteTx,
        repo: &RepoName,
        quota: &QuotaRow,
        blobs: &[String],
    ) -> Result<QuotaOutcome> {
        let own = (quota.id != 0).then_some(quota);
        let Some(t) = thresholds(own, self.config.quota.system_reject_bytes) else {
            return Ok(QuotaOutcome::Allow(Vec::new()));
        };
        let ns = repo.namespace();
        self.db.lock_namespace(w, ns).await?;
        let (before, after) = self.db.usage_adding(w, ns, blobs).await?;
        metrics::gauge!("berth_namespace_storage_bytes", "namespace" => ns.to_string())
            .set(before as f64);
        if let Some((reject, pct)) = t.reject
            && after > reject
            && after > before
        {
            let meta = serde_json::json!({
                "namespace": ns, "usage_bytes": before, "would_use_bytes": after,
                "limit_bytes": t.limit, "threshold_percent": pct,
            });
            metrics::counter!("berth_quota_rejections_total").increment(1);
            return Ok(QuotaOutcome::Refuse(
                over_quota(ns, after, reject, "this push"),
                Box::new(event("quota_error", repo, meta)),
            ));
        }
        Ok(QuotaOutcome::Allow(
            t.warnings
                .iter()
                .filter(|(at, _)| before < *at && after >= *at)
                .map(|(_, pct)| {
                    event(
                        "quota_warning",
                        repo,
                        serde_json::json!({
                            "namespace": ns, "usage_bytes": after, "limit_bytes": t.limit,
                            "threshold_percent": pct,
                        }),
                    )
                })
                .collect(),
        ))
    }

    /// Before blob bytes are accepted: refuses when the namespace's usage plus `incoming` bytes
    /// (an upload's bytes so far and the chunk arriving) would pass its reject threshold, so a
    /// large image is refused while it uploads rather than after. A blob the namespace already
    /// references adds nothing: with its digest (`blob`, known for a monolithic POST and a
    /// completed session) that is checked exactly; without it (a chunk), the bytes may still turn
    /// out to be such a blob (a shared base layer pushed to another repository), so they are
    /// refused only once there are more of them than in the namespace's largest blob. Both look-ups
    /// happen only on the way to a refusal. Counting is not transactional here (concurrent uploads
    /// are not summed): the manifest push's check stays the exact one.
    pub(crate) async fn quota_admits_upload(
        &self,
        repo: &RepoName,
        incoming: u64,
        blob: Option<&berth_oci::Digest>,
        when: &str,
    ) -> Result<()> {
        let Some(quota) = self.quota_to_check(repo.namespace()).await? else {
            return Ok(());
        };
        let own = (quota.id != 0).then_some(&quota);
        let Some(t) = thresholds(own, self.config.quota.system_reject_bytes) else {
            return Ok(());
        };
        let Some((reject, pct)) = t.reject else {
            return Ok(());
        };
        let ns = repo.namespace();
        let usage = self.db.namespace_usage(ns).await?;
        let incoming_i = i64::try_from(incoming).unwrap_or(i64::MAX);
        let after = usage.saturating_add(incoming_i);
        if after <= reject {
            return Ok(());
        }
        let already_there = match blob {
            Some(d) => self.db.namespace_references(ns, &d.to_string()).await?,
            None => incoming_i <= self.db.namespace_largest_blob(ns).await?,
        };
        if already_there {
            return Ok(());
        }
        metrics::counter!("berth_quota_rejections_total").increment(1);
        let row = event(
            "quota_error",
            repo,
            serde_json::json!({
                "namespace": ns, "usage_bytes": usage, "would_use_bytes": after,
                "limit_bytes": t.limit, "threshold_percent": pct, "stage": when,
            }),
        );
        let data = quota_event_data(&row.metadata);
        self.db.insert_audit(&[row]).await?;
        self.notify_namespace(ns, "quota_error", data).await;
        Err(over_quota(ns, after, reject, when))
    }

    /// What each of `repos` stores (its distinct blobs' bytes), for a listing of repositories
    /// the caller obtained through a checked door ([`crate::auth::Auth::readable_repos`]).
    pub async fn repo_sizes(
        &self,
        repos: &[crate::Repository],
    ) -> Result<std::collections::HashMap<String, i64>> {
        let names: Vec<String> = repos.iter().map(|r| r.name.clone()).collect();
        Ok(self.db.repo_sizes(&names).await?.into_iter().collect())
    }

    /// Bytes a namespace uses.
    pub async fn namespace_usage(&self, namespace: &str) -> Result<i64> {
        let n = self.db.namespace_usage(namespace).await?;
        metrics::gauge!("berth_namespace_storage_bytes", "namespace" => namespace.to_string())
            .set(n as f64);
        Ok(n)
    }

    /// Refreshes the usage and limit gauges of every namespace with a quota.
    pub async fn quota_metrics(&self) -> Result<()> {
        for ns in self.db.quota_namespaces().await? {
            self.namespace_usage(&ns).await?;
            if let Some(q) = self.db.quota_for(&ns).await? {
                metrics::gauge!("berth_namespace_quota_bytes", "namespace" => ns.clone())
                    .set(q.limit_bytes as f64);
            }
        }
        Ok(())
    }

    /// Storage of a repository after deduplication, what deleting it would free, and the same
    /// for each live tag.
    pub async fn repo_usage(&self, repo: &RepoName) -> Result<RepoUsage> {
        let id = self.repo_id_of(repo).await?;
        let g = RepoGraph::load(self, id).await?;
        let tags = self.db.live_tags(id).await?;
        let mut out = RepoUsage {
            size_bytes: g.sizes.values().sum(),
            exclusive_bytes: g.exclusive.values().sum(),
            tags: Vec::new(),
        };
        // Each tag's exclusive bytes are `g.freed(&[its digest], &the others' digests)`,
        // computed for all tags at once: linear in tags and blobs, not quadratic in tags.
        let mut tags_on: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, d) in &tags {
            *tags_on.entry(d.as_str()).or_default() += 1;
        }
        let reach: BTreeMap<&str, BTreeSet<String>> =
            tags_on.keys().map(|d| (*d, g.blobs_of(&[d]))).collect();
        let mut holders: BTreeMap<&str, usize> = BTreeMap::new();
        for blobs in reach.values() {
            for b in blobs {
                *holders.entry(b.as_str()).or_default() += 1;
            }
        }
        for (name, digest) in &tags {
            let blobs = &reach[digest.as_str()];
            let exclusive_bytes = if tags_on[digest.as_str()] > 1 {
                0
            } else {
                blobs
                    .iter()
                    .filter(|b| holders.get(b.as_str()) == Some(&1))
                    .filter_map(|b| g.exclusive.get(b))
                    .sum()
            };
            out.tags.push(TagUsage {
                name: name.clone(),
                manifest_digest: digest.clone(),
                size_bytes: g.size(blobs),
                exclusive_bytes,
            });
        }
        Ok(out)
    }
}

/// A repository's manifests, what they reference and what only it holds: enough to say what
/// deleting some of its tags would free.
pub(crate) struct RepoGraph {
    blobs: BTreeMap<String, Vec<String>>,
    kids: BTreeMap<String, Vec<String>>,
    sizes: BTreeMap<String, i64>,
    exclusive: BTreeMap<String, i64>,
}

impl RepoGraph {
    pub(crate) async fn load(reg: &Registry, repo_id: i64) -> Result<RepoGraph> {
        let (refs, children) = reg.db.repo_blob_graph(repo_id).await?;
        let mut g = RepoGraph {
            blobs: BTreeMap::new(),
            kids: BTreeMap::new(),
            sizes: BTreeMap::new(),
            exclusive: reg
                .db
                .repo_exclusive_blobs(repo_id)
                .await?
                .into_iter()
                .collect(),
        };
        for (m, b, s) in refs {
            g.blobs.entry(m).or_default().push(b.clone());
            g.sizes.insert(b, s);
        }
        for (p, c) in children {
            g.kids.entry(p).or_default().push(c);
        }
        Ok(g)
    }

    /// Blobs reachable from manifests `roots` (through index children).
    pub(crate) fn blobs_of(&self, roots: &[&str]) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
        while let Some(m) = todo.pop() {
            if !seen.insert(m.clone()) {
                continue;
            }
            out.extend(self.blobs.get(&m).into_iter().flatten().cloned());
            todo.extend(self.kids.get(&m).into_iter().flatten().cloned());
        }
        out
    }

    pub(crate) fn size(&self, blobs: &BTreeSet<String>) -> i64 {
        blobs.iter().filter_map(|b| self.sizes.get(b)).sum()
    }

    /// Bytes freed (once the time machine's window has passed and the collector ran) if tags on
    /// `doomed` went and tags on `kept` stayed: blobs only the doomed reach, that no other
    /// repository holds.
    pub(crate) fn freed(&self, doomed: &[&str], kept: &[&str]) -> i64 {
        let keep = self.blobs_of(kept);
        self.blobs_of(doomed)
            .iter()
            .filter(|b| !keep.contains(*b))
            .filter_map(|b| self.exclusive.get(b))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{human_size, parse_size};

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10 GiB"), Some(10 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1.5MB"), Some(1_500_000));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("5 parsecs"), None);
        assert_eq!(human_size(10 * 1024 * 1024 * 1024), "10.0 GiB");
        assert_eq!(human_size(512), "512.0 B");
    }
}
