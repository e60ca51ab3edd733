//! Identity and access: who is calling (credentials → [`Actor`]), what they may do with a
//! repository ([`authz`]), the registry tokens that carry that decision to `/v2` ([`jwt`]), failed
//! login throttling, and the audit log. Account management (users, organizations, teams, robots,
//! permissions, tokens) lives in [`accounts`]; browser sessions in [`session`]; sign-in through
//! OpenID Connect providers in [`oidc`].

pub mod accounts;
pub mod apps;
pub mod audit;
pub mod authz;
pub mod jwt;
pub mod ldap;
pub mod login;
pub mod oidc;
mod orgs;
mod permissions;
mod robots;
pub mod secret;
pub mod session;
mod tokens;
mod verified;
pub mod views;

pub use audit::{AuditEntry, AuditLog, Who};
pub use authz::RepoAccess;
pub use jwt::{Access, CallerKind, Claims, TokenContext, TokenError};
pub use login::LoginError;

use crate::{Db, Result};
use secret::Sealer;
use std::sync::Arc;

/// Settings of identity and access (Quay's keys where Quay has them).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `SUPER_USERS`: superusers by name, in addition to accounts flagged in the database.
    pub superusers: Vec<String>,
    /// `FEATURE_ANONYMOUS_ACCESS`: anonymous pulls of public repositories.
    pub anonymous_access: bool,
    /// The `service` of registry tokens (their audience): `SERVER_HOSTNAME`, else "berth".
    pub service: String,
    /// Lifetime of registry tokens.
    pub token_lifetime_s: i64,
    /// A new signing key is made after this long.
    pub key_rotation_s: i64,
    /// `DATABASE_SECRET_KEY`; when absent, a secret generated once and kept in the database.
    pub database_secret: Option<String>,
    /// Failed logins before an account is locked until an administrator resets it (0: never).
    pub lockout_failures: i64,
    /// Delay after the first consecutive failure; doubles with each further one.
    pub backoff_base_ms: i64,
    /// Longest delay between attempts.
    pub backoff_max_ms: i64,
    /// How long a verified password is remembered (as a keyed hash) so that the same login again
    /// skips argon2id; 0 checks every login in full. See `verified.rs`.
    pub login_cache_s: i64,
    /// `FEATURE_APP_SPECIFIC_TOKENS`
    pub app_tokens: bool,
    /// `APP_SPECIFIC_TOKEN_EXPIRATION` in seconds.
    pub app_token_expiration_s: Option<i64>,
    /// `FEATURE_USER_CREATION`: self-service sign-up through the API.
    pub user_creation: bool,
    /// `ACTION_LOG_AUDIT_LOGIN_FAILURES` (Berth: on by default) / `ACTION_LOG_AUDIT_LOGINS`.
    pub audit_login_failures: bool,
    pub audit_logins: bool,
    /// `AUTHENTICATION_TYPE: LDAP`: the directory that checks users' passwords.
    pub ldap: Option<ldap::LdapConfig>,
    /// `<NAME>_LOGIN_CONFIG` blocks: OpenID Connect providers to sign in with.
    pub oidc: Vec<oidc::OidcProvider>,
    /// `SECRET_KEY`: signs session cookies; when absent, a secret generated once and kept in
    /// the database (so every instance accepts every session).
    pub session_secret: Option<String>,
    /// `SESSION_COOKIE_SECURE`: send the session cookie over https only.
    pub session_cookie_secure: bool,
    /// `SESSION_TIMEOUT` in seconds.
    pub session_timeout_s: i64,
    /// `TAG_EXPIRATION_OPTIONS`: the windows a namespace may choose.
    pub tag_expiration_options: Vec<i64>,
    /// `FEATURE_DIRECT_LOGIN`: users may log in with a password (local or LDAP). Off, only
    /// external providers, app-specific tokens, robot and API tokens log in.
    pub direct_login: bool,
    /// `REGISTRY_STATE: readonly`: a login's own bookkeeping writes may fail without failing it.
    pub readonly: bool,
    /// `FEATURE_CHANGE_TAG_EXPIRATION`
    pub change_tag_expiration: bool,
    /// `PERMANENTLY_DELETE_TAGS`: writers may remove positions from the time machine for good.
    pub permanently_delete_tags: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            superusers: Vec::new(),
            anonymous_access: true,
            service: "berth".into(),
            token_lifetime_s: 3600,
            key_rotation_s: 7 * 24 * 3600,
            database_secret: None,
            lockout_failures: 10,
            backoff_base_ms: 1000,
            backoff_max_ms: 60_000,
            login_cache_s: 300,
            app_tokens: true,
            app_token_expiration_s: None,
            user_creation: true,
            audit_login_failures: true,
            audit_logins: true,
            ldap: None,
            oidc: Vec::new(),
            session_secret: None,
            session_cookie_secure: false,
            session_timeout_s: 31 * 86_400,
            tag_expiration_options: vec![0, 86_400, 7 * 86_400, 14 * 86_400, 28 * 86_400],
            direct_login: true,
            readonly: false,
            change_tag_expiration: true,
            permanently_delete_tags: false,
        }
    }
}

