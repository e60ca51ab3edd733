//! Repositories: the list (`/repository`), a repository's page
//! (`/repository/{ns}/{repo}?tab=info|tags|history`) and a tag's page
//! (`/repository/{ns}/{repo}/tag/{tag}`).

use super::{Crumb, Page, ago, iso, link, post_button, size, url_encode};
use crate::AppState;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::auth::views::{Listing, LogScope};
use berth_core::content::{
    Content, ManifestSummary, RepoDeletion, TagChange, TagMatch, TagOrder, TagQuery, TagSelection,
    TagView, platform_name,
};
use berth_core::policies::Level;
use berth_core::{Repository, TagFilter};
use maud::{Markup, html};
use std::sync::Arc;

/// Rows per page of a listing.
const PAGE: i64 = 50;

pub async fn list(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let filter = page.q("filter");
    let namespace = page.q("namespace");
    let newest = page.q("sort") == Some("pushed");
    let vis = page
        .q("visibility")
        .filter(|v| matches!(*v, "public" | "private"));
    let listing = Listing {
        namespace,
        public: true,
        everything: false,
        contains: filter,
        visibility: vis.and_then(|v| v.parse().ok()),
        newest_first: newest,
    };
    let rows = match st
        .auth
        .readable_repos(page.actor.as_ref(), &listing, page.q("after"), PAGE + 1)
        .await
    {
        Ok(r) => r,
        Err(e) => return page.error(e),
    };
    let more = rows.len() as i64 > PAGE;
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let next = rows.last().filter(|_| more).map(|r| {
        if newest {
            format!("{}:{}", r.last_push_at.unwrap_or(0), r.name)
        } else {
            r.name.clone()
        }
    });
    let sizes = match st.registry.repo_sizes(rows).await {
        Ok(s) => s,
        Err(e) => return page.error(e),
    };
    let namespaces: std::collections::BTreeSet<String> = match &page.actor {
        Some(a) => match st.auth.memberships(a.id).await {
            Ok(m) => m.into_iter().map(|(org, _)| org).collect(),
            Err(e) => return page.error(e),
        },
        None => Default::default(),
    };
    let base = |after: &str| {
        link(
            "/repository",
            &[
                ("namespace", namespace.unwrap_or("")),
                ("filter", filter.unwrap_or("")),
                ("visibility", vis.unwrap_or("")),
                ("sort", if newest { "pushed" } else { "" }),
                ("after", after),
            ],
        )
    };
    let confirm = match (&page.actor, page.q("confirm")) {
        (Some(a), Some("delete")) => {
            match Content::new(&st.registry, &st.auth)
                .preview_repository_deletion(a, &page.q_all("repo"))
                .await
            {
                Ok(p) => Some(confirm_repo_deletion(&page, &p)),
                Err(e) => return page.error(e),
            }
        }
        _ => None,
    };
    let crumbs = [Crumb::new("Repositories", "/repository")];
    page.render(
        StatusCode::OK,
        "Repositories",
        &crumbs,
        html! {
            h1 { "Repositories" }
            form.filters method="get" action="/repository" {
                div {
                    label for="filter" { "Name contains" }
                    input #filter type="search" name="filter" value=[filter];
                }
                div {
                    label for="namespace" { "Namespace" }
                    input #namespace name="namespace" value=[namespace];
                }
                div {
                    label for="visibility" { "Visibility" }
                    select #visibility name="visibility" {
                        option value="" { "any" }
                        option value="public" selected[vis == Some("public")] { "public" }
                        option value="private" selected[vis == Some("private")] { "private" }
                    }
                }
                div {
                    label for="repo-sort" { "Sort by" }
                    select #repo-sort name="sort" {
                        option value="name" { "name" }
                        option value="pushed" selected[newest] { "last pushed" }
                    }
                }
                button type="submit" { "Filter" }
                @if filter.is_some() || namespace.is_some() || vis.is_some() || newest {
                    a href="/repository" { "Clear" }
                }
            }
            @if let Some(c) = confirm { (c) }
            @if page.actor.is_some() && !rows.is_empty() {
                form #bulk-repos .bulk method="get" action="/repository" {
                    input type="hidden" name="confirm" value="delete";
                    button type="submit" { "Delete selected repositories…" }
                }
            }
            @if rows.is_empty() {
                p.empty {
                    @if page.q("after").is_some() {
                        "No more repositories. "
                    } @else if filter.is_some() || namespace.is_some() {
                        "No repository you may see matches. "
                    } @else if page.actor.is_some() {
                        "You cannot see any repository yet. Push one with "
                        code { "podman push " (page.host) "/" (page.actor.as_ref().map(|a| a.name.as_str()).unwrap_or("NAMESPACE")) "/NAME:TAG" }
                        ". "
                    } @else {
                        "There are no public repositories. "
                        a href="/signin?next=/repository" { "Sign in" }
                        " to see yours. "
                    }
                }
            } @else {
                table.list {
                    caption.visually-hidden { "Repositories you may see, " @if newest { "most recently pushed first" } @else { "by name" } }
                    thead { tr {
                        @if page.actor.is_some() { th scope="col" { span.visually-hidden { "Select" } } }
                        th scope="col" { "Name" } th scope="col" { "Visibility" } th scope="col" { "Last pushed" } th scope="col" { "Storage" } th scope="col" { "Description" }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                @if page.actor.is_some() {
                                    td.select { input type="checkbox" name="repo" value=(r.name) form="bulk-repos" aria-label={ "Select " (r.name) }; }
                                }
                                td { a href={ "/repository/" (r.name) } { (r.name) } }
                                td { (visibility(r)) }
                                td { (when(r.last_push_at)) }
                                td { (size(sizes.get(&r.name).copied().unwrap_or(0))) }
                                td.muted { (r.description.as_deref().and_then(|d| d.lines().next()).unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if page.q("after").is_some() { a href=(base("")) { "First page" } }
                @if let Some(n) = &next { a href=(base(n)) rel="next" { "Next page" } }
            }
            @if let Some(a) = &page.actor {
                h2 { "Create a repository" }
                form.stack method="post" action="/repository" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="new-namespace" { "New repository's namespace" }
                    select #new-namespace name="namespace" {
                        option value=(a.name) { (a.name) }
                        @for o in &namespaces { option value=(o) selected[namespace == Some(o.as_str())] { (o) } }
                    }
                    label for="new-name" { "New repository's name" }
                    input #new-name name="name" required autocomplete="off" aria-describedby="new-name-hint";
                    small #new-name-hint.muted { "Lowercase letters and digits, separated by '.', '_', '-' or '/'." }
                    label for="new-visibility" { "New repository's visibility" }
                    select #new-visibility name="visibility" {
                        option value="private" { "Private: only accounts with a permission pull it" }
                        option value="public" { "Public: anyone may pull it" }
                    }
                    label for="new-description" { "New repository's description (Markdown, optional)" }
                    textarea #new-description name="description" rows="3" {}
                    button.primary type="submit" { "Create repository" }
                }
            }
        },
    )
}

