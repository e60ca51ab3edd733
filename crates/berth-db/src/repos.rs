//! Namespaces and repositories.

use crate::{Db, Result, WriteTx, now_ms};
use sqlx::Row;

impl Db {
    /// The id of an existing repository.
    pub async fn repo_id(&self, name: &str) -> Result<Option<i64>> {
        let row = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0)))
    }

    /// The id of a repository, creating it (and its namespace) on first push.
    pub async fn ensure_repo(&self, w: &mut WriteTx, name: &str, namespace: &str) -> Result<i64> {
        if let Some(r) = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?
        {
            return Ok(r.get::<i64, _>(0));
        }
        let now = now_ms();
        sqlx::query("INSERT INTO namespaces (name, kind, created_at) VALUES ($1, 'user', $2) ON CONFLICT (name) DO NOTHING")
            .bind(namespace)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        // ON CONFLICT: another instance may create the same repository at the same moment.
        sqlx::query(
            "INSERT INTO repositories (namespace_id, name, created_at)
             SELECT id, $1, $2 FROM namespaces WHERE name = $3 ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .bind(namespace)
        .execute(&mut *w.tx)
        .await?;
        let row = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *w.tx)
            .await?;
        Ok(row.get::<i64, _>(0))
    }

    /// Serialises manifest and tag writes to one repository across instances (PostgreSQL row
    /// lock; on SQLite the single writer already does).
    pub async fn lock_repo(&self, w: &mut WriteTx, repo_id: i64) -> Result<()> {
        if self.backend == crate::Backend::Postgres {
            sqlx::query("SELECT id FROM repositories WHERE id = $1 FOR UPDATE")
                .bind(repo_id)
                .execute(&mut *w.tx)
                .await?;
        }
        Ok(())
    }

    /// Repository names in lexical order after `last`, at most `n`.
    pub async fn catalog(&self, last: Option<&str>, n: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(last.unwrap_or(""))
                .bind(n)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
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
        let r = sqlx::query("SELECT last_push_at, last_pull_at FROM repositories WHERE id = $1")
            .bind(repo_id)
            .fetch_one(&self.pool)
            .await?;
        Ok((r.get(0), r.get(1)))
    }
}
