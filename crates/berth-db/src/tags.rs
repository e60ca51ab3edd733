//! Tag history (the time machine), restores and expirations. Every position a tag ever had is a
//! row of `tags`; the live one has `end_at IS NULL` and has not passed `expires_at`.

use crate::decode::IntBool;
use crate::{Db, Result, WriteTx, now_ms};

/// One position of a tag, with what it pointed at.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TagRow {
    pub name: String,
    pub manifest_digest: String,
    pub start_at: i64,
    pub end_at: Option<i64>,
    pub expires_at: Option<i64>,
    /// `None` once the manifest has been collected.
    pub media_type: Option<String>,
    pub size: Option<i64>,
    /// Flagged immutable (policies are evaluated by the core).
    #[sqlx(try_from = "IntBool")]
    pub immutable: bool,
}

/// The order of a page of live tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagOrder {
    /// By name, ascending.
    #[default]
    Name,
    /// Most recently pushed or moved first, then by name.
    Newest,
}

/// Which tag rows to list.
#[derive(Debug, Default)]
pub struct TagFilter<'a> {
    /// Exactly this tag name.
    pub name: Option<&'a str>,
    /// Names containing this text.
    pub contains: Option<&'a str>,
    pub only_active: bool,
    /// Only tags whose manifest has a label with this key (and, if given, this value).
    pub label: Option<(&'a str, Option<&'a str>)>,
}

/// Which live tags a listing, a count or a bulk selection takes.
#[derive(Debug, Default, Clone, Copy)]
pub struct LiveTagFilter<'a> {
    /// Names containing this text.
    pub contains: Option<&'a str>,
    /// Only tags whose manifest has a label with this key (and, if given, this value).
    pub label: Option<(&'a str, Option<&'a str>)>,
}

/// The `WHERE` of live tags `t` (joined to their manifest `m`) under a [`LiveTagFilter`]:
/// parameters $1 repository, $2 now, $3 the LIKE pattern, $4 label key ('' for any), $5 whether
/// a value is asked, $6 the value.
const LIVE_WHERE: &str = "t.repo_id = $1 AND t.end_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)
               AND ($3 = '' OR t.name LIKE $3 ESCAPE '!')
               AND ($4 = '' OR EXISTS (SELECT 1 FROM manifests lm JOIN manifest_labels l ON l.manifest_id = lm.id
                                        WHERE lm.repo_id = t.repo_id AND lm.digest = t.manifest_digest
                                          AND l.key = $4 AND ($5 = 0 OR l.value = $6)))";

/// A live tag's sort keys and its own immutable flag ([`Db::live_tag_names`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveTagKey {
    pub name: String,
    pub start_at: i64,
    #[sqlx(try_from = "IntBool")]
    pub immutable: bool,
}

fn bind_live<'q, O>(
    q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    repo_id: i64,
    f: &LiveTagFilter<'_>,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments> {
    q.bind(repo_id)
        .bind(now_ms())
        .bind(crate::contains_pattern(f.contains))
        .bind(f.label.map(|l| l.0.to_string()).unwrap_or_default())
        .bind(i64::from(f.label.is_some_and(|l| l.1.is_some())))
        .bind(f.label.and_then(|l| l.1).unwrap_or("").to_string())
}

