//! Namespace quotas with Quay's paths (`organization/{org}/quota`, `user/quota`,
//! `superuser/.../quota`) and Berth's storage-usage answers (`repository/{repo}/usage`).
//! Reading a quota needs membership of the namespace; creating and changing one needs a superuser
//! (and `FEATURE_EDIT_QUOTA`), as in Quay.

use super::policies::at_level;
use super::{Created, Ctx, Done, Reply, RestError, Route, done, route};
use crate::AppState;
use berth_core::Caller;
use berth_core::quotas::{
    NamespaceQuota, QuotaPath, QuotaSize, QuotaThreshold, Quotas, ThresholdFields, human_size,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/quota", "An organization's quota, its limits and its usage", "org:admin", org_list() -> Reply<Vec<Quota>>),
        route!(POST "/api/v1/organization/{orgname}/quota", "Give an organization a quota (limit_bytes, or limit such as \"10 GiB\")", "super:user", org_create(SizeBody) -> Created<String>),
        route!(GET "/api/v1/organization/{orgname}/quota/{quota_id}", "One quota of an organization", "org:admin", org_get() -> Reply<Quota>),
        route!(PUT "/api/v1/organization/{orgname}/quota/{quota_id}", "Change an organization's quota", "super:user", org_update(SizeBody) -> Reply<Quota>),
        route!(DELETE "/api/v1/organization/{orgname}/quota/{quota_id}", "Remove an organization's quota", "super:user", org_delete() -> Done),
        route!(GET "/api/v1/organization/{orgname}/quota/{quota_id}/limit", "A quota's warning and reject thresholds", "org:admin", org_limits() -> Reply<Vec<Threshold>>),
        route!(POST "/api/v1/organization/{orgname}/quota/{quota_id}/limit", "Add a Warning or Reject threshold (percent of the quota)", "super:user", org_limit_create(ThresholdBody) -> Created<String>),
        route!(GET "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}", "One threshold", "org:admin", org_limit_get() -> Reply<Threshold>),
        route!(PUT "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}", "Change a threshold", "super:user", org_limit_update(ThresholdBody) -> Reply<Threshold>),
        route!(DELETE "/api/v1/organization/{orgname}/quota/{quota_id}/limit/{limit_id}", "Remove a threshold", "super:user", org_limit_delete() -> Done),
        route!(GET "/api/v1/user/quota", "The caller's own namespace quota and usage", "user:read", user_list() -> Reply<Vec<Quota>>),
        route!(GET "/api/v1/user/quota/{quota_id}", "One quota of the caller's namespace", "user:read", user_get() -> Reply<Quota>),
        route!(GET "/api/v1/user/quota/{quota_id}/limit", "Thresholds of the caller's quota", "user:read", user_limits() -> Reply<Vec<Threshold>>),
        route!(GET "/api/v1/user/quota/{quota_id}/limit/{limit_id}", "One threshold of the caller's quota", "user:read", user_limit_get() -> Reply<Threshold>),
        route!(GET "/api/v1/superuser/users/{namespace}/quota", "A user's quota", "super:user", su_list() -> Reply<Vec<Quota>>),
        route!(POST "/api/v1/superuser/users/{namespace}/quota", "Give a user namespace a quota", "super:user", su_create(SizeBody) -> Created<String>),
        route!(PUT "/api/v1/superuser/users/{namespace}/quota/{quota_id}", "Change a user's quota", "super:user", su_update(SizeBody) -> Reply<Quota>),
        route!(DELETE "/api/v1/superuser/users/{namespace}/quota/{quota_id}", "Remove a user's quota", "super:user", su_delete() -> Done),
        route!(GET "/api/v1/superuser/organization/{namespace}/quota", "An organization's quota", "super:user", su_list() -> Reply<Vec<Quota>>),
        route!(POST "/api/v1/superuser/organization/{namespace}/quota", "Give an organization a quota", "super:user", su_create(SizeBody) -> Created<String>),
        route!(PUT "/api/v1/superuser/organization/{namespace}/quota/{quota_id}", "Change an organization's quota", "super:user", su_update(SizeBody) -> Reply<Quota>),
        route!(DELETE "/api/v1/superuser/organization/{namespace}/quota/{quota_id}", "Remove an organization's quota", "super:user", su_delete() -> Done),
        route!(GET "/api/v1/repository/{repository}/usage", "Storage of a repository after deduplication, what deleting it or each tag would free (Berth)", "repo:read", repo_usage() -> Reply<Value>),
    ]
}

