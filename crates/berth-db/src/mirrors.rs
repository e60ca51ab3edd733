//! Repository mirrors (one per repository), their sync lease, and the log of their runs.
//!
//! A sync is claimed, renewed and released with compare-and-set on `sync_txn`: whoever read the
//! row last decides, and a sync whose row changed under it (cancelled, reconfigured, taken over
//! after its lease lapsed) learns so at its next renewal and stops.

use crate::{Db, MirrorStatus, RepoState, Result, WriteTx, now_ms};

/// A mirror's configuration and its place in the sync cycle.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MirrorRow {
    pub repo_id: i64,
    pub repo_name: String,
    pub repo_state: RepoState,
    pub is_enabled: i64,
    pub external_reference: String,
    pub username: Option<String>,
    pub password_sealed: Option<String>,
    /// JSON: `verify_tls`, `unsigned_images`, `proxy{http_proxy, https_proxy, no_proxy}`.
    pub registry_config: String,
    pub robot_id: i64,
    pub robot_name: String,
    /// JSON array of globs.
    pub tag_globs: String,
    /// JSON array of architectures.
    pub architecture_filter: String,
    pub sync_interval_s: i64,
    pub sync_start_at: Option<i64>,
    pub sync_lease_until: Option<i64>,
    pub sync_retries_remaining: i64,
    pub sync_status: MirrorStatus,
    pub sync_txn: String,
    pub sync_holder: Option<String>,
    pub timeout_s: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The organization whose mirror created and manages this one.
    pub org_namespace: Option<String>,
}

/// One sync run as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MirrorRunRow {
    pub id: i64,
    pub repo_id: i64,
    pub txn: String,
    pub holder: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: String,
    pub tags_copied: i64,
    pub tags_unchanged: i64,
    pub tags_removed: i64,
    pub tags_failed: i64,
    pub blobs_copied: i64,
    pub bytes_copied: i64,
    pub log: String,
}

/// A run's progress figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    pub tags_copied: i64,
    pub tags_unchanged: i64,
    pub tags_removed: i64,
    pub tags_failed: i64,
    pub blobs_copied: i64,
    pub bytes_copied: i64,
}

const SELECT: &str = "SELECT m.repo_id, r.name AS repo_name, r.state AS repo_state, m.is_enabled,
        m.external_reference, m.username, m.password_sealed, m.registry_config, m.robot_id,
        a.name AS robot_name, m.tag_globs, m.architecture_filter, m.sync_interval_s,
        m.sync_start_at, m.sync_lease_until, m.sync_retries_remaining, m.sync_status, m.sync_txn,
        m.sync_holder, m.timeout_s, m.created_at, m.updated_at, m.org_namespace
     FROM repo_mirrors m JOIN repositories r ON r.id = m.repo_id JOIN accounts a ON a.id = m.robot_id";

/// Which mirrors a sync may start on now ($1 = now): in MIRROR state, and either asked to sync
/// now, due (enabled, retries left), or held by a sync whose lease lapsed (its worker died) —
/// the case Quay leaves stuck.
const CLAIMABLE: &str = "r.state IN ('MIRROR', 'ORG_MIRROR') AND (
        (m.sync_status = 'SYNC_NOW' AND (m.sync_lease_until IS NULL OR m.sync_lease_until < $1))
     OR (m.sync_status IN ('NEVER_RUN', 'SUCCESS', 'FAIL') AND m.is_enabled = 1
         AND m.sync_retries_remaining > 0 AND m.sync_start_at IS NOT NULL AND m.sync_start_at <= $1)
     OR (m.sync_status = 'SYNCING' AND (m.sync_lease_until IS NULL OR m.sync_lease_until < $1)))";

