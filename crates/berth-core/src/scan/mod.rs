//! Vulnerability scanning, built in: every pushed image layer is indexed once per digest by an
//! `index_layer` job (what OS and packages it holds, read by `berth-scan::index`), vulnerability
//! data comes from OSV sources imported into the database (`import_vuln_source`, at start and
//! every `SECURITY_SCANNER_UPDATE_INTERVAL`), and a manifest's report is the merge of its layers
//! matched against that data when asked for — so new data applies to every image at once,
//! without reading a layer again.

pub mod policy;
pub mod search;
pub mod summary;

pub use policy::{Gate, PolicyCache, SecurityPolicies, SecurityPolicy};
pub use search::SearchHit;
pub use summary::{ScanSummary, VulnBrief};

use crate::jobs::{Job, JobContext, JobResult};
use crate::{Error, Registry, Result};
use berth_db::WriteTx;
use berth_oci::manifest::ParsedManifest;
use berth_oci::{Digest, RepoName};
use berth_scan::index::{self, Compression, Image, LayerIndex, Limits};
use berth_scan::vulndb::{Advisory, Severity};
use berth_scan::{matcher, osv::Affected};
use futures::TryStreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::time::{Duration, Instant};

/// Bumped when the indexer learns to read something new: layers indexed by an older version
/// are indexed again (after `SECURITY_SCANNER_V4_REINDEX_THRESHOLD`).
pub const INDEXER_VERSION: i64 = 1;

/// Records written per transaction while importing.
const IMPORT_BATCH: usize = 500;

/// Settings of the scanner (Quay's keys where Quay has one).
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// `FEATURE_SECURITY_SCANNER`. Berth's default is on (Quay's is off: it needs Clair).
    pub enabled: bool,
    /// `SECURITY_SCANNER_V4_INDEXING`: this instance's workers index layers.
    pub indexing: bool,
    /// `SECURITY_SCANNER_OSV_SOURCES`: paths or URLs of OSV `all.zip` files or directories.
    pub sources: Vec<String>,
    /// `SECURITY_SCANNER_UPDATE_INTERVAL`: how often sources are imported again.
    pub update_interval: Duration,
    /// `SECURITY_SCANNER_INDEXING_INTERVAL`: how often layers never indexed (pushed before the
    /// scanner was on), failed ones due a retry and outdated ones are queued.
    pub indexing_interval: Duration,
    /// `SECURITY_SCANNER_V4_REINDEX_THRESHOLD`: an outdated index is redone after this age.
    pub reindex_threshold: Duration,
    /// `SECURITY_SCANNER_V4_INDEX_MAX_LAYER_SIZE`: layers larger than this (uncompressed bytes
    /// read) are not indexed; their manifests answer `manifest_layer_too_large`.
    pub max_layer_bytes: Option<u64>,
    /// `SECURITY_SCANNER_MAX_SCAN_RETRIES`: attempts at a layer that fails.
    pub max_retries: i64,
    /// `FEATURE_SECURITY_NOTIFICATIONS` and `NOTIFICATION_MIN_SEVERITY_ON_NEW_INDEX`.
    pub notifications: bool,
    pub min_severity_on_new_index: Severity,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            enabled: true,
            indexing: true,
            sources: Vec::new(),
            update_interval: Duration::from_secs(6 * 3600),
            indexing_interval: Duration::from_secs(30),
            reindex_threshold: Duration::from_secs(300),
            max_layer_bytes: None,
            max_retries: 5,
            notifications: false,
            min_severity_on_new_index: Severity::High,
        }
    }
}

/// Index one layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexLayer {
    pub digest: String,
}

impl Job for IndexLayer {
    const KIND: &'static str = "index_layer";
    fn dedup_key(&self) -> String {
        self.digest.clone()
    }
    async fn run(&self, ctx: &JobContext) -> JobResult {
        Ok(ctx.registry.index_layer(&self.digest).await?)
    }
}

/// The layers of a manifest that are indexed: image layers whose bytes the registry holds.
fn indexed_layers(parsed: &ParsedManifest) -> Vec<&Digest> {
    parsed
        .layers
        .iter()
        .filter(|l| index::compression_of(&l.media_type).is_some())
        .map(|l| &l.digest)
        .collect()
}

/// Where a manifest's scan stands, in Quay's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    Queued,
    Scanned,
    Failed,
    Unsupported,
    ManifestLayerTooLarge,
}

