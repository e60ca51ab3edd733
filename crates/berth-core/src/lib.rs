//! Registry services: blob uploads and reads, manifests, tags and referrers, built on `berth-db`
//! (rows) and `berth-storage` (bytes). Holds the ordering rules that make writes crash-safe —
//! bytes first, verified, committed, then rows in one transaction — and the one domain error type,
//! which the API layer turns into HTTP exactly once.

pub mod auth;
pub mod autoprune;
mod blobs;
mod caller;
pub use caller::Caller;
mod error;
mod gc;
pub use gc::{GcConfig, GcReport};
pub mod jobs;
pub mod labels;
mod locations;
pub use labels::parse_duration_s;
mod manifests;
pub mod policies;
mod pulls;
pub mod quotas;
pub use quotas::{QuotaConfig, parse_size};
mod tags;
pub use tags::policy_protects;
mod uploads;

pub use berth_db::{
    AccountRow, AuditQuery, AuditRow, AutoPrunePolicy, Db, DbError, DefaultPermRow, Grantee,
    ImmutabilityPolicy, LabelRow, OAuthAppRow, PermRow, QuotaLimit, QuotaRow, RepoRow, TagFilter,
    TagRow, TeamRow, Viewer, now_ms,
};
pub use berth_storage::{BlobStore, ByteStream};
pub use error::{Error, Malformed, Missing, Result};
pub use locations::Locations;
pub use manifests::{ManifestPut, Referrer};
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
        }
    }
}

/// The registry: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Registry {
    pub db: Db,
    /// The preferred location's store: where this instance writes.
    pub store: Arc<dyn BlobStore>,
    pub locations: Arc<Locations>,
    pub config: Arc<CoreConfig>,
    pulls: Arc<pulls::PullRecorder>,
}

impl Registry {
    /// A registry over `locations`; it writes to the preferred one.
    pub fn new(db: Db, locations: Locations, config: CoreConfig) -> Registry {
        let store = locations.preferred_store();
        Registry {
            db,
            store,
            locations: Arc::new(locations),
            config: Arc::new(config),
            pulls: Arc::new(pulls::PullRecorder::default()),
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

    /// Database and storage round trips, for `/health/endtoend`.
    pub async fn health(&self) -> Result<()> {
        self.db.health().await?;
        self.store.health().await?;
        Ok(())
    }
}