/// A quota threshold as Quay answers it.
#[derive(Serialize, ToSchema)]
#[schema(as = QuotaLimit)]
pub struct Threshold {
    /// `null` for the system default's.
    pub id: Option<i64>,
    /// `Warning` or `Reject`.
    #[serde(rename = "type")]
    pub kind: String,
    pub limit_percent: i64,
}

impl Threshold {
    fn new(l: &QuotaThreshold) -> Threshold {
        Threshold {
            id: l.id,
            kind: l.kind.to_string(),
            limit_percent: l.percent,
        }
    }
}

/// A namespace's quota (or the system default, `id: null`) with its usage.
#[derive(Serialize, ToSchema)]
#[schema(as = Quota)]
pub struct Quota {
    pub id: Option<i64>,
    pub limit_bytes: i64,
    /// The limit in words, e.g. `10 GiB`.
    pub limit: String,
    pub default_config: bool,
    pub default_config_exists: bool,
    pub limits: Vec<Threshold>,
    pub usage_bytes: i64,
}

impl Quota {
    fn new(q: &NamespaceQuota) -> Quota {
        Quota {
            id: q.id,
            limit_bytes: q.limit_bytes,
            limit: human_size(q.limit_bytes),
            default_config: q.is_default,
            default_config_exists: q.default_exists,
            limits: q.limits.iter().map(Threshold::new).collect(),
            usage_bytes: q.usage_bytes,
        }
    }
}

/// A quota's size: `limit_bytes`, or `limit` in words (`500 MiB`, `10 GiB`).
#[derive(Deserialize, ToSchema)]
#[schema(as = QuotaBody)]
pub struct SizeBody {
    pub limit_bytes: Option<i64>,
    pub limit: Option<String>,
}

/// A threshold: `type` (`Warning` or `Reject`, required when adding) and `threshold_percent`.
#[derive(Deserialize, ToSchema)]
#[schema(as = QuotaLimitBody)]
pub struct ThresholdBody {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub threshold_percent: Option<i64>,
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

fn caller(ctx: &Ctx) -> Result<Caller<'_>, RestError> {
    Ok(Caller::new(ctx.actor()?, ctx.ip.as_deref()))
}

type Res<T> = Result<T, RestError>;