impl ScanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::Queued => "queued",
            ScanStatus::Scanned => "scanned",
            ScanStatus::Failed => "failed",
            ScanStatus::Unsupported => "unsupported",
            ScanStatus::ManifestLayerTooLarge => "manifest_layer_too_large",
        }
    }
}

/// One vulnerability of a package.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundVuln {
    pub id: String,
    pub severity: Severity,
    pub score: Option<f64>,
    pub vector: String,
    pub summary: String,
    pub details: String,
    pub aliases: Vec<String>,
    pub links: Vec<String>,
    /// The version that fixes it, if one is known.
    pub fixed_by: Option<String>,
    /// The ecosystem the record was matched in (`PyPI`, `Debian:12`).
    pub ecosystem: String,
    /// The source it was imported from.
    pub source: String,
}

/// One package of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub package: index::Package,
    pub path: String,
    pub added_by: String,
    /// The ecosystem it is matched in; `None` when no feed can name it.
    pub ecosystem: Option<String>,
    /// Whether any imported record covers that ecosystem.
    pub data: bool,
    pub vulnerabilities: Vec<FoundVuln>,
}

/// A manifest's security report.
#[derive(Debug, Clone)]
pub struct SecurityReport {
    pub status: ScanStatus,
    pub manifest: String,
    pub os: Option<index::OsRelease>,
    pub features: Vec<Feature>,
    /// Why the status is not `scanned`, or what the data cannot say.
    pub notes: Vec<String>,
    /// For an index: each platform's manifest digest, platform and status.
    pub platforms: Vec<(String, String, ScanStatus)>,
    /// Vulnerability data: imported sources and records.
    pub sources: usize,
    pub records: i64,
}

/// The scanner's state, for the banner and metrics.
#[derive(Debug, Clone, Default)]
pub struct ScannerState {
    pub enabled: bool,
    pub sources: Vec<SourceState>,
    pub records: i64,
    pub layers: Vec<(String, i64)>,
}

#[derive(Debug, Clone)]
pub struct SourceState {
    pub source: String,
    pub imported_at: i64,
    pub newest: i64,
    pub records: i64,
    pub last_error: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub read: u64,
    pub written: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub unreadable: u64,
    /// The first few unreadable records, with why.
    pub errors: Vec<String>,
}

/// Adapts an async byte stream to `Read`, for the indexer's blocking thread.
struct BlockingReader {
    handle: tokio::runtime::Handle,
    stream: crate::ByteStream,
    buf: bytes::Bytes,
}

impl Read for BlockingReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.handle.block_on(self.stream.try_next())? {
                Some(b) => self.buf = b,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        let _ = self.buf.split_to(n);
        Ok(n)
    }
}

/// The compression a layer's first bytes show (a media type may say gzip for a plain tar).
fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn to_new_record(a: &Advisory) -> berth_db::NewVulnRecord {
    berth_db::NewVulnRecord {
        id: a.id.clone(),
        modified: a.modified,
        summary: a.summary.clone(),
        details: a.details.clone(),
        severity: a.severity.as_str().to_string(),
        score: a.score,
        vector: a.vector.clone(),
        aliases: serde_json::to_string(&a.aliases).unwrap_or_else(|_| "[]".into()),
        link: a.links.join(" "),
        affected: a
            .affected
            .iter()
            .map(|p| {
                (
                    p.ecosystem.clone(),
                    p.name.clone(),
                    serde_json::to_string(&p.affected).unwrap_or_else(|_| "{}".into()),
                )
            })
            .collect(),
    }
}

impl Registry {
    /// Queues the indexing of a pushed manifest's layers not indexed yet, in the push's
    /// transaction (a layer shared by many images is indexed once).
    pub(crate) async fn queue_scans_in(
        &self,
        w: &mut WriteTx,
        parsed: &ParsedManifest,
    ) -> Result<()> {
        if !self.config.scan.enabled || parsed.kind.is_index() {
            return Ok(());
        }
        let layers = indexed_layers(parsed);
        for d in &layers {
            let digest = d.to_string();
            if self.db.queue_layer_index(w, &digest).await? {
                crate::jobs::enqueue(&self.db, w, &IndexLayer { digest }).await?;
            }
        }
        if !layers.is_empty() {
            self.db
                .queue_manifest_scan(w, &parsed.digest.to_string())
                .await?;
        }
        Ok(())
    }

