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
use crate::Account;
use crate::{Error, Result};
use berth_db::AccountKind;
use berth_db::now_ms;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown account or wrong secret.
    Invalid,
    /// Too many recent failures: retry after this many seconds.
    Throttled { retry_after_s: i64 },
    /// Logins from this source are locked after too many failures; an administrator must reset
    /// them. Other sources, app-specific tokens and robot tokens are not affected.
    Locked { failures: i64, source: String },
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
            LoginError::Locked { failures, source } => format!(
                "password logins to {username:?} from {source} are locked after {failures} failed attempts (other addresses and app-specific tokens still work); an administrator can unlock them with `berth admin reset-login {username}` or POST /api/v1/superuser/users/{username}/resetlogin"
            ),
            LoginError::Disabled => format!("account {username:?} is disabled"),
            LoginError::Directory(m) => m.clone(),
        }
    }
    /// The refusal as a domain error, worded for `username`: throttling says when to retry;
    /// every other refusal leaves the caller unauthenticated.
    pub fn into_error(self, username: &str) -> Error {
        let detail = self.message(username);
        match self {
            LoginError::Throttled { retry_after_s } => Error::Throttled {
                retry_after_s,
                detail,
            },
            _ => Error::Unauthenticated(detail),
        }
    }
}

/// The source of a login with no network address (the command line).
pub const LOCAL_SOURCE: &str = "local";

