//! The quota use cases of the API: reading a namespace's quota, its thresholds and usage
//! (members of the namespace, and superusers), and creating and changing them (superusers, when
//! `FEATURE_QUOTA_MANAGEMENT` and `FEATURE_EDIT_QUOTA` are on), each change in one transaction
//! with its audit record.

use super::{RepoUsage, parse_size};
use crate::auth::authz::require_superuser;
use crate::auth::{AccountKind, Actor, Auth, Role};
use crate::caller::{Caller, record_in};
use crate::{Account, Error, QuotaLimit, QuotaRow, Registry, Result};
use berth_db::QuotaLimitKind;
use berth_oci::RepoName;

/// The namespace a quota path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaPath<'a> {
    /// `/organization/{orgname}/quota…`: an organization or, as in Quay, a user's namespace (so
    /// that user namespaces take thresholds as organizations do). Read by its members.
    Namespace(&'a str),
    /// `/user/quota…`: the caller's own namespace (needs `user:read`).
    Own,
    /// `/superuser/{users|organization}/{namespace}/quota…`: any namespace, for superusers.
    Superuser(&'a str),
}

/// A namespace's quota as the API shows it, with the namespace's usage.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceQuota {
    /// `None` for the system default.
    pub id: Option<i64>,
    pub limit_bytes: i64,
    pub limits: Vec<QuotaThreshold>,
    pub usage_bytes: i64,
    /// This is the system default (`DEFAULT_SYSTEM_REJECT_QUOTA_BYTES`), not the namespace's own.
    pub is_default: bool,
    /// A system default exists.
    pub default_exists: bool,
}

/// A warning or reject threshold, in percent of the quota.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaThreshold {
    /// `None` for the system default's.
    pub id: Option<i64>,
    pub kind: QuotaLimitKind,
    pub percent: i64,
}

/// A quota's size as given: `limit_bytes`, or `limit` such as `10 GiB`.
#[derive(Debug, Clone, Default)]
pub struct QuotaSize {
    pub limit_bytes: Option<i64>,
    pub limit: Option<String>,
}

/// A threshold's settings as given; on a change, what is absent stays as it was.
#[derive(Debug, Clone, Default)]
pub struct ThresholdFields {
    pub kind: Option<String>,
    pub percent: Option<i64>,
}

impl QuotaSize {
    pub(crate) fn bytes(&self) -> Result<i64> {
        let v = match (self.limit_bytes, &self.limit) {
            (Some(n), _) => Some(n),
            (None, Some(s)) => Some(parse_size(s).ok_or_else(|| {
                Error::invalid(format!(
                    "limit {s:?} is not a size such as \"500 MiB\" or \"10 GiB\""
                ))
            })?),
            (None, None) => None,
        };
        match v {
            Some(n) if n > 0 => Ok(n),
            Some(_) => Err(Error::invalid("a quota must be larger than 0 bytes")),
            None => Err(Error::invalid(
                "give limit_bytes (an integer) or limit (such as \"10 GiB\")",
            )),
        }
    }
}

impl ThresholdFields {
    /// (kind, percent), filling what is absent from `current`.
    pub(crate) fn resolve(&self, current: Option<&QuotaLimit>) -> Result<(QuotaLimitKind, i64)> {
        let kind = match (self.kind.as_deref(), current) {
            (Some(k), _) => k.parse::<QuotaLimitKind>().map_err(|_| {
                Error::invalid(format!("type must be Warning or Reject, not {k:?}"))
            })?,
            (None, Some(l)) => l.kind,
            (None, None) => return Err(Error::invalid("type (Warning or Reject) is required")),
        };
        let pct = self
            .percent
            .or(current.map(|l| l.percent))
            .ok_or_else(|| Error::invalid("threshold_percent (an integer) is required"))?;
        if !(1..=100).contains(&pct) {
            return Err(Error::invalid(
                "threshold_percent must be between 1 and 100",
            ));
        }
        Ok((kind, pct))
    }
}

/// The caller's own namespace, if the credential may read the caller's account.
fn own(actor: &Actor) -> Result<&str> {
    if !actor.has_scope("user:read") {
        return Err(Error::denied("this token lacks the user:read scope"));
    }
    Ok(&actor.name)
}

fn threshold(l: &QuotaLimit) -> QuotaThreshold {
    QuotaThreshold {
        id: Some(l.id),
        kind: l.kind,
        percent: l.percent,
    }
}

