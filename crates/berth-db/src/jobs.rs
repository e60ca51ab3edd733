//! The durable job queue and singleton-worker leases.

use crate::{Backend, Db, JobState, Result, WriteTx, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub max_attempts: i64,
}

/// One line of `job_counts`.
#[derive(sqlx::FromRow)]
struct JobCount {
    kind: String,
    state: JobState,
    n: i64,
}

impl Db {
    /// Enqueues a job inside the caller's transaction, so that the job exists exactly when the
    /// change that needs it commits. False when a job with the same kind and key is already queued
    /// or running.
    pub async fn enqueue_job(
        &self,
        w: &mut WriteTx,
        kind: &str,
        dedup_key: &str,
        payload: &str,
    ) -> Result<bool> {
        let now = now_ms();
        let res = sqlx::query(
            "INSERT INTO jobs (kind, dedup_key, payload, run_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4, $4)
             ON CONFLICT (kind, dedup_key) WHERE state IN ('queued', 'running') DO NOTHING",
        )
        .bind(kind)
        .bind(dedup_key)
        .bind(payload)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(res.rows_affected() > 0)
    }

    /// Claims up to `limit` runnable jobs for `worker` with a lease of `lease_ms`. A job whose
    /// lease expired (its worker died) is runnable again.
    pub async fn claim_jobs(&self, worker: &str, limit: i64, lease_ms: i64) -> Result<Vec<JobRow>> {
        self.claim_jobs_of(worker, limit, lease_ms, &[], false)
            .await
    }

