//! Repositories (creation, visibility, description), their user/robot/team permissions, and
//! organizations' default permissions.

use super::accounts::*;
use super::audit::AuditEntry;
use super::{AccountKind, Actor, Auth};
use super::{Role, Visibility};
use crate::Repository;
use crate::{Error, Result};
use berth_db::{DefaultPermRow, Grantee, NewRepo};

impl Auth {
    // ---- repositories and permissions ----------------------------------------------------

    pub async fn repo_row(&self, repo: &str) -> Result<Repository> {
        self.db
            .repo(repo)
            .await?
            .map(Repository::from)
            .ok_or_else(|| Error::not_found(format!("repository {repo:?} not found")))
    }

    /// The repository, if `actor` holds at least `role` on it; otherwise 404 to callers who may not
    /// even read it (its existence stays private), 403 to the others.
    pub async fn repo_with_role(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        role: Role,
    ) -> Result<Repository> {
        Ok(self.repo_and_access(actor, repo, role).await?.0)
    }

    /// [`Auth::repo_with_role`], with the caller's access it decided on.
    pub(crate) async fn repo_and_access(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        role: Role,
    ) -> Result<(Repository, super::RepoAccess)> {
        let access = self.repo_access(actor, repo).await?;
        if !access.exists || access.role.is_none() {
            return Err(Error::not_found(format!("repository {repo:?} not found")));
        }
        if !access.allows(role) {
            return Err(Error::denied(format!(
                "this needs {} permission on {repo:?}",
                role.as_str()
            )));
        }
        Ok((self.repo_row(repo).await?, access))
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
        if repo.parse::<berth_oci::RepoName>().is_err() {
            return Err(Error::invalid(format!(
                "invalid repository name {repo:?}: lowercase letters and digits, separated by '.', '_', '-' or '/'"
            )));
        }
        let access = self.repo_access(Some(actor), repo).await?;
        let ns = repo.split('/').next().unwrap_or(repo);
        // Only callers who may see it learn that it exists.
        if access.exists && access.role.is_some() {
            return Err(Error::exists(format!("repository {repo:?} already exists")));
        }
        if access.exists {
            return Err(Error::denied(format!(
                "you may not create repositories in {ns:?}: ask an administrator of {ns:?} for the creator role or a team with it"
            )));
        }
        if !access.can_create {
            return Err(Error::denied(if access.namespace_exists {
                format!(
                    "you may not create repositories in {ns:?}: ask an administrator of {ns:?} for the creator role or a team with it"
                )
            } else {
                format!(
                    "namespace {ns:?} does not exist: push to your own namespace or create the organization first (POST /api/v1/organization/)"
                )
            }));
        }
        let visibility = parse_visibility(visibility)?;
        if !access.namespace_exists {
            match self.create_org_inner(Some(actor), ns, None).await {
                Ok(_) | Err(Error::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let own_namespace = actor.kind == AccountKind::User && actor.name == ns;
        let org_admin = match self.db.account_by_name(ns).await? {
            Some(o) if o.kind == AccountKind::Org => self.org_role(actor, &o.into()).await?.admin,
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
        let visibility = parse_visibility(visibility)?;
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
        repo: &Repository,
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
            .filter(|a| a.kind != AccountKind::Org)
            .ok_or_else(|| Error::not_found(format!("no user or robot named {name:?}")))?;
        if a.kind == AccountKind::Robot && !a.name.starts_with(&format!("{}+", repo.namespace)) {
            return Err(Error::invalid(format!(
                "{name:?} is a robot of another namespace; only {}+... robots may hold permissions here",
                repo.namespace
            )));
        }
        Ok((Grantee::Account(a.id), PermHolder::Account(a.into())))
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
        let role = parse_role(role)?;
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
    ) -> Result<crate::DefaultPerm> {
        let o = self.org_admin(actor, org).await?;
        let role = parse_role(role)?;
        let activating_id = match activating_user {
            Some(n) => Some(
                self.db
                    .account_by_name(n)
                    .await?
                    .filter(|a| a.kind != AccountKind::Org)
                    .ok_or_else(|| Error::not_found(format!("no user or robot named {n:?}")))?
                    .id,
            ),
            None => None,
        };
        let foreign_robot = |n: &str| n.contains('+') && !n.starts_with(&format!("{org}+"));
        if foreign_robot(delegate) || activating_user.is_some_and(foreign_robot) {
            return Err(Error::invalid(format!(
                "only robots of {org:?} ({org}+...) may appear in its default permissions"
            )));
        }
        let delegate_g = if delegate_is_team {
            Grantee::Team(self.team(&o, delegate).await?.id)
        } else {
            Grantee::Account(
                self.db
                    .account_by_name(delegate)
                    .await?
                    .filter(|a| a.kind != AccountKind::Org)
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
            role,
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
        Ok(crate::DefaultPerm::from(&row))
    }

    pub async fn update_default_perm(
        &self,
        actor: &Actor,
        org: &str,
        uuid: &str,
        role: &str,
    ) -> Result<()> {
        let o = self.org_admin(actor, org).await?;
        let role = parse_role(role)?;
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
}

/// A repository role a caller names (`read`, `write`, `admin`).
fn parse_role(role: &str) -> Result<Role> {
    role.parse()
        .map_err(|_| Error::invalid("role must be one of read, write, admin"))
}

/// A visibility a caller names (`public`, `private`).
pub(crate) fn parse_visibility(visibility: &str) -> Result<Visibility> {
    visibility
        .parse()
        .map_err(|_| Error::invalid("visibility must be public or private"))
}
