//! The rows garbage collection reads and removes. The rules (what is reachable, for how long)
//! live in `berth-core`; here are the facts it needs, and the deletions, each run inside the
//! caller's write transaction so they serialise with pushes exactly as documented there.

use crate::{Backend, Db, Result, WriteTx, now_ms};

/// A manifest row as garbage collection sees it.
#[derive(Debug, Clone)]
pub struct GcManifest {
    pub id: i64,
    pub digest: String,
    pub created_at: i64,
    pub deleted: bool,
    pub subject: Option<String>,
    pub size: i64,
}

/// A `manifests` row as stored; `GcManifest` only needs whether it was deleted.
#[derive(sqlx::FromRow)]
struct GcManifestDb {
    id: i64,
    digest: String,
    created_at: i64,
    deleted_at: Option<i64>,
    subject_digest: Option<String>,
    size: i64,
}

impl From<GcManifestDb> for GcManifest {
    fn from(m: GcManifestDb) -> GcManifest {
        GcManifest {
            id: m.id,
            digest: m.digest,
            created_at: m.created_at,
            deleted: m.deleted_at.is_some(),
            subject: m.subject_digest,
            size: m.size,
        }
    }
}

/// Everything one repository's sweep decides on, read under the repository's lock.
#[derive(Debug, Clone, Default)]
pub struct RepoGcFacts {
    pub manifests: Vec<GcManifest>,
    /// (index manifest id, child manifest digest).
    pub children: Vec<(i64, String)>,
    /// (manifest digest, end of the tag row — `None` while live —, expiry of the tag row).
    pub tags: Vec<(String, Option<i64>, Option<i64>)>,
}

/// Totals over every collection run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct GcTotals {
    pub runs: i64,
    pub last_run_at: Option<i64>,
    pub manifests_deleted: i64,
    pub tags_purged: i64,
    pub links_removed: i64,
    pub blobs_deleted: i64,
    pub bytes_freed: i64,
    pub uploads_removed: i64,
    pub repos_deleted: i64,
}

