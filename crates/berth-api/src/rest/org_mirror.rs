//! Organization mirroring through Quay's API (`organization/{org}/mirror`, `sync-now`,
//! `sync-cancel`, `verify`, `repositories`), field for field; `external_registry_type` also
//! takes Berth's `oci` (any registry, through `/v2/_catalog`).

use super::mirror::{Empty, RegistryConfigBody};
use super::{Ctx, Done, Reply, RestError, Route, done, route};
use crate::AppState;
use axum::response::IntoResponse;
use berth_core::mirror::{Mirrors, OrgMirror, OrgMirrorSettings, OrgRegistryType};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/organization/{orgname}/mirror", "The organization's mirror configuration and discovery state (never its password)", "org:admin",
            get_org_mirror() -> Reply<OrgMirrorView>),
        route!(POST "/api/v1/organization/{orgname}/mirror", "Mirror every repository of external_namespace on another registry (found through Quay's or Harbor's API, or oci: /v2/_catalog) that repository_filters match into the organization, each with all its tags, by robot_username every sync_interval seconds", "org:admin",
            create_org_mirror(OrgMirrorBody) -> Reply<Empty, 201>),
        route!(PUT "/api/v1/organization/{orgname}/mirror", "Change any of the organization mirror's settings; the next discovery carries them to its repositories", "org:admin",
            update_org_mirror(OrgMirrorBody) -> Reply<Empty>),
        route!(DELETE "/api/v1/organization/{orgname}/mirror", "End the organization mirror: its repositories stay, with their tags, in NORMAL state", "org:admin",
            delete_org_mirror() -> Done),
        route!(POST "/api/v1/organization/{orgname}/mirror/sync-now", "Discover now and sync every repository (400 while a discovery runs)", "org:admin",
            org_sync_now() -> Done),
        route!(POST "/api/v1/organization/{orgname}/mirror/sync-cancel", "Cancel discovery and every running or requested sync of the organization's repositories (400 when already cancelled)", "org:admin",
            org_sync_cancel() -> Done),
        route!(POST "/api/v1/organization/{orgname}/mirror/verify", "Try the upstream with the configured credentials: success and a message", "org:admin",
            org_verify() -> Reply<VerifyView>),
        route!(GET "/api/v1/organization/{orgname}/mirror/repositories", "The repositories discovery found, with their sync status (page from 1, limit up to 500)", "org:admin",
            org_repositories() -> Reply<OrgRepoList>, query &["page", "limit"]),
    ]
}

/// The organization mirror's settings (POST: `external_registry_type`,
/// `external_registry_url`, `external_namespace`, `robot_username`, `visibility`,
/// `sync_interval`, `sync_start_date` required; PUT: any).
#[derive(Deserialize, ToSchema)]
pub struct OrgMirrorBody {
    /// `quay`, `harbor`, or Berth's `oci`.
    #[serde(default)]
    pub external_registry_type: Option<String>,
    /// `https://host[:port]` (or `http://`).
    #[serde(default)]
    pub external_registry_url: Option<String>,
    #[serde(default)]
    pub external_namespace: Option<String>,
    /// `org+name`, a robot of this organization.
    #[serde(default)]
    pub robot_username: Option<String>,
    /// `public` or `private`: of the repositories it creates.
    #[serde(default)]
    pub visibility: Option<String>,
    /// Seconds between discoveries and syncs (at least 60).
    #[serde(default)]
    pub sync_interval: Option<i64>,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default)]
    pub sync_start_date: Option<String>,
    #[serde(default)]
    pub is_enabled: Option<bool>,
    #[serde(default)]
    pub external_registry_username: Option<Option<String>>,
    #[serde(default)]
    pub external_registry_password: Option<Option<String>>,
    #[serde(default)]
    pub external_registry_config: Option<RegistryConfigBody>,
    /// Globs (fnmatch) of repository names under the namespace; none: every repository.
    #[serde(default)]
    pub repository_filters: Option<Vec<String>>,
    /// Seconds (30–3600) a discovery may take.
    #[serde(default)]
    pub skopeo_timeout: Option<i64>,
}

