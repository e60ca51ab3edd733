//! Each image manifest's stored match: after its layers are indexed and whenever the
//! vulnerability data changes, the manifest is matched again and the result kept by digest
//! (`manifest_scan`). What changed since the last match becomes `vulnerability_found`
//! notifications; the stored result is what security policies and tag lists read, so neither
//! matches on a request.

use super::{ScanStatus, SecurityReport, Severity};
use crate::{Registry, Result};
use berth_oci::{Digest, RepoName};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// One vulnerability of a manifest, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnBrief {
    pub id: String,
    pub severity: Severity,
    /// A fixed version is known.
    pub fixable: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The packages (`name version`) it was found in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub summary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link: String,
}

/// A manifest's stored match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSummary {
    pub status: ScanStatus,
    pub vulns: Vec<VulnBrief>,
}

impl ScanSummary {
    /// An index's summary from its platforms': every vulnerability once, the status as
    /// [`super::SecurityReport`] gives an index's.
    pub fn combine<'a>(parts: impl Iterator<Item = &'a ScanSummary>) -> Option<ScanSummary> {
        let parts: Vec<&ScanSummary> = parts.collect();
        if parts.is_empty() {
            return None;
        }
        let statuses: Vec<ScanStatus> = parts.iter().map(|p| p.status).collect();
        let mut by_id: BTreeMap<String, VulnBrief> = BTreeMap::new();
        for v in parts.iter().flat_map(|p| &p.vulns) {
            by_id.entry(v.id.clone()).or_insert_with(|| v.clone());
        }
        Some(ScanSummary {
            status: super::overall(&statuses),
            vulns: by_id.into_values().collect(),
        })
    }

    /// Vulnerabilities by severity.
    pub fn counts(&self) -> BTreeMap<Severity, usize> {
        let mut m = BTreeMap::new();
        for v in &self.vulns {
            *m.entry(v.severity).or_insert(0) += 1;
        }
        m
    }

    /// The worst severity, if any vulnerability was found.
    pub fn worst(&self) -> Option<Severity> {
        self.vulns.iter().map(|v| v.severity).max()
    }
}

pub(crate) fn status_of(s: &str) -> ScanStatus {
    match s {
        "scanned" => ScanStatus::Scanned,
        "failed" => ScanStatus::Failed,
        "unsupported" => ScanStatus::Unsupported,
        "manifest_layer_too_large" => ScanStatus::ManifestLayerTooLarge,
        _ => ScanStatus::Queued,
    }
}

/// The vulnerabilities of a report, one per id (its worst severity, fixable if any package's
/// is), sorted by id.
pub fn brief(report: &SecurityReport) -> Vec<VulnBrief> {
    let mut by_id: BTreeMap<String, VulnBrief> = BTreeMap::new();
    for f in &report.features {
        for v in &f.vulnerabilities {
            let pkg = format!("{} {}", f.package.name, f.package.version);
            let e = by_id.entry(v.id.clone()).or_insert_with(|| VulnBrief {
                id: v.id.clone(),
                severity: v.severity,
                fixable: false,
                aliases: v.aliases.clone(),
                packages: Vec::new(),
                summary: v.summary.clone(),
                link: v.links.first().cloned().unwrap_or_default(),
            });
            e.severity = e.severity.max(v.severity);
            e.fixable |= v.fixed_by.is_some();
            if !e.packages.contains(&pkg) {
                e.packages.push(pkg);
            }
        }
    }
    by_id.into_values().collect()
}

