//! Labels on manifests.

use crate::{Db, LabelSource, Result, WriteTx, now_ms};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LabelRow {
    pub id: String,
    pub key: String,
    pub value: String,
    pub media_type: String,
    /// `manifest` (from the image config) or `api`.
    pub source_type: LabelSource,
}

/// Labels of one manifest, by repository id and digest. `$1` repo, `$2` digest.
const OF_MANIFEST: &str =
    "SELECT l.id, l.key, l.value, l.media_type, l.source_type FROM manifest_labels l
     JOIN manifests m ON m.id = l.manifest_id WHERE m.repo_id = $1 AND m.digest = $2";

impl Db {
    /// Replaces a manifest's labels from its image config (`(id, key, value)`), in `w`.
    pub(crate) async fn set_config_labels(
        &self,
        w: &mut WriteTx,
        manifest_id: i64,
        labels: &[(String, String, String)],
    ) -> Result<()> {
        sqlx::query(
            "DELETE FROM manifest_labels WHERE manifest_id = $1 AND source_type = 'manifest'",
        )
        .bind(manifest_id)
        .execute(&mut *w.tx)
        .await?;
        let now = now_ms();
        for (id, k, v) in labels {
            sqlx::query(
                "INSERT INTO manifest_labels (id, manifest_id, key, value, media_type, source_type, created_at)
                 VALUES ($1, $2, $3, $4, 'text/plain', 'manifest', $5)",
            )
            .bind(id)
            .bind(manifest_id)
            .bind(k)
            .bind(v)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }

    /// A manifest's labels whose key starts with `prefix`, oldest first. `None` if the
    /// repository has no such manifest.
    pub async fn labels(
        &self,
        repo_id: i64,
        digest: &str,
        prefix: &str,
    ) -> Result<Option<Vec<LabelRow>>> {
        if !self.manifest_exists(repo_id, digest).await? {
            return Ok(None);
        }
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{OF_MANIFEST} AND substr(l.key, 1, length($3)) = $3 ORDER BY l.created_at, l.id"
        )))
        .bind(repo_id)
        .bind(digest)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(rows))
    }

    /// The labels (digest, key, value) of these manifests of a repository, by key: one query
    /// for a page of tags.
    pub async fn labels_of(
        &self,
        repo_id: i64,
        digests: &[String],
    ) -> Result<Vec<(String, String, String)>> {
        let mut out = Vec::new();
        for chunk in digests.chunks(100) {
            let sql = format!(
                "SELECT m.digest, l.key, l.value FROM manifest_labels l JOIN manifests m ON m.id = l.manifest_id
                 WHERE m.repo_id = $1 AND m.digest IN ({}) ORDER BY l.key, l.value",
                crate::marks(2, chunk.len())
            );
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(repo_id);
            for d in chunk {
                q = q.bind(d);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// The content of those of these manifests that are indexes (digest, bytes): what a page
    /// of tags reads its platforms from.
    pub async fn index_contents(
        &self,
        repo_id: i64,
        digests: &[String],
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for chunk in digests.chunks(100) {
            let sql = format!(
                "SELECT digest, content FROM manifests WHERE repo_id = $1 AND digest IN ({})
                   AND media_type IN ('application/vnd.oci.image.index.v1+json',
                                      'application/vnd.docker.distribution.manifest.list.v2+json')",
                crate::marks(2, chunk.len())
            );
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(repo_id);
            for d in chunk {
                q = q.bind(d);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    async fn manifest_exists(&self, repo_id: i64, digest: &str) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 FROM manifests WHERE repo_id = $1 AND digest = $2 AND deleted_at IS NULL",
        )
        .bind(repo_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// One label of a manifest.
    pub async fn label(&self, repo_id: i64, digest: &str, id: &str) -> Result<Option<LabelRow>> {
        Ok(
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{OF_MANIFEST} AND l.id = $3")))
                .bind(repo_id)
                .bind(digest)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Adds a label to a live manifest; `false` if the repository has no such manifest.
    pub async fn add_label(&self, repo_id: i64, digest: &str, l: &LabelRow) -> Result<bool> {
        let mut w = self.write().await?;
        let res = sqlx::query(
            "INSERT INTO manifest_labels (id, manifest_id, key, value, media_type, source_type, created_at)
             SELECT $3, id, $4, $5, $6, $7, $8 FROM manifests
             WHERE repo_id = $1 AND digest = $2 AND deleted_at IS NULL",
        )
        .bind(repo_id)
        .bind(digest)
        .bind(&l.id)
        .bind(&l.key)
        .bind(&l.value)
        .bind(&l.media_type)
        .bind(l.source_type.as_str())
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes a label; `false` if the manifest has no such label.
    pub async fn delete_label(&self, repo_id: i64, digest: &str, id: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let res = sqlx::query(
            "DELETE FROM manifest_labels WHERE id = $3
               AND manifest_id IN (SELECT id FROM manifests WHERE repo_id = $1 AND digest = $2)",
        )
        .bind(repo_id)
        .bind(digest)
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(res.rows_affected() > 0)
    }
}