/// The bulk repository deletion's confirmation: what goes (for good: a deleted repository
/// leaves no time machine), what is refused and why, and the count to type.
fn confirm_repo_deletion(page: &Page, p: &RepoDeletion) -> Markup {
    let n = p.deletable.len();
    let total: i64 = p.deletable.iter().map(|(_, b)| b).sum();
    html! {
        section.confirm aria-labelledby="confirm-repos" {
            h2 #confirm-repos { "Delete " (n) " " @if n == 1 { "repository" } @else { "repositories" } "?" }
            @if n == 0 && p.refused.is_empty() {
                p { "Nothing is selected: tick the repositories to delete." }
            }
            @if n > 0 {
                p { "Their tags, manifests and history go now and cannot be restored; garbage collection then frees up to " strong { (size(total)) } " (blobs no other repository holds)." }
                ul.plain { @for (r, b) in &p.deletable { li { code { (r) } " — " (size(*b)) } } }
            }
            @if !p.refused.is_empty() {
                p.notice { "Not deleted (you do not administer them):" }
                ul.plain { @for (r, why) in &p.refused { li { code { (r) } ": " (why) } } }
            }
            @if n > 0 {
                form.stack method="post" action="/repository/delete" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    @for (r, _) in &p.deletable { input type="hidden" name="repo" value=(r); }
                    label for="confirm-count" { "Type " strong { (n) } " to confirm" }
                    input #confirm-count name="confirm_count" required inputmode="numeric" autocomplete="off";
                    button.danger type="submit" { "Delete " (n) " " @if n == 1 { "repository" } @else { "repositories" } }
                }
            }
            a href="/repository" { "Cancel" }
        }
    }
}