impl Db {
    /// Tag rows of a repository, newest first: `limit` rows after skipping `offset`.
    pub async fn tag_history(
        &self,
        repo_id: i64,
        f: &TagFilter<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<TagRow>> {
        let now = now_ms();
        let like = crate::contains_pattern(f.contains);
        Ok(sqlx::query_as(
            "SELECT t.name, t.manifest_digest, t.start_at,
                    CASE WHEN t.end_at IS NULL AND t.expires_at <= $5 THEN t.expires_at ELSE t.end_at END
                      AS end_at,
                    t.expires_at, m.media_type,
                    -- Quay's tag size: the image's layers, compressed (none for an index)
                    (SELECT CAST(SUM(r.size) AS BIGINT) FROM manifest_refs r
                      WHERE r.manifest_id = m.id AND r.kind = 'layer') AS size,
                    t.immutable
             FROM tags t LEFT JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest
             WHERE t.repo_id = $1 AND ($2 = '' OR t.name = $2) AND ($3 = '' OR t.name LIKE $3 ESCAPE '!')
               AND ($4 = 0 OR (t.end_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $5)))
               AND ($8 = '' OR EXISTS (SELECT 1 FROM manifest_labels l WHERE l.manifest_id = m.id
                                        AND l.key = $8 AND ($9 = 0 OR l.value = $10)))
             ORDER BY t.start_at DESC, t.id DESC LIMIT $6 OFFSET $7",
        )
        .bind(repo_id)
        .bind(f.name.unwrap_or(""))
        .bind(like)
        .bind(i64::from(f.only_active))
        .bind(now)
        .bind(limit)
        .bind(offset)
        .bind(f.label.map(|l| l.0).unwrap_or(""))
        .bind(i64::from(f.label.is_some_and(|l| l.1.is_some())))
        .bind(f.label.and_then(|l| l.1).unwrap_or(""))
        .fetch_all(&self.pool)
        .await?)
    }

    /// A page of a repository's live tags in `order`, after the position `after` (the last row of
    /// the page before: its name, and its `start_at` for [`TagOrder::Newest`]), under `f`. Keyset
    /// paging on the live-tag index: page 1,000 of a repository with 100,000 tags costs what
    /// page 1 does.
    pub async fn live_tags_page(
        &self,
        repo_id: i64,
        f: &LiveTagFilter<'_>,
        order: TagOrder,
        after: Option<(&str, i64)>,
        limit: i64,
    ) -> Result<Vec<TagRow>> {
        let (keyset, sort) = match order {
            TagOrder::Name => ("t.name > $8", "t.name"),
            TagOrder::Newest => (
                "(t.start_at < $9 OR (t.start_at = $9 AND t.name > $8))",
                "t.start_at DESC, t.name",
            ),
        };
        let sql = format!(
            "SELECT t.name, t.manifest_digest, t.start_at, t.end_at, t.expires_at, m.media_type,
                    (SELECT CAST(SUM(r.size) AS BIGINT) FROM manifest_refs r
                      WHERE r.manifest_id = m.id AND r.kind = 'layer') AS size,
                    t.immutable
             FROM tags t LEFT JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest
             WHERE {LIVE_WHERE} AND {keyset}
             ORDER BY {sort} LIMIT $7"
        );
        let q = bind_live(sqlx::query_as(sqlx::AssertSqlSafe(sql)), repo_id, f)
            .bind(limit)
            .bind(after.map(|a| a.0).unwrap_or(""));
        // Only the newest-first order reads the start time (PostgreSQL refuses a parameter the
        // statement never uses).
        let q = match order {
            TagOrder::Name => q,
            TagOrder::Newest => q.bind(after.map(|a| a.1).unwrap_or(i64::MAX)),
        };
        Ok(q.fetch_all(&self.pool).await?)
    }

