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

/// Most audit rows in one `INSERT`.
const AUDIT_BATCH: usize = 4096;

/// One `INSERT` of any number of rows, all passed in one parameter: a JSON array of
/// `[at, kind, performer, performer_kind, namespace, repository, ip, metadata]` arrays, taken
/// apart by the database in the array's order. One parameter, not eight a row: sqlx's SQLite
/// driver looks up each parameter's name, which SQLite finds by a linear search, so binding a
/// many-row `VALUES` list costs the square of its parameters, and a busy registry audits every
/// pull, thousands a second.
fn audit_insert_sql(backend: crate::Backend) -> &'static str {
    match backend {
        crate::Backend::Sqlite => {
            "INSERT INTO audit_log (at, kind, performer, performer_kind, namespace, repository, ip, metadata)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                    value ->> 6, value ->> 7
             FROM json_each($1) ORDER BY key"
        }
        crate::Backend::Postgres => {
            "INSERT INTO audit_log (at, kind, performer, performer_kind, namespace, repository, ip, metadata)
             SELECT (e ->> 0)::BIGINT, e ->> 1, e ->> 2, e ->> 3, e ->> 4, e ->> 5, e ->> 6, e ->> 7
             FROM json_array_elements($1::JSON) WITH ORDINALITY AS r(e, n) ORDER BY n"
        }
    }
}

/// The rows as `audit_insert_sql`'s parameter.
fn audit_rows_json(rows: &[AuditRow]) -> String {
    let rows: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.at,
                &r.kind,
                &r.performer,
                &r.performer_kind,
                &r.namespace,
                &r.repository,
                &r.ip,
                &r.metadata,
            )
        })
        .collect();
    // A tuple of numbers, strings and options always serialises.
    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into())
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
    /// all; in order, `AUDIT_BATCH` rows per statement (see `audit_insert_sql`).
    pub async fn insert_audit_in(&self, w: &mut WriteTx, rows: &[AuditRow]) -> Result<()> {
        for chunk in rows.chunks(AUDIT_BATCH) {
            sqlx::query(audit_insert_sql(self.backend))
                .bind(audit_rows_json(chunk))
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
            metadata: format!("{{\"n\":{i},\"q\":\"it's \\\"é\\\"\"}}"),
            ..AuditRow::default()
        }
    }

    #[tokio::test]
    async fn batches_of_any_size_keep_every_row_and_field_in_order() {
        let (_d, db) = crate::test_db().await;
        rows_come_back_as_written(&db).await;
    }

    /// The same on PostgreSQL, when `TEST_POSTGRES_URL` names a server (`postgresql://user@host:port`):
    /// a database of its own is made for it.
    #[tokio::test]
    async fn batches_of_any_size_keep_every_row_and_field_in_order_on_postgres() {
        let Ok(server) = std::env::var("TEST_POSTGRES_URL") else {
            return;
        };
        let admin = Db::connect(&format!("{server}/postgres"), 1)
            .await
            .expect("connect to postgres");
        let name = format!("berth_db_audit_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .expect("create database");
        let db = Db::connect(&format!("{server}/{name}"), 2)
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        rows_come_back_as_written(&db).await;
        db.pool().close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(admin.pool())
            .await
            .expect("drop database");
    }

    async fn rows_come_back_as_written(db: &Db) {
        // More than a statement takes, then a single row, then an odd number, with quotes and
        // non-ASCII in the values.
        for n in [AUDIT_BATCH + 203, 1, 63] {
            let rows: Vec<AuditRow> = (0..n).map(row).collect();
            db.insert_audit(&rows).await.expect("insert");
            let got = db
                .query_audit(&AuditQuery {
                    from: 0,
                    to: i64::MAX,
                    limit: 10_000,
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
    }
}
