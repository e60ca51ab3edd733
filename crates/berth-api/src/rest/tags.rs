//! Tags through Quay's API: history (live and past) with paging and filters, create/move and
//! expiry, delete, and restore within the time machine's window.

use super::{Ctx, R, RestError, Route, json, no_content, route};
use crate::AppState;
use berth_core::auth::Role;
use berth_core::{TagFilter, now_ms};
use berth_oci::RepoName;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/repository/{repository}/tag/", "Tag history: live and past positions, newest first", "repo:read",
            query &["specificTag", "filter_tag_name", "onlyActiveTags", "page", "limit", "label"], list),
        route!(PUT "/api/v1/repository/{repository}/tag/{tag}", "Create or move a tag (manifest_digest), set its expiration (Unix seconds, or null), and/or make it immutable (lifting needs admin)", "repo:write",
            body &["manifest_digest", "expiration:integer", "immutable:boolean"], put),
        route!(DELETE "/api/v1/repository/{repository}/tag/{tag}", "Delete a tag (it stays in the time machine)", "repo:write", delete),
        route!(POST "/api/v1/repository/{repository}/tag/{tag}/restore", "Point a tag back at a manifest it pointed at within the time machine's window", "repo:write",
            body &["*manifest_digest"], restore),
    ]
}

fn repo_name(ctx: &Ctx) -> Result<RepoName, RestError> {
    ctx.p("repository")
        .parse()
        .map_err(|_| RestError::bad("invalid repository name"))
}

fn date(ms: i64) -> serde_json::Value {
    crate::auth::http_date(ms).into()
}

async fn list(st: Arc<AppState>, ctx: Ctx) -> R {
    st.auth
        .repo_with_role(ctx.caller.as_ref(), ctx.p("repository"), Role::Read)
        .await?;
    let repo = repo_name(&ctx)?;
    let limit: i64 = ctx
        .q("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(50)
        .clamp(1, 100);
    let page: i64 = ctx
        .q("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let (eq, like) = match ctx.q("filter_tag_name") {
        Some(f) if f.starts_with("eq:") => (Some(&f[3..]), None),
        Some(f) if f.starts_with("like:") => (None, Some(&f[5..])),
        Some("") | None => (None, None),
        Some(_) => {
            return Err(RestError::bad(
                "filter_tag_name must be like:TEXT or eq:NAME",
            ));
        }
    };
    let filter = TagFilter {
        name: ctx.q("specificTag").filter(|s| !s.is_empty()).or(eq),
        contains: like,
        only_active: ctx.q_bool("onlyActiveTags", false),
        // Berth: `label=KEY` or `label=KEY=VALUE` keeps tags whose manifest carries that label.
        label: ctx
            .q("label")
            .filter(|s| !s.is_empty())
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (l, None),
            }),
    };
    let rows = st
        .registry
        .tag_history(&repo, &filter, (page - 1).saturating_mul(limit), limit + 1)
        .await?;
    let rules = st.registry.immutability_rules(&repo).await?;
    let by_policy = |name: &str| rules.protects(name);
    let more = rows.len() as i64 > limit;
    let tags: Vec<serde_json::Value> = rows
        .iter()
        .take(limit as usize)
        .map(|t| {
            let mut v = serde_json::json!({
                "name": t.name,
                "reversion": false,
                "start_ts": t.start_at / 1000,
                "manifest_digest": t.manifest_digest,
                "is_manifest_list": t.media_type.as_deref().is_some_and(berth_oci::media::is_index),
                "size": t.size,
                "last_modified": date(t.start_at),
            });
            match t.end_at {
                Some(end) => v["end_ts"] = (end / 1000).into(),
                None => v["immutable"] = (t.immutable || by_policy(&t.name)).into(),
            }
            if let Some(exp) = t.expires_at {
                v["expiration"] = date(exp);
            }
            v
        })
        .collect();
    json(serde_json::json!({"tags": tags, "page": page, "has_additional": more}))
}

async fn put(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    st.auth
        .repo_with_role(Some(a), ctx.p("repository"), Role::Write)
        .await?;
    let repo = repo_name(&ctx)?;
    let tag = ctx.p("tag");
    let expiration = match ctx.body.get("expiration") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(v) => {
            let secs = v
                .as_i64()
                .ok_or_else(|| RestError::bad("expiration must be Unix seconds or null"))?;
            if secs.saturating_mul(1000) <= now_ms() {
                return Err(RestError::bad("expiration must be in the future"));
            }
            Some(Some(secs.saturating_mul(1000)))
        }
    };
    if expiration.is_some() && !st.auth.config.change_tag_expiration {
        return Err(RestError::new(
            403,
            "changing tag expiration is disabled (FEATURE_CHANGE_TAG_EXPIRATION)",
        ));
    }
    let immutable = ctx.body.get("immutable").and_then(|v| v.as_bool());
    match ctx.field("manifest_digest") {
        None if immutable.is_some() && expiration.is_none() => {}
        Some(digest) => {
            st.registry
                .tag_point(&ctx.who(), &repo, tag, digest, expiration.flatten())
                .await?;
        }
        None => {
            let Some(exp) = expiration else {
                return Err(RestError::bad(
                    "give manifest_digest, expiration or immutable",
                ));
            };
            st.registry
                .tag_set_expiry(&ctx.who(), &repo, tag, exp)
                .await?;
        }
    }
    if let Some(flag) = immutable {
        if !flag {
            // Lifting immutability is for repository administrators.
            st.auth
                .repo_with_role(Some(a), repo.as_str(), Role::Admin)
                .await?;
        }
        st.registry
            .tag_set_immutable(&ctx.who(), &repo, tag, flag)
            .await?;
    }
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(serde_json::json!("Updated")),
    )
        .into_response_ok())
}

async fn delete(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    st.auth
        .repo_with_role(Some(a), ctx.p("repository"), Role::Write)
        .await?;
    let repo = repo_name(&ctx)?;
    let tag = ctx.p("tag");
    let reference: berth_oci::Reference = tag
        .parse()
        .map_err(|_| RestError::bad(format!("invalid tag {tag:?}")))?;
    st.registry
        .manifest_delete(&ctx.who(), &repo, &reference)
        .await
        .map_err(|e| match e {
            berth_core::Error::NotFound {
                what: berth_core::Missing::Manifest,
                ..
            } => RestError::new(404, format!("{repo} has no tag {tag}")),
            other => other.into(),
        })?;
    no_content()
}

async fn restore(st: Arc<AppState>, ctx: Ctx) -> R {
    let a = ctx.actor()?;
    st.auth
        .repo_with_role(Some(a), ctx.p("repository"), Role::Write)
        .await?;
    let repo = repo_name(&ctx)?;
    let tag = ctx.p("tag");
    let digest = ctx.required("manifest_digest")?;
    st.registry
        .tag_restore(&ctx.who(), &repo, tag, digest)
        .await?;
    json(serde_json::json!({}))
}

trait Ok201 {
    fn into_response_ok(self) -> axum::response::Response;
}
impl<T: axum::response::IntoResponse> Ok201 for T {
    fn into_response_ok(self) -> axum::response::Response {
        self.into_response()
    }
}
