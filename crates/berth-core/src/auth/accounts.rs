//! Account management: users here; organizations and teams (`orgs.rs`), robots (`robots.rs`),
//! repositories and permissions (`permissions.rs`), tokens (`tokens.rs`). Every operation checks
//! that the actor may perform it and writes an audit entry (Quay's log kind names) before it
//! returns.

use super::audit::AuditEntry;
use super::secret::hash_password;
use super::{AccountKind, Actor, Auth};
use crate::{Account, Team};
use crate::{Error, Result};
use berth_db::{AccountUpdate, NewAccount};
use std::sync::LazyLock;

pub(super) static ROBOT_SHORT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-z][a-z0-9_]{1,254}$").unwrap_or_else(|_| unreachable!())
});
pub(super) static TEAM: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-zA-Z][a-zA-Z0-9_]{1,254}$").unwrap_or_else(|_| unreachable!())
});

/// The team every organization has; its members administer the organization.
pub const OWNERS_TEAM: &str = "owners";

/// Checks a user or organization name (it is also a namespace).
pub fn check_namespace_name(name: &str) -> Result<()> {
    // A namespace is the first component of repository names: the OCI path-component grammar
    // (checked without a regex, so that creating the first superuser at start does not
    // compile one).
    if name.len() > 255 || !berth_oci::name::valid_component(name) {
        return Err(Error::invalid(format!(
            "invalid name {name:?}: up to 255 lowercase letters and digits, separated by '.', '_', '__' or dashes"
        )));
    }
    Ok(())
}

/// How an actor relates to an organization.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrgRole {
    pub member: bool,
    pub creator: bool,
    pub admin: bool,
}

/// Changes to a user.
#[derive(Debug, Default)]
pub struct UserChanges<'a> {
    pub password: Option<&'a str>,
    pub email: Option<&'a str>,
    pub enabled: Option<bool>,
    pub superuser: Option<bool>,
    pub tag_expiration_s: Option<i64>,
}

/// An app-specific or API token as created: the row plus the secret, shown once.
pub struct NewToken<T> {
    pub row: T,
    pub token: String,
}

impl Auth {
    pub(super) fn audit_actor(&self, actor: Option<&Actor>, kind: &str) -> AuditEntry {
        AuditEntry::new(kind).by(actor)
    }

    pub async fn account(&self, name: &str) -> Result<Option<Account>> {
        Ok(self.db.account_by_name(name).await?.map(Account::from))
    }

    pub(super) async fn account_of_kind(&self, name: &str, kind: AccountKind) -> Result<Account> {
        match self.db.account_by_name(name).await? {
            Some(a) if a.kind == kind => Ok(a.into()),
            _ => Err(Error::not_found(format!(
                "no {} named {name:?}",
                match kind {
                    AccountKind::User => "user",
                    AccountKind::Org => "organization",
                    AccountKind::Robot => "robot account",
                }
            ))),
        }
    }

    pub async fn user(&self, name: &str) -> Result<Account> {
        self.account_of_kind(name, AccountKind::User).await
    }

    pub async fn org(&self, name: &str) -> Result<Account> {
        self.account_of_kind(name, AccountKind::Org).await
    }

    /// A namespace's time-machine window must be one of `TAG_EXPIRATION_OPTIONS`.
    pub(super) fn check_tag_expiration(&self, secs: i64) -> Result<()> {
        let options = &self.config.tag_expiration_options;
        if secs < 0 || (!options.is_empty() && !options.contains(&secs)) {
            return Err(Error::invalid(format!(
                "tag_expiration_s must be one of {options:?} (TAG_EXPIRATION_OPTIONS, in seconds)"
            )));
        }
        Ok(())
    }

    // ---- users ----------------------------------------------------------------------------