/// `POST /repository/delete`: the confirmed bulk deletion (the typed count must match).
async fn delete_repos(st: &AppState, page: &Page, f: &[(String, String)]) -> Response {
    let Some(actor) = page.actor.as_ref() else {
        return page.error(berth_core::Error::Unauthenticated(
            "sign in to delete repositories".into(),
        ));
    };
    let names: Vec<String> = f
        .iter()
        .filter(|(k, v)| k == "repo" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    let typed = f
        .iter()
        .find(|(k, _)| k == "confirm_count")
        .map(|(_, v)| v.trim());
    if typed != Some(names.len().to_string().as_str()) {
        return page.error(berth_core::Error::invalid(format!(
            "type {} to confirm the deletion",
            names.len()
        )));
    }
    page.after(
        Content::new(&st.registry, &st.auth)
            .delete_repositories(berth_core::Caller::new(actor, page.ip.as_deref()), &names)
            .await
            .map(|_| "/repository".to_string()),
    )
}

/// `POST /repository`: creates a repository (the create form of the list), then opens it.
pub async fn create(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let (f, actor) = match super::signed_in_form(&st, &page, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let ns = super::field(&f, "namespace").unwrap_or(&actor.name);
    let name = format!("{ns}/{}", super::field(&f, "name").unwrap_or(""));
    match st
        .auth
        .create_repo(
            actor,
            &name,
            super::field(&f, "visibility").unwrap_or("private"),
            super::field(&f, "description"),
            page.ip.as_deref(),
        )
        .await
    {
        Ok(_) => super::see_other(&format!("/repository/{name}"), &[]),
        Err(e) => page.error(e),
    }
}

fn visibility(r: &Repository) -> Markup {
    if r.is_public() {
        html! { span.badge.public { "public" } }
    } else {
        html! { span.badge { "private" } }
    }
}

fn when(ms: Option<i64>) -> Markup {
    match ms {
        Some(ms) => html! { time datetime=(iso(ms)) title=(iso(ms)) { (ago(ms)) } },
        None => html! { span.muted { "never" } },
    }
}

/// `/repository/{ns}/{repo}` and `/repository/{ns}/{repo}/tag/{tag}`.
pub async fn repository(
    State(st): State<Arc<AppState>>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let page = Page::of(&st, &req).await;
    let path = path.trim_end_matches('/');
    if let Some((repo, digest)) = path.rsplit_once("/manifest/")
        && digest.contains(':')
        && !digest.contains('/')
    {
        return manifest_page(&st, &page, repo, digest).await;
    }
    if let Some((repo, uuid)) = path.rsplit_once("/notification/")
        && !uuid.is_empty()
        && !uuid.contains('/')
    {
        let at = berth_core::notify::Scope::Repository(repo);
        return super::notifications::page_of(&st, &page, &at, uuid, None).await;
    }
    match path.rsplit_once("/tag/") {
        Some((repo, tag)) if !tag.is_empty() && !tag.contains('/') => {
            tag_page(&st, &page, repo, tag).await
        }
        _ => repo_page(&st, &page, path).await,
    }
}

fn repo_crumbs(repo: &str) -> Vec<Crumb> {
    let ns = repo.split('/').next().unwrap_or(repo);
    vec![
        Crumb::new("Repositories", "/repository"),
        Crumb::new(ns, link("/repository", &[("namespace", ns)])),
        Crumb::new(
            repo.strip_prefix(ns)
                .and_then(|s| s.strip_prefix('/'))
                .unwrap_or(repo),
            format!("/repository/{repo}"),
        ),
    ]
}

/// The pull commands of a reference (`repo:tag` or `repo@digest`), with copy buttons.
fn pull_commands(page: &Page, reference: &str) -> Markup {
    let tls = if page.plain_http {
        " --tls-verify=false"
    } else {
        ""
    };
    let image = format!("{}/{reference}", page.host);
    let cmds = [
        ("podman", format!("podman pull{tls} {image}")),
        ("docker", format!("docker pull {image}")),
        (
            "skopeo",
            format!(
                "skopeo copy{} docker://{image} oci:local",
                if page.plain_http {
                    " --src-tls-verify=false"
                } else {
                    ""
                }
            ),
        ),
    ];
    html! {
        dl.commands {
            @for (client, cmd) in &cmds {
                dt { (client) }
                dd {
                    code tabindex="0" { (cmd) }
                    button.copy type="button" data-copy=(cmd) hidden { "Copy" }
                }
            }
        }
    }
}

async fn repo_page(st: &AppState, page: &Page, repo: &str) -> Response {
    let content = Content::new(&st.registry, &st.auth);
    let view = match content.repository(page.actor.as_ref(), repo, false).await {
        Ok(v) => v,
        Err(e) => return page.error(e),
    };
    let tab = page.q("tab").unwrap_or("info");
    if tab == "access" && page.q("format") == Some("csv") {
        let Some(actor) = page.actor.as_ref() else {
            return page.error(berth_core::Error::Unauthenticated(
                "sign in to see who has access".into(),
            ));
        };
        return match st.auth.effective_permissions(actor, repo).await {
            Ok(e) => super::settings::access_csv(&e),
            Err(e) => page.error(e),
        };
    }
    if tab == "logs"
        && view.can_admin
        && let Some(r) = super::logs::export(st, page, LogScope::Repository(repo)).await
    {
        return r;
    }
    if tab == "policies"
        && view.can_admin
        && let Some(r) = super::policies::fragment(st, page, &Level::Repository(repo)).await
    {
        return r;
    }
    let body = match tab {
        "logs" if view.can_admin => {
            let base = format!("/repository/{repo}");
            super::logs::section(
                st,
                page,
                LogScope::Repository(repo),
                &base,
                &[("tab", "logs")],
            )
            .await
        }
        "tags" => tags_tab(st, page, repo, view.can_write).await,
        "history" => history_tab(st, page, repo, view.can_write, view.window_s).await,
        "settings" if view.can_admin => super::settings::settings_tab(st, page, repo, &view).await,
        "policies" if view.can_admin => {
            let base = format!("/repository/{repo}");
            super::policies::section(
                st,
                page,
                &Level::Repository(repo),
                &base,
                &format!("{base}/policies"),
            )
            .await
        }
        "access" if view.can_admin => super::settings::access_tab(st, page, repo).await,
        "notifications" if view.can_admin => {
            super::notifications::section(st, page, &berth_core::notify::Scope::Repository(repo))
                .await
        }
        "mirroring" if view.can_admin && st.registry.config.mirror.enabled => {
            super::mirror::section(st, page, repo).await
        }
        _ => info_tab(st, page, repo, &view.repository).await,
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return page.error(e),
    };
    let r = &view.repository;
    let mut tabs = vec![
        ("info", "Information"),
        ("tags", "Tags"),
        ("history", "Tag history"),
    ];
    if view.can_admin {
        tabs.push(("logs", "Logs"));
        tabs.push(("access", "Who has access"));
        tabs.push(("policies", "Policies"));
        tabs.push(("notifications", "Notifications"));
        if st.registry.config.mirror.enabled {
            tabs.push(("mirroring", "Mirroring"));
        }
        tabs.push(("settings", "Settings"));
    }
    let shown = if tabs.iter().any(|(t, _)| *t == tab) {
        tab
    } else {
        "info"
    };
    page.render(
        StatusCode::OK,
        repo,
        &repo_crumbs(repo),
        html! {
            header.repo {
                h1 { (repo) " " (visibility(r)) }
            }
            (super::tabs(&format!("/repository/{repo}"), "Repository", &tabs, shown))
            (body)
        },
    )
}

async fn info_tab(
    st: &AppState,
    page: &Page,
    repo: &str,
    r: &Repository,
) -> berth_core::Result<Markup> {
    let content = Content::new(&st.registry, &st.auth);
    let newest = content
        .live_tags(
            page.actor.as_ref(),
            repo,
            &TagQuery {
                order: TagOrder::Newest,
                limit: 1,
                ..TagQuery::default()
            },
        )
        .await?;
    Ok(html! {
        @if let Some(d) = r.description.as_deref().filter(|d| !d.trim().is_empty()) {
            section.description aria-label="Description" { (super::markdown(d)) }
        }
        section {
            h2 { "Pull this repository" }
            @if let Some(t) = newest.tags.first() {
                p { "Newest tag: " strong { (t.tag.name) } ", pushed " (when(Some(t.tag.start_at))) "." }
                (pull_commands(page, &format!("{repo}:{}", t.tag.name)))
                p { "By digest, which never moves:" }
                (pull_commands(page, &format!("{repo}@{}", t.tag.manifest_digest)))
            } @else {
                p.empty { "No tags yet. Push one with " code { "podman push " (page.host) "/" (repo) ":TAG" } "." }
            }
            h2 { "Facts" }
            dl.facts {
                dt { "Live tags" } dd { (newest.total) }
                dt { "Created" } dd { (when(Some(r.created_at))) }
                dt { "Last pushed" } dd { (when(r.last_push_at)) }
                dt { "Last pulled" } dd { (when(r.last_pull_at)) }
            }
        }
    })
}

/// A button that posts `action` (a path on this site) with the page's CSRF token.
/// The Tags tab's filters and order, as its URL (or the confirmed deletion's form) carries
/// them.
#[derive(Debug, Default, Clone, Copy)]
struct TagFilters<'a> {
    filter: Option<&'a str>,
    regex: Option<&'a str>,
    /// `key` or `key=value`.
    label: Option<&'a str>,
    sort: Option<&'a str>,
}

impl<'a> TagFilters<'a> {
    fn from(get: impl Fn(&'static str) -> Option<&'a str>) -> Self {
        TagFilters {
            filter: get("filter"),
            regex: get("regex"),
            label: get("label"),
            sort: get("sort").filter(|s| matches!(*s, "newest" | "version")),
        }
    }

    fn matching(&self) -> TagMatch<'a> {
        TagMatch {
            contains: self.filter,
            regex: self.regex,
            label: self.label.map(|l| match l.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (l.trim(), None),
            }),
        }
    }

    fn order(&self) -> TagOrder {
        match self.sort {
            Some("newest") => TagOrder::Newest,
            Some("version") => TagOrder::Version,
            _ => TagOrder::Name,
        }
    }

    /// The query parameters (empty ones are left out of links).
    fn params(&self) -> [(&'static str, &'a str); 4] {
        [
            ("filter", self.filter.unwrap_or("")),
            ("regex", self.regex.unwrap_or("")),
            ("label", self.label.unwrap_or("")),
            ("sort", self.sort.unwrap_or("")),
        ]
    }

    fn any(&self) -> bool {
        self.filter.is_some() || self.regex.is_some() || self.label.is_some()
    }

    /// A link to the Tags tab with these filters and `extra`.
    fn link(&self, repo: &str, extra: &[(&'static str, &str)]) -> String {
        let mut p: Vec<(&str, &str)> = vec![("tab", "tags")];
        p.extend(self.params());
        p.extend_from_slice(extra);
        link(&format!("/repository/{repo}"), &p)
    }

    /// Hidden fields carrying the filters (not the order) into a form.
    fn hidden(&self) -> Markup {
        html! {
            @for (k, v) in &self.params()[..3] {
                @if !v.is_empty() { input type="hidden" name=(k) value=(v); }
            }
        }
    }
}

fn tag_row(
    page: &Page,
    repo: &str,
    v: &TagView,
    m: Option<&ManifestSummary>,
    can_write: bool,
) -> Markup {
    let t = &v.tag;
    let digest = t.manifest_digest.to_string();
    let short = digest
        .split_once(':')
        .map(|(a, h)| format!("{a}:{}", &h[..h.len().min(12)]))
        .unwrap_or_else(|| digest.clone());
    html! {
        tr {
            @if can_write {
                td.select {
                    input type="checkbox" name="tag" value=(t.name) form="bulk" aria-label={ "Select " (t.name) };
                }
            }
            th scope="row" { a href={ "/repository/" (repo) "/tag/" (url_encode(&t.name)) } { (t.name) } }
            td { code title=(digest) { (short) } }
            td {
                @match m.filter(|m| !m.platforms.is_empty()) {
                    Some(m) => { @for (i, p) in m.platforms.iter().enumerate() { @if i > 0 { ", " } (p) } }
                    None => { span.muted { "single image" } }
                }
            }
            td { (super::security::cell(repo, &digest, m.and_then(|m| m.security.as_ref()))) }
            td { @if let Some(s) = t.size { (size(s)) } @else { span.muted { "index" } } }
            td { (when(Some(t.start_at))) }
            td { @if let Some(e) = t.expires_at { time datetime=(iso(e)) { (iso(e)) } } @else { span.muted { "never" } } }
            td {
                @if let Some(m) = m {
                    @for (k, val) in &m.labels {
                        a.badge href=(link(&format!("/repository/{repo}"), &[("tab", "tags"), ("label", &format!("{k}={val}"))])) title={ "Only tags labelled " (k) "=" (val) } { (k) "=" (val) }
                        " "
                    }
                }
            }
            td { @if t.immutable || v.protected_by_policy { span.badge { "immutable" } } }
            @if can_write {
                td {
                    @if !(t.immutable || v.protected_by_policy) {
                        (post_button(page, &format!("/repository/{repo}/tag/{}/delete", url_encode(&t.name)), &format!("Delete {}", t.name), &[], true))
                    }
                }
            }
        }
    }
}

async fn tags_tab(
    st: &AppState,
    page: &Page,
    repo: &str,
    can_write: bool,
) -> berth_core::Result<Markup> {
    let tf = TagFilters::from(|k| page.q(k));
    let tags = Content::new(&st.registry, &st.auth)
        .live_tags(
            page.actor.as_ref(),
            repo,
            &TagQuery {
                matching: tf.matching(),
                order: tf.order(),
                after: page.q("after"),
                limit: PAGE,
            },
        )
        .await?;
    let sort = tf.sort.unwrap_or("name");
    let confirm = if can_write && page.q("confirm") == Some("delete") {
        Some(confirm_deletion(st, page, repo, &tf).await?)
    } else {
        None
    };
    Ok(html! {
        section #tags {
            form.filters method="get" action={ "/repository/" (repo) } {
                input type="hidden" name="tab" value="tags";
                div {
                    label for="tag-filter" { "Tag name contains" }
                    input #tag-filter type="search" name="filter" value=[tf.filter];
                }
                div {
                    label for="tag-regex" { "or matches the regular expression" }
                    input #tag-regex type="search" name="regex" value=[tf.regex] placeholder="^v1\\.[0-9]+$" spellcheck="false";
                }
                div {
                    label for="tag-label" { "Label (key or key=value)" }
                    input #tag-label type="search" name="label" value=[tf.label] spellcheck="false";
                }
                div {
                    label for="tag-sort" { "Sort by" }
                    select #tag-sort name="sort" {
                        option value="name" selected[sort == "name"] { "Name" }
                        option value="newest" selected[sort == "newest"] { "Newest first" }
                        option value="version" selected[sort == "version"] { "Version (highest first)" }
                    }
                }
                button type="submit" { "Apply" }
                @if tf.any() { " " a href=(link(&format!("/repository/{repo}"), &[("tab", "tags"), ("sort", tf.sort.unwrap_or(""))])) { "Clear filters" } }
            }
            @if let Some(c) = confirm { (c) }
            p.count role="status" {
                (tags.total) " " @if tags.total == 1 { "tag" } @else { "tags" }
                @if let Some(f) = tf.filter { " containing “" (f) "”" }
                @if let Some(r) = tf.regex { " matching " code { (r) } }
                @if let Some(l) = tf.label { " labelled " code { (l) } }
            }
            @if can_write && tags.total > 0 {
                form #bulk .bulk method="get" action={ "/repository/" (repo) } {
                    input type="hidden" name="tab" value="tags";
                    input type="hidden" name="confirm" value="delete";
                    (tf.hidden())
                    button type="submit" { "Delete selected…" }
                    " "
                    a.button href=(tf.link(repo, &[("confirm", "delete"), ("all", "1")])) {
                        "Delete all " (tags.total) " matching…"
                    }
                }
            }
            @if tags.tags.is_empty() {
                p.empty { @if page.q("after").is_some() { "No more tags." } @else { "No tags." } }
            } @else {
                table.list {
                    caption.visually-hidden { "Live tags" }
                    thead { tr {
                        @if can_write { th scope="col" { span.visually-hidden { "Select" } } }
                        th scope="col" { "Tag" } th scope="col" { "Manifest" } th scope="col" { "Platforms" } th scope="col" { "Security" } th scope="col" { "Size" }
                        th scope="col" { "Last modified" } th scope="col" { "Expires" } th scope="col" { "Labels" } th scope="col" { "Protection" }
                        @if can_write { th scope="col" { "Actions" } }
                    } }
                    tbody { @for v in &tags.tags { (tag_row(page, repo, v, tags.manifests.get(&v.tag.manifest_digest.to_string()), can_write)) } }
                }
            }
            nav.pager aria-label="Pages of tags" {
                @if page.q("after").is_some() { a href=(tf.link(repo, &[])) { "First page" } }
                @if let Some(n) = &tags.next { a href=(tf.link(repo, &[("after", n)])) rel="next" { "Next page" } }
            }
        }
    })
}

