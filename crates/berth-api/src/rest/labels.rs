//! Manifests and their labels through Quay's API (`repository/{repo}/manifest/{ref}` and
//! `.../labels`).

use super::{Created, Ctx, Done, NonEmpty, Reply, RestError, Route, done, route};
use crate::AppState;
use berth_core::Caller;
use berth_core::content::Content;
use berth_oci::Digest;
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
    pub fn new(l: &berth_core::Label) -> Label {
        Label {
            id: l.id.clone(),
            key: l.key.clone(),
            value: l.value.clone(),
            source_type: l.source_type.to_string(),
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

fn content(st: &AppState) -> Content<'_> {
    Content::new(&st.registry, &st.auth)
}

fn caller(ctx: &Ctx) -> Res<Caller<'_>> {
    Ok(Caller::new(ctx.actor()?, ctx.ip.as_deref()))
}

/// The `{manifestref}` of a manifest route, as a digest (400 otherwise).
pub(super) fn digest(ctx: &Ctx) -> Res<Digest> {
    let d = ctx.p("manifestref");
    d.parse::<Digest>()
        .map_err(|_| RestError::bad(format!("{d:?} is not a manifest digest (sha256:...)")))
}

async fn manifest(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Manifest>> {
    let m = content(&st)
        .manifest(ctx.caller.as_ref(), ctx.p("repository"), &digest(&ctx)?)
        .await?;
    Ok(Reply::new(Manifest::new(
        m.digest.to_string(),
        m.media_type,
        &m.content,
    )))
}

async fn list(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Labels>> {
    let labels = content(&st)
        .labels(
            ctx.caller.as_ref(),
            ctx.p("repository"),
            &digest(&ctx)?,
            ctx.q("filter").unwrap_or(""),
        )
        .await?;
    Ok(Reply::new(Labels {
        labels: labels.iter().map(Label::new).collect(),
    }))
}

async fn add(st: Arc<AppState>, ctx: Ctx, b: NewLabel) -> Res<Created<LabelAdded>> {
    let d = digest(&ctx)?;
    let repo = ctx.p("repository");
    let l = content(&st)
        .add_label(
            caller(&ctx)?,
            repo,
            &d,
            &b.key,
            &b.value,
            b.media_type.as_deref(),
        )
        .await?;
    // Quay's answer: 201, the label under "label", and where it lives.
    let location = format!("/api/v1/repository/{repo}/manifest/{d}/labels/{}", l.id);
    let mut reply = Reply::new(LabelAdded {
        label: Label::new(&l),
    });
    if let Ok(v) = axum::http::HeaderValue::from_str(&location) {
        reply = reply.header(axum::http::header::LOCATION, v);
    }
    Ok(reply)
}

async fn get(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<Label>> {
    let l = content(&st)
        .label(
            ctx.caller.as_ref(),
            ctx.p("repository"),
            &digest(&ctx)?,
            ctx.p("labelid"),
        )
        .await?;
    Ok(Reply::new(Label::new(&l)))
}

async fn delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    content(&st)
        .delete_label(
            caller(&ctx)?,
            ctx.p("repository"),
            &digest(&ctx)?,
            ctx.p("labelid"),
        )
        .await?;
    done()
}
