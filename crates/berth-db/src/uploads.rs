//! Upload sessions.

use crate::{Db, Result, WriteTx, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UploadRow {
    pub id: String,
    pub repo_id: i64,
    pub repo_name: String,
    pub size: i64,
    pub hash_algo: String,
    pub hash_state: Option<Vec<u8>>,
}

impl Db {
    pub async fn create_upload(
        &self,
        w: &mut WriteTx,
        id: &str,
        repo_id: i64,
        algo: &str,
        state: &[u8],
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO uploads (id, repo_id, size, hash_algo, hash_state, created_at, updated_at)
             VALUES ($1, $2, 0, $3, $4, $5, $5)",
        )
        .bind(id)
        .bind(repo_id)
        .bind(algo)
        .bind(state.to_vec())
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// The session `id` if it belongs to repository `repo`.
    pub async fn get_upload(&self, repo: &str, id: &str) -> Result<Option<UploadRow>> {
        Ok(sqlx::query_as(
            "SELECT u.id, u.repo_id, r.name AS repo_name, u.size, u.hash_algo, u.hash_state
             FROM uploads u JOIN repositories r ON r.id = u.repo_id
             WHERE u.id = $1 AND r.name = $2",
        )
        .bind(id)
        .bind(repo)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records new progress, only if nobody else recorded progress since `old_size` was read.
    pub async fn advance_upload(
        &self,
        id: &str,
        old_size: i64,
        new_size: i64,
        state: &[u8],
    ) -> Result<bool> {
        let mut w = self.write().await?;
        let res = sqlx::query("UPDATE uploads SET size = $1, hash_state = $2, updated_at = $3 WHERE id = $4 AND size = $5")
            .bind(new_size)
            .bind(state.to_vec())
            .bind(now_ms())
            .bind(id)
            .bind(old_size)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(res.rows_affected() == 1)
    }

    pub async fn delete_upload(&self, w: &mut WriteTx, id: &str) -> Result<bool> {
        let res = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    pub async fn uploads_in_progress(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
            .fetch_one(&self.pool)
            .await?)
    }
}