impl Registry {
    /// Matches again the image manifests that need it — never matched, still waiting for
    /// their layers, or matched before the vulnerability data last changed — storing each
    /// result and notifying `vulnerability_found` for what is new. Returns how many changed.
    pub async fn refresh_manifest_scans(&self, limit: i64) -> Result<u64> {
        if !self.config.scan.enabled {
            return Ok(0);
        }
        let changed_at = self.db.vuln_data_changed_at().await?;
        let todo = self.db.manifests_to_match(changed_at, limit).await?;
        let mut n = 0;
        for (digest, repo, old_status, old_vulns) in todo {
            let Some(repo) = repo else {
                // No repository holds it any more.
                self.db.forget_manifest_scan(&digest).await?;
                continue;
            };
            let (Ok(name), Ok(d)) = (repo.parse::<RepoName>(), digest.parse::<Digest>()) else {
                continue;
            };
            let report = match self.security_report(&name, &d).await {
                Ok(r) => r,
                // Deleted since it was listed.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            if report.status == ScanStatus::Queued && old_status == "queued" {
                continue;
            }
            let vulns = brief(&report);
            let old: Option<Vec<VulnBrief>> = serde_json::from_str(&old_vulns).ok();
            let was_scanned = old_status == "scanned";
            let counts: BTreeMap<&str, usize> = ScanSummary {
                status: report.status,
                vulns: vulns.clone(),
            }
            .counts()
            .into_iter()
            .map(|(s, c)| (s.as_str(), c))
            .collect();
            let mut w = self.db.write().await?;
            self.db
                .put_manifest_scan(
                    &mut w,
                    &digest,
                    report.status.as_str(),
                    &serde_json::to_string(&vulns).unwrap_or_else(|_| "[]".into()),
                    &serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into()),
                )
                .await?;
            if report.status == ScanStatus::Scanned && self.config.scan.notifications {
                // A first match tells what reaches NOTIFICATION_MIN_SEVERITY_ON_NEW_INDEX; a
                // later one tells each vulnerability it did not know before.
                let known: HashSet<&str> = match (&old, was_scanned) {
                    (Some(o), true) => o.iter().map(|v| v.id.as_str()).collect(),
                    _ => HashSet::new(),
                };
                let new_index = !was_scanned;
                let fresh: Vec<&VulnBrief> = vulns
                    .iter()
                    .filter(|v| !known.contains(v.id.as_str()))
                    .filter(|v| {
                        !new_index || v.severity >= self.config.scan.min_severity_on_new_index
                    })
                    .collect();
                if !fresh.is_empty() {
                    for (repo_id, repo_name, tags) in
                        self.db.repos_holding_manifest(&mut w, &digest).await?
                    {
                        let tags = if tags.is_empty() {
                            vec![digest.clone()]
                        } else {
                            tags
                        };
                        for v in &fresh {
                            let mut extra = serde_json::json!({
                                "tags": tags,
                                "image": digest,
                                "vulnerability": {
                                    "id": v.id,
                                    "description": v.summary,
                                    "link": v.link,
                                    "priority": v.severity.as_str(),
                                    "has_fix": v.fixable,
                                },
                            });
                            if new_index {
                                extra["vulnerable_index_report_created"] = "true".into();
                            }
                            self.notify_in(
                                &mut w,
                                repo_id,
                                &repo_name,
                                "vulnerability_found",
                                extra,
                            )
                            .await?;
                        }
                    }
                }
            }
            w.commit().await?;
            n += 1;
        }
        Ok(n)
    }

    /// Matched manifests by their worst severity (`None` for those with no vulnerability), and
    /// manifests by scan status, for metrics.
    pub async fn scan_totals(&self) -> Result<(BTreeMap<String, i64>, BTreeMap<String, i64>)> {
        let mut worst: BTreeMap<String, i64> = BTreeMap::new();
        let mut statuses: BTreeMap<String, i64> = BTreeMap::new();
        for (status, counts) in self.db.manifest_scan_counts().await? {
            *statuses.entry(status.clone()).or_insert(0) += 1;
            if status != "scanned" {
                continue;
            }
            let counts: BTreeMap<String, i64> = serde_json::from_str(&counts).unwrap_or_default();
            let w = Severity::ALL
                .iter()
                .rev()
                .find(|s| counts.get(s.as_str()).is_some_and(|n| *n > 0))
                .map_or("None", |s| s.as_str());
            *worst.entry(w.to_string()).or_insert(0) += 1;
        }
        Ok((worst, statuses))
    }

    /// The stored matches of manifests, by digest (for tag lists and policies).
    pub async fn scan_summaries(
        &self,
        digests: &[String],
    ) -> Result<std::collections::HashMap<String, ScanSummary>> {
        Ok(self
            .db
            .manifest_scans(digests)
            .await?
            .into_iter()
            .map(|(d, (status, vulns, _))| {
                (
                    d,
                    ScanSummary {
                        status: status_of(&status),
                        vulns: serde_json::from_str(&vulns).unwrap_or_default(),
                    },
                )
            })
            .collect())
    }
}
