//! Repository mirroring through Quay's API (`repository/{repo}/mirror`, `sync-now`,
//! `sync-cancel`, `changestate`), field for field; Berth adds the log of the last runs.

use super::{Ctx, Done, Reply, RestError, Route, Success, done, route};
use crate::AppState;
use axum::response::IntoResponse;
use berth_core::mirror::{
    Mirror, MirrorRun, MirrorSettings, Mirrors, ProxyConfig, RegistryConfig, RepoState,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/repository/{repository}/mirror", "The repository's mirror configuration and sync state (never its password)", "repo:admin",
            get_mirror() -> Reply<MirrorView>),
        route!(POST "/api/v1/repository/{repository}/mirror", "Mirror another registry's repository here: the tags root_rule's globs select are copied by robot_username every sync_interval seconds from sync_start_date; the repository's state becomes MIRROR", "repo:admin",
            create_mirror(MirrorBody) -> Reply<Empty, 201>),
        route!(PUT "/api/v1/repository/{repository}/mirror", "Change any of the mirror's settings (a running sync stops and the next one uses them)", "repo:admin",
            update_mirror(MirrorBody) -> Reply<Empty, 201>),
        route!(POST "/api/v1/repository/{repository}/mirror/sync-now", "Start a sync as soon as a worker is free (404 while one runs)", "repo:admin",
            sync_now() -> Done),
        route!(POST "/api/v1/repository/{repository}/mirror/sync-cancel", "Cancel the running or requested sync; it stops at its next step and no further sync runs until sync-now", "repo:admin",
            sync_cancel() -> Done),
        route!(GET "/api/v1/repository/{repository}/mirror/runs", "Berth: the mirror's last sync runs (up to 20), newest first, with their figures and logs", "repo:admin",
            runs() -> Reply<RunList>, query &["limit"]),
        route!(PUT "/api/v1/repository/{repository}/changestate", "Set the repository's state: NORMAL, READ_ONLY (no content writes) or MIRROR (only the mirror's robot writes)", "repo:admin",
            change_state(StateBody) -> Reply<Success>),
    ]
}

/// Quay answers the mirror's creation and changes with 201 and no body.
#[derive(Serialize, ToSchema)]
pub struct Empty;

fn created_empty() -> Res<Reply<Empty, 201>> {
    Ok(Reply::raw(axum::http::StatusCode::CREATED.into_response()))
}

/// `root_rule`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RootRule {
    /// Always `tag_glob_csv`.
    pub rule_kind: String,
    /// Tag globs (fnmatch: `*`, `?`, `[…]`); a tag any of them matches is mirrored.
    pub rule_value: Vec<String>,
}

/// `external_registry_config`.
#[derive(Serialize, Deserialize, ToSchema, Default)]
pub struct RegistryConfigBody {
    #[serde(default)]
    pub verify_tls: Option<bool>,
    #[serde(default)]
    pub unsigned_images: Option<bool>,
    #[serde(default)]
    pub proxy: Option<ProxyBody>,
}

#[derive(Serialize, Deserialize, ToSchema, Default)]
pub struct ProxyBody {
    #[serde(default)]
    pub http_proxy: Option<String>,
    #[serde(default)]
    pub https_proxy: Option<String>,
    #[serde(default)]
    pub no_proxy: Option<String>,
}

/// The mirror's settings (POST: `external_reference`, `sync_interval`, `sync_start_date`,
/// `root_rule`, `robot_username` required; PUT: any).
#[derive(Deserialize, ToSchema)]
pub struct MirrorBody {
    #[serde(default)]
    pub is_enabled: Option<bool>,
    /// `host[:port]/path` of the upstream repository, without a scheme.
    #[serde(default)]
    pub external_reference: Option<String>,
    #[serde(default)]
    pub external_registry_username: Option<Option<String>>,
    #[serde(default)]
    pub external_registry_password: Option<Option<String>>,
    #[serde(default)]
    pub external_registry_config: Option<RegistryConfigBody>,
    /// Seconds between syncs.
    #[serde(default)]
    pub sync_interval: Option<i64>,
    /// The first (next) sync, `YYYY-MM-DDTHH:MM:SSZ`.
    #[serde(default)]
    pub sync_start_date: Option<String>,
    #[serde(default)]
    pub root_rule: Option<RootRule>,
    /// A robot of the repository's namespace (`ns+name`); it is given write if it lacks it.
    #[serde(default)]
    pub robot_username: Option<String>,
    /// Seconds one tag may take (at least 300).
    #[serde(default)]
    pub skopeo_timeout_interval: Option<i64>,
    /// Only these architectures of an index are copied (the index itself is kept as it is).
    #[serde(default)]
    pub architecture_filter: Option<Vec<String>>,
}