/// Quay's organization mirror answer.
#[derive(Serialize, ToSchema)]
pub struct OrgMirrorView {
    pub is_enabled: bool,
    pub external_registry_type: String,
    pub external_registry_url: String,
    pub external_namespace: String,
    pub external_registry_username: Option<String>,
    pub has_external_registry_password: bool,
    #[schema(value_type = Object)]
    pub external_registry_config: serde_json::Value,
    pub repository_filters: Vec<String>,
    pub robot_username: String,
    pub visibility: String,
    pub sync_interval: i64,
    pub sync_start_date: Option<String>,
    pub sync_expiration_date: Option<String>,
    /// `NEVER_RUN`, `SYNC_NOW`, `SYNCING`, `SUCCESS`, `FAIL` or `CANCEL`.
    pub sync_status: String,
    pub sync_retries_remaining: i64,
    pub skopeo_timeout: i64,
    pub creation_date: Option<String>,
    /// Berth: what the last discovery found or failed on.
    pub last_discovery: Option<String>,
}

fn date(ms: i64) -> String {
    crate::auth::rfc3339(ms.div_euclid(1000))
}

impl From<&OrgMirror> for OrgMirrorView {
    fn from(m: &OrgMirror) -> OrgMirrorView {
        OrgMirrorView {
            is_enabled: m.is_enabled,
            external_registry_type: m.registry_type.clone(),
            external_registry_url: m.registry_url.clone(),
            external_namespace: m.external_namespace.clone(),
            external_registry_username: m.username.clone(),
            has_external_registry_password: m.has_password,
            external_registry_config: serde_json::json!({
                "verify_tls": m.registry_config.verify_tls,
                "proxy": {
                    "http_proxy": m.registry_config.proxy.http_proxy,
                    "https_proxy": m.registry_config.proxy.https_proxy,
                    "no_proxy": m.registry_config.proxy.no_proxy,
                },
            }),
            repository_filters: m.repository_filters.clone(),
            robot_username: m.robot_username.clone(),
            visibility: m.visibility.clone(),
            sync_interval: m.sync_interval_s,
            sync_start_date: m.sync_start_at.map(date),
            sync_expiration_date: m.sync_lease_until.map(date),
            sync_status: m.sync_status.as_str().to_string(),
            sync_retries_remaining: m.sync_retries_remaining,
            skopeo_timeout: m.timeout_s,
            creation_date: Some(date(m.created_at)),
            last_discovery: m.last_message.clone(),
        }
    }
}

fn mirrors(st: &AppState) -> Mirrors<'_> {
    Mirrors::new(&st.registry, &st.auth)
}

fn settings(b: &OrgMirrorBody) -> Res<OrgMirrorSettings> {
    let visibility = b
        .visibility
        .as_deref()
        .map(|v| {
            v.to_ascii_lowercase().parse().map_err(|_| {
                RestError::new(400, format!("Invalid visibility: {v} (public or private)"))
            })
        })
        .transpose()?;
    Ok(OrgMirrorSettings {
        is_enabled: b.is_enabled,
        registry_type: b
            .external_registry_type
            .as_deref()
            .map(OrgRegistryType::parse)
            .transpose()?,
        registry_url: b.external_registry_url.clone(),
        external_namespace: b.external_namespace.clone(),
        username: b
            .external_registry_username
            .clone()
            .map(|u| u.filter(|u| !u.is_empty())),
        password: b
            .external_registry_password
            .clone()
            .map(|p| p.filter(|p| !p.is_empty())),
        registry_config: b
            .external_registry_config
            .as_ref()
            .map(super::mirror::registry_config),
        repository_filters: b.repository_filters.clone(),
        robot_username: b.robot_username.clone(),
        visibility,
        sync_interval_s: b.sync_interval,
        sync_start_at: b
            .sync_start_date
            .as_deref()
            .map(super::mirror::parse_date)
            .transpose()?,
        timeout_s: b.skopeo_timeout,
    })
}

