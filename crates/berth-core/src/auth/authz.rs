//! Authorization: what an actor may do with a repository, and the registry token grants that
//! follow from it.
//!
//! Effective role on a repository = the highest of: read if the repository is public (anonymous
//! callers only with `FEATURE_ANONYMOUS_ACCESS`); admin for superusers; admin in the caller's own
//! user namespace; admin for members of an organization team with role `admin` (the `owners` team
//! included); the caller's direct permission; the permissions of the caller's teams. Creating a
//! repository (first push) is allowed in one's own namespace, to members of a `creator` or `admin`
//! team of the organization, and to superusers. API tokens cap all of this by their scopes.

use super::jwt::Access;
use super::{AccountKind, Actor, Auth};
use crate::Result;
use berth_db::{RepoState, Role, TeamRole};
use berth_oci::RepoName;

/// Superusers acting with the `super:user` scope: the one check every superuser-only use case
/// makes, with the one refusal.
pub fn require_superuser(actor: &Actor) -> Result<()> {
    if actor.superuser && actor.has_scope("super:user") {
        Ok(())
    } else {
        Err(crate::Error::denied(
            "only superusers may do this (SUPER_USERS, or `berth admin create-user --superuser`)",
        ))
    }
}

/// Registry token actions `role` allows on an existing repository.
fn role_actions(role: Role) -> &'static [&'static str] {
    match role {
        Role::Read => &["pull"],
        Role::Write => &["pull", "push", "delete"],
        Role::Admin => &["pull", "push", "delete", "*"],
    }
}

/// What a caller may do with one repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoAccess {
    pub exists: bool,
    pub public: bool,
    /// Effective role on an existing repository.
    pub role: Option<Role>,
    /// May create it (only meaningful when it does not exist).
    pub can_create: bool,
    /// The namespace exists (as a user or organization).
    pub namespace_exists: bool,
    /// The repository's state (NORMAL for one that does not exist).
    pub state: RepoState,
    /// The caller may change the repository's content in its state: always in NORMAL, never in
    /// READ_ONLY, and in MIRROR only as the mirror's robot; never in a pull-through cache.
    pub content_writable: bool,
    /// The namespace is a pull-through cache organization.
    pub proxy_cache: bool,
    /// The caller may pull through the cache (a member of the cache organization): a
    /// repository there that is not cached yet is fetched for them.
    pub pull_through: bool,
}

impl RepoAccess {
    pub fn allows(&self, role: Role) -> bool {
        self.role.is_some_and(|r| r >= role)
    }
    /// Registry actions allowed: on an existing repository by role; on a missing one, everything
    /// to whoever may create it (the creator becomes its admin) and nothing to anyone else — so
    /// that nobody learns whether a private repository exists.
    /// A repository whose state keeps the caller from writing grants reading only (and no
    /// `*`: Quay grants it in no state but NORMAL).
    pub fn actions(&self) -> &'static [&'static str] {
        if !self.exists && self.pull_through {
            &["pull"]
        } else if self.exists && !self.content_writable {
            if self.allows(Role::Read) {
                &["pull"]
            } else {
                &[]
            }
        } else if self.exists {
            self.role.map(role_actions).unwrap_or(&[])
        } else if self.can_create {
            role_actions(Role::Admin)
        } else {
            &[]
        }
    }
}

