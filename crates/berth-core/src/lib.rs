//! Registry services: blob uploads and reads, manifests, tags and referrers, lifecycle (garbage
//! collection, expiry, auto-prune, quotas, replication, jobs), and identity and access (`auth`),
//! built on `berth-db` (rows) and `berth-storage` (bytes). Holds the ordering rules that make
//! writes crash-safe — bytes first, verified, committed, then rows in one transaction — and the
//! one domain error type.
//!
//! Rule: every use case is a public method here — on [`Registry`] for content, on
//! [`auth::Auth`] where an access decision is part of it — that checks what it must, owns its
//! transaction and writes its own audit record (taking a [`auth::Who`]). The database handles
//! are crate-private; callers (the HTTP API, the worker, the CLI, and the UI, notification,
//! scanning and mirroring code to come) never see SQL. Errors say what went wrong in domain
//! terms ([`Error`]), never as HTTP.

pub mod auth;
pub mod autoprune;
mod blobs;
mod caller;
pub mod content;
pub use caller::Caller;
mod error;
mod gc;
mod hash_pipe;
pub use gc::{GcConfig, GcReport};
pub mod jobs;
pub mod labels;
mod locations;
pub mod model;
pub use labels::parse_duration_s;
mod manifests;
pub mod mirror;
pub mod notify;
pub mod policies;
pub mod proxy;
mod pulls;
pub mod quotas;
pub mod scan;
pub use quotas::{QuotaConfig, parse_size};
mod tags;
mod uploads;
mod upstream;

// Rows stay inside the core: its doors answer the types of `model`.
pub use berth_db::{Db, DbError, now_ms};
pub(crate) use berth_db::{QuotaLimit, QuotaRow};
pub use berth_storage::{BlobStore, ByteStream};
pub use error::{Error, Malformed, Missing, Result};
pub use locations::Locations;
pub use manifests::{ManifestPut, Referrer};
pub use model::{
    AccessReason, Account, ApiToken, AppToken, AuditQuery, AuditRecord, DefaultPerm,
    EffectiveAccess, EffectivePermissions, GrantOrigin, Label, OAuthApp, Permission, Repository,
    ServiceKey, Tag, TagFilter, Team,
};
pub use policies::{AutoPrunePolicy, ImmutabilityPolicy};
pub use uploads::{LastChunk, UploadState};

use std::sync::Arc;

/// Settings of the registry core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Largest manifest accepted on PUT.
    pub max_manifest_bytes: usize,
    /// `MAXIMUM_LAYER_SIZE`: largest blob an upload may store (Quay's default, 20G).
    pub max_blob_bytes: u64,
    pub gc: GcConfig,
    pub quota: QuotaConfig,
    /// `FEATURE_IMMUTABLE_TAGS_CAN_EXPIRE`: immutable tags keep (and may be given) an expiry.
    /// Off, as in Quay: a tag loses its expiry when it becomes immutable.
    pub immutable_tags_can_expire: bool,
    /// Notifications' delivery and payloads.
    pub notify: notify::NotifyConfig,
    /// The vulnerability scanner.
    pub scan: scan::ScanConfig,
    /// Repository mirroring.
    pub mirror: mirror::MirrorConfig,
    /// Pull-through cache organizations.
    pub proxy: proxy::ProxyConfig,
}

/// Quay's default `MAXIMUM_LAYER_SIZE`, 20G (20 × 10⁹ bytes).
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 20_000_000_000;

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            max_manifest_bytes: berth_oci::manifest::MAX_MANIFEST_BYTES,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
            gc: GcConfig::default(),
            quota: QuotaConfig::default(),
            immutable_tags_can_expire: false,
            notify: notify::NotifyConfig::default(),
            scan: scan::ScanConfig::default(),
            mirror: mirror::MirrorConfig::default(),
            proxy: proxy::ProxyConfig::default(),
        }
    }
}

