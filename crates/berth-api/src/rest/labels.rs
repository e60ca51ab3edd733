//! Manifests and their labels through Quay's API (`repository/{repo}/manifest/{ref}` and
//! `.../labels`).

use super::{Ctx, R, RestError, Route, created, json, no_content, route};
use crate::AppState;
use berth_core::LabelRow;
use berth_core::auth::Role;
use berth_oci::RepoName;
use std::sync::Arc;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/repository/{repository}/manifest/{manifestref}", "A manifest: its bytes, media type and layers", "repo:read", manifest),
        route!(GET "/api/v1/repository/{repository}/manifest/{manifestref}/labels", "A manifest's labels, optionally only keys starting with filter", "repo:read",
            query &["filter"], list),
        route!(POST "/api/v1/repository/{repository}/manifest/{manifestref}/labels", "Add a label to a manifest", "repo:write",
            body &["*key", "*value", "media_type"], add),
        route!(GET "/api/v1/repository/{repository}/manifest/{manifestref}/labels/{labelid}", "One label", "repo:read", get),
        route!(DELETE "/api/v1/repository/{repository}/manifest/{manifestref}/labels/{labelid}", "Remove a label", "repo:write", delete),
    ]
}

fn view(l: &LabelRow) -> serde_json::Value {
    serde_json::json!({
        "id": l.id, "key": l.key, "value": l.value,
        "source_type": l.source_type, "media_type": l.media_type,
    })
}

async fn repo(st: &AppState, ctx: &Ctx, role: Role) -> Result<RepoName, RestError> {
    st.auth
        .repo_with_role(ctx.caller.as_ref(), ctx.p("repository"), role)
        .await?;
    ctx.p("repository")
        .parse()
        .map_err(|_| RestError::bad("invalid repository name"))
}

fn digest(ctx: &Ctx) -> Result<String, RestError> {
    let d = ctx.p("manifestref");
    d.parse::<berth_oci::Digest>()
        .map(|d| d.to_string())
        .map_err(|_| RestError::bad(format!("{d:?} is not a manifest digest (sha256:...)")))
}

async fn manifest(st: Arc<AppState>, ctx: Ctx) -> R {
    let repo = repo(&st, &ctx, Role::Read).await?;
    let d = digest(&ctx)?;
    let reference: berth_oci::Reference = d
        .parse()
        .map_err(|_| RestError::bad(format!("{d:?} is not a manifest digest (sha256:...)")))?;
    let row = st
        .registry
        .manifest_read(&repo, &reference)
        .await
        .map_err(|e| {
            if e.is_not_found() {
                RestError::new(404, format!("{repo} has no manifest {d}"))
            } else {
                e.into()
            }
        })?;
    let text = String::from_utf8_lossy(&row.content).to_string();
    let parsed: serde_json::Value = serde_json::from_slice(&row.content).unwrap_or_default();
    let layers: Vec<serde_json::Value> = parsed["layers"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .enumerate()
                .map(|(i, l)| {
                    serde_json::json!({
                        "index": i, "compressed_size": l["size"], "is_remote": l.get("urls").is_some(),
                        "urls": l.get("urls"), "blob_digest": l["digest"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let size: i64 = layers
        .iter()
        .filter_map(|l| l["compressed_size"].as_i64())
        .sum();
    json(serde_json::json!({
        "digest": row.digest,
        "is_manifest_list": berth_oci::media::is_index(&row.media_type),
        "manifest_data": text,
        "media_type": row.media_type,
        "config_media_type": parsed["config"]["mediaType"],
        "layers_compressed_size": size,
        "layers": layers,
    }))
}

async fn list(st: Arc<AppState>, ctx: Ctx) -> R {
    let repo = repo(&st, &ctx, Role::Read).await?;
    let labels = st
        .registry
        .labels(&repo, &digest(&ctx)?, ctx.q("filter").unwrap_or(""))
        .await?;
    json(serde_json::json!({"labels": labels.iter().map(view).collect::<Vec<_>>()}))
}

async fn add(st: Arc<AppState>, ctx: Ctx) -> R {
    ctx.actor()?;
    let repo = repo(&st, &ctx, Role::Write).await?;
    let d = digest(&ctx)?;
    let media_type = match ctx.body.get("media_type") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(RestError::bad("media_type must be a string or null")),
    };
    let l = st
        .registry
        .add_label(
            &ctx.who(),
            &repo,
            &d,
            ctx.required("key")?,
            ctx.field("value").unwrap_or(""),
            media_type,
        )
        .await?;
    // Quay's answer: 201, the label under "label", and where it lives.
    let mut resp = created(serde_json::json!({"label": view(&l)}))?;
    let location = format!(
        "/api/v1/repository/{}/manifest/{d}/labels/{}",
        repo.as_str(),
        l.id
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

async fn get(st: Arc<AppState>, ctx: Ctx) -> R {
    let repo = repo(&st, &ctx, Role::Read).await?;
    let l = st
        .registry
        .label(&repo, &digest(&ctx)?, ctx.p("labelid"))
        .await?;
    json(view(&l))
}

async fn delete(st: Arc<AppState>, ctx: Ctx) -> R {
    ctx.actor()?;
    let repo = repo(&st, &ctx, Role::Write).await?;
    let d = digest(&ctx)?;
    st.registry
        .delete_label(&ctx.who(), &repo, &d, ctx.p("labelid"))
        .await?;
    no_content()
}