/// The bulk deletion's confirmation: what goes (and that it is restorable), what immutability
/// keeps, and the button that does it. Selected tags (`tag=…`) or, with `all=1`, every tag
/// matching the filter.
async fn confirm_deletion(
    st: &AppState,
    page: &Page,
    repo: &str,
    tf: &TagFilters<'_>,
) -> berth_core::Result<Markup> {
    let Some(actor) = page.actor.as_ref() else {
        return Err(berth_core::Error::Unauthenticated(
            "sign in to delete tags".into(),
        ));
    };
    let names = page.q_all("tag");
    let all = page.q("all") == Some("1");
    let selection = if all {
        TagSelection::Matching(tf.matching())
    } else {
        TagSelection::Names(&names)
    };
    let preview = Content::new(&st.registry, &st.auth)
        .preview_tag_deletion(actor, repo, &selection)
        .await?;
    let window_s = st
        .auth
        .namespace_tag_window(repo.split('/').next().unwrap_or(repo))
        .await?
        .unwrap_or(st.registry.config.gc.default_window_s);
    let n = preview.deletable.len();
    let window = humantime::format_duration(std::time::Duration::from_secs(window_s.max(0) as u64));
    Ok(html! {
        section.confirm aria-labelledby="confirm-heading" {
            h2 #confirm-heading { "Delete " (n) " " @if n == 1 { "tag" } @else { "tags" } "?" }
            @if n == 0 && preview.protected.is_empty() {
                p { "Nothing is selected: tick the tags to delete, or use “Delete all matching”." }
            } @else {
                p {
                    @if n > 0 {
                        "These tags end now; each stays restorable from " a href=(link(&format!("/repository/{repo}"), &[("tab", "history")])) { "Tag history" } " for " (window) ". "
                        "Once they leave it, garbage collection frees " strong { (size(preview.bytes_freed)) } " (blobs no remaining tag uses)."
                    }
                }
                @if n > 0 {
                    p.muted { @for (i, t) in preview.deletable.iter().take(20).enumerate() { @if i > 0 { ", " } code { (t) } } @if n > 20 { " and " (n - 20) " more" } }
                }
                @if !preview.protected.is_empty() {
                    p.notice { (preview.protected.len()) " immutable " @if preview.protected.len() == 1 { "tag stays" } @else { "tags stay" } ": "
                        @for (i, t) in preview.protected.iter().take(10).enumerate() { @if i > 0 { ", " } code { (t) } }
                        @if preview.protected.len() > 10 { " …" }
                    }
                }
                @if n > 0 {
                    form.inline method="post" action={ "/repository/" (repo) "/tags/delete" } {
                        input type="hidden" name="csrf" value=(page.csrf);
                        @if all {
                            input type="hidden" name="all" value="1";
                            (tf.hidden())
                        } @else {
                            @for t in &preview.deletable { input type="hidden" name="tag" value=(t); }
                        }
                        button.danger type="submit" { "Delete " (n) " " @if n == 1 { "tag" } @else { "tags" } }
                    }
                }
            }
            " "
            a href=(tf.link(repo, &[])) { "Cancel" }
        }
    })
}

