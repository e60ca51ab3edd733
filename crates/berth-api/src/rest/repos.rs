//! Repositories through the API: create, list, read, describe, visibility, and the permissions of
//! users, robots and teams on them.

use super::views::Avatar;
use super::{Created, Ctx, Done, NonEmpty, Reply, RestError, Route, Success, done, route, secs};
use crate::AppState;
use berth_core::auth::accounts::PermHolder;
use berth_core::auth::views::Listing;
use berth_core::auth::{AccountKind, GranteeKind};
use berth_core::content::Content;
use berth_core::{Caller, Repository};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(POST "/api/v1/repository", "Create a repository", "repo:create",
            create_repo(NewRepo) -> Created<RepoCreated>),
        route!(GET "/api/v1/repository", "Repositories the caller may see", "repo:read",
            list_repos() -> Reply<RepoList>, query &["namespace", "public", "starred", "next_page", "limit"]),
        route!(GET "/api/v1/repository/{repository}", "One repository, with up to 500 live tags unless includeTags=false", "repo:read",
            get_repo() -> Reply<Repo>, query &["includeTags", "includeStats"]),
        route!(PUT "/api/v1/repository/{repository}", "Change a repository's description", "repo:write",
            update_repo(RepoChange) -> Reply<Success>),
        route!(DELETE "/api/v1/repository/{repository}", "Delete a repository: its name is free at once, its contents are collected in the background", "repo:admin",
            delete_repo() -> Done),
        route!(POST "/api/v1/repository/{repository}/changevisibility", "Make a repository public or private", "repo:admin",
            change_visibility(Visibility) -> Reply<Success>),
        route!(GET "/api/v1/repository/{repository}/permissions/user/", "User and robot permissions on a repository", "repo:admin",
            user_perms() -> Reply<UserPermissions>),
        route!(GET "/api/v1/repository/{repository}/permissions/user/{username}", "One user's or robot's permission", "repo:admin",
            user_perm() -> Reply<UserPermission>),
        route!(PUT "/api/v1/repository/{repository}/permissions/user/{username}", "Give a user or robot read, write or admin", "repo:admin",
            set_user_perm(RoleBody) -> Reply<Grant>),
        route!(DELETE "/api/v1/repository/{repository}/permissions/user/{username}", "Remove a user's or robot's permission", "repo:admin",
            del_user_perm() -> Done),
        route!(GET "/api/v1/repository/{repository}/permissions/user/{username}/transitive", "A user's effective permission, teams included", "repo:admin",
            transitive() -> Reply<EffectivePermissions>),
        route!(GET "/api/v1/repository/{repository}/permissions/team/", "Team permissions on a repository", "repo:admin",
            team_perms() -> Reply<TeamPermissions>),
        route!(GET "/api/v1/repository/{repository}/permissions/team/{teamname}", "One team's permission", "repo:admin",
            team_perm() -> Reply<TeamPermission>),
        route!(PUT "/api/v1/repository/{repository}/permissions/team/{teamname}", "Give a team read, write or admin", "repo:admin",
            set_team_perm(RoleBody) -> Reply<TeamPermission>),
        route!(DELETE "/api/v1/repository/{repository}/permissions/team/{teamname}", "Remove a team's permission", "repo:admin",
            del_team_perm() -> Done),
    ]
}