    /// [`Db::claim_jobs`] of `kinds` only, or (`only` false) of every kind but `kinds`, so that
    /// long jobs (a mirror's sync) run on a worker of their own and hold up no others.
    pub async fn claim_jobs_of(
        &self,
        worker: &str,
        limit: i64,
        lease_ms: i64,
        kinds: &[&str],
        only: bool,
    ) -> Result<Vec<JobRow>> {
        let now = now_ms();
        let of_kind = if kinds.is_empty() {
            if only {
                "AND 1 = 0".to_string()
            } else {
                String::new()
            }
        } else {
            let marks: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 5)).collect();
            let not = if only { "" } else { "NOT " };
            format!("AND kind {not}IN ({})", marks.join(", "))
        };
        // SQLite has one writer at a time: the sub-select and update cannot interleave with
        // another claim. PostgreSQL skips rows another claim holds.
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', locked_by = $1, locked_until = $2, attempts = attempts + 1, updated_at = $3
             WHERE id IN (SELECT id FROM jobs
                          WHERE ((state = 'queued' AND run_at <= $3) OR (state = 'running' AND locked_until < $3)) {of_kind}
                          ORDER BY run_at, id LIMIT $4 {lock})
             RETURNING id, kind, payload, attempts, max_attempts"
        );
        let mut w = self.write().await?;
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker)
            .bind(now + lease_ms)
            .bind(now)
            .bind(limit);
        for k in kinds {
            q = q.bind(*k);
        }
        let rows = q.fetch_all(&mut *w.tx).await?;
        w.commit().await?;
        Ok(rows)
    }

    /// Marks a job done (only if `worker` still holds it).
    pub async fn finish_job(&self, id: i64, worker: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE jobs SET state = 'done', locked_by = NULL, locked_until = NULL, updated_at = $1 WHERE id = $2 AND locked_by = $3")
            .bind(now_ms())
            .bind(id)
            .bind(worker)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Records a failure: back to the queue at `retry_at`, or `failed` for good when `None`.
    pub async fn fail_job(
        &self,
        id: i64,
        worker: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let (state, run_at) = match retry_at {
            Some(t) => (JobState::Queued, t),
            None => (JobState::Failed, now_ms()),
        };
        sqlx::query(
            "UPDATE jobs SET state = $1, run_at = $2, last_error = $3, locked_by = NULL, locked_until = NULL, updated_at = $4
             WHERE id = $5 AND locked_by = $6",
        )
        .bind(state.as_str())
        .bind(run_at)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .bind(worker)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Removes finished jobs older than `age_ms`.
    pub async fn prune_jobs(&self, age_ms: i64) -> Result<u64> {
        let mut w = self.write().await?;
        let res = sqlx::query("DELETE FROM jobs WHERE state = 'done' AND updated_at < $1")
            .bind(now_ms() - age_ms)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(res.rows_affected())
    }

    /// (kind, state, count) over the queue.
    pub async fn job_counts(&self) -> Result<Vec<(String, JobState, i64)>> {
        let rows: Vec<JobCount> =
            sqlx::query_as("SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|c| (c.kind, c.state, c.n)).collect())
    }

    /// Takes or renews the named lease for `holder`; false while another holder's lease runs.
    pub async fn acquire_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        let now = now_ms();
        let mut w = self.write().await?;
        let res = sqlx::query(
            "INSERT INTO worker_leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE worker_leases.expires_at < $4 OR worker_leases.holder = excluded.holder",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(res.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, Db) {
        crate::test_db().await
    }

    #[tokio::test]
    async fn jobs_are_deduplicated_claimed_once_retried_and_reclaimed_after_lease_expiry() {
        let (_d, db) = db().await;
        let mut w = db.write().await.expect("tx");
        assert!(
            db.enqueue_job(&mut w, "k", "a", "{}")
                .await
                .expect("enqueue")
        );
        assert!(!db.enqueue_job(&mut w, "k", "a", "{}").await.expect("dedup"));
        assert!(
            db.enqueue_job(&mut w, "k", "b", "{}")
                .await
                .expect("enqueue")
        );
        w.commit().await.expect("commit");
        let first = db.claim_jobs("w1", 1, 60_000).await.expect("claim");
        let second = db.claim_jobs("w2", 10, 60_000).await.expect("claim");
        assert_eq!((first.len(), second.len()), (1, 1));
        assert_ne!(first[0].id, second[0].id);
        assert!(
            db.claim_jobs("w3", 10, 60_000)
                .await
                .expect("claim")
                .is_empty()
        );
        // w1 fails and retries now; w2's lease expires (a crashed worker).
        db.fail_job(first[0].id, "w1", "boom", Some(now_ms() - 1))
            .await
            .expect("fail");
        let mut w = db.write().await.expect("tx");
        sqlx::query("UPDATE jobs SET locked_until = 0 WHERE id = $1")
            .bind(second[0].id)
            .execute(&mut *w.tx)
            .await
            .expect("expire");
        w.commit().await.expect("commit");
        let again = db.claim_jobs("w3", 10, 60_000).await.expect("claim");
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|j| j.attempts == 2));
        for j in &again {
            db.finish_job(j.id, "w3").await.expect("finish");
        }
        // A stale holder cannot complete a job it lost.
        db.fail_job(first[0].id, "w1", "late", None)
            .await
            .expect("no-op");
        let counts = db.job_counts().await.expect("counts");
        assert_eq!(counts, vec![("k".to_string(), JobState::Done, 2)]);
        // Once done, the same key can be queued again.
        let mut w = db.write().await.expect("tx");
        assert!(
            db.enqueue_job(&mut w, "k", "a", "{}")
                .await
                .expect("enqueue")
        );
        w.commit().await.expect("commit");
    }

    #[tokio::test]
    async fn leases_have_one_holder() {
        let (_d, db) = db().await;
        assert!(db.acquire_lease("gc", "a", 60_000).await.expect("lease"));
        assert!(!db.acquire_lease("gc", "b", 60_000).await.expect("lease"));
        assert!(db.acquire_lease("gc", "a", 60_000).await.expect("renew"));
        assert!(db.acquire_lease("other", "b", 60_000).await.expect("lease"));
        assert!(db.acquire_lease("x", "a", -1).await.expect("lease"));
        assert!(
            db.acquire_lease("x", "b", 60_000)
                .await
                .expect("expired lease is taken over")
        );
    }
}