    /// Creates a user. `actor` `None`: the CLI, first start, self sign-up or an external login.
    pub async fn create_user(
        &self,
        actor: Option<&Actor>,
        username: &str,
        password: Option<&str>,
        email: Option<&str>,
        superuser: bool,
    ) -> Result<Account> {
        self.create_user_with(actor, username, password, email, superuser, false)
            .await
    }

    async fn create_user_with(
        &self,
        actor: Option<&Actor>,
        username: &str,
        password: Option<&str>,
        email: Option<&str>,
        superuser: bool,
        only_first_user: bool,
    ) -> Result<Account> {
        check_namespace_name(username)?;
        if let Some(p) = password
            && p.len() < 8
        {
            return Err(Error::invalid("the password must be at least 8 characters"));
        }
        let hash = match password {
            Some(p) => Some(hash_password(p).await),
            None => None,
        };
        let id = self
            .db
            .create_account(&NewAccount {
                name: username,
                kind: AccountKind::User,
                email,
                password_hash: hash.as_deref(),
                superuser,
                only_first_user,
                ..NewAccount::default()
            }, false)
            .await?
            .ok_or_else(|| {
                if only_first_user {
                    return Error::invalid("cannot initialize: the registry already has users");
                }
                Error::exists(format!(
                    "the name {username:?} (or the email) is already taken by a user, organization or robot"
                ))
            })?;
        self.audit
            .record(
                self.audit_actor(actor, "user_create")
                    .namespace(username)
                    .meta(serde_json::json!({"username": username, "email": email, "superuser": superuser})),
            )
            .await;
        self.db
            .account_by_id(id)
            .await?
            .map(Account::from)
            .ok_or_else(|| Error::Internal("created user vanished".into()))
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        c: &UserChanges<'_>,
    ) -> Result<Account> {
        let target = self.user(username).await?;
        let is_self = actor.id == target.id;
        if !is_self {
            super::authz::require_superuser(actor)?;
        } else if !actor.has_scope("user:admin") {
            return Err(Error::denied("this token lacks the user:admin scope"));
        }
        if (c.enabled.is_some() || c.superuser.is_some()) && !actor.superuser {
            return Err(Error::denied(
                "only a superuser may enable, disable or promote users",
            ));
        }
        // A superuser cannot shut themself out: another superuser must do it.
        if is_self && (c.enabled == Some(false) || c.superuser == Some(false) && actor.superuser) {
            return Err(Error::invalid(
                "you cannot disable your own account or drop your own superuser role: ask another superuser",
            ));
        }
        // Validate every change before applying any, so that a refused request changes nothing.
        if c.password.is_some_and(|p| p.len() < 8) {
            return Err(Error::invalid("the password must be at least 8 characters"));
        }
        if let Some(t) = c.tag_expiration_s {
            self.check_tag_expiration(t)?;
        }
        if let Some(e) = c.email
            && let Some(other) = self.db.account_by_email(e).await?
            && other.id != target.id
        {
            return Err(Error::exists("that email is already used by another user"));
        }
        let mut changed = Vec::new();
        if let Some(p) = c.password {
            let h = hash_password(p).await;
            self.db
                .update_account(target.id, AccountUpdate::PasswordHash(Some(&h)))
                .await?;
            self.forget_logins(target.id);
            // A first superuser whose generated password was never shown now has one that is.
            if self.unshown_bootstrap_user().await?.as_deref() == Some(target.name.as_str()) {
                self.bootstrap_password_shown().await?;
            }
            changed.push("password");
        }
        if let Some(e) = c.email {
            self.db
                .update_account(target.id, AccountUpdate::Email(Some(e)))
                .await?;
            changed.push("email");
        }
        if let Some(b) = c.enabled {
            self.db
                .update_account(target.id, AccountUpdate::Enabled(b))
                .await?;
            if !b {
                self.forget_logins(target.id);
            }
            changed.push("enabled");
        }
        if let Some(b) = c.superuser {
            self.db
                .update_account(target.id, AccountUpdate::Superuser(b))
                .await?;
            changed.push("superuser");
        }
        if let Some(s) = c.tag_expiration_s {
            self.db
                .update_account(target.id, AccountUpdate::TagExpiration(Some(s)))
                .await?;
            changed.push("tag_expiration_s");
        }
        let kind = if changed == ["password"] {
            "user_change_password"
        } else {
            "user_change"
        };
        self.audit
            .record(
                self.audit_actor(Some(actor), kind)
                    .namespace(username)
                    .meta(serde_json::json!({"username": username, "changed": changed})),
            )
            .await;
        self.user(username).await
    }

