//! The audit log.

use crate::{Db, Result, WriteTx};

#[derive(Debug, Clone, Default, serde::Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub performer: Option<String>,
    pub performer_kind: Option<String>,
    pub namespace: Option<String>,
    pub repository: Option<String>,
    pub ip: Option<String>,
    /// A JSON object.
    pub metadata: String,
}

/// Filters of an audit log query; every given field must match.
#[derive(Debug, Default)]
pub struct AuditQuery<'a> {
    pub namespace: Option<&'a str>,
    pub repository: Option<&'a str>,
    pub performer: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Inclusive lower and exclusive upper bound, milliseconds.
    pub from: i64,
    pub to: i64,
    /// Entries older than this id (pagination, newest first).
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Db {
    /// Appends entries in one transaction.
    pub async fn insert_audit(&self, rows: &[AuditRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut w = self.write().await?;
        self.insert_audit_in(&mut w, rows).await?;
        w.commit().await
    }

    /// Appends entries inside `w`: they become visible with the change they record, or not at
    /// all.
    pub async fn insert_audit_in(&self, w: &mut WriteTx, rows: &[AuditRow]) -> Result<()> {
        for r in rows {
            sqlx::query(
                "INSERT INTO audit_log (at, kind, performer, performer_kind, namespace, repository, ip, metadata)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(r.at)
            .bind(&r.kind)
            .bind(&r.performer)
            .bind(&r.performer_kind)
            .bind(&r.namespace)
            .bind(&r.repository)
            .bind(&r.ip)
            .bind(&r.metadata)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }

    /// Entries matching `q`, newest first.
    pub async fn query_audit(&self, q: &AuditQuery<'_>) -> Result<Vec<AuditRow>> {
        Ok(sqlx::query_as(
            "SELECT id, at, kind, performer, performer_kind, namespace, repository, ip, metadata
             FROM audit_log
             WHERE at >= $1 AND at < $2 AND id < $3
               AND ($4 = '' OR namespace = $4) AND ($5 = '' OR repository = $5)
               AND ($6 = '' OR performer = $6) AND ($7 = '' OR kind = $7)
             ORDER BY id DESC LIMIT $8",
        )
        .bind(q.from)
        .bind(q.to)
        .bind(q.before_id.unwrap_or(i64::MAX))
        .bind(q.namespace.unwrap_or(""))
        .bind(q.repository.unwrap_or(""))
        .bind(q.performer.unwrap_or(""))
        .bind(q.kind.unwrap_or(""))
        .bind(q.limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many entries matching `q` (its `before_id` and `limit` ignored) each day (UTC
    /// midnight, milliseconds) saw of each kind, oldest day first.
    pub async fn audit_counts(&self, q: &AuditQuery<'_>) -> Result<Vec<(i64, String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT (at / 86400000) * 86400000 AS day, kind, COUNT(*) AS n
             FROM audit_log
             WHERE at >= $1 AND at < $2
               AND ($3 = '' OR namespace = $3) AND ($4 = '' OR repository = $4)
               AND ($5 = '' OR performer = $5) AND ($6 = '' OR kind = $6)
             GROUP BY (at / 86400000) * 86400000, kind
             ORDER BY day, kind",
        )
        .bind(q.from)
        .bind(q.to)
        .bind(q.namespace.unwrap_or(""))
        .bind(q.repository.unwrap_or(""))
        .bind(q.performer.unwrap_or(""))
        .bind(q.kind.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?)
    }
}
