//! Manifests and their labels through Quay's API (`repository/{repo}/manifest/{ref}` and
//! `.../labels`).

use super::{Created, Ctx, Done, NonEmpty, Reply, RestError, Route, done, route};
use crate::AppState;
use berth_core::LabelRow;
use berth_core::auth::Role;
use berth_oci::RepoName;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/repository/{repository}/manifest/{manifestref}", "A manifest: its bytes, media type and layers", "repo:read",
            manifest() -> Reply<Manifest>),
        route!(GET "/api/v1/repository/{repository}/manifest/{manifestref}/labels", "A manifest's labels, optionally only keys starting with filter", "repo:read",
            list() -> Reply<Labels>, query &["filter"]),
        route!(POST "/api/v1/repository/{repository}/manifest/{manifestref}/labels", "Add a label to a manifest", "repo:write",
            add(NewLabel) -> Created<LabelAdded>),
        route!(GET "/api/v1/repository/{repository}/manifest/{manifestref}/labels/{labelid}", "One label", "repo:read",
            get() -> Reply<Label>),
        route!(DELETE "/api/v1/repository/{repository}/manifest/{manifestref}/labels/{labelid}", "Remove a label", "repo:write",
            delete() -> Done),
    ]
}

#[derive(Deserialize, ToSchema)]
pub struct NewLabel {
    pub key: NonEmpty,
    /// Empty when absent.
    #[serde(default)]
    pub value: String,
    /// `text/plain` when absent or null.
    pub media_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Label {
    pub id: String,
    pub key: String,
    pub value: String,
    /// `api` (added here) or `manifest` (from the image's config).
    pub source_type: String,
    pub media_type: String,
}

impl Label {
    pub fn new(l: &LabelRow) -> Label {
        Label {
            id: l.id.clone(),
            key: l.key.clone(),
            value: l.value.clone(),
            source_type: l.source_type.clone(),
            media_type: l.media_type.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Labels {
    pub labels: Vec<Label>,
}

/// Quay's answer to adding a label (with its `Location`).
#[derive(Serialize, ToSchema)]
pub struct LabelAdded {
    pub label: Label,
}

/// A manifest as Quay's API describes it.
#[derive(Serialize, ToSchema)]
pub struct Manifest {
    pub digest: String,
    pub is_manifest_list: bool,
    /// The manifest's bytes as text.
    pub manifest_data: String,
    pub media_type: String,
    /// From the manifest's `config.mediaType`; `null` when it has none.
    pub config_media_type: Value,
    pub layers_compressed_size: i64,
    pub layers: Vec<Layer>,
}

/// A layer of an image manifest, its fields as the manifest gives them.
#[derive(Serialize, ToSchema)]
pub struct Layer {
    pub index: usize,
    pub compressed_size: Value,
    pub is_remote: bool,
    pub urls: Option<Value>,
    pub blob_digest: Value,
}

impl Manifest {
    pub fn new(digest: String, media_type: String, content: &[u8]) -> Manifest {
        let parsed: Value = serde_json::from_slice(content).unwrap_or_default();
        let layers: Vec<Layer> = parsed["layers"]
            .as_array()
            .map(|ls| {
                ls.iter()
                    .enumerate()
                    .map(|(i, l)| Layer {
                        index: i,
                        compressed_size: l["size"].clone(),
                        is_remote: l.get("urls").is_some(),
                        urls: l.get("urls").cloned(),
                        blob_digest: l["digest"].clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Manifest {
            is_manifest_list: berth_oci::media::is_index(&media_type),
            manifest_data: String::from_utf8_lossy(content).to_string(),
            config_media_type: parsed["config"]["mediaType"].clone(),
            layers_compressed_size: layers
                .iter()
                .filter_map(|l| l.compressed_size.as_i64())
                .sum(),
            layers,
            digest,
            media_type,
        }
    }
}

async fn repo(st: &AppState, ctx: &Ctx, role: Role) -> Res<RepoName> {
    st.auth
        .repo_with_role(ctx.caller.as_ref(), ctx.p("repository"), role)
        .await?;
    ctx.p("repository")
        .parse()
        .map_err(|_| RestError::bad("invalid repository name"))
}

fn digest(ctx: &Ctx) -> Res<String> {
    let d = ctx.p("manifestref");
    d.parse::<berth_oci::Digest>()
        .map(|d| d.to_string())
        .map_err(|_| RestError::bad(format!("{d:?} is not a manifest digest (sha256:...)")))
}

async fn manifest(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Manifest>> {
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
    Ok(Reply::new(Manifest::new(
        row.digest.to_string(),
        row.media_type.to_string(),
        &row.content,
    )))
}

async fn list(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Labels>> {
    let repo = repo(&st, &ctx, Role::Read).await?;
    let labels = st
        .registry
        .labels(&repo, &digest(&ctx)?, ctx.q("filter").unwrap_or(""))
        .await?;
    Ok(Reply::new(Labels {
        labels: labels.iter().map(Label::new).collect(),
    }))
}

async fn add(st: Arc<AppState>, ctx: Ctx, b: NewLabel) -> Res<Created<LabelAdded>> {
    ctx.actor()?;
    let repo = repo(&st, &ctx, Role::Write).await?;
    let d = digest(&ctx)?;
    let l = st
        .registry
        .add_label(
            &ctx.who(),
            &repo,
            &d,
            &b.key,
            &b.value,
            b.media_type.as_deref(),
        )
        .await?;
    // Quay's answer: 201, the label under "label", and where it lives.
    let location = format!(
        "/api/v1/repository/{}/manifest/{d}/labels/{}",
        repo.as_str(),
        l.id
    );
    let mut reply = Reply::new(LabelAdded {
        label: Label::new(&l),
    });
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        reply = reply.header(axum::http::header::LOCATION, v);
    }
    Ok(reply)
}

async fn get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Label>> {
    let repo = repo(&st, &ctx, Role::Read).await?;
    let l = st
        .registry
        .label(&repo, &digest(&ctx)?, ctx.p("labelid"))
        .await?;
    Ok(Reply::new(Label::new(&l)))
}

async fn delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    ctx.actor()?;
    let repo = repo(&st, &ctx, Role::Write).await?;
    let d = digest(&ctx)?;
    st.registry
        .delete_label(&ctx.who(), &repo, &d, ctx.p("labelid"))
        .await?;
    done()
}
