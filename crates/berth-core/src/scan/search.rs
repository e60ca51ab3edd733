//! Registry-wide questions: which images are affected by a vulnerability (by record id or
//! alias, from the stored matches), and which contain a package (from the layer index, each
//! candidate confirmed on its merged layers so that a package a later layer removed is not
//! named). Callers filter the answers by what the asker may read.

use super::summary::VulnBrief;
use super::{ScanStatus, index};
use crate::{Registry, Result};
use berth_oci::Digest;

/// Candidates looked at per question.
const CANDIDATES: i64 = 2000;

/// An image that answers a question, with the tags that carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// The package asked for (or the packages a vulnerability was found in).
    pub packages: Vec<index::Package>,
    pub vulnerability: Option<VulnBrief>,
}

impl Registry {
    /// Images whose stored match names `id` (a record id or an alias such as a CVE).
    pub(crate) async fn images_with_vuln(&self, id: &str) -> Result<Vec<SearchHit>> {
        let mut out = Vec::new();
        for (digest, vulns) in self.db.manifests_with_vuln(id, CANDIDATES).await? {
            let vulns: Vec<VulnBrief> = serde_json::from_str(&vulns).unwrap_or_default();
            let Some(v) = vulns.into_iter().find(|v| {
                v.id.eq_ignore_ascii_case(id)
                    || v.aliases.iter().any(|a| a.eq_ignore_ascii_case(id))
            }) else {
                continue;
            };
            for (_, repo, tags) in self.db.repos_holding_manifest_now(&digest).await? {
                out.push(SearchHit {
                    repository: repo,
                    digest: digest.clone(),
                    tags,
                    packages: Vec::new(),
                    vulnerability: Some(v.clone()),
                });
            }
        }
        Ok(out)
    }

    /// Images containing package `name` (any kind; at `version` when given).
    pub(crate) async fn images_with_package(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Vec<SearchHit>> {
        let layers = self.db.layers_with_package(name, CANDIDATES).await?;
        if layers.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for (repo, digest) in self.db.manifests_using_layers(&layers, CANDIDATES).await? {
            let Ok(d) = digest.parse::<Digest>() else {
                continue;
            };
            let Some(row) = self.db.manifest_by_digest(&repo, &d.to_string()).await? else {
                continue;
            };
            let Ok(parsed) =
                berth_oci::manifest::parse_manifest(Some(&row.media_type), &row.content)
            else {
                continue;
            };
            let (status, image, _) = self.image_of(&parsed).await?;
            let Some(image) = image.filter(|_| status == ScanStatus::Scanned) else {
                continue;
            };
            let packages: Vec<index::Package> = image
                .packages
                .into_iter()
                .map(|p| p.package)
                .filter(|p| p.name == name && version.is_none_or(|v| p.version == v))
                .collect();
            if packages.is_empty() {
                continue;
            }
            let tags = self
                .db
                .repos_holding_manifest_now(&digest)
                .await?
                .into_iter()
                .find(|(_, r, _)| *r == repo)
                .map(|(_, _, t)| t)
                .unwrap_or_default();
            out.push(SearchHit {
                repository: repo,
                digest,
                tags,
                packages,
                vulnerability: None,
            });
        }
        Ok(out)
    }
}
