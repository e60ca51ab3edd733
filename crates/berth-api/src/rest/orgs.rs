//! Organizations, their members and teams, and default permissions ("prototypes").

use super::views::{Avatar, Entity, RepoPermissions, TeamRef};
use super::{Created, Ctx, Done, NonEmpty, Reply, RestError, Route, done, route};
use crate::AppState;
use berth_core::auth::Actor;
use berth_core::auth::views::{DefaultPermView, TeamSync};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST "/api/v1/organization/", "Create an organization; the caller joins its owners team", "user:admin",
            create_org(NewOrg) -> Created<&'static str>),
        route!(GET "/api/v1/organization/{orgname}", "An organization and its teams (members only)", "user:read",
            get_org() -> Reply<Organization>),
        route!(PUT "/api/v1/organization/{orgname}", "Change an organization's email or tag expiration", "org:admin",
            update_org(OrgChange) -> Reply<Organization>),
        route!(DELETE "/api/v1/organization/{orgname}", "Delete an organization; its repositories go with it and are collected in the background", "org:admin",
            delete_org() -> Done),
        route!(GET "/api/v1/organization/{orgname}/members", "Every member of any team", "org:admin",
            members() -> Reply<Members>),
        route!(GET "/api/v1/organization/{orgname}/members/{membername}", "One member and their teams", "org:admin",
            member() -> Reply<Member>),
        route!(DELETE "/api/v1/organization/{orgname}/members/{membername}", "Remove a member from every team", "org:admin",
            remove_member() -> Done),
        route!(PUT "/api/v1/organization/{orgname}/team/{teamname}", "Create a team or change its role (member, creator, admin)", "org:admin",
            put_team(TeamBody) -> Reply<TeamPut>),
        route!(DELETE "/api/v1/organization/{orgname}/team/{teamname}", "Delete a team (not owners)", "org:admin",
            delete_team() -> Done),
        route!(GET "/api/v1/organization/{orgname}/team/{teamname}/members", "A team's members", "org:admin",
            team_members() -> Reply<TeamMembers>),
        route!(PUT "/api/v1/organization/{orgname}/team/{teamname}/members/{membername}", "Add a user or one of the organization's robots to a team", "org:admin",
            add_member() -> Reply<TeamMember>),
        route!(DELETE "/api/v1/organization/{orgname}/team/{teamname}/members/{membername}", "Remove a member from a team", "org:admin",
            del_member() -> Done),
        route!(GET "/api/v1/organization/{orgname}/team/{teamname}/permissions", "The repositories a team has permissions on", "org:admin",
            team_perms() -> Reply<RepoPermissions>),
        route!(POST "/api/v1/organization/{orgname}/team/{teamname}/syncing", "Sync a team's members from an LDAP group (group_dn, relative to LDAP_BASE_DN) or an OIDC service's groups claim (group_name, service) (superusers)", "org:admin",
            enable_team_sync(SyncBody) -> Reply<Team>),
        route!(DELETE "/api/v1/organization/{orgname}/team/{teamname}/syncing", "Stop syncing a team from LDAP (superusers)", "org:admin",
            disable_team_sync() -> Reply<Team>),
        route!(GET "/api/v1/organization/{orgname}/prototypes", "Default permissions applied to new repositories", "org:admin",
            prototypes() -> Reply<Prototypes>),
        route!(POST "/api/v1/organization/{orgname}/prototypes", "Add a default permission", "org:admin",
            create_prototype(NewPrototype) -> Reply<Prototype>),
        route!(PUT "/api/v1/organization/{orgname}/prototypes/{prototypeid}", "Change a default permission's role", "org:admin",
            update_prototype(super::repos::RoleBody) -> Reply<Prototype>),
        route!(DELETE "/api/v1/organization/{orgname}/prototypes/{prototypeid}", "Delete a default permission", "org:admin",
            delete_prototype() -> Done),
    ]
}

