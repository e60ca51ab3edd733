//! Accounts (users, organizations, robots), their external identities and login failures.

use crate::decode::IntBool;
use crate::{AccountKind, Db, Result, WriteTx, now_ms};

/// One row of `accounts`; a kind the code does not know is a corrupt row, not a user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: i64,
    pub name: String,
    pub kind: AccountKind,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    #[sqlx(try_from = "IntBool")]
    pub superuser: bool,
    #[sqlx(try_from = "IntBool")]
    pub enabled: bool,
    pub owner_id: Option<i64>,
    pub token_sealed: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<String>,
    pub tag_expiration_s: Option<i64>,
    pub failed_logins: i64,
    pub last_failed_at: Option<i64>,
    pub created_at: i64,
    pub last_accessed: Option<i64>,
}

const COLS: &str = "id, name, kind, email, password_hash, superuser, enabled, owner_id, token_sealed, \
    description, metadata, tag_expiration_s, failed_logins, last_failed_at, created_at, last_accessed";

/// A new account. Users and organizations also get their namespace.
#[derive(Debug, Default)]
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub kind: AccountKind,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub superuser: bool,
    pub owner_id: Option<i64>,
    pub token_hash: Option<&'a str>,
    pub token_sealed: Option<&'a str>,
    pub description: Option<&'a str>,
    pub metadata: Option<&'a str>,
    /// Create it only if no user exists yet (Quay's first-user bootstrap), decided inside the
    /// write so that two concurrent bootstraps cannot both succeed, on any number of instances.
    pub only_first_user: bool,
}