/// A quota id from a path; one that is not a number names no quota.
fn quota_id(id: &str) -> Result<i64> {
    id.parse().map_err(|_| Error::not_found("no such quota"))
}

fn find_limit(q: &QuotaRow, limit_id: &str) -> Result<QuotaLimit> {
    let id: i64 = limit_id
        .parse()
        .map_err(|_| Error::not_found("no such quota limit"))?;
    q.limits
        .iter()
        .find(|l| l.id == id)
        .cloned()
        .ok_or_else(|| Error::not_found(format!("the quota has no limit {id}")))
}

/// The quota use cases. Cheap: make one per request.
#[derive(Clone, Copy)]
pub struct Quotas<'a> {
    registry: &'a Registry,
    auth: &'a Auth,
}

impl<'a> Quotas<'a> {
    pub fn new(registry: &'a Registry, auth: &'a Auth) -> Quotas<'a> {
        Quotas { registry, auth }
    }

    /// The account of the namespace a path names: an organization or user for
    /// [`QuotaPath::Namespace`], any account for a superuser's path (which needs a superuser).
    async fn account(&self, actor: &Actor, path: &QuotaPath<'_>) -> Result<Account> {
        let (name, any_kind, missing) = match path {
            QuotaPath::Namespace(n) => (*n, false, "no organization or user namespace"),
            QuotaPath::Superuser(n) => {
                require_superuser(actor)?;
                (*n, true, "no namespace")
            }
            QuotaPath::Own => (own(actor)?, true, "no namespace"),
        };
        self.auth
            .account(name)
            .await?
            .filter(|a| any_kind || matches!(a.kind, AccountKind::Org | AccountKind::User))
            .ok_or_else(|| Error::not_found(format!("{missing} {name:?}")))
    }

    /// The namespace, if the caller may read its quota: an organization's members, the user of
    /// a user namespace, or a superuser.
    async fn readable(&self, actor: &Actor, path: &QuotaPath<'_>) -> Result<String> {
        match path {
            QuotaPath::Own => return Ok(own(actor)?.to_string()),
            QuotaPath::Superuser(_) => return Ok(self.account(actor, path).await?.name),
            QuotaPath::Namespace(_) => {}
        }
        let acct = self.account(actor, path).await?;
        if acct.kind == AccountKind::User {
            if actor.name != acct.name && require_superuser(actor).is_err() {
                return Err(Error::denied(format!(
                    "only {:?} and superusers may read this quota",
                    acct.name
                )));
            }
            return Ok(acct.name);
        }
        let role = self.auth.org_role(actor, &acct).await?;
        if !role.member && !role.admin {
            return Err(Error::denied(format!(
                "you are not a member of organization {:?}",
                acct.name
            )));
        }
        Ok(acct.name)
    }

    /// Refuses unless the caller may change quotas.
    fn may_edit(&self, actor: &Actor) -> Result<()> {
        require_superuser(actor)?;
        let q = &self.registry.config.quota;
        if !q.enabled || !q.edit {
            return Err(Error::denied(
                "quotas cannot be edited here (FEATURE_QUOTA_MANAGEMENT and FEATURE_EDIT_QUOTA)",
            ));
        }
        Ok(())
    }

    /// The namespace's own quota `id`.
    async fn quota_of(&self, ns: &str, id: &str) -> Result<QuotaRow> {
        let id = quota_id(id)?;
        self.registry
            .db
            .quota_for(ns)
            .await?
            .filter(|q| q.id == id)
            .ok_or_else(|| Error::not_found(format!("namespace {ns} has no quota {id}")))
    }

    fn view(&self, q: &QuotaRow, usage_bytes: i64) -> NamespaceQuota {
        NamespaceQuota {
            id: Some(q.id),
            limit_bytes: q.limit_bytes,
            limits: q.limits.iter().map(threshold).collect(),
            usage_bytes,
            is_default: false,
            default_exists: self.registry.config.quota.system_reject_bytes > 0,
        }
    }

    async fn with_usage(&self, q: &QuotaRow) -> Result<NamespaceQuota> {
        let usage = self.registry.namespace_usage(&q.namespace).await?;
        Ok(self.view(q, usage))
    }

    /// The namespace's quotas as Quay lists them: its own, else the system default, else none.
    pub async fn list(&self, actor: &Actor, path: &QuotaPath<'_>) -> Result<Vec<NamespaceQuota>> {
        let ns = self.readable(actor, path).await?;
        let usage = self.registry.namespace_usage(&ns).await?;
        let sys = self.registry.config.quota.system_reject_bytes;
        Ok(match self.registry.db.quota_for(&ns).await? {
            Some(q) => vec![self.view(&q, usage)],
            None if sys > 0 => vec![NamespaceQuota {
                id: None,
                limit_bytes: sys,
                limits: vec![QuotaThreshold {
                    id: None,
                    kind: QuotaLimitKind::Reject,
                    percent: 100,
                }],
                usage_bytes: usage,
                is_default: true,
                default_exists: true,
            }],
            None => Vec::new(),
        })
    }

    /// Every namespace's own quota with its usage, by namespace, for superusers; and whether
    /// quotas may be edited here.
    pub async fn all(&self, actor: &Actor) -> Result<(Vec<(String, NamespaceQuota)>, bool)> {
        require_superuser(actor)?;
        let db = &self.registry.db;
        let mut out = Vec::new();
        for ns in db.quota_namespaces().await? {
            if let Some(q) = db.quota_for(&ns).await? {
                out.push((ns, self.with_usage(&q).await?));
            }
        }
        Ok((out, self.may_edit(actor).is_ok()))
    }

    /// One quota of the namespace, with its usage.
    pub async fn get(
        &self,
        actor: &Actor,
        path: &QuotaPath<'_>,
        quota: &str,
    ) -> Result<NamespaceQuota> {
        let ns = self.readable(actor, path).await?;
        let q = self.quota_of(&ns, quota).await?;
        self.with_usage(&q).await
    }

    /// A quota's thresholds.
    pub async fn thresholds(
        &self,
        actor: &Actor,
        path: &QuotaPath<'_>,
        quota: &str,
    ) -> Result<Vec<QuotaThreshold>> {
        let ns = self.readable(actor, path).await?;
        let q = self.quota_of(&ns, quota).await?;
        Ok(q.limits.iter().map(threshold).collect())
    }

    /// One threshold of a quota.
    pub async fn threshold(
        &self,
        actor: &Actor,
        path: &QuotaPath<'_>,
        quota: &str,
        limit: &str,
    ) -> Result<QuotaThreshold> {
        let ns = self.readable(actor, path).await?;
        let q = self.quota_of(&ns, quota).await?;
        find_limit(&q, limit).map(|l| threshold(&l))
    }

    /// Gives the namespace a quota; answers its id.
    pub async fn create(
        &self,
        caller: Caller<'_>,
        path: &QuotaPath<'_>,
        size: &QuotaSize,
    ) -> Result<i64> {
        let ns = self.account(caller.actor, path).await?.name;
        self.may_edit(caller.actor)?;
        let bytes = size.bytes()?;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        let Some(id) = db.create_quota(&mut w, &ns, bytes).await? else {
            return Err(Error::exists(format!(
                "namespace {ns} already has a quota; change it with PUT"
            )));
        };
        let entry = caller
            .audit("org_create_quota")
            .namespace(&ns)
            .meta(serde_json::json!({"namespace": ns, "limit_bytes": bytes, "quota_id": id}));
        record_in(db, &mut w, entry).await?;
        w.commit().await?;
        Ok(id)
    }

    /// Changes a quota's size; answers the quota as it now is.
    pub async fn update(
        &self,
        caller: Caller<'_>,
        path: &QuotaPath<'_>,
        quota: &str,
        size: &QuotaSize,
    ) -> Result<NamespaceQuota> {
        let ns = self.account(caller.actor, path).await?.name;
        self.may_edit(caller.actor)?;
        let q = self.quota_of(&ns, quota).await?;
        let bytes = size.bytes()?;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        if !db.update_quota(&mut w, q.id, &ns, bytes).await? {
            return Err(Error::not_found(format!(
                "namespace {ns} has no quota {}",
                q.id
            )));
        }
        let entry = caller
            .audit("org_change_quota")
            .namespace(&ns)
            .meta(serde_json::json!({"namespace": ns, "limit_bytes": bytes, "quota_id": q.id}));
        record_in(db, &mut w, entry).await?;
        w.commit().await?;
        let q = self.quota_of(&ns, quota).await?;
        self.with_usage(&q).await
    }

    /// Removes a quota and its thresholds.
    pub async fn delete(
        &self,
        caller: Caller<'_>,
        path: &QuotaPath<'_>,
        quota: &str,
    ) -> Result<()> {
        let ns = self.account(caller.actor, path).await?.name;
        self.may_edit(caller.actor)?;
        let q = self.quota_of(&ns, quota).await?;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        if !db.delete_quota(&mut w, q.id, &ns).await? {
            return Err(Error::not_found(format!(
                "namespace {ns} has no quota {}",
                q.id
            )));
        }
        let entry = caller
            .audit("org_delete_quota")
            .namespace(&ns)
            .meta(serde_json::json!({"namespace": ns, "quota_id": q.id}));
        record_in(db, &mut w, entry).await?;
        Ok(w.commit().await?)
    }

    /// Adds a Warning or Reject threshold (one of each per quota).
    pub async fn add_threshold(
        &self,
        caller: Caller<'_>,
        path: &QuotaPath<'_>,
        quota: &str,
        fields: &ThresholdFields,
    ) -> Result<QuotaThreshold> {
        self.may_edit(caller.actor)?;
        let ns = self.account(caller.actor, path).await?.name;
        let q = self.quota_of(&ns, quota).await?;
        let (kind, pct) = fields.resolve(None)?;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        let Some(id) = db.add_quota_limit(&mut w, q.id, kind, pct).await? else {
            return Err(Error::exists(format!(
                "the quota already has a {kind} threshold; change it with PUT"
            )));
        };
        let entry = caller.audit("org_create_quota_limit").namespace(&ns).meta(serde_json::json!({
            "namespace": ns, "quota_id": q.id, "limit_id": id, "type": kind, "threshold_percent": pct,
        }));
        record_in(db, &mut w, entry).await?;
        w.commit().await?;
        Ok(QuotaThreshold {
            id: Some(id),
            kind,
            percent: pct,
        })
    }

    /// Changes a threshold; what `fields` leaves out stays as it was.
    pub async fn update_threshold(
        &self,
        caller: Caller<'_>,
        path: &QuotaPath<'_>,
        quota: &str,
        limit: &str,
        fields: &ThresholdFields,
    ) -> Result<QuotaThreshold> {
        self.may_edit(caller.actor)?;
        let ns = self.account(caller.actor, path).await?.name;
        let q = self.quota_of(&ns, quota).await?;
        let l = find_limit(&q, limit)?;
        let (kind, pct) = fields.resolve(Some(&l))?;
        let id = l.id;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        if !db.update_quota_limit(&mut w, q.id, id, kind, pct).await? {
            return Err(Error::not_found(format!("the quota has no limit {id}")));
        }
        let entry = caller.audit("org_change_quota_limit").namespace(&ns).meta(serde_json::json!({
            "namespace": ns, "quota_id": q.id, "limit_id": id, "type": kind, "threshold_percent": pct,
        }));
        record_in(db, &mut w, entry).await?;
        w.commit().await?;
        Ok(QuotaThreshold {
            id: Some(id),
            kind,
            percent: pct,
        })
    }

    /// Removes a threshold.
    pub async fn delete_threshold(
        &self,
        caller: Caller<'_>,
        path: &QuotaPath<'_>,
        quota: &str,
        limit: &str,
    ) -> Result<()> {
        self.may_edit(caller.actor)?;
        let ns = self.account(caller.actor, path).await?.name;
        let q = self.quota_of(&ns, quota).await?;
        let id = find_limit(&q, limit)?.id;
        let db = &self.registry.db;
        let mut w = db.write().await?;
        if !db.delete_quota_limit(&mut w, q.id, id).await? {
            return Err(Error::not_found(format!("the quota has no limit {id}")));
        }
        let entry = caller
            .audit("org_delete_quota_limit")
            .namespace(&ns)
            .meta(serde_json::json!({"namespace": ns, "quota_id": q.id, "limit_id": id}));
        record_in(db, &mut w, entry).await?;
        Ok(w.commit().await?)
    }

    /// Storage of a repository the caller may read: after deduplication, what deleting it
    /// would free, and the same for each live tag.
    pub async fn repo_usage(&self, actor: Option<&Actor>, repo: &str) -> Result<RepoUsage> {
        self.auth.repo_with_role(actor, repo, Role::Read).await?;
        let name: RepoName = repo
            .parse()
            .map_err(|_| Error::invalid("invalid repository name"))?;
        self.registry.repo_usage(&name).await
    }
}
