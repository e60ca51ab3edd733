//! A repository's content as `/api/v1` (and the UI after it) manages it: the repository itself,
//! its tags and their history, its manifests' labels. Each use case is one method that decides
//! access (the caller's role on the repository, by the one access rule) and then does the work,
//! so no caller can do the second without the first. The `/v2` registry API reaches the same
//! `Registry` writes with the grants of its registry token, which are decided when the token is
//! issued (`Auth::issue_registry_token`).

use crate::auth::{Actor, Auth, RepoAccess, Role};
use crate::caller::Caller;
use crate::{Error, Label, Missing, Registry, Repository, Result, Tag, TagFilter};
use berth_oci::{Digest, Reference, RepoName};

pub use crate::tags::{BulkTags, TagMatch, TagSelection, version_cmp};

/// The order of a page of live tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagOrder {
    /// By name, ascending.
    #[default]
    Name,
    /// Most recently pushed or moved first, then by name.
    Newest,
    /// Highest version first ([`version_cmp`]), then names that are not versions, by name.
    Version,
}

/// The content use cases over one registry and its access rule. Cheap: make one per request.
#[derive(Clone, Copy)]
pub struct Content<'a> {
    registry: &'a Registry,
    auth: &'a Auth,
}

/// A repository as its page shows it: what the caller may do there, its time-machine window,
/// and (when asked) its live tags.
#[derive(Debug, Clone)]
pub struct RepositoryView {
    pub repository: Repository,
    /// How long ended tags stay restorable, in seconds.
    pub window_s: i64,
    pub can_write: bool,
    pub can_admin: bool,
    pub tags: Option<Vec<Tag>>,
}

/// What changed between two manifests ([`Content::diff`]), `from` to `to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestDiff {
    /// Layers (digest, size) only `to` has, and only `from` had.
    pub layers_added: Vec<(String, i64)>,
    pub layers_removed: Vec<(String, i64)>,
    /// Platforms of an index (platform, child digest) only `to` has, and only `from` had; a
    /// platform rebuilt shows in both.
    pub platforms_added: Vec<(String, String)>,
    pub platforms_removed: Vec<(String, String)>,
    /// Labels (key, value) added and removed, and (key, old, new) changed.
    pub labels_added: Vec<(String, String)>,
    pub labels_removed: Vec<(String, String)>,
    pub labels_changed: Vec<(String, String, String)>,
    /// Compressed layer bytes of each.
    pub size_from: i64,
    pub size_to: i64,
    pub media_type_from: String,
    pub media_type_to: String,
}

/// A bulk repository deletion: those the caller administers (name, bytes stored), and those
/// it may not delete (name, why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoDeletion {
    pub deletable: Vec<(String, i64)>,
    pub refused: Vec<(String, String)>,
}

/// At most this many repositories in one bulk deletion.
pub const BULK_REPOS: usize = 100;

/// What deleting a tag would free ([`Content::deletion_impact`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletionImpact {
    /// Other live tags on the same manifest.
    pub other_tags: i64,
    /// Bytes garbage collection frees once the tag has left the time-machine window.
    pub bytes_freed: i64,
}

/// A tag as a listing shows it: whether an immutability policy protects it, beside its own flag.
#[derive(Debug, Clone)]
pub struct TagView {
    pub tag: Tag,
    pub protected_by_policy: bool,
}

/// A change to a tag (Quay's `PUT /repository/{repo}/tag/{tag}`). Each field given is applied.
#[derive(Debug, Clone, Default)]
pub struct TagChange<'a> {
    /// Point the tag at this manifest.
    pub manifest_digest: Option<&'a str>,
    /// `Some(None)` clears the expiry; `Some(Some(ms))` sets it (must be in the future).
    pub expires_at: Option<Option<i64>>,
    pub immutable: Option<bool>,
}

/// What page of live tags to list.
#[derive(Debug, Clone, Default)]
pub struct TagQuery<'a> {
    /// Which live tags.
    pub matching: TagMatch<'a>,
    pub order: TagOrder,
    /// The `next` cursor of the page before.
    pub after: Option<&'a str>,
    /// At most this many (1 to 500).
    pub limit: i64,
}

