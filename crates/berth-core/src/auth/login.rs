//! Credential checks and failed-login throttling.
//!
//! Basic credentials are read the way Quay reads them: user `$app` + an app-specific token,
//! `$oauthtoken` + an API token, `namespace+robot` + the robot's token, otherwise a user name + its
//! password (or one of its app-specific tokens). Each consecutive password failure doubles the
//! wait before the next attempt is even checked (from `backoff_base_ms`, at most
//! `backoff_max_ms`); after `lockout_failures` the account is locked until an administrator
//! resets it, and then even the right password is refused.

use super::audit::AuditEntry;
use super::secret::{equal, token_hash, verify_password};
use super::{Actor, Auth};
use crate::Result;
use berth_db::{AccountRow, now_ms};

/// How long a successful Basic check is reused.
pub const BASIC_CACHE_MS: i64 = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown account or wrong secret.
    Invalid,
    /// Too many recent failures: retry after this many seconds.
    Throttled { retry_after_s: i64 },
    /// Locked after too many failures; an administrator must reset it.
    Locked { failures: i64 },
    /// The account is disabled.
    Disabled,
    /// The name cannot be an account, or the external user directory (LDAP) could not decide or
    /// refuses the account; the
    /// message says which. Not the password's fault, so not counted as a failed login.
    Directory(String),
}

impl LoginError {
    pub fn message(&self, username: &str) -> String {
        match self {
            LoginError::Invalid => "invalid username or password".into(),
            LoginError::Throttled { retry_after_s } => {
                format!("too many failed logins for {username:?}; retry in {retry_after_s} s")
            }
            LoginError::Locked { failures } => format!(
                "account {username:?} is locked after {failures} failed logins; an administrator can unlock it with `berth admin reset-login {username}` or POST /api/v1/superuser/users/{username}/resetlogin"
            ),
            LoginError::Disabled => format!("account {username:?} is disabled"),
            LoginError::Directory(m) => m.clone(),
        }
    }
    pub fn status(&self) -> u16 {
        match self {
            LoginError::Throttled { .. } => 429,
            _ => 401,
        }
    }
}

/// Where a login attempt came from and through what, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct LoginContext<'a> {
    pub ip: Option<&'a str>,
    /// docker (registry token) | api | ui
    pub channel: &'a str,
}

impl Auth {
    /// Checks basic credentials. Every success and failure is audited.
    pub async fn login(
        &self,
        username: &str,
        secret: &str,
        ctx: &LoginContext<'_>,
    ) -> Result<std::result::Result<Actor, LoginError>> {
        let outcome = self.check(username, secret).await?;
        let (ok, detail) = match &outcome {
            Ok(a) => (true, a.via.to_string()),
            Err(e) => (false, e.message(username)),
        };
        if (ok && self.config.audit_logins) || (!ok && self.config.audit_login_failures) {
            let (kind, performer_kind) = match &outcome {
                Ok(a) => ("login_success", a.kind.as_str()),
                Err(_) => ("login_failure", "user"),
            };
            let ns = username.split('+').next().unwrap_or(username);
            let mut e = AuditEntry::new(kind)
                .performer(username, performer_kind)
                .ip(ctx.ip)
                .meta(serde_json::json!({"type": ctx.channel, "detail": detail, "username": username}));
            if ok {
                e = e.namespace(ns);
            }
            self.audit.record(e).await;
        }
        if !ok {
            tracing::warn!(username, ip = ctx.ip, channel = ctx.channel, reason = %detail, "login failed");
        }
        Ok(outcome)
    }

    /// [`Auth::login`] with a short-lived cache of successful checks, for clients that send Basic
    /// credentials with every registry request (password hashing is deliberately slow). A
    /// password change, lockout or disabling takes effect within [`BASIC_CACHE_MS`].
    pub async fn login_cached(
        &self,
        username: &str,
        secret: &str,
        ctx: &LoginContext<'_>,
    ) -> Result<std::result::Result<Actor, LoginError>> {
        use sha2::Digest as _;
        let key = hex::encode(sha2::Sha256::digest(
            format!("{username}\0{secret}").as_bytes(),
        ));
        let now = now_ms();
        if let Ok(cache) = self.basic_cache.lock()
            && let Some((actor, at)) = cache.get(&key)
            && now - at < BASIC_CACHE_MS
        {
            return Ok(Ok(actor.clone()));
        }
        let outcome = self.login(username, secret, ctx).await?;
        if let Ok(actor) = &outcome
            && let Ok(mut cache) = self.basic_cache.lock()
        {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(key, (actor.clone(), now));
        }
        Ok(outcome)
    }

