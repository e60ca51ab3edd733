//! Namespaces and repositories.

use crate::{AccountKind, Db, Result, Visibility, WriteTx, now_ms};

/// Who is looking at repositories, for listings filtered to what they may see.
#[derive(Debug, Default)]
pub struct Viewer<'a> {
    pub account_id: Option<i64>,
    /// The viewer's own namespace (a user's name).
    pub own_namespace: Option<&'a str>,
    /// Public repositories are visible.
    pub public: bool,
    /// Everything is visible (superusers).
    pub all: bool,
}

/// Which repositories a listing selects, and in which order ([`Db::visible_repos`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RepoFilter<'a> {
    pub namespace: Option<&'a str>,
    /// Names containing this text.
    pub contains: Option<&'a str>,
    pub visibility: Option<Visibility>,
    /// Most recently pushed first, instead of by name.
    pub newest_first: bool,
    /// The last row of the page before: its name and (for newest first) its push time, 0
    /// when never pushed.
    pub after: Option<(&'a str, i64)>,
}

impl<'v> Viewer<'v> {
    /// Binds the viewer as `$2`..`$5` of a query using [`VISIBLE`] (its `$1` bound already).
    fn bind<'q, O>(
        &self,
        q: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments>
    where
        'v: 'q,
    {
        q.bind(i64::from(self.public))
            .bind(i64::from(self.all))
            .bind(self.own_namespace.unwrap_or("/"))
            .bind(self.account_id.unwrap_or(-1))
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RepoRow {
    pub id: i64,
    pub name: String,
    pub namespace: String,
    pub namespace_kind: AccountKind,
    pub visibility: Visibility,
    pub description: Option<String>,
    pub created_at: i64,
    pub last_push_at: Option<i64>,
    pub last_pull_at: Option<i64>,
}

const REPO_COLS: &str = "r.id, r.name, n.name AS namespace, n.kind AS namespace_kind, r.visibility, r.description, r.created_at, r.last_push_at, r.last_pull_at";

/// A repository created through the API or by a first push.
pub struct NewRepo<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub visibility: Visibility,
    pub description: Option<&'a str>,
    /// Applies the organization's default permissions for this creator.
    pub creator: Option<i64>,
    /// Gets admin on the new repository.
    pub creator_admin: Option<i64>,
}

/// The repositories (`r`, with its namespace `n`) a [`Viewer`] may see, with the viewer bound
/// as `$2` public, `$3` all, `$4` own namespace and `$5` account id. A superset of what the
/// core's access rule allows (token scopes narrow it there).
const VISIBLE: &str = "(
               (r.visibility = 'public' AND $2 = 1)
               OR $3 = 1
               OR n.name = $4
               OR EXISTS (SELECT 1 FROM repo_account_perms p WHERE p.repo_id = r.id AND p.account_id = $5)
               OR EXISTS (SELECT 1 FROM repo_team_perms p JOIN team_members m ON m.team_id = p.team_id
                          WHERE p.repo_id = r.id AND m.account_id = $5)
               OR EXISTS (SELECT 1 FROM teams t JOIN team_members m ON m.team_id = t.id
                          JOIN accounts o ON o.id = t.org_id
                          WHERE o.name = n.name AND t.role = 'admin' AND m.account_id = $5))";
impl Db {
    /// The id of an existing repository.
    pub async fn repo_id(&self, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The id of a repository, creating it (and its namespace) on first push.
    pub async fn ensure_repo(&self, w: &mut WriteTx, name: &str, namespace: &str) -> Result<i64> {
        if let Some(id) = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?
        {
            return Ok(id);
        }
        if let Some(id) = self
            .insert_repo(w, name, namespace, Visibility::Private, None)
            .await?
        {
            return Ok(id);
        }
        // Another instance created it at the same moment.
        Ok(
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *w.tx)
                .await?,
        )
    }

    /// The one way a repository row comes to exist: its namespace row first (of the kind of
    /// the account that owns the name — a user's or an organization's; `user` for a namespace
    /// no account holds, as before accounts existed), then the repository. `None` if another
    /// transaction created the repository first.
    async fn insert_repo(
        &self,
        w: &mut WriteTx,
        name: &str,
        namespace: &str,
        visibility: Visibility,
        description: Option<&str>,
    ) -> Result<Option<i64>> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO namespaces (name, kind, created_at)
             VALUES ($1, COALESCE((SELECT kind FROM accounts WHERE name = $1 AND kind <> 'robot'), 'user'), $2)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(namespace)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(sqlx::query_scalar(
            "INSERT INTO repositories (namespace_id, name, visibility, description, created_at)
             SELECT id, $1, $2, $3, $4 FROM namespaces WHERE name = $5
             ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(visibility.as_str())
        .bind(description)
        .bind(now)
        .bind(namespace)
        .fetch_optional(&mut *w.tx)
        .await?)
    }