/// What failures are counted against: the client's IPv4 address, or its IPv6 /64 (one host
/// commonly holds a whole /64, so single IPv6 addresses would be free to rotate through).
pub fn source_key(ip: Option<&str>) -> String {
    let Some(ip) = ip else {
        return LOCAL_SOURCE.to_string();
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(std::net::IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or_else(|| ip.to_string(), |v4| v4.to_string()),
        _ => ip.to_string(),
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
        self.login_audited(username, secret, ctx, true).await
    }

    /// [`Auth::login`] for clients that send Basic credentials with every registry request: a
    /// login that a recent identical one already verified is answered (re-checked against the
    /// account's current row, see `verified.rs`) without a new audit entry per request.
    pub async fn login_cached(
        &self,
        username: &str,
        secret: &str,
        ctx: &LoginContext<'_>,
    ) -> Result<std::result::Result<Actor, LoginError>> {
        self.login_audited(username, secret, ctx, false).await
    }

    async fn login_audited(
        &self,
        username: &str,
        secret: &str,
        ctx: &LoginContext<'_>,
        audit_reused: bool,
    ) -> Result<std::result::Result<Actor, LoginError>> {
        let source = source_key(ctx.ip);
        let (outcome, reused) = self.check(username, secret, &source).await?;
        let (ok, detail) = match &outcome {
            Ok(a) => (true, a.via.to_string()),
            Err(e) => (false, e.message(username)),
        };
        let audit_success = self.config.audit_logins && (audit_reused || !reused);
        if (ok && audit_success) || (!ok && self.config.audit_login_failures) {
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

    /// Drops the remembered logins of an account: its password changed, or it was disabled or
    /// deleted through this instance. (Other instances miss anyway: a hit must match the row.)
    pub(crate) fn forget_logins(&self, account_id: i64) {
        self.verified.forget_account(account_id);
    }

    /// The verdict on a login, and whether a remembered verification stood in for the password
    /// hash.
    async fn check(
        &self,
        username: &str,
        secret: &str,
        source: &str,
    ) -> Result<(std::result::Result<Actor, LoginError>, bool)> {
        let mut reused = false;
        let outcome = self
            .check_credentials(username, secret, source, &mut reused)
            .await?;
        Ok((outcome, reused))
    }

    async fn check_credentials(
        &self,
        username: &str,
        secret: &str,
        source: &str,
        reused: &mut bool,
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
        // FEATURE_DIRECT_LOGIN: false: passwords do not log users in; their app-specific tokens
        // still do (podman login after signing in with the external provider).
        if !self.config.direct_login {
            if self.config.app_tokens
                && let Some(row) = self.db.account_by_name(username).await?
                && row.kind == AccountKind::User
                && let Ok(actor) = self.check_app_token(Some(row.id), secret).await?
            {
                return Ok(Ok(actor));
            }
            return Ok(Err(LoginError::Directory(
                "password logins are disabled on this registry (FEATURE_DIRECT_LOGIN: false): sign in through the configured external provider, then log in with an app-specific token".into(),
            )));
        }
        // One password check at a time per account on this instance: concurrent guesses would
        // otherwise all read the failure count before any of them records a failure.
        let lock = self.login_lock(&username.to_ascii_lowercase());
        let _serialised = lock.lock().await;
        // AUTHENTICATION_TYPE: LDAP: the directory checks the passwords of the users it manages;
        // local accounts with a password of their own (the bootstrap superuser) go on below.
        if let Some(outcome) = self.check_ldap(username, secret, source).await? {
            return Ok(outcome);
        }
        let row = self.db.account_by_name(username).await?;
        let row = match row {
            Some(r) if r.kind == AccountKind::User => r,
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
        // Throttling and lock-out come first, for remembered passwords too.
        let (verdict, known_good) = self.throttle_state(&Account::from(&row), source).await?;
        if let Some(e) = verdict {
            return Ok(Err(e));
        }
        let now = now_ms();
        let hash = row.password_hash.as_deref();
        // A password verified recently for this account and this stored hash skips argon2id;
        // anything else (a wrong password included) gets the full check.
        *reused = self.verified.hit(username, secret, row.id, hash, now);
        let how = if *reused { "remembered" } else { "hashed" };
        metrics::counter!("berth_password_checks_total", "check" => how).increment(1);
        if !*reused && !verify_password(secret, hash).await {
            return Ok(Err(self.login_failed(&Account::from(&row), source).await?));
        }
        if !row.enabled {
            return Ok(Err(LoginError::Disabled));
        }
        if !*reused && let Some(h) = hash {
            self.verified.remember(username, secret, row.id, h, now);
        }
        // The bookkeeping of a success writes only what changes: nothing for a login from a
        // source known to be good, with no failures anywhere, by an account touched this minute.
        if !(known_good && row.failed_logins == 0) {
            self.incidental(self.db.login_succeeded(row.id, source).await)?;
        }
        if row.last_accessed.is_none_or(|t| now - t >= 60_000) {
            self.incidental(self.db.touch_account(row.id).await)?;
        }
        Ok(Ok(self.actor(&Account::from(&row), "password")))
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

    /// The throttling verdict for a password login to `row` from `source`, before the password
    /// is checked. Failures count per account and source address: the address that guessed waits
    /// (doubling with each failure) and, after `LOGIN_LOCKOUT_FAILURES`, is locked out of this
    /// account until an administrator resets it; every other address is unaffected, so guesses
    /// cannot lock the real user out. Guesses spread over many addresses meet an account-wide
    /// guard that only ever delays (never locks), once the account-wide count since the last
    /// success passes three times the lock-out threshold.
    pub async fn throttled(&self, row: &Account, source: &str) -> Result<Option<LoginError>> {
        Ok(self.throttle_state(row, source).await?.0)
    }

    /// [`Auth::throttled`], and whether `source` is one the user has logged in from with no
    /// failures since.
    async fn throttle_state(
        &self,
        row: &Account,
        source: &str,
    ) -> Result<(Option<LoginError>, bool)> {
        let now = now_ms();
        let here = self.db.login_failures_from(row.id, source).await?;
        if let Some((f, last)) = here
            && f > 0
        {
            if self.config.lockout_failures > 0 && f >= self.config.lockout_failures {
                let locked = LoginError::Locked {
                    failures: f,
                    source: source.to_string(),
                };
                return Ok((Some(locked), false));
            }
            if let Some(e) = self.backoff(f, last, now) {
                return Ok((Some(e), false));
            }
        }
        // The guard spares addresses the user has logged in from (a row without failures): spread
        // guesses cannot keep the real user out by spending one guess whenever the wait ends.
        let known_good = matches!(here, Some((0, _)));
        let guard = self.config.lockout_failures.max(1).saturating_mul(3);
        if !known_good
            && row.failed_logins >= guard
            && let Some(e) = self.backoff(
                row.failed_logins - guard + 1,
                row.last_failed_at.unwrap_or(0),
                now,
            )
        {
            return Ok((Some(e), known_good));
        }
        Ok((None, known_good))
    }

    /// A write a login makes on the side (last use, failure counters). Under
    /// `REGISTRY_STATE: readonly` the database may refuse writes; the login goes on, as Quay's.
    pub(super) fn incidental<T>(&self, r: std::result::Result<T, berth_db::DbError>) -> Result<()> {
        match r {
            Ok(_) => Ok(()),
            Err(e) if self.config.readonly => {
                tracing::debug!(error = %e, "read-only: a login's bookkeeping was not written");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The wait after `failures` failures, the last at `last`.
    fn backoff(&self, failures: i64, last: i64, now: i64) -> Option<LoginError> {
        let delay = self
            .config
            .backoff_base_ms
            .saturating_mul(1i64 << (failures - 1).clamp(0, 30))
            .min(self.config.backoff_max_ms);
        let wait = last + delay - now;
        (wait > 0).then(|| LoginError::Throttled {
            retry_after_s: (wait + 999) / 1000,
        })
    }

    /// Counts a refused password from `source`; the error to answer.
    pub(super) async fn login_failed(&self, row: &Account, source: &str) -> Result<LoginError> {
        let counted = self
            .db
            .record_login_failure(row.id, source, self.config.lockout_failures)
            .await;
        let from_source = match counted {
            Ok((n, _)) => n,
            Err(e) if self.config.readonly => {
                tracing::debug!(error = %e, "read-only: a failed login was not counted");
                0
            }
            Err(e) => return Err(e.into()),
        };
        Ok(
            if self.config.lockout_failures > 0 && from_source >= self.config.lockout_failures {
                LoginError::Locked {
                    failures: from_source,
                    source: source.to_string(),
                }
            } else {
                LoginError::Invalid
            },
        )
    }

    /// The sources whose password logins to an account are locked out.
    pub(crate) async fn locked_sources(&self, row: &Account) -> Result<Vec<String>> {
        if self.config.lockout_failures <= 0 {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .login_failure_sources(row.id)
            .await?
            .into_iter()
            .filter(|(_, f, _)| *f >= self.config.lockout_failures)
            .map(|(s, _, _)| s)
            .collect())
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
        let ok = row.kind == AccountKind::Robot && stored.is_some_and(|t| equal(&t, secret));
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
        self.incidental(self.db.touch_account(row.id).await)?;
        Ok(Ok(self.actor(&Account::from(&row), "robot_token")))
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
        // Password throttling does not apply: an app token is a long random secret, not a
        // guessable password, and it is how a user locked out by someone else's guesses still
        // logs in.
        if !row.enabled {
            return Ok(Err(LoginError::Disabled));
        }
        self.incidental(self.db.touch_token(true, &t.uuid).await)?;
        Ok(Ok(self.actor(&Account::from(&row), "app_token")))
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
        if !row.enabled {
            return Ok(None);
        }
        self.incidental(self.db.touch_token(false, &t.uuid).await)?;
        let mut actor = self.actor(&Account::from(&row), "api_token");
        let scopes: Vec<String> = t.scopes.split_whitespace().map(str::to_string).collect();
        if !scopes.iter().any(|s| s == "super:user") {
            actor.superuser = false;
        }
        actor.scopes = Some(scopes);
        Ok(Some(actor))
    }
}
