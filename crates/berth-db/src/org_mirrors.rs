//! Organization mirrors (one per organization), the repositories their discovery found, and
//! the discovery cycle's claim and release (compare-and-set on `sync_txn`, as for repository
//! mirrors). The repositories themselves are mirrored by repository mirrors marked with the
//! organization (`repo_mirrors.org_namespace`).

use crate::{Db, MirrorStatus, Result, WriteTx, now_ms};

/// An organization mirror's configuration and its place in the discovery cycle.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgMirrorRow {
    pub namespace: String,
    pub is_enabled: i64,
    /// `quay`, `harbor` or `oci`.
    pub registry_type: String,
    /// `scheme://host[:port]`.
    pub registry_url: String,
    pub external_namespace: String,
    pub username: Option<String>,
    pub password_sealed: Option<String>,
    pub registry_config: String,
    /// JSON array of globs.
    pub repository_filters: String,
    pub robot_id: i64,
    pub robot_name: String,
    pub visibility: String,
    pub sync_interval_s: i64,
    pub sync_start_at: Option<i64>,
    pub sync_lease_until: Option<i64>,
    pub sync_retries_remaining: i64,
    pub sync_status: MirrorStatus,
    pub sync_txn: String,
    pub timeout_s: i64,
    pub last_message: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A repository discovery found, with its repository mirror's state when it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrgMirrorRepoRow {
    pub name: String,
    /// `DISCOVERED` or `SKIP`.
    pub status: String,
    pub discovered_at: i64,
    pub status_message: Option<String>,
    /// The local repository's id, once created.
    pub repo_id: Option<i64>,
    /// Its repository mirror's status.
    pub mirror_status: Option<MirrorStatus>,
    /// When its last successful sync finished.
    pub last_sync_at: Option<i64>,
}

const SELECT: &str = "SELECT o.namespace, o.is_enabled, o.registry_type, o.registry_url,
        o.external_namespace, o.username, o.password_sealed, o.registry_config,
        o.repository_filters, o.robot_id, a.name AS robot_name, o.visibility, o.sync_interval_s,
        o.sync_start_at, o.sync_lease_until, o.sync_retries_remaining, o.sync_status, o.sync_txn,
        o.timeout_s, o.last_message, o.created_at, o.updated_at
     FROM org_mirrors o JOIN accounts a ON a.id = o.robot_id";

/// Which organization mirrors a discovery may start on now ($1 = now): asked to sync now, due,
/// or held by a discovery whose lease lapsed.
const CLAIMABLE: &str = "(
        (o.sync_status = 'SYNC_NOW' AND (o.sync_lease_until IS NULL OR o.sync_lease_until < $1))
     OR (o.sync_status IN ('NEVER_RUN', 'SUCCESS', 'FAIL') AND o.is_enabled = 1
         AND o.sync_retries_remaining > 0 AND o.sync_start_at IS NOT NULL AND o.sync_start_at <= $1)
     OR (o.sync_status = 'SYNCING' AND (o.sync_lease_until IS NULL OR o.sync_lease_until < $1)))";

