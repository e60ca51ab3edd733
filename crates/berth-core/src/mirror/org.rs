//! Organization mirroring (Quay's org mirror): every repository of a namespace on another
//! registry — found through Quay's API, Harbor's, or `/v2/_catalog` of any OCI registry — and
//! matching the repository filters is mirrored into the organization.
//!
//! Discovery is the organization's cycle: claimed like a repository mirror's sync, it lists the
//! upstream namespace, then in one transaction (which also releases the claim, so a cancel or a
//! change made meanwhile wins) records what it found, creates each new repository in state
//! ORG_MIRROR with a repository mirror of its own (all tags, the organization's robot, interval
//! and credentials), updates the existing ones, and disables the mirrors of repositories that
//! left the namespace or the filters (their tags stay). The repository mirrors then sync like
//! any other, with their leases, runs and logs.

use super::{MAX_RETRIES, RegistryConfig, fnmatch};
use crate::auth::{Actor, Who};
use crate::caller::Caller;
use crate::jobs::{Job, JobContext, JobResult};
use crate::{Error, Registry, Result};
use berth_db::{
    Grantee, MirrorRow, MirrorStatus, OrgMirrorRow, RepoState, Role, Visibility, now_ms,
};
use berth_registry_client::{NamespaceApi, RegistryClient};
use std::time::Duration;

/// Where an organization mirror finds the upstream namespace's repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgRegistryType {
    /// Quay's API (`/api/v1/repository?namespace=`); Berth serves it too.
    Quay,
    /// Harbor's API (`/api/v2.0/projects/{project}/repositories`).
    Harbor,
    /// Any OCI registry's `/v2/_catalog` (Berth's addition).
    Oci,
}

impl OrgRegistryType {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRegistryType::Quay => "quay",
            OrgRegistryType::Harbor => "harbor",
            OrgRegistryType::Oci => "oci",
        }
    }

    pub fn parse(s: &str) -> Result<OrgRegistryType> {
        match s.to_ascii_lowercase().as_str() {
            "quay" => Ok(OrgRegistryType::Quay),
            "harbor" => Ok(OrgRegistryType::Harbor),
            "oci" => Ok(OrgRegistryType::Oci),
            _ => Err(Error::invalid(format!(
                "Invalid external_registry_type: {s:?} (quay, harbor or oci)"
            ))),
        }
    }

    fn api(self) -> NamespaceApi {
        match self {
            OrgRegistryType::Quay => NamespaceApi::Quay,
            OrgRegistryType::Harbor => NamespaceApi::Harbor,
            OrgRegistryType::Oci => NamespaceApi::Catalog,
        }
    }
}

/// An organization mirror's settings as given to create (the required ones) or update (any).
#[derive(Debug, Clone, Default)]
pub struct OrgMirrorSettings {
    pub is_enabled: Option<bool>,
    pub registry_type: Option<OrgRegistryType>,
    pub registry_url: Option<String>,
    pub external_namespace: Option<String>,
    /// `Some(None)` clears.
    pub username: Option<Option<String>>,
    pub password: Option<Option<String>>,
    pub registry_config: Option<RegistryConfig>,
    pub repository_filters: Option<Vec<String>>,
    pub robot_username: Option<String>,
    pub visibility: Option<Visibility>,
    pub sync_interval_s: Option<i64>,
    pub sync_start_at: Option<i64>,
    pub timeout_s: Option<i64>,
}

/// An organization mirror as its administrators see it (never its password).
#[derive(Debug, Clone)]
pub struct OrgMirror {
    pub is_enabled: bool,
    pub registry_type: String,
    pub registry_url: String,
    pub external_namespace: String,
    pub username: Option<String>,
    pub has_password: bool,
    pub registry_config: RegistryConfig,
    pub repository_filters: Vec<String>,
    pub robot_username: String,
    pub visibility: String,
    pub sync_interval_s: i64,
    pub sync_start_at: Option<i64>,
    pub sync_lease_until: Option<i64>,
    pub sync_status: MirrorStatus,
    pub sync_retries_remaining: i64,
    pub timeout_s: i64,
    pub created_at: i64,
    pub last_message: Option<String>,
}