impl Db {
    /// Notes that repository `repo_id` may hold garbage now (a tag closed, a manifest or a blob
    /// link was removed). The next sweep looks at it and computes when to look again.
    pub(crate) async fn mark_gc_due(&self, w: &mut WriteTx, repo_id: i64) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE repositories SET next_gc_at = $2 WHERE id = $1 AND (next_gc_at IS NULL OR next_gc_at > $2)",
        )
        .bind(repo_id)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Repositories whose next sweep is due, oldest first: (id, name).
    pub async fn repos_due_for_gc(&self, now: i64, limit: i64) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, name FROM repositories WHERE next_gc_at <= $1 AND deleted_at IS NULL
             ORDER BY next_gc_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The name of a live repository.
    pub async fn live_repo_name(&self, repo_id: i64) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar(
                "SELECT name FROM repositories WHERE id = $1 AND deleted_at IS NULL",
            )
            .bind(repo_id)
            .fetch_optional(&self.pool)
            .await?,
        )
    }

    /// Repositories marked deleted whose contents are still to be removed.
    pub async fn deleted_repos(&self, limit: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM repositories WHERE deleted_at IS NOT NULL ORDER BY deleted_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every live repository after id `after`, in id order: (id, name).
    pub async fn repos_after(&self, after: i64, limit: i64) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, name FROM repositories WHERE id > $1 AND deleted_at IS NULL ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The time-machine window a namespace chose, in seconds, if it chose one.
    pub async fn namespace_window_s(&self, namespace: &str) -> Result<Option<i64>> {
        let window: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT tag_expiration_s FROM accounts WHERE name = $1 AND kind <> 'robot'",
        )
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?;
        Ok(window.flatten())
    }

    /// Locks the repository and reads its manifests, index children and tag rows.
    pub async fn repo_gc_facts(&self, w: &mut WriteTx, repo_id: i64) -> Result<RepoGcFacts> {
        self.lock_repo(w, repo_id).await?;
        let manifests = sqlx::query_as::<_, GcManifestDb>(
            "SELECT id, digest, created_at, deleted_at, subject_digest, size FROM manifests WHERE repo_id = $1",
        )
        .bind(repo_id)
        .fetch_all(&mut *w.tx)
        .await?
        .into_iter()
        .map(GcManifest::from)
        .collect();
        let children = sqlx::query_as(
            "SELECT mr.manifest_id, mr.digest FROM manifest_refs mr JOIN manifests m ON m.id = mr.manifest_id
             WHERE m.repo_id = $1 AND mr.kind = 'manifest'",
        )
        .bind(repo_id)
        .fetch_all(&mut *w.tx)
        .await?;
        let tags = sqlx::query_as(
            "SELECT manifest_digest, end_at, expires_at FROM tags WHERE repo_id = $1",
        )
        .bind(repo_id)
        .fetch_all(&mut *w.tx)
        .await?;
        Ok(RepoGcFacts {
            manifests,
            children,
            tags,
        })
    }

    /// Deletes manifests by id (their references go with them).
    pub async fn gc_delete_manifests(&self, w: &mut WriteTx, ids: &[i64]) -> Result<u64> {
        let mut n = 0;
        for id in ids {
            n += sqlx::query("DELETE FROM manifests WHERE id = $1")
                .bind(id)
                .execute(&mut *w.tx)
                .await?
                .rows_affected();
        }
        Ok(n)
    }

    /// Deletes tag rows that ended before `cutoff`: they left the time machine's window.
    pub async fn gc_purge_history(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        cutoff: i64,
    ) -> Result<u64> {
        let res = sqlx::query(
            "DELETE FROM tags WHERE repo_id = $1 AND end_at IS NOT NULL AND end_at < $2",
        )
        .bind(repo_id)
        .bind(cutoff)
        .execute(&mut *w.tx)
        .await?;
        Ok(res.rows_affected())
    }

    /// Removes the repository's links to blobs that no manifest of it references and that were
    /// linked before `linked_before`; queues each unlinked blob for the blob sweep. Returns the
    /// number removed and the oldest link still unreferenced (kept by the grace period).
    pub async fn gc_unlink_unreferenced(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        linked_before: i64,
    ) -> Result<(u64, Option<i64>)> {
        let unreferenced = "NOT EXISTS (SELECT 1 FROM manifest_refs mr JOIN manifests m ON m.id = mr.manifest_id
                             WHERE m.repo_id = repo_blobs.repo_id AND mr.digest = repo_blobs.digest)";
        let removed: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "DELETE FROM repo_blobs WHERE repo_id = $1 AND linked_at < $2 AND {unreferenced} RETURNING digest"
        )))
        .bind(repo_id)
        .bind(linked_before)
        .fetch_all(&mut *w.tx)
        .await?;
        let now = now_ms();
        for digest in &removed {
            self.queue_blob_gc(w, digest, now).await?;
        }
        let oldest: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT MIN(linked_at) FROM repo_blobs WHERE repo_id = $1 AND {unreferenced}"
        )))
        .bind(repo_id)
        .fetch_one(&mut *w.tx)
        .await?;
        Ok((removed.len() as u64, oldest))
    }

    /// Queues a blob for the blob sweep (it lost a link or a reference).
    pub async fn queue_blob_gc(&self, w: &mut WriteTx, digest: &str, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO gc_blob_queue (digest, queued_at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Sets when the repository's next sweep is due (`None`: nothing pending).
    pub async fn set_next_gc(&self, w: &mut WriteTx, repo_id: i64, at: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE repositories SET next_gc_at = $2 WHERE id = $1")
            .bind(repo_id)
            .bind(at)
            .execute(&mut *w.tx)
            .await?;
        Ok(())
    }

    /// The oldest queued blob candidates.
    pub async fn gc_blob_candidates(&self, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT digest FROM gc_blob_queue ORDER BY queued_at, digest LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many blobs wait for the blob sweep.
    pub async fn gc_blob_queue_depth(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM gc_blob_queue")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Takes the candidates that are still garbage: locks each blob row, and if no repository
    /// links it and no manifest references it, removes its placements and its row. Every
    /// candidate leaves the queue. Returns (digest, size) of the removed rows, whose bytes the
    /// caller deletes before committing `w`.
    pub async fn gc_take_blobs(
        &self,
        w: &mut WriteTx,
        digests: &[String],
    ) -> Result<Vec<(String, i64)>> {
        let lock = match self.backend {
            Backend::Postgres => "SELECT size FROM blobs WHERE digest = $1 FOR UPDATE",
            Backend::Sqlite => "SELECT size FROM blobs WHERE digest = $1",
        };
        // One lock order (by digest) for every sweeper, so that two never deadlock.
        let mut digests = digests.to_vec();
        digests.sort();
        let mut taken = Vec::new();
        for d in &digests {
            sqlx::query("DELETE FROM gc_blob_queue WHERE digest = $1")
                .bind(d)
                .execute(&mut *w.tx)
                .await?;
            let size: Option<i64> = sqlx::query_scalar(lock)
                .bind(d)
                .fetch_optional(&mut *w.tx)
                .await?;
            let Some(size) = size else {
                continue;
            };
            let used = sqlx::query(
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM repo_blobs WHERE digest = $1)
                             OR EXISTS (SELECT 1 FROM manifest_refs WHERE digest = $1)",
            )
            .bind(d)
            .fetch_optional(&mut *w.tx)
            .await?;
            if used.is_some() {
                continue;
            }
            sqlx::query("DELETE FROM blob_placements WHERE digest = $1")
                .bind(d)
                .execute(&mut *w.tx)
                .await?;
            sqlx::query("DELETE FROM blobs WHERE digest = $1")
                .bind(d)
                .execute(&mut *w.tx)
                .await?;
            // What the scanner read from it goes with it (Quay's
            // SECURITY_SCANNER_V4_MANIFEST_CLEANUP, always on here).
            sqlx::query("DELETE FROM layer_index WHERE digest = $1")
                .bind(d)
                .execute(&mut *w.tx)
                .await?;
            taken.push((d.clone(), size));
        }
        Ok(taken)
    }

    /// Locks a blob's row for a writer about to publish its bytes, creating the row if needed, so
    /// that the publish and the blob sweep's deletion of the same digest never interleave.
    pub async fn lock_blob(&self, w: &mut WriteTx, digest: &str, size: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET size = excluded.size",
        )
        .bind(digest)
        .bind(size)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Whether the blob row exists, locking it (PostgreSQL) until `w` ends.
    pub async fn blob_row_locked(&self, w: &mut WriteTx, digest: &str) -> Result<bool> {
        let sql = match self.backend {
            Backend::Postgres => "SELECT 1 FROM blobs WHERE digest = $1 FOR SHARE",
            Backend::Sqlite => "SELECT 1 FROM blobs WHERE digest = $1",
        };
        Ok(sqlx::query(sql)
            .bind(digest)
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some())
    }

    /// Of `digests`, those with a `blobs` row.
    pub async fn known_blobs(
        &self,
        digests: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        self.known("SELECT digest FROM blobs WHERE digest IN", digests)
            .await
    }

    /// Of `ids`, those with an `uploads` row.
    pub async fn known_uploads(&self, ids: &[String]) -> Result<std::collections::HashSet<String>> {
        self.known("SELECT id FROM uploads WHERE id IN", ids).await
    }

    async fn known(
        &self,
        select_in: &str,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        for chunk in keys.chunks(500) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!("{select_in} ({})", marks.join(", "));
            let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for k in chunk {
                q = q.bind(k);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Upload sessions untouched since `before`.
    pub async fn stale_uploads(&self, before: i64, limit: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Removes an upload session's row if it is still untouched since `before`.
    pub async fn remove_stale_upload(&self, id: &str, before: i64) -> Result<bool> {
        let mut w = self.write().await?;
        let res = sqlx::query("DELETE FROM uploads WHERE id = $1 AND updated_at < $2")
            .bind(id)
            .bind(before)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(res.rows_affected() > 0)
    }

    /// Adds one run's figures to the totals.
    pub async fn gc_add_totals(&self, t: &GcTotals) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "UPDATE gc_totals SET runs = runs + $1, last_run_at = COALESCE($2, last_run_at),
               manifests_deleted = manifests_deleted + $3, tags_purged = tags_purged + $4,
               links_removed = links_removed + $5, blobs_deleted = blobs_deleted + $6,
               bytes_freed = bytes_freed + $7, uploads_removed = uploads_removed + $8,
               repos_deleted = repos_deleted + $9 WHERE id = 1",
        )
        .bind(t.runs)
        .bind(t.last_run_at)
        .bind(t.manifests_deleted)
        .bind(t.tags_purged)
        .bind(t.links_removed)
        .bind(t.blobs_deleted)
        .bind(t.bytes_freed)
        .bind(t.uploads_removed)
        .bind(t.repos_deleted)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(())
    }

    pub async fn gc_totals(&self) -> Result<GcTotals> {
        let totals: Option<GcTotals> = sqlx::query_as(
            "SELECT runs, last_run_at, manifests_deleted, tags_purged, links_removed, blobs_deleted,
                    bytes_freed, uploads_removed, repos_deleted FROM gc_totals WHERE id = 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(totals.unwrap_or_default())
    }

    /// Takes a repository out of use: renames it out of the way (its name is free at once) and
    /// marks it deleted. Its contents are removed by `purge_deleted_repo`.
    pub async fn mark_repo_deleted(&self, w: &mut WriteTx, repo_id: i64) -> Result<bool> {
        self.lock_repo(w, repo_id).await?;
        let now = now_ms();
        sqlx::query(
            "DELETE FROM immutability_policies WHERE repository = (SELECT name FROM repositories WHERE id = $1)",
        )
        .bind(repo_id)
        .execute(&mut *w.tx)
        .await?;
        let res = sqlx::query(
            "UPDATE repositories SET deleted_at = $2, next_gc_at = NULL,
               name = name || '!deleted-' || CAST(id AS TEXT)
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(repo_id)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes a deleted repository's tags, manifests, blob links (queuing the blobs), upload
    /// sessions and finally its row. Returns the upload session ids whose storage the caller
    /// removes, and the number of manifests removed. `None` if the repository is not a deleted one.
    pub async fn purge_deleted_repo(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
    ) -> Result<Option<(Vec<String>, u64, u64)>> {
        self.lock_repo(w, repo_id).await?;
        let deleted: Option<i64> = sqlx::query_scalar::<_, Option<i64>>(
            "SELECT deleted_at FROM repositories WHERE id = $1",
        )
        .bind(repo_id)
        .fetch_optional(&mut *w.tx)
        .await?
        .flatten();
        if deleted.is_none() {
            return Ok(None);
        }
        sqlx::query("DELETE FROM tags WHERE repo_id = $1")
            .bind(repo_id)
            .execute(&mut *w.tx)
            .await?;
        let manifests = sqlx::query("DELETE FROM manifests WHERE repo_id = $1")
            .bind(repo_id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        let links: Vec<String> =
            sqlx::query_scalar("DELETE FROM repo_blobs WHERE repo_id = $1 RETURNING digest")
                .bind(repo_id)
                .fetch_all(&mut *w.tx)
                .await?;
        let now = now_ms();
        for digest in &links {
            self.queue_blob_gc(w, digest, now).await?;
        }
        let uploads = sqlx::query_scalar("DELETE FROM uploads WHERE repo_id = $1 RETURNING id")
            .bind(repo_id)
            .fetch_all(&mut *w.tx)
            .await?;
        let ns: Option<i64> =
            sqlx::query_scalar("SELECT namespace_id FROM repositories WHERE id = $1")
                .bind(repo_id)
                .fetch_optional(&mut *w.tx)
                .await?;
        sqlx::query("DELETE FROM repositories WHERE id = $1")
            .bind(repo_id)
            .execute(&mut *w.tx)
            .await?;
        // A namespace whose account was deleted goes with its last repository.
        sqlx::query(
            "DELETE FROM namespaces WHERE id = $1
               AND NOT EXISTS (SELECT 1 FROM repositories r WHERE r.namespace_id = namespaces.id)
               AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.name = namespaces.name)",
        )
        .bind(ns)
        .execute(&mut *w.tx)
        .await?;
        Ok(Some((uploads, manifests, links.len() as u64)))
    }
}