fn new_txn() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Db {
    /// The mirror of organization `namespace`, if it has one.
    pub async fn org_mirror(&self, namespace: &str) -> Result<Option<OrgMirrorRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE o.namespace = $1"
        )))
        .bind(namespace)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Writes an organization mirror's configuration (a new row, or every configurable column),
    /// with a new `sync_txn` so that a discovery holding the old one stops. False when inserting
    /// and the organization has one already.
    pub async fn put_org_mirror(
        &self,
        w: &mut WriteTx,
        m: &OrgMirrorRow,
        insert: bool,
    ) -> Result<bool> {
        let sql = if insert {
            "INSERT INTO org_mirrors (is_enabled, registry_type, registry_url, external_namespace,
                username, password_sealed, registry_config, repository_filters, robot_id,
                visibility, sync_interval_s, sync_start_at, sync_retries_remaining, sync_status,
                sync_txn, timeout_s, created_at, updated_at, namespace)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18)
             ON CONFLICT (namespace) DO NOTHING"
        } else {
            "UPDATE org_mirrors SET is_enabled = $1, registry_type = $2, registry_url = $3,
                external_namespace = $4, username = $5, password_sealed = $6,
                registry_config = $7, repository_filters = $8, robot_id = $9, visibility = $10,
                sync_interval_s = $11, sync_start_at = $12, sync_retries_remaining = $13,
                sync_status = $14, sync_txn = $15, timeout_s = $16, updated_at = $17,
                sync_lease_until = NULL
             WHERE namespace = $18"
        };
        let n = sqlx::query(sql)
            .bind(m.is_enabled)
            .bind(&m.registry_type)
            .bind(&m.registry_url)
            .bind(&m.external_namespace)
            .bind(&m.username)
            .bind(&m.password_sealed)
            .bind(&m.registry_config)
            .bind(&m.repository_filters)
            .bind(m.robot_id)
            .bind(&m.visibility)
            .bind(m.sync_interval_s)
            .bind(m.sync_start_at)
            .bind(m.sync_retries_remaining)
            .bind(m.sync_status)
            .bind(new_txn())
            .bind(m.timeout_s)
            .bind(now_ms())
            .bind(&m.namespace)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Deletes an organization mirror and the record of what it discovered; its repository
    /// mirrors are deleted too and their repositories return to NORMAL (their tags stay).
    /// False when there was none.
    pub async fn delete_org_mirror(&self, w: &mut WriteTx, namespace: &str) -> Result<bool> {
        sqlx::query(
            "UPDATE repositories SET state = 'NORMAL' WHERE id IN (
                SELECT repo_id FROM repo_mirrors WHERE org_namespace = $1)",
        )
        .bind(namespace)
        .execute(&mut *w.tx)
        .await?;
        sqlx::query("DELETE FROM repo_mirrors WHERE org_namespace = $1")
            .bind(namespace)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("DELETE FROM org_mirror_repos WHERE namespace = $1")
            .bind(namespace)
            .execute(&mut *w.tx)
            .await?;
        let n = sqlx::query("DELETE FROM org_mirrors WHERE namespace = $1")
            .bind(namespace)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// How many repositories of `namespace` have a mirror configured on their own (not by an
    /// organization mirror).
    pub async fn own_repo_mirrors_in(&self, namespace: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM repo_mirrors m JOIN repositories r ON r.id = m.repo_id
             JOIN namespaces n ON n.id = r.namespace_id
             WHERE n.name = $1 AND m.org_namespace IS NULL",
        )
        .bind(namespace)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Organization mirrors a discovery may start on now, with the `sync_txn` a claim must
    /// present.
    pub async fn claimable_org_mirrors(&self, limit: i64) -> Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT o.namespace, o.sync_txn FROM org_mirrors o WHERE {CLAIMABLE}
             ORDER BY o.sync_start_at LIMIT $2"
        )))
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims an organization mirror for a discovery until `lease_until`, if it is still
    /// claimable with `txn`. Answers the `sync_txn` the discovery holds it by.
    pub async fn claim_org_mirror(
        &self,
        namespace: &str,
        txn: &str,
        lease_until: i64,
    ) -> Result<Option<String>> {
        let mine = new_txn();
        let mut w = self.write().await?;
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE org_mirrors SET sync_status = 'SYNCING', sync_lease_until = $2, sync_txn = $3,
                updated_at = $1
             WHERE namespace = $4 AND sync_txn = $5 AND namespace IN (
                SELECT o.namespace FROM org_mirrors o WHERE {CLAIMABLE})"
        )))
        .bind(now_ms())
        .bind(lease_until)
        .bind(&mine)
        .bind(namespace)
        .bind(txn)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok((n > 0).then_some(mine))
    }

    /// Ends the discovery holding `txn` inside the caller's transaction (which also writes what
    /// it found): the next status, start, retries and message. False when the discovery no
    /// longer held the mirror (cancelled, reconfigured, taken over): the caller then rolls back.
    #[allow(clippy::too_many_arguments)]
    pub async fn release_org_mirror(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        txn: &str,
        status: MirrorStatus,
        start_at: Option<i64>,
        retries: i64,
        message: &str,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE org_mirrors SET sync_status = $1, sync_start_at = $2,
                sync_retries_remaining = $3, sync_lease_until = NULL, sync_txn = $4,
                last_message = $5, updated_at = $6
             WHERE namespace = $7 AND sync_txn = $8",
        )
        .bind(status)
        .bind(start_at)
        .bind(retries)
        .bind(new_txn())
        .bind(message)
        .bind(now_ms())
        .bind(namespace)
        .bind(txn)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Asks for a discovery now (Quay's sync-now): not while a live one runs. False when one
    /// does.
    pub async fn org_mirror_sync_now(&self, w: &mut WriteTx, namespace: &str) -> Result<bool> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE org_mirrors SET sync_status = 'SYNC_NOW', sync_lease_until = NULL,
                sync_start_at = $2, sync_retries_remaining = CASE WHEN sync_retries_remaining < 1
                THEN 1 ELSE sync_retries_remaining END, sync_txn = $1, updated_at = $2
             WHERE namespace = $3 AND NOT (sync_status = 'SYNCING' AND COALESCE(sync_lease_until, 0) >= $2)",
        )
        .bind(new_txn())
        .bind(now)
        .bind(namespace)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Cancels the organization mirror (Quay's sync-cancel, from any status but CANCEL): a
    /// running discovery loses it, and every sync of its repositories running or requested is
    /// cancelled. False when it was cancelled already.
    pub async fn org_mirror_cancel(&self, w: &mut WriteTx, namespace: &str) -> Result<bool> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE org_mirrors SET sync_status = 'CANCEL', sync_start_at = NULL,
                sync_retries_remaining = 0, sync_lease_until = NULL, sync_txn = $1, updated_at = $2
             WHERE namespace = $3 AND sync_status <> 'CANCEL'",
        )
        .bind(new_txn())
        .bind(now)
        .bind(namespace)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let children: Vec<i64> = sqlx::query_scalar(
            "SELECT repo_id FROM repo_mirrors WHERE org_namespace = $1
             AND sync_status IN ('SYNCING', 'SYNC_NOW')",
        )
        .bind(namespace)
        .fetch_all(&mut *w.tx)
        .await?;
        for repo_id in children {
            self.mirror_cancel(w, repo_id).await?;
        }
        Ok(true)
    }

    /// Records what a discovery found: `found` are DISCOVERED (new ones dated now), every other
    /// repository recorded before becomes SKIP with `gone_message`.
    pub async fn record_org_mirror_repos(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        found: &[String],
        gone_message: &str,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE org_mirror_repos SET status = 'SKIP', status_message = $2
             WHERE namespace = $1 AND status <> 'SKIP'",
        )
        .bind(namespace)
        .bind(gone_message)
        .execute(&mut *w.tx)
        .await?;
        for name in found {
            sqlx::query(
                "INSERT INTO org_mirror_repos (namespace, name, status, discovered_at)
                 VALUES ($1, $2, 'DISCOVERED', $3)
                 ON CONFLICT (namespace, name) DO UPDATE SET status = 'DISCOVERED',
                    status_message = NULL",
            )
            .bind(namespace)
            .bind(name)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }

    /// A page of what discovery found, by name, and how many there are.
    pub async fn org_mirror_repos(
        &self,
        namespace: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<OrgMirrorRepoRow>, i64)> {
        let rows = sqlx::query_as(
            "SELECT d.name, d.status, d.discovered_at, d.status_message, r.id AS repo_id,
                m.sync_status AS mirror_status,
                (SELECT MAX(x.finished_at) FROM mirror_runs x
                  WHERE x.repo_id = r.id AND x.outcome = 'success') AS last_sync_at
             FROM org_mirror_repos d
             LEFT JOIN repositories r ON r.name = d.namespace || '/' || d.name
             LEFT JOIN repo_mirrors m ON m.repo_id = r.id AND m.org_namespace = d.namespace
             WHERE d.namespace = $1 ORDER BY d.name LIMIT $2 OFFSET $3",
        )
        .bind(namespace)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let total =
            sqlx::query_scalar("SELECT COUNT(*) FROM org_mirror_repos WHERE namespace = $1")
                .bind(namespace)
                .fetch_one(&self.pool)
                .await?;
        Ok((rows, total))
    }

    /// The id of repository `name`, read inside the caller's transaction.
    pub async fn repo_id_in(&self, w: &mut WriteTx, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *w.tx)
                .await?,
        )
    }

    /// Disables the repository mirrors of organization `namespace` whose repository (the name
    /// under the namespace) is not in `keep`.
    pub async fn disable_org_mirrors_except(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        keep: &[String],
    ) -> Result<u64> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT m.repo_id, r.name FROM repo_mirrors m JOIN repositories r ON r.id = m.repo_id
             WHERE m.org_namespace = $1 AND m.is_enabled = 1",
        )
        .bind(namespace)
        .fetch_all(&mut *w.tx)
        .await?;
        let prefix = format!("{namespace}/");
        let mut n = 0;
        for (repo_id, name) in rows {
            let short = name.strip_prefix(&prefix).unwrap_or(&name);
            if keep.iter().any(|k| k == short) {
                continue;
            }
            n += sqlx::query(
                "UPDATE repo_mirrors SET is_enabled = 0, sync_status = CASE
                    WHEN sync_status IN ('SYNCING', 'SYNC_NOW') THEN 'CANCEL' ELSE sync_status END,
                    sync_txn = $1, sync_lease_until = NULL, updated_at = $2
                 WHERE repo_id = $3",
            )
            .bind(new_txn())
            .bind(now_ms())
            .bind(repo_id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        }
        Ok(n)
    }

    /// Enables or disables every repository mirror of organization `namespace` at once (the
    /// organization mirror was switched); disabling stops their running syncs.
    pub async fn set_org_mirrors_enabled(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        enabled: bool,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE repo_mirrors SET is_enabled = $1, sync_status = CASE
                WHEN $1 = 0 AND sync_status IN ('SYNCING', 'SYNC_NOW') THEN 'CANCEL'
                ELSE sync_status END,
                sync_txn = $2, sync_lease_until = CASE WHEN $1 = 0 THEN NULL ELSE sync_lease_until END,
                updated_at = $3
             WHERE org_namespace = $4 AND is_enabled <> $1
               AND ($1 = 0 OR repo_id IN (
                 SELECT r.id FROM repositories r JOIN org_mirror_repos d
                   ON r.name = d.namespace || '/' || d.name
                 WHERE d.namespace = $4 AND d.status = 'DISCOVERED'))",
        )
        .bind(i64::from(enabled))
        .bind(new_txn())
        .bind(now_ms())
        .bind(namespace)
        .execute(&mut *w.tx)
        .await?
        .rows_affected())
    }

    /// Sets what discovery says of one repository.
    pub async fn set_org_mirror_repo_message(
        &self,
        w: &mut WriteTx,
        namespace: &str,
        name: &str,
        status: &str,
        message: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE org_mirror_repos SET status = $1, status_message = $2
             WHERE namespace = $3 AND name = $4",
        )
        .bind(status)
        .bind(message)
        .bind(namespace)
        .bind(name)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Repository `name` (created in `namespace` with `visibility` when absent), inside the
    /// caller's transaction: its id and whether it was created.
    pub async fn ensure_repo_with(
        &self,
        w: &mut WriteTx,
        name: &str,
        namespace: &str,
        visibility: crate::Visibility,
    ) -> Result<(i64, bool)> {
        if let Some(id) = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *w.tx)
            .await?
        {
            return Ok((id, false));
        }
        let id = self.ensure_repo(w, name, namespace).await?;
        sqlx::query("UPDATE repositories SET visibility = $1 WHERE id = $2")
            .bind(visibility.as_str())
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        Ok((id, true))
    }
}