/// `POST /repository/{repo}/tags/delete`: the confirmed bulk deletion; then the history of
/// what it ended.
async fn delete_tags(st: &AppState, page: &Page, repo: &str, f: &[(String, String)]) -> Response {
    let Some(actor) = page.actor.as_ref() else {
        return page.error(berth_core::Error::Unauthenticated(
            "sign in to delete tags".into(),
        ));
    };
    let get = |k: &str| {
        f.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let names: Vec<String> = f
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v.clone())
        .collect();
    let selection = if get("all") == Some("1") {
        TagSelection::Matching(TagFilters::from(get).matching())
    } else {
        TagSelection::Names(&names)
    };
    match Content::new(&st.registry, &st.auth)
        .delete_tags(
            berth_core::Caller::new(actor, page.ip.as_deref()),
            repo,
            &selection,
        )
        .await
    {
        Ok(_) => super::see_other(
            &link(&format!("/repository/{repo}"), &[("tab", "history")]),
            &[],
        ),
        Err(e) => page.error(e),
    }
}

/// The diff between two positions of a tag's history (`from` and `to` digests in the URL).
async fn diff_section(
    st: &AppState,
    page: &Page,
    repo: &str,
    from: &str,
    to: &str,
) -> berth_core::Result<Markup> {
    let parse = |d: &str| {
        d.parse::<berth_oci::Digest>()
            .map_err(|_| berth_core::Error::invalid(format!("{d:?} is not a digest")))
    };
    let (f, t) = (parse(from)?, parse(to)?);
    let d = Content::new(&st.registry, &st.auth)
        .diff(page.actor.as_ref(), repo, &f, &t)
        .await?;
    let short = |s: &str| -> String { s.chars().take(19).collect() };
    let nothing = d.layers_added.is_empty()
        && d.layers_removed.is_empty()
        && d.platforms_added.is_empty()
        && d.platforms_removed.is_empty()
        && d.labels_added.is_empty()
        && d.labels_removed.is_empty()
        && d.labels_changed.is_empty();
    Ok(html! {
        section.diff aria-labelledby="diff-heading" {
            h2 #diff-heading { "From " code { (short(from)) } " to " code { (short(to)) } }
            p {
                "Layers: " (size(d.size_from)) " → " (size(d.size_to)) "."
                @if d.media_type_from != d.media_type_to { " Media type: " code { (d.media_type_from) } " → " code { (d.media_type_to) } "." }
            }
            @if nothing { p.empty { "The same layers, platforms and labels." } }
            @if !d.platforms_added.is_empty() || !d.platforms_removed.is_empty() {
                h3 { "Platforms" }
                ul.plain {
                    @for (p, dg) in &d.platforms_removed { li.removed { "− " (p) " " code { (short(dg)) } } }
                    @for (p, dg) in &d.platforms_added { li.added { "+ " (p) " " code { (short(dg)) } } }
                }
            }
            @if !d.layers_added.is_empty() || !d.layers_removed.is_empty() {
                h3 { "Layers" }
                ul.plain {
                    @for (l, s) in &d.layers_removed { li.removed { "− " code { (l) } " " (size(*s)) } }
                    @for (l, s) in &d.layers_added { li.added { "+ " code { (l) } " " (size(*s)) } }
                }
            }
            @if !d.labels_added.is_empty() || !d.labels_removed.is_empty() || !d.labels_changed.is_empty() {
                h3 { "Labels" }
                ul.plain {
                    @for (k, v) in &d.labels_removed { li.removed { "− " code { (k) } " = " (v) } }
                    @for (k, v) in &d.labels_added { li.added { "+ " code { (k) } " = " (v) } }
                    @for (k, o, n) in &d.labels_changed { li { "~ " code { (k) } ": " (o) " → " (n) } }
                }
            }
        }
    })
}