    /// These live tags of a repository (names not live are left out), in no order.
    pub async fn live_tags_named(&self, repo_id: i64, names: &[String]) -> Result<Vec<TagRow>> {
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(100) {
            let sql = format!(
                "SELECT t.name, t.manifest_digest, t.start_at, t.end_at, t.expires_at, m.media_type,
                        (SELECT CAST(SUM(r.size) AS BIGINT) FROM manifest_refs r
                          WHERE r.manifest_id = m.id AND r.kind = 'layer') AS size,
                        t.immutable
                 FROM tags t LEFT JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest
                 WHERE t.repo_id = $1 AND t.end_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)
                   AND t.name IN ({})",
                crate::marks(3, chunk.len())
            );
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(repo_id)
                .bind(now_ms());
            for n in chunk {
                q = q.bind(n);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }

    /// Every live tag under `f`: its name, start and own immutable flag, by name.
    pub async fn live_tag_names(
        &self,
        repo_id: i64,
        f: &LiveTagFilter<'_>,
    ) -> Result<Vec<LiveTagKey>> {
        let sql = format!(
            "SELECT t.name, t.start_at, t.immutable FROM tags t WHERE {LIVE_WHERE} ORDER BY t.name"
        );
        Ok(
            bind_live(sqlx::query_as(sqlx::AssertSqlSafe(sql)), repo_id, f)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Deletes the past positions of `tag` at `digest` (ended, or live but expired) inside `w`:
    /// they leave the time machine at once, and the manifest is garbage once nothing else holds
    /// it. How many rows went.
    pub async fn purge_tag_history(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        tag: &str,
        digest: &str,
    ) -> Result<u64> {
        self.lock_repo(w, repo_id).await?;
        let n = sqlx::query(
            "DELETE FROM tags WHERE repo_id = $1 AND name = $2 AND manifest_digest = $3
               AND (end_at IS NOT NULL OR expires_at <= $4)",
        )
        .bind(repo_id)
        .bind(tag)
        .bind(digest)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if n > 0 {
            self.mark_gc_due(w, repo_id).await?;
        }
        Ok(n)
    }

    /// Ends the live tags `names` inside `w` (one transaction for all); how many it ended.
    pub async fn end_tags(&self, w: &mut WriteTx, repo_id: i64, names: &[String]) -> Result<u64> {
        self.lock_repo(w, repo_id).await?;
        let now = now_ms();
        let mut ended = 0;
        for name in names {
            ended += sqlx::query(
                "UPDATE tags SET end_at = $1 WHERE repo_id = $2 AND name = $3 AND end_at IS NULL",
            )
            .bind(now)
            .bind(repo_id)
            .bind(name)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        }
        if ended > 0 {
            self.mark_gc_due(w, repo_id).await?;
        }
        Ok(ended)
    }

    /// How many live tags a repository has under `f`.
    pub async fn live_tag_count(&self, repo_id: i64, f: &LiveTagFilter<'_>) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM tags t WHERE {LIVE_WHERE}");
        let (n,): (i64,) = bind_live(sqlx::query_as(sqlx::AssertSqlSafe(sql)), repo_id, f)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// The live manifest digest of a tag, if any.
    pub async fn live_tag(&self, repo_id: i64, tag: &str) -> Result<Option<(String, Option<i64>)>> {
        Ok(sqlx::query_as(
            "SELECT manifest_digest, expires_at FROM tags WHERE repo_id = $1 AND name = $2
               AND end_at IS NULL AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(repo_id)
        .bind(tag)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Points a tag at a manifest of the repository (restoring a deleted manifest if the time
    /// machine still holds it). Answers `None` if the repository has no such manifest, else
    /// the digest the tag pointed at before (`Some(None)`: the tag is new).
    pub async fn point_tag(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        tag: &str,
        digest: &str,
        expires_at: Option<i64>,
    ) -> Result<Option<Option<String>>> {
        self.lock_repo(w, repo_id).await?;
        let exists = sqlx::query("SELECT 1 FROM manifests WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest)
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some();
        if !exists {
            return Ok(None);
        }
        sqlx::query("UPDATE manifests SET deleted_at = NULL WHERE repo_id = $1 AND digest = $2")
            .bind(repo_id)
            .bind(digest)
            .execute(&mut *w.tx)
            .await?;
        let now = now_ms();
        let before = self.set_tag(w, repo_id, tag, digest, now).await?;
        sqlx::query(
            "UPDATE tags SET expires_at = $1 WHERE repo_id = $2 AND name = $3 AND end_at IS NULL",
        )
        .bind(expires_at)
        .bind(repo_id)
        .bind(tag)
        .execute(&mut *w.tx)
        .await?;
        Ok(Some(before))
    }

    /// Sets (or clears) the expiry of a live tag; `false` if there is no live tag.
    pub async fn set_tag_expiry(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        tag: &str,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        self.lock_repo(w, repo_id).await?;
        let r = sqlx::query(
            "UPDATE tags SET expires_at = $1 WHERE repo_id = $2 AND name = $3 AND end_at IS NULL
               AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(expires_at)
        .bind(repo_id)
        .bind(tag)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Whether `tag` pointed at `digest` at some time since `since` (ms), or points there now.
    pub async fn tag_pointed_since(
        &self,
        repo_id: i64,
        tag: &str,
        digest: &str,
        since: i64,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM tags WHERE repo_id = $1 AND name = $2 AND manifest_digest = $3
               AND (end_at IS NULL OR end_at >= $4)",
        )
        .bind(repo_id)
        .bind(tag)
        .bind(digest)
        .bind(since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Closes live tags whose expiry has passed (at their expiry time); returns
    /// (repository, tag, digest, expired at) of each, at most `limit`.
    pub async fn close_expired_tags(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, String, String, i64)>> {
        let now = now_ms();
        let mut w = self.write().await?;
        let rows: Vec<ExpiredTag> = sqlx::query_as(
            "SELECT t.id, r.name AS repo_name, t.name, t.manifest_digest, t.expires_at, t.repo_id
             FROM tags t
             JOIN repositories r ON r.id = t.repo_id
             WHERE t.end_at IS NULL AND t.expires_at <= $1 ORDER BY t.expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *w.tx)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            sqlx::query("UPDATE tags SET end_at = expires_at WHERE id = $1 AND end_at IS NULL")
                .bind(r.id)
                .execute(&mut *w.tx)
                .await?;
            self.mark_gc_due(&mut w, r.repo_id).await?;
            out.push((r.repo_name, r.name, r.manifest_digest, r.expires_at));
        }
        w.commit().await?;
        Ok(out)
    }
}

/// A live tag whose expiry has passed (`close_expired_tags`).
#[derive(sqlx::FromRow)]
struct ExpiredTag {
    id: i64,
    repo_id: i64,
    repo_name: String,
    name: String,
    manifest_digest: String,
    expires_at: i64,
}

/// An immutability policy: tags whose name matches (or, with `matches == false`, does not match)
/// `pattern` cannot be moved, deleted or expired.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImmutabilityPolicyRow {
    pub uuid: String,
    pub namespace: String,
    pub repository: Option<String>,
    pub pattern: String,
    #[sqlx(rename = "pattern_matches", try_from = "IntBool")]
    pub matches: bool,
}

impl Db {
    /// Whether the live row of `tag` carries the immutable flag.
    pub async fn tag_flagged_immutable(&self, repo_id: i64, tag: &str) -> Result<bool> {
        let flag: Option<IntBool> = sqlx::query_scalar(
            "SELECT immutable FROM tags WHERE repo_id = $1 AND name = $2 AND end_at IS NULL",
        )
        .bind(repo_id)
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        Ok(flag.is_some_and(bool::from))
    }

    /// Sets the immutable flag of a live tag; `false` if there is no live tag.
    pub async fn set_tag_immutable(
        &self,
        repo_id: i64,
        tag: &str,
        immutable: bool,
    ) -> Result<bool> {
        let mut w = self.write().await?;
        self.lock_repo(&mut w, repo_id).await?;
        let r = sqlx::query(
            "UPDATE tags SET immutable = $1 WHERE repo_id = $2 AND name = $3 AND end_at IS NULL",
        )
        .bind(i64::from(immutable))
        .bind(repo_id)
        .bind(tag)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Live tags that carry an expiry, in the live repositories of `namespace` (or only in
    /// `repository`), inside `w`: (repository id, repository name, tag), by repository id.
    pub async fn expiring_tags_in(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        repository: Option<&str>,
    ) -> Result<Vec<(i64, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.name, t.name FROM tags t
               JOIN repositories r ON r.id = t.repo_id
               JOIN namespaces n ON n.id = r.namespace_id
             WHERE n.name = $1 AND ($2 = '' OR r.name = $2) AND r.deleted_at IS NULL
               AND t.end_at IS NULL AND t.expires_at IS NOT NULL
             ORDER BY r.id, t.name",
        )
        .bind(namespace)
        .bind(repository.unwrap_or(""))
        .fetch_all(&mut *w.tx)
        .await?)
    }

    /// Removes the expiry of live tags.
    pub async fn clear_tag_expiry(&self, repo_id: i64, tags: &[String]) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let mut w = self.write().await?;
        self.clear_tag_expiry_in(&mut w, repo_id, tags).await?;
        w.commit().await
    }

    /// Removes the expiry of live tags, inside `w`.
    pub async fn clear_tag_expiry_in(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        tags: &[String],
    ) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        self.lock_repo(w, repo_id).await?;
        for t in tags {
            sqlx::query(
                "UPDATE tags SET expires_at = NULL WHERE repo_id = $1 AND name = $2 AND end_at IS NULL",
            )
            .bind(repo_id)
            .bind(t)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }

    /// Live tags of a repository pointing at `digest`.
    pub async fn live_tags_on(&self, repo_id: i64, digest: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM tags WHERE repo_id = $1 AND manifest_digest = $2 AND end_at IS NULL",
        )
        .bind(repo_id)
        .bind(digest)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Policies applying to a repository: those of its namespace and its own.
    pub async fn immutability_policies_for(
        &self,
        namespace: &str,
        repo: &str,
    ) -> Result<Vec<ImmutabilityPolicyRow>> {
        self.policies(
            "WHERE namespace = $1 AND (repository IS NULL OR repository = $2)",
            namespace,
            repo,
        )
        .await
    }

    /// Policies defined at one level: a namespace's (`repo` None) or a repository's.
    pub async fn immutability_policies_at(
        &self,
        namespace: &str,
        repo: Option<&str>,
    ) -> Result<Vec<ImmutabilityPolicyRow>> {
        match repo {
            None => {
                self.policies(
                    "WHERE namespace = $1 AND repository IS NULL AND $2 = ''",
                    namespace,
                    "",
                )
                .await
            }
            Some(r) => {
                self.policies("WHERE namespace = $1 AND repository = $2", namespace, r)
                    .await
            }
        }
    }

    async fn policies(&self, cond: &str, a: &str, b: &str) -> Result<Vec<ImmutabilityPolicyRow>> {
        let sql = format!(
            "SELECT {POLICY_COLS} FROM immutability_policies {cond} ORDER BY created_at, uuid"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(a)
            .bind(b)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every policy of a namespace, its own and its repositories', inside `w`.
    pub async fn immutability_policies_in(
        &self,
        w: &mut WriteTx,
        namespace: &str,
    ) -> Result<Vec<ImmutabilityPolicyRow>> {
        let sql = format!(
            "SELECT {POLICY_COLS} FROM immutability_policies WHERE namespace = $1 ORDER BY created_at, uuid"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(namespace)
            .fetch_all(&mut *w.tx)
            .await?)
    }

    pub async fn insert_immutability_policy(
        &self,
        w: &mut WriteTx,
        p: &ImmutabilityPolicyRow,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO immutability_policies (uuid, namespace, repository, pattern, pattern_matches, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.uuid)
        .bind(&p.namespace)
        .bind(&p.repository)
        .bind(&p.pattern)
        .bind(i64::from(p.matches))
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Replaces a policy's pattern; `false` if it does not exist at that level.
    pub async fn update_immutability_policy(
        &self,
        w: &mut WriteTx,
        p: &ImmutabilityPolicyRow,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE immutability_policies SET pattern = $1, pattern_matches = $2
             WHERE uuid = $3 AND namespace = $4 AND repository IS NOT DISTINCT FROM $5",
        )
        .bind(&p.pattern)
        .bind(i64::from(p.matches))
        .bind(&p.uuid)
        .bind(&p.namespace)
        .bind(&p.repository)
        .execute(&mut *w.tx)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Deletes a policy defined at one level; the policy as it was, `None` if there was none.
    pub async fn delete_immutability_policy(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        repo: Option<&str>,
        uuid: &str,
    ) -> Result<Option<ImmutabilityPolicyRow>> {
        let sql = format!(
            "DELETE FROM immutability_policies WHERE uuid = $1 AND namespace = $2
               AND repository IS NOT DISTINCT FROM $3 RETURNING {POLICY_COLS}"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(uuid)
            .bind(namespace)
            .bind(repo)
            .fetch_optional(&mut *w.tx)
            .await?)
    }
}

const POLICY_COLS: &str = "uuid, namespace, repository, pattern, pattern_matches";
