//! Auto-prune policies: per namespace or repository, delete live tags beyond the newest N
//! (`number_of_tags`) or older than a duration (`creation_date`), optionally only tags whose name
//! matches (or does not match) a pattern. Immutable tags are neither counted nor deleted. Every
//! deletion ends the tag through the time machine, so it can be restored within the namespace's
//! window; the collector frees the bytes after that. A dry run plans exactly what a run would
//! delete, with the bytes that would free.

use crate::AutoPrunePolicy;
use crate::quotas::RepoGraph;
use crate::{Error, Registry, Result};
use berth_db::{AuditRow, PruneMethod};
use berth_oci::RepoName;

/// One tag a policy deletes (or would).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PruneItem {
    pub repository: String,
    pub tag: String,
    pub manifest_digest: String,
    /// When the tag was pushed or last moved (ms).
    #[serde(skip)]
    pub start_at: i64,
}

/// What a policy would delete now.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PrunePlan {
    pub tags: Vec<PruneItem>,
    /// Freed once the pruned tags leave the time machine's window and the collector runs.
    pub bytes_freed: i64,
}

/// Checks a policy's method, value and pattern; returns the method and the value in its stored
/// form.
pub fn validate_policy(
    method: &str,
    value: &serde_json::Value,
    pattern: Option<&str>,
) -> Result<(PruneMethod, String)> {
    let method: PruneMethod = method.parse().map_err(|_| {
        Error::invalid(format!(
            "method must be number_of_tags or creation_date, not {method:?}"
        ))
    })?;
    let value = match method {
        PruneMethod::NumberOfTags => {
            let n = value
                .as_i64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::invalid("number_of_tags needs a value: a whole number of tags above 0")
                })?;
            n.to_string()
        }
        PruneMethod::CreationDate => {
            let s = value.as_str().unwrap_or_default();
            if crate::parse_duration_s(s).is_none_or(|d| d <= 0) {
                return Err(Error::invalid(format!(
                    "creation_date needs a value such as 30m, 12h, 10d or 2w, not {value}"
                )));
            }
            s.trim().to_string()
        }
    };
    if let Some(p) = pattern {
        crate::policies::check_tag_pattern(p)?;
    }
    Ok((method, value))
}

