//! Security policies: a namespace may refuse pulls (and pushes) of images with vulnerabilities
//! at or above a severity, fixable ones only if it says so, except the ids it allows. Pulls read
//! the manifest's stored match (never a match on the request) and policies from a cache renewed
//! every few seconds, so a namespace without a policy costs a pull nothing. Every refusal is
//! audited and tells the client why.

use super::summary::VulnBrief;
use super::{ScanStatus, Severity};
use crate::auth::authz::require_superuser;
use crate::auth::{AccountKind, Actor, Auth, Who};
use crate::caller::{Caller, record_in};
use crate::{Error, Registry, Result};
use berth_db::SecurityPolicyRow;
use berth_oci::RepoName;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a policy change may take to reach every instance's pulls.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(5);

/// A namespace's policy.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityPolicy {
    pub min_severity: Severity,
    pub block_pull: bool,
    pub block_push: bool,
    /// Only vulnerabilities with a known fix count.
    pub only_fixable: bool,
    /// Ids (record ids or aliases: `CVE-…`, `GHSA-…`) that never count.
    pub allowlist: Vec<String>,
    pub updated_at: i64,
}

impl SecurityPolicy {
    fn from_row(r: &SecurityPolicyRow) -> SecurityPolicy {
        SecurityPolicy {
            min_severity: Severity::parse(&r.min_severity).unwrap_or(Severity::Critical),
            block_pull: r.block_pull != 0,
            block_push: r.block_push != 0,
            only_fixable: r.only_fixable != 0,
            allowlist: serde_json::from_str(&r.allowlist).unwrap_or_default(),
            updated_at: r.updated_at,
        }
    }

    /// The vulnerabilities of `vulns` this policy counts against an image.
    pub fn violations<'a>(&self, vulns: &'a [VulnBrief]) -> Vec<&'a VulnBrief> {
        vulns
            .iter()
            .filter(|v| v.severity >= self.min_severity && v.severity > Severity::Unknown)
            .filter(|v| !self.only_fixable || v.fixable)
            .filter(|v| {
                !self.allowlist.iter().any(|a| {
                    a.eq_ignore_ascii_case(&v.id)
                        || v.aliases.iter().any(|x| x.eq_ignore_ascii_case(a))
                })
            })
            .collect()
    }
}

type Policies = Arc<HashMap<String, SecurityPolicy>>;

/// Policies by namespace, as last read (and when).
#[derive(Default)]
pub struct PolicyCache {
    inner: tokio::sync::RwLock<Option<(Instant, Policies)>>,
}

impl PolicyCache {
    pub(crate) async fn clear(&self) {
        *self.inner.write().await = None;
    }
}

/// What a policy gate is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Pull,
    Push,
}

impl Registry {
    async fn policies(&self) -> Result<Policies> {
        if let Some((at, p)) = self.scan_policies.inner.read().await.as_ref()
            && at.elapsed() < POLICY_CACHE_TTL
        {
            return Ok(p.clone());
        }
        let rows = self.db.security_policies().await?;
        let map: HashMap<String, SecurityPolicy> = rows
            .iter()
            .map(|r| (r.namespace.clone(), SecurityPolicy::from_row(r)))
            .collect();
        let map = Arc::new(map);
        *self.scan_policies.inner.write().await = Some((Instant::now(), map.clone()));
        Ok(map)
    }

    /// Refuses (`Denied`, audited) a pull or push of manifest `digest` in `repo` that its
    /// namespace's policy forbids. Images not matched yet pass (their layers are still being
    /// indexed); so does everything when scanning is off.
    pub(crate) async fn policy_gate(
        &self,
        who: Option<&Who>,
        repo: &RepoName,
        digest: &str,
        gate: Gate,
    ) -> Result<()> {
        if !self.config.scan.enabled {
            return Ok(());
        }
        let Some(p) = self.policy_for(repo.namespace()).await? else {
            return Ok(());
        };
        if (gate == Gate::Pull && !p.block_pull) || (gate == Gate::Push && !p.block_push) {
            return Ok(());
        }
        let scans = self.scan_summaries(&[digest.to_string()]).await?;
        let Some(s) = scans.get(digest) else {
            return Ok(());
        };
        if s.status != ScanStatus::Scanned {
            return Ok(());
        }
        self.refuse_if_violating(who, repo, digest, &p, &s.vulns, gate)
            .await
    }