/// A page of live tags, with the cursor of the next page and how many match in all.
#[derive(Debug, Clone)]
pub struct LiveTags {
    pub tags: Vec<TagView>,
    pub next: Option<String>,
    pub total: i64,
    /// What the page's manifests are, by digest: an index's platforms, and labels.
    pub manifests: std::collections::HashMap<String, ManifestSummary>,
}

/// What a listing shows of a tag's manifest beside the tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestSummary {
    /// An index's platforms (`os/architecture[/variant]`), in its order; empty for an image.
    pub platforms: Vec<String>,
    /// Labels (key, value), by key.
    pub labels: Vec<(String, String)>,
    /// The stored vulnerability match (an index's: its platforms' together); `None` before
    /// the first match or with scanning off.
    pub security: Option<crate::scan::ScanSummary>,
}

/// The cursor after `t` in `order`: its name, prefixed by its start time and a dot when newest
/// first (the time is all digits, so the first dot ends it even though names may hold dots).
/// An index entry's `platform` as `os/architecture[/variant]` ("unknown" without one).
pub fn platform_name(p: &serde_json::Value) -> String {
    let s = |k: &str| p[k].as_str().unwrap_or("");
    let mut out = format!("{}/{}", s("os"), s("architecture"));
    if !s("variant").is_empty() {
        out.push('/');
        out.push_str(s("variant"));
    }
    if out == "/" { "unknown".into() } else { out }
}

fn cursor_after(name: &str, start_at: i64, order: TagOrder) -> String {
    match order {
        TagOrder::Name | TagOrder::Version => name.to_string(),
        TagOrder::Newest => format!("{start_at}.{name}"),
    }
}

fn parse_cursor(c: &str, order: TagOrder) -> Result<(&str, i64)> {
    match order {
        TagOrder::Name | TagOrder::Version => Ok((c, i64::MAX)),
        TagOrder::Newest => c
            .split_once('.')
            .and_then(|(at, name)| at.parse().ok().map(|at| (name, at)))
            .ok_or_else(|| Error::invalid(format!("{c:?} is not a cursor of this listing"))),
    }
}

/// A manifest as the API shows it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: Digest,
    pub media_type: String,
    pub content: Vec<u8>,
}

impl Manifest {
    /// A row whose digest does not parse is corrupt: an internal fault, not the caller's.
    pub(crate) fn from_row(r: berth_db::ManifestRow) -> Result<Manifest> {
        let digest = r
            .digest
            .parse()
            .map_err(|e| Error::Internal(format!("corrupt manifest row {:?}: {e}", r.digest)))?;
        Ok(Manifest {
            digest,
            media_type: r.media_type,
            content: r.content,
        })
    }
}

/// Most live tags a repository view includes (Quay's limit).
const VIEW_TAGS: i64 = 500;