    /// Serialises manifest and tag writes to one repository across instances (PostgreSQL row
    /// lock; on SQLite the single writer already does). `FOR NO KEY UPDATE`: holders exclude each
    /// other, but not the key-share locks that foreign-key checks take when a blob is linked to
    /// the repository, so an upload never waits for a sweep of its repository (which would let
    /// upload, repository sweep and blob sweep wait on each other in a cycle).
    pub async fn lock_repo(&self, w: &mut WriteTx, repo_id: i64) -> Result<()> {
        if self.backend == crate::Backend::Postgres {
            sqlx::query("SELECT id FROM repositories WHERE id = $1 FOR NO KEY UPDATE")
                .bind(repo_id)
                .execute(&mut *w.tx)
                .await?;
        }
        Ok(())
    }

    /// Live tags, in repositories `viewer` may see, whose name starts with `prefix`: (repository,
    /// tag, manifest digest), by tag then repository, at most `n`.
    pub async fn search_tags(
        &self,
        viewer: &Viewer<'_>,
        prefix: &str,
        n: i64,
    ) -> Result<Vec<(String, String, String)>> {
        let sql = format!(
            "SELECT r.name, t.name, t.manifest_digest FROM tags t
               JOIN repositories r ON r.id = t.repo_id JOIN namespaces n ON n.id = r.namespace_id
             WHERE t.name LIKE $1 ESCAPE '!' AND t.end_at IS NULL
               AND (t.expires_at IS NULL OR t.expires_at > $6) AND r.deleted_at IS NULL AND {VISIBLE}
             ORDER BY t.name, r.name LIMIT $7"
        );
        let q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(format!("{}%", crate::escape_like(prefix)));
        Ok(viewer
            .bind(q)
            .bind(now_ms())
            .bind(n)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Manifests, in repositories `viewer` may see, whose digest starts with `prefix`:
    /// (repository, digest, media type), at most `n`.
    pub async fn search_manifests(
        &self,
        viewer: &Viewer<'_>,
        prefix: &str,
        n: i64,
    ) -> Result<Vec<(String, String, String)>> {
        let sql = format!(
            "SELECT r.name, m.digest, m.media_type FROM manifests m
               JOIN repositories r ON r.id = m.repo_id JOIN namespaces n ON n.id = r.namespace_id
             WHERE m.digest LIKE $1 ESCAPE '!' AND r.deleted_at IS NULL AND {VISIBLE}
             ORDER BY r.name, m.digest LIMIT $6"
        );
        let q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(format!("{}%", crate::escape_like(prefix)));
        Ok(viewer.bind(q).bind(n).fetch_all(&self.pool).await?)
    }

    /// Repositories `viewer` may see that `f` selects, at most `n`, after `f.after`: by name,
    /// or most recently pushed first (never-pushed last), each order keyset-paged.
    pub async fn visible_repos(
        &self,
        viewer: &Viewer<'_>,
        f: &RepoFilter<'_>,
        n: i64,
    ) -> Result<Vec<RepoRow>> {
        let like = crate::contains_pattern(f.contains);
        let (keyset, order) = if f.newest_first {
            (
                "(COALESCE(r.last_push_at, 0) < $10
                  OR (COALESCE(r.last_push_at, 0) = $10 AND r.name > $1))",
                "COALESCE(r.last_push_at, 0) DESC, r.name",
            )
        } else {
            ("r.name > $1", "r.name")
        };
        let sql = format!(
            "SELECT {REPO_COLS} FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
             WHERE {keyset} AND r.deleted_at IS NULL AND ($6 = '' OR n.name = $6)
               AND ($8 = '' OR r.name LIKE $8 ESCAPE '!') AND ($9 = '' OR r.visibility = $9)
               AND {VISIBLE}
             ORDER BY {order} LIMIT $7"
        );
        let q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(f.after.map(|a| a.0).unwrap_or(""));
        let q = viewer
            .bind(q)
            .bind(f.namespace.unwrap_or(""))
            .bind(n)
            .bind(like)
            .bind(f.visibility.map(|v| v.as_str()).unwrap_or(""));
        // Only the newest-first order reads the push-time cursor (PostgreSQL refuses a
        // parameter the statement never uses).
        let q = if f.newest_first {
            q.bind(f.after.map(|a| a.1).unwrap_or(i64::MAX))
        } else {
            q
        };
        Ok(q.fetch_all(&self.pool).await?)
    }

    pub async fn repo(&self, name: &str) -> Result<Option<RepoRow>> {
        let sql = format!(
            "SELECT {REPO_COLS} FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
             WHERE r.name = $1"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Creates a repository in an existing or new namespace, applying the organization's default
    /// permissions for `creator` and giving `creator_admin` admin rights, in one transaction.
    /// `None` if the repository exists.
    pub async fn create_repo(&self, c: &NewRepo<'_>) -> Result<Option<i64>> {
        let mut w = self.write().await?;
        if sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(c.name)
            .fetch_optional(&mut *w.tx)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        // Another instance may create the same repository at the same moment.
        let Some(id) = self
            .insert_repo(&mut w, c.name, c.namespace, c.visibility, c.description)
            .await?
        else {
            return Ok(None);
        };
        if let Some(creator) = c.creator {
            sqlx::query(
                "INSERT INTO repo_account_perms (repo_id, account_id, role, origin)
                 SELECT $1, d.delegate_account_id, d.role, 'default:' || d.uuid FROM default_perms d JOIN accounts o ON o.id = d.org_id
                 WHERE o.name = $2 AND d.delegate_account_id IS NOT NULL
                   AND (d.activating_id IS NULL OR d.activating_id = $3)
                 ON CONFLICT (repo_id, account_id) DO NOTHING",
            )
            .bind(id)
            .bind(c.namespace)
            .bind(creator)
            .execute(&mut *w.tx)
            .await?;
            sqlx::query(
                "INSERT INTO repo_team_perms (repo_id, team_id, role, origin)
                 SELECT $1, d.delegate_team_id, d.role, 'default:' || d.uuid FROM default_perms d JOIN accounts o ON o.id = d.org_id
                 WHERE o.name = $2 AND d.delegate_team_id IS NOT NULL
                   AND (d.activating_id IS NULL OR d.activating_id = $3)
                 ON CONFLICT (repo_id, team_id) DO NOTHING",
            )
            .bind(id)
            .bind(c.namespace)
            .bind(creator)
            .execute(&mut *w.tx)
            .await?;
        }
        if let Some(admin) = c.creator_admin {
            sqlx::query(
                "INSERT INTO repo_account_perms (repo_id, account_id, role, origin)
                 VALUES ($1, $2, 'admin', 'creator')
                 ON CONFLICT (repo_id, account_id) DO UPDATE SET role = 'admin', origin = 'creator'",
            )
            .bind(id)
            .bind(admin)
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await?;
        Ok(Some(id))
    }

    pub async fn set_repo_visibility(&self, repo_id: i64, visibility: Visibility) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE repositories SET visibility = $1 WHERE id = $2")
            .bind(visibility.as_str())
            .bind(repo_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub async fn set_repo_description(&self, repo_id: i64, description: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE repositories SET description = $1 WHERE id = $2")
            .bind(description)
            .bind(repo_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub async fn touch_push(&self, w: &mut WriteTx, repo_id: i64) -> Result<()> {
        sqlx::query("UPDATE repositories SET last_push_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(repo_id)
            .execute(&mut *w.tx)
            .await?;
        Ok(())
    }

    /// Records pull times collected in memory, in one transaction.
    pub async fn record_pulls(&self, pulls: &[(i64, i64)]) -> Result<()> {
        if pulls.is_empty() {
            return Ok(());
        }
        let mut w = self.write().await?;
        for (repo_id, at) in pulls {
            sqlx::query("UPDATE repositories SET last_pull_at = $1 WHERE id = $2 AND (last_pull_at IS NULL OR last_pull_at < $1)")
                .bind(*at)
                .bind(*repo_id)
                .execute(&mut *w.tx)
                .await?;
        }
        w.commit().await
    }

    /// (last_push_at, last_pull_at) of a repository.
    pub async fn repo_activity(&self, repo_id: i64) -> Result<(Option<i64>, Option<i64>)> {
        Ok(
            sqlx::query_as("SELECT last_push_at, last_pull_at FROM repositories WHERE id = $1")
                .bind(repo_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