/// Quay's mirror answer.
#[derive(Serialize, ToSchema)]
pub struct MirrorView {
    pub is_enabled: bool,
    pub mirror_type: String,
    pub external_reference: String,
    pub external_registry_username: Option<String>,
    #[schema(value_type = Object)]
    pub external_registry_config: serde_json::Value,
    pub sync_interval: i64,
    pub sync_start_date: Option<String>,
    pub sync_expiration_date: Option<String>,
    pub sync_retries_remaining: i64,
    /// `NEVER_RUN`, `SYNC_NOW`, `SYNCING`, `SUCCESS`, `FAIL` or `CANCEL`.
    pub sync_status: String,
    pub root_rule: RootRule,
    pub robot_username: String,
    pub skopeo_timeout_interval: i64,
    pub architecture_filter: Vec<String>,
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as Quay writes mirror dates.
fn date(ms: i64) -> String {
    crate::auth::rfc3339(ms.div_euclid(1000))
}

pub(super) fn parse_date(s: &str) -> Res<i64> {
    let t = humantime::parse_rfc3339(s.trim()).map_err(|_| {
        RestError::new(
            400,
            format!("sync_start_date {s:?} is not a date like 2026-12-01T00:00:00Z"),
        )
    })?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

impl From<&Mirror> for MirrorView {
    fn from(m: &Mirror) -> MirrorView {
        MirrorView {
            is_enabled: m.is_enabled,
            mirror_type: "PULL".into(),
            external_reference: m.external_reference.clone(),
            external_registry_username: m.username.clone(),
            external_registry_config: serde_json::json!({
                "verify_tls": m.registry_config.verify_tls,
                "unsigned_images": m.registry_config.unsigned_images,
                "proxy": {
                    "http_proxy": m.registry_config.proxy.http_proxy,
                    "https_proxy": m.registry_config.proxy.https_proxy,
                    "no_proxy": m.registry_config.proxy.no_proxy,
                },
            }),
            sync_interval: m.sync_interval_s,
            sync_start_date: m.sync_start_at.map(date),
            sync_expiration_date: m.sync_lease_until.map(date),
            sync_retries_remaining: m.sync_retries_remaining,
            sync_status: m.sync_status.as_str().to_string(),
            root_rule: RootRule {
                rule_kind: "tag_glob_csv".into(),
                rule_value: m.tag_globs.clone(),
            },
            robot_username: m.robot_username.clone(),
            skopeo_timeout_interval: m.timeout_s,
            architecture_filter: m.architecture_filter.clone(),
        }
    }
}

fn mirrors(st: &AppState) -> Mirrors<'_> {
    Mirrors::new(&st.registry, &st.auth)
}

/// `external_registry_config` as given (empty proxy settings are none).
pub(super) fn registry_config(c: &RegistryConfigBody) -> RegistryConfig {
    let proxy: Option<&ProxyBody> = c.proxy.as_ref();
    let pick = |f: fn(&ProxyBody) -> &Option<String>| {
        proxy.and_then(|p| f(p).clone()).filter(|s| !s.is_empty())
    };
    RegistryConfig {
        verify_tls: c.verify_tls.unwrap_or(true),
        unsigned_images: c.unsigned_images.unwrap_or(false),
        proxy: ProxyConfig {
            http_proxy: pick(|p| &p.http_proxy),
            https_proxy: pick(|p| &p.https_proxy),
            no_proxy: pick(|p| &p.no_proxy),
        },
    }
}

fn settings(b: &MirrorBody) -> Res<MirrorSettings> {
    if let Some(r) = &b.root_rule
        && r.rule_kind != "tag_glob_csv"
    {
        return Err(RestError::new(
            400,
            format!(
                "root_rule.rule_kind {:?}: the only kind is tag_glob_csv",
                r.rule_kind
            ),
        ));
    }
    Ok(MirrorSettings {
        is_enabled: b.is_enabled,
        external_reference: b.external_reference.clone(),
        username: b.external_registry_username.clone(),
        password: b.external_registry_password.clone(),
        registry_config: b.external_registry_config.as_ref().map(registry_config),
        sync_interval_s: b.sync_interval,
        sync_start_at: b.sync_start_date.as_deref().map(parse_date).transpose()?,
        tag_globs: b.root_rule.as_ref().map(|r| r.rule_value.clone()),
        robot_username: b.robot_username.clone(),
        timeout_s: b.skopeo_timeout_interval,
        architecture_filter: b.architecture_filter.clone(),
    })
}

async fn get_mirror(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<MirrorView>> {
    let m = mirrors(&st).get(ctx.actor()?, ctx.p("repository")).await?;
    Ok(Reply::new(MirrorView::from(&m)))
}

async fn create_mirror(st: Arc<AppState>, ctx: Ctx, b: MirrorBody) -> Res<Reply<Empty, 201>> {
    let s = settings(&b)?;
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st).create(caller, ctx.p("repository"), &s).await?;
    created_empty()
}

async fn update_mirror(st: Arc<AppState>, ctx: Ctx, b: MirrorBody) -> Res<Reply<Empty, 201>> {
    let s = settings(&b)?;
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st).update(caller, ctx.p("repository"), &s).await?;
    created_empty()
}