    async fn check(
        &self,
        username: &str,
        secret: &str,
    ) -> Result<std::result::Result<Actor, LoginError>> {
        match username {
            "$app" => return self.check_app_token(None, secret).await,
            "$oauthtoken" | "$token" => {
                return Ok(self
                    .api_token_actor(secret)
                    .await?
                    .ok_or(LoginError::Invalid));
            }
            _ => {}
        }
        if username.contains('+') {
            return self.check_robot(username, secret).await;
        }
        // Only names that could be accounts are checked: a directory would match " alice" or
        // "ALICE" to alice while the throttling counters below look up the exact name.
        if super::accounts::check_namespace_name(&username.to_ascii_lowercase()).is_err() {
            verify_password(secret, None).await;
            return Ok(Err(LoginError::Directory(format!(
                "{username:?} is not a user name this registry can have, so it cannot become a Berth user: lowercase letters and digits with '.', '_' or '-' between them"
            ))));
        }
        // One password check at a time per account on this instance: concurrent guesses would
        // otherwise all read the failure count before any of them records a failure.
        let lock = self.login_lock(&username.to_ascii_lowercase());
        let _serialised = lock.lock().await;
        // AUTHENTICATION_TYPE: LDAP: the directory checks the passwords of the users it manages;
        // local accounts with a password of their own (the bootstrap superuser) go on below.
        if let Some(outcome) = self.check_ldap(username, secret).await? {
            return Ok(outcome);
        }
        let row = self.db.account_by_name(username).await?;
        let row = match row {
            Some(r) if r.kind == "user" => r,
            _ => {
                // Same cost as a real check: no user enumeration through timing.
                verify_password(secret, None).await;
                return Ok(Err(LoginError::Invalid));
            }
        };
        // An app-specific token of this user is accepted as its password (podman login).
        if self.config.app_tokens
            && let Ok(actor) = self.check_app_token(Some(row.id), secret).await?
        {
            return Ok(Ok(actor));
        }
        if let Some(e) = self.throttled(&row) {
            return Ok(Err(e));
        }
        if !verify_password(secret, row.password_hash.as_deref()).await {
            let failures = self.db.record_login_failure(row.id).await?;
            if self.config.lockout_failures > 0 && failures >= self.config.lockout_failures {
                return Ok(Err(LoginError::Locked { failures }));
            }
            return Ok(Err(LoginError::Invalid));
        }
        if !row.enabled {
            return Ok(Err(LoginError::Disabled));
        }
        if row.failed_logins > 0 {
            self.db.reset_login_failures(row.id).await?;
        }
        self.db.touch_account(row.id).await?;
        Ok(Ok(self.actor(&row, "password")))
    }

    fn login_lock(&self, name: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.login_locks.lock() else {
            return std::sync::Arc::default();
        };
        // Forget locks nobody holds, so the map stays as small as the logins in progress.
        if locks.len() > 1024 {
            locks.retain(|_, l| std::sync::Arc::strong_count(l) > 1);
        }
        locks.entry(name.to_string()).or_default().clone()
    }

    /// The throttling verdict for an account before its password is checked.
    pub fn throttled(&self, row: &AccountRow) -> Option<LoginError> {
        let f = row.failed_logins;
        if f <= 0 {
            return None;
        }
        if self.config.lockout_failures > 0 && f >= self.config.lockout_failures {
            return Some(LoginError::Locked { failures: f });
        }
        let delay = self
            .config
            .backoff_base_ms
            .saturating_mul(1i64 << (f - 1).clamp(0, 30))
            .min(self.config.backoff_max_ms);
        let wait = row.last_failed_at.unwrap_or(0) + delay - now_ms();
        (wait > 0).then(|| LoginError::Throttled {
            retry_after_s: (wait + 999) / 1000,
        })
    }

    async fn check_robot(
        &self,
        username: &str,
        secret: &str,
    ) -> Result<std::result::Result<Actor, LoginError>> {
        let Some(row) = self.db.account_by_name(username).await? else {
            return Ok(Err(LoginError::Invalid));
        };
        let stored = row
            .token_sealed
            .as_deref()
            .and_then(|s| self.sealer.open_string(s));
        let ok = row.kind == "robot" && stored.is_some_and(|t| equal(&t, secret));
        if !ok {
            return Ok(Err(LoginError::Invalid));
        }
        if !row.enabled {
            return Ok(Err(LoginError::Disabled));
        }
        // A robot lives only as long as its owner is enabled.
        if let Some(owner) = row.owner_id
            && let Some(o) = self.db.account_by_id(owner).await?
            && !o.enabled
        {
            return Ok(Err(LoginError::Disabled));
        }
        self.db.touch_account(row.id).await?;
        Ok(Ok(self.actor(&row, "robot_token")))
    }

    pub(super) async fn check_app_token(
        &self,
        owner: Option<i64>,
        secret: &str,
    ) -> Result<std::result::Result<Actor, LoginError>> {
        if !self.config.app_tokens {
            return Ok(Err(LoginError::Invalid));
        }
        let Some(t) = self.db.app_token_by_hash(&token_hash(secret)).await? else {
            return Ok(Err(LoginError::Invalid));
        };
        if owner.is_some_and(|o| o != t.account_id) || t.expires_at.is_some_and(|e| e <= now_ms()) {
            return Ok(Err(LoginError::Invalid));
        }
        let Some(row) = self.db.account_by_id(t.account_id).await? else {
            return Ok(Err(LoginError::Invalid));
        };
        if !row.enabled {
            return Ok(Err(LoginError::Disabled));
        }
        if let Some(e) = self.throttled(&row)
            && matches!(e, LoginError::Locked { .. })
        {
            return Ok(Err(e));
        }
        self.db.touch_token(true, &t.uuid).await?;
        Ok(Ok(self.actor(&row, "app_token")))
    }

    /// The caller of an API bearer token, with the token's scopes.
    pub async fn api_token_actor(&self, token: &str) -> Result<Option<Actor>> {
        let Some(t) = self.db.api_token_by_hash(&token_hash(token)).await? else {
            return Ok(None);
        };
        if t.expires_at.is_some_and(|e| e <= now_ms()) {
            return Ok(None);
        }
        let Some(row) = self.db.account_by_id(t.account_id).await? else {
            return Ok(None);
        };
        if !row.enabled || matches!(self.throttled(&row), Some(LoginError::Locked { .. })) {
            return Ok(None);
        }
        self.db.touch_token(false, &t.uuid).await?;
        let mut actor = self.actor(&row, "api_token");
        let scopes: Vec<String> = t.scopes.split_whitespace().map(str::to_string).collect();
        if !scopes.iter().any(|s| s == "super:user") {
            actor.superuser = false;
        }
        actor.scopes = Some(scopes);
        Ok(Some(actor))
    }
}
