//! Notifications, their outbox of deliveries (written in the transaction of the change that
//! caused the event) and the log of delivery attempts.

use crate::{Db, Result, WriteTx, now_ms};

/// Attempts kept per notification for its delivery log.
pub const ATTEMPTS_KEPT: i64 = 100;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub uuid: String,
    pub repo_id: Option<i64>,
    pub namespace: Option<String>,
    pub event: String,
    pub method: String,
    pub title: String,
    /// JSON.
    pub config: String,
    /// JSON.
    pub event_config: String,
    /// Sealed.
    pub secret: String,
    pub failures: i64,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

/// A notification to create.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    pub uuid: &'a str,
    pub repo_id: Option<i64>,
    pub namespace: Option<&'a str>,
    pub event: &'a str,
    pub method: &'a str,
    pub title: &'a str,
    pub config: &'a str,
    pub event_config: &'a str,
    pub secret: &'a str,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub notification_id: i64,
    pub event_id: String,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
    pub next_at: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub delivery_id: i64,
    pub event_id: String,
    pub event: String,
    pub at: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub latency_ms: i64,
}

/// One attempt's outcome, as the sender saw it.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub status: Option<i64>,
    pub error: Option<&'a str>,
    pub latency_ms: i64,
}

const COLUMNS: &str = "id, uuid, repo_id, namespace, event, method, title, config, event_config, secret, failures, disabled_at, created_at";