/// `POST /api/v1/repository`.
#[derive(Deserialize, ToSchema)]
pub struct NewRepo {
    /// The name within the namespace.
    pub repository: NonEmpty,
    /// The caller's own namespace when absent.
    pub namespace: Option<String>,
    /// `public` or `private`.
    pub visibility: NonEmpty,
    pub description: Option<String>,
    /// Only `image`.
    pub repo_kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RepoCreated {
    pub namespace: String,
    pub name: String,
    pub kind: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RepoChange {
    /// Absent: cleared.
    pub description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct Visibility {
    /// `public` or `private`.
    pub visibility: NonEmpty,
}

/// The body that grants a role.
#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    /// `read`, `write` or `admin`.
    pub role: NonEmpty,
}

/// A page of `GET /api/v1/repository`.
#[derive(Serialize, ToSchema)]
pub struct RepoList {
    pub repositories: Vec<RepoSummary>,
    /// Present when there are more: pass it back as `next_page`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RepoSummary {
    pub namespace: String,
    pub name: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub kind: String,
    pub state: String,
    /// Unix seconds of the last push, else of the creation.
    pub last_modified: i64,
}

impl RepoSummary {
    pub fn new(r: &Repository) -> RepoSummary {
        RepoSummary {
            namespace: r.namespace.clone(),
            name: r.short_name().into(),
            description: r.description.clone(),
            is_public: r.is_public(),
            kind: "image".into(),
            state: "NORMAL".into(),
            last_modified: r.last_push_at.unwrap_or(r.created_at) / 1000,
        }
    }
}

/// `GET /api/v1/repository/{repository}`.
#[derive(Serialize, ToSchema)]
pub struct Repo {
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub is_organization: bool,
    pub is_starred: bool,
    pub status_token: String,
    pub trust_enabled: bool,
    /// The time machine's window in force for the namespace.
    pub tag_expiration_s: i64,
    pub is_free_account: bool,
    pub state: String,
    pub can_write: bool,
    pub can_admin: bool,
    pub created: i64,
    pub last_pushed: Option<i64>,
    pub last_pulled: Option<i64>,
    /// Up to 500 live tags by name; absent with `includeTags=false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, RepoTag>>,
}

impl Repo {
    /// The repository without its tags; `window` is the namespace's time-machine window.
    pub fn new(r: &Repository, window: i64, can_write: bool, can_admin: bool) -> Repo {
        Repo {
            namespace: r.namespace.clone(),
            name: r.short_name().into(),
            kind: "image".into(),
            description: r.description.clone(),
            is_public: r.is_public(),
            is_organization: r.namespace_kind == AccountKind::Org,
            is_starred: false,
            status_token: String::new(),
            trust_enabled: false,
            tag_expiration_s: window,
            is_free_account: true,
            state: "NORMAL".into(),
            can_write,
            can_admin,
            created: r.created_at / 1000,
            last_pushed: secs(r.last_push_at),
            last_pulled: secs(r.last_pull_at),
            tags: None,
        }
    }
}

/// A live tag inside a repository's view.
#[derive(Serialize, ToSchema)]
pub struct RepoTag {
    pub name: String,
    pub size: Option<i64>,
    /// HTTP date.
    pub last_modified: String,
    pub manifest_digest: String,
    /// HTTP date; absent when the tag does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
}

impl RepoTag {
    pub fn new(t: &berth_core::Tag) -> RepoTag {
        RepoTag {
            name: t.name.clone(),
            size: t.size,
            last_modified: crate::auth::http_date(t.start_at),
            manifest_digest: t.manifest_digest.to_string(),
            expiration: t.expires_at.map(crate::auth::http_date),
        }
    }
}

/// A user's or robot's direct permission on a repository.
#[derive(Serialize, ToSchema)]
pub struct UserPermission {
    pub name: String,
    pub role: String,
    pub is_robot: bool,
    pub avatar: Avatar,
    pub is_org_member: bool,
}

impl UserPermission {
    fn new(name: &str, kind: &str, role: &str) -> UserPermission {
        UserPermission {
            name: name.into(),
            role: role.into(),
            is_robot: kind == "robot",
            avatar: Avatar::of(name, kind),
            is_org_member: false,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TeamPermission {
    pub name: String,
    pub role: String,
    pub avatar: Avatar,
}

impl TeamPermission {
    fn new(name: &str, role: &str) -> TeamPermission {
        TeamPermission {
            name: name.into(),
            role: role.into(),
            avatar: Avatar::of(name, "team"),
        }
    }
}

/// User and robot permissions by name.
#[derive(Serialize, ToSchema)]
pub struct UserPermissions {
    pub permissions: BTreeMap<String, UserPermission>,
}

/// Team permissions by name.
#[derive(Serialize, ToSchema)]
pub struct TeamPermissions {
    pub permissions: BTreeMap<String, TeamPermission>,
}

/// What a grant answers: the user's or robot's permission, or a team's when the name is one.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Grant {
    Account(UserPermission),
    Team(TeamPermission),
}

/// A user's effective role: none, or one entry.
#[derive(Serialize, ToSchema)]
pub struct EffectivePermissions {
    pub permissions: Vec<RoleOnly>,
}

#[derive(Serialize, ToSchema)]
pub struct RoleOnly {
    pub role: String,
}

async fn create_repo(st: Arc<AppState>, ctx: Ctx, b: NewRepo) -> Res<Created<RepoCreated>> {
    let a = ctx.actor()?;
    let ns = b.namespace.as_deref().unwrap_or(&a.name);
    let name = format!("{ns}/{}", &*b.repository);
    if b.repo_kind.as_deref().is_some_and(|k| k != "image") {
        return Err(RestError::bad("repo_kind must be image"));
    }
    st.auth
        .create_repo(
            a,
            &name,
            &b.visibility,
            b.description.as_deref(),
            ctx.ip.as_deref(),
        )
        .await?;
    Ok(Reply::new(RepoCreated {
        namespace: ns.into(),
        name: name[ns.len() + 1..].into(),
        kind: "image".into(),
    }))
}

async fn list_repos(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<RepoList>> {
    let caller = ctx.caller.as_ref();
    if caller.is_some_and(|c| !c.has_scope("repo:read")) {
        return Err(RestError::new(403, "this token lacks the repo:read scope"));
    }
    let public = ctx.q_bool("public", false);
    let namespace = ctx.q("namespace").filter(|s| !s.is_empty());
    if caller.is_none() && !public && namespace.is_none() {
        return Err(RestError::bad(
            "anonymous callers must give namespace= or public=true",
        ));
    }
    if caller.is_none() && !st.auth.config.anonymous_access {
        return Err(RestError::new(401, "authentication required"));
    }
    let listing = Listing {
        namespace,
        public: public || namespace.is_some() || caller.is_none(),
        everything: caller.is_some_and(|c| c.superuser && c.has_scope("super:user"))
            && namespace.is_some(),
        contains: None,
        ..Listing::default()
    };
    let limit = ctx
        .q("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let rows = st
        .auth
        .readable_repos(caller, &listing, ctx.q("next_page"), limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    Ok(Reply::new(RepoList {
        repositories: rows.iter().map(RepoSummary::new).collect(),
        next_page: rows.last().filter(|_| more).map(|r| r.name.clone()),
    }))
}

async fn get_repo(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Repo>> {
    // Quay includes up to 500 live tags unless `includeTags=false`, keyed by name.
    let view = Content::new(&st.registry, &st.auth)
        .repository(
            ctx.caller.as_ref(),
            ctx.p("repository"),
            ctx.q_bool("includeTags", true),
        )
        .await?;
    let mut v = Repo::new(
        &view.repository,
        view.window_s,
        view.can_write,
        view.can_admin,
    );
    v.tags = view.tags.map(|tags| {
        tags.iter()
            .map(|t| (t.name.clone(), RepoTag::new(t)))
            .collect()
    });
    Ok(Reply::new(v))
}

async fn delete_repo(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    Content::new(&st.registry, &st.auth)
        .delete_repository(
            Caller::new(ctx.actor()?, ctx.ip.as_deref()),
            ctx.p("repository"),
        )
        .await?;
    done()
}

async fn update_repo(st: Arc<AppState>, ctx: Ctx, b: RepoChange) -> Res<Reply<Success>> {
    st.auth
        .set_description(
            ctx.actor()?,
            ctx.p("repository"),
            b.description.as_deref().unwrap_or(""),
        )
        .await?;
    Ok(Reply::new(Success::yes()))
}

async fn change_visibility(st: Arc<AppState>, ctx: Ctx, b: Visibility) -> Res<Reply<Success>> {
    st.auth
        .set_visibility(ctx.actor()?, ctx.p("repository"), &b.visibility)
        .await?;
    Ok(Reply::new(Success::yes()))
}

async fn perms_of(st: &AppState, ctx: &Ctx, team: bool) -> Res<Vec<berth_core::Permission>> {
    Ok(st
        .auth
        .repo_permissions(ctx.actor()?, ctx.p("repository"))
        .await?
        .into_iter()
        .filter(|p| (p.grantee_kind == GranteeKind::Team) == team)
        .collect())
}

async fn user_perms(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<UserPermissions>> {
    let perms = perms_of(&st, &ctx, false).await?;
    Ok(Reply::new(UserPermissions {
        permissions: perms
            .iter()
            .map(|p| {
                let v = UserPermission::new(&p.grantee, p.grantee_kind.as_str(), p.role.as_str());
                (p.grantee.clone(), v)
            })
            .collect(),
    }))
}

async fn user_perm(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<UserPermission>> {
    let perms = perms_of(&st, &ctx, false).await?;
    let who = ctx.p("username");
    perms
        .iter()
        .find(|p| p.grantee == who)
        .map(|p| {
            Reply::new(UserPermission::new(
                &p.grantee,
                p.grantee_kind.as_str(),
                p.role.as_str(),
            ))
        })
        .ok_or_else(|| {
            RestError::new(
                404,
                format!("{who:?} has no direct permission on this repository"),
            )
        })
}

async fn set_user_perm(st: Arc<AppState>, ctx: Ctx, b: RoleBody) -> Res<Reply<Grant>> {
    let role = &*b.role;
    let who = st
        .auth
        .set_permission(
            ctx.actor()?,
            ctx.p("repository"),
            ctx.p("username"),
            false,
            role,
        )
        .await?;
    Ok(Reply::new(match who {
        PermHolder::Account(a) => {
            Grant::Account(UserPermission::new(&a.name, a.kind.as_str(), role))
        }
        PermHolder::Team(t) => Grant::Team(TeamPermission::new(&t.name, role)),
    }))
}

async fn del_user_perm(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .delete_permission(ctx.actor()?, ctx.p("repository"), ctx.p("username"), false)
        .await?;
    done()
}

async fn transitive(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<EffectivePermissions>> {
    let role = st
        .auth
        .effective_role(ctx.actor()?, ctx.p("repository"), ctx.p("username"))
        .await?;
    Ok(Reply::new(EffectivePermissions {
        permissions: role
            .map(|r| RoleOnly {
                role: r.as_str().into(),
            })
            .into_iter()
            .collect(),
    }))
}

async fn team_perms(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<TeamPermissions>> {
    let perms = perms_of(&st, &ctx, true).await?;
    Ok(Reply::new(TeamPermissions {
        permissions: perms
            .iter()
            .map(|p| {
                (
                    p.grantee.clone(),
                    TeamPermission::new(&p.grantee, p.role.as_str()),
                )
            })
            .collect(),
    }))
}

async fn team_perm(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<TeamPermission>> {
    let perms = perms_of(&st, &ctx, true).await?;
    let who = ctx.p("teamname");
    perms
        .iter()
        .find(|p| p.grantee == who)
        .map(|p| Reply::new(TeamPermission::new(&p.grantee, p.role.as_str())))
        .ok_or_else(|| {
            RestError::new(
                404,
                format!("team {who:?} has no permission on this repository"),
            )
        })
}

async fn set_team_perm(st: Arc<AppState>, ctx: Ctx, b: RoleBody) -> Res<Reply<TeamPermission>> {
    st.auth
        .set_permission(
            ctx.actor()?,
            ctx.p("repository"),
            ctx.p("teamname"),
            true,
            &b.role,
        )
        .await?;
    Ok(Reply::new(TeamPermission::new(ctx.p("teamname"), &b.role)))
}

async fn del_team_perm(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    st.auth
        .delete_permission(ctx.actor()?, ctx.p("repository"), ctx.p("teamname"), true)
        .await?;
    done()
}