    /// The namespace's policy, from the cache.
    pub(crate) async fn policy_for(&self, ns: &str) -> Result<Option<SecurityPolicy>> {
        Ok(self.policies().await?.get(ns).cloned())
    }

    /// `Denied` (audited, counted) when `vulns` violate `p`.
    pub(crate) async fn refuse_if_violating(
        &self,
        who: Option<&Who>,
        repo: &RepoName,
        digest: &str,
        p: &SecurityPolicy,
        vulns: &[VulnBrief],
        gate: Gate,
    ) -> Result<()> {
        let bad = p.violations(vulns);
        if bad.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<String> = bad
            .iter()
            .map(|v| format!("{} ({})", v.id, v.severity.as_str()))
            .collect();
        let total = ids.len();
        ids.truncate(5);
        let more = if total > 5 {
            format!(" and {} more", total - 5)
        } else {
            String::new()
        };
        let verb = if gate == Gate::Pull { "pull" } else { "push" };
        let message = format!(
            "{verb} refused by the security policy of {}: {repo}@{digest} has {total} vulnerabilities at or above {}{}: {}{more}; fix them, or ask an administrator of {} to allow their ids",
            repo.namespace(),
            p.min_severity.as_str(),
            if p.only_fixable { " with a fix" } else { "" },
            ids.join(", "),
            repo.namespace(),
        );
        let anonymous = Who::new(None, None);
        let who = who.unwrap_or(&anonymous);
        self.db
            .insert_audit(&[who
                .entry(if gate == Gate::Pull {
                    "security_policy_refuse_pull"
                } else {
                    "security_policy_refuse_push"
                })
                .repo(repo.as_str())
                .meta(serde_json::json!({
                    "manifest_digest": digest,
                    "vulnerabilities": bad.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(),
                    "min_severity": p.min_severity.as_str(),
                }))
                .row()])
            .await?;
        metrics::counter!("berth_scan_policy_refusals_total", "action" => verb).increment(1);
        Err(Error::denied(message))
    }
}

/// The door to namespaces' security policies.
pub struct SecurityPolicies<'a> {
    registry: &'a Registry,
    auth: &'a Auth,
}

