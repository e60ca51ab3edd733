//! Manifests, their references, tags with their history, and referrers.

use crate::{Db, DbError, Result, WriteTx, now_ms};

/// A reference from a manifest: a config or layer blob, a child manifest, or its subject.
#[derive(Debug, Clone)]
pub struct RefRow {
    pub kind: &'static str,
    pub digest: String,
    pub size: i64,
    pub media_type: String,
}

#[derive(Debug, Clone)]
pub struct NewManifest {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub config_digest: Option<String>,
    pub subject_digest: Option<String>,
    pub annotations: Option<String>,
    pub content: Vec<u8>,
    pub refs: Vec<RefRow>,
    /// Blobs that must be linked to the repository.
    pub required_blobs: Vec<String>,
    /// Manifests that must exist in the repository (children of an index).
    pub required_manifests: Vec<String>,
    /// Labels read from the image config: (id, key, value).
    pub labels: Vec<(String, String, String)>,
    /// When the tag this push points becomes expired (`quay.expires-after`).
    pub tag_expires_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ManifestRow {
    pub repo_id: i64,
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// A live manifest found by tag, with when the tag expires.
#[derive(sqlx::FromRow)]
struct TaggedManifestRow {
    #[sqlx(flatten)]
    row: ManifestRow,
    expires_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReferrerRow {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PutManifestError {
    #[error(
        "manifest references blobs {blobs:?} and manifests {manifests:?} unknown to this repository"
    )]
    Missing {
        blobs: Vec<String>,
        manifests: Vec<String>,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for PutManifestError {
    fn from(e: sqlx::Error) -> Self {
        PutManifestError::Db(e.into())
    }
}

macro_rules! live_manifest {
    ($rest:literal) => {
        concat!(
            "SELECT m.repo_id, m.digest, m.media_type, m.content FROM manifests m
             JOIN repositories r ON r.id = m.repo_id ",
            $rest
        )
    };
}

impl Db {
    /// Stores a manifest and points each of `tags` at it, in one transaction that first checks
    /// every reference exists in the repository. Because the check and the insert share the
    /// transaction, garbage collection cannot remove a blob between them.
    pub async fn put_manifest(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        m: &NewManifest,
        tags: &[&str],
    ) -> std::result::Result<Vec<Option<String>>, PutManifestError> {
        self.lock_repo(w, repo_id).await?;
        let blobs = self.missing_blobs(w, repo_id, &m.required_blobs).await?;
        let mut manifests = Vec::new();
        for d in &m.required_manifests {
            let found = sqlx::query(
                "SELECT 1 FROM manifests WHERE repo_id = $1 AND digest = $2 AND deleted_at IS NULL",
            )
            .bind(repo_id)
            .bind(d)
            .fetch_optional(&mut *w.tx)
            .await?;
            if found.is_none() {
                manifests.push(d.clone());
            }
        }
        if !blobs.is_empty() || !manifests.is_empty() {
            return Err(PutManifestError::Missing { blobs, manifests });
        }
        let now = now_ms();
        let size = i64::try_from(m.content.len()).unwrap_or(i64::MAX);
        let manifest_id: i64 = sqlx::query_scalar(
            "INSERT INTO manifests (repo_id, digest, media_type, artifact_type, config_digest, subject_digest,
                                    annotations, size, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (repo_id, digest) DO UPDATE SET deleted_at = NULL
             RETURNING id",
        )
        .bind(repo_id)
        .bind(&m.digest)
        .bind(&m.media_type)
        .bind(m.artifact_type.clone())
        .bind(m.config_digest.clone())
        .bind(m.subject_digest.clone())
        .bind(m.annotations.clone())
        .bind(size)
        .bind(m.content.clone())
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await?;
        for (pos, r) in m.refs.iter().enumerate() {
            sqlx::query(
                "INSERT INTO manifest_refs (manifest_id, kind, position, digest, size, media_type)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(manifest_id)
            .bind(r.kind)
            .bind(i64::try_from(pos).unwrap_or(i64::MAX))
            .bind(&r.digest)
            .bind(r.size)
            .bind(&r.media_type)
            .execute(&mut *w.tx)
            .await?;
        }
        self.set_config_labels(w, manifest_id, &m.labels).await?;
        let mut before = Vec::with_capacity(tags.len());
        for tag in tags {
            before.push(self.set_tag(w, repo_id, tag, &m.digest, now).await?);
            if let Some(at) = m.tag_expires_at {
                sqlx::query(
                    "UPDATE tags SET expires_at = $1 WHERE repo_id = $2 AND name = $3 AND end_at IS NULL",
                )
                .bind(at)
                .bind(repo_id)
                .bind(tag)
                .execute(&mut *w.tx)
                .await?;
            }
        }
        if tags.is_empty() {
            // An untagged manifest is garbage once its grace period ends, unless something
            // comes to reference it.
            self.mark_gc_due(w, repo_id).await?;
        }
        self.touch_push(w, repo_id).await?;
        Ok(before)
    }

    /// Points `tag` at `digest`, closing the tag's previous history row if it pointed elsewhere.
    /// Answers the digest the tag pointed at before (`None`: it did not exist or had expired).
    pub(crate) async fn set_tag(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        tag: &str,
        digest: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let current: Option<(String, Option<i64>)> = sqlx::query_as(
            "SELECT manifest_digest, expires_at FROM tags WHERE repo_id = $1 AND name = $2 AND end_at IS NULL",
        )
        .bind(repo_id)
        .bind(tag)
        .fetch_optional(&mut *w.tx)
        .await?;
        let mut before = None;
        if let Some((old, expires)) = current {
            let expired = expires.is_some_and(|e| e <= now);
            if old == digest && !expired {
                return Ok(Some(old));
            }
            before = (!expired).then_some(old);
            // An expired tag left history when it expired, not now.
            let end = expires.filter(|_| expired).unwrap_or(now);
            sqlx::query(
                "UPDATE tags SET end_at = $1 WHERE repo_id = $2 AND name = $3 AND end_at IS NULL",
            )
            .bind(end)
            .bind(repo_id)
            .bind(tag)
            .execute(&mut *w.tx)
            .await?;
            self.mark_gc_due(w, repo_id).await?;
        }
        sqlx::query(
            "INSERT INTO tags (repo_id, name, manifest_digest, start_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(repo_id)
        .bind(tag)
        .bind(digest)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(before)
    }

    pub async fn manifest_by_digest(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Option<ManifestRow>> {
        let cache = self.manifest_cache.as_deref();
        let key = crate::manifest_cache::key(repo, '@', digest);
        let version = cache.and_then(|c| c.version());
        if let (Some(c), Some(v)) = (cache, version)
            && let Some(row) = c.get(&key, v, now_ms())
        {
            return Ok(Some(row));
        }
        let row: Option<ManifestRow> = sqlx::query_as(live_manifest!(
            "WHERE r.name = $1 AND m.digest = $2 AND m.deleted_at IS NULL"
        ))
        .bind(repo)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        if let (Some(c), Some(v), Some(r)) = (cache, version, &row) {
            c.put(key, r, v, None);
        }
        Ok(row)
    }

    pub async fn manifest_by_tag(&self, repo: &str, tag: &str) -> Result<Option<ManifestRow>> {
        let now = now_ms();
        let cache = self.manifest_cache.as_deref();
        let key = crate::manifest_cache::key(repo, ':', tag);
        let version = cache.and_then(|c| c.version());
        if let (Some(c), Some(v)) = (cache, version)
            && let Some(row) = c.get(&key, v, now)
        {
            return Ok(Some(row));
        }
        let hit: Option<TaggedManifestRow> = sqlx::query_as(
            "SELECT m.repo_id, m.digest, m.media_type, m.content, t.expires_at FROM manifests m
             JOIN repositories r ON r.id = m.repo_id
             JOIN tags t ON t.repo_id = m.repo_id AND t.manifest_digest = m.digest
             WHERE r.name = $1 AND t.name = $2 AND t.end_at IS NULL AND m.deleted_at IS NULL
               AND (t.expires_at IS NULL OR t.expires_at > $3)",
        )
        .bind(repo)
        .bind(tag)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let (Some(c), Some(v), Some(h)) = (cache, version, &hit) {
            c.put(key, &h.row, v, h.expires_at);
        }
        Ok(hit.map(|h| h.row))
    }

    /// Marks a manifest deleted and ends every live tag on it (both stay in history).
    pub async fn delete_manifest(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        digest: &str,
    ) -> Result<bool> {
        self.lock_repo(w, repo_id).await?;
        let now = now_ms();
        let res = sqlx::query("UPDATE manifests SET deleted_at = $1 WHERE repo_id = $2 AND digest = $3 AND deleted_at IS NULL")
            .bind(now)
            .bind(repo_id)
            .bind(digest)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("UPDATE tags SET end_at = $1 WHERE repo_id = $2 AND manifest_digest = $3 AND end_at IS NULL")
            .bind(now)
            .bind(repo_id)
            .bind(digest)
            .execute(&mut *w.tx)
            .await?;
        self.mark_gc_due(w, repo_id).await?;
        Ok(res.rows_affected() > 0)
    }

    /// Ends a live tag (it stays in history).
    pub async fn delete_tag(&self, w: &mut WriteTx, repo_id: i64, tag: &str) -> Result<bool> {
        self.lock_repo(w, repo_id).await?;
        let res = sqlx::query(
            "UPDATE tags SET end_at = $1 WHERE repo_id = $2 AND name = $3 AND end_at IS NULL",
        )
        .bind(now_ms())
        .bind(repo_id)
        .bind(tag)
        .execute(&mut *w.tx)
        .await?;
        self.mark_gc_due(w, repo_id).await?;
        Ok(res.rows_affected() > 0)
    }

    /// Live tag names in lexical order after `last`, at most `n`.
    pub async fn tags(&self, repo_id: i64, last: Option<&str>, n: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM tags WHERE repo_id = $1 AND end_at IS NULL AND name > $2
               AND (expires_at IS NULL OR expires_at > $4) ORDER BY name LIMIT $3",
        )
        .bind(repo_id)
        .bind(last.unwrap_or(""))
        .bind(n)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Live manifests of the repository whose subject is `subject`.
    pub async fn referrers(&self, repo_id: i64, subject: &str) -> Result<Vec<ReferrerRow>> {
        Ok(sqlx::query_as(
            "SELECT digest, media_type, size, artifact_type, annotations FROM manifests
             WHERE repo_id = $1 AND subject_digest = $2 AND deleted_at IS NULL ORDER BY created_at, digest",
        )
        .bind(repo_id)
        .bind(subject)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(n: u8) -> NewManifest {
        NewManifest {
            digest: format!("sha256:{:064x}", n),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            config_digest: None,
            subject_digest: None,
            annotations: None,
            content: format!("{{\"n\":{n}}}").into_bytes(),
            refs: vec![],
            required_blobs: vec![],
            required_manifests: vec![],
            labels: vec![],
            tag_expires_at: None,
        }
    }

    async fn push(db: &Db, n: u8, tag: &str) {
        let mut w = db.write().await.expect("write");
        let repo = db.ensure_repo(&mut w, "ns/app", "ns").await.expect("repo");
        db.put_manifest(&mut w, repo, &manifest(n), &[tag])
            .await
            .expect("put");
        w.commit().await.expect("commit");
    }

    async fn digest_of(db: &Db, tag: &str) -> Option<String> {
        db.manifest_by_tag("ns/app", tag)
            .await
            .expect("lookup")
            .map(|r| r.digest)
    }

    /// Two instances on one SQLite file, and an administrator's own connection: whatever any of
    /// them commits, the next lookup on the other sees, though it answered the same lookup from
    /// its cache a moment before.
    #[tokio::test]
    async fn a_cached_lookup_never_outlives_a_commit_by_anyone_on_the_file() {
        let (dir, a) = crate::test_db().await;
        let path = dir.path().join("t.db");
        let b = Db::connect(&format!("sqlite://{}", path.display()), 2)
            .await
            .expect("second instance");
        assert!(a.manifest_cache.is_some() && b.manifest_cache.is_some());

        push(&a, 1, "t").await;
        let one = Some(manifest(1).digest);
        for _ in 0..3 {
            assert_eq!(digest_of(&a, "t").await, one);
            assert_eq!(digest_of(&b, "t").await, one);
        }
        let hits = |db: &Db| db.manifest_cache.as_ref().map_or(0, |c| c.hits());
        assert_eq!(
            (hits(&a), hits(&b)),
            (2, 2),
            "repeated lookups answer from the cache"
        );
        // The tag moves on B: A sees it at once, and so does B.
        push(&b, 2, "t").await;
        assert_eq!(digest_of(&a, "t").await, Some(manifest(2).digest));
        assert_eq!(digest_of(&b, "t").await, Some(manifest(2).digest));

        // By digest too: a deletion on A is seen by B, which had it cached.
        let d2 = manifest(2).digest;
        assert!(
            b.manifest_by_digest("ns/app", &d2)
                .await
                .expect("get")
                .is_some()
        );
        assert!(
            b.manifest_by_digest("ns/app", &d2)
                .await
                .expect("get")
                .is_some()
        );
        assert_eq!(hits(&b), 3);
        let mut w = a.write().await.expect("write");
        let repo = a.repo_id("ns/app").await.expect("id").expect("repo");
        a.delete_manifest(&mut w, repo, &d2).await.expect("delete");
        w.commit().await.expect("commit");
        assert!(
            b.manifest_by_digest("ns/app", &d2)
                .await
                .expect("get")
                .is_none()
        );
        assert_eq!(digest_of(&b, "t").await, None);

        // A write from outside Berth altogether (an administrator's sqlite3 session).
        push(&a, 3, "u").await;
        assert_eq!(digest_of(&b, "u").await, Some(manifest(3).digest));
        let admin = rusqlite::Connection::open(&path).expect("admin connection");
        admin
            .execute(
                "UPDATE tags SET end_at = 1 WHERE name = 'u' AND end_at IS NULL",
                [],
            )
            .expect("end the tag");
        assert_eq!(digest_of(&b, "u").await, None);
        assert_eq!(digest_of(&a, "u").await, None);
    }
}
