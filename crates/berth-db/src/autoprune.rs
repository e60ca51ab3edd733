//! Auto-prune policies and the tag rows they act on.

use crate::{Db, PruneMethod, Result, WriteTx, now_ms};

/// Read from `COLS` by name: the stored `tag_pattern` and `pattern_matches` columns are
/// `pattern` and `matches` here.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AutoPrunePolicyRow {
    pub uuid: String,
    pub namespace: String,
    /// `None`: every repository of the namespace.
    pub repository: Option<String>,
    /// `number_of_tags` or `creation_date`.
    pub method: PruneMethod,
    /// A count, or a duration such as `2w`, as given.
    pub value: String,
    #[sqlx(rename = "tag_pattern")]
    pub pattern: Option<String>,
    #[sqlx(rename = "pattern_matches", try_from = "crate::decode::IntBool")]
    pub matches: bool,
}

const COLS: &str = "uuid, namespace, repository, method, value, tag_pattern, pattern_matches FROM autoprune_policies";

impl Db {
    pub async fn insert_autoprune_policy(
        &self,
        w: &mut WriteTx,
        p: &AutoPrunePolicyRow,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO autoprune_policies (uuid, namespace, repository, method, value, tag_pattern, pattern_matches, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&p.uuid)
        .bind(&p.namespace)
        .bind(&p.repository)
        .bind(p.method)
        .bind(&p.value)
        .bind(&p.pattern)
        .bind(i64::from(p.matches))
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Replaces a policy's settings; `false` if it does not exist at that level.
    pub async fn update_autoprune_policy(
        &self,
        w: &mut WriteTx,
        p: &AutoPrunePolicyRow,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE autoprune_policies SET method = $4, value = $5, tag_pattern = $6, pattern_matches = $7
             WHERE uuid = $1 AND namespace = $2 AND COALESCE(repository, '') = $3",
        )
        .bind(&p.uuid)
        .bind(&p.namespace)
        .bind(p.repository.as_deref().unwrap_or(""))
        .bind(p.method)
        .bind(&p.value)
        .bind(&p.pattern)
        .bind(i64::from(p.matches))
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Deletes a policy defined at one level; the policy as it was, `None` if there was none.
    pub async fn delete_autoprune_policy(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        repository: Option<&str>,
        uuid: &str,
    ) -> Result<Option<AutoPrunePolicyRow>> {
        Ok(sqlx::query_as(
            "DELETE FROM autoprune_policies WHERE uuid = $1 AND namespace = $2 AND COALESCE(repository, '') = $3
             RETURNING uuid, namespace, repository, method, value, tag_pattern, pattern_matches",
        )
        .bind(uuid)
        .bind(namespace)
        .bind(repository.unwrap_or(""))
        .fetch_optional(&mut *w.tx)
        .await?)
    }

    /// The policies defined at one level: a namespace's own (`repository` `None`) or a
    /// repository's.
    pub async fn autoprune_policies_at(
        &self,
        namespace: &str,
        repository: Option<&str>,
    ) -> Result<Vec<AutoPrunePolicyRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} WHERE namespace = $1 AND COALESCE(repository, '') = $2 ORDER BY created_at, uuid"
        )))
        .bind(namespace)
        .bind(repository.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every policy.
    pub async fn autoprune_policies(&self) -> Result<Vec<AutoPrunePolicyRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLS} ORDER BY created_at, uuid"
        )))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Live repositories of a namespace: (id, name).
    pub async fn namespace_repos(&self, namespace: &str) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.name FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
             WHERE n.name = $1 AND r.deleted_at IS NULL ORDER BY r.name",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The live repositories a namespace- or repository-level policy covers: (id, name).
    pub async fn repos_in_scope(
        &self,
        namespace: &str,
        repository: Option<&str>,
    ) -> Result<Vec<(i64, String)>> {
        match repository {
            Some(r) => Ok(self
                .repo_id(r)
                .await?
                .map(|id| vec![(id, r.to_string())])
                .unwrap_or_default()),
            None => self.namespace_repos(namespace).await,
        }
    }

    /// Live, unexpired tags of a repository: (name, manifest digest, since when).
    pub async fn live_tag_rows(&self, repo_id: i64) -> Result<Vec<(String, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT name, manifest_digest, start_at FROM tags WHERE repo_id = $1 AND end_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2) ORDER BY start_at DESC, id DESC",
        )
        .bind(repo_id)
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Ends a live tag only if it still points at `digest` (it stays in history).
    pub async fn delete_tag_if(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        tag: &str,
        digest: &str,
    ) -> Result<bool> {
        self.lock_repo(w, repo_id).await?;
        let res = sqlx::query(
            "UPDATE tags SET end_at = $1 WHERE repo_id = $2 AND name = $3 AND manifest_digest = $4 AND end_at IS NULL",
        )
        .bind(now_ms())
        .bind(repo_id)
        .bind(tag)
        .bind(digest)
        .execute(&mut *w.tx)
        .await?;
        if res.rows_affected() > 0 {
            self.mark_gc_due(w, repo_id).await?;
        }
        Ok(res.rows_affected() > 0)
    }
}