async fn history_tab(
    st: &AppState,
    page: &Page,
    repo: &str,
    can_write: bool,
    window_s: i64,
) -> berth_core::Result<Markup> {
    let restorable_since = berth_core::now_ms().saturating_sub(window_s.saturating_mul(1000));
    let n: i64 = page
        .q("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let filter = page.q("filter");
    let f = TagFilter {
        name: page.q("tag"),
        contains: filter,
        ..TagFilter::default()
    };
    let rows = Content::new(&st.registry, &st.auth)
        .tags(
            page.actor.as_ref(),
            repo,
            &f,
            (n - 1).saturating_mul(PAGE),
            PAGE + 1,
        )
        .await?;
    let more = rows.len() as i64 > PAGE;
    let at = |p: i64| {
        link(
            &format!("/repository/{repo}"),
            &[
                ("tab", "history"),
                ("tag", page.q("tag").unwrap_or("")),
                ("filter", filter.unwrap_or("")),
                ("page", &p.to_string()),
            ],
        )
    };
    let diff = match (page.q("from"), page.q("to")) {
        (Some(f), Some(t)) => Some(diff_section(st, page, repo, f, t).await?),
        _ => None,
    };
    let per_tag = page.q("tag").is_some();
    let shown: Vec<&TagView> = rows.iter().take(PAGE as usize).collect();
    let purging = st.auth.config.permanently_delete_tags && can_write;
    let confirm_purge = match (purging, page.q("tag"), page.q("purge")) {
        (true, Some(tag), Some(digest)) => Some(html! {
            section.confirm aria-labelledby="purge-heading" {
                h2 #purge-heading { "Delete " (tag) " at " code { (digest.chars().take(19).collect::<String>()) } " permanently?" }
                p { "Its past positions at this manifest leave the time machine now: they cannot be restored, and garbage collection may free the manifest's blobs once nothing else holds them." }
                (post_button(page, &format!("/repository/{repo}/tag/{}/purge", url_encode(tag)), "Delete permanently", &[("digest", digest)], true))
                " "
                a href=(link(&format!("/repository/{repo}"), &[("tab", "history"), ("tag", tag)])) { "Cancel" }
            }
        }),
        _ => None,
    };
    Ok(html! {
        @if let Some(d) = diff { (d) }
        @if let Some(c) = confirm_purge { (c) }
        section {
            @if can_write {
                p.muted { "Ended positions stay restorable for " (humantime::format_duration(std::time::Duration::from_secs(window_s.max(0) as u64))) " (the namespace's time-machine window)." }
            }
            @if let Some(t) = page.q("tag") {
                p { "History of " strong { (t) } ". " a href=(link(&format!("/repository/{repo}"), &[("tab", "history")])) { "All tags" } }
            }
            @if rows.is_empty() {
                p.empty { "No history." }
            } @else {
                table.list {
                    caption.visually-hidden { "Tag history, newest first" }
                    thead { tr {
                        th scope="col" { "Tag" } th scope="col" { "Manifest" } th scope="col" { "From" } th scope="col" { "Until" }
                        @if per_tag { th scope="col" { "Changes" } }
                        @if can_write { th scope="col" { "Actions" } }
                    } }
                    tbody {
                        @for (i, v) in shown.iter().enumerate() {
                            tr {
                                th scope="row" { a href=(link(&format!("/repository/{repo}"), &[("tab", "history"), ("tag", &v.tag.name)])) { (v.tag.name) } }
                                td { code { (v.tag.manifest_digest) } }
                                td { (when(Some(v.tag.start_at))) }
                                td { @if let Some(e) = v.tag.end_at { (when(Some(e))) } @else { span.badge.public { "current" } } }
                                @if per_tag {
                                    td {
                                        @if let Some(older) = shown.get(i + 1).filter(|o| o.tag.manifest_digest != v.tag.manifest_digest) {
                                            a href=(link(&format!("/repository/{repo}"), &[("tab", "history"), ("tag", &v.tag.name), ("from", &older.tag.manifest_digest.to_string()), ("to", &v.tag.manifest_digest.to_string())])) {
                                                "Changes to " (v.tag.manifest_digest.to_string().chars().take(19).collect::<String>())
                                            }
                                        }
                                    }
                                }
                                @if can_write {
                                    td {
                                        @if v.tag.end_at.is_some_and(|e| e >= restorable_since) {
                                            (post_button(
                                                page,
                                                &format!("/repository/{repo}/tag/{}/restore", url_encode(&v.tag.name)),
                                                &format!("Restore {} to this", v.tag.name),
                                                &[("digest", &v.tag.manifest_digest.to_string())],
                                                false,
                                            ))
                                        }
                                        @if purging && v.tag.end_at.is_some() {
                                            " "
                                            a href=(link(&format!("/repository/{repo}"), &[("tab", "history"), ("tag", &v.tag.name), ("purge", &v.tag.manifest_digest.to_string())])) {
                                                "Delete " (v.tag.name) " permanently…"
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages of history" {
                @if n > 1 { a href=(at(n - 1)) rel="prev" { "Newer" } }
                @if more { a href=(at(n + 1)) rel="next" { "Older" } }
            }
        }
    })
}

async fn tag_page(st: &AppState, page: &Page, repo: &str, tag: &str) -> Response {
    let content = Content::new(&st.registry, &st.auth);
    let v = match content.live_tag(page.actor.as_ref(), repo, tag).await {
        Ok(v) => v,
        Err(e) => return page.error(e),
    };
    let view = match content.repository(page.actor.as_ref(), repo, false).await {
        Ok(v) => v,
        Err(e) => return page.error(e),
    };
    let impact = match content
        .deletion_impact(page.actor.as_ref(), repo, &v.tag)
        .await
    {
        Ok(i) => i,
        Err(e) => return page.error(e),
    };
    let details = match manifest_details(st, page, repo, &v.tag.manifest_digest).await {
        Ok(d) => d,
        Err(e) => return page.error(e),
    };
    let mut crumbs = repo_crumbs(repo);
    crumbs.push(Crumb::new(tag, ""));
    page.render(
        StatusCode::OK,
        &format!("{repo}:{tag}"),
        &crumbs,
        html! {
            h1 { (repo) ":" (tag) }
            dl.facts {
                dt { "Digest" } dd { code { (v.tag.manifest_digest) } }
                dt { "Last modified" } dd { (when(Some(v.tag.start_at))) }
                dt { "Expires" } dd { @if let Some(e) = v.tag.expires_at { (iso(e)) } @else { "never" } }
                dt { "Immutable" } dd { @if v.tag.immutable || v.protected_by_policy { "yes" } @else { "no" } }
                @if let Some(s) = v.tag.size { dt { "Size" } dd { (size(s)) " (compressed layers)" } }
                dt { "If deleted" } dd {
                    @if impact.other_tags > 0 {
                        "frees nothing: " (impact.other_tags) " other " @if impact.other_tags == 1 { "tag points" } @else { "tags point" } " at this manifest"
                    } @else {
                        "frees " (size(impact.bytes_freed)) " once it leaves the time-machine window (blobs no other manifest uses)"
                    }
                }
            }
            h2 { "Pull" }
            (pull_commands(page, &format!("{repo}:{tag}")))
            (pull_commands(page, &format!("{repo}@{}", v.tag.manifest_digest)))
            (details)
            p { a href=(link(&format!("/repository/{repo}"), &[("tab", "history"), ("tag", tag)])) { "History of this tag" } }
            @if view.can_write {
                (tag_actions(page, repo, &v, view.can_admin))
            }
        },
    )
}

/// `/repository/{repo}/manifest/{digest}`: a manifest by digest (an index's platform, a
/// referrer, a search result), tagged or not.
async fn manifest_page(st: &AppState, page: &Page, repo: &str, digest: &str) -> Response {
    let Ok(d) = digest.parse::<berth_oci::Digest>() else {
        return page.error(berth_core::Error::invalid(format!(
            "{digest:?} is not a digest"
        )));
    };
    let tab = page
        .q("tab")
        .filter(|t| matches!(*t, "security" | "packages"))
        .unwrap_or("");
    let details = if tab.is_empty() {
        manifest_details(st, page, repo, &d).await
    } else {
        super::security::tab(st, page, repo, &d, tab).await
    };
    let details = match details {
        Ok(m) => m,
        Err(e) => return page.error(e),
    };
    let mut crumbs = repo_crumbs(repo);
    let short: String = digest.chars().take(19).collect();
    crumbs.push(Crumb::new(short, ""));
    page.render(
        StatusCode::OK,
        &format!("{repo}@{digest}"),
        &crumbs,
        html! {
            h1 { (repo) "@" wbr; code { (digest) } }
            (super::security::tabs(repo, digest, tab))
            @if tab.is_empty() {
                h2 { "Pull" }
                (pull_commands(page, &format!("{repo}@{digest}")))
            }
            (details)
        },
    )
}

/// What a manifest holds: its media type, the platforms of an index (each a link to its
/// manifest), layers, labels, and its referrers (signatures, SBOMs, attestations) under it.
async fn manifest_details(
    st: &AppState,
    page: &Page,
    repo: &str,
    digest: &berth_oci::Digest,
) -> berth_core::Result<Markup> {
    let content = Content::new(&st.registry, &st.auth);
    let actor = page.actor.as_ref();
    let m = content.manifest(actor, repo, digest).await?;
    let labels = content.labels(actor, repo, digest, "").await?;
    let referrers = content.referrers(actor, repo, digest).await?;
    let parsed: serde_json::Value = serde_json::from_slice(&m.content).unwrap_or_default();
    let layers = parsed["layers"].as_array().cloned().unwrap_or_default();
    let children = parsed["manifests"].as_array().cloned().unwrap_or_default();
    let manifest_link = |d: &str| format!("/repository/{repo}/manifest/{d}");
    Ok(html! {
        dl.facts {
            dt { "Media type" } dd { code { (m.media_type) } }
            @if let Some(t) = parsed["artifactType"].as_str() { dt { "Artifact type" } dd { code { (t) } } }
            dt { "Manifest size" } dd { (size(m.content.len() as i64)) }
        }
        @if !children.is_empty() {
            h2 #platforms { "Platforms" }
            table.list aria-labelledby="platforms" {
                thead { tr { th scope="col" { "Platform" } th scope="col" { "Manifest" } th scope="col" { "Size" } } }
                tbody {
                    @for c in &children {
                        @let d = c["digest"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { a href=(manifest_link(d)) { (platform_name(&c["platform"])) } }
                            td { code { (d) } }
                            td { (c["size"].as_i64().map(size).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if !layers.is_empty() {
            h2 #layers { "Layers" }
            table.list aria-labelledby="layers" {
                thead { tr { th scope="col" { "#" } th scope="col" { "Digest" } th scope="col" { "Media type" } th scope="col" { "Size" } } }
                tbody {
                    @for (i, l) in layers.iter().enumerate() {
                        tr {
                            td { (i + 1) }
                            td { code { (l["digest"].as_str().unwrap_or("")) } }
                            td.muted { (l["mediaType"].as_str().unwrap_or("")) }
                            td { (l["size"].as_i64().map(size).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if !labels.is_empty() {
            h2 #labels { "Labels" }
            table.list aria-labelledby="labels" {
                thead { tr { th scope="col" { "Key" } th scope="col" { "Value" } th scope="col" { "Source" } } }
                tbody {
                    @for l in &labels {
                        tr { th scope="row" { code { (l.key) } } td { (l.value) } td.muted { (l.source_type) } }
                    }
                }
            }
        }
        h2 #referrers { "Referrers" }
        @if referrers.is_empty() {
            p.empty { "No signatures, SBOMs or attestations refer to this manifest." }
        } @else {
            table.list aria-labelledby="referrers" {
                thead { tr { th scope="col" { "Artifact type" } th scope="col" { "Manifest" } th scope="col" { "Size" } } }
                tbody {
                    @for r in &referrers {
                        tr {
                            th scope="row" { (r.artifact_type.as_deref().unwrap_or(&r.media_type)) }
                            td { a href=(manifest_link(&r.digest)) { code { (r.digest) } } }
                            td { (size(r.size)) }
                        }
                    }
                }
            }
        }
    })
}

/// The tag page's forms: another tag on this manifest, expiry, immutability, deletion.
fn tag_actions(page: &Page, repo: &str, v: &TagView, can_admin: bool) -> Markup {
    let t = &v.tag;
    let base = format!("/repository/{repo}/tag/{}", url_encode(&t.name));
    let csrf = html! { input type="hidden" name="csrf" value=(page.csrf); };
    let frozen = t.immutable || v.protected_by_policy;
    html! {
        section.actions aria-labelledby="tag-actions" {
            h2 #tag-actions { "Change this tag" }
            form.stack method="post" action={ (base) "/retag" } {
                (csrf)
                label for="retag-name" { "Add a tag on this manifest" }
                input #retag-name name="name" required pattern="[A-Za-z0-9_][A-Za-z0-9._-]{0,127}";
                button type="submit" { "Add tag" }
            }
            form.stack method="post" action={ (base) "/expiry" } {
                (csrf)
                label for="expires" { "Expires on (UTC)" }
                input #expires type="date" name="expires" value=[t.expires_at.map(|e| iso(e).chars().take(10).collect::<String>())];
                button type="submit" { "Set expiry" }
            }
            @if t.expires_at.is_some() {
                (post_button(page, &format!("{base}/expiry"), "Never expire", &[], false))
            }
            p {
                @if t.immutable {
                    @if can_admin {
                        (post_button(page, &format!("{base}/immutable"), "Make mutable", &[("immutable", "false")], false))
                    } @else { span.muted { "Immutable: only an administrator can lift it." } }
                } @else if v.protected_by_policy {
                    span.muted { "Immutable by a policy of the namespace or repository." }
                } @else {
                    (post_button(page, &format!("{base}/immutable"), "Make immutable", &[("immutable", "true")], false))
                }
                @if !frozen {
                    " "
                    (post_button(page, &format!("{base}/delete"), &format!("Delete {}", t.name), &[], true))
                }
            }
        }
    }
}

/// `POST /repository/{repo}/tag/{tag}/delete` and `…/restore` (field `digest`): the tag
/// actions, through the same core doors as `/api/v1`; then back to the tag's history, where a
/// deleted tag shows its restore button.
pub async fn action(
    State(st): State<Arc<AppState>>,
    Path(path): Path<String>,
    req: Request,
) -> Response {
    let page = Page::of(&st, &req).await;
    let pairs = match super::checked_form_all(&st, &page, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if path == "delete" {
        return delete_repos(&st, &page, &pairs).await;
    }
    if let Some(repo) = path.strip_suffix("/tags/delete") {
        return delete_tags(&st, &page, repo, &pairs).await;
    }
    let f: std::collections::HashMap<String, String> = pairs.into_iter().collect();
    if let Some((repo, rest)) = path
        .strip_suffix("/notifications")
        .map(|r| (r, "notifications"))
        .or_else(|| {
            path.find("/notification/")
                .map(|i| (&path[..i], &path[i + 1..]))
        })
    {
        let at = berth_core::notify::Scope::Repository(repo);
        return super::notifications::action(&st, &page, &at, rest, &f).await;
    }
    if let Some((repo, verb)) = path
        .rsplit_once("/mirror/")
        .filter(|(_, v)| ["save", "sync-now", "sync-cancel", "state"].contains(v))
    {
        return super::mirror::action(&st, &page, repo, verb, &f).await;
    }
    if let Some((repo, what)) = path.rsplit_once("/policies/") {
        let back = link(&format!("/repository/{repo}"), &[("tab", "policies")]);
        let at = Level::Repository(repo);
        if let Some(r) = super::policies::action(&st, &page, &at, what, &f, &back).await {
            return r;
        }
    }
    let Some(actor) = page.actor.as_ref() else {
        return page.error(berth_core::Error::Unauthenticated(
            "sign in to change tags".into(),
        ));
    };
    let caller = berth_core::Caller::new(actor, page.ip.as_deref());
    for what in super::settings::ACTIONS {
        if let Some(repo) = path
            .strip_suffix(what)
            .and_then(|p| p.strip_suffix("/settings/"))
        {
            return super::settings::action(&st, &page, repo, what, &f).await;
        }
    }
    let Some((rest, verb)) = path.rsplit_once('/') else {
        return page.error(berth_core::Error::not_found("no such action"));
    };
    let Some((repo, tag)) = rest.rsplit_once("/tag/") else {
        return page.error(berth_core::Error::not_found("no such action"));
    };
    let content = Content::new(&st.registry, &st.auth);
    let history = link(
        &format!("/repository/{repo}"),
        &[("tab", "history"), ("tag", tag)],
    );
    let tag_page = |t: &str| format!("/repository/{repo}/tag/{}", url_encode(t));
    let done = match verb {
        "delete" => content.delete_tag(caller, repo, tag).await.map(|_| history),
        "restore" => {
            let digest = f.get("digest").map(String::as_str).unwrap_or("");
            content
                .restore_tag(caller, repo, tag, digest)
                .await
                .map(|_| history)
        }
        "purge" => {
            let digest = f.get("digest").map(String::as_str).unwrap_or("");
            content
                .purge_tag(caller, repo, tag, digest, false)
                .await
                .map(|_| history)
        }
        // Another tag on this tag's manifest (Quay's "add tag").
        "retag" => {
            let new = super::field(&f, "name").unwrap_or("");
            match content.live_tag(page.actor.as_ref(), repo, tag).await {
                Ok(v) => {
                    let digest = v.tag.manifest_digest.to_string();
                    let c = TagChange {
                        manifest_digest: Some(&digest),
                        ..TagChange::default()
                    };
                    content
                        .change_tag(caller, repo, new, &c)
                        .await
                        .map(|_| tag_page(new))
                }
                Err(e) => Err(e),
            }
        }
        "expiry" => {
            let at = match super::field(&f, "expires") {
                None => Ok(None),
                Some(day) => super::parse_day(day).map(Some).ok_or_else(|| {
                    berth_core::Error::invalid(format!("{day:?} is not a date (YYYY-MM-DD)"))
                }),
            };
            match at {
                Ok(at) => content
                    .change_tag(
                        caller,
                        repo,
                        tag,
                        &TagChange {
                            expires_at: Some(at),
                            ..TagChange::default()
                        },
                    )
                    .await
                    .map(|_| tag_page(tag)),
                Err(e) => Err(e),
            }
        }
        "immutable" => content
            .change_tag(
                caller,
                repo,
                tag,
                &TagChange {
                    immutable: Some(super::field(&f, "immutable") == Some("true")),
                    ..TagChange::default()
                },
            )
            .await
            .map(|_| tag_page(tag)),
        _ => Err(berth_core::Error::not_found("no such action")),
    };
    page.after(done)
}
