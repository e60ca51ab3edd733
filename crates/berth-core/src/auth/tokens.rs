//! App-specific tokens, API tokens, and the first superuser.

use super::accounts::*;
use super::audit::AuditEntry;
use super::secret::{random_token, token_hash};
use super::{API_SCOPES, AccountKind, Actor, Auth};
use crate::{ApiToken, AppToken, Error, Result};
use berth_db::{ApiTokenRow, AppTokenRow, now_ms};

impl Auth {
    // ---- tokens ---------------------------------------------------------------------------

    pub async fn create_app_token(&self, actor: &Actor, title: &str) -> Result<NewToken<AppToken>> {
        if !self.config.app_tokens {
            return Err(Error::not_found(
                "app-specific tokens are disabled (FEATURE_APP_SPECIFIC_TOKENS)",
            ));
        }
        if actor.kind != AccountKind::User || !actor.has_scope("user:admin") {
            return Err(Error::denied("only users may create app-specific tokens"));
        }
        if title.trim().is_empty() {
            return Err(Error::invalid("title is required"));
        }
        let token = random_token(40);
        let now = now_ms();
        let row = AppTokenRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            account_id: actor.id,
            title: title.to_string(),
            token_sealed: self.sealer.seal(token.as_bytes()),
            created_at: now,
            expires_at: self
                .config
                .app_token_expiration_s
                .map(|s| now.saturating_add(s.saturating_mul(1000))),
            last_accessed: None,
        };
        self.db.insert_app_token(&row, &token_hash(&token)).await?;
        self.audit
            .record(
                AuditEntry::new("create_app_specific_token")
                    .by(Some(actor))
                    .namespace(&actor.name)
                    .meta(serde_json::json!({"app_specific_token_title": title, "app_specific_token": row.uuid})),
            )
            .await;
        Ok(NewToken {
            row: row.into(),
            token,
        })
    }

    pub async fn delete_app_token(&self, actor: &Actor, uuid: &str) -> Result<()> {
        if !self.db.delete_app_token(actor.id, uuid).await? {
            return Err(Error::not_found(format!("no app-specific token {uuid:?}")));
        }
        self.audit
            .record(
                AuditEntry::new("revoke_app_specific_token")
                    .by(Some(actor))
                    .namespace(&actor.name)
                    .meta(serde_json::json!({"app_specific_token": uuid})),
            )
            .await;
        Ok(())
    }

    /// Creates an API bearer token for `actor` carrying `scopes` (a subset of the actor's own).
    pub async fn create_api_token(
        &self,
        actor: &Actor,
        name: &str,
        scopes: &[String],
        expires_in_s: Option<i64>,
    ) -> Result<NewToken<ApiToken>> {
        if actor.kind != AccountKind::User {
            return Err(Error::denied("only users may create API tokens"));
        }
        if scopes.is_empty() {
            return Err(Error::invalid(format!(
                "scopes are required: any of {}",
                API_SCOPES.join(" ")
            )));
        }
        for s in scopes {
            if !API_SCOPES.contains(&s.as_str()) {
                return Err(Error::invalid(format!(
                    "unknown scope {s:?}: use any of {}",
                    API_SCOPES.join(" ")
                )));
            }
            if !actor.has_scope(s) || (s == "super:user" && !actor.superuser) {
                return Err(Error::denied(format!("you cannot grant scope {s:?}")));
            }
        }
        let token = random_token(40);
        let now = now_ms();
        let row = ApiTokenRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            account_id: actor.id,
            name: name.to_string(),
            scopes: scopes.join(" "),
            created_by: Some(actor.id),
            created_at: now,
            expires_at: expires_in_s.map(|s| now.saturating_add(s.saturating_mul(1000))),
            last_accessed: None,
        };
        self.db.insert_api_token(&row, &token_hash(&token)).await?;
        self.audit
            .record(
                AuditEntry::new("create_api_token")
                    .by(Some(actor))
                    .namespace(&actor.name)
                    .meta(
                        serde_json::json!({"name": name, "scopes": row.scopes, "token": row.uuid}),
                    ),
            )
            .await;
        Ok(NewToken {
            row: row.into(),
            token,
        })
    }

    pub async fn delete_api_token(&self, actor: &Actor, uuid: &str) -> Result<()> {
        if !self.db.delete_api_token(actor.id, uuid).await? {
            return Err(Error::not_found(format!("no API token {uuid:?}")));
        }
        self.audit
            .record(
                AuditEntry::new("revoke_api_token")
                    .by(Some(actor))
                    .namespace(&actor.name)
                    .meta(serde_json::json!({"token": uuid})),
            )
            .await;
        Ok(())
    }

    /// Creates the first superuser at first start when no user exists yet; returns it and whether
    /// its password was generated (to be printed once).
    /// The generated password of the first superuser has been shown to the person starting it.
    pub async fn bootstrap_password_shown(&self) -> Result<()> {
        Ok(self.db.forget_instance_value(UNSHOWN_BOOTSTRAP).await?)
    }

    /// The first superuser, when its generated password was never shown (a start that stopped
    /// between creating it and printing it).
    pub async fn unshown_bootstrap_user(&self) -> Result<Option<String>> {
        Ok(self.db.instance_value(UNSHOWN_BOOTSTRAP).await?)
    }

    pub async fn bootstrap_superuser(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> Result<Option<(crate::Account, Option<String>)>> {
        if self.db.count_accounts(berth_db::AccountKind::User).await? > 0 {
            return Ok(None);
        }
        let generated = password.is_none().then(|| random_token(24));
        let pw = password.or(generated.as_deref());
        // Until the caller has shown the generated password, a marker says it was never seen, so
        // that a later start can say how to set one instead of leaving the registry with a
        // superuser nobody can log in as. It is written before the user, so no stop in between
        // can leave the user without it.
        if generated.is_some() {
            self.db.instance_secret(UNSHOWN_BOOTSTRAP, username).await?;
        }
        match self.create_user(None, username, pw, None, true).await {
            Ok(row) => Ok(Some((row, generated))),
            // Another instance created it at the same moment; it shows its own password and
            // clears the (shared) marker then.
            Err(Error::AlreadyExists(_)) => Ok(None),
            Err(e) => {
                if generated.is_some() {
                    let _ = self.bootstrap_password_shown().await;
                }
                Err(e)
            }
        }
    }
}

/// The instance-table marker of a generated first-superuser password not yet shown.
const UNSHOWN_BOOTSTRAP: &str = "bootstrap_password_unshown";