impl Registry {
    /// The tags `p` would delete in one repository now, newest first.
    async fn prune_candidates(
        &self,
        p: &AutoPrunePolicy,
        repo_id: i64,
        name: &str,
    ) -> Result<Vec<PruneItem>> {
        let Ok(repo) = name.parse::<RepoName>() else {
            return Ok(Vec::new());
        };
        let re = match &p.pattern {
            Some(pat) => Some(regex::Regex::new(pat).map_err(|e| Error::invalid(e.to_string()))?),
            None => None,
        };
        let mut eligible = Vec::new();
        for (tag, digest, start_at) in self.db.live_tag_rows(repo_id).await? {
            if let Some(re) = &re
                && re.is_match(&tag) != p.matches
            {
                continue;
            }
            if self.tag_is_immutable(&repo, repo_id, &tag).await? {
                continue;
            }
            eligible.push(PruneItem {
                repository: name.to_string(),
                tag,
                manifest_digest: digest,
                start_at,
            });
        }
        Ok(match p.method {
            PruneMethod::NumberOfTags => {
                let keep = p.value.parse::<usize>().unwrap_or(usize::MAX);
                eligible.into_iter().skip(keep).collect()
            }
            PruneMethod::CreationDate => {
                let age_ms = crate::parse_duration_s(&p.value)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000);
                let before = berth_db::now_ms().saturating_sub(age_ms);
                eligible
                    .into_iter()
                    .filter(|i| i.start_at < before)
                    .collect()
            }
        })
    }

    /// The repositories a policy covers: (id, name).
    async fn prune_scope(&self, p: &AutoPrunePolicy) -> Result<Vec<(i64, String)>> {
        Ok(self
            .db
            .repos_in_scope(&p.namespace, p.repository.as_deref())
            .await?)
    }

    /// What `p` would delete now, and the bytes that would free.
    pub async fn prune_plan(&self, p: &AutoPrunePolicy) -> Result<PrunePlan> {
        let mut plan = PrunePlan::default();
        for (id, name) in self.prune_scope(p).await? {
            let items = self.prune_candidates(p, id, &name).await?;
            if items.is_empty() {
                continue;
            }
            let doomed: Vec<&str> = items.iter().map(|i| i.manifest_digest.as_str()).collect();
            let doomed_tags: Vec<&str> = items.iter().map(|i| i.tag.as_str()).collect();
            let kept: Vec<String> = self
                .db
                .live_tag_rows(id)
                .await?
                .into_iter()
                .filter(|(t, _, _)| !doomed_tags.contains(&t.as_str()))
                .map(|(_, d, _)| d)
                .collect();
            let kept: Vec<&str> = kept.iter().map(String::as_str).collect();
            plan.bytes_freed += RepoGraph::load(self, id).await?.freed(&doomed, &kept);
            plan.tags.extend(items);
        }
        plan.tags.sort();
        Ok(plan)
    }

    /// Applies `p` now: ends every tag it selects (still pointing where it was planned, and
    /// still mutable), records an `autoprune_tag_delete` event for each, and returns them.
    pub async fn prune_apply(&self, p: &AutoPrunePolicy) -> Result<Vec<PruneItem>> {
        let mut done = Vec::new();
        for (id, name) in self.prune_scope(p).await? {
            let Ok(repo) = name.parse::<RepoName>() else {
                continue;
            };
            for item in self.prune_candidates(p, id, &name).await? {
                if self.tag_is_immutable(&repo, id, &item.tag).await? {
                    continue;
                }
                let mut w = self.db.write().await?;
                if self
                    .db
                    .delete_tag_if(&mut w, id, &item.tag, &item.manifest_digest)
                    .await?
                {
                    w.commit().await?;
                    done.push(item);
                }
            }
        }
        let events: Vec<AuditRow> = done
            .iter()
            .map(|i| AuditRow {
                at: berth_db::now_ms(),
                kind: "autoprune_tag_delete".into(),
                performer_kind: Some("system".into()),
                namespace: Some(p.namespace.clone()),
                repository: Some(i.repository.clone()),
                metadata: serde_json::json!({
                    "tag": i.tag, "manifest_digest": i.manifest_digest, "policy": p.uuid,
                    "method": p.method, "value": p.value,
                })
                .to_string(),
                ..AuditRow::default()
            })
            .collect();
        self.db.insert_audit(&events).await?;
        metrics::counter!("berth_autoprune_tags_deleted_total").increment(done.len() as u64);
        done.sort();
        Ok(done)
    }

    /// Applies every policy (the worker's chore). Returns how many tags were deleted.
    pub async fn run_autoprune(&self) -> Result<usize> {
        let mut n = 0;
        for p in self.db.autoprune_policies().await? {
            let p = AutoPrunePolicy::from(p);
            match self.prune_apply(&p).await {
                Ok(done) => n += done.len(),
                Err(e) => {
                    tracing::warn!(policy = %p.uuid, error = %e, "auto-prune policy failed; will retry")
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::validate_policy;
    use berth_db::PruneMethod;
    use serde_json::json;

    #[test]
    fn policies_are_validated() {
        assert_eq!(
            validate_policy("number_of_tags", &json!(5), None).ok(),
            Some((PruneMethod::NumberOfTags, "5".into()))
        );
        assert_eq!(
            validate_policy("number_of_tags", &json!("3"), Some("^v")).ok(),
            Some((PruneMethod::NumberOfTags, "3".into()))
        );
        assert_eq!(
            validate_policy("creation_date", &json!("2w"), None).ok(),
            Some((PruneMethod::CreationDate, "2w".into()))
        );
        assert!(validate_policy("number_of_tags", &json!(0), None).is_err());
        assert!(validate_policy("creation_date", &json!("soon"), None).is_err());
        assert!(validate_policy("creation_date", &json!(5), None).is_err());
        assert!(validate_policy("everything", &json!(1), None).is_err());
        assert!(validate_policy("number_of_tags", &json!(1), Some("(")).is_err());
    }
}
