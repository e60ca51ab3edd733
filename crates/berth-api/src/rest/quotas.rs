//! Namespace quotas with Quay's paths (`organization/{org}/quota`, `user/quota`,
//! `superuser/.../quota`) and Berth's storage-usage answers (`repository/{repo}/usage`).
//! Reading a quota needs membership of the namespace; creating and changing one needs a superuser
//! (and `FEATURE_EDIT_QUOTA`), as in Quay.

use super::policies::{at_level, caller};
use super::{Ctx, R, Route, created, json, no_content, route};
use crate::AppState;
use berth_core::quotas::{
    NamespaceQuota, QuotaPath, QuotaSize, QuotaThreshold, Quotas, ThresholdFields, human_size,
};
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/quota", "An organization's quota, its limits and its usage", "org:admin", org_list),
        route!(POST "/api/v1/organization/{orgname}/quota", "Give an organization a quota (limit_bytes, or limit such as \"10 GiB\")", "super:user",
            body &["limit_bytes:integer", "limit"], org_create),
        route!(GET "/api/v1/organization/{orgname}/quota/{quota_id}", "One quota of an organization", "org:admin", org_get),
        route!(PUT "/api/v1/organization/{orgname}/quota/{quota_id}", "Change an organization's quota", "super:user",
            body &["limit_bytes:integer", "limit"], org_update),
        route!(DELETE "/api/v1/organization/{orgname}/quota/{quota_id}", "Remove an organization's quota", "super:user", org_delete),
        route!(GET "/api/v1/organization/{orgname}/quota/{quota_id}/limit", "A quota's warning and reject thresholds", "org:admin", org_limits),
        route!(POST "/api/v1/organization/{orgname}/quota/{quota_id}/limit", "Add a Warning or Reject threshold (percent of the quota)", "super:user",
            body &["*type", "threshold_percent:integer"], org_limit_create),
        route!(GET "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}", "One threshold", "org:admin", org_limit_get),
        route!(PUT "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}", "Change a threshold", "super:user",
            body &["type", "threshold_percent:integer"], org_limit_update),
        route!(DELETE "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}", "Remove a threshold", "super:user", org_limit_delete),
        route!(GET "/api/v1/user/quota", "The caller's own namespace quota and usage", "user:read", user_list),
        route!(GET "/api/v1/user/quota/{quota_id}", "One quota of the caller's namespace", "user:read", user_get),
        route!(GET "/api/v1/user/quota/{quota_id}/limit", "Thresholds of the caller's quota", "user:read", user_limits),
        route!(GET "/api/v1/user/quota/{quota_id}/limit/{limit_id}", "One threshold of the caller's quota", "user:read", user_limit_get),
        route!(GET "/api/v1/superuser/users/{namespace}/quota", "A user's quota", "super:user", su_list),
        route!(POST "/api/v1/superuser/users/{namespace}/quota", "Give a user namespace a quota", "super:user",
            body &["limit_bytes:integer", "limit"], su_create),
        route!(PUT "/api/v1/superuser/users/{namespace}/quota/{quota_id}", "Change a user's quota", "super:user",
            body &["limit_bytes:integer", "limit"], su_update),
        route!(DELETE "/api/v1/superuser/users/{namespace}/quota/{quota_id}", "Remove a user's quota", "super:user", su_delete),
        route!(GET "/api/v1/superuser/organization/{namespace}/quota", "An organization's quota", "super:user", su_list),
        route!(POST "/api/v1/superuser/organization/{namespace}/quota", "Give an organization a quota", "super:user",
            body &["limit_bytes:integer", "limit"], su_create),
        route!(PUT "/api/v1/superuser/organization/{namespace}/quota/{quota_id}", "Change an organization's quota", "super:user",
            body &["limit_bytes:integer", "limit"], su_update),
        route!(DELETE "/api/v1/superuser/organization/{namespace}/quota/{quota_id}", "Remove an organization's quota", "super:user", su_delete),
        route!(GET "/api/v1/repository/{repository}/usage", "Storage of a repository after deduplication, what deleting it or each tag would free (Berth)", "repo:read", repo_usage),
    ]
}

fn limit_json(l: &QuotaThreshold) -> serde_json::Value {
    serde_json::json!({"id": l.id, "type": l.kind, "limit_percent": l.percent})
}