async fn list(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Reply<Vec<Quota>>> {
    let qs = quotas(&st).list(ctx.actor()?, &at.path(&ctx)).await?;
    Ok(Reply::new(qs.iter().map(Quota::new).collect()))
}

async fn get(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Reply<Quota>> {
    let q = quotas(&st)
        .get(ctx.actor()?, &at.path(&ctx), ctx.p("quota_id"))
        .await?;
    Ok(Reply::new(Quota::new(&q)))
}

async fn create(st: Arc<AppState>, ctx: Ctx, at: At, b: SizeBody) -> Res<Created<String>> {
    let size = QuotaSize {
        limit_bytes: b.limit_bytes,
        limit: b.limit,
    };
    quotas(&st)
        .create(caller(&ctx)?, &at.path(&ctx), &size)
        .await?;
    Ok(Reply::new("Created".to_string()))
}

async fn update(st: Arc<AppState>, ctx: Ctx, at: At, b: SizeBody) -> Res<Reply<Quota>> {
    let size = QuotaSize {
        limit_bytes: b.limit_bytes,
        limit: b.limit,
    };
    let q = quotas(&st)
        .update(caller(&ctx)?, &at.path(&ctx), ctx.p("quota_id"), &size)
        .await?;
    Ok(Reply::new(Quota::new(&q)))
}

async fn delete(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Done> {
    quotas(&st)
        .delete(caller(&ctx)?, &at.path(&ctx), ctx.p("quota_id"))
        .await?;
    done()
}

async fn limits(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Reply<Vec<Threshold>>> {
    let ls = quotas(&st)
        .thresholds(ctx.actor()?, &at.path(&ctx), ctx.p("quota_id"))
        .await?;
    Ok(Reply::new(ls.iter().map(Threshold::new).collect()))
}

async fn limit_get(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Reply<Threshold>> {
    let l = quotas(&st)
        .threshold(
            ctx.actor()?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            ctx.p("limit_id"),
        )
        .await?;
    Ok(Reply::new(Threshold::new(&l)))
}

fn threshold(b: ThresholdBody) -> ThresholdFields {
    ThresholdFields {
        kind: b.kind,
        percent: b.threshold_percent,
    }
}

async fn limit_create(
    st: Arc<AppState>,
    ctx: Ctx,
    at: At,
    b: ThresholdBody,
) -> Res<Created<String>> {
    quotas(&st)
        .add_threshold(
            caller(&ctx)?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            &threshold(b),
        )
        .await?;
    Ok(Reply::new("Created".to_string()))
}

async fn limit_update(
    st: Arc<AppState>,
    ctx: Ctx,
    at: At,
    b: ThresholdBody,
) -> Res<Reply<Threshold>> {
    let l = quotas(&st)
        .update_threshold(
            caller(&ctx)?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            ctx.p("limit_id"),
            &threshold(b),
        )
        .await?;
    Ok(Reply::new(Threshold::new(&l)))
}

async fn limit_delete(st: Arc<AppState>, ctx: Ctx, at: At) -> Res<Done> {
    quotas(&st)
        .delete_threshold(
            caller(&ctx)?,
            &at.path(&ctx),
            ctx.p("quota_id"),
            ctx.p("limit_id"),
        )
        .await?;
    done()
}

async fn repo_usage(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Value>> {
    let u = quotas(&st)
        .repo_usage(ctx.caller.as_ref(), ctx.p("repository"))
        .await?;
    Ok(Reply::new(serde_json::to_value(u).unwrap_or_default()))
}

at_level! {
    org_list() -> Reply<Vec<Quota>> => list, At::Org;
    org_create(b: SizeBody) -> Created<String> => create, At::Org;
    org_get() -> Reply<Quota> => get, At::Org;
    org_update(b: SizeBody) -> Reply<Quota> => update, At::Org;
    org_delete() -> Done => delete, At::Org;
    org_limits() -> Reply<Vec<Threshold>> => limits, At::Org;
    org_limit_create(b: ThresholdBody) -> Created<String> => limit_create, At::Org;
    org_limit_get() -> Reply<Threshold> => limit_get, At::Org;
    org_limit_update(b: ThresholdBody) -> Reply<Threshold> => limit_update, At::Org;
    org_limit_delete() -> Done => limit_delete, At::Org;
    user_list() -> Reply<Vec<Quota>> => list, At::Own;
    user_get() -> Reply<Quota> => get, At::Own;
    user_limits() -> Reply<Vec<Threshold>> => limits, At::Own;
    user_limit_get() -> Reply<Threshold> => limit_get, At::Own;
    su_list() -> Reply<Vec<Quota>> => list, At::Superuser;
    su_create(b: SizeBody) -> Created<String> => create, At::Superuser;
    su_update(b: SizeBody) -> Reply<Quota> => update, At::Superuser;
    su_delete() -> Done => delete, At::Superuser;
}