/// Closed sets of stored values (account kinds, roles, visibility), decoded at the database
/// boundary: a row never carries them as strings.
pub use berth_db::{
    AccountKind, GranteeKind, LabelSource, PruneMethod, QuotaLimitKind, Role, TeamRole, Visibility,
};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: i64,
    pub name: String,
    pub kind: AccountKind,
    pub superuser: bool,
    /// The credential used: password | app_token | robot_token | api_token | session | external
    pub via: &'static str,
    /// API token scopes; `None` for every other credential (all that the account may do).
    pub scopes: Option<Vec<String>>,
}

impl Actor {
    /// Whether the credential carries API scope `scope` (implied scopes included).
    pub fn has_scope(&self, scope: &str) -> bool {
        let Some(scopes) = &self.scopes else {
            return true;
        };
        let implied: &[&str] = match scope {
            "repo:read" => &["repo:read", "repo:write", "repo:admin"],
            "repo:write" => &["repo:write", "repo:admin"],
            "user:read" => &["user:read", "user:admin"],
            s => return scopes.iter().any(|x| x == s),
        };
        scopes.iter().any(|x| implied.contains(&x.as_str()))
    }
}

/// Identity and access services, shared by every request.
#[derive(Clone)]
pub struct Auth {
    pub(crate) db: Db,
    pub config: Arc<AuthConfig>,
    pub sealer: Sealer,
    pub keys: Arc<jwt::Keys>,
    pub audit: AuditLog,
    /// Browser sessions (and the signer of other browser-held state).
    pub sessions: session::Sessions,
    pub oidc: oidc::Oidc,
    /// Recently verified passwords, by keyed hash (see `verified.rs`).
    pub(crate) verified: Arc<verified::VerifiedLogins>,
    /// Per-account locks that serialise password checks (see `login.rs`).
    pub(crate) login_locks:
        Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The scopes an API token may carry, as Quay names them.
pub const API_SCOPES: &[&str] = &[
    "repo:read",
    "repo:write",
    "repo:admin",
    "repo:create",
    "user:read",
    "user:admin",
    "org:admin",
    "super:user",
];

impl Auth {
    /// Loads (or creates) the shared secret and the signing keys.
    pub async fn new(db: Db, config: AuthConfig) -> Result<Auth> {
        let audit = AuditLog::new(db.clone());
        Auth::with_audit(db, audit, config).await
    }

    /// As [`Auth::new`], writing to an existing audit log (the registry's, so that one buffer
    /// and one flusher serve both).
    pub(crate) async fn with_audit(db: Db, audit: AuditLog, config: AuthConfig) -> Result<Auth> {
        let secret = match &config.database_secret {
            Some(s) => s.clone(),
            None => {
                db.instance_secret("database_secret", &secret::random_token(48))
                    .await?
            }
        };
        let sealer = Sealer::new(&secret);
        let keys = Arc::new(jwt::Keys::new(
            db.clone(),
            sealer.clone(),
            config.key_rotation_s.saturating_mul(1000),
        ));
        keys.ensure(&config.service).await?;
        let session_secret = match &config.session_secret {
            Some(s) => s.clone(),
            None => {
                db.instance_secret("session_secret", &secret::random_token(48))
                    .await?
            }
        };
        let sessions = session::Sessions::new(&session_secret, config.session_timeout_s);
        let oidc = oidc::Oidc::new(&config.oidc)?;
        let verified = Arc::new(verified::VerifiedLogins::new(
            config.login_cache_s.saturating_mul(1000),
        ));
        Ok(Auth {
            db,
            sessions,
            oidc,
            config: Arc::new(config),
            sealer,
            keys,
            audit,
            verified,
            login_locks: Arc::default(),
        })
    }

    /// Whether an account is a superuser (flag in the database or named in `SUPER_USERS`).
    pub fn is_superuser(&self, row: &crate::Account) -> bool {
        row.kind == AccountKind::User
            && (row.superuser || self.config.superusers.contains(&row.name))
    }

    pub fn actor(&self, row: &crate::Account, via: &'static str) -> Actor {
        Actor {
            id: row.id,
            name: row.name.clone(),
            kind: row.kind,
            superuser: self.is_superuser(row),
            via,
            scopes: None,
        }
    }
}
