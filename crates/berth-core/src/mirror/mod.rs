//! Repository mirroring: a repository in MIRROR state follows the tags of a repository on
//! another registry, copied by its robot through the same core paths as a push (quotas,
//! immutability, audit, `repo_push`), on a schedule or on demand.
//!
//! The configuration use cases are on [`Mirrors`] (they need access decisions); a sync is
//! [`Registry::mirror_sync`] (`sync.rs`), run as a [`MirrorSync`] job that the scheduler chore
//! enqueues. A sync holds the mirror by a lease it renews while it works; cancelling,
//! reconfiguring or a lapsed lease takes the mirror from it, and it stops at its next renewal.

mod glob;
mod org;
mod sync;

pub use org::{
    OrgMirror, OrgMirrorDiscover, OrgMirrorRepo, OrgMirrorRepoPage, OrgMirrorSettings,
    OrgRegistryType, split_registry_url,
};

pub use berth_db::{MirrorStatus, RepoState};
pub use glob::{fnmatch, select_tags};

use crate::auth::{Actor, Auth};
use crate::caller::Caller;
use crate::jobs::{Job, JobContext, JobResult};
use crate::{Error, Registry, Result};
use berth_db::{Grantee, MirrorRow, Role};
use std::time::Duration;

/// Settings of repository mirroring.
#[derive(Debug, Clone)]
pub struct MirrorConfig {
    /// `FEATURE_REPO_MIRROR` (Berth: on; Quay: off).
    pub enabled: bool,
    /// `FEATURE_ORG_MIRROR` (Berth: on; Quay: off): organization mirrors (they need
    /// repository mirroring on too).
    pub org_enabled: bool,
    /// `ORG_MIRROR_INTERVAL`: how often the scheduler looks for organization mirrors due a
    /// discovery.
    pub org_interval: Duration,
    /// `REPO_MIRROR_INTERVAL`: how often the scheduler looks for due mirrors.
    pub interval: Duration,
    /// `REPO_MIRROR_ROLLBACK`: a failed sync reverts every tag it changed (else only the failed
    /// tags stay as they were).
    pub rollback: bool,
    /// How long a sync holds its mirror without renewing; a sync whose worker died is taken
    /// over this long after its last renewal.
    pub lease: Duration,
    /// `FEATURE_SPARSE_INDEX`: pushes may store an index whose children are absent (mirrors with
    /// an architecture filter store one whatever this says).
    pub sparse_index: bool,
}

impl Default for MirrorConfig {
    fn default() -> Self {
        MirrorConfig {
            enabled: true,
            org_enabled: true,
            org_interval: Duration::from_secs(30),
            interval: Duration::from_secs(30),
            rollback: false,
            lease: Duration::from_secs(60),
            sparse_index: false,
        }
    }
}

/// Quay's retries per scheduled sync.
pub const MAX_RETRIES: i64 = 3;

/// Architectures an architecture filter may name (Quay's four, and the other platforms images
/// are built for).
pub const ARCHITECTURES: &[&str] = &[
    "amd64", "arm64", "ppc64le", "s390x", "arm", "386", "riscv64", "mips64le",
];

/// Why a content write is refused in `state`.
pub fn state_refusal(repo: &str, state: RepoState) -> String {
    match state {
        RepoState::Mirror => format!(
            "repository {repo} is a mirror (state MIRROR): only its mirror's robot writes to it. \
             Change its state with PUT /api/v1/repository/{repo}/changestate {{\"state\": \"NORMAL\"}} to write to it yourself"
        ),
        RepoState::ReadOnly => format!(
            "repository {repo} is read-only (state READ_ONLY); an administrator can change its state with PUT /api/v1/repository/{repo}/changestate"
        ),
        RepoState::OrgMirror => {
            let org = repo.split('/').next().unwrap_or(repo);
            format!(
                "repository {repo} is mirrored by its organization (state ORG_MIRROR): only the organization mirror's robot writes to it. \
                 Its mirror is configured with /api/v1/organization/{org}/mirror"
            )
        }
        RepoState::Normal => format!("repository {repo} is writable"),
    }
}

/// The upstream connection settings of a mirror (Quay's `external_registry_config`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegistryConfig {
    #[serde(default = "yes")]
    pub verify_tls: bool,
    #[serde(default)]
    pub unsigned_images: bool,
    #[serde(default)]
    pub proxy: ProxyConfig,
}

fn yes() -> bool {
    true
}