impl From<&OrgMirrorRow> for OrgMirror {
    fn from(m: &OrgMirrorRow) -> OrgMirror {
        OrgMirror {
            is_enabled: m.is_enabled != 0,
            registry_type: m.registry_type.clone(),
            registry_url: m.registry_url.clone(),
            external_namespace: m.external_namespace.clone(),
            username: m.username.clone(),
            has_password: m.password_sealed.is_some(),
            registry_config: serde_json::from_str(&m.registry_config).unwrap_or_default(),
            repository_filters: super::json_list(&m.repository_filters),
            robot_username: m.robot_name.clone(),
            visibility: m.visibility.clone(),
            sync_interval_s: m.sync_interval_s,
            sync_start_at: m.sync_start_at,
            sync_lease_until: m.sync_lease_until,
            sync_status: m.sync_status,
            sync_retries_remaining: m.sync_retries_remaining,
            timeout_s: m.timeout_s,
            created_at: m.created_at,
            last_message: m.last_message.clone(),
        }
    }
}

/// A repository discovery found.
#[derive(Debug, Clone)]
pub struct OrgMirrorRepo {
    pub name: String,
    /// Its repository mirror's status; `SKIP` when it left the namespace or the filters.
    pub sync_status: String,
    pub discovered_at: i64,
    pub last_sync_at: Option<i64>,
    pub status_message: Option<String>,
    /// `org/name`, once the repository exists.
    pub repository: Option<String>,
}

/// A page of discovered repositories.
#[derive(Debug, Clone)]
pub struct OrgMirrorRepoPage {
    pub repositories: Vec<OrgMirrorRepo>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}

/// `scheme://host[:port]` checked: the host and whether it is plain HTTP.
pub fn split_registry_url(url: &str) -> Result<(String, bool)> {
    let bad = || {
        Error::invalid(format!(
            "external_registry_url {url:?} must be http(s)://host[:port] (e.g. https://quay.io)"
        ))
    };
    let u = url::Url::parse(url.trim()).map_err(|_| bad())?;
    let insecure = match u.scheme() {
        "https" => false,
        "http" => true,
        _ => return Err(bad()),
    };
    if !u.username().is_empty()
        || u.password().is_some()
        || u.query().is_some()
        || u.fragment().is_some()
        || !matches!(u.path(), "" | "/")
    {
        return Err(bad());
    }
    let host = u.host_str().ok_or_else(bad)?.to_ascii_lowercase();
    Ok((
        match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        },
        insecure,
    ))
}