/// A field of an account that the API may change.
pub enum AccountUpdate<'a> {
    PasswordHash(Option<&'a str>),
    Email(Option<&'a str>),
    Enabled(bool),
    Superuser(bool),
    Description(Option<&'a str>),
    Metadata(Option<&'a str>),
    TagExpiration(Option<i64>),
    RobotToken { hash: &'a str, sealed: &'a str },
}

impl Db {
    async fn account_where(&self, cond: &str, arg: impl ToString) -> Result<Option<AccountRow>> {
        let sql = format!("SELECT {COLS} FROM accounts WHERE {cond}");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(arg.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn account_by_name(&self, name: &str) -> Result<Option<AccountRow>> {
        self.account_where("name = $1", name).await
    }

    pub async fn account_by_id(&self, id: i64) -> Result<Option<AccountRow>> {
        let sql = format!("SELECT {COLS} FROM accounts WHERE id = $1");
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<AccountRow>> {
        self.account_where("kind = 'user' AND email = $1", email)
            .await
    }

    /// The robot whose token hashes to `token_hash`.
    pub async fn robot_by_token_hash(&self, token_hash: &str) -> Result<Option<AccountRow>> {
        self.account_where("kind = 'robot' AND token_hash = $1", token_hash)
            .await
    }

    /// Number of accounts of `kind`.
    pub async fn count_accounts(&self, kind: AccountKind) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE kind = $1")
                .bind(kind.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Creates an account; `None` when the name (or a user's email) is taken — also by a
    /// namespace that holds data from before accounts existed, unless `adopt_namespace`.
    /// Safe against concurrent creation of the same name on any number of instances.
    pub async fn create_account(
        &self,
        a: &NewAccount<'_>,
        adopt_namespace: bool,
    ) -> Result<Option<i64>> {
        let mut w = self.write().await?;
        let now = now_ms();
        if a.only_first_user {
            if self.backend == crate::Backend::Postgres {
                // Held to the end of the transaction: concurrent bootstraps queue here.
                sqlx::query("SELECT pg_advisory_xact_lock(7265846829)")
                    .execute(&mut *w.tx)
                    .await?;
            }
            let any = sqlx::query("SELECT 1 FROM accounts WHERE kind = 'user' LIMIT 1")
                .fetch_optional(&mut *w.tx)
                .await?;
            if any.is_some() {
                return Ok(None);
            }
        }
        if a.kind != AccountKind::Robot && !adopt_namespace {
            let orphan = sqlx::query("SELECT 1 FROM namespaces WHERE name = $1")
                .bind(a.name)
                .fetch_optional(&mut *w.tx)
                .await?
                .is_some();
            if orphan {
                return Ok(None);
            }
        }
        // ON CONFLICT DO NOTHING covers the name and the users' email index alike.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO accounts (name, kind, email, password_hash, superuser, owner_id, token_hash,
                 token_sealed, description, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(a.name)
        .bind(a.kind.as_str())
        .bind(a.email)
        .bind(a.password_hash)
        .bind(i64::from(a.superuser))
        .bind(a.owner_id)
        .bind(a.token_hash)
        .bind(a.token_sealed)
        .bind(a.description)
        .bind(a.metadata)
        .bind(now)
        .fetch_optional(&mut *w.tx)
        .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        if a.kind != AccountKind::Robot {
            // A namespace may already exist from data pushed before accounts existed (adopted).
            sqlx::query(
                "INSERT INTO namespaces (name, kind, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind",
            )
            .bind(a.name)
            .bind(a.kind.as_str())
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await?;
        Ok(Some(id))
    }

    pub async fn update_account(&self, id: i64, u: AccountUpdate<'_>) -> Result<()> {
        let q = match u {
            AccountUpdate::PasswordHash(h) => {
                sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2").bind(h)
            }
            AccountUpdate::Email(e) => {
                sqlx::query("UPDATE accounts SET email = $1 WHERE id = $2").bind(e)
            }
            AccountUpdate::Enabled(b) => {
                sqlx::query("UPDATE accounts SET enabled = $1 WHERE id = $2").bind(i64::from(b))
            }
            AccountUpdate::Superuser(b) => {
                sqlx::query("UPDATE accounts SET superuser = $1 WHERE id = $2").bind(i64::from(b))
            }
            AccountUpdate::Description(d) => {
                sqlx::query("UPDATE accounts SET description = $1 WHERE id = $2").bind(d)
            }
            AccountUpdate::Metadata(m) => {
                sqlx::query("UPDATE accounts SET metadata = $1 WHERE id = $2").bind(m)
            }
            AccountUpdate::TagExpiration(s) => {
                sqlx::query("UPDATE accounts SET tag_expiration_s = $1 WHERE id = $2").bind(s)
            }
            AccountUpdate::RobotToken { hash, sealed } => {
                sqlx::query("UPDATE accounts SET token_hash = $1, token_sealed = $2 WHERE id = $3")
                    .bind(hash)
                    .bind(sealed)
            }
        };
        let mut w = self.write().await?;
        q.bind(id).execute(&mut *w.tx).await?;
        w.commit().await
    }

    /// Deletes an account in a transaction of its own; see `delete_account_in`.
    pub async fn delete_account(&self, id: i64) -> Result<Vec<i64>> {
        let mut w = self.write().await?;
        let repos = self.delete_account_in(&mut w, id).await?;
        w.commit().await?;
        Ok(repos)
    }

    /// Deletes an account, its robots, and (users, organizations) its namespace once no
    /// repository row uses it, in the caller's transaction. A user's or organization's
    /// repositories are marked deleted (their contents are collected by `DeleteRepo` jobs, which
    /// the caller enqueues in the same transaction, or by the next collection pass); their ids
    /// are returned.
    pub async fn delete_account_in(&self, w: &mut WriteTx, id: i64) -> Result<Vec<i64>> {
        let Some((name, kind)) =
            sqlx::query_as::<_, (String, String)>("SELECT name, kind FROM accounts WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *w.tx)
                .await?
        else {
            return Ok(Vec::new());
        };
        let mut repos = Vec::new();
        if kind != AccountKind::Robot.as_str() {
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT r.id FROM repositories r JOIN namespaces n ON n.id = r.namespace_id
                 WHERE n.name = $1 AND r.deleted_at IS NULL",
            )
            .bind(&name)
            .fetch_all(&mut *w.tx)
            .await?;
            for repo_id in ids {
                if self.mark_repo_deleted(w, repo_id).await? {
                    repos.push(repo_id);
                }
            }
            for table in [
                "immutability_policies",
                "autoprune_policies",
                "namespace_quotas",
            ] {
                if table == "namespace_quotas" {
                    sqlx::query("DELETE FROM quota_limits WHERE quota_id IN (SELECT id FROM namespace_quotas WHERE namespace = $1)")
                        .bind(&name)
                        .execute(&mut *w.tx)
                        .await?;
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE namespace = $1"
                )))
                .bind(&name)
                .execute(&mut *w.tx)
                .await?;
            }
            // The namespace row goes once no repository row (deleted ones included) uses it.
            sqlx::query(
                "DELETE FROM namespaces WHERE name = $1
                   AND NOT EXISTS (SELECT 1 FROM repositories r WHERE r.namespace_id = namespaces.id)",
            )
            .bind(&name)
            .execute(&mut *w.tx)
            .await?;
            // Robots go with their owner (their memberships, permissions and tokens cascade).
            sqlx::query("DELETE FROM accounts WHERE owner_id = $1")
                .bind(id)
                .execute(&mut *w.tx)
                .await?;
        }
        sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        Ok(repos)
    }

    /// Accounts of `kind` ordered by name after `after`, at most `limit`.
    pub async fn list_accounts(
        &self,
        kind: AccountKind,
        after: &str,
        limit: i64,
    ) -> Result<Vec<AccountRow>> {
        let sql = format!(
            "SELECT {COLS} FROM accounts WHERE kind = $1 AND name > $2 ORDER BY name LIMIT $3"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(kind.as_str())
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The robots owned by an account.
    pub async fn robots_of(&self, owner_id: i64) -> Result<Vec<AccountRow>> {
        let sql = format!(
            "SELECT {COLS} FROM accounts WHERE kind = 'robot' AND owner_id = $1 ORDER BY name"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(owner_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Accounts whose name starts with `prefix` (autocomplete), robots only of `namespace`.
    pub async fn search_accounts(&self, prefix: &str, limit: i64) -> Result<Vec<AccountRow>> {
        let pattern = format!("{}%", crate::escape_like(prefix));
        let sql = format!(
            "SELECT {COLS} FROM accounts WHERE name LIKE $1 ESCAPE '!' ORDER BY name LIMIT $2"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(pattern)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Counts a failed login from `source`; returns the failures from that source and the
    /// account-wide failures, both since the last success.
    pub async fn record_login_failure(
        &self,
        id: i64,
        source: &str,
        lockout: i64,
    ) -> Result<(i64, i64)> {
        let now = now_ms();
        let mut w = self.write().await?;
        // Failures a day old that never reached the lock-out are forgotten (every account), so
        // guesses from ever new addresses do not grow the table without bound.
        sqlx::query(
            "DELETE FROM login_failures
             WHERE failures > 0 AND ($1 <= 0 OR failures < $1) AND last_failed_at < $2",
        )
        .bind(lockout)
        .bind(now - 86_400_000)
        .execute(&mut *w.tx)
        .await?;
        let from_source: i64 = sqlx::query_scalar(
            "INSERT INTO login_failures (account_id, source, failures, last_failed_at)
             VALUES ($1, $2, 1, $3)
             ON CONFLICT (account_id, source)
             DO UPDATE SET failures = login_failures.failures + 1, last_failed_at = $3
             RETURNING failures",
        )
        .bind(id)
        .bind(source)
        .bind(now)
        .fetch_one(&mut *w.tx)
        .await?;
        let total: Option<i64> = sqlx::query_scalar(
            "UPDATE accounts SET failed_logins = failed_logins + 1, last_failed_at = $1
             WHERE id = $2 RETURNING failed_logins",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok((from_source, total.unwrap_or(0)))
    }

    /// Failed logins of an account from one source: (failures, when the last one was).
    pub async fn login_failures_from(&self, id: i64, source: &str) -> Result<Option<(i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT failures, last_failed_at FROM login_failures WHERE account_id = $1 AND source = $2",
        )
        .bind(id)
        .bind(source)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Every source with failed logins for an account, most failures first.
    pub async fn login_failure_sources(&self, id: i64) -> Result<Vec<(String, i64, i64)>> {
        Ok(sqlx::query_as(
            "SELECT source, failures, last_failed_at FROM login_failures
             WHERE account_id = $1 AND failures > 0 ORDER BY failures DESC, source",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A successful login from `source`: that source's failures and the account-wide count are
    /// cleared (other sources keep theirs), and the source is remembered as one the user logs in
    /// from (a row with no failures), which the account-wide guard then leaves alone.
    pub async fn login_succeeded(&self, id: i64, source: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO login_failures (account_id, source, failures, last_failed_at)
             VALUES ($1, $2, 0, $3)
             ON CONFLICT (account_id, source) DO UPDATE SET failures = 0, last_failed_at = $3",
        )
        .bind(id)
        .bind(source)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        sqlx::query("UPDATE accounts SET failed_logins = 0, last_failed_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Clears every failed login of an account (an administrator's reset).
    pub async fn reset_login_failures(&self, id: i64) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM login_failures WHERE account_id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        sqlx::query("UPDATE accounts SET failed_logins = 0, last_failed_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// Records use of an account, at most once a minute per account.
    pub async fn touch_account(&self, id: i64) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "UPDATE accounts SET last_accessed = $1 WHERE id = $2
               AND (last_accessed IS NULL OR last_accessed < $3)",
        )
        .bind(now)
        .bind(id)
        .bind(now - 60_000)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The account linked to an external identity.
    pub async fn external_login(&self, service: &str, subject: &str) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT account_id FROM external_logins WHERE service = $1 AND subject = $2",
        )
        .bind(service)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn link_external_login(
        &self,
        service: &str,
        subject: &str,
        account_id: i64,
        metadata: &str,
    ) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO external_logins (service, subject, account_id, metadata, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (service, subject) DO UPDATE SET metadata = excluded.metadata",
        )
        .bind(service)
        .bind(subject)
        .bind(account_id)
        .bind(metadata)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// External identities of an account: (service, subject, metadata).
    pub async fn external_logins_of(
        &self,
        account_id: i64,
    ) -> Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT service, subject, COALESCE(metadata, '{}') FROM external_logins WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
