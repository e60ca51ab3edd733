//! Account management: users, organizations, teams, robots, repository permissions, default
//! permissions and tokens. Every operation checks that the actor may perform it and writes an
//! audit entry (Quay's log kind names) before it returns.

use super::audit::AuditEntry;
use super::authz::Role;
use super::secret::{hash_password, random_token, random_upper_token, token_hash};
use super::{API_SCOPES, AccountKind, Actor, Auth};
use crate::{Error, Result};
use berth_db::{
    AccountRow, AccountUpdate, ApiTokenRow, AppTokenRow, DefaultPermRow, Grantee, NewAccount,
    NewRepo, RepoRow, TeamRow, now_ms,
};
use std::sync::LazyLock;

static NAME: LazyLock<regex::Regex> = LazyLock::new(|| {
    // A namespace is the first component of repository names: the OCI path-component grammar.
    regex::Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").unwrap_or_else(|_| unreachable!())
});
static ROBOT_SHORT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-z][a-z0-9_]{1,254}$").unwrap_or_else(|_| unreachable!())
});
static TEAM: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-zA-Z][a-zA-Z0-9_]{1,254}$").unwrap_or_else(|_| unreachable!())
});

/// The team every organization has; its members administer the organization.
pub const OWNERS_TEAM: &str = "owners";

