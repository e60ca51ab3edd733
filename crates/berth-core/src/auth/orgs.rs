//! Organizations, their `owners` team and other teams, and team membership.

use super::accounts::*;
use super::{AccountKind, Actor, Auth, TeamRole};
use crate::{Account, Team};
use crate::{Error, Result};
use berth_db::{AccountUpdate, NewAccount};

impl Auth {
    // ---- organizations and teams ----------------------------------------------------------

    pub async fn org_role(&self, actor: &Actor, org: &Account) -> Result<OrgRole> {
        let mut r = OrgRole::default();
        for (org_name, t) in self.db.teams_of_account(actor.id).await? {
            if org_name == org.name {
                r.member = true;
                match t.role {
                    TeamRole::Admin => {
                        r.admin = true;
                        r.creator = true;
                    }
                    TeamRole::Creator => r.creator = true,
                    TeamRole::Member => {}
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
    pub async fn org_admin(&self, actor: &Actor, org: &str) -> Result<Account> {
        let row = self.org(org).await?;
        if !actor.has_scope("org:admin") || !self.org_role(actor, &row).await?.admin {
            return Err(Error::denied(format!(
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
    ) -> Result<Account> {
        if actor.kind != AccountKind::User || !actor.has_scope("user:admin") {
            return Err(Error::denied("only users may create organizations"));
        }
        self.create_org_inner(Some(actor), name, email).await
    }

    pub(super) async fn create_org_inner(
        &self,
        actor: Option<&Actor>,
        name: &str,
        email: Option<&str>,
    ) -> Result<Account> {
        check_namespace_name(name)?;
        let id = self
            .db
            .create_account(&NewAccount {
                name,
                kind: AccountKind::Org,
                email,
                ..NewAccount::default()
            }, actor.is_some_and(|a| a.superuser))
            .await?
            .ok_or_else(|| Error::exists(format!(
                "the name {name:?} is already taken (by an account, or by a namespace holding data from before accounts existed, which only a superuser may adopt)"
            )))?;
        let (team, _) = self
            .db
            .upsert_team(
                id,
                OWNERS_TEAM,
                TeamRole::Admin,
                Some("Owners of the organization"),
            )
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
            .map(Account::from)
            .ok_or_else(|| Error::Internal("created organization vanished".into()))
    }

    /// Deletes an organization (not a user) with its repositories, for its administrators.
    pub async fn delete_org(&self, actor: &Actor, org: &str) -> Result<()> {
        self.org(org).await?;
        self.delete_namespace_account(actor, org).await
    }

    /// Quay's "take ownership": a superuser joins an organization's `owners` team, so that it
    /// stays an administrator there on its own (an organization whose owners all left is
    /// administrable again). A user namespace is refused: Berth does not turn users into
    /// organizations, and superusers administer every repository already.
    pub async fn take_ownership(&self, actor: &Actor, namespace: &str) -> Result<()> {
        super::authz::require_superuser(actor)?;
        let ns = self
            .db
            .account_by_name(namespace)
            .await?
            .ok_or_else(|| Error::not_found(format!("no namespace named {namespace:?}")))?;
        if ns.kind != AccountKind::Org {
            return Err(Error::invalid(format!(
                "{namespace:?} is not an organization; a superuser already administers a user's repositories, and takes ownership of organizations only"
            )));
        }
        let org: Account = ns.into();
        let owners = self.team(&org, OWNERS_TEAM).await?;
        let joined = self.db.add_team_member(owners.id, actor.id).await?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "take_ownership")
                    .namespace(namespace)
                    .meta(serde_json::json!({"namespace": namespace, "was_user": false, "joined": joined})),
            )
            .await;
        Ok(())
    }

    /// An organization as its members see it: the caller's role in it and its teams (the
    /// email only for its administrators).
    pub async fn organization(&self, actor: &Actor, org: &str) -> Result<OrgView> {
        if !actor.has_scope("user:read") && !actor.has_scope("org:admin") {
            return Err(Error::denied("this token lacks the user:read scope"));
        }
        let mut o = self.org(org).await?;
        let role = self.org_role(actor, &o).await?;
        if !role.member && !role.admin {
            return Err(Error::denied(format!(
                "you are not a member of organization {org:?}"
            )));
        }
        let teams = self.org_teams(&o).await?;
        if !role.admin {
            o.email = None;
        }
        Ok(OrgView {
            org: o,
            role,
            teams,
        })
    }

    /// Changes an organization's email or time-machine window, for its administrators.
    pub async fn update_org(
        &self,
        actor: &Actor,
        org: &str,
        email: Option<&str>,
        tag_expiration_s: Option<i64>,
    ) -> Result<()> {
        let org = &self.org_admin(actor, org).await?;
        // Validate before changing anything.
        if let Some(t) = tag_expiration_s {
            self.check_tag_expiration(t)?;
        }
        if let Some(e) = email {
            self.db
                .update_account(org.id, AccountUpdate::Email(Some(e)))
                .await?;
        }
        if let Some(s) = tag_expiration_s {
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
    ) -> Result<(Team, bool)> {
        let o = self.org_admin(actor, org).await?;
        if !TEAM.is_match(team) {
            return Err(Error::invalid(format!(
                "invalid team name {team:?}: a letter, then letters, digits or '_' (2 to 255)"
            )));
        }
        let role: TeamRole = role
            .parse()
            .map_err(|_| Error::invalid("role must be one of member, creator, admin"))?;
        if team == OWNERS_TEAM && role != TeamRole::Admin {
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
        Ok((t.into(), created))
    }

    pub async fn team(&self, org: &Account, team: &str) -> Result<Team> {
        self.db
            .team(org.id, team)
            .await?
            .map(Team::from)
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
    ) -> Result<Account> {
        let o = self.org_admin(actor, org).await?;
        let t = self.team(&o, team).await?;
        let m = self
            .db
            .account_by_name(member)
            .await?
            .ok_or_else(|| Error::not_found(format!("no user or robot named {member:?}")))?;
        match m.kind {
            AccountKind::User => {}
            AccountKind::Robot if m.owner_id == Some(o.id) => {}
            AccountKind::Robot => {
                return Err(Error::invalid(format!(
                    "{member:?} is a robot of another namespace; only {org}+... robots may join its teams"
                )));
            }
            AccountKind::Org => {
                return Err(Error::invalid("an organization cannot be a team member"));
            }
        }
        self.db.add_team_member(t.id, m.id).await?;
        self.audit
            .record(
                self.audit_actor(Some(actor), "org_add_team_member")
                    .namespace(org)
                    .meta(serde_json::json!({"team": team, "member": member})),
            )
            .await;
        Ok(m.into())
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
}

/// An organization, the caller's role in it, and its teams (`Auth::organization`).
#[derive(Debug, Clone)]
pub struct OrgView {
    pub org: Account,
    pub role: OrgRole,
    pub teams: Vec<Team>,
}
