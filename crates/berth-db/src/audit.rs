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

/// Most audit rows in one `INSERT` (8 parameters each). Not more: sqlx's SQLite driver looks up
/// each parameter's name, which SQLite finds by a linear search, so a statement's binding costs
/// the square of its parameters (64 rows took 8 % of a pull storm's CPU; 16 take under 1 %).
const AUDIT_BATCH: usize = 16;

/// `INSERT INTO audit_log ... VALUES ($1, ..., $8), ($9, ...)` for `rows` rows.
fn audit_insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|i| format!("({})", crate::marks(i * 8 + 1, 8)))
        .collect();
    format!(
        "INSERT INTO audit_log (at, kind, performer, performer_kind, namespace, repository, ip, metadata) VALUES {}",
        values.join(", ")
    )
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
    /// all. Rows go in multi-row `INSERT`s (AUDIT_BATCH rows, then the rest in powers of two, so
    /// only five statement texts are ever prepared): a busy registry audits every pull, thousands a second,
    /// and one statement per row cost more than the pulls themselves.
    pub async fn insert_audit_in(&self, w: &mut WriteTx, rows: &[AuditRow]) -> Result<()> {
        let mut rest = rows;
        while !rest.is_empty() {
            let n = if rest.len() >= AUDIT_BATCH {
                AUDIT_BATCH
            } else {
                1 << rest.len().ilog2()
            };
            let (chunk, tail) = rest.split_at(n);
            // Only placeholders are generated; every value is bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(audit_insert_sql(n)));
            for r in chunk {
                q = q
                    .bind(r.at)
                    .bind(&r.kind)
                    .bind(&r.performer)
                    .bind(&r.performer_kind)
                    .bind(&r.namespace)
                    .bind(&r.repository)
                    .bind(&r.ip)
                    .bind(&r.metadata);
            }
            q.execute(&mut *w.tx).await?;
            rest = tail;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> AuditRow {
        AuditRow {
            at: 1_000 + i as i64,
            kind: "pull_repo".into(),
            performer: (!i.is_multiple_of(3)).then(|| format!("user{i}")),
            performer_kind: Some("user".into()),
            namespace: Some("ns".into()),
            repository: i.is_multiple_of(2).then(|| format!("repo{i}")),
            ip: Some("127.0.0.1".into()),
            metadata: format!("{{\"n\":{i}}}"),
            ..AuditRow::default()
        }
    }

    #[tokio::test]
    async fn batches_of_any_size_keep_every_row_and_field_in_order() {
        let (_d, db) = crate::test_db().await;
        // 12 full batches + 8 + 2 + 1 rows, then a single one, then 63 (3 batches + 8 + 4 + 2 + 1).
        for n in [203usize, 1, 63] {
            let rows: Vec<AuditRow> = (0..n).map(row).collect();
            db.insert_audit(&rows).await.expect("insert");
            let got = db
                .query_audit(&AuditQuery {
                    from: 0,
                    to: i64::MAX,
                    limit: 1_000,
                    ..AuditQuery::default()
                })
                .await
                .expect("query");
            // Newest first: the last batch is at the front.
            let mut got: Vec<AuditRow> = got.into_iter().take(n).collect();
            got.reverse();
            assert_eq!(got.len(), n);
            for (i, g) in got.iter().enumerate() {
                let want = row(i);
                assert_eq!(
                    (
                        g.at,
                        &g.kind,
                        &g.performer,
                        &g.namespace,
                        &g.repository,
                        &g.ip,
                        &g.metadata
                    ),
                    (
                        want.at,
                        &want.kind,
                        &want.performer,
                        &want.namespace,
                        &want.repository,
                        &want.ip,
                        &want.metadata
                    ),
                    "row {i} of a batch of {n}"
                );
            }
        }
        assert_eq!(audit_insert_sql(2).matches('$').count(), 16);
        assert!(audit_insert_sql(2).ends_with(
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8), ($9, $10, $11, $12, $13, $14, $15, $16)"
        ));
    }
}
