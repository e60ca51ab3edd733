//! Robot accounts of users and organizations: `namespace+name`, a generated token (regenerable),
//! permissions per repository.

use super::views::{RepoPermissions, TeamRef};
use super::{Created, Ctx, Done, Reply, RestError, Route, done, route, secs};
use crate::AppState;
use berth_core::Account;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

const LIST_QUERY: &[&str] = &["permissions", "token", "limit"];

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/user/robots", "The calling user's robots", "user:admin",
            user_list() -> Reply<Robots>, query LIST_QUERY),
        route!(GET "/api/v1/user/robots/{robot_shortname}", "One robot of the calling user, with its token", "user:admin",
            user_get() -> Reply<Robot>),
        route!(PUT "/api/v1/user/robots/{robot_shortname}", "Create a robot for the calling user", "user:admin",
            user_create(NewRobot) -> Created<Robot>),
        route!(DELETE "/api/v1/user/robots/{robot_shortname}", "Delete a robot of the calling user", "user:admin",
            user_delete() -> Done),
        route!(POST "/api/v1/user/robots/{robot_shortname}/regenerate", "New token for a robot of the calling user", "user:admin",
            user_regenerate() -> Reply<Robot>),
        route!(GET "/api/v1/user/robots/{robot_shortname}/permissions", "Repository permissions of a robot of the calling user", "user:admin",
            user_perms() -> Reply<RepoPermissions>),
        route!(GET "/api/v1/organization/{orgname}/robots", "An organization's robots", "org:admin",
            org_list() -> Reply<Robots>, query LIST_QUERY),
        route!(GET "/api/v1/organization/{orgname}/robots/{robot_shortname}", "One robot of an organization, with its token", "org:admin",
            org_get() -> Reply<Robot>),
        route!(PUT "/api/v1/organization/{orgname}/robots/{robot_shortname}", "Create a robot for an organization", "org:admin",
            org_create(NewRobot) -> Created<Robot>),
        route!(DELETE "/api/v1/organization/{orgname}/robots/{robot_shortname}", "Delete a robot of an organization", "org:admin",
            org_delete() -> Done),
        route!(POST "/api/v1/organization/{orgname}/robots/{robot_shortname}/regenerate", "New token for a robot of an organization", "org:admin",
            org_regenerate() -> Reply<Robot>),
        route!(GET "/api/v1/organization/{orgname}/robots/{robot_shortname}/permissions", "Repository permissions of a robot of an organization", "org:admin",
            org_perms() -> Reply<RepoPermissions>),
    ]
}

/// `PUT …/robots/{robot_shortname}`: both fields optional (an empty body makes a plain robot).
#[derive(Deserialize, ToSchema)]
pub struct NewRobot {
    pub description: Option<String>,
    /// Any JSON object, kept and answered as given.
    #[schema(value_type = Option<Object>)]
    pub unstructured_metadata: Option<serde_json::Value>,
}

/// A robot account (`namespace+name`).
#[derive(Serialize, ToSchema)]
pub struct Robot {
    pub name: String,
    pub created: i64,
    pub last_accessed: Option<i64>,
    pub description: String,
    #[schema(value_type = Object)]
    pub unstructured_metadata: serde_json::Value,
    /// Its password for the registry; absent in lists asked with `token=false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Lists asked with `permissions=true` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<TeamRef>>,
    /// Lists asked with `permissions=true` only: the repositories it has a permission on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
}