fn quota_json(q: &NamespaceQuota) -> serde_json::Value {
    serde_json::json!({
        "id": q.id,
        "limit_bytes": q.limit_bytes,
        "limit": human_size(q.limit_bytes),
        "default_config": q.is_default,
        "default_config_exists": q.default_exists,
        "limits": q.limits.iter().map(limit_json).collect::<Vec<_>>(),
        "usage_bytes": q.usage_bytes,
    })
}

fn quotas(st: &AppState) -> Quotas<'_> {
    Quotas::new(&st.registry, &st.auth)
}

/// The namespace a route's path names.
#[derive(Clone, Copy)]
enum At {
    Org,
    Own,
    Superuser,
}

impl At {
    fn path(self, ctx: &Ctx) -> QuotaPath<'_> {
        match self {
            At::Org => QuotaPath::Namespace(ctx.p("orgname")),
            At::Own => QuotaPath::Own,
            At::Superuser => QuotaPath::Superuser(ctx.p("namespace")),
        }
    }
}

fn size(ctx: &Ctx) -> QuotaSize {
    QuotaSize {
        limit_bytes: ctx.body.get("limit_bytes").and_then(|v| v.as_i64()),
        limit: ctx.field("limit").map(String::from),
    }
}

fn threshold(ctx: &Ctx) -> ThresholdFields {
    ThresholdFields {
        kind: ctx.field("type").map(String::from),
        percent: ctx.body.get("threshold_percent").and_then(|v| v.as_i64()),
    }
}

async fn list(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let qs = quotas(&st).list(ctx.actor()?, &at.path(&ctx)).await?;
    json(serde_json::Value::Array(
        qs.iter().map(quota_json).collect(),
    ))
}

async fn get(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let q = quotas(&st)
        .get(ctx.actor()?, &at.path(&ctx), ctx.p("quota_id"))
        .await?;
    json(quota_json(&q))
}

async fn create(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    quotas(&st)
        .create(caller(&ctx)?, &at.path(&ctx), &size(&ctx))
        .await?;
    created(serde_json::json!("Created"))
}

async fn update(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let q = quotas(&st)
        .update(
            caller(&ctx)?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            &size(&ctx),
        )
        .await?;
    json(quota_json(&q))
}

async fn delete(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    quotas(&st)
        .delete(caller(&ctx)?, &at.path(&ctx), ctx.p("quota_id"))
        .await?;
    no_content()
}

async fn limits(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let ls = quotas(&st)
        .thresholds(ctx.actor()?, &at.path(&ctx), ctx.p("quota_id"))
        .await?;
    json(serde_json::json!(
        ls.iter().map(limit_json).collect::<Vec<_>>()
    ))
}

async fn limit_get(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let l = quotas(&st)
        .threshold(
            ctx.actor()?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            ctx.p("limit_id"),
        )
        .await?;
    json(limit_json(&l))
}

async fn limit_create(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    quotas(&st)
        .add_threshold(
            caller(&ctx)?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            &threshold(&ctx),
        )
        .await?;
    created(serde_json::json!("Created"))
}

async fn limit_update(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    let l = quotas(&st)
        .update_threshold(
            caller(&ctx)?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            ctx.p("limit_id"),
            &threshold(&ctx),
        )
        .await?;
    json(limit_json(&l))
}

async fn limit_delete(st: Arc<AppState>, ctx: Ctx, at: At) -> R {
    quotas(&st)
        .delete_threshold(
            caller(&ctx)?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            ctx.p("limit_id"),
        )
        .await?;
    no_content()
}

async fn repo_usage(st: Arc<AppState>, ctx: Ctx) -> R {
    let u = quotas(&st)
        .repo_usage(ctx.caller.as_ref(), ctx.p("repository"))
        .await?;
    json(serde_json::to_value(u).unwrap_or_default())
}

at_level! {
    org_list => list, At::Org;
    org_create => create, At::Org;
    org_get => get, At::Org;
    org_update => update, At::Org;
    org_delete => delete, At::Org;
    org_limits => limits, At::Org;
    org_limit_create => limit_create, At::Org;
    org_limit_get => limit_get, At::Org;
    org_limit_update => limit_update, At::Org;
    org_limit_delete => limit_delete, At::Org;
    user_list => list, At::Own;
    user_get => get, At::Own;
    user_limits => limits, At::Own;
    user_limit_get => limit_get, At::Own;
    su_list => list, At::Superuser;
    su_create => create, At::Superuser;
    su_update => update, At::Superuser;
    su_delete => delete, At::Superuser;
}
