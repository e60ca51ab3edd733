//! The vulnerability scanner's rows: imported vulnerability records and what they affect, each
//! source's last import, and what each layer holds (indexed once per digest).

use crate::{Db, Result, WriteTx, marks, now_ms};
use sqlx::Row;
use std::collections::HashMap;

/// A record to store.
#[derive(Debug, Clone)]
pub struct NewVulnRecord {
    pub id: String,
    pub modified: i64,
    pub summary: String,
    pub details: String,
    pub severity: String,
    pub score: Option<f64>,
    pub vector: String,
    /// JSON array.
    pub aliases: String,
    pub link: String,
    /// (ecosystem, package, affected JSON).
    pub affected: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VulnRecordRow {
    pub id: String,
    pub source: String,
    pub modified: i64,
    pub summary: String,
    pub details: String,
    pub severity: String,
    pub score: Option<f64>,
    pub vector: String,
    pub aliases: String,
    pub link: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AffectedRow {
    pub record_id: String,
    pub ecosystem: String,
    pub package: String,
    pub affected: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VulnSourceRow {
    pub source: String,
    pub imported_at: i64,
    pub newest: i64,
    pub records: i64,
    pub last_error: Option<String>,
    pub attempted_at: i64,
    pub changed_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LayerIndexRow {
    pub digest: String,
    pub state: String,
    pub version: i64,
    pub content: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub bytes: i64,
    pub took_ms: i64,
    pub queued_at: i64,
    pub indexed_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecurityPolicyRow {
    pub namespace: String,
    pub min_severity: String,
    pub block_pull: i64,
    pub block_push: i64,
    pub only_fixable: i64,
    /// JSON array.
    pub allowlist: String,
    pub updated_at: i64,
}

const REPOS_HOLDING: &str = "SELECT r.id, r.name, t.name FROM manifests m
     JOIN repositories r ON r.id = m.repo_id
     LEFT JOIN tags t ON t.repo_id = m.repo_id AND t.manifest_digest = m.digest AND t.end_at IS NULL
     WHERE m.digest = $1 AND m.deleted_at IS NULL
     ORDER BY r.id, t.name";

fn group_holders(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<(i64, String, Vec<String>)>> {
    let mut out: Vec<(i64, String, Vec<String>)> = Vec::new();
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let name: String = r.try_get(1)?;
        let tag: Option<String> = r.try_get(2)?;
        match out.last_mut() {
            Some(last) if last.0 == id => last.2.extend(tag),
            _ => out.push((id, name, tag.into_iter().collect())),
        }
    }
    Ok(out)
}

/// IN-lists are cut into pieces of this many values.
const CHUNK: usize = 400;

impl Db {
    /// `id → modified` of the records a source has imported.
    pub async fn vuln_modified(&self, source: &str) -> Result<HashMap<String, i64>> {
        let rows = sqlx::query("SELECT id, modified FROM vuln_records WHERE source = $1")
            .bind(source)
            .fetch_all(self.pool())
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in rows {
            out.insert(r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?);
        }
        Ok(out)
    }

    /// Writes records (replacing what each id held, whichever source it came from).
    pub async fn put_vuln_records(
        &self,
        w: &mut WriteTx,
        source: &str,
        records: &[NewVulnRecord],
    ) -> Result<()> {
        let now = now_ms();
        for r in records {
            sqlx::query("DELETE FROM vuln_affected WHERE record_id = $1")
                .bind(&r.id)
                .execute(&mut *w.tx)
                .await?;
            sqlx::query(
                "INSERT INTO vuln_records (id, source, modified, summary, details, severity, score, vector, aliases, link, imported_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO UPDATE SET source = excluded.source, modified = excluded.modified,
                   summary = excluded.summary, details = excluded.details, severity = excluded.severity,
                   score = excluded.score, vector = excluded.vector, aliases = excluded.aliases,
                   link = excluded.link, imported_at = excluded.imported_at",
            )
            .bind(&r.id)
            .bind(source)
            .bind(r.modified)
            .bind(&r.summary)
            .bind(&r.details)
            .bind(&r.severity)
            .bind(r.score)
            .bind(&r.vector)
            .bind(&r.aliases)
            .bind(&r.link)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
            for (eco, pkg, affected) in &r.affected {
                sqlx::query(
                    "INSERT INTO vuln_affected (record_id, ecosystem, package, affected) VALUES ($1, $2, $3, $4)",
                )
                .bind(&r.id)
                .bind(eco)
                .bind(pkg)
                .bind(affected)
                .execute(&mut *w.tx)
                .await?;
            }
        }
        Ok(())
    }

    /// Removes records (withdrawn, or gone from their source).
    pub async fn delete_vuln_records(&self, w: &mut WriteTx, ids: &[String]) -> Result<u64> {
        let mut n = 0;
        for chunk in ids.chunks(CHUNK) {
            let list = marks(1, chunk.len());
            let sql = format!("DELETE FROM vuln_affected WHERE record_id IN ({list})");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *w.tx).await?;
            let sql = format!("DELETE FROM vuln_records WHERE id IN ({list})");
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()));
            for id in chunk {
                q = q.bind(id);
            }
            n += q.execute(&mut *w.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Records an import attempt of `source`: its outcome, and on success the newest `modified`.
    pub async fn record_vuln_import(
        &self,
        source: &str,
        outcome: std::result::Result<(i64, bool), &str>,
    ) -> Result<()> {
        let now = now_ms();
        let mut w = self.write().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vuln_records WHERE source = $1")
            .bind(source)
            .fetch_one(&mut *w.tx)
            .await?;
        match outcome {
            Ok((newest, changed)) => {
                sqlx::query(
                    "INSERT INTO vuln_sources (source, imported_at, newest, records, last_error, attempted_at, changed_at)
                     VALUES ($1, $2, $3, $4, NULL, $2, $5)
                     ON CONFLICT (source) DO UPDATE SET imported_at = excluded.imported_at,
                       newest = excluded.newest, records = excluded.records, last_error = NULL,
                       attempted_at = excluded.attempted_at,
                       changed_at = CASE WHEN $6 THEN excluded.changed_at ELSE vuln_sources.changed_at END",
                )
                .bind(source)
                .bind(now)
                .bind(newest)
                .bind(count)
                .bind(if changed { now } else { 0 })
                .bind(changed)
                .execute(&mut *w.tx)
                .await?;
            }
            Err(error) => {
                sqlx::query(
                    "INSERT INTO vuln_sources (source, imported_at, newest, records, last_error, attempted_at)
                     VALUES ($1, 0, 0, $2, $3, $4)
                     ON CONFLICT (source) DO UPDATE SET last_error = excluded.last_error,
                       records = excluded.records, attempted_at = excluded.attempted_at",
                )
                .bind(source)
                .bind(count)
                .bind(error)
                .bind(now)
                .execute(&mut *w.tx)
                .await?;
            }
        }
        w.commit().await
    }

    pub async fn vuln_sources(&self) -> Result<Vec<VulnSourceRow>> {
        Ok(sqlx::query_as(
            "SELECT source, imported_at, newest, records, last_error, attempted_at, changed_at FROM vuln_sources ORDER BY source",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// How many records are stored, over every source.
    pub async fn vuln_record_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM vuln_records")
            .fetch_one(self.pool())
            .await?)
    }

    /// What the records say about `packages` of one ecosystem.
    pub async fn vuln_candidates(
        &self,
        ecosystem: &str,
        packages: &[String],
    ) -> Result<Vec<AffectedRow>> {
        let mut out = Vec::new();
        for chunk in packages.chunks(CHUNK) {
            let sql = format!(
                "SELECT record_id, ecosystem, package, affected FROM vuln_affected
                 WHERE ecosystem = $1 AND package IN ({})",
                marks(2, chunk.len())
            );
            let mut q = sqlx::query_as::<_, AffectedRow>(sqlx::AssertSqlSafe(sql)).bind(ecosystem);
            for p in chunk {
                q = q.bind(p);
            }
            out.extend(q.fetch_all(self.pool()).await?);
        }
        Ok(out)
    }

    /// Whether any record names an ecosystem (to tell "no vulnerabilities" from "no data").
    pub async fn vuln_ecosystems(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT ecosystem FROM vuln_affected ORDER BY ecosystem")
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn vuln_records_by_id(&self, ids: &[String]) -> Result<Vec<VulnRecordRow>> {
        self.rows_in(
            "SELECT id, source, modified, summary, details, severity, score, vector, aliases, link
             FROM vuln_records WHERE id IN",
            ids,
        )
        .await
    }

    /// `select` (ending in `… IN`) over `values`, cut into IN-lists of [`CHUNK`].
    async fn rows_in<T>(&self, select: &str, values: &[String]) -> Result<Vec<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    {
        let mut out = Vec::new();
        for chunk in values.chunks(CHUNK) {
            let sql = format!("{select} ({})", marks(1, chunk.len()));
            let mut q = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql));
            for v in chunk {
                q = q.bind(v);
            }
            out.extend(q.fetch_all(self.pool()).await?);
        }
        Ok(out)
    }

    /// Records that `digest` is to be indexed, in the push's transaction; true when it was not
    /// known (the caller then queues the job).
    pub async fn queue_layer_index(&self, w: &mut WriteTx, digest: &str) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO layer_index (digest, state, queued_at) VALUES ($1, 'queued', $2)
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Marks `digest` for indexing again (a newer indexer, a retry); true when it was changed.
    pub async fn requeue_layer_index(&self, w: &mut WriteTx, digest: &str) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE layer_index SET state = 'queued', queued_at = $2 WHERE digest = $1 AND state <> 'queued'",
        )
        .bind(digest)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    pub async fn layer_indexes(&self, digests: &[String]) -> Result<Vec<LayerIndexRow>> {
        self.rows_in(
            "SELECT digest, state, version, content, error, attempts, bytes, took_ms, queued_at, indexed_at
             FROM layer_index WHERE digest IN",
            digests,
        )
        .await
    }

    /// Stores what indexing `digest` found (or why it could not).
    #[allow(clippy::too_many_arguments)]
    pub async fn put_layer_index(
        &self,
        digest: &str,
        state: &str,
        version: i64,
        content: Option<&str>,
        error: Option<&str>,
        bytes: i64,
        took_ms: i64,
    ) -> Result<()> {
        let now = now_ms();
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO layer_index (digest, state, version, content, error, attempts, bytes, took_ms, queued_at, indexed_at)
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $8)
             ON CONFLICT (digest) DO UPDATE SET state = excluded.state, version = excluded.version,
               content = excluded.content, error = excluded.error,
               attempts = layer_index.attempts + 1, bytes = excluded.bytes,
               took_ms = excluded.took_ms, indexed_at = excluded.indexed_at",
        )
        .bind(digest)
        .bind(state)
        .bind(version)
        .bind(content)
        .bind(error)
        .bind(bytes)
        .bind(took_ms)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Layers that need indexing: stored image layers of live manifests with no index row (a
    /// pull-through cache's layer once it has been pulled), failed ones with attempts left
    /// (`max_attempts`), and ones indexed by an indexer older than `version` before
    /// `older_than` (ms).
    pub async fn layers_needing_index(
        &self,
        limit: i64,
        max_attempts: i64,
        version: i64,
        older_than: i64,
    ) -> Result<Vec<String>> {
        let mut out: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT r.digest FROM manifest_refs r
             JOIN manifests m ON m.id = r.manifest_id AND m.deleted_at IS NULL
             JOIN blobs b ON b.digest = r.digest
             LEFT JOIN layer_index l ON l.digest = r.digest
             WHERE r.kind = 'layer' AND l.digest IS NULL
               AND r.media_type IN ('application/vnd.oci.image.layer.v1.tar',
                 'application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd',
                 'application/vnd.docker.image.rootfs.diff.tar', 'application/vnd.docker.image.rootfs.diff.tar.gzip',
                 'application/vnd.docker.image.rootfs.diff.tar.zstd')
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let redo: Vec<String> = sqlx::query_scalar(
            "SELECT digest FROM layer_index
             WHERE (state = 'failed' AND attempts < $1) OR (state <> 'queued' AND version < $2 AND COALESCE(indexed_at, 0) < $3)
             LIMIT $4",
        )
        .bind(max_attempts)
        .bind(version)
        .bind(older_than)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        out.extend(redo);
        Ok(out)
    }

    /// When the vulnerability data last changed (an import wrote or removed records), ms.
    pub async fn vuln_data_changed_at(&self) -> Result<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(changed_at) FROM vuln_sources")
            .fetch_one(self.pool())
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Image manifests to match: queued (pushed, layers maybe still indexing) or matched
    /// before `data_changed_at`: `(digest, a repository holding it (none: deleted
    /// everywhere), its stored status, its stored vulns)`. Reads only `manifest_scan`'s indexes.
    pub async fn manifests_to_match(
        &self,
        data_changed_at: i64,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>, String, String)>> {
        let rows = sqlx::query(
            "SELECT s.digest,
                    (SELECT MIN(r.name) FROM manifests m JOIN repositories r ON r.id = m.repo_id
                     WHERE m.digest = s.digest AND m.deleted_at IS NULL),
                    s.status, s.vulns
             FROM manifest_scan s
             WHERE s.status = 'queued' OR s.checked_at < $1
             ORDER BY s.checked_at
             LIMIT $2",
        )
        .bind(data_changed_at)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?,
                    r.try_get::<Option<String>, _>(1)?,
                    r.try_get::<String, _>(2)?,
                    r.try_get::<String, _>(3)?,
                ))
            })
            .collect()
    }