/// Checks a user or organization name (it is also a namespace).
pub fn check_namespace_name(name: &str) -> Result<()> {
    if name.len() > 255 || !NAME.is_match(name) {
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
    fn audit_actor(&self, actor: Option<&Actor>, kind: &str) -> AuditEntry {
        AuditEntry::new(kind).by(actor)
    }

    pub async fn account(&self, name: &str) -> Result<Option<AccountRow>> {
        Ok(self.db.account_by_name(name).await?)
    }

    async fn account_of_kind(&self, name: &str, kind: AccountKind) -> Result<AccountRow> {
        match self.db.account_by_name(name).await? {
            Some(a) if a.kind == kind.as_str() => Ok(a),
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

    pub async fn user(&self, name: &str) -> Result<AccountRow> {
        self.account_of_kind(name, AccountKind::User).await
    }

    pub async fn org(&self, name: &str) -> Result<AccountRow> {
        self.account_of_kind(name, AccountKind::Org).await
    }

    fn require_superuser(actor: &Actor) -> Result<()> {
        if actor.superuser && actor.has_scope("super:user") {
            Ok(())
        } else {
            Err(Error::forbidden("only a superuser may do this"))
        }
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
    ) -> Result<AccountRow> {
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
                kind: "user",
                email,
                password_hash: hash.as_deref(),
                superuser,
                ..NewAccount::default()
            }, false)
            .await?
            .ok_or_else(|| {
                Error::conflict(format!(
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
            .ok_or_else(|| Error::Internal("created user vanished".into()))
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        c: &UserChanges<'_>,
    ) -> Result<AccountRow> {
        let target = self.user(username).await?;
        let is_self = actor.id == target.id;
        if !is_self {
            Self::require_superuser(actor)?;
        } else if !actor.has_scope("user:admin") {
            return Err(Error::forbidden("this token lacks the user:admin scope"));
        }
        if (c.enabled.is_some() || c.superuser.is_some()) && !actor.superuser {
            return Err(Error::forbidden(
                "only a superuser may enable, disable or promote users",
            ));
        }
        // Validate every change before applying any, so that a refused request changes nothing.
        if c.password.is_some_and(|p| p.len() < 8) {
            return Err(Error::invalid("the password must be at least 8 characters"));
        }
        if c.tag_expiration_s.is_some_and(|s| s < 0) {
            return Err(Error::invalid("tag_expiration_s must not be negative"));
        }
        if let Some(e) = c.email
            && let Some(other) = self.db.account_by_email(e).await?
            && other.id != target.id
        {
            return Err(Error::conflict(
                "that email is already used by another user",
            ));
        }
        let mut changed = Vec::new();
        if let Some(p) = c.password {
            let h = hash_password(p).await;
            self.db
                .update_account(target.id, AccountUpdate::PasswordHash(Some(&h)))
                .await?;
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
            .filter(|r| r.kind != "robot")
            .ok_or_else(|| Error::not_found(format!("no user or organization named {name:?}")))?;
        let allowed = actor.superuser
            || (row.kind == "user" && row.id == actor.id && actor.has_scope("user:admin"))
            || (row.kind == "org"
                && self.org_role(actor, &row).await?.admin
                && actor.has_scope("org:admin"));
        if !allowed {
            return Err(Error::forbidden(format!("you may not delete {name:?}")));
        }
        if row.kind == "user" {
            for (org, t) in self.db.teams_of_account(row.id).await? {
                if t.name == OWNERS_TEAM && t.member_count <= 1 {
                    return Err(Error::conflict(format!(
                        "{name:?} is the last member of the owners team of {org:?}: add another owner or delete the organization first"
                    )));
                }
            }
        }
        if !self.db.delete_account(row.id).await? {
            return Err(Error::conflict(format!(
                "{name:?} still owns repositories; delete them first"
            )));
        }
        let kind = if row.kind == "org" {
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
    pub async fn reset_login(&self, actor: Option<&Actor>, username: &str) -> Result<()> {
        if let Some(a) = actor {
            Self::require_superuser(a)?;
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

    // ---- organizations and teams ----------------------------------------------------------

    pub async fn org_role(&self, actor: &Actor, org: &AccountRow) -> Result<OrgRole> {
        let mut r = OrgRole::default();
        for (org_name, t) in self.db.teams_of_account(actor.id).await? {
            if org_name == org.name {
                r.member = true;
                match t.role.as_str() {
                    "admin" => {
                        r.admin = true;
                        r.creator = true;
                    }
                    "creator" => r.creator = true,
                    _ => {}
                }
            }
        }
        if actor.superuser {
            r.admin = true;
            r.creator = true;
        }
        Ok(r)
    }

    /// The organization, if `actor` administers it (and the credential carries `org:admin`).
    pub async fn org_admin(&self, actor: &Actor, org: &str) -> Result<AccountRow> {
        let row = self.org(org).await?;
        if !actor.has_scope("org:admin") || !self.org_role(actor, &row).await?.admin {
            return Err(Error::forbidden(format!(
                "you must be an administrator of organization {org:?}"
            )));
        }
        Ok(row)
    }

    /// Creates an organization with an `owners` team holding its creator.
    pub async fn create_org(
        &self,
        actor: &Actor,
        name: &str,
        email: Option<&str>,
    ) -> Result<AccountRow> {
        if actor.kind != AccountKind::User || !actor.has_scope("user:admin") {
            return Err(Error::forbidden("only users may create organizations"));
        }
        self.create_org_inner(Some(actor), name, email).await
    }

    async fn create_org_inner(
        &self,
        actor: Option<&Actor>,
        name: &str,
        email: Option<&str>,
    ) -> Result<AccountRow> {
        check_namespace_name(name)?;
        let id = self
            .db
            .create_account(&NewAccount {
                name,
                kind: "org",
                email,
                ..NewAccount::default()
            }, actor.is_some_and(|a| a.superuser))
            .await?
            .ok_or_else(|| Error::conflict(format!(
                "the name {name:?} is already taken (by an account, or by a namespace holding data from before accounts existed, which only a superuser may adopt)"
            )))?;
        let (team, _) = self
            .db
            .upsert_team(id, OWNERS_TEAM, "admin", Some("Owners of the organization"))
            .await?;
        if let Some(a) = actor {
            self.db.add_team_member(team, a.id).await?;
        }
        self.audit
            .record(
                self.audit_actor(actor, "org_create")
                    .namespace(name)
                    .meta(serde_json::json!({"name": name, "email": email})),
            )
            .await;
        self.db
            .account_by_id(id)
            .await?
            .ok_or_else(|| Error::Internal("created organization vanished".into()))
    }

    pub async fn update_org(
        &self,
        actor: &Actor,
        org: &AccountRow,
        email: Option<&str>,
        tag_expiration_s: Option<i64>,
    ) -> Result<()> {
        if let Some(e) = email {
            self.db
                .update_account(org.id, AccountUpdate::Email(Some(e)))
                .await?;
        }
        if let Some(s) = tag_expiration_s {
            if s < 0 {
                return Err(Error::invalid("tag_expiration_s must not be negative"));
            }
            self.db
                .update_account(org.id, AccountUpdate::TagExpiration(Some(s)))
                .await?;
        }
        self.audit
            .record(
                self.audit_actor(Some(actor), "org_change")
                    .namespace(&org.name)
                    .meta(
                        serde_json::json!({"email": email, "tag_expiration_s": tag_expiration_s}),
                    ),
            )
            .await;
        Ok(())
    }

    /// Removes an account from every team of an organization (not the last owner).
    pub async fn remove_org_member(&self, actor: &Actor, org: &str, member: &str) -> Result<()> {
        let o = self.org_admin(actor, org).await?;
        let m = self
            .db
            .account_by_name(member)
            .await?
            .ok_or_else(|| Error::not_found(format!("no user or robot named {member:?}")))?;
        if let Some(owners) = self.db.team(o.id, OWNERS_TEAM).await? {
            let members = self.db.team_members(owners.id).await?;
            if members.len() == 1 && members.iter().any(|(id, _, _)| *id == m.id) {
                return Err(Error::invalid(
                    "the last member of the owners team cannot be removed: the organization would have no administrator",
                ));
            }
        }
        if self.db.remove_org_member(o.id, m.id).await? == 0 {
            return Err(Error::not_found(format!(
                "{member:?} is not a member of {org:?}"
            )));
        }
        self.audit
            .record(
                self.audit_actor(Some(actor), "org_remove_member")
                    .namespace(org)
                    .meta(serde_json::json!({"member": member})),
            )
            .await;
        Ok(())
    }

    pub async fn set_team(
        &self,
        actor: &Actor,
        org: &str,
        team: &str,
        role: &str,
        description: Option<&str>,
    ) -> Result<(TeamRow, bool)> {
        let o = self.org_admin(actor, org).await?;
        if !TEAM.is_match(team) {
            return Err(Error::invalid(format!(
                "invalid team name {team:?}: a letter, then letters, digits or '_' (2 to 255)"
            )));
        }
        if !["member", "creator", "admin"].contains(&role) {
            return Err(Error::invalid("role must be one of member, creator, admin"));
        }
        if team == OWNERS_TEAM && role != "admin" {
            return Err(Error::invalid("the owners team always has the admin role"));
        }
        let (_, created) = self.db.upsert_team(o.id, team, role, description).await?;
        self.audit
            .record(
                self.audit_actor(
                    Some(actor),
                    if created {
                        "org_create_team"
                    } else {
                        "org_set_team_role"
                    },
                )
                .namespace(org)
                .meta(serde_json::json!({"team": team, "role": role, "description": description})),
            )
            .await;
        let t = self
            .db
            .team(o.id, team)
            .await?
            .ok_or_else(|| Error::Internal("team vanished".into()))?;
        Ok((t, created))
    }

    pub async fn team(&self, org: &AccountRow, team: &str) -> Result<TeamRow> {
        self.db
            .team(org.id, team)
            .await?
            .ok_or_else(|| Error::not_found(format!("no team {team:?} in {:?}", org.name)))
    }

    pub async fn delete_team(&self, actor: &Actor, org: &str, team: &str) -> Result<()> {
        let o = self.org_admin(actor, org).await?;
        if team == OWNERS_TEAM {
            return Err(Error::invalid("the owners team cannot be deleted"));
        }
        let t = self.team(&o, team).await?;
        self.db.delete_team(t.id).await?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "org_delete_team")
                    .namespace(org)
                    .meta(serde_json::json!({"team": team})),
            )
            .await;
        Ok(())
    }

    /// Adds a user, or a robot of the organization, to a team.
    pub async fn add_team_member(
        &self,
        actor: &Actor,
        org: &str,
        team: &str,
        member: &str,
    ) -> Result<AccountRow> {
        let o = self.org_admin(actor, org).await?;
        let t = self.team(&o, team).await?;
        let m = self
            .db
            .account_by_name(member)
            .await?
            .ok_or_else(|| Error::not_found(format!("no user or robot named {member:?}")))?;
        match m.kind.as_str() {
            "user" => {}
            "robot" if m.owner_id == Some(o.id) => {}
            "robot" => {
                return Err(Error::invalid(format!(
                    "{member:?} is a robot of another namespace; only {org}+... robots may join its teams"
                )));
            }
            _ => return Err(Error::invalid("an organization cannot be a team member")),
        }
        self.db.add_team_member(t.id, m.id).await?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "org_add_team_member")
                    .namespace(org)
                    .meta(serde_json::json!({"team": team, "member": member})),
            )
            .await;
        Ok(m)
    }

    pub async fn remove_team_member(
        &self,
        actor: &Actor,
        org: &str,
        team: &str,
        member: &str,
    ) -> Result<()> {
        let o = self.org_admin(actor, org).await?;
        let t = self.team(&o, team).await?;
        let m = self
            .db
            .account_by_name(member)
            .await?
            .ok_or_else(|| Error::not_found(format!("no user or robot named {member:?}")))?;
        if team == OWNERS_TEAM && t.member_count <= 1 {
            return Err(Error::invalid(
                "the last member of the owners team cannot be removed: the organization would have no administrator",
            ));
        }
        if !self.db.remove_team_member(t.id, m.id).await? {
            return Err(Error::not_found(format!(
                "{member:?} is not a member of {team:?}"
            )));
        }
        self.audit
            .record(
                self.audit_actor(Some(actor), "org_remove_team_member")
                    .namespace(org)
                    .meta(serde_json::json!({"team": team, "member": member})),
            )
            .await;
        Ok(())
    }

    // ---- robots --------------------------------------------------------------------------

    /// The owner namespace account of robots named `ns+...`, if `actor` may manage them.
    pub async fn robot_owner(&self, actor: &Actor, ns: &str) -> Result<AccountRow> {
        let owner = self
            .db
            .account_by_name(ns)
            .await?
            .filter(|a| a.kind != "robot")
            .ok_or_else(|| Error::not_found(format!("no user or organization named {ns:?}")))?;
        let ok = match owner.kind.as_str() {
            "user" => (owner.id == actor.id && actor.has_scope("user:admin")) || actor.superuser,
            _ => actor.has_scope("org:admin") && self.org_role(actor, &owner).await?.admin,
        };
        if !ok {
            return Err(Error::forbidden(format!(
                "you may not manage the robots of {ns:?}"
            )));
        }
        Ok(owner)
    }

    pub async fn robot(
        &self,
        actor: &Actor,
        ns: &str,
        short: &str,
    ) -> Result<(AccountRow, String)> {
        let owner = self.robot_owner(actor, ns).await?;
        let name = format!("{ns}+{short}");
        let row = self
            .db
            .account_by_name(&name)
            .await?
            .filter(|r| r.kind == "robot" && r.owner_id == Some(owner.id))
            .ok_or_else(|| Error::not_found(format!("no robot account {name:?}")))?;
        let token = self.robot_token(&row);
        Ok((row, token))
    }

    pub fn robot_token(&self, row: &AccountRow) -> String {
        row.token_sealed
            .as_deref()
            .and_then(|s| self.sealer.open_string(s))
            .unwrap_or_default()
    }

    pub async fn create_robot(
        &self,
        actor: &Actor,
        ns: &str,
        short: &str,
        description: Option<&str>,
        metadata: Option<&serde_json::Value>,
    ) -> Result<(AccountRow, String)> {
        let owner = self.robot_owner(actor, ns).await?;
        if !ROBOT_SHORT.is_match(short) {
            return Err(Error::invalid(format!(
                "invalid robot name {short:?}: a lowercase letter, then lowercase letters, digits or '_' (2 to 255)"
            )));
        }
        let name = format!("{ns}+{short}");
        let token = random_upper_token(64);
        let hash = token_hash(&token);
        let sealed = self.sealer.seal(token.as_bytes());
        let meta = metadata.map(|m| m.to_string());
        self.db
            .create_account(
                &NewAccount {
                    name: &name,
                    kind: "robot",
                    owner_id: Some(owner.id),
                    token_hash: Some(&hash),
                    token_sealed: Some(&sealed),
                    description,
                    metadata: meta.as_deref(),
                    ..NewAccount::default()
                },
                false,
            )
            .await?
            .ok_or_else(|| Error::conflict(format!("robot {name:?} already exists")))?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "create_robot")
                    .namespace(ns)
                    .meta(serde_json::json!({"robot": name})),
            )
            .await;
        self.robot(actor, ns, short).await
    }

    pub async fn regenerate_robot(
        &self,
        actor: &Actor,
        ns: &str,
        short: &str,
    ) -> Result<(AccountRow, String)> {
        let (row, _) = self.robot(actor, ns, short).await?;
        let token = random_upper_token(64);
        let sealed = self.sealer.seal(token.as_bytes());
        self.db
            .update_account(
                row.id,
                AccountUpdate::RobotToken {
                    hash: &token_hash(&token),
                    sealed: &sealed,
                },
            )
            .await?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "regenerate_robot_token")
                    .namespace(ns)
                    .meta(serde_json::json!({"robot": row.name})),
            )
            .await;
        self.robot(actor, ns, short).await
    }

    pub async fn delete_robot(&self, actor: &Actor, ns: &str, short: &str) -> Result<()> {
        let (row, _) = self.robot(actor, ns, short).await?;
        self.db.delete_account(row.id).await?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "delete_robot")
                    .namespace(ns)
                    .meta(serde_json::json!({"robot": row.name})),
            )
            .await;
        Ok(())
    }

    // ---- repositories and permissions ----------------------------------------------------

    pub async fn repo_row(&self, repo: &str) -> Result<RepoRow> {
        self.db
            .repo(repo)
            .await?
            .ok_or_else(|| Error::not_found(format!("repository {repo:?} not found")))
    }

    /// The repository, if `actor` holds at least `role` on it; otherwise 404 to callers who may not
    /// even read it (its existence stays private), 403 to the others.
    pub async fn repo_with_role(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        role: Role,
    ) -> Result<RepoRow> {
        let access = self.repo_access(actor, repo).await?;
        if !access.exists || access.role.is_none() {
            return Err(Error::not_found(format!("repository {repo:?} not found")));
        }
        if !access.allows(role) {
            return Err(Error::forbidden(format!(
                "this needs {} permission on {repo:?}",
                role.as_str()
            )));
        }
        self.repo_row(repo).await
    }

    /// Creates a repository (API or first push): in a namespace the actor may create in, with the
    /// organization's default permissions, and admin for a creator who is not already an admin.
    /// A superuser pushing into a namespace nobody owns makes it an organization they own.
    pub async fn create_repo(
        &self,
        actor: &Actor,
        repo: &str,
        visibility: &str,
        description: Option<&str>,
        ip: Option<&str>,
    ) -> Result<i64> {
        let access = self.repo_access(Some(actor), repo).await?;
        if access.exists {
            return Err(Error::conflict(format!(
                "repository {repo:?} already exists"
            )));
        }
        let ns = repo.split('/').next().unwrap_or(repo);
        if !access.can_create {
            return Err(Error::forbidden(if access.namespace_exists {
                format!(
                    "you may not create repositories in {ns:?}: ask an administrator of {ns:?} for the creator role or a team with it"
                )
            } else {
                format!(
                    "namespace {ns:?} does not exist: push to your own namespace or create the organization first (POST /api/v1/organization/)"
                )
            }));
        }
        if !["public", "private"].contains(&visibility) {
            return Err(Error::invalid("visibility must be public or private"));
        }
        if !access.namespace_exists {
            match self.create_org_inner(Some(actor), ns, None).await {
                Ok(_) | Err(Error::Request { status: 409, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let own_namespace = actor.kind == AccountKind::User && actor.name == ns;
        let org_admin = match self.db.account_by_name(ns).await? {
            Some(o) if o.kind == "org" => self.org_role(actor, &o).await?.admin,
            _ => false,
        };
        let creator_admin = (!own_namespace && !org_admin).then_some(actor.id);
        let id = match self
            .db
            .create_repo(&NewRepo {
                name: repo,
                namespace: ns,
                visibility,
                description,
                creator: Some(actor.id),
                creator_admin,
            })
            .await?
        {
            Some(id) => id,
            // Created concurrently by another request: fine for a push.
            None => return self.repo_row(repo).await.map(|r| r.id),
        };
        self.audit
            .record(
                AuditEntry::new("create_repo")
                    .by(Some(actor))
                    .repo(repo)
                    .ip(ip)
                    .meta(serde_json::json!({"repo": repo, "visibility": visibility})),
            )
            .await;
        Ok(id)
    }

    pub async fn set_visibility(&self, actor: &Actor, repo: &str, visibility: &str) -> Result<()> {
        let r = self.repo_with_role(Some(actor), repo, Role::Admin).await?;
        if !["public", "private"].contains(&visibility) {
            return Err(Error::invalid("visibility must be public or private"));
        }
        self.db.set_repo_visibility(r.id, visibility).await?;
        self.audit
            .record(
                AuditEntry::new("change_repo_visibility")
                    .by(Some(actor))
                    .repo(repo)
                    .meta(serde_json::json!({"visibility": visibility})),
            )
            .await;
        Ok(())
    }

    pub async fn set_description(
        &self,
        actor: &Actor,
        repo: &str,
        description: &str,
    ) -> Result<()> {
        let r = self.repo_with_role(Some(actor), repo, Role::Write).await?;
        self.db.set_repo_description(r.id, description).await?;
        self.audit
            .record(
                AuditEntry::new("set_repo_description")
                    .by(Some(actor))
                    .repo(repo)
                    .meta(serde_json::json!({"description": description})),
            )
            .await;
        Ok(())
    }

    /// Resolves a permission grantee by name within a repository's namespace: a user, a robot
    /// (`ns+name`), or (`team == true`) a team of the namespace's organization.
    pub async fn grantee(
        &self,
        repo: &RepoRow,
        name: &str,
        team: bool,
    ) -> Result<(Grantee, PermHolder)> {
        if team {
            let org = self.org(&repo.namespace).await.map_err(|_| {
                Error::invalid(format!(
                    "{:?} is not an organization: it has no teams",
                    repo.namespace
                ))
            })?;
            let t = self.team(&org, name).await?;
            return Ok((Grantee::Team(t.id), PermHolder::Team(t)));
        }
        let a = self
            .db
            .account_by_name(name)
            .await?
            .filter(|a| a.kind != "org")
            .ok_or_else(|| Error::not_found(format!("no user or robot named {name:?}")))?;
        if a.kind == "robot" && !a.name.starts_with(&format!("{}+", repo.namespace)) {
            return Err(Error::invalid(format!(
                "{name:?} is a robot of another namespace; only {}+... robots may hold permissions here",
                repo.namespace
            )));
        }
        Ok((Grantee::Account(a.id), PermHolder::Account(a)))
    }

    pub async fn set_permission(
        &self,
        actor: &Actor,
        repo: &str,
        name: &str,
        team: bool,
        role: &str,
    ) -> Result<PermHolder> {
        let r = self.repo_with_role(Some(actor), repo, Role::Admin).await?;
        if Role::parse(role).is_none() {
            return Err(Error::invalid("role must be one of read, write, admin"));
        }
        let (g, who) = self.grantee(&r, name, team).await?;
        self.db.set_repo_perm(r.id, g, role).await?;
        let kind = if team {
            "change_repo_permission_team"
        } else {
            "change_repo_permission"
        };
        self.audit
            .record(
                AuditEntry::new(kind).by(Some(actor)).repo(repo).meta(
                    serde_json::json!({if team {"team"} else {"username"}: name, "role": role}),
                ),
            )
            .await;
        Ok(who)
    }

    pub async fn delete_permission(
        &self,
        actor: &Actor,
        repo: &str,
        name: &str,
        team: bool,
    ) -> Result<()> {
        let r = self.repo_with_role(Some(actor), repo, Role::Admin).await?;
        let (g, _) = self.grantee(&r, name, team).await?;
        if !self.db.delete_repo_perm(r.id, g).await? {
            return Err(Error::not_found(format!(
                "{name:?} has no permission on {repo:?}"
            )));
        }
        let kind = if team {
            "delete_repo_permission_team"
        } else {
            "delete_repo_permission"
        };
        self.audit
            .record(
                AuditEntry::new(kind)
                    .by(Some(actor))
                    .repo(repo)
                    .meta(serde_json::json!({if team {"team"} else {"username"}: name})),
            )
            .await;
        Ok(())
    }

    // ---- default permissions -------------------------------------------------------------

    pub async fn create_default_perm(
        &self,
        actor: &Actor,
        org: &str,
        activating_user: Option<&str>,
        delegate: &str,
        delegate_is_team: bool,
        role: &str,
    ) -> Result<DefaultPermRow> {
        let o = self.org_admin(actor, org).await?;
        if Role::parse(role).is_none() {
            return Err(Error::invalid("role must be one of read, write, admin"));
        }
        let activating_id = match activating_user {
            Some(n) => Some(
                self.db
                    .account_by_name(n)
                    .await?
                    .filter(|a| a.kind != "org")
                    .ok_or_else(|| Error::not_found(format!("no user or robot named {n:?}")))?
                    .id,
            ),
            None => None,
        };
        let delegate_g = if delegate_is_team {
            Grantee::Team(self.team(&o, delegate).await?.id)
        } else {
            Grantee::Account(
                self.db
                    .account_by_name(delegate)
                    .await?
                    .filter(|a| a.kind != "org")
                    .ok_or_else(|| {
                        Error::not_found(format!("no user or robot named {delegate:?}"))
                    })?
                    .id,
            )
        };
        let row = DefaultPermRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            org_id: o.id,
            activating_id,
            delegate: delegate_g,
            role: role.to_string(),
        };
        self.db.insert_default_perm(&row).await?;
        self.audit
            .record(
                AuditEntry::new("create_prototype_permission")
                    .by(Some(actor))
                    .namespace(org)
                    .meta(serde_json::json!({"delegate": delegate, "role": role, "activating_user": activating_user})),
            )
            .await;
        Ok(row)
    }

    pub async fn update_default_perm(
        &self,
        actor: &Actor,
        org: &str,
        uuid: &str,
        role: &str,
    ) -> Result<()> {
        let o = self.org_admin(actor, org).await?;
        if Role::parse(role).is_none() {
            return Err(Error::invalid("role must be one of read, write, admin"));
        }
        if !self.db.update_default_perm(o.id, uuid, role).await? {
            return Err(Error::not_found(format!("no default permission {uuid:?}")));
        }
        self.audit
            .record(
                AuditEntry::new("modify_prototype_permission")
                    .by(Some(actor))
                    .namespace(org)
                    .meta(serde_json::json!({"id": uuid, "role": role})),
            )
            .await;
        Ok(())
    }

    pub async fn delete_default_perm(&self, actor: &Actor, org: &str, uuid: &str) -> Result<()> {
        let o = self.org_admin(actor, org).await?;
        if !self.db.delete_default_perm(o.id, uuid).await? {
            return Err(Error::not_found(format!("no default permission {uuid:?}")));
        }
        self.audit
            .record(
                AuditEntry::new("delete_prototype_permission")
                    .by(Some(actor))
                    .namespace(org)
                    .meta(serde_json::json!({"id": uuid})),
            )
            .await;
        Ok(())
    }

    // ---- tokens ---------------------------------------------------------------------------

    pub async fn create_app_token(
        &self,
        actor: &Actor,
        title: &str,
    ) -> Result<NewToken<AppTokenRow>> {
        if !self.config.app_tokens {
            return Err(Error::not_found(
                "app-specific tokens are disabled (FEATURE_APP_SPECIFIC_TOKENS)",
            ));
        }
        if actor.kind != AccountKind::User || !actor.has_scope("user:admin") {
            return Err(Error::forbidden(
                "only users may create app-specific tokens",
            ));
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
        Ok(NewToken { row, token })
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
    ) -> Result<NewToken<ApiTokenRow>> {
        if actor.kind != AccountKind::User {
            return Err(Error::forbidden("only users may create API tokens"));
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
                return Err(Error::forbidden(format!("you cannot grant scope {s:?}")));
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
        Ok(NewToken { row, token })
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
    pub async fn bootstrap_superuser(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> Result<Option<(AccountRow, Option<String>)>> {
        if self.db.count_accounts("user").await? > 0 {
            return Ok(None);
        }
        let generated = password.is_none().then(|| random_token(24));
        let pw = password.or(generated.as_deref());
        match self.create_user(None, username, pw, None, true).await {
            Ok(row) => Ok(Some((row, generated))),
            // Another instance created it at the same moment.
            Err(Error::Request { status: 409, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

pub type AppToken = AppTokenRow;
pub type ApiToken = ApiTokenRow;

/// A permission grantee as resolved.
#[derive(Debug, Clone)]
pub enum PermHolder {
    Account(AccountRow),
    Team(TeamRow),
}