    /// Refuses a push that the namespace's policy forbids (`block_push`): the manifest's layers
    /// not indexed yet are indexed now, in the request, and the image is matched before any row
    /// is written. Namespaces without such a policy cost one cache lookup.
    pub(crate) async fn push_gate(
        &self,
        who: &crate::auth::Who,
        repo: &RepoName,
        parsed: &ParsedManifest,
    ) -> Result<()> {
        if !self.config.scan.enabled || parsed.kind.is_index() {
            return Ok(());
        }
        let Some(p) = self.policy_for(repo.namespace()).await? else {
            return Ok(());
        };
        if !p.block_push {
            return Ok(());
        }
        let layers: Vec<String> = indexed_layers(parsed)
            .iter()
            .map(|d| d.to_string())
            .collect();
        let known: HashSet<String> = self
            .db
            .layer_indexes(&layers)
            .await?
            .into_iter()
            .filter(|r| r.state != "queued")
            .map(|r| r.digest)
            .collect();
        for d in layers.iter().filter(|d| !known.contains(*d)) {
            self.index_layer(d).await?;
        }
        let (status, image, _) = self.image_of(parsed).await?;
        let Some(image) = image.filter(|_| status == ScanStatus::Scanned) else {
            return Ok(());
        };
        let report = SecurityReport {
            status,
            manifest: parsed.digest.to_string(),
            os: image.os.clone(),
            features: self.match_image(&image).await?,
            notes: Vec::new(),
            platforms: Vec::new(),
            sources: 0,
            records: 0,
        };
        let vulns = summary::brief(&report);
        self.refuse_if_violating(
            Some(who),
            repo,
            &parsed.digest.to_string(),
            &p,
            &vulns,
            Gate::Push,
        )
        .await
    }