fn new_txn() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Db {
    /// The mirror of repository `repo_id`, if it has one.
    pub async fn mirror(&self, repo_id: i64) -> Result<Option<MirrorRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE m.repo_id = $1"
        )))
        .bind(repo_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The mirror of repository `repo_id`, read inside the caller's transaction.
    pub async fn mirror_in(&self, w: &mut WriteTx, repo_id: i64) -> Result<Option<MirrorRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE m.repo_id = $1"
        )))
        .bind(repo_id)
        .fetch_optional(&mut *w.tx)
        .await?)
    }

    /// Every mirror, by repository name (for the scheduler's metrics and the UI).
    pub async fn mirrors(&self) -> Result<Vec<MirrorRow>> {
        Ok(
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} ORDER BY r.name")))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Writes a mirror's configuration (a new row, or every configurable column of an existing
    /// one), giving it a new `sync_txn` so that a sync holding the old one stops.
    pub async fn put_mirror(&self, w: &mut WriteTx, m: &MirrorRow, insert: bool) -> Result<()> {
        let now = now_ms();
        let sql = if insert {
            "INSERT INTO repo_mirrors (is_enabled, external_reference, username, password_sealed,
                registry_config, robot_id, tag_globs, architecture_filter, sync_interval_s,
                sync_start_at, sync_retries_remaining, sync_status, sync_txn, timeout_s,
                created_at, updated_at, repo_id, org_namespace)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $17)"
        } else {
            "UPDATE repo_mirrors SET is_enabled = $1, external_reference = $2, username = $3,
                password_sealed = $4, registry_config = $5, robot_id = $6, tag_globs = $7,
                architecture_filter = $8, sync_interval_s = $9, sync_start_at = $10,
                sync_retries_remaining = $11, sync_status = $12, sync_txn = $13, timeout_s = $14,
                updated_at = $15, org_namespace = $17
             WHERE repo_id = $16"
        };
        sqlx::query(sql)
            .bind(m.is_enabled)
            .bind(&m.external_reference)
            .bind(&m.username)
            .bind(&m.password_sealed)
            .bind(&m.registry_config)
            .bind(m.robot_id)
            .bind(&m.tag_globs)
            .bind(&m.architecture_filter)
            .bind(m.sync_interval_s)
            .bind(m.sync_start_at)
            .bind(m.sync_retries_remaining)
            .bind(m.sync_status)
            .bind(new_txn())
            .bind(m.timeout_s)
            .bind(now)
            .bind(m.repo_id)
            .bind(&m.org_namespace)
            .execute(&mut *w.tx)
            .await?;
        Ok(())
    }

    /// Sets a repository's state.
    pub async fn set_repo_state(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        state: RepoState,
    ) -> Result<()> {
        sqlx::query("UPDATE repositories SET state = $1 WHERE id = $2")
            .bind(state)
            .bind(repo_id)
            .execute(&mut *w.tx)
            .await?;
        Ok(())
    }

    /// A repository's state and its mirror's robot, if it has a mirror.
    pub async fn repo_state(&self, repo: &str) -> Result<Option<(RepoState, Option<i64>)>> {
        Ok(sqlx::query_as(
            "SELECT r.state, m.robot_id FROM repositories r
             LEFT JOIN repo_mirrors m ON m.repo_id = r.id WHERE r.name = $1",
        )
        .bind(repo)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Mirrors a sync may start on now, with the `sync_txn` a claim must present.
    pub async fn claimable_mirrors(&self, limit: i64) -> Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT m.repo_id, m.sync_txn FROM repo_mirrors m JOIN repositories r ON r.id = m.repo_id
             WHERE {CLAIMABLE} ORDER BY m.sync_start_at LIMIT $2"
        )))
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims the mirror for a sync by `holder` until `lease_until`, if it is still claimable
    /// and its `sync_txn` is still `txn`. Answers the new `sync_txn` the sync holds it by, and
    /// records the run (a run left `running` by a sync whose lease lapsed is marked
    /// `abandoned`).
    pub async fn claim_mirror(
        &self,
        repo_id: i64,
        txn: &str,
        holder: &str,
        lease_until: i64,
    ) -> Result<Option<(String, i64)>> {
        let now = now_ms();
        let mine = new_txn();
        let mut w = self.write().await?;
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE repo_mirrors SET sync_status = 'SYNCING', sync_lease_until = $2, sync_txn = $3,
                sync_holder = $4, updated_at = $1
             WHERE repo_id = $5 AND sync_txn = $6 AND repo_id IN (
                SELECT m.repo_id FROM repo_mirrors m JOIN repositories r ON r.id = m.repo_id
                WHERE {CLAIMABLE})"
        )))
        .bind(now)
        .bind(lease_until)
        .bind(&mine)
        .bind(holder)
        .bind(repo_id)
        .bind(txn)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE mirror_runs SET outcome = 'abandoned', finished_at = $1
             WHERE repo_id = $2 AND outcome = 'running'",
        )
        .bind(now)
        .bind(repo_id)
        .execute(&mut *w.tx)
        .await?;
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO mirror_runs (repo_id, txn, holder, started_at) VALUES ($1, $2, $3, $4)
             RETURNING id",
        )
        .bind(repo_id)
        .bind(&mine)
        .bind(holder)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(Some((mine, run_id)))
    }

    /// Extends the lease of the sync holding `txn`, and records its progress. False when the
    /// sync no longer holds the mirror (cancelled, reconfigured, or taken over): it must stop.
    pub async fn renew_mirror(
        &self,
        repo_id: i64,
        txn: &str,
        lease_until: i64,
        run_id: i64,
        counts: &RunCounts,
        log: &str,
    ) -> Result<bool> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE repo_mirrors SET sync_lease_until = $1
             WHERE repo_id = $2 AND sync_txn = $3 AND sync_status = 'SYNCING'",
        )
        .bind(lease_until)
        .bind(repo_id)
        .bind(txn)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        self.write_run(&mut w, run_id, counts, log, None).await?;
        w.commit().await?;
        Ok(n > 0)
    }

    async fn write_run(
        &self,
        w: &mut WriteTx,
        run_id: i64,
        c: &RunCounts,
        log: &str,
        outcome: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE mirror_runs SET tags_copied = $1, tags_unchanged = $2, tags_removed = $3,
                tags_failed = $4, blobs_copied = $5, bytes_copied = $6, log = $7,
                outcome = COALESCE($8, outcome),
                finished_at = CASE WHEN $8 IS NULL THEN finished_at ELSE $9 END
             WHERE id = $10",
        )
        .bind(c.tags_copied)
        .bind(c.tags_unchanged)
        .bind(c.tags_removed)
        .bind(c.tags_failed)
        .bind(c.blobs_copied)
        .bind(c.bytes_copied)
        .bind(log)
        .bind(outcome)
        .bind(now_ms())
        .bind(run_id)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Ends the sync holding `txn`: the mirror's next status, start and retries, and the run's
    /// outcome, inside the caller's transaction (which also holds the sync's audit record and
    /// notifications). False when the sync no longer held the mirror; its run is then closed
    /// as `outcome` anyway and the mirror left as the newer holder set it.
    #[allow(clippy::too_many_arguments)]
    pub async fn release_mirror(
        &self,
        w: &mut WriteTx,
        repo_id: i64,
        txn: &str,
        status: MirrorStatus,
        start_at: Option<i64>,
        retries: i64,
        run_id: i64,
        counts: &RunCounts,
        log: &str,
        outcome: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE repo_mirrors SET sync_status = $1, sync_start_at = $2,
                sync_retries_remaining = $3, sync_lease_until = NULL, sync_holder = NULL,
                sync_txn = $4, updated_at = $5
             WHERE repo_id = $6 AND sync_txn = $7",
        )
        .bind(status)
        .bind(start_at)
        .bind(retries)
        .bind(new_txn())
        .bind(now_ms())
        .bind(repo_id)
        .bind(txn)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        self.write_run(w, run_id, counts, log, Some(outcome))
            .await?;
        // Keep the last 20 runs.
        sqlx::query(
            "DELETE FROM mirror_runs WHERE repo_id = $1 AND id NOT IN (
                SELECT id FROM mirror_runs WHERE repo_id = $1 ORDER BY id DESC LIMIT 20)",
        )
        .bind(repo_id)
        .execute(&mut *w.tx)
        .await?;
        Ok(n > 0)
    }

    /// Asks for a sync now (Quay's sync-now): not while a live sync holds the mirror. False
    /// when one does.
    pub async fn mirror_sync_now(&self, w: &mut WriteTx, repo_id: i64) -> Result<bool> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE repo_mirrors SET sync_status = 'SYNC_NOW', sync_lease_until = NULL,
                sync_holder = NULL, sync_retries_remaining = CASE WHEN sync_retries_remaining < 1
                THEN 1 ELSE sync_retries_remaining END, sync_txn = $1, updated_at = $2
             WHERE repo_id = $3 AND NOT (sync_status = 'SYNCING' AND COALESCE(sync_lease_until, 0) >= $2)",
        )
        .bind(new_txn())
        .bind(now)
        .bind(repo_id)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Cancels a running or requested sync (Quay's sync-cancel): the running sync loses the
    /// mirror at its next renewal. False when none is running or requested.
    pub async fn mirror_cancel(&self, w: &mut WriteTx, repo_id: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE repo_mirrors SET sync_status = 'CANCEL', sync_start_at = NULL,
                sync_retries_remaining = 0, sync_lease_until = NULL, sync_holder = NULL,
                sync_txn = $1, updated_at = $2
             WHERE repo_id = $3 AND sync_status IN ('SYNCING', 'SYNC_NOW')",
        )
        .bind(new_txn())
        .bind(now_ms())
        .bind(repo_id)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// The last runs of a mirror, newest first.
    pub async fn mirror_runs(&self, repo_id: i64, limit: i64) -> Result<Vec<MirrorRunRow>> {
        Ok(sqlx::query_as(
            "SELECT id, repo_id, txn, holder, started_at, finished_at, outcome, tags_copied,
                tags_unchanged, tags_removed, tags_failed, blobs_copied, bytes_copied, log
             FROM mirror_runs WHERE repo_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(repo_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::{AccountKind, MirrorRow, MirrorStatus, NewAccount, RepoState, RunCounts, now_ms};

    async fn setup(db: &crate::Db) -> MirrorRow {
        let robot = db
            .create_account(
                &NewAccount {
                    name: "acme+sync",
                    kind: AccountKind::Robot,
                    email: None,
                    password_hash: None,
                    superuser: false,
                    owner_id: None,
                    token_hash: None,
                    token_sealed: None,
                    description: None,
                    metadata: None,
                    only_first_user: false,
                },
                false,
            )
            .await
            .expect("robot")
            .expect("created");
        let mut w = db.write().await.expect("write");
        let repo_id = db
            .ensure_repo(&mut w, "acme/app", "acme")
            .await
            .expect("repo");
        let row = MirrorRow {
            repo_id,
            repo_name: "acme/app".into(),
            repo_state: RepoState::Mirror,
            is_enabled: 1,
            external_reference: "registry.example/app".into(),
            username: None,
            password_sealed: None,
            registry_config: "{}".into(),
            robot_id: robot,
            robot_name: "acme+sync".into(),
            tag_globs: "[\"*\"]".into(),
            architecture_filter: "[]".into(),
            sync_interval_s: 3600,
            sync_start_at: Some(now_ms() - 1000),
            sync_lease_until: None,
            sync_retries_remaining: 3,
            sync_status: MirrorStatus::NeverRun,
            sync_txn: String::new(),
            sync_holder: None,
            timeout_s: 300,
            created_at: 0,
            updated_at: 0,
            org_namespace: None,
        };
        db.put_mirror(&mut w, &row, true).await.expect("mirror");
        db.set_repo_state(&mut w, repo_id, RepoState::Mirror)
            .await
            .expect("state");
        w.commit().await.expect("commit");
        db.mirror(repo_id).await.expect("read").expect("row")
    }

    #[tokio::test]
    async fn one_claim_wins_a_lapsed_lease_is_taken_over_and_cancel_stops_the_holder() {
        let (_d, db) = crate::test_db().await;
        let m = setup(&db).await;
        let due = db.claimable_mirrors(10).await.expect("due");
        assert_eq!(due, vec![(m.repo_id, m.sync_txn.clone())]);
        let lease = now_ms() + 60_000;
        let (mine, run) = db
            .claim_mirror(m.repo_id, &m.sync_txn, "w1", lease)
            .await
            .expect("claim")
            .expect("claimed");
        // The same read cannot claim twice, and a held lease is not claimable.
        assert!(
            db.claim_mirror(m.repo_id, &m.sync_txn, "w2", lease)
                .await
                .expect("claim")
                .is_none()
        );
        assert!(db.claimable_mirrors(10).await.expect("due").is_empty());
        let c = RunCounts {
            tags_copied: 2,
            ..RunCounts::default()
        };
        assert!(
            db.renew_mirror(m.repo_id, &mine, lease, run, &c, "a\nb")
                .await
                .expect("renew")
        );

        // The holder dies: its lease lapses, another claims it, the old run is abandoned.
        assert!(
            db.renew_mirror(m.repo_id, &mine, now_ms() - 1, run, &c, "a")
                .await
                .expect("renew")
        );
        let due = db.claimable_mirrors(10).await.expect("due");
        assert_eq!(due.len(), 1, "a lapsed lease is claimable");
        let (theirs, run2) = db
            .claim_mirror(m.repo_id, &due[0].1, "w2", lease)
            .await
            .expect("claim")
            .expect("taken over");
        assert!(
            !db.renew_mirror(m.repo_id, &mine, lease, run, &c, "")
                .await
                .expect("renew"),
            "the dead holder lost it"
        );
        let runs = db.mirror_runs(m.repo_id, 10).await.expect("runs");
        assert_eq!(
            runs.iter().map(|r| r.outcome.as_str()).collect::<Vec<_>>(),
            ["running", "abandoned"]
        );
        assert_eq!(runs[1].tags_copied, 2);

        // A live sync cannot be asked to sync now; cancel takes the mirror from it.
        let mut w = db.write().await.expect("write");
        assert!(
            !db.mirror_sync_now(&mut w, m.repo_id)
                .await
                .expect("sync now")
        );
        assert!(db.mirror_cancel(&mut w, m.repo_id).await.expect("cancel"));
        w.commit().await.expect("commit");
        assert!(
            !db.renew_mirror(m.repo_id, &theirs, lease, run2, &c, "")
                .await
                .expect("renew")
        );
        let mut w = db.write().await.expect("write");
        let held = db
            .release_mirror(
                &mut w,
                m.repo_id,
                &theirs,
                MirrorStatus::Success,
                Some(1),
                3,
                run2,
                &c,
                "x",
                "cancelled",
            )
            .await
            .expect("release");
        w.commit().await.expect("commit");
        assert!(!held, "a cancelled sync's release leaves the CANCEL state");
        let now = db.mirror(m.repo_id).await.expect("read").expect("row");
        assert_eq!(now.sync_status, MirrorStatus::Cancel);
        assert_eq!(now.sync_start_at, None);
        assert!(
            db.claimable_mirrors(10).await.expect("due").is_empty(),
            "cancelled: nothing runs"
        );
        // Until sync-now.
        let mut w = db.write().await.expect("write");
        assert!(
            db.mirror_sync_now(&mut w, m.repo_id)
                .await
                .expect("sync now")
        );
        w.commit().await.expect("commit");
        assert_eq!(db.claimable_mirrors(10).await.expect("due").len(), 1);
        // Not in NORMAL state.
        let mut w = db.write().await.expect("write");
        db.set_repo_state(&mut w, m.repo_id, RepoState::Normal)
            .await
            .expect("state");
        w.commit().await.expect("commit");
        assert!(db.claimable_mirrors(10).await.expect("due").is_empty());
    }
}