    /// Deletes a user or organization (only once its namespace holds no repositories).
    pub async fn delete_namespace_account(&self, actor: &Actor, name: &str) -> Result<()> {
        let row = self
            .db
            .account_by_name(name)
            .await?
            .filter(|r| r.kind != AccountKind::Robot)
            .ok_or_else(|| Error::not_found(format!("no user or organization named {name:?}")))?;
        let allowed = super::authz::require_superuser(actor).is_ok()
            || (row.kind == AccountKind::User
                && row.id == actor.id
                && actor.has_scope("user:admin"))
            || (row.kind == AccountKind::Org
                && self.org_role(actor, &Account::from(&row)).await?.admin
                && actor.has_scope("org:admin"));
        if !allowed {
            return Err(Error::denied(format!("you may not delete {name:?}")));
        }
        if row.kind == AccountKind::User {
            for (org, t) in self.db.teams_of_account(row.id).await? {
                if t.name == OWNERS_TEAM && t.member_count <= 1 {
                    return Err(Error::conflict(format!(
                        "{name:?} is the last member of the owners team of {org:?}: add another owner or delete the organization first"
                    )));
                }
            }
        }
        // The repositories' purge jobs commit with their deletion, or neither does.
        let mut w = self.db.write().await?;
        for repo_id in self.db.delete_account_in(&mut w, row.id).await? {
            crate::jobs::enqueue(&self.db, &mut w, &crate::jobs::DeleteRepo { repo_id }).await?;
        }
        w.commit().await?;
        self.forget_logins(row.id);
        let kind = if row.kind == AccountKind::Org {
            "org_delete"
        } else {
            "user_delete"
        };
        self.audit
            .record(
                self.audit_actor(Some(actor), kind)
                    .namespace(name)
                    .meta(serde_json::json!({"name": name})),
            )
            .await;
        Ok(())
    }

    /// Clears a user's failed logins (unlocks it).
    /// A user created by a superuser (`POST /api/v1/superuser/users/`).
    pub async fn create_user_as(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        email: Option<&str>,
        superuser: bool,
    ) -> Result<Account> {
        super::authz::require_superuser(actor)?;
        self.create_user(Some(actor), username, Some(password), email, superuser)
            .await
    }

    /// Self-service sign-up, where `FEATURE_USER_CREATION` allows it.
    pub async fn sign_up(
        &self,
        caller: Option<&Actor>,
        username: &str,
        password: &str,
        email: Option<&str>,
    ) -> Result<Account> {
        if !self.config.user_creation {
            return Err(Error::denied(
                "self-service sign-up is disabled (FEATURE_USER_CREATION); ask a superuser",
            ));
        }
        self.create_user(caller, username, Some(password), email, false)
            .await
    }

    /// Quay's bootstrap (`FEATURE_USER_INITIALIZE`): the first user of an empty registry, a
    /// superuser, with an API token carrying every scope when `with_token`.
    pub async fn initialize(
        &self,
        username: &str,
        password: &str,
        email: Option<&str>,
        with_token: bool,
    ) -> Result<(Account, Option<String>)> {
        if self.has_users().await? {
            return Err(Error::invalid(
                "cannot initialize: the registry already has users",
            ));
        }
        let row = self
            .create_user_with(None, username, Some(password), email, true, true)
            .await?;
        let token = if with_token {
            let actor = self.actor(&row, "password");
            let scopes: Vec<String> = super::API_SCOPES.iter().map(|s| s.to_string()).collect();
            Some(
                self.create_api_token(&actor, "initialize", &scopes, None)
                    .await?
                    .token,
            )
        } else {
            None
        };
        Ok((row, token))
    }