    /// Indexes one layer: streams its bytes once through the indexer and stores what it holds.
    /// A layer that cannot be read as a tar is recorded `failed` with the reason (not retried:
    /// the bytes will not change); a storage fault is retried.
    pub async fn index_layer(&self, digest: &str) -> Result<()> {
        let d: Digest = digest
            .parse()
            .map_err(|_| Error::invalid(format!("not a digest: {digest}")))?;
        let started = Instant::now();
        let stream = self.store.get(&d, None).await?;
        let handle = tokio::runtime::Handle::current();
        let limits = Limits {
            max_layer_bytes: self.config.scan.max_layer_bytes,
            ..Limits::default()
        };
        let outcome = tokio::task::spawn_blocking(move || {
            let mut r = BlockingReader {
                handle,
                stream,
                buf: bytes::Bytes::new(),
            };
            let mut head = [0u8; 4];
            let mut got = 0;
            while got < head.len() {
                match r.read(&mut head[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) => return Err(index::IndexError::Io(e)),
                }
            }
            let c = sniff(&head[..got]);
            index::index_layer(
                std::io::Cursor::new(head[..got].to_vec()).chain(r),
                c,
                &limits,
            )
        })
        .await
        .map_err(|e| Error::internal(format!("the indexer stopped: {e}")))?;
        let took = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        match outcome {
            Ok(found) => {
                let content = serde_json::to_string(&found)
                    .map_err(|e| Error::internal(format!("cannot encode a layer index: {e}")))?;
                let bytes = i64::try_from(found.bytes).unwrap_or(i64::MAX);
                metrics::counter!("berth_scan_layers_indexed_total", "outcome" => "indexed")
                    .increment(1);
                metrics::counter!("berth_scan_indexed_bytes_total").increment(found.bytes);
                metrics::histogram!("berth_scan_index_seconds").record(started.elapsed());
                self.db
                    .put_layer_index(
                        digest,
                        "indexed",
                        INDEXER_VERSION,
                        Some(&content),
                        None,
                        bytes,
                        took,
                    )
                    .await?;
            }
            Err(index::IndexError::Io(e)) => {
                // The bytes could not be read: storage trouble, worth another attempt.
                return Err(Error::Unavailable(format!("reading layer {digest}: {e}")));
            }
            Err(e) => {
                let state = if matches!(e, index::IndexError::TooLarge { .. }) {
                    "too_large"
                } else {
                    "failed"
                };
                metrics::counter!("berth_scan_layers_indexed_total", "outcome" => state)
                    .increment(1);
                tracing::info!(layer = digest, error = %e, "layer not indexed");
                self.db
                    .put_layer_index(
                        digest,
                        state,
                        INDEXER_VERSION,
                        None,
                        Some(&e.to_string()),
                        0,
                        took,
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Queues layers that need indexing: never indexed (pushed while the scanner was off),
    /// failed with attempts left, or indexed by an older indexer longer ago than the
    /// reindex threshold. Returns how many were queued.
    pub async fn queue_pending_indexing(&self, limit: i64) -> Result<u64> {
        if !self.config.scan.enabled {
            return Ok(0);
        }
        let threshold = berth_db::now_ms()
            - i64::try_from(self.config.scan.reindex_threshold.as_millis()).unwrap_or(0);
        let digests = self
            .db
            .layers_needing_index(
                limit,
                self.config.scan.max_retries,
                INDEXER_VERSION,
                threshold,
            )
            .await?;
        let mut queued = self.db.queue_unmatched_manifests(limit).await?;
        for digest in digests {
            let mut w = self.db.write().await?;
            let fresh = self.db.queue_layer_index(&mut w, &digest).await?;
            if fresh || self.db.requeue_layer_index(&mut w, &digest).await? {
                crate::jobs::enqueue(&self.db, &mut w, &IndexLayer { digest }).await?;
                queued += 1;
            }
            w.commit().await?;
        }
        Ok(queued)
    }

    /// Imports one OSV source (a path, `file://` or `https://` URL of an `all.zip`, a directory
    /// of records or one record): records new or changed since the last import are written,
    /// withdrawn records and records gone from a complete source are removed.
    pub async fn import_vuln_source(&self, source: &str) -> Result<ImportReport> {
        let result = self.import_vuln_source_inner(source).await;
        let outcome = match &result {
            Ok(r) => {
                let newest = self
                    .db
                    .vuln_modified(source)
                    .await?
                    .values()
                    .copied()
                    .max()
                    .unwrap_or(0);
                Ok((newest, r.written > 0 || r.removed > 0))
            }
            Err(e) => Err(e.to_string()),
        };
        self.db
            .record_vuln_import(source, outcome.as_ref().map(|n| *n).map_err(String::as_str))
            .await?;
        result
    }

    async fn import_vuln_source_inner(&self, source: &str) -> Result<ImportReport> {
        let (_download, path) = self.fetch_vuln_source(source).await?;
        let known = self.db.vuln_modified(source).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<std::result::Result<Advisory, String>>(256);
        let reader = tokio::task::spawn_blocking(move || {
            berth_scan::vulndb::read_source(&path, &mut |r| {
                let _ = tx.blocking_send(r.map_err(|e| e.to_string()));
            })
            .map_err(|e| e.to_string())
        });
        let mut report = ImportReport::default();
        let mut seen: HashSet<String> = HashSet::new();
        let mut batch: Vec<berth_db::NewVulnRecord> = Vec::new();
        let mut withdrawn: Vec<String> = Vec::new();
        while let Some(r) = rx.recv().await {
            report.read += 1;
            let a = match r {
                Ok(a) => a,
                Err(e) => {
                    report.unreadable += 1;
                    if report.errors.len() < 5 {
                        report.errors.push(e);
                    }
                    continue;
                }
            };
            seen.insert(a.id.clone());
            if a.withdrawn {
                if known.contains_key(&a.id) {
                    withdrawn.push(a.id.clone());
                }
                continue;
            }
            if known.get(&a.id).is_some_and(|m| *m >= a.modified) {
                report.unchanged += 1;
                continue;
            }
            batch.push(to_new_record(&a));
            if batch.len() >= IMPORT_BATCH {
                report.written += self.write_vuln_batch(source, &mut batch).await?;
            }
        }
        report.written += self.write_vuln_batch(source, &mut batch).await?;
        reader
            .await
            .map_err(|e| Error::internal(format!("the importer stopped: {e}")))?
            .map_err(|e| Error::invalid(format!("cannot read {source}: {e}")))?;
        // A source is a complete dump: what it no longer holds was withdrawn or deleted.
        let gone: Vec<String> = known
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .chain(withdrawn)
            .collect();
        if !gone.is_empty() {
            let mut w = self.db.write().await?;
            report.removed = self.db.delete_vuln_records(&mut w, &gone).await?;
            w.commit().await?;
        }
        tracing::info!(
            source,
            read = report.read,
            written = report.written,
            removed = report.removed,
            unreadable = report.unreadable,
            "vulnerability data imported"
        );
        Ok(report)
    }

    async fn write_vuln_batch(
        &self,
        source: &str,
        batch: &mut Vec<berth_db::NewVulnRecord>,
    ) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        let mut w = self.db.write().await?;
        self.db.put_vuln_records(&mut w, source, batch).await?;
        w.commit().await?;
        let n = batch.len() as u64;
        batch.clear();
        Ok(n)
    }

    /// A local path for `source`: itself, or a download (through the outbound guard) kept in a
    /// temporary directory for the import's length.
    async fn fetch_vuln_source(
        &self,
        source: &str,
    ) -> Result<(Option<tempfile::TempDir>, std::path::PathBuf)> {
        if let Some(path) = source.strip_prefix("file://") {
            return Ok((None, path.into()));
        }
        if !(source.starts_with("https://") || source.starts_with("http://")) {
            return Ok((None, source.into()));
        }
        let guard = self.outbound_guard();
        let checked = guard
            .check(source)
            .await
            .map_err(|e| Error::invalid(format!("{source}: {e}")))?;
        let client = guard
            .client(&checked, Duration::from_secs(600))
            .map_err(|e| Error::internal(format!("no HTTP client: {e}")))?;
        let resp = client
            .get(checked.url.clone())
            .send()
            .await
            .map_err(|e| Error::Upstream(format!("{source}: {e}")))?;
        if !resp.status().is_success() {
            return Err(Error::Upstream(format!(
                "{source} answered {}",
                resp.status()
            )));
        }
        let dir = tempfile::tempdir().map_err(|e| Error::internal(format!("no temp dir: {e}")))?;
        let name = if source.ends_with(".json") {
            "record.json"
        } else {
            "all.zip"
        };
        let path = dir.path().join(name);
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| Error::Upstream(format!("{source}: {e}")))?
        {
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(|e| Error::internal(format!("{}: {e}", path.display())))?;
        }
        Ok((Some(dir), path))
    }

    /// Imports every configured source; a source that fails is logged and recorded.
    pub async fn import_vuln_sources(&self) -> Result<()> {
        for s in self.config.scan.sources.clone() {
            if let Err(e) = self.import_vuln_source(&s).await {
                tracing::warn!(source = s, error = %e, "vulnerability data not imported");
            }
        }
        Ok(())
    }

    /// The scanner's state: sources, records, layers by state.
    pub async fn scanner_state(&self) -> Result<ScannerState> {
        Ok(ScannerState {
            enabled: self.config.scan.enabled,
            sources: self
                .db
                .vuln_sources()
                .await?
                .into_iter()
                .map(|s| SourceState {
                    source: s.source,
                    imported_at: s.imported_at,
                    newest: s.newest,
                    records: s.records,
                    last_error: s.last_error,
                })
                .collect(),
            records: self.db.vuln_record_count().await?,
            layers: self.db.layer_index_counts().await?,
        })
    }

    /// The security report of a manifest of `repo` (for an index: of each of its platforms).
    pub async fn security_report(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<SecurityReport> {
        if !self.config.scan.enabled {
            return Err(Error::not_found(
                "vulnerability scanning is off (FEATURE_SECURITY_SCANNER: false)",
            ));
        }
        let row = self
            .db
            .manifest_by_digest(repo.as_str(), &digest.to_string())
            .await?
            .ok_or_else(|| {
                Error::missing(
                    crate::Missing::Manifest,
                    format!("no manifest {digest} in {repo}"),
                )
            })?;
        let parsed = berth_oci::manifest::parse_manifest(Some(&row.media_type), &row.content)
            .map_err(|e| {
                Error::internal(format!("stored manifest {digest} does not parse: {}", e.0))
            })?;
        let sources = self.db.vuln_sources().await?;
        let records = self.db.vuln_record_count().await?;
        let mut report = SecurityReport {
            status: ScanStatus::Unsupported,
            manifest: digest.to_string(),
            os: None,
            features: Vec::new(),
            notes: Vec::new(),
            platforms: Vec::new(),
            sources: sources.len(),
            records,
        };
        if self.config.scan.sources.is_empty() && records == 0 {
            report.notes.push(
                "no vulnerability data is configured (SECURITY_SCANNER_OSV_SOURCES, or `berth vulndb import`): packages are listed, vulnerabilities cannot be"
                    .into(),
            );
        }
        if parsed.kind.is_index() {
            let mut statuses = Vec::new();
            for child in &parsed.manifests {
                let Some(crow) = self
                    .db
                    .manifest_by_digest(repo.as_str(), &child.digest.to_string())
                    .await?
                else {
                    continue;
                };
                let Ok(cparsed) =
                    berth_oci::manifest::parse_manifest(Some(&crow.media_type), &crow.content)
                else {
                    continue;
                };
                if cparsed.kind.is_index() {
                    continue;
                }
                let platform = child
                    .platform
                    .as_ref()
                    .map(crate::content::platform_name)
                    .unwrap_or_default();
                let (status, image, note) = self.image_of(&cparsed).await?;
                if let Some(n) = note {
                    report.notes.push(format!("{platform}: {n}"));
                }
                statuses.push(status);
                report
                    .platforms
                    .push((child.digest.to_string(), platform, status));
                if let Some(image) = image {
                    report.os = report.os.or(image.os.clone());
                    let features = self.match_image(&image).await?;
                    for f in features {
                        if !report.features.iter().any(|g| {
                            g.package == f.package && g.added_by == f.added_by && g.path == f.path
                        }) {
                            report.features.push(f);
                        }
                    }
                }
            }
            report.status = overall(&statuses);
            return Ok(report);
        }
        let (status, image, note) = self.image_of(&parsed).await?;
        report.status = status;
        report.notes.extend(note);
        if let Some(image) = image {
            report.os = image.os.clone();
            report.features = self.match_image(&image).await?;
        }
        Ok(report)
    }

    /// An image manifest's merged content, once every layer is indexed.
    async fn image_of(
        &self,
        parsed: &ParsedManifest,
    ) -> Result<(ScanStatus, Option<Image>, Option<String>)> {
        let layers: Vec<String> = indexed_layers(parsed)
            .iter()
            .map(|d| d.to_string())
            .collect();
        if layers.is_empty() {
            return Ok((
                ScanStatus::Unsupported,
                None,
                Some("the manifest has no image layers to scan".into()),
            ));
        }
        let rows: HashMap<String, berth_db::LayerIndexRow> = self
            .db
            .layer_indexes(&layers)
            .await?
            .into_iter()
            .map(|r| (r.digest.clone(), r))
            .collect();
        let mut indexes = Vec::with_capacity(layers.len());
        let mut queued = false;
        for d in &layers {
            let Some(row) = rows.get(d) else {
                queued = true;
                continue;
            };
            match (row.state.as_str(), &row.content) {
                ("indexed", Some(c)) => {
                    let li: LayerIndex = serde_json::from_str(c).map_err(|e| {
                        Error::internal(format!("stored index of layer {d} does not parse: {e}"))
                    })?;
                    indexes.push((d.clone(), li));
                }
                ("too_large", _) => {
                    return Ok((
                        ScanStatus::ManifestLayerTooLarge,
                        None,
                        Some(format!(
                            "layer {d} is larger than SECURITY_SCANNER_V4_INDEX_MAX_LAYER_SIZE"
                        )),
                    ));
                }
                ("failed", _) => {
                    return Ok((
                        ScanStatus::Failed,
                        None,
                        Some(format!(
                            "layer {d} could not be indexed: {}",
                            row.error.as_deref().unwrap_or("unknown error")
                        )),
                    ));
                }
                _ => queued = true,
            }
        }
        if queued {
            return Ok((ScanStatus::Queued, None, None));
        }
        Ok((ScanStatus::Scanned, Some(index::merge(&indexes)), None))
    }

    /// Each package of `image` with the vulnerabilities the imported data names for it.
    pub async fn match_image(&self, image: &Image) -> Result<Vec<Feature>> {
        let covered: HashSet<String> = self.db.vuln_ecosystems().await?.into_iter().collect();
        let targets: Vec<Option<matcher::Target>> = image
            .packages
            .iter()
            .map(|p| matcher::target(image.os.as_ref(), &p.package))
            .collect();
        // Candidates by (ecosystem, name), fetched per ecosystem.
        let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for t in targets.iter().flatten() {
            for e in &t.ecosystems {
                if covered.contains(e) {
                    wanted.entry(e.as_str()).or_default().push(t.name.clone());
                }
            }
        }
        let mut candidates: HashMap<(String, String), Vec<(String, Affected)>> = HashMap::new();
        for (eco, mut names) in wanted {
            names.sort();
            names.dedup();
            for row in self.db.vuln_candidates(eco, &names).await? {
                let Ok(a) = serde_json::from_str::<Affected>(&row.affected) else {
                    continue;
                };
                candidates
                    .entry((row.ecosystem, row.package))
                    .or_default()
                    .push((row.record_id, a));
            }
        }
        // Matches: (feature index, record id, ecosystem, fixed by).
        let mut matches: Vec<(usize, String, String, Option<String>)> = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let Some(t) = t else { continue };
            // A record names a package once, however many ecosystems or entries match it.
            let mut seen: HashSet<&str> = HashSet::new();
            for e in &t.ecosystems {
                let Some(cands) = candidates.get(&(e.clone(), t.name.clone())) else {
                    continue;
                };
                for (id, a) in cands {
                    if !seen.contains(id.as_str())
                        && berth_scan::osv::is_affected(t.scheme, &t.version, a)
                    {
                        seen.insert(id.as_str());
                        let fixed = a.fixed_after(t.scheme, &t.version).map(str::to_string);
                        matches.push((i, id.clone(), e.clone(), fixed));
                    }
                }
            }
        }
        let ids: Vec<String> = {
            let mut ids: Vec<String> = matches.iter().map(|m| m.1.clone()).collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let records: HashMap<String, berth_db::VulnRecordRow> = self
            .db
            .vuln_records_by_id(&ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut features: Vec<Feature> = image
            .packages
            .iter()
            .zip(&targets)
            .map(|(p, t)| {
                let ecosystem = t.as_ref().and_then(|t| t.ecosystems.first().cloned());
                let data = t
                    .as_ref()
                    .is_some_and(|t| t.ecosystems.iter().any(|e| covered.contains(e)));
                Feature {
                    package: p.package.clone(),
                    path: p.path.clone(),
                    added_by: p.added_by.clone(),
                    ecosystem,
                    data,
                    vulnerabilities: Vec::new(),
                }
            })
            .collect();
        for (i, id, eco, fixed) in matches {
            let Some(r) = records.get(&id) else { continue };
            let Some(f) = features.get_mut(i) else {
                continue;
            };
            f.vulnerabilities.push(FoundVuln {
                id: r.id.clone(),
                severity: Severity::parse(&r.severity).unwrap_or(Severity::Unknown),
                score: r.score,
                vector: r.vector.clone(),
                summary: r.summary.clone(),
                details: r.details.clone(),
                aliases: serde_json::from_str(&r.aliases).unwrap_or_default(),
                links: r.link.split_whitespace().map(str::to_string).collect(),
                fixed_by: fixed,
                ecosystem: eco,
                source: r.source.clone(),
            });
        }
        for f in &mut features {
            f.vulnerabilities
                .sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
        }
        Ok(features)
    }
}

/// An SBOM's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomFormat {
    SpdxJson,
    CycloneDxJson,
}

impl SbomFormat {
    pub fn parse(s: &str) -> Option<SbomFormat> {
        match s.trim() {
            "" | "spdx-json" | "spdx" => Some(SbomFormat::SpdxJson),
            "cyclonedx-json" | "cyclonedx" => Some(SbomFormat::CycloneDxJson),
            _ => None,
        }
    }
    /// The document's media type (also the artifact type of a stored SBOM).
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::SpdxJson => "application/spdx+json",
            SbomFormat::CycloneDxJson => "application/vnd.cyclonedx+json",
        }
    }
}

impl Registry {
    /// The SBOM of a scanned manifest of `repo` (an index's: its platforms' packages).
    pub async fn sbom(
        &self,
        repo: &RepoName,
        digest: &Digest,
        format: SbomFormat,
    ) -> Result<serde_json::Value> {
        let report = self.security_report(repo, digest).await?;
        if report.status != ScanStatus::Scanned {
            return Err(Error::conflict(format!(
                "{repo}@{digest} is not indexed (status {}); an SBOM needs its layers indexed{}",
                report.status.as_str(),
                if report.status == ScanStatus::Queued {
                    ": try again shortly"
                } else {
                    ""
                }
            )));
        }
        let packages: Vec<index::Installed> = report
            .features
            .iter()
            .map(|f| index::Installed {
                package: f.package.clone(),
                path: f.path.clone(),
                added_by: f.added_by.clone(),
            })
            .collect();
        let name = format!("{repo}@{digest}");
        let created = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let serial = uuid::Uuid::new_v4().to_string();
        let host = &self.config.notify.server_hostname;
        let namespace = format!(
            "{}://{}/sbom/{repo}",
            if self.config.notify.scheme.is_empty() {
                "https"
            } else {
                &self.config.notify.scheme
            },
            if host.is_empty() {
                "berth.invalid"
            } else {
                host
            }
        );
        let subject = berth_scan::sbom::Subject {
            name: &name,
            digest: &report.manifest,
            namespace: &namespace,
            created: &created,
            serial: &serial,
            tool_version: env!("CARGO_PKG_VERSION"),
        };
        Ok(match format {
            SbomFormat::SpdxJson => berth_scan::sbom::spdx(&subject, report.os.as_ref(), &packages),
            SbomFormat::CycloneDxJson => {
                berth_scan::sbom::cyclonedx(&subject, report.os.as_ref(), &packages)
            }
        })
    }