impl super::Mirrors<'_> {
    fn org_feature(&self) -> Result<()> {
        let m = &self.registry.config.mirror;
        if m.enabled && m.org_enabled {
            Ok(())
        } else {
            Err(Error::not_found(
                "organization mirroring is off; an administrator turns it on with FEATURE_ORG_MIRROR: true (and FEATURE_REPO_MIRROR: true)",
            ))
        }
    }

    async fn org_row(&self, org: &str) -> Result<OrgMirrorRow> {
        self.registry
            .db
            .org_mirror(org)
            .await?
            .ok_or_else(|| Error::not_found(format!("organization {org} has no mirror")))
    }

    /// The organization's mirror, for its administrators.
    pub async fn org_get(&self, actor: &Actor, org: &str) -> Result<OrgMirror> {
        self.org_feature()?;
        self.auth.org_admin(actor, org).await?;
        Ok(OrgMirror::from(&self.org_row(org).await?))
    }

    /// Mirrors the upstream namespace into the organization (Quay's POST).
    pub async fn org_create(
        &self,
        caller: Caller<'_>,
        org: &str,
        s: &OrgMirrorSettings,
    ) -> Result<()> {
        self.org_feature()?;
        self.auth.org_admin(caller.actor, org).await?;
        let required = |what: &str| Error::invalid(format!("{what} is required"));
        let kind = s
            .registry_type
            .ok_or_else(|| required("external_registry_type"))?;
        for (v, what) in [
            (s.registry_url.is_some(), "external_registry_url"),
            (s.external_namespace.is_some(), "external_namespace"),
            (s.robot_username.is_some(), "robot_username"),
            (s.visibility.is_some(), "visibility"),
            (s.sync_interval_s.is_some(), "sync_interval"),
            (s.sync_start_at.is_some(), "sync_start_date"),
        ] {
            if !v {
                return Err(required(what));
            }
        }
        if self.registry.db.proxy_cache(org).await?.is_some() {
            return Err(Error::invalid(format!(
                "organization {org} is a pull-through cache; an organization is either a cache or a mirror"
            )));
        }
        let own = self.registry.db.own_repo_mirrors_in(org).await?;
        if own > 0 {
            return Err(Error::invalid(format!(
                "{own} repositories of {org} have mirrors of their own; delete them first (an organization mirror manages every mirror of its organization)"
            )));
        }
        let mut row = OrgMirrorRow {
            namespace: org.to_string(),
            is_enabled: 1,
            registry_type: kind.as_str().to_string(),
            registry_url: String::new(),
            external_namespace: String::new(),
            username: None,
            password_sealed: None,
            registry_config: "{}".into(),
            repository_filters: "[]".into(),
            robot_id: 0,
            robot_name: String::new(),
            visibility: Visibility::Private.as_str().to_string(),
            sync_interval_s: 0,
            sync_start_at: None,
            sync_lease_until: None,
            sync_retries_remaining: MAX_RETRIES,
            sync_status: MirrorStatus::NeverRun,
            sync_txn: String::new(),
            timeout_s: 300,
            last_message: None,
            created_at: 0,
            updated_at: 0,
        };
        self.org_apply(org, &mut row, s).await?;
        let mut w = self.registry.db.write().await?;
        if !self.registry.db.put_org_mirror(&mut w, &row, true).await? {
            return Err(Error::invalid(format!(
                "organization {org} already has a mirror; change it with PUT"
            )));
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller
                .audit("org_mirror_enabled")
                .namespace(org)
                .meta(serde_json::json!({
                    "external_registry_type": row.registry_type,
                    "external_registry_url": row.registry_url,
                    "external_namespace": row.external_namespace,
                    "sync_interval": row.sync_interval_s,
                    "robot_username": row.robot_name,
                })),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Changes any of the organization mirror's settings (Quay's PUT); the next discovery
    /// carries them to its repositories' mirrors.
    pub async fn org_update(
        &self,
        caller: Caller<'_>,
        org: &str,
        s: &OrgMirrorSettings,
        fields: &[String],
    ) -> Result<()> {
        self.org_feature()?;
        self.auth.org_admin(caller.actor, org).await?;
        let mut row = self.org_row(org).await?;
        let old_reference = format!("{}/{}", row.registry_url, row.external_namespace);
        self.org_apply(org, &mut row, s).await?;
        if row.sync_status == MirrorStatus::Syncing {
            row.sync_status = MirrorStatus::Fail;
        }
        let mut w = self.registry.db.write().await?;
        self.registry.db.put_org_mirror(&mut w, &row, false).await?;
        if let Some(enabled) = s.is_enabled {
            // The repositories follow the switch now, not at the next discovery (a disabled
            // organization mirror runs none).
            self.registry
                .db
                .set_org_mirrors_enabled(&mut w, org, enabled)
                .await?;
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller
                .audit("org_mirror_config_changed")
                .namespace(org)
                .meta(serde_json::json!({
                    "updated_fields": fields,
                    "old_external_reference": old_reference,
                    "external_reference": format!("{}/{}", row.registry_url, row.external_namespace),
                })),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    async fn org_apply(
        &self,
        org: &str,
        row: &mut OrgMirrorRow,
        s: &OrgMirrorSettings,
    ) -> Result<()> {
        if let Some(v) = s.is_enabled {
            row.is_enabled = i64::from(v);
        }
        if let Some(k) = s.registry_type {
            row.registry_type = k.as_str().to_string();
        }
        if let Some(url) = &s.registry_url {
            let (host, insecure) = split_registry_url(url)?;
            let scheme = if insecure { "http" } else { "https" };
            self.registry
                .outbound_guard()
                .check(&format!("{scheme}://{host}/v2/"))
                .await
                .map_err(|_| Error::invalid("The provided registry URL is not allowed (SSRF_ALLOWED_HOSTS lists the hosts outbound requests may reach)"))?;
            row.registry_url = format!("{scheme}://{host}");
        }
        if let Some(ns) = &s.external_namespace {
            if ns.len() > 255 || ns.parse::<berth_oci::RepoName>().is_err() {
                return Err(Error::invalid(format!(
                    "external_namespace {ns:?} must be a namespace (or path) of the upstream, e.g. library"
                )));
            }
            row.external_namespace = ns.clone();
        }
        if let Some(u) = &s.username {
            row.username = u.clone().filter(|u| !u.is_empty());
            if row.username.is_none() {
                row.password_sealed = None;
            }
        }
        if let Some(p) = &s.password {
            let sealer = self.registry.sealer().await?;
            row.password_sealed = p
                .as_deref()
                .filter(|p| !p.is_empty())
                .map(|p| sealer.seal(p.as_bytes()));
        }
        if let Some(c) = &s.registry_config {
            row.registry_config =
                serde_json::to_string(c).map_err(|e| Error::internal(e.to_string()))?;
        }
        if let Some(f) = &s.repository_filters {
            if f.iter().any(|g| g.trim().is_empty()) {
                return Err(Error::invalid(
                    "repository_filters: a filter is empty (give globs such as [\"app-*\"], or [] for every repository)",
                ));
            }
            row.repository_filters =
                serde_json::to_string(f).map_err(|e| Error::internal(e.to_string()))?;
        }
        if let Some(v) = s.visibility {
            row.visibility = v.as_str().to_string();
        }
        if let Some(i) = s.sync_interval_s {
            if i < 60 {
                return Err(Error::invalid("sync_interval must be at least 60 seconds"));
            }
            row.sync_interval_s = i;
        }
        if let Some(at) = s.sync_start_at {
            row.sync_start_at = Some(at);
        }
        if let Some(t) = s.timeout_s {
            if !(30..=3600).contains(&t) {
                return Err(Error::invalid(
                    "skopeo_timeout must be between 30 and 3600 seconds",
                ));
            }
            row.timeout_s = t;
        }
        if let Some(robot) = &s.robot_username {
            let a = self
                .auth
                .db
                .account_by_name(robot)
                .await?
                .filter(|a| a.kind == berth_db::AccountKind::Robot)
                .ok_or_else(|| Error::invalid(format!("Invalid robot account: {robot}")))?;
            if !robot.starts_with(&format!("{org}+")) {
                return Err(Error::invalid(
                    "Robot account must belong to the organization",
                ));
            }
            row.robot_id = a.id;
            row.robot_name = a.name;
        }
        Ok(())
    }

    /// Ends the organization's mirror (Quay's DELETE): its repositories stay, with their tags,
    /// in NORMAL state.
    pub async fn org_delete(&self, caller: Caller<'_>, org: &str) -> Result<()> {
        self.org_feature()?;
        self.auth.org_admin(caller.actor, org).await?;
        let row = self.org_row(org).await?;
        let mut w = self.registry.db.write().await?;
        if !self.registry.db.delete_org_mirror(&mut w, org).await? {
            return Err(Error::not_found(format!(
                "organization {org} has no mirror"
            )));
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller.audit("org_mirror_disabled").namespace(org).meta(serde_json::json!({
                "external_reference": format!("{}/{}", row.registry_url, row.external_namespace),
            })),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Asks for a discovery (and a sync of every repository) now. Refused while one runs.
    pub async fn org_sync_now(&self, caller: Caller<'_>, org: &str) -> Result<()> {
        self.org_feature()?;
        self.auth.org_admin(caller.actor, org).await?;
        let row = self.org_row(org).await?;
        let mut w = self.registry.db.write().await?;
        if !self.registry.db.org_mirror_sync_now(&mut w, org).await? {
            return Err(Error::invalid(
                "Cannot trigger sync: mirror is currently syncing",
            ));
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller
                .audit("org_mirror_sync_now_requested")
                .namespace(org)
                .meta(serde_json::json!({
                    "external_reference": format!("{}/{}", row.registry_url, row.external_namespace),
                })),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Cancels discovery and every running or requested sync of the organization's
    /// repositories; nothing runs until sync-now.
    pub async fn org_cancel(&self, caller: Caller<'_>, org: &str) -> Result<()> {
        self.org_feature()?;
        self.auth.org_admin(caller.actor, org).await?;
        let row = self.org_row(org).await?;
        let mut w = self.registry.db.write().await?;
        if !self.registry.db.org_mirror_cancel(&mut w, org).await? {
            return Err(Error::invalid("Cannot cancel: mirror is already cancelled"));
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller
                .audit("org_mirror_sync_cancelled")
                .namespace(org)
                .meta(serde_json::json!({
                    "external_reference": format!("{}/{}", row.registry_url, row.external_namespace),
                })),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Tries the upstream with the configured credentials: `(success, message)`.
    pub async fn org_verify(&self, actor: &Actor, org: &str) -> Result<(bool, String)> {
        self.org_feature()?;
        self.auth.org_admin(actor, org).await?;
        let row = self.org_row(org).await?;
        let client = match self.registry.org_mirror_client(&row).await {
            Ok(c) => c,
            Err(e) => return Ok((false, e.to_string())),
        };
        let kind = OrgRegistryType::parse(&row.registry_type)?;
        Ok(
            match client
                .namespace_repositories(kind.api(), &row.external_namespace)
                .await
            {
                Ok(names) => (
                    true,
                    format!(
                        "Connected to {}: {} repositories in {}",
                        row.registry_url,
                        names.len(),
                        row.external_namespace
                    ),
                ),
                Err(e) => (false, e.to_string()),
            },
        )
    }

    /// A page of the repositories discovery found (Quay's `page` from 1, `limit` ≤ 500).
    pub async fn org_repositories(
        &self,
        actor: &Actor,
        org: &str,
        page: i64,
        limit: i64,
    ) -> Result<OrgMirrorRepoPage> {
        self.org_feature()?;
        self.auth.org_admin(actor, org).await?;
        self.org_row(org).await?;
        let page = page.max(1);
        let limit = if limit < 1 { 100 } else { limit.min(500) };
        let (rows, total) = self
            .registry
            .db
            .org_mirror_repos(org, (page - 1).saturating_mul(limit), limit)
            .await?;
        Ok(OrgMirrorRepoPage {
            repositories: rows
                .into_iter()
                .map(|r| OrgMirrorRepo {
                    sync_status: match (r.status.as_str(), r.mirror_status) {
                        ("DISCOVERED", Some(s)) => s.as_str().to_string(),
                        ("DISCOVERED", None) => MirrorStatus::NeverRun.as_str().to_string(),
                        (other, _) => other.to_string(),
                    },
                    repository: r.repo_id.map(|_| format!("{org}/{}", r.name)),
                    name: r.name,
                    discovered_at: r.discovered_at,
                    last_sync_at: r.last_sync_at,
                    status_message: r.status_message,
                })
                .collect(),
            page,
            limit,
            total,
        })
    }
}

/// One discovery of an organization mirror, claimed with the `sync_txn` its scheduler read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OrgMirrorDiscover {
    pub namespace: String,
    pub txn: String,
}

impl Job for OrgMirrorDiscover {
    const KIND: &'static str = "org_mirror_discover";
    fn dedup_key(&self) -> String {
        format!("{}:{}", self.namespace, self.txn)
    }
    async fn run(&self, ctx: &JobContext) -> JobResult {
        Ok(ctx
            .registry
            .org_mirror_discover(&self.namespace, &self.txn)
            .await?)
    }
}

/// What one discovery decided about a repository that exists here already.
enum Existing {
    None,
    Ours(Box<MirrorRow>),
    Foreign,
}

impl Registry {
    /// Enqueues a discovery of every organization mirror that may start one now.
    pub async fn schedule_org_mirrors(&self) -> Result<usize> {
        let m = &self.config.mirror;
        if !(m.enabled && m.org_enabled) {
            return Ok(0);
        }
        let mut queued = 0;
        for (namespace, txn) in self.db.claimable_org_mirrors(100).await? {
            if self
                .enqueue_alone(&OrgMirrorDiscover { namespace, txn })
                .await?
            {
                queued += 1;
            }
        }
        Ok(queued)
    }

    async fn org_mirror_client(&self, m: &OrgMirrorRow) -> Result<RegistryClient> {
        let (host, insecure) = split_registry_url(&m.registry_url)?;
        let config: RegistryConfig = serde_json::from_str(&m.registry_config).unwrap_or_default();
        let credentials = self
            .upstream_credentials(
                m.username.clone(),
                m.password_sealed.as_deref(),
                "set it again with PUT /api/v1/organization/…/mirror",
            )
            .await?;
        self.upstream_client(
            &host,
            insecure,
            credentials,
            config.client_settings("org mirror"),
        )
    }

    /// Runs one discovery of organization mirror `namespace` if it can still be claimed with
    /// `txn`.
    pub async fn org_mirror_discover(&self, namespace: &str, txn: &str) -> Result<()> {
        let Some(m) = self.db.org_mirror(namespace).await? else {
            return Ok(());
        };
        let timeout = Duration::from_secs(u64::try_from(m.timeout_s.max(30)).unwrap_or(300));
        let lease_until =
            now_ms().saturating_add(i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX));
        let Some(mine) = self
            .db
            .claim_org_mirror(namespace, txn, lease_until)
            .await?
        else {
            return Ok(());
        };
        let kind = OrgRegistryType::parse(&m.registry_type)?;
        let listed = match self.org_mirror_client(&m).await {
            Ok(client) => {
                match tokio::time::timeout(
                    timeout,
                    client.namespace_repositories(kind.api(), &m.external_namespace),
                )
                .await
                {
                    Ok(Ok(names)) => Ok(names),
                    Ok(Err(e)) => {
                        crate::upstream::count_error(client.registry(), &e);
                        Err(e.to_string())
                    }
                    Err(_) => Err(format!(
                        "listing the repositories took longer than {} s (skopeo_timeout)",
                        timeout.as_secs()
                    )),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let filters = super::json_list(&m.repository_filters);
        let now = now_ms();
        let interval_ms = m.sync_interval_s.saturating_mul(1000);
        let next = match m.sync_start_at {
            Some(s) if s > now => s,
            Some(s) if interval_ms > 0 => s + ((now - s) / interval_ms + 1) * interval_ms,
            _ => now.saturating_add(interval_ms),
        };
        let who = Who {
            performer: Some((m.robot_name.clone(), "robot".to_string())),
            ip: None,
        };
        let mut w = self.db.write().await?;
        let names = match listed {
            Err(msg) => {
                let (start, retries) = if m.sync_retries_remaining > 1 {
                    (Some(now), m.sync_retries_remaining - 1)
                } else {
                    (Some(next), MAX_RETRIES)
                };
                let held = self
                    .db
                    .release_org_mirror(
                        &mut w,
                        namespace,
                        &mine,
                        MirrorStatus::Fail,
                        start,
                        retries,
                        &format!("discovery failed: {msg}"),
                    )
                    .await?;
                if held {
                    crate::caller::record_in(
                        &self.db,
                        &mut w,
                        who.entry("org_mirror_sync_failed")
                            .namespace(namespace)
                            .meta(serde_json::json!({"message": msg})),
                    )
                    .await?;
                    w.commit().await?;
                }
                tracing::warn!(org = namespace, error = %msg, "organization mirror discovery failed");
                return Ok(());
            }
            Ok(names) => names,
        };
        let selected: Vec<String> = names
            .into_iter()
            .filter(|n| filters.is_empty() || filters.iter().any(|g| fnmatch(g, n)))
            .filter(|n| {
                format!("{namespace}/{n}")
                    .parse::<berth_oci::RepoName>()
                    .is_ok()
            })
            .collect();
        self.db
            .record_org_mirror_repos(
                &mut w,
                namespace,
                &selected,
                "no longer in the upstream namespace or the repository filters; its tags stay",
            )
            .await?;
        let (host, insecure) = split_registry_url(&m.registry_url)?;
        let mut config: RegistryConfig =
            serde_json::from_str(&m.registry_config).unwrap_or_default();
        if insecure {
            // A repository mirror reaches a plain-HTTP upstream when TLS is not verified.
            config.verify_tls = false;
        }
        let config = serde_json::to_string(&config).map_err(|e| Error::internal(e.to_string()))?;
        let visibility: Visibility = m.visibility.parse().unwrap_or(Visibility::Private);
        let sync_now = m.sync_status == MirrorStatus::SyncNow;
        let mut created = Vec::new();
        let mut updated = 0usize;
        let mut foreign = Vec::new();
        for name in &selected {
            let full = format!("{namespace}/{name}");
            let existing = match self.db.repo_id_in(&mut w, &full).await? {
                None => Existing::None,
                Some(id) => match self.db.mirror_in(&mut w, id).await? {
                    Some(row) if row.org_namespace.as_deref() == Some(namespace) => {
                        Existing::Ours(Box::new(row))
                    }
                    _ => Existing::Foreign,
                },
            };
            let (repo_id, mut row, insert) = match existing {
                Existing::Foreign => {
                    foreign.push(name.clone());
                    continue;
                }
                Existing::Ours(row) => (row.repo_id, *row, false),
                Existing::None => {
                    let (id, _) = self
                        .db
                        .ensure_repo_with(&mut w, &full, namespace, visibility)
                        .await?;
                    created.push((id, full.clone()));
                    let row = MirrorRow {
                        repo_id: id,
                        repo_name: full.clone(),
                        repo_state: RepoState::OrgMirror,
                        is_enabled: 1,
                        external_reference: String::new(),
                        username: None,
                        password_sealed: None,
                        registry_config: "{}".into(),
                        robot_id: m.robot_id,
                        robot_name: m.robot_name.clone(),
                        tag_globs: "[\"*\"]".into(),
                        architecture_filter: "[]".into(),
                        sync_interval_s: m.sync_interval_s,
                        sync_start_at: Some(now),
                        sync_lease_until: None,
                        sync_retries_remaining: MAX_RETRIES,
                        sync_status: MirrorStatus::NeverRun,
                        sync_txn: String::new(),
                        sync_holder: None,
                        timeout_s: m.timeout_s.max(300),
                        created_at: 0,
                        updated_at: 0,
                        org_namespace: Some(namespace.to_string()),
                    };
                    (id, row, true)
                }
            };
            let reference = format!("{host}/{}/{name}", m.external_namespace);
            let changed = insert
                || row.external_reference != reference
                || row.username != m.username
                || row.password_sealed != m.password_sealed
                || row.registry_config != config
                || row.robot_id != m.robot_id
                || row.sync_interval_s != m.sync_interval_s
                || row.is_enabled != m.is_enabled;
            row.external_reference = reference;
            row.username = m.username.clone();
            row.password_sealed = m.password_sealed.clone();
            row.registry_config = config.clone();
            row.robot_id = m.robot_id;
            row.sync_interval_s = m.sync_interval_s;
            row.is_enabled = m.is_enabled;
            if changed {
                if row.sync_status == MirrorStatus::Syncing {
                    row.sync_status = MirrorStatus::Fail;
                }
                self.db.put_mirror(&mut w, &row, insert).await?;
                if !insert {
                    updated += 1;
                }
            }
            self.db
                .set_repo_state(&mut w, repo_id, RepoState::OrgMirror)
                .await?;
            if sync_now {
                self.db.mirror_sync_now(&mut w, repo_id).await?;
            }
        }
        // Mirrors of repositories that left the namespace or the filters stop (tags stay).
        self.db
            .disable_org_mirrors_except(&mut w, namespace, &selected)
            .await?;
        let message = format!(
            "{} repositories discovered, {} created, {} updated{}",
            selected.len(),
            created.len(),
            updated,
            if foreign.is_empty() {
                String::new()
            } else {
                format!(
                    "; skipped (a repository of that name exists and is not this mirror's): {}",
                    foreign.join(", ")
                )
            }
        );
        let held = self
            .db
            .release_org_mirror(
                &mut w,
                namespace,
                &mine,
                MirrorStatus::Success,
                Some(next),
                MAX_RETRIES,
                &message,
            )
            .await?;
        if !held {
            // Cancelled or changed meanwhile: nothing of this discovery is kept.
            return Ok(());
        }
        for name in &foreign {
            self.db
                .set_org_mirror_repo_message(
                    &mut w,
                    namespace,
                    name,
                    "SKIP",
                    "a repository of that name exists here and is not mirrored by the organization; rename or delete it",
                )
                .await?;
        }
        for (_, full) in &created {
            crate::caller::record_in(
                &self.db,
                &mut w,
                who.entry("create_repo")
                    .repo(full)
                    .meta(serde_json::json!({"org_mirror": true})),
            )
            .await?;
        }
        crate::caller::record_in(
            &self.db,
            &mut w,
            who.entry("org_mirror_sync_success")
                .namespace(namespace)
                .meta(serde_json::json!({"message": message})),
        )
        .await?;
        w.commit().await?;
        // The robot writes the mirrored content: it holds write on each repository it created
        // (after the commit: the permission write takes the writer of its own).
        for (id, full) in &created {
            if let Err(e) = self
                .db
                .set_repo_perm(*id, Grantee::Account(m.robot_id), Role::Write)
                .await
            {
                tracing::warn!(repo = %full, error = %e, "cannot give an organization mirror's robot write");
            }
        }
        tracing::info!(org = namespace, %message, "organization mirror discovery finished");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls_are_scheme_host_and_port_only() {
        assert_eq!(
            split_registry_url("https://Quay.io").ok(),
            Some(("quay.io".to_string(), false))
        );
        assert_eq!(
            split_registry_url("http://127.0.0.1:5000/").ok(),
            Some(("127.0.0.1:5000".to_string(), true))
        );
        for bad in [
            "quay.io",
            "ftp://quay.io",
            "https://user:pw@quay.io",
            "https://quay.io/v2",
            "https://quay.io?x=1",
            "",
        ] {
            assert!(split_registry_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            OrgRegistryType::parse("HARBOR").ok(),
            Some(OrgRegistryType::Harbor)
        );
        assert!(OrgRegistryType::parse("gitlab").is_err());
    }
}
