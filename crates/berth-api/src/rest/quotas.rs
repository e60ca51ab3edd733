//! Namespace quotas with Quay's paths (`organization/{org}/quota`, `user/quota`,
//! `superuser/.../quota`) and Berth's storage-usage answers (`repository/{repo}/usage`).
//! Reading a quota needs membership of the namespace; creating and changing one needs a superuser
//! (and `FEATURE_EDIT_QUOTA`), as in Quay.

use super::superuser::require;
use super::{Ctx, R, RestError, Route, created, json, no_content, route};
use crate::AppState;
use berth_core::QuotaRow;
use berth_core::auth::Role;
use berth_core::quotas::{human_size, parse_size};
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

fn limit_json(l: &berth_core::QuotaLimit) -> serde_json::Value {
    serde_json::json!({"id": l.id, "type": l.kind, "limit_percent": l.percent})
}

fn quota_json(st: &AppState, q: &QuotaRow, usage: i64) -> serde_json::Value {
    serde_json::json!({
        "id": q.id,
        "limit_bytes": q.limit_bytes,
        "limit": human_size(q.limit_bytes),
        "default_config": false,
        "default_config_exists": st.registry.config.quota.system_reject_bytes > 0,
        "limits": q.limits.iter().map(limit_json).collect::<Vec<_>>(),
        "usage_bytes": usage,
    })
}

/// The namespace's quotas as Quay lists them: the namespace's own, or the system default.
async fn list_for(st: &AppState, ns: &str) -> R {
    let usage = st.registry.namespace_usage(ns).await?;
    let sys = st.registry.config.quota.system_reject_bytes;
    let items = match st.auth.db.quota_for(ns).await? {
        Some(q) => vec![quota_json(st, &q, usage)],
        None if sys > 0 => vec![serde_json::json!({
            "id": null, "limit_bytes": sys, "limit": human_size(sys), "default_config": true,
            "default_config_exists": true, "limits": [{"id": null, "type": "Reject", "limit_percent": 100}],
            "usage_bytes": usage,
        })],
        None => Vec::new(),
    };
    json(serde_json::Value::Array(items))
}

fn quota_id(ctx: &Ctx) -> Result<i64, RestError> {
    ctx.p("quota_id")
        .parse()
        .map_err(|_| RestError::new(404, "no such quota"))
}

fn limit_id(ctx: &Ctx) -> Result<i64, RestError> {
    ctx.p("limit_id")
        .parse()
        .map_err(|_| RestError::new(404, "no such quota limit"))
}

async fn quota_of(st: &AppState, ns: &str, ctx: &Ctx) -> Result<QuotaRow, RestError> {
    let id = quota_id(ctx)?;
    st.auth
        .db
        .quota_for(ns)
        .await?
        .filter(|q| q.id == id)
        .ok_or_else(|| RestError::new(404, format!("namespace {ns} has no quota {id}")))
}

fn limit_bytes(ctx: &Ctx) -> Result<i64, RestError> {
    let v = if let Some(n) = ctx.body.get("limit_bytes").and_then(|v| v.as_i64()) {
        Some(n)
    } else if let Some(s) = ctx.field("limit") {
        Some(parse_size(s).ok_or_else(|| {
            RestError::bad(format!(
                "limit {s:?} is not a size such as \"500 MiB\" or \"10 GiB\""
            ))
        })?)
    } else {
        None
    };
    match v {
        Some(n) if n > 0 => Ok(n),
        Some(_) => Err(RestError::bad("a quota must be larger than 0 bytes")),
        None => Err(RestError::bad(
            "give limit_bytes (an integer) or limit (such as \"10 GiB\")",
        )),
    }
}

fn editing(st: &AppState, ctx: &Ctx) -> Result<(), RestError> {
    require(ctx)?;
    if !st.registry.config.quota.enabled || !st.registry.config.quota.edit {
        return Err(RestError::new(
            403,
            "quotas cannot be edited here (FEATURE_QUOTA_MANAGEMENT and FEATURE_EDIT_QUOTA)",
        ));
    }
    Ok(())
}

async fn audit(st: &AppState, ctx: &Ctx, kind: &str, ns: &str, meta: serde_json::Value) {
    st.auth
        .audit
        .record(ctx.audit(kind).namespace(ns).meta(meta))
        .await;
}

/// The namespace of an `/organization/{orgname}/quota…` path. As in Quay, the name may also be a
/// user's namespace, so that user namespaces take Warning and Reject limits like organizations.
async fn quota_namespace(st: &AppState, ctx: &Ctx) -> Result<berth_core::AccountRow, RestError> {
    let ns = ctx.p("orgname");
    st.auth
        .db
        .account_by_name(ns)
        .await?
        .filter(|a| a.kind != berth_core::auth::AccountKind::Robot)
        .ok_or_else(|| RestError::new(404, format!("no organization or user namespace {ns:?}")))
}