impl<'a> Content<'a> {
    pub fn new(registry: &'a Registry, auth: &'a Auth) -> Content<'a> {
        Content { registry, auth }
    }

    /// The repository, if `actor` holds `role` on it (404 to whoever may not see it).
    async fn open(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        role: Role,
    ) -> Result<(Repository, RepoName)> {
        let (r, name, _) = self.open_with_access(actor, repo, role).await?;
        Ok((r, name))
    }

    /// The repository, for a writer who may change its content in its state (Quay answers 503
    /// for these writes to a READ_ONLY or MIRROR repository).
    async fn open_to_change(&self, actor: &Actor, repo: &str) -> Result<(Repository, RepoName)> {
        let (r, name, access) = self
            .open_with_access(Some(actor), repo, Role::Write)
            .await?;
        if !access.content_writable {
            return Err(Error::Unavailable(crate::mirror::state_refusal(
                repo,
                access.state,
            )));
        }
        Ok((r, name))
    }

    /// [`Content::open`], with the caller's access as decided.
    async fn open_with_access(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        role: Role,
    ) -> Result<(Repository, RepoName, RepoAccess)> {
        let (r, access) = self.auth.repo_and_access(actor, repo, role).await?;
        let name = repo
            .parse()
            .map_err(|_| Error::invalid(format!("invalid repository name {repo:?}")))?;
        Ok((r, name, access))
    }

    /// A repository for those who may read it.
    pub async fn repository(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        include_tags: bool,
    ) -> Result<RepositoryView> {
        let (r, name, access) = self.open_with_access(actor, repo, Role::Read).await?;
        let window_s = self
            .auth
            .namespace_tag_window(&r.namespace)
            .await?
            .unwrap_or(self.registry.config.gc.default_window_s);
        let tags = if include_tags {
            let live = TagFilter {
                only_active: true,
                ..TagFilter::default()
            };
            Some(
                self.registry
                    .tag_history(&name, &live, 0, VIEW_TAGS)
                    .await?,
            )
        } else {
            None
        };
        Ok(RepositoryView {
            repository: r,
            window_s,
            can_write: access.allows(Role::Write),
            can_admin: access.allows(Role::Admin),
            tags,
        })
    }

    /// Deletes a repository (its administrators only).
    pub async fn delete_repository(&self, caller: Caller<'_>, repo: &str) -> Result<()> {
        let (_, name) = self.open(Some(caller.actor), repo, Role::Admin).await?;
        self.registry.delete_repository(&caller.who(), &name).await
    }

    /// What deleting these repositories would do: each is deletable by its administrators
    /// only; the others are named with the reason.
    pub async fn preview_repository_deletion(
        &self,
        actor: &Actor,
        names: &[String],
    ) -> Result<RepoDeletion> {
        if names.len() > BULK_REPOS {
            return Err(Error::invalid(format!(
                "at most {BULK_REPOS} repositories at a time ({} selected)",
                names.len()
            )));
        }
        let mut admin = Vec::new();
        let mut out = RepoDeletion::default();
        for n in names {
            match self.open(Some(actor), n, Role::Admin).await {
                Ok((r, _)) => admin.push(r),
                Err(e) => out.refused.push((n.clone(), e.to_string())),
            }
        }
        let sizes = self.registry.repo_sizes(&admin).await?;
        out.deletable = admin
            .into_iter()
            .map(|r| {
                let b = sizes.get(&r.name).copied().unwrap_or(0);
                (r.name, b)
            })
            .collect();
        Ok(out)
    }

    /// Deletes the repositories the caller administers among `names` (each as
    /// [`Content::delete_repository`] does); answers what went and what was refused.
    pub async fn delete_repositories(
        &self,
        caller: Caller<'_>,
        names: &[String],
    ) -> Result<RepoDeletion> {
        let plan = self
            .preview_repository_deletion(caller.actor, names)
            .await?;
        for (n, _) in &plan.deletable {
            self.delete_repository(caller, n).await?;
        }
        Ok(plan)
    }

    /// Tag history, newest first, `limit` rows after `offset`, for readers.
    pub async fn tags(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        filter: &TagFilter<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<TagView>> {
        let (_, name) = self.open(actor, repo, Role::Read).await?;
        let tags = self
            .registry
            .tag_history(&name, filter, offset, limit)
            .await?;
        let rules = self.registry.immutability_rules(&name).await?;
        Ok(tags
            .into_iter()
            .map(|tag| TagView {
                protected_by_policy: rules.protects(&tag.name),
                tag,
            })
            .collect())
    }

    /// One live tag, for readers; NotFound (saying where to look) if it has none now.
    pub async fn live_tag(&self, actor: Option<&Actor>, repo: &str, tag: &str) -> Result<TagView> {
        let f = TagFilter {
            name: Some(tag),
            only_active: true,
            ..TagFilter::default()
        };
        self.tags(actor, repo, &f, 0, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::not_found(format!(
                    "{repo} has no tag {tag:?} now; its tag history may show where it pointed"
                ))
            })
    }

    /// A page of a repository's live tags, for readers. By name or newest first, with a name
    /// or label filter, it is keyset-paged on the live-tag index, so any page of 100,000 tags
    /// costs what the first does; a regular expression or the version order is applied to the
    /// live tags' names in memory (one indexed read of the names), then the page is read.
    pub async fn live_tags(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        q: &TagQuery<'_>,
    ) -> Result<LiveTags> {
        let (r, name) = self.open(actor, repo, Role::Read).await?;
        let limit = q.limit.clamp(1, 500);
        let after = q.after.map(|c| parse_cursor(c, q.order)).transpose()?;
        let db = &self.registry.db;
        let f = q.matching.db();
        let re = q.matching.regex()?;
        let (tags, next, total) = match (q.order, &re) {
            (TagOrder::Name | TagOrder::Newest, None) => {
                let order = if q.order == TagOrder::Newest {
                    berth_db::TagOrder::Newest
                } else {
                    berth_db::TagOrder::Name
                };
                let rows = db.live_tags_page(r.id, &f, order, after, limit + 1).await?;
                let total = db.live_tag_count(r.id, &f).await?;
                let mut tags = Tag::from_rows(rows)?;
                let more = tags.len() as i64 > limit;
                tags.truncate(limit as usize);
                let next = tags
                    .last()
                    .filter(|_| more)
                    .map(|t| cursor_after(&t.name, t.start_at, q.order));
                (tags, next, total)
            }
            _ => {
                let mut keys = db.live_tag_names(r.id, &f).await?;
                if let Some(re) = &re {
                    keys.retain(|k| re.is_match(&k.name));
                }
                let order = q.order;
                let cmp = move |a: (&str, i64), b: (&str, i64)| match order {
                    TagOrder::Name => a.0.cmp(b.0),
                    TagOrder::Newest => b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)),
                    TagOrder::Version => version_cmp(b.0, a.0).then_with(|| a.0.cmp(b.0)),
                };
                keys.sort_by(|a, b| cmp((&a.name, a.start_at), (&b.name, b.start_at)));
                let from = after.map_or(0, |c| {
                    keys.partition_point(|k| cmp((&k.name, k.start_at), c).is_le())
                });
                let to = (from + limit as usize).min(keys.len());
                let names: Vec<String> = keys[from..to].iter().map(|k| k.name.clone()).collect();
                let next = keys[..to]
                    .last()
                    .filter(|_| to < keys.len())
                    .map(|k| cursor_after(&k.name, k.start_at, order));
                let mut tags = Tag::from_rows(db.live_tags_named(r.id, &names).await?)?;
                let at: std::collections::HashMap<&str, usize> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.as_str(), i))
                    .collect();
                tags.sort_by_key(|t| at.get(t.name.as_str()).copied().unwrap_or(usize::MAX));
                (tags, next, keys.len() as i64)
            }
        };
        let manifests = self.summaries(r.id, &tags).await?;
        let rules = self.registry.immutability_rules(&name).await?;
        Ok(LiveTags {
            tags: tags
                .into_iter()
                .map(|tag| TagView {
                    protected_by_policy: rules.protects(&tag.name),
                    tag,
                })
                .collect(),
            next,
            total,
            manifests,
        })
    }

    /// The platforms and labels of a page's manifests: two queries for the page.
    async fn summaries(
        &self,
        repo_id: i64,
        tags: &[Tag],
    ) -> Result<std::collections::HashMap<String, ManifestSummary>> {
        let mut digests: Vec<String> = tags.iter().map(|t| t.manifest_digest.to_string()).collect();
        digests.sort();
        digests.dedup();
        let db = &self.registry.db;
        let mut out: std::collections::HashMap<String, ManifestSummary> = Default::default();
        let mut children: std::collections::HashMap<String, Vec<String>> = Default::default();
        for (digest, content) in db.index_contents(repo_id, &digests).await? {
            let entries = serde_json::from_slice::<serde_json::Value>(&content)
                .ok()
                .and_then(|v| v.get("manifests").and_then(|m| m.as_array()).cloned())
                .unwrap_or_default();
            let platforms = entries
                .iter()
                .map(|m| platform_name(&m["platform"]))
                .collect();
            children.insert(
                digest.clone(),
                entries
                    .iter()
                    .filter_map(|m| m["digest"].as_str().map(str::to_string))
                    .collect(),
            );
            out.entry(digest).or_default().platforms = platforms;
        }
        for (digest, key, value) in db.labels_of(repo_id, &digests).await? {
            out.entry(digest).or_default().labels.push((key, value));
        }
        if self.registry.config.scan.enabled {
            let mut wanted = digests.clone();
            wanted.extend(children.values().flatten().cloned());
            let scans = self.registry.scan_summaries(&wanted).await?;
            for d in &digests {
                let s = match children.get(d) {
                    Some(kids) => {
                        crate::scan::ScanSummary::combine(kids.iter().filter_map(|k| scans.get(k)))
                    }
                    None => scans.get(d).cloned(),
                };
                if s.is_some() {
                    out.entry(d.clone()).or_default().security = s;
                }
            }
        }
        Ok(out)
    }

    /// Points, re-dates or (un)freezes a tag, for writers; lifting immutability is for
    /// administrators.
    pub async fn change_tag(
        &self,
        caller: Caller<'_>,
        repo: &str,
        tag: &str,
        change: &TagChange<'_>,
    ) -> Result<()> {
        let (_, name) = self.open_to_change(caller.actor, repo).await?;
        if let Some(Some(at)) = change.expires_at
            && at <= crate::now_ms()
        {
            return Err(Error::invalid("expiration must be in the future"));
        }
        if change.expires_at.is_some() && !self.auth.config.change_tag_expiration {
            return Err(Error::denied(
                "changing tag expiration is disabled (FEATURE_CHANGE_TAG_EXPIRATION)",
            ));
        }
        if change.immutable == Some(false) {
            self.open(Some(caller.actor), repo, Role::Admin).await?;
        }
        let who = caller.who();
        match (change.manifest_digest, change.expires_at) {
            (Some(digest), exp) => {
                self.registry
                    .tag_point(&who, &name, tag, digest, exp.flatten())
                    .await?
            }
            (None, Some(exp)) => self.registry.tag_set_expiry(&who, &name, tag, exp).await?,
            (None, None) if change.immutable.is_some() => {}
            (None, None) => {
                return Err(Error::invalid(
                    "give manifest_digest, expiration or immutable",
                ));
            }
        }
        if let Some(flag) = change.immutable {
            self.registry
                .tag_set_immutable(&who, &name, tag, flag)
                .await?;
        }
        Ok(())
    }

    /// Ends a tag (it stays restorable within the window), for writers.
    pub async fn delete_tag(&self, caller: Caller<'_>, repo: &str, tag: &str) -> Result<()> {
        let (_, name) = self.open_to_change(caller.actor, repo).await?;
        let reference: Reference = tag
            .parse()
            .map_err(|_| Error::invalid(format!("invalid tag {tag:?}")))?;
        self.registry
            .manifest_delete(&caller.who(), &name, &reference)
            .await
            .map_err(|e| match e {
                Error::NotFound {
                    what: Missing::Manifest,
                    ..
                } => Error::not_found(format!("{name} has no tag {tag}")),
                other => other,
            })
    }

    /// What deleting `selection` would do, for writers: the tags it ends and those immutability
    /// keeps. Nothing changes.
    pub async fn preview_tag_deletion(
        &self,
        actor: &Actor,
        repo: &str,
        selection: &TagSelection<'_>,
    ) -> Result<BulkTags> {
        let (_, name) = self.open(Some(actor), repo, Role::Write).await?;
        self.registry.tags_selected(&name, selection).await
    }

    /// Deletes every deletable tag of `selection` in one transaction, for writers; answers what
    /// it ended and what it kept. Each ended tag stays restorable within the window.
    pub async fn delete_tags(
        &self,
        caller: Caller<'_>,
        repo: &str,
        selection: &TagSelection<'_>,
    ) -> Result<BulkTags> {
        let (_, name) = self.open_to_change(caller.actor, repo).await?;
        let sel = self.registry.tags_selected(&name, selection).await?;
        if !sel.deletable.is_empty() {
            self.registry
                .tags_end(&caller.who(), &name, &sel.deletable)
                .await?;
        }
        Ok(sel)
    }

    /// Points a tag back at a manifest it pointed at within the window, for writers.
    pub async fn restore_tag(
        &self,
        caller: Caller<'_>,
        repo: &str,
        tag: &str,
        digest: &str,
    ) -> Result<()> {
        let (_, name) = self.open_to_change(caller.actor, repo).await?;
        self.registry
            .tag_restore(&caller.who(), &name, tag, digest)
            .await
    }

    /// Deletes a tag's position at `digest` from the time machine for good (Quay's `…/expire`,
    /// behind `PERMANENTLY_DELETE_TAGS`), for writers. With `is_alive` the live tag, which must
    /// point there, is deleted first (immutability refuses as a deletion does). An index's
    /// children have no tags of their own and go with it, so Quay's `include_submanifests`
    /// changes nothing here.
    pub async fn purge_tag(
        &self,
        caller: Caller<'_>,
        repo: &str,
        tag: &str,
        digest: &str,
        is_alive: bool,
    ) -> Result<u64> {
        if !self.auth.config.permanently_delete_tags {
            return Err(Error::not_found(
                "deleting tags permanently is off; an administrator turns it on with PERMANENTLY_DELETE_TAGS: true",
            ));
        }
        let (r, name) = self.open_to_change(caller.actor, repo).await?;
        if is_alive {
            match self.registry.db.live_tag(r.id, tag).await? {
                Some((d, _)) if d == digest => self.delete_tag(caller, repo, tag).await?,
                _ => {
                    return Err(Error::not_found(format!(
                        "{name}:{tag} does not point at {digest} now"
                    )));
                }
            }
        }
        self.registry
            .tag_purge(&caller.who(), &name, tag, digest)
            .await
    }

    /// A live manifest by digest, for readers (no pull is counted).
    pub async fn manifest(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        digest: &Digest,
    ) -> Result<Manifest> {
        let (_, name) = self.open(actor, repo, Role::Read).await?;
        let reference = Reference::Digest(digest.clone());
        self.registry
            .manifest_read(&name, &reference)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    Error::not_found(format!("{name} has no manifest {digest}"))
                } else {
                    e
                }
            })
    }

    /// A manifest's vulnerability report (readers of the repository).
    pub async fn security(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        digest: &Digest,
    ) -> Result<crate::scan::SecurityReport> {
        let (_, name) = self.open(actor, repo, Role::Read).await?;
        self.registry.security_report(&name, digest).await
    }

    /// Registry-wide: the images affected by vulnerability `id` (a record id or alias), or
    /// holding package `name` (at `version`), among the repositories `actor` may read; at most
    /// `limit`, and whether more were left out.
    pub async fn find_images(
        &self,
        actor: Option<&Actor>,
        vulnerability: Option<&str>,
        package: Option<(&str, Option<&str>)>,
        limit: usize,
    ) -> Result<(Vec<crate::scan::SearchHit>, bool)> {
        let hits = match (vulnerability, package) {
            (Some(id), None) => self.registry.images_with_vuln(id.trim()).await?,
            (None, Some((name, version))) => {
                self.registry
                    .images_with_package(name.trim(), version.map(str::trim))
                    .await?
            }
            _ => {
                return Err(Error::invalid(
                    "ask for one of vulnerability=<id> (CVE-…, GHSA-…) or package=<name>",
                ));
            }
        };
        let mut readable: std::collections::HashMap<String, bool> = Default::default();
        let mut out = Vec::new();
        let mut more = false;
        for h in hits {
            let ok = match readable.get(&h.repository) {
                Some(ok) => *ok,
                None => {
                    let ok = self.open(actor, &h.repository, Role::Read).await.is_ok();
                    readable.insert(h.repository.clone(), ok);
                    ok
                }
            };
            if !ok {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.push(h);
        }
        Ok((out, more))
    }

    /// A manifest's SBOM (readers of the repository).
    pub async fn sbom(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        digest: &Digest,
        format: crate::scan::SbomFormat,
    ) -> Result<serde_json::Value> {
        let (_, name) = self.open(actor, repo, Role::Read).await?;
        self.registry.sbom(&name, digest, format).await
    }

    /// Stores a manifest's SBOM as its referrer (writers of the repository).
    pub async fn store_sbom(
        &self,
        caller: Caller<'_>,
        repo: &str,
        digest: &Digest,
        format: crate::scan::SbomFormat,
    ) -> Result<Digest> {
        let (_, name) = self.open_to_change(caller.actor, repo).await?;
        self.registry
            .store_sbom(&caller.who(), &name, digest, format)
            .await
    }

    /// What changed from manifest `from` to manifest `to` (two positions of a tag): layers,
    /// platforms of an index, labels, size, for readers.
    pub async fn diff(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        from: &Digest,
        to: &Digest,
    ) -> Result<ManifestDiff> {
        let a = self.manifest(actor, repo, from).await?;
        let b = self.manifest(actor, repo, to).await?;
        let la = self.labels(actor, repo, from, "").await?;
        let lb = self.labels(actor, repo, to, "").await?;
        let parse = |m: &Manifest| -> serde_json::Value {
            serde_json::from_slice(&m.content).unwrap_or_default()
        };
        let (ja, jb) = (parse(&a), parse(&b));
        let layers = |j: &serde_json::Value| -> Vec<(String, i64)> {
            j["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    (
                        l["digest"].as_str().unwrap_or("").to_string(),
                        l["size"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        };
        let platforms = |j: &serde_json::Value| -> Vec<(String, String)> {
            j["manifests"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    (
                        platform_name(&m["platform"]),
                        m["digest"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        };
        let (lya, lyb) = (layers(&ja), layers(&jb));
        let (pa, pb) = (platforms(&ja), platforms(&jb));
        let mut d = ManifestDiff {
            layers_added: lyb.iter().filter(|l| !lya.contains(l)).cloned().collect(),
            layers_removed: lya.iter().filter(|l| !lyb.contains(l)).cloned().collect(),
            platforms_added: pb.iter().filter(|p| !pa.contains(p)).cloned().collect(),
            platforms_removed: pa.iter().filter(|p| !pb.contains(p)).cloned().collect(),
            size_from: lya.iter().map(|l| l.1).sum(),
            size_to: lyb.iter().map(|l| l.1).sum(),
            media_type_from: a.media_type.clone(),
            media_type_to: b.media_type.clone(),
            ..ManifestDiff::default()
        };
        for l in &lb {
            match la.iter().find(|o| o.key == l.key) {
                None => d.labels_added.push((l.key.clone(), l.value.clone())),
                Some(o) if o.value != l.value => {
                    d.labels_changed
                        .push((l.key.clone(), o.value.clone(), l.value.clone()))
                }
                Some(_) => {}
            }
        }
        for o in &la {
            if !lb.iter().any(|l| l.key == o.key) {
                d.labels_removed.push((o.key.clone(), o.value.clone()));
            }
        }
        Ok(d)
    }

    /// The manifests whose subject is `digest` (signatures, SBOMs, attestations), for readers.
    pub async fn referrers(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        digest: &Digest,
    ) -> Result<Vec<crate::Referrer>> {
        let (_, name) = self.open(actor, repo, Role::Read).await?;
        self.registry.referrers(&name, digest, None).await
    }

    /// What deleting a live tag would free, for readers: the other live tags on its manifest,
    /// and the bytes of the blobs only it holds (none while another tag points there).
    pub async fn deletion_impact(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        tag: &Tag,
    ) -> Result<DeletionImpact> {
        let (r, _) = self.open(actor, repo, Role::Read).await?;
        let others = self
            .registry
            .db
            .live_tag_rows(r.id)
            .await?
            .iter()
            .filter(|(t, d, _)| *t != tag.name && *d == tag.manifest_digest.to_string())
            .count() as i64;
        let bytes_freed = self
            .registry
            .freed_by_ending(r.id, std::slice::from_ref(&tag.name))
            .await?;
        Ok(DeletionImpact {
            other_tags: others,
            bytes_freed,
        })
    }

    /// A manifest's labels whose key starts with `prefix`, for readers.
    pub async fn labels(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        digest: &Digest,
        prefix: &str,
    ) -> Result<Vec<Label>> {
        let (_, name) = self.open(actor, repo, Role::Read).await?;
        self.registry
            .labels(&name, &digest.to_string(), prefix)
            .await
    }

    /// One label of a manifest, for readers.
    pub async fn label(
        &self,
        actor: Option<&Actor>,
        repo: &str,
        digest: &Digest,
        label_id: &str,
    ) -> Result<Label> {
        let (_, name) = self.open(actor, repo, Role::Read).await?;
        self.registry
            .label(&name, &digest.to_string(), label_id)
            .await
    }

    /// Adds a label to a manifest, for writers.
    pub async fn add_label(
        &self,
        caller: Caller<'_>,
        repo: &str,
        digest: &Digest,
        key: &str,
        value: &str,
        media_type: Option<&str>,
    ) -> Result<Label> {
        let (_, name) = self.open_to_change(caller.actor, repo).await?;
        self.registry
            .add_label(
                &caller.who(),
                &name,
                &digest.to_string(),
                key,
                value,
                media_type,
            )
            .await
    }

    /// Removes a label from a manifest, for writers.
    pub async fn delete_label(
        &self,
        caller: Caller<'_>,
        repo: &str,
        digest: &Digest,
        label_id: &str,
    ) -> Result<()> {
        let (_, name) = self.open_to_change(caller.actor, repo).await?;
        self.registry
            .delete_label(&caller.who(), &name, &digest.to_string(), label_id)
            .await
    }
}
