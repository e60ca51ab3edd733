//! Tags through Quay's API: history (live and past) with paging and filters, create/move and
//! expiry, delete, and restore within the time machine's window.

use super::{Created, Ctx, Done, EmptyObject, NonEmpty, Reply, RestError, Route, done, route};
use crate::AppState;
use berth_core::content::Content;
use berth_core::{Caller, Tag, TagFilter};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type Res<T> = Result<T, RestError>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(GET "/api/v1/repository/{repository}/tag/", "Tag history: live and past positions, newest first", "repo:read",
            list() -> Reply<TagPage>, query &["specificTag", "filter_tag_name", "onlyActiveTags", "page", "limit", "label"]),
        route!(PUT "/api/v1/repository/{repository}/tag/{tag}", "Create or move a tag (manifest_digest), set its expiration (Unix seconds, or null), and/or make it immutable (lifting needs admin)", "repo:write",
            put(TagChange) -> Created<&'static str>),
        route!(DELETE "/api/v1/repository/{repository}/tag/{tag}", "Delete a tag (it stays in the time machine)", "repo:write",
            delete() -> Done),
        route!(POST "/api/v1/repository/{repository}/tag/{tag}/restore", "Point a tag back at a manifest it pointed at within the time machine's window", "repo:write",
            restore(Restore) -> Reply<EmptyObject>),
        route!(POST "/api/v1/repository/{repository}/tag/{tag}/expire", "Delete a tag's position at manifest_digest from the time machine for good (PERMANENTLY_DELETE_TAGS); is_alive deletes the live tag first", "repo:write",
            expire(Expire) -> Reply<EmptyObject>),
    ]
}

/// `PUT …/tag/{tag}`: any of the three.
#[derive(Deserialize, ToSchema)]
pub struct TagChange {
    /// Point the tag here (creating it if new).
    pub manifest_digest: Option<String>,
    /// Unix seconds in the future; `null` clears the expiration; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub expiration: Option<Option<i64>>,
    pub immutable: Option<bool>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
pub struct Restore {
    pub manifest_digest: NonEmpty,
}

/// `POST …/tag/{tag}/expire`: Quay's fields.
#[derive(Deserialize, ToSchema)]
pub struct Expire {
    pub manifest_digest: NonEmpty,
    /// Accepted for Quay's clients; an index's children go with it in Berth either way.
    #[serde(default)]
    #[expect(dead_code, reason = "Quay's field, read by the schema only")]
    pub include_submanifests: bool,
    /// The position is the live tag (deleted first).
    #[serde(default)]
    pub is_alive: bool,
}

/// A page of tag history.
#[derive(Serialize, ToSchema)]
pub struct TagPage {
    pub tags: Vec<TagEntry>,
    pub page: i64,
    pub has_additional: bool,
}

/// A tag's position: live (`immutable` present, no `end_ts`) or past (`end_ts`).
#[derive(Serialize, ToSchema)]
pub struct TagEntry {
    pub name: String,
    pub reversion: bool,
    pub start_ts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ts: Option<i64>,
    pub manifest_digest: String,
    pub is_manifest_list: bool,
    pub size: Option<i64>,
    /// HTTP date.
    pub last_modified: String,
    /// HTTP date; absent when the tag does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    /// Live tags only: by the tag's flag or an immutability policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl TagEntry {
    /// `protected`: an immutability policy covers the tag's name.
    pub fn new(t: &Tag, protected: bool) -> TagEntry {
        TagEntry {
            name: t.name.clone(),
            reversion: false,
            start_ts: t.start_at / 1000,
            end_ts: t.end_at.map(|e| e / 1000),
            manifest_digest: t.manifest_digest.to_string(),
            is_manifest_list: t
                .media_type
                .as_deref()
                .is_some_and(berth_oci::media::is_index),
            size: t.size,
            last_modified: crate::auth::http_date(t.start_at),
            expiration: t.expires_at.map(crate::auth::http_date),
            immutable: t.end_at.is_none().then_some(t.immutable || protected),
        }
    }
}

fn content(st: &AppState) -> Content<'_> {
    Content::new(&st.registry, &st.auth)
}

fn caller(ctx: &Ctx) -> Res<Caller<'_>> {
    Ok(Caller::new(ctx.actor()?, ctx.ip.as_deref()))
}

async fn list(st: Arc<AppState>, ctx: Ctx) -> Res<Reply<TagPage>> {
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
    let rows = content(&st)
        .tags(
            ctx.caller.as_ref(),
            ctx.p("repository"),
            &filter,
            (page - 1).saturating_mul(limit),
            limit + 1,
        )
        .await?;
    let more = rows.len() as i64 > limit;
    Ok(Reply::new(TagPage {
        tags: rows
            .iter()
            .take(limit as usize)
            .map(|t| TagEntry::new(&t.tag, t.protected_by_policy))
            .collect(),
        page,
        has_additional: more,
    }))
}

async fn put(st: Arc<AppState>, ctx: Ctx, b: TagChange) -> Res<Created<&'static str>> {
    let change = berth_core::content::TagChange {
        manifest_digest: b.manifest_digest.as_deref(),
        expires_at: b
            .expiration
            .map(|e| e.map(|secs| secs.saturating_mul(1000))),
        immutable: b.immutable,
    };
    content(&st)
        .change_tag(caller(&ctx)?, ctx.p("repository"), ctx.p("tag"), &change)
        .await?;
    Ok(Reply::new("Updated"))
}

async fn delete(st: Arc<AppState>, ctx: Ctx) -> Res<Done> {
    content(&st)
        .delete_tag(caller(&ctx)?, ctx.p("repository"), ctx.p("tag"))
        .await?;
    done()
}

async fn restore(st: Arc<AppState>, ctx: Ctx, b: Restore) -> Res<Reply<EmptyObject>> {
    content(&st)
        .restore_tag(
            caller(&ctx)?,
            ctx.p("repository"),
            ctx.p("tag"),
            &b.manifest_digest,
        )
        .await?;
    Ok(Reply::new(EmptyObject {}))
}

async fn expire(st: Arc<AppState>, ctx: Ctx, b: Expire) -> Res<Reply<EmptyObject>> {
    content(&st)
        .purge_tag(
            caller(&ctx)?,
            ctx.p("repository"),
            ctx.p("tag"),
            &b.manifest_digest,
            b.is_alive,
        )
        .await?;
    Ok(Reply::new(EmptyObject {}))
}
