//! Robot accounts of users and organizations: `namespace+name`, a generated token (regenerable),
//! permissions per repository.

use super::{Ctx, R, RestError, Route, created, json, no_content, route, secs};
use crate::AppState;
use berth_core::AccountRow;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/user/robots", "The calling user's robots", "user:admin", query &["permissions", "token", "limit"], user_list),
        route!(GET "/api/v1/user/robots/{robot_shortname}", "One robot of the calling user, with its token", "user:admin", user_get),
        route!(PUT "/api/v1/user/robots/{robot_shortname}", "Create a robot for the calling user", "user:admin",
            body &["description", "unstructured_metadata:object"], user_create),
        route!(DELETE "/api/v1/user/robots/{robot_shortname}", "Delete a robot of the calling user", "user:admin", user_delete),
        route!(POST "/api/v1/user/robots/{robot_shortname}/regenerate", "New token for a robot of the calling user", "user:admin", user_regenerate),
        route!(GET "/api/v1/user/robots/{robot_shortname}/permissions", "Repository permissions of a robot of the calling user", "user:admin", user_perms),
        route!(GET "/api/v1/organization/{orgname}/robots", "An organization's robots", "org:admin", query &["permissions", "token", "limit"], org_list),
        route!(GET "/api/v1/organization/{orgname}/robots/{robot_shortname}", "One robot of an organization, with its token", "org:admin", org_get),
        route!(PUT "/api/v1/organization/{orgname}/robots/{robot_shortname}", "Create a robot for an organization", "org:admin",
            body &["description", "unstructured_metadata:object"], org_create),
        route!(DELETE "/api/v1/organization/{orgname}/robots/{robot_shortname}", "Delete a robot of an organization", "org:admin", org_delete),
        route!(POST "/api/v1/organization/{orgname}/robots/{robot_shortname}/regenerate", "New token for a robot of an organization", "org:admin", org_regenerate),
        route!(GET "/api/v1/organization/{orgname}/robots/{robot_shortname}/permissions", "Repository permissions of a robot of an organization", "org:admin", org_perms),
    ]
}

fn view(r: &AccountRow, token: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": r.name,
        "created": secs(Some(r.created_at)),
        "last_accessed": secs(r.last_accessed),
        "description": r.description.clone().unwrap_or_default(),
        "unstructured_metadata": r.metadata.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok()).unwrap_or_else(|| serde_json::json!({})),
    });
    if let Some(t) = token {
        v["token"] = t.into();
    }
    v
}

fn ns_of(ctx: &Ctx, user: bool) -> Result<String, RestError> {
    if user {
        Ok(ctx.actor()?.name.clone())
    } else {
        Ok(ctx.p("orgname").to_string())
    }
}

async fn list(st: Arc<AppState>, ctx: Ctx, user: bool) -> R {
    let a = ctx.actor()?;
    let ns = ns_of(&ctx, user)?;
    let with_token = ctx.q_bool("token", true);
    let with_perms = ctx.q_bool("permissions", false);
    let limit = ctx
        .q("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for r in st.auth.robots_in(a, &ns).await?.into_iter().take(limit) {
        let token = with_token.then(|| st.auth.robot_token(&r));
        let mut v = view(&r, token.as_deref());
        if with_perms {
            let teams: Vec<serde_json::Value> = st
                .auth
                .team_names_of(&r)
                .await?
                .into_iter()
                .map(|t| serde_json::json!({"name": t, "avatar": super::avatar(&t, "team")}))
                .collect();
            let repos: Vec<String> = st
                .auth
                .account_permissions(&r)
                .await?
                .into_iter()
                .map(|p| p.repo)
                .collect();
            v["teams"] = teams.into();
            v["repositories"] = repos.into();
        }
        out.push(v);
    }
    json(serde_json::json!({"robots": out}))
}

async fn get(st: Arc<AppState>, ctx: Ctx, user: bool) -> R {
    let ns = ns_of(&ctx, user)?;
    let (r, token) = st
        .auth
        .robot(ctx.actor()?, &ns, ctx.p("robot_shortname"))
        .await?;
    json(view(&r, Some(&token)))
}

async fn create(st: Arc<AppState>, ctx: Ctx, user: bool) -> R {
    let ns = ns_of(&ctx, user)?;
    let (r, token) = st
        .auth
        .create_robot(
            ctx.actor()?,
            &ns,
            ctx.p("robot_shortname"),
            ctx.field("description"),
            ctx.body.get("unstructured_metadata"),
        )
        .await?;
    created(view(&r, Some(&token)))
}

async fn delete(st: Arc<AppState>, ctx: Ctx, user: bool) -> R {
    let ns = ns_of(&ctx, user)?;
    st.auth
        .delete_robot(ctx.actor()?, &ns, ctx.p("robot_shortname"))
        .await?;
    no_content()
}

async fn regenerate(st: Arc<AppState>, ctx: Ctx, user: bool) -> R {
    let ns = ns_of(&ctx, user)?;
    let (r, token) = st
        .auth
        .regenerate_robot(ctx.actor()?, &ns, ctx.p("robot_shortname"))
        .await?;
    json(view(&r, Some(&token)))
}

async fn perms(st: Arc<AppState>, ctx: Ctx, user: bool) -> R {
    let ns = ns_of(&ctx, user)?;
    let (r, _) = st
        .auth
        .robot(ctx.actor()?, &ns, ctx.p("robot_shortname"))
        .await?;
    let perms = st.auth.account_permissions(&r).await?;
    json(super::permissions_view(&perms))
}

async fn user_list(st: Arc<AppState>, ctx: Ctx) -> R {
    list(st, ctx, true).await
}
async fn user_get(st: Arc<AppState>, ctx: Ctx) -> R {
    get(st, ctx, true).await
}
async fn user_create(st: Arc<AppState>, ctx: Ctx) -> R {
    create(st, ctx, true).await
}
async fn user_delete(st: Arc<AppState>, ctx: Ctx) -> R {
    delete(st, ctx, true).await
}
async fn user_regenerate(st: Arc<AppState>, ctx: Ctx) -> R {
    regenerate(st, ctx, true).await
}
async fn user_perms(st: Arc<AppState>, ctx: Ctx) -> R {
    perms(st, ctx, true).await
}
async fn org_list(st: Arc<AppState>, ctx: Ctx) -> R {
    list(st, ctx, false).await
}
async fn org_get(st: Arc<AppState>, ctx: Ctx) -> R {
    get(st, ctx, false).await
}
async fn org_create(st: Arc<AppState>, ctx: Ctx) -> R {
    create(st, ctx, false).await
}
async fn org_delete(st: Arc<AppState>, ctx: Ctx) -> R {
    delete(st, ctx, false).await
}
async fn org_regenerate(st: Arc<AppState>, ctx: Ctx) -> R {
    regenerate(st, ctx, false).await
}
async fn org_perms(st: Arc<AppState>, ctx: Ctx) -> R {
    perms(st, ctx, false).await
}