impl RegistryConfig {
    /// The outbound client's settings for these, its user agent naming `purpose`.
    pub(crate) fn client_settings(&self, purpose: &str) -> berth_registry_client::Settings {
        berth_registry_client::Settings {
            verify_tls: self.verify_tls,
            proxy: berth_registry_client::ProxySettings {
                http_proxy: self.proxy.http_proxy.clone(),
                https_proxy: self.proxy.https_proxy.clone(),
                no_proxy: self.proxy.no_proxy.clone(),
            },
            user_agent: format!("berth/{} ({purpose})", env!("CARGO_PKG_VERSION")),
            ..berth_registry_client::Settings::default()
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            verify_tls: true,
            unsigned_images: false,
            proxy: ProxyConfig::default(),
        }
    }
}

/// HTTP(S) proxies for reaching the upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProxyConfig {
    #[serde(default)]
    pub http_proxy: Option<String>,
    #[serde(default)]
    pub https_proxy: Option<String>,
    #[serde(default)]
    pub no_proxy: Option<String>,
}

/// A mirror's settings as given to create (all of the required ones) or update (any subset).
#[derive(Debug, Clone, Default)]
pub struct MirrorSettings {
    pub is_enabled: Option<bool>,
    pub external_reference: Option<String>,
    /// `Some(None)` clears the credentials.
    pub username: Option<Option<String>>,
    pub password: Option<Option<String>>,
    pub registry_config: Option<RegistryConfig>,
    pub sync_interval_s: Option<i64>,
    /// Next run, in milliseconds since the epoch.
    pub sync_start_at: Option<i64>,
    pub tag_globs: Option<Vec<String>>,
    pub robot_username: Option<String>,
    pub timeout_s: Option<i64>,
    pub architecture_filter: Option<Vec<String>>,
}

/// A mirror as its administrators see it (never its password).
#[derive(Debug, Clone)]
pub struct Mirror {
    pub repository: String,
    pub is_enabled: bool,
    pub external_reference: String,
    pub username: Option<String>,
    pub registry_config: RegistryConfig,
    pub sync_interval_s: i64,
    pub sync_start_at: Option<i64>,
    pub sync_lease_until: Option<i64>,
    pub sync_retries_remaining: i64,
    pub sync_status: MirrorStatus,
    pub tag_globs: Vec<String>,
    pub robot_username: String,
    pub timeout_s: i64,
    pub architecture_filter: Vec<String>,
}

/// One sync run, for the log.
#[derive(Debug, Clone)]
pub struct MirrorRun {
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: String,
    pub holder: String,
    pub counts: berth_db::RunCounts,
    pub log: Vec<String>,
}

pub(crate) fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

impl From<&MirrorRow> for Mirror {
    fn from(m: &MirrorRow) -> Mirror {
        Mirror {
            repository: m.repo_name.clone(),
            is_enabled: m.is_enabled != 0,
            external_reference: m.external_reference.clone(),
            username: m.username.clone(),
            registry_config: serde_json::from_str(&m.registry_config).unwrap_or_default(),
            sync_interval_s: m.sync_interval_s,
            sync_start_at: m.sync_start_at,
            sync_lease_until: m.sync_lease_until,
            sync_retries_remaining: m.sync_retries_remaining,
            sync_status: m.sync_status,
            tag_globs: json_list(&m.tag_globs),
            robot_username: m.robot_name.clone(),
            timeout_s: m.timeout_s,
            architecture_filter: json_list(&m.architecture_filter),
        }
    }
}

/// Splits `host[:port]/path` (no scheme) into the registry and the repository path.
pub fn split_reference(reference: &str) -> Result<(String, String)> {
    let bad = || {
        Error::invalid(format!(
            "external_reference {reference:?} must be host[:port]/repository, without a scheme (e.g. quay.io/prometheus/node-exporter)"
        ))
    };
    if reference.contains("://") {
        return Err(bad());
    }
    let (host, path) = reference.split_once('/').ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !host_ok || path.parse::<berth_oci::RepoName>().is_err() {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), path.to_string()))
}

/// The mirroring use cases that need an access decision: configuring, starting and cancelling
/// syncs, and a repository's state.
pub struct Mirrors<'a> {
    registry: &'a Registry,
    auth: &'a Auth,
}

