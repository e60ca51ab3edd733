//! Credentials handed to clients (app-specific and API tokens, stored as SHA-256 only), the keys
//! that sign registry tokens, and shared instance secrets.

use crate::{Db, Result, now_ms};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppTokenRow {
    pub uuid: String,
    pub account_id: i64,
    pub title: String,
    pub token_sealed: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_accessed: Option<i64>,
}

const APP_COLS: &str =
    "uuid, account_id, title, token_sealed, created_at, expires_at, last_accessed";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub uuid: String,
    pub account_id: i64,
    pub name: String,
    pub scopes: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_accessed: Option<i64>,
}

const API_COLS: &str =
    "uuid, account_id, name, scopes, created_by, created_at, expires_at, last_accessed";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ServiceKeyRow {
    pub kid: String,
    pub service: String,
    pub private_sealed: String,
    pub public_key: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Db {
    pub async fn insert_app_token(&self, t: &AppTokenRow, token_hash: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO app_tokens (uuid, account_id, title, token_hash, token_sealed, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.uuid)
        .bind(t.account_id)
        .bind(&t.title)
        .bind(token_hash)
        .bind(&t.token_sealed)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn app_tokens_of(&self, account_id: i64) -> Result<Vec<AppTokenRow>> {
        let sql = format!(
            "SELECT {APP_COLS} FROM app_tokens WHERE account_id = $1 ORDER BY created_at, uuid"
        );
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    pub async fn all_app_tokens(&self) -> Result<Vec<AppTokenRow>> {
        let sql = format!("SELECT {APP_COLS} FROM app_tokens ORDER BY created_at, uuid");
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    pub async fn app_token(&self, account_id: i64, uuid: &str) -> Result<Option<AppTokenRow>> {
        let sql = format!("SELECT {APP_COLS} FROM app_tokens WHERE account_id = $1 AND uuid = $2");
        let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .bind(uuid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    pub async fn app_token_by_hash(&self, token_hash: &str) -> Result<Option<AppTokenRow>> {
        let sql = format!("SELECT {APP_COLS} FROM app_tokens WHERE token_hash = $1");
        let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    pub async fn delete_app_token(&self, account_id: i64, uuid: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query("DELETE FROM app_tokens WHERE account_id = $1 AND uuid = $2")
            .bind(account_id)
            .bind(uuid)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records use of a token, at most once a minute.
    pub async fn touch_token(&self, table_is_app: bool, uuid: &str) -> Result<()> {
        let now = now_ms();
        let sql = if table_is_app {
            "UPDATE app_tokens SET last_accessed = $1 WHERE uuid = $2 AND (last_accessed IS NULL OR last_accessed < $3)"
        } else {
            "UPDATE api_tokens SET last_accessed = $1 WHERE uuid = $2 AND (last_accessed IS NULL OR last_accessed < $3)"
        };
        sqlx::query(sql)
            .bind(now)
            .bind(uuid)
            .bind(now - 60_000)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn insert_api_token(&self, t: &ApiTokenRow, token_hash: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (uuid, account_id, name, scopes, token_hash, created_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&t.uuid)
        .bind(t.account_id)
        .bind(&t.name)
        .bind(&t.scopes)
        .bind(token_hash)
        .bind(t.created_by)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRow>> {
        let sql = format!("SELECT {API_COLS} FROM api_tokens WHERE token_hash = $1");
        let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    pub async fn api_tokens_of(&self, account_id: i64) -> Result<Vec<ApiTokenRow>> {
        let sql = format!(
            "SELECT {API_COLS} FROM api_tokens WHERE account_id = $1 ORDER BY created_at, uuid"
        );
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(account_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    pub async fn delete_api_token(&self, account_id: i64, uuid: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query("DELETE FROM api_tokens WHERE account_id = $1 AND uuid = $2")
            .bind(account_id)
            .bind(uuid)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Signing keys that have not expired, newest first.
    pub async fn service_keys(&self) -> Result<Vec<ServiceKeyRow>> {
        Ok(sqlx::query_as(
            "SELECT kid, service, private_sealed, public_key, created_at, expires_at
             FROM service_keys WHERE expires_at > $1 ORDER BY created_at DESC, kid",
        )
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Adds a signing key and drops expired ones.
    pub async fn insert_service_key(&self, k: &ServiceKeyRow) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO service_keys (kid, service, private_sealed, public_key, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.kid)
        .bind(&k.service)
        .bind(&k.private_sealed)
        .bind(&k.public_key)
        .bind(k.created_at)
        .bind(k.expires_at)
        .execute(&mut *w.tx)
        .await?;
        sqlx::query("DELETE FROM service_keys WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    pub async fn delete_service_key(&self, kid: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query("DELETE FROM service_keys WHERE kid = $1")
            .bind(kid)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// The value stored under `name` in the instance table, if any (markers as well as secrets).
    pub async fn instance_value(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM instance_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Forgets the value stored under `name`.
    pub async fn forget_instance_value(&self, name: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM instance_secrets WHERE name = $1")
            .bind(name)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// The shared secret `name`, stored as `proposed` if no instance stored one before.
    pub async fn instance_secret(&self, name: &str, proposed: &str) -> Result<String> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO instance_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(proposed)
        .bind(now_ms())
        .execute(&mut *w.tx)
        .await?;
        let value = sqlx::query_scalar("SELECT value FROM instance_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(value)
    }
}

/// An organization's OAuth application.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OAuthAppRow {
    pub client_id: String,
    pub org_id: i64,
    pub name: String,
    pub description: String,
    pub application_uri: String,
    pub redirect_uri: String,
    pub avatar_email: Option<String>,
    pub secret_sealed: String,
    pub created_at: i64,
}

const OAUTH_COLS: &str = "client_id, org_id, name, description, application_uri, redirect_uri, avatar_email, secret_sealed, created_at";

impl Db {
    pub async fn insert_oauth_app(&self, a: &OAuthAppRow) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO oauth_apps (client_id, org_id, name, description, application_uri,
               redirect_uri, avatar_email, secret_sealed, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&a.client_id)
        .bind(a.org_id)
        .bind(&a.name)
        .bind(&a.description)
        .bind(&a.application_uri)
        .bind(&a.redirect_uri)
        .bind(&a.avatar_email)
        .bind(&a.secret_sealed)
        .bind(a.created_at)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    /// Replaces an application's descriptive fields and secret.
    pub async fn update_oauth_app(&self, a: &OAuthAppRow) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "UPDATE oauth_apps SET name = $1, description = $2, application_uri = $3,
               redirect_uri = $4, avatar_email = $5, secret_sealed = $6
             WHERE client_id = $7 AND org_id = $8",
        )
        .bind(&a.name)
        .bind(&a.description)
        .bind(&a.application_uri)
        .bind(&a.redirect_uri)
        .bind(&a.avatar_email)
        .bind(&a.secret_sealed)
        .bind(&a.client_id)
        .bind(a.org_id)
        .execute(&mut *w.tx)
        .await?;
        w.commit().await
    }

    pub async fn oauth_apps(&self, org_id: i64) -> Result<Vec<OAuthAppRow>> {
        let sql = format!(
            "SELECT {OAUTH_COLS} FROM oauth_apps WHERE org_id = $1 ORDER BY name, client_id"
        );
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    pub async fn oauth_app(&self, client_id: &str) -> Result<Option<OAuthAppRow>> {
        let sql = format!("SELECT {OAUTH_COLS} FROM oauth_apps WHERE client_id = $1");
        let row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// Deletes an application and (by cascade) the tokens minted for it.
    pub async fn delete_oauth_app(&self, org_id: i64, client_id: &str) -> Result<bool> {
        let mut w = self.write().await?;
        sqlx::query("DELETE FROM api_tokens WHERE app_client_id = $1")
            .bind(client_id)
            .execute(&mut *w.tx)
            .await?;
        let r = sqlx::query("DELETE FROM oauth_apps WHERE org_id = $1 AND client_id = $2")
            .bind(org_id)
            .bind(client_id)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Ties an API token to the application it was minted for.
    pub async fn set_api_token_app(&self, uuid: &str, client_id: &str) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query("UPDATE api_tokens SET app_client_id = $1 WHERE uuid = $2")
            .bind(client_id)
            .bind(uuid)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await
    }

    /// API tokens minted for an application, oldest first, after `after_uuid`-less paging by count.
    pub async fn api_tokens_of_app(&self, client_id: &str) -> Result<Vec<ApiTokenRow>> {
        let sql = format!(
            "SELECT {API_COLS} FROM api_tokens WHERE app_client_id = $1 ORDER BY created_at, uuid"
        );
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(client_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    pub async fn delete_app_api_token(&self, client_id: &str, uuid: &str) -> Result<bool> {
        let mut w = self.write().await?;
        let r = sqlx::query("DELETE FROM api_tokens WHERE app_client_id = $1 AND uuid = $2")
            .bind(client_id)
            .bind(uuid)
            .execute(&mut *w.tx)
            .await?;
        w.commit().await?;
        Ok(r.rows_affected() > 0)
    }
}