#[derive(Deserialize, ToSchema)]
pub struct NewOrg {
    pub name: NonEmpty,
    pub email: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct OrgChange {
    pub email: Option<String>,
    /// The time machine's window for the organization's repositories, in seconds.
    pub tag_expiration_s: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
pub struct TeamBody {
    /// `member`, `creator` or `admin`.
    pub role: NonEmpty,
    pub description: Option<String>,
}

/// Where a team's members come from: an LDAP group (`group_dn`), or an OIDC service's groups
/// claim (`group_name`, optionally `service`).
#[derive(Deserialize, ToSchema)]
pub struct SyncBody {
    pub group_dn: Option<String>,
    pub group_name: Option<String>,
    pub service: Option<String>,
}

/// `POST …/prototypes`.
#[derive(Deserialize, ToSchema)]
pub struct NewPrototype {
    /// `read`, `write` or `admin`.
    pub role: NonEmpty,
    /// Applies only to repositories this user creates; every new repository when absent.
    pub activating_user: Option<NameRef>,
    /// Who gets the role.
    pub delegate: Delegate,
}

#[derive(Deserialize, ToSchema)]
pub struct NameRef {
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct Delegate {
    pub name: String,
    #[serde(default)]
    pub kind: DelegateKind,
}

#[derive(Deserialize, ToSchema, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum DelegateKind {
    #[default]
    User,
    Team,
}

/// A team of an organization.
#[derive(Serialize, ToSchema)]
pub struct Team {
    pub name: String,
    pub description: String,
    /// `member`, `creator` or `admin`.
    pub role: String,
    pub avatar: Avatar,
    pub can_view: bool,
    pub repo_count: i64,
    pub member_count: i64,
    pub is_synced: bool,
}

impl Team {
    pub fn new(t: &berth_core::Team) -> Team {
        Team {
            name: t.name.clone(),
            description: t.description.clone(),
            role: t.role.to_string(),
            avatar: Avatar::of(&t.name, "team"),
            can_view: true,
            repo_count: t.repo_count,
            member_count: t.member_count,
            is_synced: t.sync_service.is_some(),
        }
    }
}

/// A team as `PUT …/team/{teamname}` answers it.
#[derive(Serialize, ToSchema)]
pub struct TeamPut {
    #[serde(flatten)]
    pub team: Team,
    /// Whether the call created it.
    pub new_team: bool,
}

/// An organization as its members see it.
#[derive(Serialize, ToSchema)]
pub struct Organization {
    pub name: String,
    /// Administrators only; `null` for other members.
    pub email: Option<String>,
    pub avatar: Avatar,
    pub is_admin: bool,
    pub is_member: bool,
    pub teams: BTreeMap<String, Team>,
    pub ordered_teams: Vec<String>,
    /// The window in force: the organization's own, else DEFAULT_TAG_EXPIRATION.
    pub tag_expiration_s: i64,
    pub is_free_account: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Members {
    pub members: Vec<Member>,
}

/// A member of an organization and the teams they are in.
#[derive(Serialize, ToSchema)]
pub struct Member {
    #[serde(flatten)]
    pub entity: Entity,
    pub teams: Vec<TeamRef>,
    pub repositories: Vec<String>,
}

/// A member of a team.
#[derive(Serialize, ToSchema)]
pub struct TeamMember {
    #[serde(flatten)]
    pub entity: Entity,
    pub invited: bool,
}

impl TeamMember {
    fn new(name: &str, kind: &str) -> TeamMember {
        TeamMember {
            entity: Entity::new(name, kind),
            invited: false,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TeamMembers {
    pub name: String,
    pub members: Vec<TeamMember>,
    pub can_edit: bool,
    /// Where the members are synced from; `null` when they are not.
    pub synced: Option<Synced>,
}

#[derive(Serialize, ToSchema)]
pub struct Synced {
    pub service: String,
    pub config: SyncConfig,
}

#[derive(Serialize, ToSchema)]
pub struct SyncConfig {
    pub group: Option<String>,
}

/// A default permission.
#[derive(Serialize, ToSchema)]
pub struct Prototype {
    pub id: String,
    pub role: String,
    pub activating_user: Option<Entity>,
    pub delegate: Option<Entity>,
}

impl Prototype {
    fn new(p: &DefaultPermView) -> Prototype {
        let named = |who: &Option<(String, berth_core::auth::GranteeKind)>| {
            who.as_ref().map(|(n, k)| Entity::new(n, k.as_str()))
        };
        Prototype {
            id: p.perm.uuid.clone(),
            role: p.perm.role.to_string(),
            activating_user: named(&p.activating),
            delegate: named(&p.delegate),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Prototypes {
    pub prototypes: Vec<Prototype>,
}

async fn create_org(st: Arc<AppState>, ctx: Ctx, b: NewOrg) -> Res<Created<&'static str>> {
    let a = ctx.actor()?;
    st.auth.create_org(a, &b.name, b.email.as_deref()).await?;
    Ok(Reply::new("Created"))
}

async fn org_view(st: &AppState, a: &Actor, org: &str) -> Res<Organization> {
    let v = st.auth.organization(a, org).await?;
    let (o, role, teams) = (v.org, v.role, v.teams);
    Ok(Organization {
        name: o.name.clone(),
        email: o.email.clone(),
        avatar: Avatar::of(&o.name, "org"),
        is_admin: role.admin,
        is_member: role.member,
        teams: teams
            .iter()
            .map(|t| (t.name.clone(), Team::new(t)))
            .collect(),
        ordered_teams: teams.iter().map(|t| t.name.clone()).collect(),
        tag_expiration_s: o
            .tag_expiration_s
            .unwrap_or(st.registry.config.gc.default_window_s),
        is_free_account: true,
    })
}

async fn get_org(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Organization>> {
    Ok(Reply::new(
        org_view(&st, ctx.actor()?, ctx.p("orgname")).await?,
    ))
}

async fn update_org(st: Arc<AppState>, ctx: Ctx, b: OrgChange) -> Res<Reply<Organization>> {
    let a = ctx.actor()?;
    st.auth
        .update_org(a, ctx.p("orgname"), b.email.as_deref(), b.tag_expiration_s)
        .await?;
    Ok(Reply::new(org_view(&st, a, ctx.p("orgname")).await?))
}

async fn delete_org(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth.delete_org(ctx.actor()?, ctx.p("orgname")).await?;
    done()
}

async fn member_list(st: &AppState, ctx: &Ctx) -> Res<Vec<Member>> {
    Ok(st
        .auth
        .org_members(ctx.actor()?, ctx.p("orgname"))
        .await?
        .iter()
        .map(|m| Member {
            entity: Entity::new(&m.name, m.kind.as_str()),
            teams: m.teams.iter().map(|t| TeamRef::new(t)).collect(),
            repositories: Vec::new(),
        })
        .collect())
}

async fn members(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Members>> {
    Ok(Reply::new(Members {
        members: member_list(&st, &ctx).await?,
    }))
}

async fn member(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Member>> {
    let name = ctx.p("membername");
    member_list(&st, &ctx)
        .await?
        .into_iter()
        .find(|m| m.entity.name == name)
        .map(Reply::new)
        .ok_or_else(|| {
            RestError::new(
                404,
                format!("{name:?} is not a member of {:?}", ctx.p("orgname")),
            )
        })
}

async fn remove_member(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    let a = ctx.actor()?;
    st.auth
        .remove_org_member(a, ctx.p("orgname"), ctx.p("membername"))
        .await?;
    done()
}

async fn put_team(st: Arc<AppState>, ctx: Ctx, b: TeamBody) -> Res<Reply<TeamPut>> {
    let a = ctx.actor()?;
    let (t, created_new) = st
        .auth
        .set_team(
            a,
            ctx.p("orgname"),
            ctx.p("teamname"),
            &b.role,
            b.description.as_deref(),
        )
        .await?;
    Ok(Reply::new(TeamPut {
        team: Team::new(&t),
        new_team: created_new,
    }))
}

async fn delete_team(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .delete_team(ctx.actor()?, ctx.p("orgname"), ctx.p("teamname"))
        .await?;
    done()
}

async fn team_members(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<TeamMembers>> {
    let tm = st
        .auth
        .team_members(ctx.actor()?, ctx.p("orgname"), ctx.p("teamname"))
        .await?;
    let t = &tm.team;
    Ok(Reply::new(TeamMembers {
        name: t.name.clone(),
        members: tm
            .members
            .iter()
            .map(|m| TeamMember::new(&m.name, m.kind.as_str()))
            .collect(),
        can_edit: tm.can_edit,
        synced: t.sync_service.as_ref().map(|s| Synced {
            service: s.clone(),
            config: SyncConfig {
                group: t.sync_group.clone(),
            },
        }),
    }))
}

async fn add_member(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<TeamMember>> {
    let m = st
        .auth
        .add_team_member(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("teamname"),
            ctx.p("membername"),
        )
        .await?;
    Ok(Reply::new(TeamMember::new(&m.name, m.kind.as_str())))
}

async fn del_member(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .remove_team_member(
            ctx.actor()?,
            ctx.p("orgname"),
            ctx.p("teamname"),
            ctx.p("membername"),
        )
        .await?;
    done()
}

async fn team_perms(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<RepoPermissions>> {
    let perms = st
        .auth
        .team_permissions(ctx.actor()?, ctx.p("orgname"), ctx.p("teamname"))
        .await?;
    Ok(Reply::new(RepoPermissions::new(&perms)))
}

async fn prototypes(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Prototypes>> {
    let out = st
        .auth
        .default_permissions(ctx.actor()?, ctx.p("orgname"))
        .await?
        .iter()
        .map(Prototype::new)
        .collect();
    Ok(Reply::new(Prototypes { prototypes: out }))
}

async fn create_prototype(st: Arc<AppState>, ctx: Ctx, b: NewPrototype) -> Res<Reply<Prototype>> {
    let a = ctx.actor()?;
    let activating = b.activating_user.as_ref().and_then(|u| u.name.as_deref());
    let p = st
        .auth
        .create_default_perm(
            a,
            ctx.p("orgname"),
            activating,
            &b.delegate.name,
            b.delegate.kind == DelegateKind::Team,
            &b.role,
        )
        .await?;
    let p = st
        .auth
        .default_permission(a, ctx.p("orgname"), &p.uuid)
        .await?;
    Ok(Reply::new(Prototype::new(&p)))
}

async fn update_prototype(
    st: Arc<AppState>,
    ctx: Ctx,
    b: super::repos::RoleBody,
) -> Res<Reply<Prototype>> {
    let a = ctx.actor()?;
    let org = ctx.p("orgname");
    let id = ctx.p("prototypeid");
    st.auth.update_default_perm(a, org, id, &b.role).await?;
    Ok(Reply::new(Prototype::new(
        &st.auth.default_permission(a, org, id).await?,
    )))
}

async fn delete_prototype(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .delete_default_perm(ctx.actor()?, ctx.p("orgname"), ctx.p("prototypeid"))
        .await?;
    done()
}

/// `POST` / `DELETE …/team/{teamname}/syncing`. Only superusers set syncing up (Quay without
/// FEATURE_NONSUPERUSER_TEAM_SYNCING_SETUP), and as administrators of the organization.
async fn team_sync(st: &AppState, ctx: &Ctx, sync: TeamSync<'_>) -> Res<Reply<Team>> {
    let t = st
        .auth
        .set_team_sync(ctx.actor()?, ctx.p("orgname"), ctx.p("teamname"), sync)
        .await?;
    Ok(Reply::new(Team::new(&t)))
}

async fn enable_team_sync(st: Arc<AppState>, ctx: Ctx, b: SyncBody) -> Res<Reply<Team>> {
    let sync = match (b.group_name.as_deref(), b.group_dn.as_deref()) {
        // An OIDC service's groups claim (Quay's group_name): the name is the claim's value.
        (Some(group), _) => TeamSync::Oidc {
            service: b.service.as_deref(),
            group,
        },
        (None, Some(group_dn)) if !group_dn.is_empty() => TeamSync::Ldap { group_dn },
        (None, _) => {
            return Err(RestError::bad("field \"group_dn\" is required (a string)"));
        }
    };
    team_sync(&st, &ctx, sync).await
}

async fn disable_team_sync(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Team>> {
    team_sync(&st, &ctx, TeamSync::Off).await
}