/// The namespace, if the caller may read its quota: an organization's members, the user of a
/// user namespace, or a superuser.
async fn org_reader(st: &AppState, ctx: &Ctx) -> Result<String, RestError> {
    let a = ctx.actor()?;
    let acct = quota_namespace(st, ctx).await?;
    if acct.kind == berth_core::auth::AccountKind::User {
        if a.name != acct.name && !(a.superuser && a.has_scope("super:user")) {
            return Err(RestError::new(
                403,
                format!("only {:?} and superusers may read this quota", acct.name),
            ));
        }
        return Ok(acct.name);
    }
    let o = st.auth.org(&acct.name).await?;
    let role = st.auth.org_role(a, &o).await?;
    if !role.member && !role.admin {
        return Err(RestError::new(
            403,
            format!("you are not a member of organization {:?}", acct.name),
        ));
    }
    Ok(o.name)
}

async fn create_in(st: &AppState, ctx: &Ctx, ns: &str) -> R {
    editing(st, ctx)?;
    let bytes = limit_bytes(ctx)?;
    let Some(id) = st.auth.db.create_quota(ns, bytes).await? else {
        return Err(RestError::new(
            409,
            format!("namespace {ns} already has a quota; change it with PUT"),
        ));
    };
    audit(
        st,
        ctx,
        "org_create_quota",
        ns,
        serde_json::json!({"namespace": ns, "limit_bytes": bytes, "quota_id": id}),
    )
    .await;
    created(serde_json::json!("Created"))
}

async fn update_in(st: &AppState, ctx: &Ctx, ns: &str) -> R {
    editing(st, ctx)?;
    let q = quota_of(st, ns, ctx).await?;
    let bytes = limit_bytes(ctx)?;
    st.auth.db.update_quota(q.id, ns, bytes).await?;
    audit(
        st,
        ctx,
        "org_change_quota",
        ns,
        serde_json::json!({"namespace": ns, "limit_bytes": bytes, "quota_id": q.id}),
    )
    .await;
    let q = quota_of(st, ns, ctx).await?;
    let usage = st.registry.namespace_usage(ns).await?;
    json(quota_json(st, &q, usage))
}

async fn delete_in(st: &AppState, ctx: &Ctx, ns: &str) -> R {
    editing(st, ctx)?;
    let q = quota_of(st, ns, ctx).await?;
    st.auth.db.delete_quota(q.id, ns).await?;
    audit(
        st,
        ctx,
        "org_delete_quota",
        ns,
        serde_json::json!({"namespace": ns, "quota_id": q.id}),
    )
    .await;
    no_content()
}

async fn org_list(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = org_reader(&st, &ctx).await?;
    list_for(&st, &ns).await
}

async fn org_create(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = quota_namespace(&st, &ctx).await?.name;
    create_in(&st, &ctx, &ns).await
}

async fn org_get(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = org_reader(&st, &ctx).await?;
    let q = quota_of(&st, &ns, &ctx).await?;
    let usage = st.registry.namespace_usage(&ns).await?;
    json(quota_json(&st, &q, usage))
}

async fn org_update(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = quota_namespace(&st, &ctx).await?.name;
    update_in(&st, &ctx, &ns).await
}

async fn org_delete(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = quota_namespace(&st, &ctx).await?.name;
    delete_in(&st, &ctx, &ns).await
}

async fn org_limits(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = org_reader(&st, &ctx).await?;
    let q = quota_of(&st, &ns, &ctx).await?;
    json(serde_json::json!(
        q.limits.iter().map(limit_json).collect::<Vec<_>>()
    ))
}

fn limit_fields(
    ctx: &Ctx,
    current: Option<&berth_core::QuotaLimit>,
) -> Result<(String, i64), RestError> {
    let kind = match ctx.field("type").or(current.map(|l| l.kind.as_str())) {
        Some(k @ ("Warning" | "Reject")) => k.to_string(),
        Some(other) => {
            return Err(RestError::bad(format!(
                "type must be Warning or Reject, not {other:?}"
            )));
        }
        None => return Err(RestError::bad("type (Warning or Reject) is required")),
    };
    let pct = ctx
        .body
        .get("threshold_percent")
        .and_then(|v| v.as_i64())
        .or(current.map(|l| l.percent))
        .ok_or_else(|| RestError::bad("threshold_percent (an integer) is required"))?;
    if !(1..=100).contains(&pct) {
        return Err(RestError::bad(
            "threshold_percent must be between 1 and 100",
        ));
    }
    Ok((kind, pct))
}

