//! Auto-prune policies (Quay's `autoprunepolicy`) of an organization, a user's namespace or one
//! repository, with Berth's dry run (what a policy would delete now and the bytes it would free)
//! and run-now.

use super::immutability::{Level, scope};
use super::{Ctx, R, RestError, Route, created, json, route};
use crate::AppState;
use berth_core::AutoPrunePolicy;
use std::sync::Arc;

const BODY: &[&str] = &[
    "*method",
    "*value",
    "tagPattern",
    "tagPatternMatches:boolean",
];

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/", "An organization's auto-prune policies", "org:admin", org_list),
        route!(POST "/api/v1/organization/{orgname}/autoprunepolicy/", "Create an auto-prune policy for every repository of an organization (method number_of_tags or creation_date)", "org:admin", body BODY, org_create),
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "org:admin", org_get),
        route!(PUT "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "org:admin", body BODY, org_update),
        route!(DELETE "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "org:admin", org_delete),
        route!(GET "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now, and the bytes that would free (Berth)", "org:admin", org_dryrun),
        route!(POST "/api/v1/organization/{orgname}/autoprunepolicy/{policy_uuid}/run", "Apply the policy now; answers what it deleted (Berth)", "org:admin", org_run),
        route!(GET "/api/v1/user/autoprunepolicy/", "The calling user's auto-prune policies", "user:admin", user_list),
        route!(POST "/api/v1/user/autoprunepolicy/", "Create an auto-prune policy for the calling user's repositories", "user:admin", body BODY, user_create),
        route!(GET "/api/v1/user/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "user:admin", user_get),
        route!(PUT "/api/v1/user/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "user:admin", body BODY, user_update),
        route!(DELETE "/api/v1/user/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "user:admin", user_delete),
        route!(GET "/api/v1/user/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now (Berth)", "user:admin", user_dryrun),
        route!(POST "/api/v1/user/autoprunepolicy/{policy_uuid}/run", "Apply the policy now (Berth)", "user:admin", user_run),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/", "A repository's own auto-prune policies", "repo:admin", repo_list),
        route!(POST "/api/v1/repository/{repository}/autoprunepolicy/", "Create an auto-prune policy for one repository", "repo:admin", body BODY, repo_create),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "One auto-prune policy", "repo:admin", repo_get),
        route!(PUT "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "Change an auto-prune policy", "repo:admin", body BODY, repo_update),
        route!(DELETE "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}", "Delete an auto-prune policy", "repo:admin", repo_delete),
        route!(GET "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}/dryrun", "What the policy would delete now (Berth)", "repo:admin", repo_dryrun),
        route!(POST "/api/v1/repository/{repository}/autoprunepolicy/{policy_uuid}/run", "Apply the policy now (Berth)", "repo:admin", repo_run),
    ]
}

fn view(p: &AutoPrunePolicy) -> serde_json::Value {
    let value = if p.method == "number_of_tags" {
        p.value
            .parse::<i64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| p.value.clone().into())
    } else {
        p.value.clone().into()
    };
    let mut v = serde_json::json!({"uuid": p.uuid, "method": p.method, "value": value});
    if let Some(pat) = &p.pattern {
        v["tagPattern"] = pat.clone().into();
        v["tagPatternMatches"] = p.matches.into();
    }
    v
}

fn fields(
    ctx: &Ctx,
    ns: &str,
    repo: Option<&str>,
    uuid: String,
) -> Result<AutoPrunePolicy, RestError> {
    let method = ctx.required("method")?;
    let value = ctx.body.get("value").cloned().unwrap_or_default();
    let pattern = ctx.field("tagPattern").filter(|s| !s.is_empty());
    let value = berth_core::autoprune::validate_policy(method, &value, pattern)?;
    Ok(AutoPrunePolicy {
        uuid,
        namespace: ns.to_string(),
        repository: repo.map(String::from),
        method: method.to_string(),
        value,
        pattern: pattern.map(String::from),
        matches: ctx
            .body
            .get("tagPatternMatches")
            .and_then(|v| v.as_bool())
            .unwrap_or(true),
    })
}

/// Audited as Quay names it: `{verb}_namespace_autoprune_policy` or
/// `{verb}_repository_autoprune_policy`.
async fn audit(st: &AppState, ctx: &Ctx, verb: &str, p: &AutoPrunePolicy) {
    let level = if p.repository.is_some() {
        "repository"
    } else {
        "namespace"
    };
    let kind = format!("{verb}_{level}_autoprune_policy");
    st.auth
        .audit
        .record(
            ctx.audit(&kind)
                .scope(&p.namespace, p.repository.as_deref())
                .meta(view(p)),
        )
        .await;
}

async fn find(st: &AppState, ctx: &Ctx, level: &Level) -> Result<AutoPrunePolicy, RestError> {
    let (ns, repo) = scope(st, ctx, level).await?;
    let id = ctx.p("policy_uuid");
    st.auth
        .db
        .autoprune_policies_at(&ns, repo.as_deref())
        .await?
        .into_iter()
        .find(|p| p.uuid == id)
        .ok_or_else(|| RestError::new(404, format!("no auto-prune policy {id:?}")))
}

async fn list(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let (ns, repo) = scope(&st, &ctx, &level).await?;
    let ps = st
        .auth
        .db
        .autoprune_policies_at(&ns, repo.as_deref())
        .await?;
    json(serde_json::json!({"policies": ps.iter().map(view).collect::<Vec<_>>()}))
}

async fn get(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    json(view(&find(&st, &ctx, &level).await?))
}

async fn create(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let (ns, repo) = scope(&st, &ctx, &level).await?;
    let p = fields(&ctx, &ns, repo.as_deref(), uuid::Uuid::new_v4().to_string())?;
    st.auth.db.insert_autoprune_policy(&p).await?;
    audit(&st, &ctx, "create", &p).await;
    apply_soon(&st, p.clone());
    created(serde_json::json!({"uuid": p.uuid}))
}

/// A new or changed policy is applied at once rather than at the next poll
/// (`AUTO_PRUNING_POLL_PERIOD`), in the background so the answer does not wait for it; should
/// this process stop first, the next poll applies it.
fn apply_soon(st: &AppState, p: AutoPrunePolicy) {
    if !st.registry.config.gc.autoprune {
        return;
    }
    let reg = st.registry.clone();
    tokio::spawn(async move {
        match reg.prune_apply(&p).await {
            Ok(done) if !done.is_empty() => {
                tracing::info!(policy = %p.uuid, pruned = done.len(), "applied a new auto-prune policy");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(policy = %p.uuid, error = %e, "applying a new auto-prune policy failed; the next poll retries")
            }
        }
    });
}

async fn update(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let (ns, repo) = scope(&st, &ctx, &level).await?;
    let p = fields(&ctx, &ns, repo.as_deref(), ctx.p("policy_uuid").to_string())?;
    if !st.auth.db.update_autoprune_policy(&p).await? {
        return Err(RestError::new(
            404,
            format!("no auto-prune policy {:?}", p.uuid),
        ));
    }
    audit(&st, &ctx, "update", &p).await;
    apply_soon(&st, p.clone());
    json(serde_json::json!({"uuid": p.uuid}))
}

async fn delete(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let p = find(&st, &ctx, &level).await?;
    st.auth
        .db
        .delete_autoprune_policy(&p.namespace, p.repository.as_deref(), &p.uuid)
        .await?;
    audit(&st, &ctx, "delete", &p).await;
    json(serde_json::json!({"uuid": p.uuid}))
}

async fn dryrun(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let p = find(&st, &ctx, &level).await?;
    let plan = st.registry.prune_plan(&p).await?;
    json(serde_json::to_value(plan).unwrap_or_default())
}

async fn run(st: Arc<AppState>, ctx: Ctx, level: Level) -> R {
    let p = find(&st, &ctx, &level).await?;
    let done = st.registry.prune_apply(&p).await?;
    json(serde_json::json!({"tags": done}))
}

macro_rules! at_level {
    ($($name:ident => $f:ident, $level:expr;)*) => {
        $(async fn $name(st: Arc<AppState>, ctx: Ctx) -> R { $f(st, ctx, $level).await })*
    };
}

at_level! {
    org_list => list, Level::Org;
    org_create => create, Level::Org;
    org_get => get, Level::Org;
    org_update => update, Level::Org;
    org_delete => delete, Level::Org;
    org_dryrun => dryrun, Level::Org;
    org_run => run, Level::Org;
    user_list => list, Level::User;
    user_create => create, Level::User;
    user_get => get, Level::User;
    user_update => update, Level::User;
    user_delete => delete, Level::User;
    user_dryrun => dryrun, Level::User;
    user_run => run, Level::User;
    repo_list => list, Level::Repo;
    repo_create => create, Level::Repo;
    repo_get => get, Level::Repo;
    repo_update => update, Level::Repo;
    repo_delete => delete, Level::Repo;
    repo_dryrun => dryrun, Level::Repo;
    repo_run => run, Level::Repo;
}
