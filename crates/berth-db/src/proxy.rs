//! Pull-through cache organizations, and the reads their pull path needs.

use crate::{Db, Result, WriteTx, now_ms};

/// A cache organization's upstream.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProxyCacheRow {
    pub namespace: String,
    pub upstream_registry: String,
    pub username: Option<String>,
    pub password_sealed: Option<String>,
    pub insecure: i64,
    pub expiration_s: i64,
    pub created_at: i64,
    /// JSON array of further upstreams, tried in order: `{upstream_registry, username,
    /// password_sealed, insecure}`.
    pub fallbacks: String,
}

impl Db {
    /// Every cache organization.
    pub async fn proxy_caches(&self) -> Result<Vec<ProxyCacheRow>> {
        Ok(sqlx::query_as(
            "SELECT namespace, upstream_registry, username, password_sealed, insecure,
                expiration_s, created_at, fallbacks FROM proxy_caches ORDER BY namespace",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The cache configuration of `namespace`, if it is a cache organization.
    pub async fn proxy_cache(&self, namespace: &str) -> Result<Option<ProxyCacheRow>> {
        Ok(sqlx::query_as(
            "SELECT namespace, upstream_registry, username, password_sealed, insecure,
                expiration_s, created_at, fallbacks FROM proxy_caches WHERE namespace = $1",
        )
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Makes `row.namespace` a cache organization. False when it already is one.
    pub async fn insert_proxy_cache(&self, w: &mut WriteTx, row: &ProxyCacheRow) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO proxy_caches (namespace, upstream_registry, username, password_sealed,
                insecure, expiration_s, created_at, fallbacks) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (namespace) DO NOTHING",
        )
        .bind(&row.namespace)
        .bind(&row.upstream_registry)
        .bind(&row.username)
        .bind(&row.password_sealed)
        .bind(row.insecure)
        .bind(row.expiration_s)
        .bind(now_ms())
        .bind(&row.fallbacks)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Ends `namespace`'s cache configuration (its cached repositories stay). False when it
    /// had none.
    pub async fn delete_proxy_cache(&self, w: &mut WriteTx, namespace: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM proxy_caches WHERE namespace = $1")
            .bind(namespace)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The manifest `tag` of `repo_id` pointed at most recently, live or ended, while that
    /// manifest is still stored: what a cache serves when its upstream cannot answer.
    pub async fn last_tag_target(&self, repo_id: i64, tag: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT t.manifest_digest FROM tags t
             JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest
             WHERE t.repo_id = $1 AND t.name = $2 AND m.deleted_at IS NULL
             ORDER BY t.start_at DESC, t.id DESC LIMIT 1",
        )
        .bind(repo_id)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The size a live manifest of `repo` gives blob `digest`, if one references it.
    pub async fn referenced_blob_size(&self, repo: &str, digest: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT f.size FROM manifest_refs f JOIN manifests m ON m.id = f.manifest_id
             JOIN repositories r ON r.id = m.repo_id
             WHERE r.name = $1 AND f.digest = $2 AND f.kind IN ('config', 'layer')
               AND m.deleted_at IS NULL LIMIT 1",
        )
        .bind(repo)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?)
    }
}

impl Db {
    /// The least recently pulled live tag of cache organization `namespace` (the soonest
    /// expiry — each confirmed pull moves it — then the oldest), leaving out tags whose manifest
    /// or whose index's children reference blob `keep_digest`.
    pub async fn cache_eviction_candidate(
        &self,
        namespace: &str,
        keep_digest: &str,
    ) -> Result<Option<(i64, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT t.repo_id, r.name, t.name FROM tags t
             JOIN repositories r ON r.id = t.repo_id
             JOIN namespaces n ON n.id = r.namespace_id
             WHERE n.name = $1 AND t.end_at IS NULL AND r.deleted_at IS NULL
               AND NOT EXISTS (
                 SELECT 1 FROM manifests m JOIN manifest_refs mr ON mr.manifest_id = m.id
                 WHERE m.repo_id = t.repo_id AND m.digest = t.manifest_digest AND mr.digest = $2)
               AND NOT EXISTS (
                 SELECT 1 FROM manifests m
                 JOIN manifest_refs c ON c.manifest_id = m.id AND c.kind = 'manifest'
                 JOIN manifests cm ON cm.repo_id = m.repo_id AND cm.digest = c.digest
                 JOIN manifest_refs mr ON mr.manifest_id = cm.id
                 WHERE m.repo_id = t.repo_id AND m.digest = t.manifest_digest AND mr.digest = $2)
             ORDER BY COALESCE(t.expires_at, t.start_at), t.start_at, t.id LIMIT 1",
        )
        .bind(namespace)
        .bind(keep_digest)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The digest live tag `tag` of `repo_id` points at, read inside the caller's transaction.
    pub async fn live_tag_digest_in(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        tag: &str,
    ) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT manifest_digest FROM tags WHERE repo_id = $1 AND name = $2 AND end_at IS NULL",
        )
        .bind(repo_id)
        .bind(tag)
        .fetch_optional(&mut *w.tx)
        .await?)
    }

    /// Removes tag `tag` of `repo_id` with its whole history (a cache's eviction: the upstream
    /// still has it, nothing needs restoring). Answers how many rows went.
    pub async fn delete_tag_everywhere(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        tag: &str,
    ) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND name = $2")
                .bind(repo_id)
                .bind(tag)
                .execute(&mut *w.tx)
                .await?
                .rows_affected(),
        )
    }
}