async fn org_limit_create(st: Arc<AppState>, ctx: Ctx) -> R {
    editing(&st, &ctx)?;
    let ns = quota_namespace(&st, &ctx).await?.name;
    let q = quota_of(&st, &ns, &ctx).await?;
    let (kind, pct) = limit_fields(&ctx, None)?;
    let Some(id) = st.auth.db.add_quota_limit(q.id, &kind, pct).await? else {
        return Err(RestError::new(
            409,
            format!("the quota already has a {kind} threshold; change it with PUT"),
        ));
    };
    audit(&st, &ctx, "org_create_quota_limit", &ns, serde_json::json!({"namespace": ns, "quota_id": q.id, "limit_id": id, "type": kind, "threshold_percent": pct})).await;
    created(serde_json::json!("Created"))
}

fn find_limit(q: &QuotaRow, ctx: &Ctx) -> Result<berth_core::QuotaLimit, RestError> {
    let id = limit_id(ctx)?;
    q.limits
        .iter()
        .find(|l| l.id == id)
        .cloned()
        .ok_or_else(|| RestError::new(404, format!("the quota has no limit {id}")))
}

async fn org_limit_get(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = org_reader(&st, &ctx).await?;
    let q = quota_of(&st, &ns, &ctx).await?;
    json(limit_json(&find_limit(&q, &ctx)?))
}

async fn org_limit_update(st: Arc<AppState>, ctx: Ctx) -> R {
    editing(&st, &ctx)?;
    let ns = quota_namespace(&st, &ctx).await?.name;
    let q = quota_of(&st, &ns, &ctx).await?;
    let l = find_limit(&q, &ctx)?;
    let (kind, pct) = limit_fields(&ctx, Some(&l))?;
    st.auth
        .db
        .update_quota_limit(q.id, l.id, &kind, pct)
        .await?;
    audit(&st, &ctx, "org_change_quota_limit", &ns, serde_json::json!({"namespace": ns, "quota_id": q.id, "limit_id": l.id, "type": kind, "threshold_percent": pct})).await;
    json(serde_json::json!({"id": l.id, "type": kind, "limit_percent": pct}))
}

async fn org_limit_delete(st: Arc<AppState>, ctx: Ctx) -> R {
    editing(&st, &ctx)?;
    let ns = quota_namespace(&st, &ctx).await?.name;
    let q = quota_of(&st, &ns, &ctx).await?;
    let l = find_limit(&q, &ctx)?;
    st.auth.db.delete_quota_limit(q.id, l.id).await?;
    audit(
        &st,
        &ctx,
        "org_delete_quota_limit",
        &ns,
        serde_json::json!({"namespace": ns, "quota_id": q.id, "limit_id": l.id}),
    )
    .await;
    no_content()
}

fn own_namespace(ctx: &Ctx) -> Result<String, RestError> {
    let a = ctx.actor()?;
    if !a.has_scope("user:read") {
        return Err(RestError::new(403, "this token lacks the user:read scope"));
    }
    Ok(a.name.clone())
}

async fn user_list(st: Arc<AppState>, ctx: Ctx) -> R {
    list_for(&st, &own_namespace(&ctx)?).await
}

async fn user_get(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = own_namespace(&ctx)?;
    let q = quota_of(&st, &ns, &ctx).await?;
    let usage = st.registry.namespace_usage(&ns).await?;
    json(quota_json(&st, &q, usage))
}

async fn user_limits(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = own_namespace(&ctx)?;
    let q = quota_of(&st, &ns, &ctx).await?;
    json(serde_json::json!(
        q.limits.iter().map(limit_json).collect::<Vec<_>>()
    ))
}

async fn user_limit_get(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = own_namespace(&ctx)?;
    let q = quota_of(&st, &ns, &ctx).await?;
    json(limit_json(&find_limit(&q, &ctx)?))
}

/// The namespace of a superuser quota path, which must name an account of the right kind.
async fn su_namespace(st: &AppState, ctx: &Ctx) -> Result<String, RestError> {
    require(ctx)?;
    let ns = ctx.p("namespace");
    let acct = st
        .auth
        .db
        .account_by_name(ns)
        .await?
        .ok_or_else(|| RestError::new(404, format!("no namespace {ns:?}")))?;
    Ok(acct.name)
}

async fn su_list(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = su_namespace(&st, &ctx).await?;
    list_for(&st, &ns).await
}

async fn su_create(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = su_namespace(&st, &ctx).await?;
    create_in(&st, &ctx, &ns).await
}

async fn su_update(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = su_namespace(&st, &ctx).await?;
    update_in(&st, &ctx, &ns).await
}

async fn su_delete(st: Arc<AppState>, ctx: Ctx) -> R {
    let ns = su_namespace(&st, &ctx).await?;
    delete_in(&st, &ctx, &ns).await
}

async fn repo_usage(st: Arc<AppState>, ctx: Ctx) -> R {
    let name = ctx.p("repository");
    st.auth
        .repo_with_role(ctx.caller.as_ref(), name, Role::Read)
        .await?;
    let repo: berth_oci::RepoName = name
        .parse()
        .map_err(|_| RestError::bad("invalid repository name"))?;
    let u = st.registry.repo_usage(&repo).await?;
    json(serde_json::to_value(u).unwrap_or_default())
}
