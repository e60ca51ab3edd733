//! Namespace quotas and storage usage. Usage is never stored: it is computed from the manifests
//! present (deleted ones still in the time machine included, since their blobs still occupy
//! storage), each blob counted once per namespace — so it is exact through pushes, deletes and
//! garbage collection by construction.

use crate::{Backend, Db, QuotaLimitKind, Result, WriteTx, now_ms};

/// A quota limit: a threshold as a percentage of the quota's bytes.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QuotaLimit {
    pub id: i64,
    /// `Warning` or `Reject`.
    pub kind: QuotaLimitKind,
    #[sqlx(rename = "threshold_percent")]
    pub percent: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuotaRow {
    pub id: i64,
    pub namespace: String,
    pub limit_bytes: i64,
    pub limits: Vec<QuotaLimit>,
}

/// Distinct config and layer blobs referenced by the manifests of live repositories of a
/// namespace. `$1` is the namespace name.
const NAMESPACE_DIGESTS: &str = "SELECT mr.digest FROM manifest_refs mr
     JOIN manifests m ON m.id = mr.manifest_id
     JOIN repositories r ON r.id = m.repo_id
     JOIN namespaces n ON n.id = r.namespace_id
     WHERE n.name = $1 AND r.deleted_at IS NULL AND mr.kind IN ('config', 'layer')";

/// The bytes of a namespace's distinct blobs (`$1` the namespace name).
fn usage_sql() -> String {
    format!(
        "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs WHERE digest IN ({NAMESPACE_DIGESTS})"
    )
}

