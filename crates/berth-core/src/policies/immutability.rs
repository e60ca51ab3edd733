//! Immutability policies (Quay's `immutabilitypolicy`): tags whose name matches a pattern (or,
//! with `tagPatternMatches: false`, does not) cannot be moved, deleted or expired.

use super::store::Store;
use super::{Scope, ScopedPolicy, Verb, check_tag_pattern};
use crate::{Error, Registry, Result};
use berth_db::{ImmutabilityPolicyRow, WriteTx};
use berth_oci::RepoName;

/// An immutability policy: tags of its scope whose name matches `pattern` (or, when `matches`
/// is false, does not) cannot be moved, deleted or expired.
#[derive(Debug, Clone, PartialEq)]
pub struct ImmutabilityPolicy {
    pub uuid: String,
    pub namespace: String,
    /// `None`: every repository of the namespace.
    pub repository: Option<String>,
    pub pattern: String,
    pub matches: bool,
}

impl From<ImmutabilityPolicyRow> for ImmutabilityPolicy {
    fn from(r: ImmutabilityPolicyRow) -> ImmutabilityPolicy {
        ImmutabilityPolicy {
            uuid: r.uuid,
            namespace: r.namespace,
            repository: r.repository,
            pattern: r.pattern,
            matches: r.matches,
        }
    }
}

impl ImmutabilityPolicy {
    fn row(&self) -> ImmutabilityPolicyRow {
        ImmutabilityPolicyRow {
            uuid: self.uuid.clone(),
            namespace: self.namespace.clone(),
            repository: self.repository.clone(),
            pattern: self.pattern.clone(),
            matches: self.matches,
        }
    }
}

/// The settings of an immutability policy, as given.
#[derive(Debug, Clone, Default)]
pub struct ImmutabilityFields {
    /// Required: a regular expression of at most 256 characters.
    pub tag_pattern: Option<String>,
    /// Whether matching tags are the protected ones (default true).
    pub tag_pattern_matches: Option<bool>,
}

impl ScopedPolicy for ImmutabilityPolicy {
    const NOUN: &'static str = "immutability policy";
    type Fields = ImmutabilityFields;

    fn uuid(&self) -> &str {
        &self.uuid
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"uuid": self.uuid, "tagPattern": self.pattern, "tagPatternMatches": self.matches})
    }
}

impl Store for ImmutabilityPolicy {
    fn build(scope: &Scope, uuid: String, fields: ImmutabilityFields) -> Result<Self> {
        let pattern = fields
            .tag_pattern
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::invalid("field \"tagPattern\" is required (a string)"))?;
        check_tag_pattern(&pattern)?;
        Ok(ImmutabilityPolicy {
            uuid,
            namespace: scope.namespace.clone(),
            repository: scope.repository.clone(),
            pattern,
            matches: fields.tag_pattern_matches.unwrap_or(true),
        })
    }

    fn audit_kind(verb: Verb, _: &Scope) -> String {
        format!("{}_immutability_policy", verb.as_str())
    }

    fn deleted_meta(&self) -> serde_json::Value {
        serde_json::json!({"uuid": self.uuid})
    }

    async fn list_at(reg: &Registry, scope: &Scope) -> Result<Vec<Self>> {
        Ok(reg
            .db
            .immutability_policies_at(&scope.namespace, scope.repository())
            .await?
            .into_iter()
            .map(ImmutabilityPolicy::from)
            .collect())
    }

    async fn insert(reg: &Registry, w: &mut WriteTx, p: &Self) -> Result<()> {
        Ok(reg.db.insert_immutability_policy(w, &p.row()).await?)
    }

    async fn update(reg: &Registry, w: &mut WriteTx, p: &Self) -> Result<bool> {
        Ok(reg.db.update_immutability_policy(w, &p.row()).await?)
    }

    async fn delete(
        reg: &Registry,
        w: &mut WriteTx,
        scope: &Scope,
        uuid: &str,
    ) -> Result<Option<Self>> {
        Ok(reg
            .db
            .delete_immutability_policy(w, &scope.namespace, scope.repository(), uuid)
            .await?
            .map(ImmutabilityPolicy::from))
    }

    /// Tags the policies of the scope now protect lose their expiry (unless
    /// `FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE`), in the policy's own transaction: a protected tag
    /// must never be left to expire.
    async fn changed(reg: &Registry, w: &mut WriteTx, scope: &Scope) -> Result<()> {
        if reg.config.immutable_tags_can_expire {
            return Ok(());
        }
        let policies = reg.db.immutability_policies_in(w, &scope.namespace).await?;
        let expiring = reg
            .db
            .expiring_tags_in(w, &scope.namespace, scope.repository())
            .await?;
        for repo in expiring.chunk_by(|a, b| a.0 == b.0) {
            let (id, name, _) = &repo[0];
            let rules = ImmutabilityRules::for_repo(&policies, name);
            let protected: Vec<String> = repo
                .iter()
                .filter(|(_, _, tag)| rules.protects(tag))
                .map(|(_, _, tag)| tag.clone())
                .collect();
            reg.db.clear_tag_expiry_in(w, *id, &protected).await?;
        }
        Ok(())
    }

    fn committed(_: &Registry, _: &Self) {}
}

/// The immutability policies that apply to one repository (its namespace's and its own), each
/// pattern compiled once.
#[derive(Debug, Clone, Default)]
pub struct ImmutabilityRules(Vec<(regex::Regex, bool)>);

impl ImmutabilityRules {
    /// The rules of `policies` that apply to repository `repo` (a stored pattern that no longer
    /// compiles protects nothing).
    pub(crate) fn for_repo(policies: &[ImmutabilityPolicyRow], repo: &str) -> ImmutabilityRules {
        ImmutabilityRules(
            policies
                .iter()
                .filter(|p| p.repository.as_deref().is_none_or(|r| r == repo))
                .filter_map(|p| regex::Regex::new(&p.pattern).ok().map(|re| (re, p.matches)))
                .collect(),
        )
    }

    /// Whether a policy makes tag `name` immutable.
    pub fn protects(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|(re, matches)| re.is_match(name) == *matches)
    }
}

impl Registry {
    /// The immutability policies that apply to `repo`, ready to test tag names against.
    pub async fn immutability_rules(&self, repo: &RepoName) -> Result<ImmutabilityRules> {
        let policies = self
            .db
            .immutability_policies_for(repo.namespace(), repo.as_str())
            .await?;
        Ok(ImmutabilityRules::for_repo(&policies, repo.as_str()))
    }
}