impl Db {
    pub async fn create_notification(&self, n: &NewNotification<'_>) -> Result<NotificationRow> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO notifications (uuid, repo_id, namespace, event, method, title, config, event_config, secret, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(n.uuid)
        .bind(n.repo_id)
        .bind(n.namespace)
        .bind(n.event)
        .bind(n.method)
        .bind(n.title)
        .bind(n.config)
        .bind(n.event_config)
        .bind(n.secret)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications WHERE uuid = $1"
        )))
        .bind(n.uuid)
        .fetch_one(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(row)
    }

    /// A repository's notifications (`repo_id`) or a namespace's (`namespace`), oldest first.
    pub async fn notifications_of(
        &self,
        repo_id: Option<i64>,
        namespace: Option<&str>,
    ) -> Result<Vec<NotificationRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications
             WHERE ($1 = 0 OR repo_id = $2) AND ($3 = '' OR (repo_id IS NULL AND namespace = $3))
             ORDER BY id"
        )))
        .bind(i64::from(repo_id.is_some()))
        .bind(repo_id.unwrap_or(0))
        .bind(namespace.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn notification(&self, uuid: &str) -> Result<Option<NotificationRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications WHERE uuid = $1"
        )))
        .bind(uuid)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn notification_by_id(&self, id: i64) -> Result<Option<NotificationRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn delete_notification(&self, id: i64) -> Result<bool> {
        let mut w = self.write().await?;
        for t in ["notification_attempts", "notification_deliveries"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {t} WHERE notification_id = $1"
            )))
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        }
        let n = sqlx::query("DELETE FROM notifications WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?
            .rows_affected();
        w.commit().await?;
        Ok(n > 0)
    }

    /// Clears the failure count and re-enables the notification.
    pub async fn reset_notification(&self, id: i64) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE notifications SET failures = 0, disabled_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// The enabled notifications of `event` on a repository (`repo_id`) or, for a namespace
    /// event, on `namespace`, read inside `w`.
    pub async fn notifications_for_event(
        &self,
        w: &mut WriteTx,
        repo_id: Option<i64>,
        namespace: Option<&str>,
        event: &str,
    ) -> Result<Vec<NotificationRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications
             WHERE event = $1 AND disabled_at IS NULL
               AND (($2 = 1 AND repo_id = $3) OR ($2 = 0 AND repo_id IS NULL AND namespace = $4))
             ORDER BY id"
        )))
        .bind(event)
        .bind(i64::from(repo_id.is_some()))
        .bind(repo_id.unwrap_or(0))
        .bind(namespace.unwrap_or(""))
        .fetch_all(&mut *w.tx)
        .await?)
    }

    /// Adds a delivery of an event to a notification's outbox, inside `w`.
    pub async fn add_delivery(
        &self,
        w: &mut WriteTx,
        notification_id: i64,
        event_id: &str,
        event: &str,
        payload: &str,
    ) -> Result<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO notification_deliveries (notification_id, event_id, event, payload, next_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(notification_id)
        .bind(event_id)
        .bind(event)
        .bind(payload)
        .bind(now)
        .execute(&mut *w.tx)
        .await?;
        Ok(())
    }

    /// Whether the notification got a delivery of `event` since `since` (ms), read in `w`.
    pub async fn delivered_since(
        &self,
        w: &mut WriteTx,
        notification_id: i64,
        event: &str,
        since: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 FROM notification_deliveries WHERE notification_id = $1 AND event = $2 AND created_at > $3 LIMIT 1",
        )
        .bind(notification_id)
        .bind(event)
        .bind(since)
        .fetch_optional(&mut *w.tx)
        .await?
        .is_some())
    }

    /// The notification's oldest pending delivery: the only one that may be sent (deliveries of
    /// one notification go out in order).
    pub async fn delivery_head(&self, notification_id: i64) -> Result<Option<DeliveryRow>> {
        Ok(sqlx::query_as(
            "SELECT id, notification_id, event_id, event, payload, attempts, next_at, created_at
             FROM notification_deliveries WHERE notification_id = $1 AND state = 'pending'
             ORDER BY id LIMIT 1",
        )
        .bind(notification_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records an attempt at `d`: delivered, or failed and due again at `retry_at`, or failed
    /// for good (`retry_at` None). Keeps the last [`ATTEMPTS_KEPT`] attempts. A delivery
    /// resets the notification's failure count; a delivery failed for good adds one. Answers
    /// the notification's failure count after it.
    pub async fn record_attempt(
        &self,
        d: &DeliveryRow,
        a: &Attempt<'_>,
        delivered: bool,
        retry_at: Option<i64>,
    ) -> Result<i64> {
        let now = now_ms();
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO notification_attempts (notification_id, delivery_id, event_id, event, at, status, error, latency_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(d.notification_id)
        .bind(d.id)
        .bind(&d.event_id)
        .bind(&d.event)
        .bind(now)
        .bind(a.status)
        .bind(a.error)
        .bind(a.latency_ms)
        .execute(&mut *w.tx)
        .await?;
        sqlx::query(
            "DELETE FROM notification_attempts WHERE notification_id = $1 AND id <= (
                SELECT id FROM notification_attempts WHERE notification_id = $1
                ORDER BY id DESC LIMIT 1 OFFSET $2)",
        )
        .bind(d.notification_id)
        .bind(ATTEMPTS_KEPT)
        .execute(&mut *w.tx)
        .await?;
        let (state, next_at) = match (delivered, retry_at) {
            (true, _) => ("delivered", now),
            (false, Some(t)) => ("pending", t),
            (false, None) => ("failed", now),
        };
        sqlx::query(
            "UPDATE notification_deliveries SET state = $1, attempts = attempts + 1, next_at = $2,
                    finished_at = CASE WHEN $1 = 'pending' THEN NULL ELSE $3 END
             WHERE id = $4",
        )
        .bind(state)
        .bind(next_at)
        .bind(now)
        .bind(d.id)
        .execute(&mut *w.tx)
        .await?;
        if delivered {
            sqlx::query("UPDATE notifications SET failures = 0 WHERE id = $1")
                .bind(d.notification_id)
                .execute(&mut *w.tx)
                .await?;
        } else if retry_at.is_none() {
            sqlx::query("UPDATE notifications SET failures = failures + 1 WHERE id = $1")
                .bind(d.notification_id)
                .execute(&mut *w.tx)
                .await?;
        }
        let (failures,): (i64,) =
            sqlx::query_as("SELECT failures FROM notifications WHERE id = $1")
                .bind(d.notification_id)
                .fetch_one(&mut *w.tx)
                .await?;
        w.commit().await?;
        Ok(failures)
    }

    /// Disables a notification (its failure limit was reached); false if it already was.
    pub async fn disable_notification(&self, id: i64) -> Result<bool> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE notifications SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        // What was still waiting goes nowhere now.
        sqlx::query(
            "UPDATE notification_deliveries SET state = 'failed', finished_at = $1
             WHERE notification_id = $2 AND state = 'pending'",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await?;
        Ok(n > 0)
    }

    /// The notification's last attempts, newest first.
    pub async fn attempts(&self, notification_id: i64, limit: i64) -> Result<Vec<AttemptRow>> {
        Ok(sqlx::query_as(
            "SELECT delivery_id, event_id, event, at, status, error, latency_ms
             FROM notification_attempts WHERE notification_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(notification_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A delivery of the notification, by id.
    pub async fn delivery(&self, notification_id: i64, id: i64) -> Result<Option<DeliveryRow>> {
        Ok(sqlx::query_as(
            "SELECT id, notification_id, event_id, event, payload, attempts, next_at, created_at
             FROM notification_deliveries WHERE notification_id = $1 AND id = $2",
        )
        .bind(notification_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Notifications (enabled) with a pending delivery due by `now`.
    pub async fn due_notifications(&self, now: i64) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT d.notification_id FROM notification_deliveries d
               JOIN notifications n ON n.id = d.notification_id
             WHERE d.state = 'pending' AND d.next_at <= $1 AND n.disabled_at IS NULL",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A repository's name by id.
    pub async fn repo_name(&self, id: i64) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM repositories WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Disabled notifications, in all.
    pub async fn disabled_notifications(&self) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE disabled_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    /// Pending deliveries, in all.
    pub async fn pending_deliveries(&self) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM notification_deliveries WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }
}

/// One in-app notification of a user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserNotificationRow {
    pub uuid: String,
    pub kind: String,
    pub organization: Option<String>,
    /// JSON.
    pub metadata: String,
    #[sqlx(try_from = "crate::decode::IntBool")]
    pub dismissed: bool,
    pub created_at: i64,
}

impl Db {
    /// The enabled users who administer a repository: its user namespace's owner, members of
    /// its organization's admin teams, and holders of a direct or team admin permission.
    pub async fn repo_admin_accounts(&self, repo_id: i64, namespace: &str) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT a.id FROM accounts a WHERE a.kind = 'user' AND a.enabled = 1 AND (
                 a.name = $2
              OR a.id IN (SELECT account_id FROM repo_account_perms WHERE repo_id = $1 AND role = 'admin')
              OR a.id IN (SELECT tm.account_id FROM team_members tm JOIN teams t ON t.id = tm.team_id
                            JOIN accounts o ON o.id = t.org_id WHERE o.name = $2 AND t.role = 'admin')
              OR a.id IN (SELECT tm.account_id FROM team_members tm JOIN repo_team_perms p ON p.team_id = tm.team_id
                            WHERE p.repo_id = $1 AND p.role = 'admin'))
             ORDER BY a.id",
        )
        .bind(repo_id)
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The enabled users an in-app notification's target names: a user, an organization's
    /// administrators, or the members of a team of `org`.
    pub async fn target_accounts(&self, kind: &str, name: &str, org: &str) -> Result<Vec<i64>> {
        let sql = match kind {
            "user" => "SELECT id FROM accounts WHERE kind = 'user' AND enabled = 1 AND name = $1 AND $2 = $2",
            "org" => {
                "SELECT a.id FROM accounts a WHERE a.kind = 'user' AND a.enabled = 1 AND a.id IN (
                    SELECT tm.account_id FROM team_members tm JOIN teams t ON t.id = tm.team_id
                      JOIN accounts o ON o.id = t.org_id WHERE o.name = $1 AND t.role = 'admin') AND $2 = $2"
            }
            _ => {
                "SELECT a.id FROM accounts a WHERE a.kind = 'user' AND a.enabled = 1 AND a.id IN (
                    SELECT tm.account_id FROM team_members tm JOIN teams t ON t.id = tm.team_id
                      JOIN accounts o ON o.id = t.org_id WHERE t.name = $1 AND o.name = $2)"
            }
        };
        Ok(sqlx::query_scalar(sql)
            .bind(name)
            .bind(org)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Adds an in-app notification for each of `accounts`.
    pub async fn add_user_notifications(
        &self,
        accounts: &[i64],
        kind: &str,
        organization: Option<&str>,
        metadata: &str,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let now = now_ms();
        for a in accounts {
            sqlx::query(
                "INSERT INTO user_notifications (uuid, account_id, kind, organization, metadata, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(a)
            .bind(kind)
            .bind(organization)
            .bind(metadata)
            .bind(now)
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await
    }

    /// A user's in-app notifications, newest first: `limit` after `offset`.
    pub async fn user_notifications(
        &self,
        account_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<UserNotificationRow>> {
        Ok(sqlx::query_as(
            "SELECT uuid, kind, organization, metadata, dismissed, created_at FROM user_notifications
             WHERE account_id = $1 ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind(account_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?)
    }

    /// How many of a user's in-app notifications are not dismissed.
    pub async fn unread_user_notifications(&self, account_id: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM user_notifications WHERE account_id = $1 AND dismissed = 0",
        )
        .bind(account_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Dismisses (or restores) one of a user's in-app notifications; false if it has none such.
    pub async fn dismiss_user_notification(
        &self,
        account_id: i64,
        uuid: &str,
        dismissed: bool,
    ) -> Result<bool> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "UPDATE user_notifications SET dismissed = $1 WHERE account_id = $2 AND uuid = $3",
        )
        .bind(i64::from(dismissed))
        .bind(account_id)
        .bind(uuid)
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n > 0)
    }

    pub async fn user_notification(
        &self,
        account_id: i64,
        uuid: &str,
    ) -> Result<Option<UserNotificationRow>> {
        Ok(sqlx::query_as(
            "SELECT uuid, kind, organization, metadata, dismissed, created_at FROM user_notifications
             WHERE account_id = $1 AND uuid = $2",
        )
        .bind(account_id)
        .bind(uuid)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The enabled notifications of `event` on repositories.
    pub async fn repo_notifications_of_event(&self, event: &str) -> Result<Vec<NotificationRow>> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications WHERE event = $1 AND disabled_at IS NULL AND repo_id IS NOT NULL ORDER BY id"
        )))
        .bind(event)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The live tags of the notification's repository that expire after `now` and by `until`
    /// and that it has not told about yet: (tag, expiry), by name.
    pub async fn expiring_unnoticed(
        &self,
        n: &NotificationRow,
        now: i64,
        until: i64,
    ) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT t.name, t.expires_at FROM tags t WHERE t.repo_id = $1 AND t.end_at IS NULL
               AND t.expires_at > $2 AND t.expires_at <= $3
               AND NOT EXISTS (SELECT 1 FROM notification_tag_notices x WHERE x.notification_id = $4
                                 AND x.tag = t.name AND x.expires_at = t.expires_at)
             ORDER BY t.name",
        )
        .bind(n.repo_id.unwrap_or(0))
        .bind(now)
        .bind(until)
        .bind(n.id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that `notification_id` told about these (tag, expiry) pairs, inside `w`.
    pub async fn note_expiry_notices(
        &self,
        w: &mut WriteTx,
        notification_id: i64,
        tags: &[(String, i64)],
    ) -> Result<()> {
        for (t, at) in tags {
            sqlx::query(
                "INSERT INTO notification_tag_notices (notification_id, tag, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
            )
            .bind(notification_id)
            .bind(t)
            .bind(at)
            .execute(&mut *w.tx)
            .await?;
        }
        Ok(())
    }
}

impl Db {
    /// A repository's authorized email: whether it is confirmed; `None` if never asked for.
    pub async fn authorized_email(&self, repo_id: i64, email: &str) -> Result<Option<bool>> {
        let row: Option<(crate::decode::IntBool,)> = sqlx::query_as(
            "SELECT confirmed FROM authorized_emails WHERE repo_id = $1 AND email = $2",
        )
        .bind(repo_id)
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0.into()))
    }

    /// Starts (or restarts) the authorization of `email` for a repository with a new `code`;
    /// false if it is confirmed already.
    pub async fn request_email_authorization(
        &self,
        repo_id: i64,
        email: &str,
        code: &str,
    ) -> Result<bool> {
        let mut w = self.write().await?;
        let n = sqlx::query(
            "INSERT INTO authorized_emails (repo_id, email, code, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repo_id, email) DO UPDATE SET code = $3, created_at = $4
             WHERE authorized_emails.confirmed = 0",
        )
        .bind(repo_id)
        .bind(email)
        .bind(code)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?
        .rows_affected();
        w.commit().await?;
        Ok(n > 0)
    }

    /// Confirms the authorization whose link carried `code`: (repository id, email).
    pub async fn confirm_email_authorization(&self, code: &str) -> Result<Option<(i64, String)>> {
        let mut w = self.write().await?;
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT repo_id, email FROM authorized_emails WHERE code = $1")
                .bind(code)
                .fetch_optional(&mut *w.tx)
                .await?;
        if let Some((repo_id, email)) = &row {
            sqlx::query(
                "UPDATE authorized_emails SET confirmed = 1 WHERE repo_id = $1 AND email = $2",
            )
            .bind(repo_id)
            .bind(email)
            .execute(&mut *w.tx)
            .await?;
        }
        w.commit().await?;
        Ok(row)
    }

    /// An account's email by name.
    pub async fn account_email(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar::<_, Option<String>>("SELECT email FROM accounts WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .flatten(),
        )
    }
}