/// The fields a PUT gave, for the audit record.
fn given(b: &OrgMirrorBody) -> Vec<String> {
    [
        ("external_registry_type", b.external_registry_type.is_some()),
        ("external_registry_url", b.external_registry_url.is_some()),
        ("external_namespace", b.external_namespace.is_some()),
        ("robot_username", b.robot_username.is_some()),
        ("visibility", b.visibility.is_some()),
        ("sync_interval", b.sync_interval.is_some()),
        ("sync_start_date", b.sync_start_date.is_some()),
        ("is_enabled", b.is_enabled.is_some()),
        (
            "external_registry_username",
            b.external_registry_username.is_some(),
        ),
        (
            "external_registry_password",
            b.external_registry_password.is_some(),
        ),
        (
            "external_registry_config",
            b.external_registry_config.is_some(),
        ),
        ("repository_filters", b.repository_filters.is_some()),
        ("skopeo_timeout", b.skopeo_timeout.is_some()),
    ]
    .into_iter()
    .filter(|(_, g)| *g)
    .map(|(f, _)| f.to_string())
    .collect()
}

async fn get_org_mirror(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<OrgMirrorView>> {
    let m = mirrors(&st).org_get(ctx.actor()?, ctx.p("orgname")).await?;
    Ok(Reply::new(OrgMirrorView::from(&m)))
}

async fn create_org_mirror(
    st: Arc<AppState>,
    ctx: Ctx,
    b: OrgMirrorBody,
) -> Res<Reply<Empty, 201>> {
    let s = settings(&b)?;
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st)
        .org_create(caller, ctx.p("orgname"), &s)
        .await?;
    Ok(Reply::raw(axum::http::StatusCode::CREATED.into_response()))
}

async fn update_org_mirror(st: Arc<AppState>, ctx: Ctx, b: OrgMirrorBody) -> Res<Reply<Empty>> {
    if b.external_registry_type.is_some() {
        return Err(RestError::new(
            400,
            "external_registry_type cannot change; delete the mirror and create it again",
        ));
    }
    let s = settings(&b)?;
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st)
        .org_update(caller, ctx.p("orgname"), &s, &given(&b))
        .await?;
    Ok(Reply::raw(axum::http::StatusCode::OK.into_response()))
}

async fn delete_org_mirror(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st).org_delete(caller, ctx.p("orgname")).await?;
    done()
}

async fn org_sync_now(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st).org_sync_now(caller, ctx.p("orgname")).await?;
    done()
}

async fn org_sync_cancel(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st).org_cancel(caller, ctx.p("orgname")).await?;
    done()
}

/// Quay's verify answer.
#[derive(Serialize, ToSchema)]
pub struct VerifyView {
    pub success: bool,
    pub message: String,
}

async fn org_verify(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<VerifyView>> {
    let (success, message) = mirrors(&st)
        .org_verify(ctx.actor()?, ctx.p("orgname"))
        .await?;
    Ok(Reply::new(VerifyView { success, message }))
}

/// A page of discovered repositories.
#[derive(Serialize, ToSchema)]
pub struct OrgRepoList {
    pub repositories: Vec<OrgRepoView>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
    pub has_next: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OrgRepoView {
    pub name: String,
    /// The repository mirror's status, or `SKIP` (left the namespace or the filters).
    pub sync_status: String,
    pub discovery_date: Option<String>,
    pub last_sync_date: Option<String>,
    pub status_message: Option<String>,
    /// `org/name` once the repository exists here.
    pub quay_repository: Option<String>,
}

async fn org_repositories(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<OrgRepoList>> {
    let page = ctx.q("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let limit = ctx.q("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let p = mirrors(&st)
        .org_repositories(ctx.actor()?, ctx.p("orgname"), page, limit)
        .await?;
    Ok(Reply::new(OrgRepoList {
        has_next: p.page.saturating_mul(p.limit) < p.total,
        page: p.page,
        limit: p.limit,
        total: p.total,
        repositories: p
            .repositories
            .into_iter()
            .map(|r| OrgRepoView {
                name: r.name,
                sync_status: r.sync_status,
                discovery_date: Some(date(r.discovered_at)),
                last_sync_date: r.last_sync_at.map(date),
                status_message: r.status_message,
                quay_repository: r.repository,
            })
            .collect(),
    }))
}