impl<'a> Mirrors<'a> {
    pub fn new(registry: &'a Registry, auth: &'a Auth) -> Mirrors<'a> {
        Mirrors { registry, auth }
    }

    fn feature(&self) -> Result<()> {
        if self.registry.config.mirror.enabled {
            Ok(())
        } else {
            Err(Error::not_found(
                "repository mirroring is off; an administrator turns it on with FEATURE_REPO_MIRROR: true",
            ))
        }
    }

    /// The repository's id, for its administrators.
    async fn admin_repo(&self, actor: &Actor, repo: &str) -> Result<crate::Repository> {
        self.auth
            .repo_with_role(Some(actor), repo, Role::Admin)
            .await
    }

    /// The mirror of `repo`, for its administrators.
    pub async fn get(&self, actor: &Actor, repo: &str) -> Result<Mirror> {
        self.feature()?;
        let r = self.admin_repo(actor, repo).await?;
        let m = self
            .registry
            .db
            .mirror(r.id)
            .await?
            .ok_or_else(|| Error::not_found(format!("repository {repo} has no mirror")))?;
        Ok(Mirror::from(&m))
    }

    /// The last runs of `repo`'s mirror, newest first.
    pub async fn runs(&self, actor: &Actor, repo: &str, limit: i64) -> Result<Vec<MirrorRun>> {
        self.feature()?;
        let r = self.admin_repo(actor, repo).await?;
        let rows = self
            .registry
            .db
            .mirror_runs(r.id, limit.clamp(1, 20))
            .await?;
        Ok(rows
            .into_iter()
            .map(|x| MirrorRun {
                started_at: x.started_at,
                finished_at: x.finished_at,
                outcome: x.outcome,
                holder: x.holder,
                counts: berth_db::RunCounts {
                    tags_copied: x.tags_copied,
                    tags_unchanged: x.tags_unchanged,
                    tags_removed: x.tags_removed,
                    tags_failed: x.tags_failed,
                    blobs_copied: x.blobs_copied,
                    bytes_copied: x.bytes_copied,
                },
                log: x.log.lines().map(str::to_string).collect(),
            })
            .collect())
    }

    /// Configures a mirror on `repo` and puts the repository in MIRROR state (Quay's POST).
    pub async fn create(&self, caller: Caller<'_>, repo: &str, s: &MirrorSettings) -> Result<()> {
        self.feature()?;
        let r = self.admin_repo(caller.actor, repo).await?;
        if self.registry.db.org_mirror(&r.namespace).await?.is_some() {
            return Err(Error::invalid(format!(
                "organization {} is mirrored as a whole; its mirror (/api/v1/organization/{}/mirror) manages every mirror in it",
                r.namespace, r.namespace
            )));
        }
        if self.registry.db.mirror(r.id).await?.is_some() {
            return Err(Error::exists(format!(
                "repository {repo} already has a mirror; change it with PUT"
            )));
        }
        let required = |what: &str| Error::invalid(format!("{what} is required"));
        let reference = s
            .external_reference
            .as_deref()
            .ok_or_else(|| required("external_reference"))?;
        let globs = s.tag_globs.clone().ok_or_else(|| required("root_rule"))?;
        let robot = s
            .robot_username
            .as_deref()
            .ok_or_else(|| required("robot_username"))?;
        let interval = s.sync_interval_s.ok_or_else(|| required("sync_interval"))?;
        let start = s.sync_start_at.ok_or_else(|| required("sync_start_date"))?;
        let mut row = MirrorRow {
            repo_id: r.id,
            repo_name: r.name.clone(),
            repo_state: RepoState::Mirror,
            is_enabled: 1,
            external_reference: String::new(),
            username: None,
            password_sealed: None,
            registry_config: "{}".into(),
            robot_id: 0,
            robot_name: String::new(),
            tag_globs: "[]".into(),
            architecture_filter: "[]".into(),
            sync_interval_s: interval,
            sync_start_at: Some(start),
            sync_lease_until: None,
            sync_retries_remaining: MAX_RETRIES,
            sync_status: MirrorStatus::NeverRun,
            sync_txn: String::new(),
            sync_holder: None,
            timeout_s: 300,
            created_at: 0,
            updated_at: 0,
            org_namespace: None,
        };
        let mut all = s.clone();
        all.external_reference = Some(reference.to_string());
        all.tag_globs = Some(globs);
        all.robot_username = Some(robot.to_string());
        self.apply(&r, &mut row, &all).await?;
        let mut w = self.registry.db.write().await?;
        self.registry.db.put_mirror(&mut w, &row, true).await?;
        self.registry
            .db
            .set_repo_state(&mut w, r.id, RepoState::Mirror)
            .await?;
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller.audit("repo_mirror_enabled").repo(repo).meta(
                serde_json::json!({"external_reference": row.external_reference, "robot": row.robot_name}),
            ),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Changes any of a mirror's settings (Quay's PUT). A running sync stops at its next
    /// renewal and the next one uses the new settings.
    pub async fn update(&self, caller: Caller<'_>, repo: &str, s: &MirrorSettings) -> Result<()> {
        self.feature()?;
        let r = self.admin_repo(caller.actor, repo).await?;
        let mut row = self
            .registry
            .db
            .mirror(r.id)
            .await?
            .ok_or_else(|| Error::not_found(format!("repository {repo} has no mirror")))?;
        managed_here(&row)?;
        if s.password.is_some() && s.username.is_none() {
            return Err(Error::invalid(
                "give external_registry_username together with external_registry_password",
            ));
        }
        self.apply(&r, &mut row, s).await?;
        if row.sync_status == MirrorStatus::Syncing {
            // The sync holding the old settings loses the mirror (its txn changes).
            row.sync_status = MirrorStatus::Fail;
        }
        let mut w = self.registry.db.write().await?;
        self.registry.db.put_mirror(&mut w, &row, false).await?;
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller.audit("repo_mirror_config_changed").repo(repo).meta(
                serde_json::json!({"external_reference": row.external_reference, "robot": row.robot_name}),
            ),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Validates `s` and writes it into `row`.
    async fn apply(
        &self,
        r: &crate::Repository,
        row: &mut MirrorRow,
        s: &MirrorSettings,
    ) -> Result<()> {
        if let Some(v) = s.is_enabled {
            row.is_enabled = i64::from(v);
        }
        if let Some(reference) = &s.external_reference {
            let (host, _) = split_reference(reference)?;
            let guard = self.registry.outbound_guard();
            guard
                .check(&format!("https://{host}/v2/"))
                .await
                .map_err(|e| Error::invalid(format!("external_reference: {e}")))?;
            row.external_reference = reference.clone();
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
        if let Some(i) = s.sync_interval_s {
            if i < 0 {
                return Err(Error::invalid("sync_interval must be 0 or more seconds"));
            }
            row.sync_interval_s = i;
        }
        if let Some(at) = s.sync_start_at {
            row.sync_start_at = Some(at);
        }
        if let Some(globs) = &s.tag_globs {
            if globs.is_empty() || globs.iter().any(|g| g.trim().is_empty()) {
                return Err(Error::invalid(
                    "root_rule.rule_value must list at least one tag glob (e.g. [\"latest\", \"v1.*\"])",
                ));
            }
            row.tag_globs =
                serde_json::to_string(globs).map_err(|e| Error::internal(e.to_string()))?;
        }
        if let Some(t) = s.timeout_s {
            if t < 300 {
                return Err(Error::invalid(
                    "skopeo_timeout_interval must be at least 300 seconds",
                ));
            }
            row.timeout_s = t;
        }
        if let Some(archs) = &s.architecture_filter {
            if let Some(bad) = archs.iter().find(|a| !ARCHITECTURES.contains(&a.as_str())) {
                return Err(Error::invalid(format!(
                    "architecture_filter: {bad:?} is not one of {}",
                    ARCHITECTURES.join(", ")
                )));
            }
            row.architecture_filter =
                serde_json::to_string(archs).map_err(|e| Error::internal(e.to_string()))?;
        }
        if let Some(robot) = &s.robot_username {
            let a = self
                .auth
                .db
                .account_by_name(robot)
                .await?
                .filter(|a| a.kind == berth_db::AccountKind::Robot)
                .ok_or_else(|| {
                    Error::invalid(format!("robot_username: no robot named {robot:?}"))
                })?;
            if !robot.starts_with(&format!("{}+", r.namespace)) {
                return Err(Error::invalid(format!(
                    "robot_username: {robot:?} is not a robot of {}; use one of {}+…",
                    r.namespace, r.namespace
                )));
            }
            // The robot writes the mirror's content: it needs write (Quay grants it).
            let robot_actor = Actor {
                id: a.id,
                name: a.name.clone(),
                kind: a.kind,
                superuser: false,
                via: "robot_token",
                scopes: None,
            };
            let access = self.auth.repo_access(Some(&robot_actor), &r.name).await?;
            if !access.allows(Role::Write) {
                self.auth
                    .db
                    .set_repo_perm(r.id, Grantee::Account(a.id), Role::Write)
                    .await?;
            }
            row.robot_id = a.id;
            row.robot_name = a.name;
        }
        Ok(())
    }

    /// Asks for a sync now (Quay's sync-now). Not found while a live sync runs.
    pub async fn sync_now(&self, caller: Caller<'_>, repo: &str) -> Result<()> {
        self.feature()?;
        let r = self.admin_repo(caller.actor, repo).await?;
        let row = self
            .registry
            .db
            .mirror(r.id)
            .await?
            .ok_or_else(|| Error::not_found(format!("repository {repo} has no mirror")))?;
        managed_here(&row)?;
        let mut w = self.registry.db.write().await?;
        if !self.registry.db.mirror_sync_now(&mut w, r.id).await? {
            return Err(Error::not_found(format!(
                "a sync of {repo} is running; cancel it first (sync-cancel)"
            )));
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller.audit("repo_mirror_sync_now_requested").repo(repo),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Cancels a running or requested sync (Quay's sync-cancel). Not found when there is none.
    pub async fn cancel(&self, caller: Caller<'_>, repo: &str) -> Result<()> {
        self.feature()?;
        let r = self.admin_repo(caller.actor, repo).await?;
        if let Some(row) = self.registry.db.mirror(r.id).await? {
            managed_here(&row)?;
        }
        let mut w = self.registry.db.write().await?;
        if !self.registry.db.mirror_cancel(&mut w, r.id).await? {
            return Err(Error::not_found(format!(
                "no sync of {repo} is running or requested"
            )));
        }
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller.audit("repo_mirror_sync_cancelled").repo(repo),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Sets a repository's state (Quay's changestate), for its administrators.
    pub async fn change_state(
        &self,
        caller: Caller<'_>,
        repo: &str,
        state: RepoState,
    ) -> Result<()> {
        let r = self.admin_repo(caller.actor, repo).await?;
        let current = self.registry.repo_state(&r.name).await?;
        if state == RepoState::OrgMirror || current == Some(RepoState::OrgMirror) {
            return Err(Error::invalid(format!(
                "ORG_MIRROR is set and cleared by the organization's mirror: change it with /api/v1/organization/{}/mirror (repository_filters, or DELETE)",
                r.namespace
            )));
        }
        if state == RepoState::Mirror && !self.registry.config.mirror.enabled {
            return Err(Error::invalid(
                "MIRROR needs repository mirroring (FEATURE_REPO_MIRROR: true)",
            ));
        }
        let mut w = self.registry.db.write().await?;
        self.registry.db.set_repo_state(&mut w, r.id, state).await?;
        crate::caller::record_in(
            &self.registry.db,
            &mut w,
            caller
                .audit("change_repo_state")
                .repo(repo)
                .meta(serde_json::json!({"state": state.as_str()})),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }
}

/// Refuses to change a repository mirror that its organization's mirror manages.
fn managed_here(row: &MirrorRow) -> Result<()> {
    match &row.org_namespace {
        Some(org) => Err(Error::invalid(format!(
            "the mirror of {} is managed by organization {org}'s mirror; change it with /api/v1/organization/{org}/mirror",
            row.repo_name
        ))),
        None => Ok(()),
    }
}

/// One sync of a mirror, claimed with the `sync_txn` its scheduler read (a run whose claim
/// fails — another sync took the mirror, or it was reconfigured — does nothing).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MirrorSync {
    pub repo_id: i64,
    pub txn: String,
}

impl Job for MirrorSync {
    const KIND: &'static str = "mirror_sync";
    fn dedup_key(&self) -> String {
        format!("{}:{}", self.repo_id, self.txn)
    }
    async fn run(&self, ctx: &JobContext) -> JobResult {
        Ok(ctx.registry.mirror_sync(self.repo_id, &self.txn).await?)
    }
}

impl Registry {
    /// Enqueues a sync of every mirror that may start one now; answers how many were queued.
    pub async fn schedule_mirrors(&self) -> Result<usize> {
        if !self.config.mirror.enabled {
            return Ok(0);
        }
        let due = self.db.claimable_mirrors(100).await?;
        let mut queued = 0;
        for (repo_id, txn) in due {
            if self.enqueue_alone(&MirrorSync { repo_id, txn }).await? {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// A repository's state, and whether `actor` may change its content in it.
    pub async fn repo_state(&self, repo: &str) -> Result<Option<RepoState>> {
        Ok(self.db.repo_state(repo).await?.map(|(s, _)| s))
    }
}
