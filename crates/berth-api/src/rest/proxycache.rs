//! Pull-through cache organizations through Quay's API (`organization/{org}/proxycache`,
//! `validateproxycache`), field for field and status for status.

use super::{Ctx, Reply, RestError, Route, route};
use crate::AppState;
use berth_core::proxy::{FallbackSpec, ProxyCacheSpec, ProxyCaches, Validity};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/proxycache", "The organization's pull-through cache settings (every field \"\" when it is no cache); for its members", "org:admin",
            get_cache() -> Reply<CacheView>),
        route!(POST "/api/v1/organization/{orgname}/proxycache", "Make the organization a pull-through cache of upstream_registry (host[/namespace]; docker.io is Docker Hub): pulls of its repositories are answered from the upstream and kept, pushes refused. No PUT: delete and create again to change it", "org:admin",
            create_cache(CacheBody) -> Reply<Value, 201>),
        route!(DELETE "/api/v1/organization/{orgname}/proxycache", "End the organization's cache configuration (cached repositories stay); Quay answers 201 \"Deleted\"", "org:admin",
            delete_cache() -> Reply<Value, 201>),
        route!(POST "/api/v1/organization/{orgname}/validateproxycache", "Try an upstream with the given credentials: 202 \"Valid\" (accepted), 202 \"Anonymous\" (no credentials needed or given), else 400", "org:admin",
            validate_cache(CacheBody) -> Reply<Value, 202>),
    ]
}

/// Quay's answer: the settings, or `""` in each field for an organization that is no cache.
#[derive(Serialize, ToSchema)]
pub struct CacheView {
    #[schema(value_type = Object)]
    pub upstream_registry: Value,
    #[schema(value_type = Object)]
    pub expiration_s: Value,
    #[schema(value_type = Object)]
    pub insecure: Value,
    /// Berth: the further upstreams, tried in order when the ones before cannot answer
    /// (absent when there are none, so the answer is Quay's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback_upstreams: Vec<FallbackView>,
}

/// Berth: one further upstream as shown (never its password).
#[derive(Serialize, ToSchema)]
pub struct FallbackView {
    pub upstream_registry: String,
    pub insecure: bool,
}

/// Berth: one further upstream as given.
#[derive(Deserialize, ToSchema)]
pub struct FallbackBody {
    /// `host[:port][/namespace]`.
    pub upstream_registry: String,
    #[serde(default)]
    pub upstream_registry_username: Option<String>,
    #[serde(default)]
    pub upstream_registry_password: Option<String>,
    #[serde(default)]
    pub insecure: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
pub struct CacheBody {
    /// `host[:port][/namespace]`, no scheme.
    pub upstream_registry: String,
    #[serde(default)]
    pub upstream_registry_username: Option<String>,
    #[serde(default)]
    pub upstream_registry_password: Option<String>,
    /// A cached tag lives this long after its last pull the upstream confirmed (default
    /// 86400; 0: for ever).
    #[serde(default)]
    pub expiration_s: Option<i64>,
    /// Plain http to the upstream.
    #[serde(default)]
    pub insecure: Option<bool>,
    /// Berth: further upstreams (at most 4), tried in order when the ones before are
    /// unreachable, time out, answer 429 or 5xx, or refuse the credentials.
    #[serde(default)]
    pub fallback_upstreams: Vec<FallbackBody>,
}

fn caches(st: &AppState) -> ProxyCaches<'_> {
    ProxyCaches::new(&st.registry, &st.auth)
}

fn spec(b: &CacheBody) -> ProxyCacheSpec {
    ProxyCacheSpec {
        upstream_registry: b.upstream_registry.clone(),
        username: b.upstream_registry_username.clone(),
        password: b.upstream_registry_password.clone(),
        expiration_s: b.expiration_s,
        insecure: b.insecure.unwrap_or(false),
        fallbacks: b
            .fallback_upstreams
            .iter()
            .map(|f| FallbackSpec {
                upstream_registry: f.upstream_registry.clone(),
                username: f.upstream_registry_username.clone(),
                password: f.upstream_registry_password.clone(),
                insecure: f.insecure.unwrap_or(false),
            })
            .collect(),
    }
}

async fn get_cache(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<CacheView>> {
    let v = caches(&st).get(ctx.actor()?, ctx.p("orgname")).await?;
    let view = if v.upstream_registry.is_empty() {
        CacheView {
            upstream_registry: json!(""),
            expiration_s: json!(""),
            insecure: json!(""),
            fallback_upstreams: Vec::new(),
        }
    } else {
        CacheView {
            upstream_registry: json!(v.upstream_registry),
            expiration_s: json!(v.expiration_s),
            insecure: json!(v.insecure),
            fallback_upstreams: v
                .fallbacks
                .iter()
                .map(|(u, insecure)| FallbackView {
                    upstream_registry: u.clone(),
                    insecure: *insecure,
                })
                .collect(),
        }
    };
    Ok(Reply::new(view))
}

async fn create_cache(st: Arc<AppState>, ctx: Ctx, b: CacheBody) -> Res<Reply<Value, 201>> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    caches(&st)
        .create(caller, ctx.p("orgname"), &spec(&b))
        .await?;
    Ok(Reply::new(json!("Created")))
}

async fn delete_cache(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Value, 201>> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    caches(&st).delete(caller, ctx.p("orgname")).await?;
    Ok(Reply::new(json!("Deleted")))
}

async fn validate_cache(st: Arc<AppState>, ctx: Ctx, b: CacheBody) -> Res<Reply<Value, 202>> {
    let v = caches(&st)
        .validate(ctx.actor()?, ctx.p("orgname"), &spec(&b))
        .await?;
    Ok(Reply::new(json!(match v {
        Validity::Valid => "Valid",
        Validity::Anonymous => "Anonymous",
    })))
}