impl<'a> SecurityPolicies<'a> {
    pub fn new(registry: &'a Registry, auth: &'a Auth) -> SecurityPolicies<'a> {
        SecurityPolicies { registry, auth }
    }

    /// The namespace, if `actor` may read (`admin` false) or change (`admin` true) its policy:
    /// an organization's members may read it and its administrators change it; a user their
    /// own; a superuser any.
    async fn namespace(&self, actor: &Actor, ns: &str, admin: bool) -> Result<String> {
        let acct = self
            .auth
            .account(ns)
            .await?
            .filter(|a| matches!(a.kind, AccountKind::Org | AccountKind::User))
            .ok_or_else(|| Error::not_found(format!("no organization or user namespace {ns:?}")))?;
        if require_superuser(actor).is_ok() {
            return Ok(acct.name);
        }
        if acct.kind == AccountKind::User {
            if actor.name == acct.name {
                return Ok(acct.name);
            }
            return Err(Error::denied(format!(
                "only {:?} and superusers may see or change this policy",
                acct.name
            )));
        }
        let role = self.auth.org_role(actor, &acct).await?;
        if role.admin || (!admin && role.member) {
            return Ok(acct.name);
        }
        Err(Error::denied(if admin {
            format!(
                "only administrators of {:?} may change its security policy",
                acct.name
            )
        } else {
            format!("you are not a member of organization {:?}", acct.name)
        }))
    }

    pub async fn get(&self, actor: &Actor, ns: &str) -> Result<Option<SecurityPolicy>> {
        let ns = self.namespace(actor, ns, false).await?;
        Ok(self
            .registry
            .db
            .security_policies()
            .await?
            .iter()
            .find(|r| r.namespace == ns)
            .map(SecurityPolicy::from_row))
    }

    pub async fn set(
        &self,
        caller: Caller<'_>,
        ns: &str,
        p: &SecurityPolicy,
    ) -> Result<SecurityPolicy> {
        let ns = self.namespace(caller.actor, ns, true).await?;
        if p.min_severity <= Severity::Unknown {
            return Err(Error::invalid(
                "min_severity must be Negligible, Low, Medium, High or Critical",
            ));
        }
        let mut allow: Vec<String> = p
            .allowlist
            .iter()
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        allow.sort();
        allow.dedup();
        if allow.len() > 1000 {
            return Err(Error::invalid("an allow-list holds at most 1000 ids"));
        }
        let row = SecurityPolicyRow {
            namespace: ns.clone(),
            min_severity: p.min_severity.as_str().to_string(),
            block_pull: i64::from(p.block_pull),
            block_push: i64::from(p.block_push),
            only_fixable: i64::from(p.only_fixable),
            allowlist: serde_json::to_string(&allow).unwrap_or_else(|_| "[]".into()),
            updated_at: berth_db::now_ms(),
        };
        let db = &self.registry.db;
        let mut w = db.write().await?;
        db.put_security_policy(&mut w, &row).await?;
        let entry = caller
            .audit("change_security_policy")
            .namespace(&ns)
            .meta(serde_json::json!({
                "namespace": ns, "min_severity": row.min_severity, "block_pull": p.block_pull,
                "block_push": p.block_push, "only_fixable": p.only_fixable, "allowlist": allow,
            }));
        record_in(db, &mut w, entry).await?;
        w.commit().await?;
        self.registry.scan_policies.clear().await;
        Ok(SecurityPolicy::from_row(&row))
    }

    pub async fn delete(&self, caller: Caller<'_>, ns: &str) -> Result<()> {
        let ns = self.namespace(caller.actor, ns, true).await?;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        if !db.delete_security_policy(&mut w, &ns).await? {
            return Err(Error::not_found(format!("{ns} has no security policy")));
        }
        let entry = caller
            .audit("delete_security_policy")
            .namespace(&ns)
            .meta(serde_json::json!({"namespace": ns}));
        record_in(db, &mut w, entry).await?;
        w.commit().await?;
        self.registry.scan_policies.clear().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str, s: Severity, fixable: bool, aliases: &[&str]) -> VulnBrief {
        VulnBrief {
            id: id.into(),
            severity: s,
            fixable,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            packages: Vec::new(),
            summary: String::new(),
            link: String::new(),
        }
    }

    #[test]
    fn what_counts_against_an_image() {
        let p = SecurityPolicy {
            min_severity: Severity::High,
            block_pull: true,
            block_push: false,
            only_fixable: true,
            allowlist: vec!["cve-2021-1".into()],
            updated_at: 0,
        };
        let vulns = vec![
            v("GHSA-a", Severity::Critical, true, &["CVE-2021-1"]),
            v("GHSA-b", Severity::Critical, false, &[]),
            v("GHSA-c", Severity::Medium, true, &[]),
            v("GHSA-d", Severity::High, true, &[]),
        ];
        let bad: Vec<&str> = p.violations(&vulns).iter().map(|v| v.id.as_str()).collect();
        assert_eq!(
            bad,
            vec!["GHSA-d"],
            "allowed by alias, unfixable, below the severity"
        );
    }
}