async fn sync_now(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st).sync_now(caller, ctx.p("repository")).await?;
    done()
}

async fn sync_cancel(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st).cancel(caller, ctx.p("repository")).await?;
    done()
}

/// Berth's log of a mirror's runs.
#[derive(Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunView>,
}

#[derive(Serialize, ToSchema)]
pub struct RunView {
    pub started: String,
    pub finished: Option<String>,
    /// `running`, `success`, `failed`, `cancelled`, or `abandoned` (its worker died; another
    /// took the sync over).
    pub outcome: String,
    pub worker: String,
    pub tags_copied: i64,
    pub tags_unchanged: i64,
    pub tags_removed: i64,
    pub tags_failed: i64,
    pub blobs_copied: i64,
    pub bytes_copied: i64,
    pub log: Vec<String>,
}

impl From<&MirrorRun> for RunView {
    fn from(r: &MirrorRun) -> RunView {
        RunView {
            started: date(r.started_at),
            finished: r.finished_at.map(date),
            outcome: r.outcome.clone(),
            worker: r.holder.clone(),
            tags_copied: r.counts.tags_copied,
            tags_unchanged: r.counts.tags_unchanged,
            tags_removed: r.counts.tags_removed,
            tags_failed: r.counts.tags_failed,
            blobs_copied: r.counts.blobs_copied,
            bytes_copied: r.counts.bytes_copied,
            log: r.log.clone(),
        }
    }
}

async fn runs(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<RunList>> {
    let limit = ctx.q("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
    let runs = mirrors(&st)
        .runs(ctx.actor()?, ctx.p("repository"), limit)
        .await?;
    Ok(Reply::new(RunList {
        runs: runs.iter().map(RunView::from).collect(),
    }))
}

/// `{"state": "NORMAL" | "READ_ONLY" | "MIRROR"}`.
#[derive(Deserialize, ToSchema)]
pub struct StateBody {
    pub state: String,
}

async fn change_state(st: Arc<AppState>, ctx: Ctx, b: StateBody) -> Res<Reply<Success>> {
    let state: RepoState = b.state.parse().map_err(|_| {
        RestError::new(
            400,
            format!("state {:?}: one of NORMAL, READ_ONLY, MIRROR", b.state),
        )
    })?;
    let caller = berth_core::Caller::new(ctx.actor()?, ctx.ip.as_deref());
    mirrors(&st)
        .change_state(caller, ctx.p("repository"), state)
        .await?;
    Ok(Reply::new(Success::yes()))
}