impl Robot {
    pub fn new(r: &Account, token: Option<String>) -> Robot {
        Robot {
            name: r.name.clone(),
            created: r.created_at / 1000,
            last_accessed: secs(r.last_accessed),
            description: r.description.clone().unwrap_or_default(),
            unstructured_metadata: r
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                .unwrap_or_else(|| serde_json::json!({})),
            token,
            teams: None,
            repositories: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Robots {
    pub robots: Vec<Robot>,
}

fn ns_of(ctx: &Ctx, user: bool) -> Res<String> {
    if user {
        Ok(ctx.actor()?.name.clone())
    } else {
        Ok(ctx.p("orgname").to_string())
    }
}

async fn list(st: Arc<AppState>, ctx: Ctx, user: bool) -> Res<Reply<Robots>> {
    let a = ctx.actor()?;
    let ns = ns_of(&ctx, user)?;
    let with_token = ctx.q_bool("token", true);
    let with_perms = ctx.q_bool("permissions", false);
    let limit = ctx
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (r, token) in st
        .auth
        .robots_in(a, &ns, with_token)
        .await?
        .into_iter()
        .take(limit)
    {
        let mut v = Robot::new(&r, token);
        if with_perms {
            let teams = st.auth.team_names_of(&r).await?;
            v.teams = Some(teams.iter().map(|t| TeamRef::new(t)).collect());
            let perms = st.auth.account_permissions(&r).await?;
            v.repositories = Some(perms.into_iter().map(|p| p.repo).collect());
        }
        out.push(v);
    }
    Ok(Reply::new(Robots { robots: out }))
}

async fn get(st: Arc<AppState>, ctx: Ctx, user: bool) -> Res<Reply<Robot>> {
    let ns = ns_of(&ctx, user)?;
    let (r, token) = st
        .auth
        .robot(ctx.actor()?, &ns, ctx.p("robot_shortname"))
        .await?;
    Ok(Reply::new(Robot::new(&r, Some(token))))
}

async fn create(st: Arc<AppState>, ctx: Ctx, user: bool, b: NewRobot) -> Res<Created<Robot>> {
    let ns = ns_of(&ctx, user)?;
    let (r, token) = st
        .auth
        .create_robot(
            ctx.actor()?,
            &ns,
            ctx.p("robot_shortname"),
            b.description.as_deref(),
            b.unstructured_metadata.as_ref(),
        )
        .await?;
    Ok(Reply::new(Robot::new(&r, Some(token))))
}

async fn delete(st: Arc<AppState>, ctx: Ctx, user: bool) -> Res<Done> {
    let ns = ns_of(&ctx, user)?;
    st.auth
        .delete_robot(ctx.actor()?, &ns, ctx.p("robot_shortname"))
        .await?;
    done()
}

async fn regenerate(st: Arc<AppState>, ctx: Ctx, user: bool) -> Res<Reply<Robot>> {
    let ns = ns_of(&ctx, user)?;
    let (r, token) = st
        .auth
        .regenerate_robot(ctx.actor()?, &ns, ctx.p("robot_shortname"))
        .await?;
    Ok(Reply::new(Robot::new(&r, Some(token))))
}

async fn perms(st: Arc<AppState>, ctx: Ctx, user: bool) -> Res<Reply<RepoPermissions>> {
    let ns = ns_of(&ctx, user)?;
    let (r, _) = st
        .auth
        .robot(ctx.actor()?, &ns, ctx.p("robot_shortname"))
        .await?;
    let perms = st.auth.account_permissions(&r).await?;
    Ok(Reply::new(RepoPermissions::new(&perms)))
}

async fn user_list(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Robots>> {
    list(st, ctx, true).await
}
async fn user_get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Robot>> {
    get(st, ctx, true).await
}
async fn user_create(st: Arc<AppState>, ctx: Ctx, b: NewRobot) -> Res<Created<Robot>> {
    create(st, ctx, true, b).await
}
async fn user_delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    delete(st, ctx, true).await
}
async fn user_regenerate(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Robot>> {
    regenerate(st, ctx, true).await
}
async fn user_perms(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<RepoPermissions>> {
    perms(st, ctx, true).await
}
async fn org_list(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Robots>> {
    list(st, ctx, false).await
}
async fn org_get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Robot>> {
    get(st, ctx, false).await
}
async fn org_create(st: Arc<AppState>, ctx: Ctx, b: NewRobot) -> Res<Created<Robot>> {
    create(st, ctx, false, b).await
}
async fn org_delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    delete(st, ctx, false).await
}
async fn org_regenerate(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Robot>> {
    regenerate(st, ctx, false).await
}
async fn org_perms(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<RepoPermissions>> {
    perms(st, ctx, false).await
}
