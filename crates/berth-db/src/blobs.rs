//! Blobs and their links to repositories.

use crate::{Db, Result, WriteTx, now_ms};

impl Db {
    /// (size, repository id, linked at) of `digest` if it is linked to repository `repo`.
    pub async fn blob_in_repo(&self, repo: &str, digest: &str) -> Result<Option<(i64, i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT b.size, r.id, rb.linked_at FROM repositories r
             JOIN repo_blobs rb ON rb.repo_id = r.id
             JOIN blobs b ON b.digest = rb.digest
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(repo)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Restarts an existing link's grace period (a client that saw the blob may reference it
    /// soon). False if the link is gone.
    pub async fn refresh_link(&self, repo_id: i64, digest: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let res =
            sqlx::query("UPDATE repo_blobs SET linked_at = $3 WHERE repo_id = $1 AND digest = $2")
                .bind(repo_id)
                .bind(digest)
                .bind(now_ms())
                .execute(&mut *w.tx)
                .await?;
        w.commit().await?;
        Ok(res.rows_affected() > 0)
    }

    /// Records a verified, committed blob and links it to a repository. Idempotent.
    pub async fn link_blob(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        digest: &str,
        size: i64,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING")
            .bind(digest)
            .bind(size)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        // Re-linking refreshes linked_at, which restarts the blob's protection from garbage collection.
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (repo_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
        )
        .bind(repo_id)
        .bind(digest)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Links a blob that is already recorded (a cross-repository mount). False if it is not recorded.
    pub async fn mount_blob(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        from_repo: &str,
        digest: &str,
    ) -> Result<bool> {
        // FOR SHARE holds the source link until this transaction ends, so the sweep cannot
        // remove it (and then the blob) between this read and the new link.
        let sql = match self.backend {
            crate::Backend::Postgres => {
                "SELECT b.size FROM repositories r JOIN repo_blobs rb ON rb.repo_id = r.id
                 JOIN blobs b ON b.digest = rb.digest WHERE r.name = $1 AND rb.digest = $2
                 FOR SHARE OF rb"
            }
            crate::Backend::Sqlite => {
                "SELECT b.size FROM repositories r JOIN repo_blobs rb ON rb.repo_id = r.id
                 JOIN blobs b ON b.digest = rb.digest WHERE r.name = $1 AND rb.digest = $2"
            }
        };
        let found: Option<i64> = sqlx::query_scalar(sql)
            .bind(from_repo)
            .bind(digest)
            .fetch_optional(&mut *w.tx)
            .await?;
        let Some(size) = found else {
            return Ok(false);
        };
        self.link_blob(w, repo_id, digest, size).await?;
        Ok(true)
    }

    /// Removes a blob's link to a repository; the bytes stay until garbage collection.
    pub async fn unlink_blob(&self, w: &mut WriteTx, repo_id: i64, digest: &str) -> Result<bool> {
        let res = sqlx::query("DELETE FROM repo_blobs WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest)
            .execute(&mut *w.tx)
            .await?;
        if res.rows_affected() > 0 {
            self.queue_blob_gc(w, digest, now_ms()).await?;
        }
        Ok(res.rows_affected() > 0)
    }

    /// Of `digests`, those not linked to the repository.
    pub async fn missing_blobs(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        digests: &[String],
    ) -> Result<Vec<String>> {
        let mut missing = Vec::new();
        for d in digests {
            let found = sqlx::query("SELECT 1 FROM repo_blobs WHERE repo_id = $1 AND digest = $2")
                .bind(repo_id)
                .bind(d)
                .fetch_optional(&mut *w.tx)
                .await?;
            if found.is_none() {
                missing.push(d.clone());
            }
        }
        Ok(missing)
    }

    /// The recorded size of a blob, if it is recorded.
    pub async fn blob_totals_of(&self, digest: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT size FROM blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// (number of blobs, total bytes) recorded.
    pub async fn blob_totals(&self) -> Result<(i64, i64)> {
        Ok(sqlx::query_as::<_, (i64, i64)>(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM blobs",
        )
        .fetch_one(&self.pool)
        .await?)
    }
}

impl Db {
    /// Records that `location` holds a copy of the blob. Idempotent.
    pub async fn add_placement(&self, w: &mut WriteTx, digest: &str, location: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO blob_placements (digest, location, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (digest, location) DO NOTHING",
        )
        .bind(digest)
        .bind(location)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// The locations holding a copy of the blob, with the time each copy was recorded.
    pub async fn placements(&self, digest: &str) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT location, created_at FROM blob_placements WHERE digest = $1 ORDER BY location",
        )
        .bind(digest)
        .fetch_all(&self.pool)
        .await?)
    }

    /// (location, number of blobs) over all placements.
    pub async fn placement_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT location, COUNT(*) FROM blob_placements GROUP BY location")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
