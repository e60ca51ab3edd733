//! `/search?q=…` (Quay's address): the header's one search box across organizations and users,
//! repositories, tags and manifest digests, through `Auth::search`, which shows each only
//! where the caller may read.

use super::{Crumb, Page, link, url_encode};
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use berth_core::auth::AccountKind;
use maud::html;
use std::sync::Arc;

/// Results of each kind.
const EACH: i64 = 20;

pub async fn page(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let page = Page::of(&st, &req).await;
    let q = page.q("q").unwrap_or("").trim().to_string();
    let found = match st.auth.search(page.actor.as_ref(), &q, EACH).await {
        Ok(f) => f,
        Err(e) => return page.error(e),
    };
    let nothing = found.namespaces.is_empty()
        && found.repositories.is_empty()
        && found.tags.is_empty()
        && found.manifests.is_empty();
    page.render(
        StatusCode::OK,
        "Search",
        &[Crumb::new("Search", "/search")],
        html! {
            h1 { "Search" }
            form.filters method="get" action="/search" {
                div {
                    label for="search-q" { "Name, tag or digest" }
                    input #search-q type="search" name="q" value=(q);
                }
                button type="submit" { "Search" }
            }
            @if q.is_empty() {
                p.empty { "Type part of a repository's name, the start of a tag, or the start of a digest (sha256:… or 6+ hex digits)." }
            } @else if nothing {
                p.empty { "Nothing you may see matches “" (q) "”." @if page.actor.is_none() { " " a href={ "/signin?next=" (url_encode(&format!("/search?q={q}"))) } { "Sign in" } " to search your private repositories." } }
            }
            @if !found.namespaces.is_empty() {
                h2 { "Organizations and users" }
                ul.plain {
                    @for (name, kind) in &found.namespaces {
                        li {
                            @if *kind == AccountKind::Org {
                                a href={ "/organization/" (name) } { (name) } " " span.badge { "organization" }
                            } @else {
                                a href={ "/user/" (name) } { (name) } " " span.badge { "user" }
                            }
                        }
                    }
                }
            }
            @if !found.repositories.is_empty() {
                h2 { "Repositories" }
                ul.plain {
                    @for r in &found.repositories {
                        li { a href={ "/repository/" (r.name) } { (r.name) } @if let Some(d) = &r.description { " " span.muted { (d.lines().next().unwrap_or("")) } } }
                    }
                }
                @if found.repositories.len() as i64 == EACH {
                    p { a href=(link("/repository", &[("filter", &q)])) { "All repositories containing “" (q) "”" } }
                }
            }
            @if !found.tags.is_empty() {
                h2 { "Tags" }
                table.list {
                    caption.visually-hidden { "Tags starting with the text" }
                    thead { tr { th scope="col" { "Tag" } th scope="col" { "Repository" } th scope="col" { "Manifest" } } }
                    tbody {
                        @for (repo, tag, digest) in &found.tags {
                            tr {
                                th scope="row" { a href={ "/repository/" (repo) "/tag/" (url_encode(tag)) } { (tag) } }
                                td { a href={ "/repository/" (repo) } { (repo) } }
                                td { code { (digest) } }
                            }
                        }
                    }
                }
            }
            @if !found.manifests.is_empty() {
                h2 { "Manifests" }
                table.list {
                    caption.visually-hidden { "Manifests whose digest starts with the text" }
                    thead { tr { th scope="col" { "Digest" } th scope="col" { "Repository" } th scope="col" { "Media type" } } }
                    tbody {
                        @for (repo, digest, media_type) in &found.manifests {
                            tr {
                                th scope="row" { a href={ "/repository/" (repo) "/manifest/" (digest) } { code { (digest) } } }
                                td { a href={ "/repository/" (repo) } { (repo) } }
                                td { code { (media_type) } }
                            }
                        }
                    }
                }
            }
        },
    )
}
