//! All SQL lives here: migrations and one module per aggregate (accounts, teams and permissions,
//! tokens, audit, repositories, blobs and placements, uploads, manifests, tags and immutability
//! policies, labels, quotas, auto-prune policies, garbage collection, jobs and leases). Queries are
//! written once in portable SQL with `$n` placeholders and run through sqlx's `Any` driver, so
//! SQLite and PostgreSQL share them; where the dialects must differ (row locks, claiming jobs,
//! upserts that return a value) the query says so beside `Backend`. Rows are read by column
//! name (`#[derive(sqlx::FromRow)]`, scalars and small tuples), and stored strings with a closed
//! set of values (account kinds, job states) are decoded here into enums; a value that does not
//! decode is `DbError::Corrupt`.
//!
//! Rule: rows and SQL only — no registry rule, no access decision, no HTTP. Only `berth-core`
//! calls this crate; it depends on no other Berth crate.

mod accounts;
mod audit;
mod autoprune;
mod blobs;
mod decode;
mod gc;
mod jobs;
mod labels;
mod manifest_cache;
mod manifests;
mod mirrors;
mod notifications;
mod org_mirrors;
mod proxy;
mod quotas;
mod repos;
mod scan;
mod tags;
mod teams;
mod tokens;
mod uploads;
mod values;

pub use accounts::{AccountRow, AccountUpdate, NewAccount};
pub use audit::{AuditQuery, AuditRow};
pub use autoprune::AutoPrunePolicyRow;
pub use gc::{GcManifest, GcTotals, RepoGcFacts};
pub use jobs::JobRow;
pub use labels::LabelRow;
pub use manifests::{ManifestRow, NewManifest, PutManifestError, RefRow, ReferrerRow};
pub use mirrors::{MirrorRow, MirrorRunRow, RunCounts};
pub use notifications::{
    ATTEMPTS_KEPT, Attempt, AttemptRow, DeliveryRow, NewNotification, NotificationRow,
    UserNotificationRow,
};
pub use org_mirrors::{OrgMirrorRepoRow, OrgMirrorRow};
pub use proxy::ProxyCacheRow;
pub use quotas::{QuotaLimit, QuotaRow};
pub use repos::{NewRepo, RepoFilter, RepoRow, Viewer};
pub use scan::{
    AffectedRow, LayerIndexRow, NewVulnRecord, SecurityPolicyRow, VulnRecordRow, VulnSourceRow,
};
pub use tags::{ImmutabilityPolicyRow, LiveTagFilter, LiveTagKey, TagFilter, TagOrder, TagRow};
pub use teams::{AccessFacts, DefaultPermRow, GrantFact, Grantee, PermRow, TeamRow};
pub use tokens::{ApiTokenRow, AppTokenRow, OAuthAppRow, ServiceKeyRow};
pub use uploads::UploadRow;
pub use values::{
    AccountKind, GranteeKind, JobState, LabelSource, MirrorStatus, PruneMethod, QuotaLimitKind,
    RepoState, Role, TeamRole, Visibility,
};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or is overloaded; the request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    #[error("database error: {0}")]
    Other(sqlx::Error),
    /// A row the code cannot read (a value no version of Berth writes).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "unsupported DB_URI {0:?}: use sqlite:///path/to/file.db or postgresql://user:password@host:port/database"
    )]
    UnsupportedUri(String),
}

/// The `LIKE … ESCAPE '!'` pattern of names containing `text` literally (its `%`, `_` and `!`
/// escaped, so `v1_2` finds `v1_2` and not `v1x2`); `''` for no text, which the queries read
/// as "no filter". Every query using it says `ESCAPE '!'`.
pub(crate) fn contains_pattern(text: Option<&str>) -> String {
    text.filter(|c| !c.is_empty())
        .map(|c| format!("%{}%", escape_like(c)))
        .unwrap_or_default()
}

/// `$from, $from+1, …`: `n` numbered parameters for an `IN (…)` list.
pub(crate) fn marks(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `text` with the `LIKE` wildcards and the escape character `!` escaped by `!`.
pub(crate) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '!' | '%' | '_') {
            out.push('!');
        }
        out.push(ch);
    }
    out
}

impl DbError {
    /// Whether the database could not be reached or is overloaded (worth retrying).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => DbError::Unavailable(e),
            sqlx::Error::Database(d) if d.message().contains("database is locked") => {
                DbError::Unavailable(e)
            }
            // PostgreSQL shutting down, restarting, or a connection lost (SQLSTATE classes 57P, 08).
            sqlx::Error::Database(d)
                if d.code()
                    .is_some_and(|c| c.starts_with("57P") || c.starts_with("08")) =>
            {
                DbError::Unavailable(e)
            }
            // A value the row type cannot hold (a type mismatch, an unexpected NULL, an unknown
            // enum string): the row is corrupt, whichever query read it.
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                DbError::Corrupt(e.to_string())
            }
            _ => DbError::Other(e),
        }
    }
}

pub type Result<T> = std::result::Result<T, DbError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The metadata database: a connection pool plus, on SQLite, the lock that serialises writers in
/// this process (SQLite allows one writer; queueing here is cheaper than busy-retrying).
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    write_lock: Arc<Mutex<()>>,
    /// Live manifests recently read, on SQLite only (see `manifest_cache.rs`).
    manifest_cache: Option<Arc<manifest_cache::ManifestCache>>,
}

/// A write transaction; dropping it without `commit` rolls back.
pub struct WriteTx {
    pub tx: Transaction<'static, Any>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

static MIGRATOR_SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static MIGRATOR_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Db {
    /// Connects to `uri` (Quay's `DB_URI` form). SQLite files are created if missing.
    pub async fn connect(uri: &str, max_connections: u32) -> Result<Db> {
        install_default_drivers();
        let backend = if uri.starts_with("sqlite:") {
            Backend::Sqlite
        } else if uri.starts_with("postgresql://") || uri.starts_with("postgres://") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUri(uri.to_string()));
        };
        let options = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5));
        let mut manifest_cache = None;
        let pool = match backend {
            Backend::Sqlite => {
                let url = if uri.contains('?') {
                    uri.to_string()
                } else {
                    format!("{uri}?mode=rwc")
                };
                let pool = options
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?;
                pool.execute("PRAGMA journal_mode = WAL").await?;
                manifest_cache =
                    <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
                        .ok()
                        .and_then(|o| manifest_cache::ManifestCache::open(o.get_filename()))
                        .map(Arc::new);
                pool
            }
            Backend::Postgres => options.connect(uri).await?,
        };
        Ok(Db {
            pool,
            backend,
            write_lock: Arc::new(Mutex::new(())),
            manifest_cache,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => MIGRATOR_SQLITE.run(&self.pool).await?,
            Backend::Postgres => MIGRATOR_POSTGRES.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Begins a write transaction. On SQLite: `BEGIN IMMEDIATE` behind the in-process writer lock;
    /// on PostgreSQL a plain transaction, with row locks taken where writes must serialise.
    pub async fn write(&self) -> Result<WriteTx> {
        match self.backend {
            Backend::Sqlite => {
                let guard = self.write_lock.clone().lock_owned().await;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx {
                    tx,
                    _guard: Some(guard),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _guard: None,
            }),
        }
    }

    /// A database round trip, for `/health/endtoend`.
    pub async fn health(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// A migrated database in a fresh temporary directory, for this crate's unit tests.
#[cfg(test)]
pub(crate) async fn test_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::connect(
        &format!("sqlite://{}", dir.path().join("t.db").display()),
        4,
    )
    .await
    .expect("connect");
    db.migrate().await.expect("migrate");
    (dir, db)
}