    /// Records that an image manifest is to be matched (its push's transaction); nothing when
    /// the digest already has a row.
    pub async fn queue_manifest_scan(&self, w: &mut WriteTx, digest: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO manifest_scan (digest, status, checked_at) VALUES ($1, 'queued', 0)
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Queues image manifests that have no row (pushed while scanning was off); how many.
    pub async fn queue_unmatched_manifests(&self, limit: i64) -> Result<u64> {
        let digests: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT m.digest FROM manifests m
             LEFT JOIN manifest_scan s ON s.digest = m.digest
             WHERE s.digest IS NULL AND m.deleted_at IS NULL
               AND m.media_type IN ('application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json')
             LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        if digests.is_empty() {
            return Ok(0);
        }
        let mut w = self.write().await?;
        for d in &digests {
            self.queue_manifest_scan(&mut w, d).await?;
        }
        w.commit().await?;
        Ok(digests.len() as u64)
    }

    /// Forgets the match of a manifest no repository holds any more.
    pub async fn forget_manifest_scan(&self, digest: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM manifest_scan WHERE digest = $1")
            .bind(digest)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub async fn put_manifest_scan(
        &self,
        w: &mut WriteTx,
        digest: &str,
        status: &str,
        vulns: &str,
        counts: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO manifest_scan (digest, status, vulns, counts, checked_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (digest) DO UPDATE SET status = excluded.status, vulns = excluded.vulns,
               counts = excluded.counts, checked_at = excluded.checked_at",
        )
        .bind(digest)
        .bind(status)
        .bind(vulns)
        .bind(counts)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// `(status, vulns JSON, counts JSON)` of manifests by digest.
    pub async fn manifest_scans(
        &self,
        digests: &[String],
    ) -> Result<HashMap<String, (String, String, String)>> {
        let rows: Vec<(String, String, String, String)> = self
            .rows_in(
                "SELECT digest, status, vulns, counts FROM manifest_scan WHERE digest IN",
                digests,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(d, status, vulns, counts)| (d, (status, vulns, counts)))
            .collect())
    }

    /// Manifests by worst severity, over every stored match (for metrics).
    pub async fn manifest_scan_counts(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT status, counts FROM manifest_scan")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect()
    }

    /// Every security policy: `(namespace, min_severity, block_pull, block_push, only_fixable, allowlist JSON, updated_at)`.
    pub async fn security_policies(&self) -> Result<Vec<SecurityPolicyRow>> {
        Ok(sqlx::query_as(
            "SELECT namespace, min_severity, block_pull, block_push, only_fixable, allowlist, updated_at FROM security_policies",
        )
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn put_security_policy(&self, w: &mut WriteTx, p: &SecurityPolicyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO security_policies (namespace, min_severity, block_pull, block_push, only_fixable, allowlist, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (namespace) DO UPDATE SET min_severity = excluded.min_severity,
               block_pull = excluded.block_pull, block_push = excluded.block_push,
               only_fixable = excluded.only_fixable, allowlist = excluded.allowlist,
               updated_at = excluded.updated_at",
        )
        .bind(&p.namespace)
        .bind(&p.min_severity)
        .bind(p.block_pull)
        .bind(p.block_push)
        .bind(p.only_fixable)
        .bind(&p.allowlist)
        .bind(p.updated_at)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    pub async fn delete_security_policy(&self, w: &mut WriteTx, namespace: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM security_policies WHERE namespace = $1")
            .bind(namespace)
            .execute(&mut *w.tx)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The repositories holding a live manifest, with the tags on it there (in `w`).
    pub async fn repos_holding_manifest(
        &self,
        w: &mut WriteTx,
        digest: &str,
    ) -> Result<Vec<(i64, String, Vec<String>)>> {
        let rows = sqlx::query(REPOS_HOLDING)
            .bind(digest)
            .fetch_all(&mut *w.tx)
            .await?;
        group_holders(rows)
    }

    /// [`Db::repos_holding_manifest`], outside a transaction.
    pub async fn repos_holding_manifest_now(
        &self,
        digest: &str,
    ) -> Result<Vec<(i64, String, Vec<String>)>> {
        let rows = sqlx::query(REPOS_HOLDING)
            .bind(digest)
            .fetch_all(self.pool())
            .await?;
        group_holders(rows)
    }

    /// Stored matches naming `id` (a record id or alias): `(manifest digest, vulns JSON)`.
    pub async fn manifests_with_vuln(&self, id: &str, limit: i64) -> Result<Vec<(String, String)>> {
        let pattern = format!("%\"{}\"%", crate::escape_like(id));
        let rows = sqlx::query(
            "SELECT digest, vulns FROM manifest_scan WHERE status = 'scanned' AND vulns LIKE $1 ESCAPE '!' LIMIT $2",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect()
    }

    /// Indexed layers whose content names a package `name`.
    pub async fn layers_with_package(&self, name: &str, limit: i64) -> Result<Vec<String>> {
        // The index is stored as compact JSON: `"name":"<name>"`.
        let quoted = format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
        let pattern = format!("%\"name\":{}%", crate::escape_like(&quoted));
        Ok(sqlx::query_scalar(
            "SELECT digest FROM layer_index WHERE state = 'indexed' AND content LIKE $1 ESCAPE '!' LIMIT $2",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// `(repository, manifest digest)` of live image manifests using any of `layers`.
    pub async fn manifests_using_layers(
        &self,
        layers: &[String],
        limit: i64,
    ) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in layers.chunks(CHUNK) {
            let sql = format!(
                "SELECT DISTINCT r.name, m.digest FROM manifest_refs f
                 JOIN manifests m ON m.id = f.manifest_id AND m.deleted_at IS NULL
                 JOIN repositories r ON r.id = m.repo_id
                 WHERE f.kind = 'layer' AND f.digest IN ({}) LIMIT {limit}",
                marks(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for d in chunk {
                q = q.bind(d);
            }
            for r in q.fetch_all(self.pool()).await? {
                out.push((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?));
            }
        }
        Ok(out)
    }

    /// (state, count) over the layer index, for metrics.
    pub async fn layer_index_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM layer_index GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_replace_and_candidates_find_them() {
        let (_dir, db) = crate::test_db().await;
        let rec = |modified| NewVulnRecord {
            id: "PYSEC-1".into(),
            modified,
            summary: "s".into(),
            details: String::new(),
            severity: "High".into(),
            score: Some(7.5),
            vector: "v".into(),
            aliases: "[]".into(),
            link: String::new(),
            affected: vec![("PyPI".into(), "requests".into(), "{}".into())],
        };
        let mut w = db.write().await.expect("tx");
        db.put_vuln_records(&mut w, "src", &[rec(1)])
            .await
            .expect("put");
        db.put_vuln_records(&mut w, "src", &[rec(2)])
            .await
            .expect("put again");
        w.commit().await.expect("commit");
        let c = db
            .vuln_candidates("PyPI", &["requests".into(), "other".into()])
            .await
            .expect("candidates");
        assert_eq!(c.len(), 1, "replaced, not duplicated");
        assert_eq!(db.vuln_modified("src").await.expect("m")["PYSEC-1"], 2);
        let r = db.vuln_records_by_id(&["PYSEC-1".into()]).await.expect("r");
        assert_eq!(r[0].score, Some(7.5));
        let mut w = db.write().await.expect("tx");
        assert_eq!(
            db.delete_vuln_records(&mut w, &["PYSEC-1".into()])
                .await
                .expect("del"),
            1
        );
        w.commit().await.expect("commit");
        assert!(
            db.vuln_candidates("PyPI", &["requests".into()])
                .await
                .expect("c")
                .is_empty()
        );
        db.record_vuln_import("src", Ok((2, true)))
            .await
            .expect("ok");
        db.record_vuln_import("src", Err("down"))
            .await
            .expect("err");
        let s = db.vuln_sources().await.expect("sources");
        assert_eq!(s[0].newest, 2);
        assert_eq!(s[0].last_error.as_deref(), Some("down"));
    }

    #[tokio::test]
    async fn a_layer_is_queued_once() {
        let (_dir, db) = crate::test_db().await;
        let mut w = db.write().await.expect("tx");
        assert!(db.queue_layer_index(&mut w, "sha256:a").await.expect("q"));
        assert!(!db.queue_layer_index(&mut w, "sha256:a").await.expect("q"));
        w.commit().await.expect("commit");
        db.put_layer_index("sha256:a", "indexed", 1, Some("{}"), None, 10, 1)
            .await
            .expect("put");
        let rows = db.layer_indexes(&["sha256:a".into()]).await.expect("rows");
        assert_eq!(rows[0].state, "indexed");
        assert_eq!(rows[0].attempts, 1);
    }
}