impl Db {
    /// The quota of a namespace, with its limits.
    pub async fn quota_for(&self, namespace: &str) -> Result<Option<QuotaRow>> {
        let Some((id, namespace, limit_bytes)) = sqlx::query_as::<_, (i64, String, i64)>(
            "SELECT id, namespace, limit_bytes FROM namespace_quotas WHERE namespace = $1",
        )
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let limits = sqlx::query_as(
            "SELECT id, kind, threshold_percent FROM quota_limits WHERE quota_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(QuotaRow {
            id,
            namespace,
            limit_bytes,
            limits,
        }))
    }

    /// Every namespace with a quota.
    pub async fn quota_namespaces(&self) -> Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT namespace FROM namespace_quotas ORDER BY namespace")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Creates a namespace's quota; `None` if it already has one.
    pub async fn create_quota(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        limit_bytes: i64,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO namespace_quotas (namespace, limit_bytes, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (namespace) DO NOTHING RETURNING id",
        )
        .bind(namespace)
        .bind(limit_bytes)
        .bind(now_ms())
        .fetch_optional(&mut *w.tx)
        .await?)
    }

    /// Changes a quota's bytes; `false` if the namespace has no quota `id`.
    pub async fn update_quota(
        &self,
        w: &mut WriteTx,
        id: i64,
        namespace: &str,
        limit_bytes: i64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE namespace_quotas SET limit_bytes = $3 WHERE id = $1 AND namespace = $2",
        )
        .bind(id)
        .bind(namespace)
        .bind(limit_bytes)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Deletes a quota and its limits; `false` if the namespace has no quota `id`.
    pub async fn delete_quota(&self, w: &mut WriteTx, id: i64, namespace: &str) -> Result<bool> {
        sqlx::query("DELETE FROM quota_limits WHERE quota_id = (SELECT id FROM namespace_quotas WHERE id = $1 AND namespace = $2)")
            .bind(id)
            .bind(namespace)
            .execute(&mut *w.tx)
            .await?;
        let n = sqlx::query("DELETE FROM namespace_quotas WHERE id = $1 AND namespace = $2")
            .bind(id)
            .bind(namespace)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Adds a limit to a quota; `None` if a limit of that kind exists already.
    pub async fn add_quota_limit(
        &self,
        w: &mut WriteTx,
        quota_id: i64,
        kind: QuotaLimitKind,
        percent: i64,
    ) -> Result<Option<i64>> {
        let exists = sqlx::query("SELECT 1 FROM quota_limits WHERE quota_id = $1 AND kind = $2")
            .bind(quota_id)
            .bind(kind)
            .fetch_optional(&mut *w.tx)
            .await?;
        if exists.is_some() {
            return Ok(None);
        }
        let id = sqlx::query_scalar(
            "INSERT INTO quota_limits (quota_id, kind, threshold_percent, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(quota_id)
        .bind(kind)
        .bind(percent)
        .bind(now_ms())
        .fetch_one(&mut *w.tx)
        .await?;
        Ok(Some(id))
    }

    /// Changes a limit; `false` if the quota has no limit `limit_id`.
    pub async fn update_quota_limit(
        &self,
        w: &mut WriteTx,
        quota_id: i64,
        limit_id: i64,
        kind: QuotaLimitKind,
        percent: i64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE quota_limits SET kind = $3, threshold_percent = $4 WHERE id = $2 AND quota_id = $1",
        )
        .bind(quota_id)
        .bind(limit_id)
        .bind(kind)
        .bind(percent)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Deletes a limit; `false` if the quota has no limit `limit_id`.
    pub async fn delete_quota_limit(
        &self,
        w: &mut WriteTx,
        quota_id: i64,
        limit_id: i64,
    ) -> Result<bool> {
        let n = sqlx::query("DELETE FROM quota_limits WHERE id = $2 AND quota_id = $1")
            .bind(quota_id)
            .bind(limit_id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The bytes of each repository's distinct config and layer blobs (what it stores, shared
    /// blobs counted in each), for the repositories `names`.
    pub async fn repo_sizes(&self, names: &[String]) -> Result<Vec<(String, i64)>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT r.name, CAST(COALESCE(SUM(b.size), 0) AS BIGINT)
             FROM repositories r
             LEFT JOIN (SELECT DISTINCT m.repo_id, mr.digest FROM manifest_refs mr
                          JOIN manifests m ON m.id = mr.manifest_id
                          JOIN repositories rr ON rr.id = m.repo_id
                        WHERE mr.kind IN ('config', 'layer') AND rr.name IN ({0})) d
               ON d.repo_id = r.id
             LEFT JOIN blobs b ON b.digest = d.digest
             WHERE r.name IN ({0})
             GROUP BY r.name",
            marks.join(", ")
        );
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for n in names {
            q = q.bind(n);
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    /// Bytes a namespace uses now.
    pub async fn namespace_usage(&self, namespace: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(usage_sql()))
            .bind(namespace)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The size of the largest blob the namespace's manifests reference (0 when none).
    pub async fn namespace_largest_blob(&self, namespace: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COALESCE(MAX(size), 0) AS BIGINT) FROM blobs WHERE digest IN ({NAMESPACE_DIGESTS})"
        )))
        .bind(namespace)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Whether a manifest of the namespace already references blob `digest` (then storing it
    /// again adds nothing to the namespace's usage).
    pub async fn namespace_references(&self, namespace: &str, digest: &str) -> Result<bool> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT 1 FROM blobs WHERE digest = $2 AND digest IN ({NAMESPACE_DIGESTS})"
        )))
        .bind(namespace)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.is_some())
    }

    /// Serialises quota-checked manifest writes to one namespace (PostgreSQL row lock; on SQLite
    /// the single writer already does), so two pushes cannot both pass the check on the same
    /// remaining room.
    pub async fn lock_namespace(&self, w: &mut WriteTx, namespace: &str) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT id FROM namespaces WHERE name = $1 FOR NO KEY UPDATE")
                .bind(namespace)
                .execute(&mut *w.tx)
                .await?;
        }
        Ok(())
    }

    /// (usage now, usage if blobs `digests` were referenced too), inside `w`.
    pub async fn usage_adding(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        digests: &[String],
    ) -> Result<(i64, i64)> {
        let before: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(usage_sql()))
            .bind(namespace)
            .fetch_one(&mut *w.tx)
            .await?;
        let mut added = 0i64;
        let mut seen = std::collections::BTreeSet::new();
        for d in digests {
            if !seen.insert(d) {
                continue;
            }
            let size: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT size FROM blobs WHERE digest = $2 AND digest NOT IN ({NAMESPACE_DIGESTS})"
            )))
            .bind(namespace)
            .bind(d)
            .fetch_optional(&mut *w.tx)
            .await?;
            if let Some(size) = size {
                added = added.saturating_add(size);
            }
        }
        Ok((before, before.saturating_add(added)))
    }

    /// The bytes stored blobs among `digests` would add to the namespace's usage (those it
    /// references already add nothing).
    pub async fn bytes_added(&self, namespace: &str, digests: &[String]) -> Result<i64> {
        let mut added = 0i64;
        let mut seen = std::collections::BTreeSet::new();
        for d in digests {
            if !seen.insert(d) {
                continue;
            }
            let size: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT size FROM blobs WHERE digest = $2 AND digest NOT IN ({NAMESPACE_DIGESTS})"
            )))
            .bind(namespace)
            .bind(d)
            .fetch_optional(&self.pool)
            .await?;
            added = added.saturating_add(size.unwrap_or(0));
        }
        Ok(added)
    }

    /// (manifest digest, blob digest, blob size) for every config and layer reference of the
    /// repository's manifests, and (index digest, child digest) for every index child.
    #[allow(clippy::type_complexity)]
    pub async fn repo_blob_graph(
        &self,
        repo_id: i64,
    ) -> Result<(Vec<(String, String, i64)>, Vec<(String, String)>)> {
        let refs = sqlx::query_as(
            "SELECT m.digest, mr.digest, b.size FROM manifest_refs mr
             JOIN manifests m ON m.id = mr.manifest_id
             JOIN blobs b ON b.digest = mr.digest
             WHERE m.repo_id = $1 AND mr.kind IN ('config', 'layer')",
        )
        .bind(repo_id)
        .fetch_all(&self.pool)
        .await?;
        let children = sqlx::query_as(
            "SELECT m.digest, mr.digest FROM manifest_refs mr JOIN manifests m ON m.id = mr.manifest_id
             WHERE m.repo_id = $1 AND mr.kind = 'manifest'",
        )
        .bind(repo_id)
        .fetch_all(&self.pool)
        .await?;
        Ok((refs, children))
    }

    /// Of the blobs linked to or referenced in repository `repo_id`, those no other repository
    /// links or references: (digest, size).
    pub async fn repo_exclusive_blobs(&self, repo_id: i64) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT b.digest, b.size FROM blobs b WHERE b.digest IN (
                 SELECT digest FROM repo_blobs WHERE repo_id = $1
                 UNION SELECT mr.digest FROM manifest_refs mr JOIN manifests m ON m.id = mr.manifest_id
                       WHERE m.repo_id = $1)
               AND NOT EXISTS (SELECT 1 FROM repo_blobs o WHERE o.digest = b.digest AND o.repo_id <> $1)
               AND NOT EXISTS (SELECT 1 FROM manifest_refs mr JOIN manifests m ON m.id = mr.manifest_id
                               WHERE mr.digest = b.digest AND m.repo_id <> $1)",
        )
        .bind(repo_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Live tags of a repository: (name, manifest digest).
    pub async fn live_tags(&self, repo_id: i64) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT name, manifest_digest FROM tags WHERE repo_id = $1 AND end_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2) ORDER BY name",
        )
        .bind(repo_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?)
    }
}