    /// Stores the SBOM of `digest` in `repo` as an OCI artifact whose subject is the image (the
    /// referrers API lists it), through the same upload and manifest paths as a push.
    pub async fn store_sbom(
        &self,
        who: &crate::auth::Who,
        repo: &RepoName,
        digest: &Digest,
        format: SbomFormat,
    ) -> Result<Digest> {
        let doc = self.sbom(repo, digest, format).await?;
        let bytes = serde_json::to_vec(&doc)
            .map_err(|e| Error::internal(format!("cannot encode an SBOM: {e}")))?;
        let subject = self
            .db
            .manifest_by_digest(repo.as_str(), &digest.to_string())
            .await?
            .ok_or_else(|| {
                Error::missing(
                    crate::Missing::Manifest,
                    format!("no manifest {digest} in {repo}"),
                )
            })?;
        let empty = b"{}".to_vec();
        let mut descs = Vec::new();
        for b in [&empty, &bytes] {
            let d = Digest::sha256_of(b);
            let len = b.len() as u64;
            let body: crate::ByteStream = Box::pin(futures::stream::once(futures::future::ready(
                Ok(bytes::Bytes::from(b.clone())),
            )));
            self.upload_monolithic(repo, &d, Some(len), body).await?;
            descs.push((d, len));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": berth_oci::media::OCI_MANIFEST,
            "artifactType": format.media_type(),
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": descs[0].0.to_string(), "size": descs[0].1},
            "layers": [{"mediaType": format.media_type(), "digest": descs[1].0.to_string(), "size": descs[1].1}],
            "subject": {"mediaType": subject.media_type, "digest": digest.to_string(), "size": subject.content.len()},
            "annotations": {"org.opencontainers.image.created": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(), "dev.berth.sbom.generator": concat!("berth ", env!("CARGO_PKG_VERSION"))},
        });
        let body = serde_json::to_vec(&manifest)
            .map_err(|e| Error::internal(format!("cannot encode a manifest: {e}")))?;
        let d = Digest::sha256_of(&body);
        self.manifest_put(
            who,
            repo,
            &berth_oci::Reference::Digest(d.clone()),
            &[],
            Some(berth_oci::media::OCI_MANIFEST),
            body,
        )
        .await?;
        Ok(d)
    }
}

/// An index's status from its platforms': scanned when all are, else the first trouble.
pub(crate) fn overall(statuses: &[ScanStatus]) -> ScanStatus {
    if statuses.is_empty() {
        return ScanStatus::Unsupported;
    }
    for s in [
        ScanStatus::Queued,
        ScanStatus::Failed,
        ScanStatus::ManifestLayerTooLarge,
    ] {
        if statuses.contains(&s) {
            return s;
        }
    }
    if statuses.contains(&ScanStatus::Scanned) {
        ScanStatus::Scanned
    } else {
        ScanStatus::Unsupported
    }
}

/// Severity levels as the API's `Severity` values.
pub fn severity_names() -> Vec<&'static str> {
    Severity::ALL.iter().map(|s| s.as_str()).collect()
}

pub use berth_scan::vulndb::Severity as VulnSeverity;
