//! Auto-prune policies (Quay's `autoprunepolicy`) as scoped policies; what they delete is
//! [`crate::autoprune`]'s business.

use super::store::Store;
use super::{Scope, ScopedPolicy, Verb};
use crate::autoprune::validate_policy;
use crate::{Error, Registry, Result};
use berth_db::{AutoPrunePolicyRow, PruneMethod, WriteTx};

/// An auto-prune policy: in its scope, tags beyond the newest `value` (`number_of_tags`) or
/// older than `value` (`creation_date`) are ended, optionally only those whose name matches
/// `pattern` (or, when `matches` is false, does not).
#[derive(Debug, Clone, PartialEq)]
pub struct AutoPrunePolicy {
    pub uuid: String,
    pub namespace: String,
    /// `None`: every repository of the namespace.
    pub repository: Option<String>,
    pub method: PruneMethod,
    /// A count, or a duration such as `2w`, as given.
    pub value: String,
    pub pattern: Option<String>,
    pub matches: bool,
}

impl From<AutoPrunePolicyRow> for AutoPrunePolicy {
    fn from(r: AutoPrunePolicyRow) -> AutoPrunePolicy {
        AutoPrunePolicy {
            uuid: r.uuid,
            namespace: r.namespace,
            repository: r.repository,
            method: r.method,
            value: r.value,
            pattern: r.pattern,
            matches: r.matches,
        }
    }
}

impl AutoPrunePolicy {
    fn row(&self) -> AutoPrunePolicyRow {
        AutoPrunePolicyRow {
            uuid: self.uuid.clone(),
            namespace: self.namespace.clone(),
            repository: self.repository.clone(),
            method: self.method,
            value: self.value.clone(),
            pattern: self.pattern.clone(),
            matches: self.matches,
        }
    }
}

/// The settings of an auto-prune policy, as given.
#[derive(Debug, Clone, Default)]
pub struct AutoPruneFields {
    /// Required: `number_of_tags` or `creation_date`.
    pub method: Option<String>,
    /// A count (number or string) for `number_of_tags`, a duration such as `2w` for
    /// `creation_date`.
    pub value: serde_json::Value,
    /// Only tags whose name matches (or, with `tag_pattern_matches: false`, does not).
    pub tag_pattern: Option<String>,
    pub tag_pattern_matches: Option<bool>,
}

impl ScopedPolicy for AutoPrunePolicy {
    const NOUN: &'static str = "auto-prune policy";
    type Fields = AutoPruneFields;

    fn uuid(&self) -> &str {
        &self.uuid
    }

    /// Quay's form: `value` is a number for `number_of_tags`; the pattern fields only when
    /// there is a pattern.
    fn to_json(&self) -> serde_json::Value {
        let value = if self.method == PruneMethod::NumberOfTags {
            self.value
                .parse::<i64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| self.value.clone().into())
        } else {
            self.value.clone().into()
        };
        let mut v = serde_json::json!({"uuid": self.uuid, "method": self.method, "value": value});
        if let Some(pat) = &self.pattern {
            v["tagPattern"] = pat.clone().into();
            v["tagPatternMatches"] = self.matches.into();
        }
        v
    }
}

impl Store for AutoPrunePolicy {
    fn build(scope: &Scope, uuid: String, fields: AutoPruneFields) -> Result<Self> {
        let method = fields
            .method
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid("field \"method\" is required (a string)"))?;
        let pattern = fields.tag_pattern.filter(|s| !s.is_empty());
        let (method, value) = validate_policy(&method, &fields.value, pattern.as_deref())?;
        Ok(AutoPrunePolicy {
            uuid,
            namespace: scope.namespace.clone(),
            repository: scope.repository.clone(),
            method,
            value,
            pattern,
            matches: fields.tag_pattern_matches.unwrap_or(true),
        })
    }

    /// As Quay names them: `{verb}_namespace_autoprune_policy` or
    /// `{verb}_repository_autoprune_policy`.
    fn audit_kind(verb: Verb, scope: &Scope) -> String {
        let level = if scope.repository.is_some() {
            "repository"
        } else {
            "namespace"
        };
        format!("{}_{level}_autoprune_policy", verb.as_str())
    }

    fn deleted_meta(&self) -> serde_json::Value {
        self.to_json()
    }

    async fn list_at(reg: &Registry, scope: &Scope) -> Result<Vec<Self>> {
        Ok(reg
            .db
            .autoprune_policies_at(&scope.namespace, scope.repository())
            .await?
            .into_iter()
            .map(AutoPrunePolicy::from)
            .collect())
    }

    async fn insert(reg: &Registry, w: &mut WriteTx, p: &Self) -> Result<()> {
        Ok(reg.db.insert_autoprune_policy(w, &p.row()).await?)
    }

    async fn update(reg: &Registry, w: &mut WriteTx, p: &Self) -> Result<bool> {
        Ok(reg.db.update_autoprune_policy(w, &p.row()).await?)
    }

    async fn delete(
        reg: &Registry,
        w: &mut WriteTx,
        scope: &Scope,
        uuid: &str,
    ) -> Result<Option<Self>> {
        Ok(reg
            .db
            .delete_autoprune_policy(w, &scope.namespace, scope.repository(), uuid)
            .await?
            .map(AutoPrunePolicy::from))
    }

    async fn changed(_: &Registry, _: &mut WriteTx, _: &Scope) -> Result<()> {
        Ok(())
    }

    /// A new or changed policy is applied at once rather than at the next poll
    /// (`AUTO_PRUNING_POLL_PERIOD`), in the background so the answer does not wait for it;
    /// should this process stop first, the next poll applies it.
    fn committed(reg: &Registry, p: &Self) {
        if !reg.config.gc.autoprune {
            return;
        }
        let reg = reg.clone();
        let p = p.clone();
        tokio::spawn(async move {
            match reg.prune_apply(&p).await {
                Ok(done) if !done.is_empty() => {
                    tracing::info!(policy = %p.uuid, pruned = done.len(), "applied a new auto-prune policy");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(policy = %p.uuid, error = %e, "applying a new auto-prune policy failed; the next poll retries")
                }
            }
        });
    }
}
