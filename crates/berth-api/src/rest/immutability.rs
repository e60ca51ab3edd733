//! Immutability policies (Quay's `immutabilitypolicy`): tag-name patterns of an organization, a
//! user's namespace, or one repository; matching tags cannot be moved, deleted or expired.

use super::{Ctx, R, RestError, Route, created, json, route};
use crate::AppState;
use berth_core::ImmutabilityPolicy;
use berth_core::auth::Role;
use std::sync::Arc;

const BODY: &[&str] = &["*tagPattern", "tagPatternMatches:boolean"];

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/immutabilitypolicy/", "An organization's immutability policies", "org:admin", org_list),
        route!(POST "/api/v1/organization/{orgname}/immutabilitypolicy/", "Create an immutability policy for every repository of an organization", "org:admin", body BODY, org_create),
        route!(GET "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "One immutability policy", "org:admin", org_get),
        route!(PUT "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "org:admin", body BODY, org_update),
        route!(DELETE "/api/v1/organization/{orgname}/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "org:admin", org_delete),
        route!(GET "/api/v1/user/immutabilitypolicy/", "The calling user's namespace's immutability policies", "user:admin", user_list),
        route!(POST "/api/v1/user/immutabilitypolicy/", "Create an immutability policy for the calling user's repositories", "user:admin", body BODY, user_create),
        route!(GET "/api/v1/user/immutabilitypolicy/{policy_uuid}", "One immutability policy", "user:admin", user_get),
        route!(PUT "/api/v1/user/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "user:admin", body BODY, user_update),
        route!(DELETE "/api/v1/user/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "user:admin", user_delete),
        route!(GET "/api/v1/repository/{repository}/immutabilitypolicy/", "A repository's own immutability policies", "repo:admin", repo_list),
        route!(POST "/api/v1/repository/{repository}/immutabilitypolicy/", "Create an immutability policy for one repository", "repo:admin", body BODY, repo_create),
        route!(GET "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "One immutability policy", "repo:admin", repo_get),
        route!(PUT "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "Change an immutability policy", "repo:admin", body BODY, repo_update),
        route!(DELETE "/api/v1/repository/{repository}/immutabilitypolicy/{policy_uuid}", "Delete an immutability policy", "repo:admin", repo_delete),
    ]
}

pub(super) enum Level {
    Org,
    User,
    Repo,
}

/// (namespace, repository) the policy lives at, once the caller is allowed there.
pub(super) async fn scope(
    st: &AppState,
    ctx: &Ctx,
    level: &Level,
) -> Result<(String, Option<String>), RestError> {
    let a = ctx.actor()?;
    match level {
        Level::Org => Ok((st.auth.org_admin(a, ctx.p("orgname")).await?.name, None)),
        Level::User => {
            if a.kind != berth_core::auth::AccountKind::User || !a.has_scope("user:admin") {
                return Err(RestError::new(
                    403,
                    "needs a user's credentials with the user:admin scope",
                ));
            }
            Ok((a.name.clone(), None))
        }
        Level::Repo => {
            let r = st
                .auth
                .repo_with_role(Some(a), ctx.p("repository"), Role::Admin)
                .await?;
            Ok((r.namespace, Some(r.name)))
        }
    }
}

fn view(p: &ImmutabilityPolicy) -> serde_json::Value {
    serde_json::json!({"uuid": p.uuid, "tagPattern": p.pattern, "tagPatternMatches": p.matches})
}

fn fields(ctx: &Ctx) -> Result<(String, bool), RestError> {
    let pattern = ctx.required("tagPattern")?;
    if pattern.len() > 256 {
        return Err(RestError::bad("tagPattern is longer than 256 characters"));
    }
    regex::Regex::new(pattern)
        .map_err(|e| RestError::bad(format!("tagPattern is not a regular expression: {e}")))?;
    let matches = ctx
        .body
        .get("tagPatternMatches")
        .and_then(|v| v.as_bool())
        .unwrap_or(true);
    Ok((pattern.to_string(), matches))
}

async fn audit(
    st: &AppState,
    ctx: &Ctx,
    kind: &str,
    ns: &str,
    repo: Option<&str>,
    meta: serde_json::Value,
) {
    st.auth
        .audit
        .record(ctx.audit(kind).scope(ns, repo).meta(meta))
        .await;
}

async fn list(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let (ns, repo) = scope(&st, &ctx, &level).await?;
    let ps = st
        .auth
        .db
        .immutability_policies_at(&ns, repo.as_deref())
        .await?;
    json(serde_json::json!({"policies": ps.iter().map(view).collect::<Vec<_>>()}))
}

async fn get(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let (ns, repo) = scope(&st, &ctx, &level).await?;
    let id = ctx.p("policy_uuid");
    st.auth
        .db
        .immutability_policies_at(&ns, repo.as_deref())
        .await?
        .iter()
        .find(|p| p.uuid == id)
        .map(|p| json(view(p)))
        .unwrap_or_else(|| {
            Err(RestError::new(
                404,
                format!("no immutability policy {id:?}"),
            ))
        })
}

async fn create(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let (ns, repo) = scope(&st, &ctx, &level).await?;
    let (pattern, matches) = fields(&ctx)?;
    let p = ImmutabilityPolicy {
        uuid: uuid::Uuid::new_v4().to_string(),
        namespace: ns.clone(),
        repository: repo.clone(),
        pattern,
        matches,
    };
    st.auth.db.insert_immutability_policy(&p).await?;
    st.registry
        .immutability_changed(&ns, repo.as_deref())
        .await?;
    audit(
        &st,
        &ctx,
        "create_immutability_policy",
        &ns,
        repo.as_deref(),
        view(&p),
    )
    .await;
    created(serde_json::json!({"uuid": p.uuid}))
}

async fn update(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let (ns, repo) = scope(&st, &ctx, &level).await?;
    let (pattern, matches) = fields(&ctx)?;
    let p = ImmutabilityPolicy {
        uuid: ctx.p("policy_uuid").to_string(),
        namespace: ns.clone(),
        repository: repo.clone(),
        pattern,
        matches,
    };
    if !st.auth.db.update_immutability_policy(&p).await? {
        return Err(RestError::new(
            404,
            format!("no immutability policy {:?}", p.uuid),
        ));
    }
    st.registry
        .immutability_changed(&ns, repo.as_deref())
        .await?;
    audit(
        &st,
        &ctx,
        "update_immutability_policy",
        &ns,
        repo.as_deref(),
        view(&p),
    )
    .await;
    json(serde_json::json!({"uuid": p.uuid}))
}

async fn delete(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let (ns, repo) = scope(&st, &ctx, &level).await?;
    let id = ctx.p("policy_uuid");
    if !st
        .auth
        .db
        .delete_immutability_policy(&ns, repo.as_deref(), id)
        .await?
    {
        return Err(RestError::new(
            404,
            format!("no immutability policy {id:?}"),
        ));
    }
    audit(
        &st,
        &ctx,
        "delete_immutability_policy",
        &ns,
        repo.as_deref(),
        serde_json::json!({"uuid": id}),
    )
    .await;
    json(serde_json::json!({"uuid": id}))
}

async fn org_list(st: Arc<AppState>, ctx: Ctx) -> R {
    list(st, ctx, Level::Org).await
}
async fn org_create(st: Arc<AppState>, ctx: Ctx) -> R {
    create(st, ctx, Level::Org).await
}
async fn org_get(st: Arc<AppState>, ctx: Ctx) -> R {
    get(st, ctx, Level::Org).await
}
async fn org_update(st: Arc<AppState>, ctx: Ctx) -> R {
    update(st, ctx, Level::Org).await
}
async fn org_delete(st: Arc<AppState>, ctx: Ctx) -> R {
    delete(st, ctx, Level::Org).await
}
async fn user_list(st: Arc<AppState>, ctx: Ctx) -> R {
    list(st, ctx, Level::User).await
}
async fn user_create(st: Arc<AppState>, ctx: Ctx) -> R {
    create(st, ctx, Level::User).await
}
async fn user_get(st: Arc<AppState>, ctx: Ctx) -> R {
    get(st, ctx, Level::User).await
}
async fn user_update(st: Arc<AppState>, ctx: Ctx) -> R {
    update(st, ctx, Level::User).await
}
async fn user_delete(st: Arc<AppState>, ctx: Ctx) -> R {
    delete(st, ctx, Level::User).await
}
async fn repo_list(st: Arc<AppState>, ctx: Ctx) -> R {
    list(st, ctx, Level::Repo).await
}
async fn repo_create(st: Arc<AppState>, ctx: Ctx) -> R {
    create(st, ctx, Level::Repo).await
}
async fn repo_get(st: Arc<AppState>, ctx: Ctx) -> R {
    get(st, ctx, Level::Repo).await
}
async fn repo_update(st: Arc<AppState>, ctx: Ctx) -> R {
    update(st, ctx, Level::Repo).await
}
async fn repo_delete(st: Arc<AppState>, ctx: Ctx) -> R {
    delete(st, ctx, Level::Repo).await
}