/// The registry: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Registry {
    pub(crate) db: Db,
    /// The preferred location's store: where this instance writes.
    pub store: Arc<dyn BlobStore>,
    pub locations: Arc<Locations>,
    pub config: Arc<CoreConfig>,
    pulls: Arc<pulls::PullRecorder>,
    /// The audit log every change writes to (shared with [`auth::Auth`]).
    pub(crate) audit: auth::AuditLog,
    /// Namespaces' security policies, as last read.
    pub(crate) scan_policies: Arc<scan::PolicyCache>,
    /// Cache organizations as last read, and blobs being fetched through them.
    pub(crate) proxies: Arc<proxy::ProxyState>,
}

impl Registry {
    /// A registry over `locations`; it writes to the preferred one.
    pub fn new(db: Db, locations: Locations, config: CoreConfig) -> Registry {
        let store = locations.preferred_store();
        Registry {
            audit: auth::AuditLog::new(db.clone()),
            db,
            store,
            locations: Arc::new(locations),
            config: Arc::new(config),
            pulls: Arc::new(pulls::PullRecorder::default()),
            scan_policies: Arc::new(scan::PolicyCache::default()),
            proxies: Arc::new(proxy::ProxyState::default()),
        }
    }

    /// Starts the background task that writes pull times to the database every few seconds
    /// (a pull must not cost a write transaction).
    pub fn spawn_background(&self) -> tokio::task::JoinHandle<()> {
        let reg = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                reg.flush_pulls().await;
            }
        })
    }

    /// Writes recorded pull times now.
    pub async fn flush_pulls(&self) {
        let pending = self.pulls.take();
        if let Err(e) = self.db.record_pulls(&pending).await {
            tracing::warn!(error = %e, "could not record pull times; will retry");
            self.pulls.put_back(pending);
        }
    }

    /// Identity and access over this registry's database.
    pub async fn auth(&self, config: auth::AuthConfig) -> Result<auth::Auth> {
        auth::Auth::with_audit(self.db.clone(), self.audit.clone(), config).await
    }

    /// Database and storage round trips, for `/health/endtoend`.
    pub async fn health(&self) -> Result<()> {
        self.check_database().await?;
        self.check_storage().await
    }

    /// A database round trip.
    pub async fn check_database(&self) -> Result<()> {
        Ok(self.db.health().await?)
    }

    /// A storage write, read and delete in the preferred location.
    pub async fn check_storage(&self) -> Result<()> {
        Ok(self.store.health().await?)
    }

    /// What the registry holds and has in hand, for metrics. Each figure is read separately;
    /// one that cannot be read is left out (a scrape must not fail because one query did).
    pub async fn usage(&self) -> Usage {
        let blobs = self.db.blob_totals().await.ok();
        Usage {
            blobs: blobs.map(|b| b.0),
            blob_bytes: blobs.map(|b| b.1),
            upload_sessions: self.db.uploads_in_progress().await.ok(),
            jobs: self.job_counts().await.unwrap_or_default(),
            placements: self.db.placement_counts().await.unwrap_or_default(),
        }
    }

    /// Whether a repository exists.
    pub async fn repo_exists(&self, repo: &berth_oci::RepoName) -> Result<bool> {
        Ok(self.db.repo_id(repo.as_str()).await?.is_some())
    }

    /// The storage locations holding a blob, with when each copy was recorded.
    pub async fn placements(&self, digest: &berth_oci::Digest) -> Result<Vec<(String, i64)>> {
        Ok(self.db.placements(&digest.to_string()).await?)
    }
}

/// Totals for metrics; see [`Registry::usage`].
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub blobs: Option<i64>,
    pub blob_bytes: Option<i64>,
    pub upload_sessions: Option<i64>,
    /// `(kind, state, count)` of queued jobs.
    pub jobs: Vec<(String, String, i64)>,
    /// `(location, blobs placed)`.
    pub placements: Vec<(String, i64)>,
}