    /// A user as a superuser administers it: the account and the sources locked out of its
    /// password logins.
    pub async fn user_status(&self, actor: &Actor, username: &str) -> Result<UserStatus> {
        super::authz::require_superuser(actor)?;
        let account = self.user(username).await?;
        let locked_sources = self.locked_sources(&account).await?;
        Ok(UserStatus {
            account,
            locked_sources,
        })
    }

    /// A signed-in user changes their own password, proving they know the current one (a
    /// stolen session alone cannot take the account). The check is a login: throttled, counted
    /// and audited like one.
    pub async fn change_own_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
        ip: Option<&str>,
    ) -> Result<()> {
        let me = self.user(&actor.name).await?;
        if me.id != actor.id || actor.kind != AccountKind::User {
            return Err(Error::denied("only a user may change their own password"));
        }
        if !me.has_password {
            return Err(Error::invalid(
                "this account signs in through LDAP or an OIDC provider: change its password there",
            ));
        }
        let ctx = super::login::LoginContext {
            ip,
            channel: "password_change",
        };
        match self.login(&actor.name, current, &ctx).await? {
            Ok(_) => {}
            Err(super::LoginError::Throttled { retry_after_s }) => {
                return Err(Error::Throttled {
                    retry_after_s,
                    detail: format!("too many wrong passwords: try again in {retry_after_s} s"),
                });
            }
            Err(_) => {
                return Err(Error::denied(
                    "the current password is not right: nothing was changed",
                ));
            }
        }
        self.update_user(
            actor,
            &actor.name,
            &UserChanges {
                password: Some(new),
                ..UserChanges::default()
            },
        )
        .await
        .map(|_| ())
    }

    /// Deletes a user (not an organization) on a superuser's behalf.
    pub async fn delete_user(&self, actor: &Actor, username: &str) -> Result<()> {
        super::authz::require_superuser(actor)?;
        if self.user(username).await?.id == actor.id {
            return Err(Error::invalid(
                "you cannot delete your own account here: ask another superuser",
            ));
        }
        self.delete_namespace_account(actor, username).await
    }

    pub async fn reset_login(&self, actor: Option<&Actor>, username: &str) -> Result<()> {
        if let Some(a) = actor {
            super::authz::require_superuser(a)?;
        }
        let row = self.user(username).await?;
        self.db.reset_login_failures(row.id).await?;
        self.audit
            .record(
                self.audit_actor(actor, "user_login_reset")
                    .namespace(username)
                    .meta(serde_json::json!({"username": username, "failures": row.failed_logins})),
            )
            .await;
        Ok(())
    }
}

/// A user with the sources locked out of its password logins (`Auth::user_status`).
#[derive(Debug, Clone)]
pub struct UserStatus {
    pub account: Account,
    pub locked_sources: Vec<String>,
}

/// A permission grantee as resolved.
#[derive(Debug, Clone)]
pub enum PermHolder {
    Account(Account),
    Team(Team),
}

#[cfg(test)]
mod tests {
    use super::check_namespace_name;

    #[test]
    fn namespace_names_follow_the_path_component_grammar() {
        for ok in [
            "admin",
            "a",
            "0",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a1.b2_c3__d4-e5",
        ] {
            assert!(check_namespace_name(ok).is_ok(), "{ok:?}");
        }
        let long = "a".repeat(256);
        for bad in [
            "", "A", "aB", "_a", "a_", ".a", "a.", "-a", "a-", "a___b", "a..b", "a._b", "a/b",
            "a b", "é", &long,
        ] {
            assert!(check_namespace_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_namespace_name(&"a".repeat(255)).is_ok());
    }
}