impl Auth {
    /// The caller's access to repository `repo` (anonymous when `actor` is `None`).
    pub async fn repo_access(&self, actor: Option<&Actor>, repo: &str) -> Result<RepoAccess> {
        let ns = repo.split('/').next().unwrap_or(repo);
        let facts = self.db.access_facts(repo, ns, actor.map(|a| a.id)).await?;
        let mut role: Option<Role> = None;
        let mut can_create = false;
        if facts.public && (actor.is_some() || self.config.anonymous_access) {
            role = Some(Role::Read);
        }
        if let Some(a) = actor {
            let mut bump = |r: Role| role = role.max(Some(r));
            if a.superuser {
                bump(Role::Admin);
                can_create = true;
            }
            if a.kind == AccountKind::User && a.name == ns {
                bump(Role::Admin);
                can_create = true;
            }
            for r in &facts.repo_roles {
                bump(*r);
            }
            for r in &facts.org_team_roles {
                match r {
                    TeamRole::Admin => {
                        bump(Role::Admin);
                        can_create = true;
                    }
                    TeamRole::Creator => can_create = true,
                    TeamRole::Member => {}
                }
            }
            // Members of a pull-through cache organization pull its repositories (Quay's
            // can_pullthru); nobody pushes there.
            if facts.proxy_cache {
                can_create = false;
                if a.superuser || !facts.org_team_roles.is_empty() {
                    bump(Role::Read);
                }
            }
            // A superuser may push into a namespace nobody owns yet: it becomes an organization.
            if facts.namespace_kind.is_none() && !a.superuser {
                can_create = false;
            }
            if a.scopes.is_some() {
                let cap = if a.has_scope("repo:admin") {
                    Some(Role::Admin)
                } else if a.has_scope("repo:write") {
                    Some(Role::Write)
                } else if a.has_scope("repo:read") {
                    Some(Role::Read)
                } else {
                    None
                };
                role = role.min(cap);
                can_create = can_create && a.has_scope("repo:create");
            }
        }
        Ok(RepoAccess {
            exists: facts.repo_id.is_some(),
            public: facts.public,
            role: if facts.repo_id.is_some() { role } else { None },
            can_create,
            namespace_exists: facts.namespace_kind.is_some(),
            state: facts.state,
            proxy_cache: facts.proxy_cache,
            pull_through: facts.proxy_cache
                && actor.is_some_and(|a| {
                    (a.superuser || !facts.org_team_roles.is_empty()) && a.has_scope("repo:read")
                }),
            content_writable: !facts.proxy_cache
                && match facts.state {
                    RepoState::Normal => true,
                    RepoState::ReadOnly => false,
                    RepoState::Mirror | RepoState::OrgMirror => {
                        actor.is_some_and(|a| facts.mirror_robot == Some(a.id))
                    }
                },
        })
    }

    /// The grants of a registry token asked for `scopes` (`repository:NAME:ACTIONS`,
    /// `registry:catalog:*`): each scope's requested actions intersected with what the caller may do.
    pub async fn grant(&self, actor: Option<&Actor>, scopes: &[String]) -> Result<Vec<Access>> {
        let mut out: Vec<Access> = Vec::new();
        for scope in scopes {
            // NAME may contain ':' only in a port-qualified form we do not serve; split from both ends.
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let requested: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
            match kind {
                "repository" => {
                    if name.parse::<RepoName>().is_err() {
                        continue;
                    }
                    let access = self.repo_access(actor, name).await?;
                    let allowed = access.actions();
                    let granted: Vec<String> = requested
                        .iter()
                        .filter(|a| allowed.contains(a))
                        .map(|a| a.to_string())
                        .collect();
                    merge(&mut out, "repository", name, granted);
                }
                "registry"
                    if name == "catalog"
                        && match actor {
                            // An API token lists repositories only with a repo scope.
                            Some(a) => a.has_scope("repo:read"),
                            None => self.config.anonymous_access,
                        } =>
                {
                    merge(&mut out, "registry", "catalog", vec!["*".to_string()]);
                }
                _ => {}
            }
        }
        // A repository scope that was asked for and refused stays in the token with no actions
        // (as Docker Hub answers), so that the registry can tell "asked and refused" from "never
        // asked" (a mount's source repository).
        out.retain(|a| a.kind == "repository" || !a.actions.is_empty());
        Ok(out)
    }
}

fn merge(out: &mut Vec<Access>, kind: &str, name: &str, actions: Vec<String>) {
    if let Some(a) = out.iter_mut().find(|a| a.kind == kind && a.name == name) {
        for x in actions {
            if !a.actions.contains(&x) {
                a.actions.push(x);
            }
        }
    } else {
        out.push(Access {
            kind: kind.to_string(),
            name: name.to_string(),
            actions,
        });
    }
}
